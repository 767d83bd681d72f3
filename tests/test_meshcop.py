"""Thread MeshCoP relay (c/rx, c/tx, c/je) and TLVs: messages in OpenThread's layouts, the real
OpenThread radio capture, field names as Wireshark's, broken input.

Fixtures: ``tests/data/jp/openthread_relay.pcap`` (hand-assembled per OpenThread ``joiner_router.cpp``,
``commissioner.cpp`` and ot-commissioner's ``SendRlyTx``; see ``make_fixtures.py``), the shared
OpenThread capture ``thread_two_joiners.pcapng`` (four ot-cli-ftd nodes, two joiners) and the lab's
``captures/thread-relay.pcapng``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from jpdissect.api import packets
from jpdissect.capture import Frame
from jpdissect.dissectors import load_all
from jpdissect.dissectors.registry import REGISTRY
from jpdissect.engine import Engine
from jpdissect.model import FIELDS, Group, Packet, unprime_all

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "jp"
CAPTURES = ROOT / "captures"
NETWORK_KEY = "17c627a33d5927bf887ae312092611b7"
THREAD_CAPTURE_CANDIDATES = (
    ROOT / "tests" / "data" / "thread" / "thread_two_joiners.pcapng",
    Path("/work/shared/captures/thread/thread_two_joiners.pcapng"),
)

_spec = importlib.util.spec_from_file_location("jp_fixtures", DATA / "make_fixtures.py")
assert _spec is not None and _spec.loader is not None
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
DRAFT = fx.draft_values()


def _pkts(path: Path, prefs: Iterable[str] = ()) -> list[Packet]:
    return list(packets(str(path), prefs=list(prefs), tree=True))


def _no_bug(pkt: Packet) -> None:
    assert not [e for e in pkt.experts if "Dissector bug" in e.message], pkt.experts


def _tmf(tlvs: bytes, uri: str = "c/rx") -> tuple[Engine, Packet]:
    load_all()
    unprime_all()
    eng = Engine(tree=True)
    data = fx.udp6(fx.JR_RLOC, fx.COMM_RLOC, fx.TMF_PORT, fx.TMF_PORT, fx.tmf(uri, 1, b"\x01\x02", tlvs))
    return eng, eng.dissect(Frame(fx.T0, len(data), len(data), data, fx.LINKTYPE_IPV6))


def _thread_capture() -> Path | None:
    for p in THREAD_CAPTURE_CANDIDATES:
        if p.exists():
            return p
    return None


# ---------------------------------------------------------------------------
# OpenThread layouts


def test_rx_as_the_joiner_router_writes_it() -> None:
    """joiner_router.cpp HandleUdpReceive: port, IID, locator, then the ExtendedTlv DTLS encapsulation."""
    p = _pkts(DATA / "openthread_relay.pcap")[0]
    _no_bug(p)
    assert p.protocols.removesuffix(":jp").endswith("udp:coap:meshcop:dtls")
    assert p.get("meshcop.uri") == "c/rx"
    assert p.values("meshcop.tlv.type") == [18, 19, 20, 17]
    assert p.values("meshcop.tlv.len8") == [2, 8, 2, 0xFF]
    assert p.values("meshcop.tlv.len16") == [427]
    assert p.get("meshcop.tlv.udp_port") == 1000
    assert p.get("meshcop.tlv.iid") == fx.JOINER_IID
    assert p.get("meshcop.tlv.jr_locator") == b"\x50\x00"
    assert p.get("meshcop.jr_rloc16") == 0x5000
    # The joiner's link-local address: fe80::/64 + the Joiner IID.
    assert p.get("meshcop.joiner_addr") == ipaddress.IPv6Address("fe80::9033:5c4b:3208:30fb").packed
    # The encapsulated datagram goes to DTLS exactly where the TLV value is.
    enc = [n for n in p.nodes("meshcop.tlv.type") if n.value == 17][0]
    d = p.layer("dtls")
    assert d is not None and (d.offset, d.length) == (enc.offset + 4, 427)
    assert p.get("dtls.handshake.type") == 1 and 0xC0FF in p.values("dtls.handshake.ciphersuite")
    assert not any(lay.malformed for lay in p.layers)
    assert p.info.startswith("c/rx [fe80::9033:5c4b:3208:30fb]:1000 rloc16 0x5000")


def test_tx_with_and_without_kek() -> None:
    """commissioner.cpp SendRelayTransmit: the KEK only in the c/tx with JOIN_FIN.rsp, before the DTLS."""
    load_all()
    unprime_all()
    eng = Engine(tree=True)
    from jpdissect.capture import open_capture

    with open_capture(str(DATA / "openthread_relay.pcap")) as rd:
        pk = [eng.dissect(f) for f in rd]
    no_kek, kek = pk[1], pk[2]
    for p in (no_kek, kek):
        _no_bug(p)
        assert p.get("meshcop.uri") == "c/tx"
        assert not any(lay.malformed for lay in p.layers)
    assert no_kek.values("meshcop.tlv.type") == [18, 19, 20, 17]
    assert no_kek.get("meshcop.tlv.kek") is None
    assert no_kek.values("dtls.handshake.type") == [3]
    assert kek.values("meshcop.tlv.type") == [18, 19, 20, 21, 17]
    assert kek.get("meshcop.tlv.kek") == fx.KEK
    assert kek.get("dtls.record.content_type") == 23
    # Stored for the 802.15.4 dissector (JOIN_ENT is MAC-secured with it).
    assert eng.state["thread.kek"] == fx.KEK
    # ot-commissioner's order: port, locator, IID, a short DTLS Encapsulation, KEK last.
    otc = pk[4]
    _no_bug(otc)
    assert otc.values("meshcop.tlv.type") == [18, 20, 19, 17, 21]
    assert otc.values("meshcop.tlv.len16") == []
    assert otc.get("meshcop.tlv.kek") == fx.KEK and otc.get("meshcop.tlv.iid") == fx.JOINER_IID


def test_extended_length_for_a_300_byte_flight() -> None:
    """A TLV value of 255 bytes or more needs the 0xFF escape and a 2-byte length."""
    p = _pkts(DATA / "openthread_relay.pcap")[3]
    _no_bug(p)
    enc = [n for n in p.nodes("meshcop.tlv.type") if n.value == 17][0]
    assert p.values("meshcop.tlv.len16") == [300]
    d = p.layer("dtls")
    assert d is not None and (d.offset, d.length) == (enc.offset + 4, 300)
    assert d.offset + 300 == len(p.data)
    assert p.values("dtls.handshake.type") == [2, 12, 14]
    assert not any(lay.malformed for lay in p.layers)


# ---------------------------------------------------------------------------
# TLVs in general


def test_unknown_tlv_shown_raw() -> None:
    tlvs = fx.tlv(18, b"\x03\xe8") + fx.tlv(19, fx.JOINER_IID) + fx.tlv(20, b"\x50\x00") + \
        fx.tlv(200, b"\xaa\xbb\xcc") + fx.tlv(17, DRAFT["hello_verify_request"], extended=True)
    _eng, p = _tmf(tlvs)
    _no_bug(p)
    assert p.values("meshcop.tlv.type") == [18, 19, 20, 200, 17]
    assert p.values("meshcop.tlv.unknown") == [b"\xaa\xbb\xcc"]
    assert p.values("dtls.handshake.type") == [3]
    assert not any(lay.malformed for lay in p.layers)


@pytest.mark.parametrize("tlvs, rule", [
    # Joiner IID missing: OpenThread's HandleRelayTransmit would drop it (Tlv::Find fails).
    (fx.tlv(18, b"\x03\xe8") + fx.tlv(20, b"\x50\x00") + fx.tlv(17, b"\x16\xfe\xfd" + bytes(10)),
     "missing Joiner IID"),
    # A fixed-length TLV of the wrong length.
    (fx.tlv(18, b"\x03") + fx.tlv(19, fx.JOINER_IID) + fx.tlv(20, b"\x50\x00"), "the Thread spec fixes 2"),
    # Extended length claiming more than is there.
    (fx.tlv(18, b"\x03\xe8") + b"\x11\xff\x01\x00" + bytes(10), "runs past"),
    # Header cut in the middle of the extended length.
    (fx.tlv(18, b"\x03\xe8") + b"\x11\xff\x01", "extended length"),
])
def test_broken_tlvs_reported_frame_still_shown(tlvs: bytes, rule: str) -> None:
    _eng, p = _tmf(tlvs)
    _no_bug(p)
    lay = p.layer("meshcop")
    assert lay is not None and lay.malformed
    assert any(rule in e.message for e in p.experts if e.group is Group.MALFORMED), p.experts
    assert p.get("meshcop.tlv.type") == 18  # what could be read is shown


def test_field_names_follow_wireshark() -> None:
    """Every ``thread_meshcop.tlv*`` field of Wireshark 4.0 exists here as ``meshcop.tlv*``, where
    we decode that TLV (the two booleans about length checks are expert info here instead)."""
    load_all()
    from jpdissect.dissectors import meshcop  # noqa: F401

    ws = ["tlv", "tlv.type", "tlv.len8", "tlv.len16", "tlv.unknown", "tlv.channel_page", "tlv.channel",
          "tlv.pan_id", "tlv.xpan_id", "tlv.net_name", "tlv.pskc", "tlv.master_key", "tlv.net_key_seq_ctr",
          "tlv.ml_prefix", "tlv.steering_data", "tlv.ba_locator", "tlv.commissioner_id",
          "tlv.commissioner_sess_id", "tlv.sec_policy_rot", "tlv.sec_policy_o", "tlv.sec_policy_n",
          "tlv.sec_policy_r", "tlv.sec_policy_c", "tlv.sec_policy_b", "tlv.state", "tlv.active_tstamp",
          "tlv.pending_tstamp", "tlv.udp_port", "tlv.iid", "tlv.jr_locator", "tlv.kek",
          "tlv.provisioning_url", "tlv.vendor_name", "tlv.vendor_model", "tlv.vendor_sw_ver",
          "tlv.vendor_stack_ver_oui", "tlv.vendor_stack_ver_build", "tlv.vendor_stack_ver_rev",
          "tlv.vendor_stack_ver_min", "tlv.vendor_stack_ver_maj", "tlv.udp_encap_src_port",
          "tlv.udp_encap_dst_port", "tlv.ipv6_addr", "tlv.delay_timer", "tlv.chan_mask",
          "tlv.chan_mask_page", "tlv.chan_mask_len", "tlv.chan_mask_mask", "tlv.count", "tlv.period",
          "tlv.scan_duration", "tlv.energy_list", "tlv.discovery_req_ver", "tlv.discovery_req_j",
          "tlv.discovery_rsp_ver", "tlv.discovery_rsp_n"]
    missing = [f"meshcop.{w}" for w in ws if f"meshcop.{w}" not in FIELDS]
    assert not missing
    if shutil.which("tshark") is None:
        return
    out = subprocess.run(["tshark", "-G", "fields"], capture_output=True, text=True, timeout=120).stdout
    theirs = {line.split("\t")[2] for line in out.splitlines()
              if line.startswith("F\t") and line.split("\t")[2].startswith("thread_meshcop.tlv.")}
    extra = {"thread_meshcop.tlv.el_count"}  # Wireshark's Energy List subtree counter
    assert {t.replace("thread_meshcop.", "meshcop.") for t in theirs - extra} <= set(FIELDS)


def test_tmf_and_joiner_ports_are_registered() -> None:
    load_all()
    assert REGISTRY.tables["udp.port"][61631] == "tmf"
    assert REGISTRY.tables["udp.port"][1000] == "thread-joiner"
    for uri in ("/c/rx", "/c/tx", "/c/jf", "/c/je"):
        assert REGISTRY.tables["coap.uri_path"][uri] == "meshcop"


def test_moved_tmf_port_by_preference() -> None:
    """meshcop.tmf_port: TMF on another port is found there."""
    load_all()
    unprime_all()
    eng = Engine(prefs=["meshcop.tmf_port:49191", "coap.heuristic_strict:true"], tree=True)
    msg = fx.tmf("c/rx", 7, b"\x01\x02", fx.tlv(18, b"\x03\xe8") + fx.tlv(19, fx.JOINER_IID) +
                 fx.tlv(20, b"\x50\x00") + fx.tlv(17, DRAFT["client_hello"], extended=True))
    data = fx.udp6(fx.JR_RLOC, fx.COMM_RLOC, 49191, 49191, msg)
    p = eng.dissect(Frame(fx.T0, len(data), len(data), data, fx.LINKTYPE_IPV6))
    _no_bug(p)
    assert p.get("meshcop.uri") == "c/rx" and p.get("dtls.handshake.type") == 1


# ---------------------------------------------------------------------------
# Lab capture and the real OpenThread radio capture


def test_lab_thread_relay_every_relay_message_decodes() -> None:
    pk = _pkts(CAPTURES / "thread-relay.pcapng")
    relays = [p for p in pk if p.layer("meshcop") is not None]
    assert len(relays) == 37  # README: 37 relayed datagrams
    keks = []
    for p in relays:
        _no_bug(p)
        assert p.get("meshcop.uri") in ("c/rx", "c/tx")
        assert p.layer("dtls") is not None
        assert not any(lay.malformed for lay in p.layers)
        keks += p.values("meshcop.tlv.kek")
    import json

    kek = json.loads((CAPTURES / "thread-relay.keys" / "keys.json").read_text())["thread"]["joiner_router_kek"]
    assert keks and {k.hex() for k in keks} == {kek}


def test_openthread_radio_capture() -> None:
    path = _thread_capture()
    if path is None:
        pytest.skip("thread_two_joiners.pcapng not available")
    load_all()
    if not {"wpan", "6lowpan"} <= set(REGISTRY.named):
        pytest.skip("the 802.15.4 / 6LoWPAN dissectors have not landed")
    pk = _pkts(path, prefs=[f"thread.network_key:{NETWORK_KEY}"])
    rx = [p for p in pk if p.get("meshcop.uri") == "c/rx"]
    tx = [p for p in pk if p.get("meshcop.uri") == "c/tx"]
    assert rx and tx
    for p in rx + tx:
        _no_bug(p)
        assert p.layer("dtls") is not None
    # README: node 3's Joiner IID in the relay TLVs is 90335c4b320830fb, node 4's 01a3821e559408f6;
    # the Joiner Router is RLOC16 0x5000; the joiners use UDP port 1000.
    assert {p.get("meshcop.tlv.iid").hex() for p in rx} == {"90335c4b320830fb", "01a3821e559408f6"}
    assert {p.get("meshcop.jr_rloc16") for p in rx + tx} == {0x5000}
    assert {p.get("meshcop.tlv.udp_port") for p in rx + tx} == {1000}
    first = rx[0]
    assert first.values("meshcop.tlv.type") == [18, 19, 20, 17] and first.values("meshcop.tlv.len8")[3] == 0xFF
    with_kek = [p for p in tx if p.get("meshcop.tlv.kek") is not None]
    assert len(with_kek) == 2  # one per join
    assert [p.values("meshcop.tlv.type") for p in with_kek] == [[18, 19, 20, 21, 17]] * 2
    # The KEK learned from c/tx opens the JOIN_ENT (Key ID Mode 0) that follows: it carries the
    # network key, the same one the capture was decoded with.
    je = [p for p in pk if p.get("meshcop.uri") == "c/je"]
    assert len(je) == 2
    for p in je:
        _no_bug(p)
        assert p.get("meshcop.tlv.master_key").hex() == NETWORK_KEY
        assert p.get("meshcop.tlv.net_name") == "jpdissect-lab"
        assert p.get("meshcop.tlv.xpan_id") == 0x7B280665D5F6198C
    # MLE Discovery Responses carry MeshCoP TLVs too (decoded by name from the MLE dissector).
    disc = [p for p in pk if 129 in p.values("meshcop.tlv.type")]
    assert disc and all(p.get("meshcop.tlv.net_name") == "jpdissect-lab" for p in disc)


def test_join_fin_tlvs_and_its_answer() -> None:
    """JOIN_FIN.req / .rsp (Thread 1.x §8.4): State, vendor TLVs, provisioning URL; the answer takes the
    request's path (a CoAP ACK has no Uri-Path) and so is decoded as MeshCoP too. Normally inside the
    joiner's DTLS session; written here in the clear on the joiner port to check the TLV decoding."""
    load_all()
    unprime_all()
    eng = Engine(tree=True)
    tlvs = (fx.tlv(16, b"\x01") + fx.tlv(33, b"jpdissect") + fx.tlv(34, b"lab-1") + fx.tlv(35, b"1.4.0")
            + fx.tlv(37, bytes.fromhex("18b430123456")) + fx.tlv(32, b"https://example.org/p")
            + fx.tlv(36, b"vd"))
    # CON POST (0x42: ver 1, CON, TKL 2), Uri-Path "c" "jf", then the TLVs.
    req = bytes.fromhex("4202abcd" "7a7b" "b163" "026a66" "ff") + tlvs
    # ACK 2.04 (0x62: ver 1, ACK, TKL 2), same MID and token, State TLV = Reject (-1).
    rsp = bytes.fromhex("6244abcd" "7a7b" "ff") + fx.tlv(16, b"\xff")
    frames = [fx.udp6("fe80::2", "fe80::1", 1000, 1000, req), fx.udp6("fe80::1", "fe80::2", 1000, 1000, rsp)]
    pk = [eng.dissect(Frame(fx.T0 + i, len(d), len(d), d, fx.LINKTYPE_IPV6)) for i, d in enumerate(frames)]
    for p in pk:
        _no_bug(p)
        assert p.get("meshcop.uri") == "c/jf" and not any(lay.malformed for lay in p.layers)
    q, a = pk
    assert q.get("meshcop.tlv.state") == 1 and a.get("meshcop.tlv.state") == -1
    assert (q.get("meshcop.tlv.vendor_name"), q.get("meshcop.tlv.vendor_model"),
            q.get("meshcop.tlv.vendor_sw_ver")) == ("jpdissect", "lab-1", "1.4.0")
    assert q.get("meshcop.tlv.vendor_stack_ver_oui") == 0x18B430
    assert (q.get("meshcop.tlv.vendor_stack_ver_build"), q.get("meshcop.tlv.vendor_stack_ver_rev"),
            q.get("meshcop.tlv.vendor_stack_ver_min"), q.get("meshcop.tlv.vendor_stack_ver_maj")) == (0x123, 4, 5, 6)
    assert q.get("meshcop.tlv.provisioning_url") == "https://example.org/p"
    assert q.get("meshcop.tlv.vendor_data") == "vd"
    assert "JOIN_FIN" in q.info


def test_moved_joiner_port_by_preference() -> None:
    """meshcop.joiner_port: a joiner's DTLS to another Joiner Router port is the thread-relay pledge leg."""
    from jpdissect.sessions import first_pass

    data = fx.udp6("fe80::2", "fe80::1", 49152, 2000, DRAFT["client_hello"])
    frames = [Frame(fx.T0, len(data), len(data), data, fx.LINKTYPE_IPV6)]
    (moved,) = first_pass(Engine(prefs=["meshcop.joiner_port:2000"]), None, frames).rows()  # type: ignore[arg-type]
    (plain,) = first_pass(Engine(), None, frames).rows()  # type: ignore[arg-type]
    assert moved["scheme"] == "thread-relay" and moved["pledge"] == "fe80::2"
    assert plain["scheme"] is None  # a lone DTLS handshake: which relay (if any) is not visible
