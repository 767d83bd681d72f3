"""CoAP (RFC 7252) with RFC 8974 extended tokens: the shared message description and the dissector.

Bytes come from libcoap captures (tests/data/coap, made by make_fixtures.sh) where a real stack can
make them; messages no deployed stack makes (extended tokens, malformed headers, discovery answers
of the join-proxy draft) are built in the test with the RFC section cited.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coap_support import _udp, dissect_bytes, fixture, packets
from jpdissect import linkformat
from jpdissect.capture import open_capture
from jpdissect.coapmsg import (
    CONTENT_FORMAT,
    GET,
    MAX_TOKEN_LEN,
    OBSERVE,
    OPTIONS,
    OSCORE,
    POST,
    PROXY_SCHEME,
    URI_HOST,
    URI_PATH,
    CoapMessage,
    MsgType,
    content_format_name,
    decode_value,
    encode_value,
    option_header,
    read_option_header,
    read_token_length,
)
from jpdissect.dissectors import coap as coapdis
from jpdissect.engine import Engine
from jpdissect.model import Group, Packet


def _no_bug(pkt: Packet) -> None:
    assert not any("Dissector bug" in e.message for e in pkt.experts), [str(e) for e in pkt.experts]


def _libcoap_messages() -> list[bytes]:
    out = []
    with open_capture(fixture("libcoap.pcap")) as rd:
        for fr in rd:
            u = _udp(fr.data)
            assert u is not None
            out.append(bytes(fr.data[u[4]:u[5]]))
    return out


# ---------------------------------------------------------------------------
# coapmsg: one description for both directions


def test_libcoap_messages_decode_and_reencode_byte_for_byte() -> None:
    """Every message libcoap sent re-encodes to the same bytes: encode and decode agree on the layout."""
    msgs = _libcoap_messages()
    assert len(msgs) >= 70
    for raw in msgs:
        msg, errors = CoapMessage.decode(raw)
        assert msg is not None and not errors, (raw.hex(), errors)
        assert msg.encode() == raw


def test_builder_types_values_from_the_option_table() -> None:
    msg = CoapMessage(MsgType.CON, GET, 0x1234, b"\xaa\xbb").set_path("/.well-known/core")
    msg.add(CONTENT_FORMAT, 60).add(URI_HOST, "example.org").add(OBSERVE, 0)
    raw = msg.encode()
    # RFC 7252 §3: 0x42 = Ver 1, CON, TKL 2; options sorted: Uri-Host(3), Observe(6), Uri-Path(11) x2, CF(12)
    assert raw[:4] == bytes.fromhex("42011234") and raw[4:6] == b"\xaa\xbb"
    back, errors = CoapMessage.decode(raw)
    assert not errors and back is not None
    assert back.uri_path == "/.well-known/core" and back.content_format == 60
    assert back.opt(URI_HOST) == "example.org" and back.opt(OBSERVE) == 0
    assert encode_value(OBSERVE, 0) == b""  # RFC 7252 §3.2: uint 0 is the empty string
    assert decode_value(65001, b"\x01") == b"\x01"  # unknown options stay opaque
    with pytest.raises(TypeError):
        encode_value(URI_PATH, 5)


@pytest.mark.parametrize(("value", "header"), [
    # RFC 7252 §3.1: nibble < 13 literal; 13 -> 1 extra byte (value - 13); 14 -> 2 extra bytes (value - 269)
    ((0, 0), "00"), ((12, 12), "cc"), ((13, 0), "d000"), ((268, 1), "d1ff"), ((269, 2), "e20000"),
    ((270, 13), "ed000100"), ((2050, 300), "ee06f5001f"), ((65804, 0), "e0ffff"),
])
def test_rfc7252_3_1_option_header_extensions(value: tuple[int, int], header: str) -> None:
    raw = option_header(*value)
    assert raw.hex() == header
    delta, length, hlen, err = read_option_header(raw, 0, len(raw))
    assert (delta, length, hlen, err) == (value[0], value[1], len(raw), None)


def _token_msg(n: int) -> bytes:
    """Build a CON GET with an n-byte token by hand, per RFC 8974 §2.1 (not with the encoder)."""
    token = bytes(i & 0xFF for i in range(n))
    if n < 13:
        tkl, ext = n, b""
    elif n < 269:
        tkl, ext = 13, bytes([n - 13])            # §2.1: TKL 13, one extra byte = length - 13
    else:
        tkl, ext = 14, struct.pack(">H", n - 269)  # §2.1: TKL 14, two extra bytes = length - 269
    return bytes([0x40 | tkl, 0x01, 0x12, 0x34]) + ext + token + bytes([0xB4]) + b"time"


@pytest.mark.parametrize("n", [0, 8, 9, 12, 13, 268, 269, 270, 65804])
def test_rfc8974_2_1_token_lengths(n: int) -> None:
    raw = _token_msg(n)
    msg, errors = CoapMessage.decode(raw)
    assert not errors and msg is not None
    assert msg.token == bytes(i & 0xFF for i in range(n)) and msg.uri_path == "/time"
    assert msg.encode() == raw  # the encoder picks the same TKL form as the RFC
    # The dissector on the same bytes. The 65804-byte token cannot travel in one UDP datagram over IPv4
    # (65507 bytes max) -- only in an IPv6 jumbogram -- so it is checked at the dissector level.
    pkt = dissect_bytes(raw)
    _no_bug(pkt)
    assert not pkt.layer("coap").malformed
    assert pkt.get("coap.token_len") == n
    assert pkt.get("coap.token", b"") == msg.token
    assert pkt.get("coap.opt.uri_path") == "time"
    assert pkt.has("coap.token_extended") == (n > 8)
    assert pkt.get("coap.tkl") == (n if n < 13 else 13 if n < 269 else 14)
    if n >= 13:
        assert pkt.get("coap.token_len_ext") == (n - 13 if n < 269 else n - 269)


def test_rfc8974_2_1_token_too_long_to_encode() -> None:
    with pytest.raises(ValueError):
        CoapMessage(token=bytes(MAX_TOKEN_LEN + 1)).encode()


def test_rfc8974_2_1_tkl_15_is_a_format_error_and_frame_still_shown() -> None:
    raw = bytes([0x4F, 0x01, 0x00, 0x01]) + bytes(20)  # TKL 15 (RFC 8974 §2.1: message format error)
    msg, errors = CoapMessage.decode(raw)
    assert errors and "TKL 15" in errors[0].message
    assert read_token_length(raw, 0, len(raw))[2] is not None
    pkt = dissect_bytes(raw)
    _no_bug(pkt)
    lay = pkt.layer("coap")
    assert lay is not None and lay.malformed
    assert pkt.get("coap.mid") == 1 and pkt.get("coap.code") == GET
    assert any(e.group is Group.MALFORMED and "TKL 15" in e.message for e in pkt.experts)
    assert "MID:1" in pkt.info


@pytest.mark.parametrize(("raw", "rule"), [
    ("4d010001", "TKL 13 needs one extension byte"),                 # RFC 8974 §2.1
    ("4e010001ff", "TKL 14 needs two extension bytes"),              # RFC 8974 §2.1
    ("4d01000105aabb", "token of 18 bytes runs past"),               # RFC 8974 §2.1
    ("41010001aaf0", "option delta 15 is reserved"),                 # RFC 7252 §3.1
    ("41010001aa1f", "option length 15 is reserved"),                # RFC 7252 §3.1
    ("41010001aad1", "delta extension (1 byte) cut short"),          # RFC 7252 §3.1
    ("41010001aa1e00", "length extension (2 bytes) cut short"),      # RFC 7252 §3.1
    ("41010001aab474", "value of 4 bytes runs past"),                # RFC 7252 §3.1
    ("41010001aaff", "payload marker followed by a zero-length payload"),  # RFC 7252 §3
    ("40000001ff00", "Empty message"),                               # RFC 7252 §4.1
    ("41000001aa", "Empty message (code 0.00) with a token"),        # RFC 7252 §4.1
    ("70450001", "Reset message must be Empty"),                     # RFC 7252 §4.2
    ("60010001", "Acknowledgement cannot carry a request"),          # RFC 7252 §4.2
    ("50000001", "Non-confirmable message cannot be Empty"),         # RFC 7252 §4.1
    ("80010001", "version 2"),                                       # RFC 7252 §3
    ("4001", "shorter than the 4-byte header"),                      # RFC 7252 §3
    ("40010001e0ffff", "exceeds 65535"),                             # RFC 7252 §3.1
])
def test_message_format_errors_are_expert_info(raw: str, rule: str) -> None:
    data = bytes.fromhex(raw)
    pkt = dissect_bytes(data)
    _no_bug(pkt)
    assert pkt.layer("coap") is not None
    assert any(rule in e.message for e in pkt.experts), [str(e) for e in pkt.experts]
    assert any(lay.malformed for lay in pkt.layers)


def test_option_rule_warnings() -> None:
    # RFC 7252 §5.4.3 length bounds (Content-Format is 0-2 bytes) and §5.4.5 repeat rules (Uri-Host).
    msg = CoapMessage(MsgType.CON, GET, 5, b"\x01").add(URI_HOST, "a").add(URI_HOST, "b")
    msg.options.append((CONTENT_FORMAT, b"\x00\x00\x00"))
    pkt = dissect_bytes(msg.encode())
    texts = [e.message for e in pkt.experts]
    assert any("Content-Format length 3 outside 0..2" in t for t in texts)
    assert any("Uri-Host is not repeatable" in t for t in texts)
    # decode reports the length error too, from the same table
    assert any("outside 0..2" in e.message for e in CoapMessage.decode(msg.encode())[1])


def test_unknown_options_show_number_and_rfc7252_5_4_6_bits() -> None:
    pkts = {p.number: p for p in packets(fixture("libcoap.pcap"))}
    # libcoap's -O 2050 and -O 65000 request (frame 49)
    pkt = next(p for p in pkts.values() if 2050 in p.values("coap.opt.number"))
    nums = pkt.values("coap.opt.number")
    crit = dict(zip(nums, pkt.values("coap.opt.critical"), strict=True))
    unsafe = dict(zip(nums, pkt.values("coap.opt.unsafe"), strict=True))
    nck = dict(zip(nums, pkt.values("coap.opt.no_cache_key"), strict=True))
    assert (crit[2050], unsafe[2050], nck[2050]) == (False, True, False)     # 2050 = ...0000 0010
    assert (crit[65000], unsafe[65000], nck[65000]) == (False, False, False)  # 65000 = ...1110 1000
    assert (crit[11], unsafe[11]) == (True, True)                            # Uri-Path
    assert pkt.values("coap.opt.unknown") == [b"x", b"\x01\x02"]
    assert "#2: Unknown Option (2050)" in pkt.values("coap.opt.name")
    # Size1 (60 = 0b111100) is NoCacheKey per RFC 7252 §5.4.6
    block1 = next(p for p in pkts.values() if 60 in p.values("coap.opt.number"))
    assert dict(zip(block1.values("coap.opt.number"), block1.values("coap.opt.no_cache_key"),
                    strict=True))[60] is True


def test_every_registered_option_has_a_field_and_format() -> None:
    from jpdissect.coapmsg import OPTIONS
    from jpdissect.model import FIELDS

    for num, d in OPTIONS.items():
        assert f"coap.opt.{d.field}" in FIELDS, num
        assert d.min_len <= d.max_len
    assert content_format_name(60) == "application/cbor"
    assert content_format_name(40) == "application/link-format"
    assert content_format_name(836) == "application/voucher+cose"
    assert content_format_name(62) == "application/multipart-core"
    assert content_format_name(286) == "application/pkcs10"
    assert content_format_name(287) == "application/pkix-cert"
    assert content_format_name(281) == "application/pkcs7-mime; smime-type=certs-only"


# ---------------------------------------------------------------------------
# The dissector on libcoap traffic


@pytest.fixture(scope="module")
def libcoap() -> dict[int, Packet]:
    return {p.number: p for p in packets(fixture("libcoap.pcap"))}


def test_info_column_like_wireshark(libcoap: dict[int, Packet]) -> None:
    assert libcoap[1].info.startswith("CON, MID:") and libcoap[1].info.endswith(", GET, TKN:01, /.well-known/core")
    assert libcoap[2].protocol == "CoAP"
    assert ", 2.05 Content, TKN:01, /.well-known/core" in libcoap[2].info
    assert "TKN:63 61 66 66, /time" in libcoap[5].info  # -T cafe


def test_tracking_acks_responses_and_observe(libcoap: dict[int, Packet]) -> None:
    assert libcoap[2].get("coap.ack_to") == 1 and libcoap[2].get("coap.response_to") == 1
    assert libcoap[2].get("coap.response_time") == libcoap[2].ts_ns - libcoap[1].ts_ns
    obs_req = next(n for n, p in libcoap.items() if p.get("coap.opt.observe") == 0 and p.get("coap.code") == 1)
    notes = [p for p in libcoap.values() if p.get("coap.observe.registration_in") == obs_req]
    assert len(notes) >= 2
    assert [p.get("coap.observe.notification") for p in notes] == list(range(1, len(notes) + 1))
    for p in notes:  # each CON notification is ACKed by an Empty ACK matched by MID
        ack = next(q for q in libcoap.values() if q.get("coap.ack_to") == p.number)
        assert ack.get("coap.code") == 0


def test_block1_reassembly(libcoap: dict[int, Packet]) -> None:
    last = next(p for p in libcoap.values() if p.get("coap.block.reassembled.length") == 330)
    body = last.sources[-1].data
    expected = "".join(f"block1-{i:03d} " for i in range(1, 31)).encode()
    assert body == expected  # what make_fixtures.sh gave coap-client -e
    assert last.get("coap.block.count") == 11 and last.get("coap.payload_length") == 330
    assert last.get("coap.opt.size1") == 330
    frames = last.values("coap.block")
    assert frames == sorted(frames) and frames[-1] == last.number


def test_block2_reassembly_link_format(libcoap: dict[int, Packet]) -> None:
    last = next(p for p in libcoap.values()
                if p.get("coap.block.reassembled.length") and p.get("coap.opt.ctype") == "application/link-format")
    assert last.get("coap.block.reassembled.length") == last.get("coap.opt.size2") == 151
    assert last.values("coap.link.target") == ["/", "/time", "/async", "/example_data"]
    single = libcoap[2]  # the same resource without blocks
    assert single.values("coap.link.target") == last.values("coap.link.target")
    assert "ticks" in single.values("coap.link.rt")


def test_cbor_payload_in_diagnostic_notation(libcoap: dict[int, Packet]) -> None:
    cb = [p for p in libcoap.values() if p.get("coap.opt.content_format") == 60]
    assert len(cb) == 2  # the PUT and the GET response
    assert all(p.get("coap.payload.cbor") == '{"a": 1, "b": [2, 3]}' for p in cb)


def test_invalid_cbor_is_expert_info_not_a_crash() -> None:
    msg = CoapMessage(MsgType.ACK, 69, 9, b"\x09").add(CONTENT_FORMAT, 60)
    msg.payload = bytes.fromhex("9f0102")  # RFC 8949 §3.2.2: indefinite array without break
    pkt = dissect_bytes(msg.encode())
    _no_bug(pkt)
    assert any("Invalid CBOR payload" in e.message for e in pkt.experts)


def test_diagnostic_text_of_error_responses(libcoap: dict[int, Packet]) -> None:
    nf = next(p for p in libcoap.values() if p.get("coap.code") == 132)
    assert nf.get("coap.payload.text") == "Not Found"  # RFC 7252 §5.5.2 diagnostic payload


def test_cojp_proxy_request_marked(libcoap: dict[int, Packet]) -> None:
    p = next(p for p in libcoap.values() if p.has("coap.opt.proxy_scheme"))
    assert p.get("coap.opt.stateless_proxy") == bytes.fromhex("deadbeef")
    assert p.scratch.get("coap.cojp") == "proxy-request"


# ---------------------------------------------------------------------------
# RFC 9031 CoJP, coap-dtls, discovery: built per the specs


def test_rfc9031_join_request_through_stateless_proxy() -> None:
    eng = Engine(tree=True)
    oscore_opt = bytes.fromhex("0905" + "25")  # RFC 8613 §6.1: PIV 5, kid 0x25
    # RFC 9031 §8.1: the pledge POSTs to its JP with Proxy-Scheme "coap" and Uri-Host "6tisch.arpa".
    req = CoapMessage(MsgType.CON, POST, 1, b"\x01").add(URI_HOST, "6tisch.arpa").add(OSCORE, oscore_opt)
    req.add(PROXY_SCHEME, "coap")
    req.payload = bytes(16)
    p1 = dissect_bytes(req.encode(), eng=eng, number=1)
    assert p1.scratch["coap.cojp"] == "proxy-request" and p1.get("coap.cojp") == "proxy-request"
    # RFC 9031 §5 / RFC 8974 §3: the stateless JP forwards it with its state in an extended token.
    state = bytes(range(20))
    fwd = CoapMessage(MsgType.NON, POST, 2, state).add(OSCORE, oscore_opt)
    fwd.payload = bytes(16)
    p2 = dissect_bytes(fwd.encode(), eng=eng, number=2)
    assert p2.scratch["coap.cojp"] == "relayed-request" and p2.get("coap.token") == state
    assert p2.has("coap.token_extended")
    resp = CoapMessage(MsgType.NON, 68, 3, state).add(OSCORE, b"")
    resp.payload = bytes(12)
    p3 = Packet(3, 1000, resp.encode(), 0, 0, tree=True)
    p3.cap = eng
    # the JRC answers the JP: addresses/ports swapped
    p3.net_src, p3.net_dst, p3.srcport, p3.dstport = b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01", 5683, 40000
    eng.call("coap", p3, p3.data, 0, len(p3.data), 0)
    assert p3.scratch["coap.cojp"] == "relayed-response"
    assert p3.get("coap.response_to") == 2 and p3.get("oscore.request_piv") == b"\x05"


def test_coap_dtls_payload_is_flagged() -> None:
    # IOTOPS Oct 2022 "coap-dtls": an outer CoAP message carrying a DTLS record (RFC 6347 §4.1 header).
    record = bytes([22, 0xFE, 0xFD]) + bytes(8) + struct.pack(">H", 4) + b"\x01\x00\x00\x00"
    msg = CoapMessage(MsgType.NON, POST, 4, bytes(range(10)))
    msg.payload = record
    pkt = dissect_bytes(msg.encode())
    _no_bug(pkt)
    assert pkt.scratch.get("coap.dtls_payload") is True and pkt.get("coap.dtls_payload") is True


def _discovery_answer() -> bytes:
    # draft-ietf-anima-constrained-join-proxy §6 discovery answers in RFC 6690 link format.
    body = (b'<jpy://[fd00::1]:7634>;rt=brski.rjp,<coaps://[fd00::1]:5686>;rt=brski.jp,'
            b'</.well-known/brski>;rt=brski;brski-jp=8485')
    msg = CoapMessage(MsgType.ACK, 69, 11, b"\x0b").add(CONTENT_FORMAT, 40)
    msg.payload = body
    return msg.encode()


@pytest.mark.parametrize("tree", [True, False])
def test_join_proxy_discovery_learns_ports(tree: bool) -> None:
    eng = Engine(tree=tree)
    pkt = dissect_bytes(_discovery_answer(), eng=eng, tree=tree)
    _no_bug(pkt)
    assert eng.learned["udp.port"] == {7634: "jpy", 5686: "dtls", 8485: "dtls"}
    if tree:
        assert pkt.values("coap.discovery.rt") == ["brski.rjp", "brski.jp", "brski"]
        assert pkt.values("coap.discovery.scheme") == ["jpy", "coaps"]
        assert pkt.values("coap.discovery.addr") == ["fd00::1", "fd00::1"]
        assert pkt.values("coap.discovery.port") == [7634, 5686]
        assert pkt.get("coap.discovery.brski_jp") == 8485


def test_rfc6690_5_examples() -> None:
    links, errs = linkformat.parse('</sensors/temp>;if="sensor",</sensors/light>;if="sensor"')
    assert not errs and [(lk.target, lk.params) for lk in links] == [
        ("/sensors/temp", [("if", "sensor")]), ("/sensors/light", [("if", "sensor")])]
    text = ('</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor",'
            '</sensors/light>;rt="light-lux";if="sensor",'
            '<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",'
            '</t>;anchor="/sensors/temp";rel="alternate"')
    links, errs = linkformat.parse(text)
    assert not errs and len(links) == 5
    assert links[0].first("ct") == "40" and links[0].first("title") == "Sensor Index"
    assert links[3].target == "http://www.example.com/sensors/t123" and links[3].first("rel") == "describedby"
    assert text[links[1].start:links[1].end] == '</sensors/temp>;rt="temperature-c";if="sensor"'
    links, errs = linkformat.parse('</a>;obs;rt="x y",bad,</b>')
    assert [lk.target for lk in links] == ["/a", "/b"] and links[0].types() == ["x", "y"] and errs


# ---------------------------------------------------------------------------
# Heuristic, robustness, speed


def test_heuristic_claims_coap_and_not_random_udp() -> None:
    for raw in _libcoap_messages():
        msg, _ = CoapMessage.decode(raw)
        assert msg is not None
        registered = all(num in OPTIONS or num == 40 for num, _v in msg.options)
        # strict mode (the default) only claims messages whose options are all known
        assert coapdis.looks_like_coap(raw, 0, len(raw)) == registered, raw.hex()
        assert coapdis.looks_like_coap(raw, 0, len(raw), strict=False), raw.hex()
    rnd = random.Random(8974)
    claimed = 0
    trials = 20_000
    for _ in range(trials):
        n = rnd.randint(4, 64)
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        claimed += coapdis.looks_like_coap(data, 0, n)
    assert claimed / trials < 0.005, claimed
    dtls = bytes([22, 0xFE, 0xFD]) + bytes(10)
    jpy = bytes.fromhex("8250") + bytes(16) + bytes.fromhex("4416fefd00")
    assert not coapdis.looks_like_coap(dtls, 0, len(dtls))
    assert not coapdis.looks_like_coap(jpy, 0, len(jpy))


@given(st.binary(min_size=0, max_size=80))
@settings(max_examples=400, deadline=None)
def test_random_bytes_never_raise(data: bytes) -> None:
    _no_bug(dissect_bytes(data))


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_libcoap_messages_never_raise(data: st.DataObject) -> None:
    msgs = _MSGS or _MSGS.extend(_libcoap_messages()) or _MSGS
    raw = bytearray(data.draw(st.sampled_from(msgs)))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for tree in (True, False):
        _no_bug(dissect_bytes(bytes(raw[:cut]), tree=tree))


_MSGS: list[bytes] = []


def test_no_cbor_or_link_format_work_without_tree_or_primed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Speed rule: the payload decoders only run for the tree or primed fields (discovery aside)."""
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("decoder called in fields mode")

    monkeypatch.setattr(coapdis.cbor, "diag_all", boom)
    monkeypatch.setattr(coapdis.linkformat, "parse", boom)
    pk = list(packets(fixture("libcoap.pcap"), tree=False, fields=["coap.mid", "coap.opt.uri_path"]))
    for p in pk:
        _no_bug(p)
    assert len(pk) >= 70 and all(p.has("coap.mid") for p in pk)
    assert not any(p.has("coap.payload.cbor") for p in pk)


def test_ack_duplicate_and_retransmission_by_mid() -> None:
    eng = Engine(tree=True)
    con = CoapMessage(MsgType.CON, GET, 77, b"\x01").set_path("/x").encode()
    p1 = dissect_bytes(con, eng=eng, number=1, ts_ns=0)
    p2 = dissect_bytes(con, eng=eng, number=2, ts_ns=2_000_000_000)  # RFC 7252 §4.2 retransmission
    assert not p1.has("coap.retransmitted")
    assert p2.has("coap.retransmitted") and p2.get("coap.request_first_in") == 1
    again = dissect_bytes(con, eng=eng, number=1, ts_ns=0)  # re-dissecting frame 1 (TUI) changes nothing
    assert not again.has("coap.retransmitted")


@pytest.mark.parametrize("tree", [True, False])
def test_discovery_answer_from_aiocoap_registers_ports(tree: bool) -> None:
    """A real discovery exchange (aiocoap, make_discovery.py), then datagrams to the learned ports."""
    from jpdissect.dissectors.registry import REGISTRY

    pk = list(packets(fixture("discovery_aiocoap.pcap"), tree=tree,
                      fields=["coap.discovery.rt", "coap.discovery.port", "coap.discovery.brski_jp"]))
    ans = pk[1]
    assert ans.values("coap.discovery.rt") == ["brski.rjp", "brski.jp", "brski"]
    assert ans.values("coap.discovery.port") == [7634, 5686]
    assert ans.get("coap.discovery.brski_jp") == 8485
    assert ans.cap.learned["udp.port"] == {7634: "jpy", 5686: "dtls", 8485: "dtls"}
    if "jpy" in REGISTRY.named:
        assert pk[2].layer("jpy") is not None
    if "dtls" in REGISTRY.named:
        assert pk[3].layer("dtls") is not None and pk[4].layer("dtls") is not None


@pytest.mark.parametrize(("code", "rule"), [
    (0x21, "code class 1 is reserved"), (0x61, "code class 3 is reserved"),
    (0xC1, "code class 6 is reserved"), (0xE2, "signaling code (7.xx)"),  # RFC 7252 §12.1, RFC 8323 §5
])
def test_reserved_code_classes_are_flagged(code: int, rule: str) -> None:
    pkt = dissect_bytes(bytes([0x40, code, 0, 1]))
    assert any(rule in e.message for e in pkt.experts)
