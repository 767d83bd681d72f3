"""The 802.15.4 / 6LoWPAN cost model against hand computations and against OpenThread's frames.

Each hand computation is written out with the rule it applies. Sizes: IEEE 802.15.4-2015 §7.2
(frame control 2, sequence number 1, destination PAN ID 2, source PAN ID omitted under PAN ID
compression, addresses 2 or 8, FCS 2), §9.4 (auxiliary security header 1 + 4 + key identifier,
MIC 4/8/16); RFC 6282 §3.1.1 (IPHC 2 bytes + inline fields), §4.3 (UDP NHC 1 + ports + checksum 2);
RFC 4944 §5.3 (FRAG1 4 bytes, FRAGN 5 bytes, offsets in 8-byte units of the uncompressed datagram,
11-bit datagram_size); 2.4 GHz O-QPSK §12: 32 µs per byte, SHR+PHR 6 bytes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from jpdissect.stats import radio
from jpdissect.stats.radio import (
    MESH,
    PLEDGE,
    AddrMode,
    DatagramTooLarge,
    Iid,
    cost,
    fragment_payloads,
    profile,
)

ROOT = Path(__file__).resolve().parent.parent
THREAD = ROOT / "tests" / "data" / "thread" / "thread_two_joiners.pcap"
#: tests/data/thread/README.txt
THREAD_NETWORK_KEY = "17c627a33d5927bf887ae312092611b7"
COAPS, EPHEMERAL, TMF = 5684, 49152, 61631


def test_pledge_profile_frame_budget() -> None:
    # MHR 2 + 1 + 2 (dst PAN) + 8 + 8 (extended addresses, PAN ID compression) = 21, FCS 2: 23 bytes
    # a frame; 127 - 23 = 104 bytes of 6LoWPAN per frame. No security on the pledge hop.
    assert PLEDGE.mhr_bytes == 21 and PLEDGE.frame_overhead == 23 and PLEDGE.max_payload == 104
    # IPHC 2 (TF=11, NH=1, HLIM=10 for 64, SAM=DAM=11: IIDs from the MAC addresses) + UDP NHC 1
    # + ports 4 (5684 and 49152 are outside 0xF0xx, RFC 6282 §4.3.3) + checksum 2 = 9.
    assert radio.compressed_header_len(PLEDGE, EPHEMERAL, COAPS) == 9
    assert radio.max_unfragmented_payload(PLEDGE, EPHEMERAL, COAPS) == 95


def test_mesh_profile_frame_budget() -> None:
    # MHR 2 + 1 + 2 + 2 + 2 (short addresses) = 9; aux security header 1 + 4 + 1 (level 5, key id
    # mode 1) = 6; MIC-32 4; FCS 2: 21 bytes, 106 left.
    assert MESH.mhr_bytes == 9 and MESH.aux_security_bytes == 6 and MESH.mic_bytes == 4
    assert MESH.frame_overhead == 21 and MESH.max_payload == 106
    # IPHC 2 + TF=10 traffic class 1 + addresses elided + NHC 1 + ports 1 (both 61631 = 0xF0BF are
    # in 0xF0B0..0xF0BF: 4 bits each) + checksum 2 = 7.
    assert radio.compressed_header_len(MESH, TMF, TMF) == 7


def test_one_frame_up_to_the_boundary() -> None:
    # 9 + 95 = 104 bytes of 6LoWPAN fit one frame: PSDU 104 + 23 = 127 = aMaxPhyPacketSize.
    c = cost(PLEDGE, 95, EPHEMERAL, COAPS)
    assert (c.frames, c.psdu_bytes, c.psdus) == (1, 127, (127,))
    # Air time: (6 + 127) * 32 µs = 4256 µs, + Imm-Ack (6 + 5) * 32 = 352 µs -> 4608 µs.
    # Channel: + aTurnaroundTime 12 symbols (192 µs) before the ACK, + LIFS 40 symbols (640 µs).
    assert c.airtime_us == 4608 and c.channel_us == 4256 + 192 + 352 + 640


def test_one_byte_more_fragments() -> None:
    # 96 bytes: 9 + 96 = 105 > 104 -> RFC 4944 §5.3 fragmentation. FRAG1 room: 104 - 4 - 9 = 91
    # bytes; the uncompressed bytes it covers, 48 (IPv6 40 + UDP 8) + payload, must be a multiple
    # of 8: (48 + 91) // 8 * 8 = 136 -> 88 payload bytes in FRAG1 (101 bytes of 6LoWPAN, PSDU 124).
    # FRAGN carries the last 8 bytes: 5 + 8 = 13, PSDU 36.
    c = cost(PLEDGE, 96, EPHEMERAL, COAPS)
    assert c.psdus == (124, 36) and c.frames == 2 and c.psdu_bytes == 160
    # The short last frame follows the SIFS rule only if its MPDU is <= 18 bytes: 36 is not, LIFS.
    assert c.channel_us == sum((6 + p) * 32 + 192 + 352 + 640 for p in (124, 36))


def test_two_three_frame_boundary() -> None:
    # A FRAGN holds (104 - 5) // 8 * 8 = 96 payload bytes, so two frames carry 88 + 96 = 184.
    assert cost(PLEDGE, 184, EPHEMERAL, COAPS).psdus == (124, 5 + 96 + 23)
    assert cost(PLEDGE, 185, EPHEMERAL, COAPS).psdus == (124, 124, 5 + 1 + 23)


def test_mesh_fragment_boundary() -> None:
    # 7 + 99 = 106 fits; 100 does not. FRAG1 room 106 - 4 - 7 = 95 -> (48 + 95) // 8 * 8 = 136 ->
    # 88 bytes; the remaining 12 go in a FRAGN (5 + 12 = 17): PSDUs 99 + 21 = 120 and 17 + 21 = 38.
    assert cost(MESH, 99, TMF, TMF).psdus == (127,)
    assert cost(MESH, 100, TMF, TMF).psdus == (120, 38)


def test_datagram_size_is_eleven_bits() -> None:
    # RFC 4944 §5.3: datagram_size 11 bits -> at most 2047 bytes of IPv6 (48 + 1999).
    assert cost(PLEDGE, 1999, EPHEMERAL, COAPS).frames == 1 + (1999 - 88 + 95) // 96
    with pytest.raises(DatagramTooLarge):
        cost(PLEDGE, 2000, EPHEMERAL, COAPS)
    assert radio.cost_or_none(PLEDGE, 2000, EPHEMERAL, COAPS) is None


def test_udp_port_compression() -> None:
    # RFC 6282 §4.3.3: both in 0xF0B0..0xF0BF -> 1 byte; one in 0xF000..0xF0FF -> 3; else 4.
    assert radio.udp_ports_bytes(0xF0B0, 0xF0BF) == 1
    assert radio.udp_ports_bytes(0xF0B0, 0xF0C0) == 3
    assert radio.udp_ports_bytes(5683, 0xF001) == 3
    assert radio.udp_ports_bytes(5683, 5684) == 4


def test_hop_limit_and_traffic_class() -> None:
    # RFC 6282 §3.1.1: HLIM 1/64/255 elided, anything else inline; TF=00 carries 4 bytes.
    assert radio.compressed_header_len(PLEDGE, EPHEMERAL, COAPS, 63) == 10
    assert radio.compressed_header_len(replace(PLEDGE, tf_bytes=4), EPHEMERAL, COAPS) == 13


def test_security_and_addressing_variants() -> None:
    p = profile("pledge,sec=6,kid=2")  # MIC-64 (8) + aux 1 + 4 + 5
    assert p.aux_security_bytes == 10 and p.mic_bytes == 8 and p.max_payload == 104 - 18
    p = profile("mesh,fcsupp=1,kid=0")  # frame counter suppressed (2015), no key identifier
    assert p.aux_security_bytes == 1
    p = profile("pledge,panc=0")  # source PAN ID present
    assert p.mhr_bytes == 23
    p = profile("mesh,src=ext")
    assert p.src_mode is AddrMode.EXT and p.mhr_bytes == 15
    p = profile("mesh,src_iid=iid64,dst_iid=inline")
    assert radio.compressed_header_len(p, TMF, TMF) == 7 + 8 + 16
    assert profile("mesh,src_iid=iid16").src_iid is Iid.IID16
    # RFC 4944 §5.2 mesh header with 16-bit originator and final destination: 5 bytes a frame.
    p = profile("mesh,mesh=1,hops=3")
    assert p.mesh_bytes == 5 and p.max_payload == 101
    one = cost(replace(p, hops=1), 300, TMF, TMF)
    three = cost(p, 300, TMF, TMF)
    assert three.frames == 3 * one.frames and three.airtime_us == 3 * one.airtime_us
    with pytest.raises(ValueError):
        profile("mesh,sec=8")
    with pytest.raises(ValueError):
        profile("mesh,colour=red")


def test_fragment_payloads_never_split_below_eight_bytes() -> None:
    for n in range(0, 1300, 7):
        parts = fragment_payloads(n, 9, 104)
        if len(parts) == 1:
            assert parts[0] == 9 + n
            continue
        covered = 48 + parts[0] - 4 - 9
        assert covered % 8 == 0
        assert all((p - 5) % 8 == 0 for p in parts[1:-1])
        assert sum(parts) - 4 - 9 - 5 * (len(parts) - 1) == n


# ---------------------------------------------------------------------------
# Against real frames: OpenThread's joiner and TMF relay traffic


def _thread_datagrams() -> list[dict[str, object]]:
    if not THREAD.exists():
        pytest.skip("OpenThread capture not bundled")
    from jpdissect.stats.frames import packets

    df = packets(THREAD, ["frame.number", "frame.len", "wpan.security", "wpan.src_addr_mode",
                          "wpan.dst_addr_mode", "6lowpan.frag.size", "6lowpan.fragment.count",
                          "6lowpan.reassembled.psdu_bytes", "udp.length", "udp.srcport", "udp.dstport",
                          "ipv6.hlim", "coap.opt.uri_path"],
                 'udp.port == 1000 or coap.opt.uri_path == "rx" or coap.opt.uri_path == "tx"',
                 prefs=[f"thread.network_key:{THREAD_NETWORK_KEY}"])
    return df.to_dict("records")


def test_model_matches_openthread_fragmentation() -> None:
    """Every joiner datagram and every c/rx / c/tx the Joiner Router relays, fragmented or not:
    the model's frame count and PSDU bytes equal what OpenThread put on the air, as the 6LoWPAN
    dissector reassembled it (6lowpan.fragment.count, 6lowpan.reassembled.psdu_bytes).

    (JOIN_ENT, TMF c/je secured with the KEK under key identifier mode 0, is not relayed traffic
    and follows neither default profile; it is left out.)"""
    rows = _thread_datagrams()
    checked = {"pledge": 0, "mesh": 0, "fragmented": 0}
    for r in rows:
        secured = bool(r["wpan.security"])
        prof = MESH if secured else PLEDGE  # joiners have no key; routers secure TMF (level 5)
        payload = int(r["udp.length"]) - 8
        c = cost(prof, payload, int(r["udp.srcport"]), int(r["udp.dstport"]), int(r["ipv6.hlim"]))
        if pd.isna(r["6lowpan.fragment.count"]):
            assert c.frames == 1, r
            assert c.psdu_bytes == r["frame.len"], r  # link type 195: the frame is the PSDU with FCS
        else:
            assert c.frames == r["6lowpan.fragment.count"], r
            assert c.psdu_bytes == r["6lowpan.reassembled.psdu_bytes"], r
            checked["fragmented"] += 1
        checked["mesh" if secured else "pledge"] += 1
    # Both joiners' handshakes in both directions, and the relayed copies of them.
    assert checked["pledge"] >= 12 and checked["mesh"] >= 20 and checked["fragmented"] >= 20, checked
