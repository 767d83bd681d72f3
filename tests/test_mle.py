"""Thread MLE (UDP 19788): security suite, MLE-key decryption, commands and TLVs, what MLE teaches.

All MLE here is real: the 30 secured and 54 unsecured MLE messages OpenThread exchanged in the
capture. When the IPv6/UDP dissectors are loaded the engine reaches MLE by itself; without them the
tests hand the UDP payload of each decompressed IPv6 packet to the MLE dissector directly, with the
IPv6 addresses set as the network layer would.
"""

from __future__ import annotations

import struct

from jpdissect.dissectors import mle
from jpdissect.dissectors.registry import REGISTRY
from jpdissect.engine import Engine
from jpdissect.model import Group, Packet
from test_wpan_helpers import (
    KEY_PREF,
    ML_PREFIX,
    THREAD_PCAP,
    TSHARK_CTX0,
    TSHARK_KEY,
    bugs,
    comparable_fields,
    diff_with_tshark,
    experts,
    needs_network_layer,
    needs_tshark,
    read_frames,
)

COMMANDS_IN_CAPTURE = {
    "Parent Request", "Parent Response", "Child ID Request", "Child ID Response", "Advertisement",
    "Data Response", "Discovery Request", "Discovery Response",
}


def _mle_packets(prefs: list[str]) -> tuple[Engine, list[Packet]]:
    """Dissect the capture; make sure every MLE datagram reached the MLE dissector."""
    eng = Engine(prefs=prefs, tree=True)
    out = []
    for fr in read_frames(THREAD_PCAP):
        p = eng.dissect(fr)
        if not p.has("mle"):
            _feed_mle(p)
        out.append(p)
    return eng, out


def _feed_mle(p: Packet) -> None:
    """Without the network layer: the UDP payload of a decompressed/reassembled IPv6 packet to MLE."""
    if "udp" in REGISTRY.named:
        return
    for s_idx in range(len(p.sources) - 1, 0, -1):
        src = p.sources[s_idx]
        if src.name not in ("Decompressed 6LoWPAN IPHC", "Reassembled 6LoWPAN"):
            continue
        ip = src.data
        if len(ip) < 48 or ip[6] != 17:
            return
        sport, dport, ulen = struct.unpack_from("!HHH", ip, 40)
        if len(ip) < 40 + ulen or src.name == "Decompressed 6LoWPAN IPHC" and p.has("6lowpan.frag.size") \
                and not p.has("6lowpan.fragments"):
            return
        if mle.MLE_PORT not in (sport, dport):
            return
        p.net_src, p.net_dst = ip[8:24], ip[24:40]
        mle.dissect_mle(p, ip, 48, 40 + ulen, s_idx)
        return


def test_every_mle_message_decrypts_with_the_network_key() -> None:
    _, pkts = _mle_packets([KEY_PREF])
    m = [p for p in pkts if p.has("mle")]
    assert len(m) == 65  # tshark -Y mle agrees (with the key; 64 without: one MLE rides a MAC-secured frame)
    assert not any(bugs(p) for p in pkts)
    secured = [p for p in m if p.get("mle.sec_suite") == 0]
    assert len(secured) == 31
    for p in secured:
        assert p.get("mle.cmd") is not None, (p.number, experts(p))
        # (the MLE auxiliary header reuses wpan.aux_sec.*; the MAC may have its own before it)
        assert p.values("wpan.aux_sec.key_id_mode")[-1] == 2 and p.values("wpan.aux_sec.key_source")[-1] == 0
        assert any(s.name == "Decrypted MLE payload" for s in p.sources)
        assert len(p.get("mle.mic")) == 4
    unsecured = [p for p in m if p.get("mle.sec_suite") == 255]
    assert {mle.COMMANDS[p.get("mle.cmd")] for p in unsecured} == {"Discovery Request", "Discovery Response"}
    assert {mle.COMMANDS[p.get("mle.cmd")] for p in m} == COMMANDS_IN_CAPTURE


def test_without_key_mle_is_shown_encrypted() -> None:
    _, pkts = _mle_packets([])
    for p in pkts:
        if p.get("mle.sec_suite") == 0:
            assert p.get("mle.cmd") is None
            assert "No encryption key set - can't decrypt" in experts(p, Group.UNDECODED)
            assert p.has("data")


def test_tlvs_of_a_parent_request() -> None:
    """Frame 1: Mode 0x0f, a Challenge, Scan Mask (routers), Version 5 (Thread 1.4)."""
    _, pkts = _mle_packets([KEY_PREF])
    p = pkts[0]
    assert p.info == "Parent Request"
    assert p.values("mle.tlv.type") == [1, 3, 14, 18]
    assert p.get("mle.tlv.mode.device_type") is True and p.get("mle.tlv.mode.idle_rx") is True
    assert p.get("mle.tlv.challenge") == bytes.fromhex("59e9cf1c2c807bde")
    assert p.get("mle.tlv.scan_mask.r") is True and p.get("mle.tlv.scan_mask.e") is False
    assert p.get("mle.tlv.version") == 5


def test_mle_teaches_short_addresses_and_contexts() -> None:
    eng, pkts = _mle_packets([KEY_PREF])
    amap = eng.state["wpan.addr_map"]
    f2cd, n1 = bytes.fromhex("f2cdbbb94825e880"), bytes.fromhex("52e339ea96b254ca")
    assert amap[(0x9641, 0x0C00)] == (n1, 7)    # Source Address TLV of node 1's Data Response
    assert amap[(0x9641, 0x0C01)] == (f2cd, 14)  # Address16 TLV of the Child ID Response to node 2
    assert amap[(0x9641, 0x5000)] == (f2cd, 21)  # node 2 as a router
    # Frame 338 (Child ID Response to the last node) carries the Active Operational Dataset: its
    # Mesh-Local Prefix TLV is Thread's 6LoWPAN context 0.
    ctx = eng.state["6lowpan.contexts"][0]
    assert ctx.prefix[:8] == bytes.fromhex("fde59b7949cc91ea") and ctx.plen == 64 and ctx.frame == 338
    assert eng.state["thread.key_sequence"] == 0


def test_network_data_is_dissected() -> None:
    _, pkts = _mle_packets([KEY_PREF])
    p = pkts[6]  # Data Response with Network Data
    assert p.info == "Data Response" and p.has("thread_nwd")
    assert p.values("thread_nwd.tlv.type")  # at least one Network Data TLV
    assert p.protocol == "MLE"


def test_network_data_6lowpan_id_teaches_a_context() -> None:
    """Thread §5.18.3: a Prefix TLV with a 6LoWPAN ID sub-TLV (C=1, CID=2, context length 64)."""
    eng = Engine(tree=True)
    pkt = Packet(1, 0, b"", 195, 0, tree=True)
    pkt.cap = eng
    prefix = bytes.fromhex("20010db800010002")
    sub = bytes([3 << 1 | 1, 2, 0x10 | 2, 64])
    tlv = bytes([1 << 1 | 1, 2 + len(prefix) + len(sub), 0, 64]) + prefix + sub
    mle._network_data(pkt, tlv, 0, len(tlv), 0)
    assert pkt.get("thread_nwd.tlv.prefix") == prefix + bytes(8)
    assert pkt.get("thread_nwd.tlv.6co.flag.cid") == 2 and pkt.get("thread_nwd.tlv.6co.flag.c") is True
    assert eng.state["6lowpan.contexts"][2].prefix[:8] == prefix


def test_malformed_mle_never_raises() -> None:
    eng = Engine(prefs=[KEY_PREF], tree=True)
    base = bytes.fromhex("ff10" "0102aabb" "0d03000102")  # unsecured Discovery Request-ish
    for n in range(len(base) + 1):
        for tail in (b"", b"\x00", b"\xff\xff", b"\x00\x15"):
            pkt = Packet(1, 0, b"", 195, 0, tree=True)
            pkt.cap = eng
            data = base[:n] + tail
            mle.dissect_mle(pkt, data, 0, len(data), 0)
            assert not bugs(pkt)
    sec = bytes([0, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 1]) + b"\x00" * 3
    for n in range(len(sec) + 1):
        pkt = Packet(1, 0, b"", 195, 0, tree=True)
        pkt.cap = eng
        mle.dissect_mle(pkt, sec[:n], 0, n, 0)
        assert not bugs(pkt)


@needs_tshark
def test_mle_fields_match_tshark() -> None:
    needs_network_layer()
    # mle.mic: Wireshark 4.0 computes the decrypted MIC but adds it to a NULL tree, so never shows it.
    fields = [f for f in comparable_fields("mle.", "thread_nwd.") if f != "mle.mic"]
    bad = diff_with_tshark(THREAD_PCAP, fields, [KEY_PREF, f"6lowpan.context0:{ML_PREFIX}"],
                           TSHARK_KEY + TSHARK_CTX0)
    assert not bad, "\n".join(bad)
