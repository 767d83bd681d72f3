"""JPY dissector (draft-ietf-anima-constrained-join-proxy): the appendix examples byte for byte, both
forms on lab captures, how the port is found, the example header with a key, and broken input.

Fixtures: ``tests/data/jp/draft_appendix.pcap`` and ``discovery_jpy.pcap`` (``make_fixtures.py``, from the
draft's own hex in ``draft_appendix.txt``); ``captures/jpy*.pcapng`` (OpenSSL / Mbed TLS through the lab's
Join Proxy).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path

import pytest

from jpdissect.api import packets
from jpdissect.capture import Frame
from jpdissect.dissectors import load_all
from jpdissect.engine import Engine
from jpdissect.model import Group, Packet, Severity, unprime_all

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "jp"
CAPTURES = ROOT / "captures"

_spec = importlib.util.spec_from_file_location("jp_fixtures", DATA / "make_fixtures.py")
assert _spec is not None and _spec.loader is not None
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
DRAFT = fx.draft_values()


def _pkts(path: Path, prefs: Iterable[str] = (), decode_as: Iterable[str] = ()) -> list[Packet]:
    return list(packets(str(path), prefs=list(prefs), decode_as=list(decode_as), tree=True))


def _dissect(payloads: list[bytes], prefs: Iterable[str] = (), decode_as: Iterable[str] = ("udp.port==7634,jpy",),
             sport: int = 40000, dport: int = 7634) -> list[Packet]:
    """Raw IPv6/UDP frames from the JP to the Registrar's JPY port, dissected with a full tree."""
    load_all()
    unprime_all()
    eng = Engine(prefs=list(prefs), decode_as=list(decode_as), tree=True)
    out = []
    for i, p in enumerate(payloads):
        data = fx.udp6(fx.JP_BB, fx.REGISTRAR, sport, dport, p)
        out.append(eng.dissect(Frame(fx.T0 + i * 1000, len(data), len(data), data, fx.LINKTYPE_IPV6)))
    return out


def _no_bug(pkt: Packet) -> None:
    assert not [e for e in pkt.experts if "Dissector bug" in e.message], pkt.experts


def _udp_payload(pkt: Packet) -> tuple[int, bytes]:
    u = pkt.layer("udp")
    assert u is not None
    return u.offset + 8, pkt.data[u.offset + 8:]


# ---------------------------------------------------------------------------
# The draft's appendix


def test_appendix_clienthello_exact() -> None:
    """Appendix: 82 50 D01914BCC376A88FFECC50CA6017B0C1 59 01AB 16FEFD…019E … (427-byte ClientHello)."""
    pkt = _pkts(DATA / "draft_appendix.pcap")[1]
    _no_bug(pkt)
    start, payload = _udp_payload(pkt)
    assert payload == b"\x82\x50" + DRAFT["header"] + b"\x59\x01\xab" + DRAFT["client_hello"]
    assert pkt.protocols.endswith("udp:jpy:dtls:jp")  # jp: the post-dissector's layer
    assert pkt.get("jpy.form") == "jpy"
    assert pkt.get("jpy.elements") == 2
    assert pkt.get("jpy.header") == DRAFT["header"] and pkt.get("jpy.header.len") == 16
    assert pkt.get("jpy.content") == DRAFT["client_hello"] and pkt.get("jpy.content.len") == 427
    # §4.3.3: CBOR framing (array 1 + bstr heads 1 + 3) plus the 16-byte header.
    assert pkt.get("jpy.overhead") == 21
    h, c = pkt.nodes("jpy.header")[0], pkt.nodes("jpy.content")[0]
    assert (h.offset - start, h.length) == (2, 16)
    assert (c.offset - start, c.length) == (21, 427)
    # The content is handed to DTLS in place: the DTLS layer covers exactly the content bytes.
    d = pkt.layer("dtls")
    assert d is not None and (d.offset, d.length, d.src) == (c.offset, 427, 0)
    assert pkt.values("dtls.handshake.type") == [1]
    assert pkt.values("dtls.record.length") == [414]
    assert 0xC0FF in pkt.values("dtls.handshake.ciphersuite")  # TLS_ECJPAKE_WITH_AES_128_CCM_8
    assert not any(lay.malformed for lay in pkt.layers)
    assert "Client Hello" in pkt.info


def test_appendix_hello_verify_request_exact() -> None:
    """Appendix: the reply 82 50 <same header> 58 3C 16FEFD…002F … (60-byte HelloVerifyRequest)."""
    pkt = _pkts(DATA / "draft_appendix.pcap")[2]
    _no_bug(pkt)
    start, payload = _udp_payload(pkt)
    assert payload == b"\x82\x50" + DRAFT["header"] + b"\x58\x3c" + DRAFT["hello_verify_request"]
    assert pkt.get("jpy.header") == DRAFT["header"]
    assert pkt.get("jpy.content.len") == 60
    assert pkt.get("jpy.overhead") == 20
    assert pkt.values("dtls.handshake.type") == [3]
    assert pkt.get("dtls.handshake.cookie_length") == 32
    assert not any(lay.malformed for lay in pkt.layers)


# ---------------------------------------------------------------------------
# Finding the port


def test_found_by_heuristic_then_not_when_disabled_then_by_decode_as() -> None:
    path = DATA / "draft_appendix.pcap"
    assert _pkts(path)[1].layer("jpy") is not None
    off = _pkts(path, prefs=["jpy.heuristic:false"])[1]
    assert off.layer("jpy") is None and "data" in off.protocols.split(":")
    forced = _pkts(path, prefs=["jpy.heuristic:false"], decode_as=["udp.port==7634,jpy"])
    assert [p.get("jpy.form") for p in forced[1:3]] == ["jpy", "jpy"]


def test_found_by_the_port_learned_from_coap_discovery() -> None:
    """§6.1: ``<jpy://[addr]:port>;rt=brski.rjp`` names the Registrar's JPY endpoint."""
    pk = _pkts(DATA / "discovery_jpy.pcap", prefs=["jpy.heuristic:false"])
    assert pk[0].get("coap.discovery.port") == 7634
    assert [p.get("jpy.form") for p in pk[1:]] == ["jpy", "jpy"]
    assert pk[1].values("dtls.handshake.type") == [1]


def test_heuristic_leaves_other_cbor_alone() -> None:
    """A CBOR array whose content is not a DTLS record is not claimed (no decode-as here)."""
    pk = _dissect([b"\x82\x41\x00\x43abc", b"\x82\x50" + bytes(16) + b"\x4d" + b"\x01" * 13], decode_as=())
    for p in pk:
        _no_bug(p)
        assert p.layer("jpy") is None


# ---------------------------------------------------------------------------
# Lab captures: both forms, real stacks


def _lab(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((CAPTURES / f"{name}.keys" / "keys.json").read_text())


def test_legacy_form_names_the_pledge_of_the_pledge_leg() -> None:
    """Legacy §5.3: [ip, port, family 2, ifindex, content]; ip/port are the pledge-leg source."""
    pk = _pkts(CAPTURES / "jpy-legacy.pcapng")
    legacy = [p for p in pk if p.get("jpy.form") == "jpy-legacy"]
    assert len(legacy) == 64  # README: 64 relayed datagrams
    by_content: dict[tuple[bytes, bool], Packet] = {}
    for p in pk:
        if p.layer("jpy") is None and p.layer("dtls") is not None and p.layer("icmpv6") is None:
            by_content.setdefault((_udp_payload(p)[1], p.get("udp.dstport") == 5684), p)
    lab_ifindex = _lab("jpy-legacy")["join_proxy"]["ifindex"]
    for p in legacy:
        _no_bug(p)
        assert p.get("jpy.family") == 2 and p.get("jpy.ifindex") == lab_ifindex
        up = p.get("udp.dstport") == 7634
        twin = by_content[(p.get("jpy.content"), up)]
        ep = (twin.get("ipv6.src"), twin.get("udp.srcport")) if up else \
            (twin.get("ipv6.dst"), twin.get("udp.dstport"))
        assert (p.get("jpy.ip"), p.get("jpy.port")) == ep
        assert p.layer("dtls") is not None and not any(lay.malformed for lay in p.layers)


def test_header_key_decrypts_the_example_header() -> None:
    """§4.3.4 example header (family, ifindex, srcport, IID, zero word) with the lab JP's key."""
    key = _lab("jpy")["jp_header_key"]["hex"]
    ifindex = _lab("jpy")["join_proxy"]["ifindex"]
    pk = _pkts(CAPTURES / "jpy.pcapng", prefs=[f"jpy.header_key:{key}"])
    jpys = [p for p in pk if p.layer("jpy") is not None]
    assert len(jpys) == 37
    # The pledge-leg copy of each relayed datagram: same bytes, same direction (a lone ChangeCipherSpec
    # record can be byte-identical in both directions).
    plain: dict[tuple[bytes, bool], Packet] = {}
    for p in pk:
        if p.layer("jpy") is None and p.layer("dtls") is not None and p.layer("icmpv6") is None:
            plain.setdefault((_udp_payload(p)[1], p.get("udp.dstport") == 5684), p)
    for p in jpys:
        _no_bug(p)
        assert p.get("jpy.header.zero") == 0 and p.get("jpy.header.family") == 1
        assert p.get("jpy.header.ifindex") == ifindex
        up = p.get("udp.dstport") == 7634
        twin = plain[(p.get("jpy.content"), up)]
        addr = twin.get("ipv6.src") if up else twin.get("ipv6.dst")
        port = twin.get("udp.srcport") if up else twin.get("udp.dstport")
        assert p.get("jpy.header.pledge") == str(ipaddress.IPv6Address(addr))
        assert p.get("jpy.header.srcport") == port
        assert p.get("jpy.header.iid") == addr[8:]
        assert not [e for e in p.experts if e.group is Group.DECRYPTION]


def test_wrong_key_is_reported_not_guessed() -> None:
    pk = _pkts(CAPTURES / "jpy.pcapng", prefs=["jpy.header_key:000102030405060708090a0b0c0d0e0f"])
    p = next(p for p in pk if p.layer("jpy") is not None)
    _no_bug(p)
    assert p.get("jpy.header.pledge") is None
    msgs = [e.message for e in p.experts if e.group is Group.DECRYPTION]
    assert len(msgs) == 1 and "zero word" in msgs[0] and "wrong key" in msgs[0]
    assert p.layer("dtls") is not None  # the frame is still shown in full
    short = _pkts(DATA / "draft_appendix.pcap", prefs=["jpy.header_key:0001020304050607"])[1]
    assert any("16 bytes" in e.message for e in short.experts if e.group is Group.DECRYPTION)


# ---------------------------------------------------------------------------
# "2 or more", and broken input


def test_more_than_two_elements_accepted_and_flagged() -> None:
    """§4.3: the Registrar MUST verify "2 or more" elements and uses the first two."""
    ch = DRAFT["client_hello"]
    msg = b"\x84\x50" + DRAFT["header"] + b"\x59\x01\xab" + ch + b"\x01\x63abc"
    p = _dissect([msg])[0]
    _no_bug(p)
    assert p.get("jpy.elements") == 4 and p.get("jpy.extra_elements") == 2
    notes = [e for e in p.experts if e.severity is Severity.NOTE and "2 or more" in e.message]
    assert len(notes) == 1
    assert not any(lay.malformed for lay in p.layers)
    assert p.values("dtls.handshake.type") == [1]


@pytest.mark.parametrize("payload, rule", [
    # Content byte string claims more bytes than the datagram has.
    (b"\x82\x50" + bytes(16) + b"\x59\x01\xab" + b"\x16\xfe\xfd" + bytes(40), "runs past"),
    # Wrong element types: an integer where the header byte string goes.
    (b"\x82\x01\x4d\x16\xfe\xfd" + bytes(10), "matches neither"),
    # A legacy array whose family is neither 1 nor 2.
    (b"\x85\x50" + bytes(16) + b"\x19\x04\xd2\x09\x01\x4d\x16\xfe\xfd" + bytes(10), "family"),
    # Malformed CBOR: reserved additional information 28 in the header's head.
    (b"\x82\x5c" + bytes(20), "malformed CBOR: RFC 8949 §3: additional information 28 is reserved"),
    # Not a CBOR array at all.
    (b"\xa1\x01\x02", "not a CBOR array"),
    # Trailing bytes after the array.
    (b"\x82\x41\x00\x4d\x16\xfe\xfd" + bytes(10) + b"zz", "bytes after"),
])
def test_malformed_is_reported_and_the_frame_still_shown(payload: bytes, rule: str) -> None:
    p = _dissect([payload])[0]
    _no_bug(p)
    lay = p.layer("jpy")
    assert lay is not None and lay.malformed
    errs = [e.message for e in p.experts if e.group is Group.MALFORMED]
    assert any(rule in m for m in errs), errs
    assert p.layer("udp") is not None and "[Malformed" in p.info


def test_content_of_a_truncated_capture_is_still_offered_to_dtls() -> None:
    """A content element that is present goes to DTLS even when an element after it is broken."""
    ch = DRAFT["client_hello"]
    msg = b"\x83\x50" + DRAFT["header"] + b"\x59\x01\xab" + ch + b"\x5f"  # third element: indefinite bstr, cut
    p = _dissect([msg])[0]
    _no_bug(p)
    assert p.layer("jpy").malformed  # type: ignore[union-attr]
    assert p.values("dtls.handshake.type") == [1]
