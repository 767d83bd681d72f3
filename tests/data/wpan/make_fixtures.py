"""Build the IEEE 802.15.4 / 6LoWPAN fixtures in this directory (run from the repository root).

    python tests/data/wpan/make_fixtures.py

Needs scapy (``pip install scapy``). The fixtures are committed; tests do not regenerate them.

Where the bytes come from (a test should know how much to trust its input):

* ``annexc.pcap`` (link type 230): the three secured frames of IEEE 802.15.4-2006 Annex C.2.1-C.2.3
  (key C0..CF), byte for byte as OpenThread's ``tests/unit/test_aes.cpp`` checks them. tshark 4.0
  verifies all three with that key.
* ``lowpan.pcap`` (link type 195) + ``lowpan_expected.json``: 6LoWPAN frames *compressed by scapy*
  (``LoWPAN_IPHC`` / ``LoWPAN_NHC``) from IPv6 packets scapy also built; the JSON keeps each original
  IPv6 packet, so decompression is checked against the packet before compression. A few frames
  scapy cannot build are hand-made; each says which RFC section it follows.
* ``lowpan_frag.pcap`` + ``lowpan_frag_expected.json``: scapy-compressed datagrams fragmented per
  RFC 4944 §5.3 by :func:`fragment` (scapy's ``sixlowpan_fragment`` drops the compression), in
  order, reversed, with a retransmission, a conflicting overlap, a lost fragment and a timeout.
* ``mac_frames.pcap`` (link type 195): hand-built MAC frames (2003/2006/2015 versions, Table 7-2 PAN
  ID compression rows, header and payload IEs, MAC commands, beacons with a Thread beacon payload,
  a multipurpose frame, a bad FCS, a reserved addressing mode). The FCS is scapy's
  (``Dot15d4FCS.compute_fcs``), not ours.
* ``tap.pcap`` (link type 283): IEEE 802.15.4 TAP headers (FCS type, RSS, channel, LQI TLVs) around
  frames of the real OpenThread capture.
* ``nofcs.pcap`` (link type 230): the real OpenThread capture with each frame's FCS cut off.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

from scapy.config import conf

conf.dot15d4_protocol = "sixlowpan"

from scapy.layers.dot15d4 import Dot15d4FCS  # noqa: E402
from scapy.layers.inet6 import (  # noqa: E402
    UDP,
    HBHOptUnknown,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    PadN,
)
from scapy.layers.sixlowpan import (  # noqa: E402
    LoWPAN_IPHC,
    LoWPAN_NHC,
    LoWPAN_NHC_UDP,
)

HERE = Path(__file__).resolve().parent
THREAD = HERE.parent / "thread" / "thread_two_joiners.pcap"
T0 = 1_795_442_594  # same day as the OpenThread capture
PAN = 0x9641


def fcs(data: bytes) -> bytes:
    return Dot15d4FCS().compute_fcs(data)


def write_pcap(path: Path, frames: list[tuple[float, bytes]], linktype: int) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for ts, fr in frames:
            sec = int(ts)
            usec = int(round((ts - sec) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    raw = path.read_bytes()
    out = []
    p = 24
    while p + 16 <= len(raw):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", raw, p)
        out.append((sec + usec / 1e6, raw[p + 16 : p + 16 + incl]))
        p += 16 + incl
    return out


def le_ext(eui: str) -> bytes:
    """An EUI-64 as printed -> its little-endian on-air form (IEEE 802.15.4-2015 §7.2.1)."""
    return bytes.fromhex(eui.replace(":", ""))[::-1]


def mhr(fcf: int, seq: int | None, *fields: bytes) -> bytes:
    return struct.pack("<H", fcf) + (bytes([seq]) if seq is not None else b"") + b"".join(fields)


def fcf(ftype: int, *, sec: bool = False, pend: bool = False, ar: bool = False, comp: bool = False,
        seq_supp: bool = False, ie: bool = False, dmode: int = 0, ver: int = 1, smode: int = 0) -> int:
    """Frame Control field, IEEE 802.15.4-2015 §7.2.2 (Figure 7-2)."""
    return (ftype | sec << 3 | pend << 4 | ar << 5 | comp << 6 | seq_supp << 8 | ie << 9
            | dmode << 10 | ver << 12 | smode << 14)


def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def hie(eid: int, content: bytes) -> bytes:
    """Header IE descriptor (§7.4.2.1): length 7 bits, element ID 8 bits, type 0."""
    return u16(len(content) | eid << 7) + content


def pie(gid: int, content: bytes) -> bytes:
    """Payload IE descriptor (§7.4.3.1): length 11 bits, group ID 4 bits, type 1."""
    return u16(len(content) | gid << 11 | 0x8000) + content


# ---------------------------------------------------------------------------


def annexc() -> None:
    # IEEE 802.15.4-2006 Annex C.2.1 (beacon, MIC-64), C.2.2 (data, ENC), C.2.3 (command, ENC-MIC-64).
    frames = [
        bytes.fromhex("08D0842143010000000048DEAC020500000055CF000051525354223BC1EC841AB553"),
        bytes.fromhex("69DC8421430200000000" "48DEAC" "0100000000" "48DEAC" "0405000000" "D43E022B"),
        bytes.fromhex("2BDC842143" "0200000000" "48DEAC" "FFFF" "0100000000" "48DEAC" "0605000000" "01" "D8"
                      "4FDE529061F9C6F1"),
    ]
    write_pcap(HERE / "annexc.pcap", [(T0 + i, f) for i, f in enumerate(frames)], 230)


def mac_frames() -> None:
    a = le_ext("f2:cd:bb:b9:48:25:e8:80")
    b = le_ext("52:e3:39:ea:96:b2:54:ca")
    # IPHC (link-local, IIDs from the MAC, to ff02::2) + UDP NHC with 4-bit ports 0xf0b1 -> 0xf0b2
    # (RFC 6282 §4.3.3) and checksum, + 'hello'
    lowpan = bytes.fromhex("7f3b02f31253d8") + b"hello"
    fr: list[bytes] = []
    # 1. 2006 data, short->short, PAN ID compression (§7.2.2.6)
    fr.append(mhr(fcf(1, comp=True, dmode=2, smode=2, ar=True), 7, u16(PAN), u16(0x0C00), u16(0x5000)) + lowpan)
    # 2. 2006 data, short dst + ext src, no compression: both PANs (different)
    fr.append(mhr(fcf(1, dmode=2, smode=3), 8, u16(PAN), u16(0xFFFF), u16(0x1234), a) + lowpan)
    # 3. 2003 (version 0) data frame, ext->ext with compression
    fr.append(mhr(fcf(1, comp=True, dmode=3, smode=3, ver=0), 9, u16(PAN), b, a) + lowpan)
    # 4. Imm-Ack (§7.3.3)
    fr.append(mhr(fcf(2, ver=0), 9))
    # 5. 2015 data, Table 7-2 row 12 (short dst, ext src, comp=1): dst PAN only; header IEs CSL
    #    (0x1a: phase, period, §7.4.2.3), Vendor (0x00: OUI + content, §7.4.2.2), then HT2 (0x7f).
    ies = hie(0x1A, u16(0x0123) + u16(0x0C35)) + hie(0x00, bytes.fromhex("9bb8ea") + b"\x01\x02") + hie(0x7F, b"")
    fr.append(mhr(fcf(1, comp=True, ie=True, dmode=2, smode=3, ver=2), 10, u16(PAN), u16(0x0C00), a, ies) + lowpan)
    # 6. 2015 Enh-Ack with a Time Correction IE (0x1e, §7.4.2.7): +12 us, ACK
    fr.append(mhr(fcf(2, ie=True, ver=2), 10, hie(0x1E, u16(12))))
    # 7. 2015 Enh-Ack, NACK with -5 us (12-bit two's complement), seq suppressed
    fr.append(mhr(fcf(2, ie=True, ver=2, seq_supp=True), None, hie(0x1E, u16(0x8000 | (0x1000 - 5)))))
    # 8-12. Table 7-2 rows: ext/ext comp=0 (row 7), ext/ext comp=1 (row 8), short/short comp=0 (row 9),
    #       none/none comp=1 (row 2), dst only comp=1 (row 4)
    fr.append(mhr(fcf(1, dmode=3, smode=3, ver=2), 11, u16(PAN), b, a) + lowpan)
    fr.append(mhr(fcf(1, comp=True, dmode=3, smode=3, ver=2), 12, b, a) + lowpan)
    fr.append(mhr(fcf(1, dmode=2, smode=2, ver=2), 13, u16(PAN), u16(0x0C00), u16(0x1111), u16(0x5000)) + lowpan)
    fr.append(mhr(fcf(1, comp=True, ver=2), 14, u16(PAN)) + b"\x00\x01\x02")
    fr.append(mhr(fcf(1, comp=True, dmode=2, ver=2), 15, u16(0x0C00)) + b"\x00\x01\x02")
    # 13. 2015 data with HT1 then payload IEs: MLME IE with a short sub-IE (§7.4.4.1), vendor payload IE,
    #     Payload Termination IE, then payload (a TSCH Synchronization sub-IE, §7.4.4.2)
    mlme = u16(6 | 0x1A << 8) + bytes.fromhex("0102030405") + b"\x07"  # short sub-IE 0x1a (TSCH Sync): ASN, join metric
    pies = pie(0x1, mlme) + pie(0x2, bytes.fromhex("9bb8ea") + b"\x07") + pie(0xF, b"")
    fr.append(mhr(fcf(1, comp=True, ie=True, dmode=2, smode=2, ver=2), 16, u16(PAN), u16(0x0C00), u16(0x5000),
                  hie(0x7E, b"")) + pies + b"\x00\x01\x02")
    # 14-20. MAC commands, 2006 (§7.5): Data Request, Beacon Request, Association Request (capability
    #        0x8e), Association Response (short 0x0c05, success), Disassociation (reason 2),
    #        Coordinator Realignment (with channel page), GTS Request (length 3, receive, allocate)
    fr.append(mhr(fcf(3, ar=True, comp=True, dmode=2, smode=3), 20, u16(PAN), u16(0x0C00), a) + b"\x04")
    fr.append(mhr(fcf(3, dmode=2, ver=0), 21, u16(0xFFFF), u16(0xFFFF)) + b"\x07")
    fr.append(mhr(fcf(3, ar=True, dmode=2, smode=3, ver=0), 22, u16(PAN), u16(0x0000), u16(0xFFFF), a) + b"\x01\x8e")
    fr.append(mhr(fcf(3, ar=True, comp=True, dmode=3, smode=3), 23, u16(PAN), a, b) + b"\x02" + u16(0x0C05) + b"\x00")
    fr.append(mhr(fcf(3, ar=True, comp=True, dmode=3, smode=3), 24, u16(PAN), b, a) + b"\x03\x02")
    fr.append(mhr(fcf(3, comp=True, dmode=3, smode=3), 25, u16(PAN), a, b) + b"\x08" + u16(PAN) + u16(0x0C00)
              + b"\x13" + u16(0x0C05) + b"\x00")
    fr.append(mhr(fcf(3, ar=True, comp=True, dmode=2, smode=2), 26, u16(PAN), u16(0x0000), u16(0x0C05)) + b"\x09\x33")
    # 21. 2006 beacon (§7.3.1) with a Thread beacon payload (Thread 1.1 §4.5.1.1): protocol 3,
    #     version 2 + joining, network name, extended PAN ID, steering data TLV (type 8)
    sf = u16(0x0F | 0x0F << 4 | 0x0F << 8 | 0x4000 | 0x8000)
    thread_bcn = (b"\x03" + bytes([0x20 | 0x01]) + b"jpdissect-lab".ljust(16, b"\x00")
                  + bytes.fromhex("7b280665d5f6198c") + b"\x08\x01\xff")
    fr.append(mhr(fcf(0, smode=2), 30, u16(PAN), u16(0x0C00)) + sf + b"\x00\x00" + thread_bcn)
    # 22. Beacon with GTS descriptors and pending addresses (§7.3.1.3-7.3.1.6)
    gts = b"\x82" + b"\x01" + u16(0x0C05) + b"\x25" + u16(0x0C06) + b"\x13"
    pend = b"\x11" + u16(0x0C07) + a
    fr.append(mhr(fcf(0, smode=2), 31, u16(PAN), u16(0x0C00)) + u16(0x0F | 0x0F << 4 | 0x0A << 8) + gts + pend)
    # 23. Multipurpose frame, short frame control (§7.3.5): dst short (mode 2), no source
    fr.append(bytes([0x05 | 2 << 4]) + b"\x2a" + u16(0x0C00) + b"\x00\x01")
    # 24. Reserved destination addressing mode 1 (§7.2.2.9): malformed
    fr.append(mhr(fcf(1, dmode=1, smode=2), 40, u16(PAN), b"\x01", u16(0x5000)))
    # 25. Frame version 3 (reserved)
    fr.append(mhr(fcf(1, comp=True, dmode=2, smode=2, ver=3), 41, u16(PAN), u16(1), u16(2)) + b"\x00")
    # 26. 2006 with PAN ID compression but no source: invalid (§7.2.2.6)
    fr.append(mhr(fcf(1, comp=True, dmode=2), 42, u16(PAN), u16(1)) + b"\x00")
    frames = [f + fcs(f) for f in fr]
    # 27. The first frame again with a corrupted FCS
    bad = bytearray(frames[0])
    bad[-1] ^= 0xFF
    frames.append(bytes(bad))
    write_pcap(HERE / "mac_frames.pcap", [(T0 + i * 0.01, f) for i, f in enumerate(frames)], 195)


def tlv(t: int, v: bytes) -> bytes:
    pad = (-len(v)) % 4
    return struct.pack("<HH", t, len(v)) + v + b"\x00" * pad


def tap() -> None:
    cap = read_pcap(THREAD)
    out = []
    # IEEE 802.15.4 TAP (LINKTYPE_IEEE802_15_4_TAP): FCS type 1 (16-bit), RSS float, channel 19 page 0,
    # LQI; then the frame with its FCS.
    for i, (ts, fr) in enumerate(cap[:20]):
        tl = (tlv(0, b"\x01") + tlv(1, struct.pack("<f", -50.5 - i)) + tlv(3, struct.pack("<HB", 19, 0))
              + tlv(10, bytes([200 + i])))
        out.append((ts, struct.pack("<BBH", 0, 0, 4 + len(tl)) + tl + fr))
    # FCS type 0 (none): the frame without its FCS
    ts, fr = cap[0]
    tl = tlv(0, b"\x00")
    out.append((ts + 1, struct.pack("<BBH", 0, 0, 4 + len(tl)) + tl + fr[:-2]))
    write_pcap(HERE / "tap.pcap", out, 283)


def nofcs() -> None:
    write_pcap(HERE / "nofcs.pcap", [(ts, fr[:-2]) for ts, fr in read_pcap(THREAD)], 230)


# ---------------------------------------------------------------------------
# 6LoWPAN


EXT_A = "12:34:56:78:9a:bc:de:f0"
EXT_B = "02:11:22:33:44:55:66:77"
ML = "fd00:db8:0:1"  # context 0 in the stateful cases (-o 6lowpan.context0:fd00:db8:0:1::/64)
CTX1 = "2001:db8:aaaa:bbbb"  # context 1


def frame_ext_ext(payload: bytes, seq: int) -> bytes:
    return mhr(fcf(1, comp=True, dmode=3, smode=3), seq, u16(PAN), le_ext(EXT_B), le_ext(EXT_A)) + payload


def frame_short_short(payload: bytes, seq: int, src: int = 0x0C01, dst: int = 0x5000) -> bytes:
    return mhr(fcf(1, comp=True, dmode=2, smode=2), seq, u16(PAN), u16(dst), u16(src)) + payload


def lowpan() -> None:
    ll_a = "fe80::1034:5678:9abc:def0"  # EXT_A with the U/L bit flipped (RFC 4944 §6)
    ll_b = "fe80::11:2233:4455:6677"
    cases: list[tuple[str, bytes, bytes]] = []  # (description, 802.15.4 frame without FCS, original IPv6)

    def add(desc: str, iphc: LoWPAN_IPHC, ip: IPv6, mk=frame_ext_ext, nhc: bool = False, **kw) -> None:  # type: ignore[no-untyped-def]
        orig = bytes(IPv6(bytes(ip)))  # lengths/checksum filled in by scapy
        # scapy 2.8 writes the IPv6 Traffic Class into IPHC's "ECN | DSCP" byte unchanged (its ECN is
        # TC >> 6), but RFC 6282 §3.1.1 reorders it: ECN = TC & 3 first, then DSCP = TC >> 2 (tshark
        # 4.0 and OpenThread agree). Hand scapy the reordered value so its bytes follow the RFC;
        # the expected packet keeps the real Traffic Class.
        tc = ip.tc
        ip = ip.copy()
        ip.tc = ((tc & 3) << 6) | (tc >> 2)
        pkt = iphc / LoWPAN_NHC(exts=[LoWPAN_NHC_UDP(**kw)]) / ip if nhc else iphc / ip
        comp = bytes(pkt)
        cases.append((desc, mk(comp, len(cases) + 1), orig))

    u = UDP(sport=19788, dport=19788) / b"hello"
    add("link-local, IIDs from EUI-64s (SAM=DAM=11), TF=11, HLIM=255, NHC UDP ports inline",
        LoWPAN_IPHC(tf=3, nh=1, hlim=3, sam=3, dam=3), IPv6(src=ll_a, dst=ll_b, hlim=255) / u, nhc=True, P=0)
    add("link-local from short addresses (0000:00ff:fe00:XXXX, RFC 6282 §3.2.2)",
        LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=3, dam=3), IPv6(src="fe80::ff:fe00:c01", dst="fe80::ff:fe00:5000") / u,
        mk=frame_short_short, nhc=True, P=0)
    add("SAM=10 (16 bits inline), DAM=01 (64 bits inline)",
        LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=2, dam=1), IPv6(src="fe80::ff:fe00:abcd", dst="fe80::1:2:3:4") / u,
        nhc=True, P=0)
    add("everything inline: TF=00, NH inline, HLIM inline, SAM=DAM=00",
        LoWPAN_IPHC(tf=0, nh=0, hlim=0, sam=0, dam=0),
        IPv6(tc=0xB9, fl=0x12345, hlim=7, src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5683, dport=61631) / b"x")
    add("TF=01: ECN + flow label", LoWPAN_IPHC(tf=1, nh=1, hlim=1, sam=3, dam=3),
        IPv6(tc=0x02, fl=0xABCDE, hlim=1, src=ll_a, dst=ll_b) / u, nhc=True, P=0)
    add("TF=10: traffic class only", LoWPAN_IPHC(tf=2, nh=1, hlim=2, sam=3, dam=3),
        IPv6(tc=0x1C, src=ll_a, dst=ll_b) / u, nhc=True, P=0)
    for dam, dst in ((0, "ff05::1:3"), (1, "ff05::12:3456:789a"), (2, "ff0e::12:3456"), (3, "ff02::1")):
        add(f"multicast DAM={dam}", LoWPAN_IPHC(tf=3, nh=1, hlim=3, sam=3, m=1, dam=dam),
            IPv6(src=ll_a, dst=dst, hlim=255) / u, nhc=True, P=0)
    add("stateful SAC=DAC=1 context 0, SAM=DAM=11 from short addresses (Thread RLOC)",
        LoWPAN_IPHC(tf=2, nh=1, hlim=2, sac=1, sam=3, dac=1, dam=3),
        IPv6(tc=0x1C, src=f"{ML}:0:ff:fe00:c01", dst=f"{ML}:0:ff:fe00:5000") / UDP(sport=61631, dport=61631) / b"tmf",
        mk=frame_short_short, nhc=True, P=3)
    add("stateful SAM=10 / DAM=01 with CID extension (SCI=1, DCI=0)",
        LoWPAN_IPHC(tf=3, nh=1, hlim=2, cid=1, sci=1, dci=0, sac=1, sam=2, dac=1, dam=1),
        IPv6(src=f"{CTX1}::ff:fe00:1", dst=f"{ML}:aaaa:bbbb:cccc:dddd") / u, nhc=True, P=0)
    add("stateful SAM=01, DAM=11 from EUI-64", LoWPAN_IPHC(tf=3, nh=1, hlim=2, sac=1, sam=1, dac=1, dam=3),
        IPv6(src=f"{ML}:1111:2222:3333:4444", dst=f"{ML}:11:2233:4455:6677") / u, nhc=True, P=0)
    add("SAC=1 SAM=00: the unspecified address", LoWPAN_IPHC(tf=3, nh=1, hlim=3, sac=1, sam=0, m=1, dam=3),
        IPv6(src="::", dst="ff02::2", hlim=255) / u, nhc=True, P=0)
    add("NHC UDP P=01: destination port 0xf0XX", LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=3, dam=3),
        IPv6(src=ll_a, dst=ll_b) / UDP(sport=1000, dport=0xF012) / b"p1", nhc=True, P=1)
    add("NHC UDP P=10: source port 0xf0XX", LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=3, dam=3),
        IPv6(src=ll_a, dst=ll_b) / UDP(sport=0xF034, dport=1000) / b"p2", nhc=True, P=2)
    add("NHC UDP P=11: both ports 0xf0bX", LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=3, dam=3),
        IPv6(src=ll_a, dst=ll_b) / UDP(sport=0xF0B1, dport=0xF0BF) / b"p3", nhc=True, P=3)
    add("NHC UDP C=1: checksum elided (RFC 6282 §4.3.2, recomputed by the decompressor)",
        LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=3, dam=3),
        IPv6(src=ll_a, dst=ll_b) / UDP(sport=5683, dport=5683) / b"no checksum", nhc=True, P=0, C=1)

    # Hand-made where scapy's NHC support stops (IPHC bytes from iphc2(), RFC 6282 §3.1.1):
    # RFC 6282 §4.2: Hop-by-Hop (EID 0, NH=1) carrying 6 option bytes (an MPL-like option 0x6d),
    # then UDP NHC; 2 + 6 = 8 bytes, so the decompressor adds no padding. M=1 DAM=10: ffXX::00XX:XXXX.
    ip = IPv6(bytes(IPv6(src=ll_a, dst="ff03::fc", hlim=64)
                    / IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=0x6D, optdata=b"\x40\x01\x02\x03")], autopad=0)
                    / UDP(sport=19788, dport=19788) / b"hbh"))
    raw = bytes(ip)
    comp = (iphc2(tf=3, nh=1, hlim=2, sam=3, m=1, dam=2) + bytes([0x03, 0x00, 0x00, 0xFC])
            + bytes([0xE1, 6]) + raw[42:48]  # NHC ext: 1110 EID=000 NH=1, length 6, the options
            + bytes([0xF0]) + raw[48:52] + raw[54:56] + b"hbh")  # NHC UDP, ports inline, checksum
    cases.append(("NHC Hop-by-Hop extension header (RFC 6282 §4.2) then NHC UDP", frame_ext_ext(comp, len(cases) + 1),
                  raw))
    # RFC 6282 §4.2: Destination Options (EID 3) whose 3 option bytes need PadN restored (2+3 -> 8).
    ip = IPv6(bytes(IPv6(src=ll_a, dst=ll_b, hlim=64)
                    / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=b"\xab"), PadN(optdata=b"\x00")],
                                        autopad=0)
                    / UDP(sport=1000, dport=1000) / b"dst"))
    raw = bytes(ip)
    comp = (iphc2(tf=3, nh=1, hlim=2, sam=3, dam=3)
            + bytes([0xE7, 3]) + raw[42:45]  # EID=011 NH=1, length 3: only the real option
            + bytes([0xF0]) + raw[48:52] + raw[54:56] + b"dst")
    cases.append(("NHC Destination Options needing PadN restored (RFC 6282 §4.2)", frame_ext_ext(comp, len(cases) + 1),
                  raw))
    # RFC 6282 §4.2 EID 7: IPv6-in-IPv6. The outer header carries 64-bit IIDs inline (fe80::1,
    # fe80::2); the inner IPHC elides its IIDs, which then come from the encapsulating IPv6 header.
    ob = bytes(IPv6(src="fe80::1", dst="fe80::2", hlim=64, nh=41)
               / IPv6(src="fe80::1", dst="fe80::2", hlim=64) / UDP(sport=1000, dport=1000) / b"inner")
    comp = (iphc2(tf=3, nh=1, hlim=2, sam=1, dam=1) + ob[16:24] + ob[32:40]
            + bytes([0xEE])  # NHC ext: EID=111 (IPv6), NH=0
            + iphc2(tf=3, nh=1, hlim=2, sam=3, dam=3)
            + bytes([0xF0]) + ob[80:84] + ob[86:88] + b"inner")
    cases.append(("IPv6-in-IPv6 NHC (EID 7), inner IIDs from the outer header", frame_ext_ext(comp, len(cases) + 1), ob))
    # RFC 4944 §5.1: uncompressed IPv6 dispatch (0x41)
    ip = IPv6(src=ll_a, dst=ll_b, hlim=64) / UDP(sport=7, dport=7) / b"raw"
    cases.append(("uncompressed IPv6 dispatch 0x41 (RFC 4944 §5.1)", frame_ext_ext(b"\x41" + bytes(ip), len(cases) + 1),
                  bytes(ip)))
    # RFC 4944 §5.2 mesh header (V=1 F=1: 16-bit originator/final, hops left 5) + §11.1 LOWPAN_BC0,
    # then IPHC with elided IIDs taken from the *mesh* addresses (RFC 6282 §3.2.2).
    ip = IPv6(src="fe80::ff:fe00:a", dst="fe80::ff:fe00:b", hlim=64) / UDP(sport=1000, dport=1000) / b"mesh"
    udp_ck = bytes(ip)[46:48]
    comp = (bytes([0x80 | 0x30 | 5]) + u16be(0x000A) + u16be(0x000B) + bytes([0x50, 0x33])
            + iphc2(tf=3, nh=1, hlim=2, sam=3, dam=3) + bytes([0xF0]) + struct.pack("!HH", 1000, 1000) + udp_ck
            + b"mesh")
    cases.append(("mesh header (16-bit addresses) + BC0 broadcast header", frame_short_short(comp, len(cases) + 1),
                  bytes(ip)))
    # Mesh header with 64-bit addresses and deep hops left (hops=0xF + 1 byte).
    ip = IPv6(src=ll_a, dst=ll_b, hlim=64) / UDP(sport=1000, dport=1000) / b"mesh64"
    comp = (bytes([0x80 | 0xF]) + bytes([20]) + bytes.fromhex(EXT_A.replace(":", ""))
            + bytes.fromhex(EXT_B.replace(":", "")) + iphc2(tf=3, nh=1, hlim=2, sam=3, dam=3) + bytes([0xF0])
            + struct.pack("!HH", 1000, 1000) + bytes(ip)[46:48] + b"mesh64")
    cases.append(("mesh header (64-bit addresses, deep hops left)", frame_short_short(comp, len(cases) + 1), bytes(ip)))

    # RFC 4944 §10.1/§10.3.2: LOWPAN_HC1 (dispatch 0x42), deprecated by RFC 6282 but still met.
    # (a) everything compressed: HC1 = 1111 1 01 1 (prefixes link-local, IIDs from the MAC, TC/FL
    #     zero, next header UDP, HC2 follows); HC2 = 111 00000 (4-bit ports 0xf0bX, length elided);
    #     inline: hop limit, the two 4-bit ports, checksum.
    ip = IPv6(bytes(IPv6(src=ll_a, dst=ll_b, hlim=64) / UDP(sport=0xF0B1, dport=0xF0B2) / b"hc1"))
    raw = bytes(ip)
    comp = b"\x42\xfb\xe0" + bytes([64, 0x12]) + raw[46:48] + b"hc1"
    cases.append(("HC1 + HC2, all compressed (RFC 4944 §10)", frame_ext_ext(comp, len(cases) + 1), raw))
    # (b) HC1 with nothing compressed: every field inline, not byte-aligned after the 20-bit flow
    #     label (hop limit, addresses, TC, flow label, next header, then 4 pad bits); UDP uncompressed.
    ip = IPv6(bytes(IPv6(tc=0x21, fl=0x54321, src="2001:db8::1", dst="2001:db8::2", hlim=9)
                    / UDP(sport=5683, dport=5683) / b"inline"))
    raw = bytes(ip)
    bits = BitWriter()
    bits.put(9, 8)
    for b in raw[8:40]:
        bits.put(b, 8)
    bits.put(0x21, 8)
    bits.put(0x54321, 20)
    bits.put(17, 8)
    comp = b"\x42\x00" + bits.done() + raw[40:]
    cases.append(("HC1 with every field inline, unaligned (RFC 4944 §10.1)", frame_ext_ext(comp, len(cases) + 1), raw))
    # (c) HC1 + HC2 with 16-bit ports and the length inline
    ip = IPv6(bytes(IPv6(src=ll_a, dst=ll_b, hlim=255) / UDP(sport=1000, dport=61631) / b"ports"))
    raw = bytes(ip)
    comp = b"\x42\xfb\x00" + bytes([255]) + raw[40:48] + b"ports"
    cases.append(("HC1 + HC2 with ports and length inline (RFC 4944 §10.3.2)", frame_ext_ext(comp, len(cases) + 1), raw))

    frames = [(T0 + i * 0.01, f + fcs(f)) for i, (_d, f, _o) in enumerate(cases)]
    write_pcap(HERE / "lowpan.pcap", frames, 195)
    (HERE / "lowpan_expected.json").write_text(json.dumps(
        [{"frame": i + 1, "desc": d, "ipv6": o.hex()} for i, (d, _f, o) in enumerate(cases)], indent=1) + "\n")


class BitWriter:
    """Big-endian bit packing for HC1's unaligned inline fields; pads the last byte with zeros."""

    def __init__(self) -> None:
        self.v = 0
        self.n = 0

    def put(self, value: int, bits: int) -> None:
        self.v = self.v << bits | (value & ((1 << bits) - 1))
        self.n += bits

    def done(self) -> bytes:
        pad = (-self.n) % 8
        return (self.v << pad).to_bytes((self.n + pad) // 8, "big")


def u16be(v: int) -> bytes:
    return struct.pack("!H", v)


def iphc2(tf: int = 3, nh: int = 1, hlim: int = 2, cid: int = 0, sac: int = 0, sam: int = 3, m: int = 0,
          dac: int = 0, dam: int = 3) -> bytes:
    """The two IPHC bytes (RFC 6282 §3.1.1): 011 TF NH HLIM | CID SAC SAM M DAC DAM."""
    return bytes([0x60 | tf << 3 | nh << 2 | hlim, cid << 7 | sac << 6 | sam << 4 | m << 3 | dac << 2 | dam])


def fragment(comp: bytes, hdr_len: int, orig: bytes, tag: int, room: int = 104) -> list[bytes]:
    """RFC 4944 §5.3 fragmentation of a compressed datagram, the way OpenThread does it.

    ``comp`` is the IPHC-compressed packet, whose compressed headers stand for the first
    ``hdr_len`` bytes of ``orig``. datagram_size and datagram_offset count *uncompressed* bytes
    (offsets in units of 8), so FRAG1 carries the compressed headers plus as much payload as keeps
    the next offset a multiple of 8; each FRAGN carries a multiple of 8 bytes except the last.
    ``room`` is what a 127-byte PSDU leaves after a 21-byte ext/ext MAC header and the FCS.
    scapy's own sixlowpan_fragment() cannot be used: it fragments the uncompressed packet and drops
    the dispatch byte.
    """
    size = len(orig)
    payload = orig[hdr_len:]
    hc = len(comp) - len(payload)
    k = room - 4 - hc
    k -= (hdr_len + k) % 8
    first = struct.pack("!HH", 0xC000 | size, tag) + comp[:hc] + payload[:k]
    out = [first]
    off = hdr_len + k
    step = (room - 5) // 8 * 8
    while off < size:
        chunk = orig[off : off + step]
        out.append(struct.pack("!HHB", 0xE000 | size, tag, off // 8) + chunk)
        off += len(chunk)
    return out


def lowpan_frag() -> None:
    """RFC 4944 §5.3 fragments of a 400-byte-payload UDP datagram, in several arrangements."""
    ll_a = "fe80::1034:5678:9abc:def0"
    ll_b = "fe80::11:2233:4455:6677"
    out: list[tuple[float, bytes]] = []
    expected: list[dict[str, object]] = []
    t = float(T0)

    def dgram(tag: int, n: int) -> tuple[IPv6, list[bytes]]:
        ip = IPv6(src=ll_a, dst=ll_b, hlim=64) / UDP(sport=1000, dport=1000) / bytes((i * 7 + tag) & 0xFF for i in range(n))
        ip = IPv6(bytes(ip))
        comp = bytes(LoWPAN_IPHC(tf=3, nh=1, hlim=2, sam=3, dam=3) / LoWPAN_NHC(exts=[LoWPAN_NHC_UDP(P=0)]) / ip)
        return ip, fragment(comp, 48, bytes(ip), tag)

    def emit(frag: bytes, dt: float = 0.001) -> int:
        nonlocal t
        t += dt
        f = frame_ext_ext(frag, len(out) % 256)
        out.append((t, f + fcs(f)))
        return len(out)

    # A: in order
    ip, frags = dgram(0x0101, 400)
    nums = [emit(f) for f in frags]
    expected.append({"case": "in order", "frames": nums, "complete_in": nums[-1], "ipv6": bytes(ip).hex()})
    # B: reversed order (the FRAG1 last)
    ip, frags = dgram(0x0202, 300)
    nums = [emit(f) for f in reversed(frags)]
    expected.append({"case": "reversed", "frames": sorted(nums), "complete_in": nums[-1], "ipv6": bytes(ip).hex()})
    # C: a FRAGN retransmitted (same bytes) before the datagram completes
    ip, frags = dgram(0x0303, 300)
    nums = [emit(frags[0]), emit(frags[1]), emit(frags[1])] + [emit(f) for f in frags[2:]]
    expected.append({"case": "duplicate", "frames": nums, "duplicate": nums[2], "complete_in": nums[-1],
                     "ipv6": bytes(ip).hex()})
    # D: a FRAGN overlapping with different bytes
    ip, frags = dgram(0x0404, 300)
    bad = bytearray(frags[1])
    bad[-1] ^= 0xFF
    nums = [emit(frags[0]), emit(bytes(bad))] + [emit(f) for f in frags[1:]]
    expected.append({"case": "conflict", "frames": nums, "conflict": nums[2], "complete_in": nums[-1]})
    # E: a lost fragment: never completes
    ip, frags = dgram(0x0505, 300)
    nums = [emit(f) for i, f in enumerate(frags) if i != 1]
    expected.append({"case": "lost", "frames": nums, "complete_in": None})
    # F: the rest arrives 61 s after the first fragment: the reassembly timer (60 s) expired
    ip, frags = dgram(0x0606, 300)
    first = emit(frags[0])
    nums = [emit(frags[1], 61.0)] + [emit(f) for f in frags[2:]]
    expected.append({"case": "timeout", "frames": [first, *nums], "expired_at": nums[0], "complete_in": None})
    write_pcap(HERE / "lowpan_frag.pcap", out, 195)
    (HERE / "lowpan_frag_expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def main() -> int:
    annexc()
    mac_frames()
    tap()
    nofcs()
    lowpan()
    lowpan_frag()
    return 0


if __name__ == "__main__":
    sys.exit(main())
