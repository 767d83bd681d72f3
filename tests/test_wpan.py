"""IEEE 802.15.4 MAC (wpan): link types 195/230/283, frame versions, addressing, IEs, commands, beacons.

Inputs: the real OpenThread capture (and copies of it re-encapsulated as no-FCS and TAP) and the
hand-built frames of ``tests/data/wpan/mac_frames.pcap`` (see make_fixtures.py for the IEEE
802.15.4-2015 section each one follows). The strongest checks are differential: tshark 4.0 decodes
the same files and every field both tools declare must agree.
"""

from __future__ import annotations

import struct

import pytest

from jpdissect.api import packets
from jpdissect.dissectors.wpan import crc16_itu, crc32_itu, pan_presence
from jpdissect.model import Group
from test_wpan_helpers import (
    KEY_PREF,
    THREAD_PCAP,
    WPAN,
    bugs,
    comparable_fields,
    diff_with_tshark,
    dissect_all,
    dissect_bytes,
    experts,
    needs_tshark,
    read_frames,
)

# tshark renders this BASE_NONE|SEP_SPACE byte field as "01 02"; the model's FT_BYTES is plain hex.
_FORMAT_ONLY = {"wpan.header_ie.vendor_specific.content"}


def _fields(*prefixes: str) -> list[str]:
    return [f for f in comparable_fields(*prefixes) if f not in _FORMAT_ONLY]


# ---------------------------------------------------------------------------
# Differential against tshark


@needs_tshark
def test_hand_built_mac_frames_match_tshark() -> None:
    """2003/2006/2015 frames, Table 7-2 PAN ID rows, IEs, commands, beacons, MPF, bad FCS."""
    bad = diff_with_tshark(WPAN / "mac_frames.pcap", _fields("wpan.", "thread_bcn."), [], [])
    assert not bad, "\n".join(bad)


@needs_tshark
def test_tap_encapsulation_matches_tshark() -> None:
    """LINKTYPE_IEEE802_15_4_TAP: TLVs (FCS type, RSS, channel, LQI) then the PSDU."""
    bad = diff_with_tshark(WPAN / "tap.pcap", _fields("wpan.", "wpan-tap."), [], [])
    assert not bad, "\n".join(bad)


@needs_tshark
def test_no_fcs_link_type_matches_tshark() -> None:
    bad = diff_with_tshark(WPAN / "nofcs.pcap", _fields("wpan."), [], [])
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------
# Direct checks


def test_fcs_is_itu_crc16_as_in_the_real_capture() -> None:
    """IEEE 802.15.4-2015 §7.2.10: every frame OpenThread sent carries a valid ITU-T CRC-16."""
    for fr in read_frames(THREAD_PCAP):
        assert crc16_itu(fr.data[:-2]) == struct.unpack("<H", fr.data[-2:])[0]
    assert crc16_itu(b"123456789") == 0x2189  # CRC-16/KERMIT check value
    assert crc32_itu(b"123456789") == 0xCBF43926  # the IEEE 802.3 CRC-32 check value


def test_every_frame_of_the_capture_has_wpan_fields_and_valid_fcs() -> None:
    pkts = dissect_all(THREAD_PCAP)
    assert len(pkts) == 341
    for p in pkts:
        assert not bugs(p), (p.number, bugs(p))
        assert p.get("wpan.fcs_ok") is True
        assert p.get("wpan.frame_length") == p.caplen - 2
    acks = [p for p in pkts if p.get("wpan.frame_type") == 2]
    assert len(acks) == 142 and all(p.info == "Ack" for p in acks)


def test_bad_fcs_is_noted_and_payload_not_dissected() -> None:
    pkts = dissect_all(WPAN / "mac_frames.pcap")
    bad = pkts[-1]
    assert bad.get("wpan.fcs_ok") is False
    assert "Bad FCS" in experts(bad, Group.CHECKSUM)
    assert bad.info.endswith(", Bad FCS")
    # wpan.802154_fcs_ok (default on): the payload of a frame with a bad FCS is only data
    assert bad.protocols == "wpan:data"
    good_again = dissect_all(WPAN / "mac_frames.pcap", prefs=["wpan.802154_fcs_ok:false"])[-1]
    assert "6lowpan" in good_again.protocols


def test_version_and_pan_id_compression_table() -> None:
    """IEEE 802.15.4-2015 Table 7-2 (2015 frames) and §7.2.2.6 (2003/2006)."""
    assert pan_presence(1, 1, 2, 2, True) == (True, False)
    assert pan_presence(1, 1, 2, 3, False) == (True, True)
    assert pan_presence(1, 1, 2, 0, True) is None  # compression without both addresses
    assert pan_presence(2, 1, 3, 3, False) == (True, False)  # row 7
    assert pan_presence(2, 1, 3, 3, True) == (False, False)  # row 8
    assert pan_presence(2, 1, 2, 2, False) == (True, True)  # row 9
    assert pan_presence(2, 1, 0, 0, True) == (True, False)  # row 2
    assert pan_presence(2, 1, 2, 0, True) == (False, False)  # row 4
    assert pan_presence(2, 1, 0, 2, False) == (False, True)  # row 5
    pkts = dissect_all(WPAN / "mac_frames.pcap")
    row8 = pkts[8]
    assert row8.get("wpan.version") == 2 and row8.get("wpan.dst_pan") is None
    assert row8.get("wpan.dst64") == bytes.fromhex("52e339ea96b254ca")


def test_header_and_payload_ies() -> None:
    pkts = dissect_all(WPAN / "mac_frames.pcap")
    csl = pkts[4]
    assert csl.values("wpan.header_ie.id") == [0x1A, 0x00, 0x7F]
    assert csl.get("wpan.header_ie.csl.phase") == 0x0123 and csl.get("wpan.header_ie.csl.period") == 3125
    assert csl.get("wpan.header_ie.vendor_specific.vendor_oui") == 0xEAB89B  # Thread Group OUI
    assert "6lowpan" in csl.protocols  # HT2: the payload follows the header IEs
    enh_ack = pkts[5]
    assert enh_ack.get("wpan.header_ie.time_correction.value") == 12 and enh_ack.get("wpan.nack") is False
    nack = pkts[6]
    assert nack.get("wpan.seq_no") is None and nack.get("wpan.seqno_suppression") is True
    assert nack.get("wpan.header_ie.time_correction.value") == -5 and nack.get("wpan.nack") is True
    pie = pkts[12]
    assert pie.values("wpan.payload_ie.id") == [0x1, 0x2, 0xF]
    assert pie.get("wpan.tsch.asn") == 0x0504030201 and pie.get("wpan.tsch.join_metric") == 7
    assert pie.values("data.data")[-1] == b"\x00\x01\x02"


def test_mac_commands_and_beacons() -> None:
    pkts = dissect_all(WPAN / "mac_frames.pcap")
    names = [p.info.split(",")[0] for p in pkts[13:20]]
    assert names == ["Data Request", "Beacon Request", "Association Request", "Association Response",
                     "Disassociation Notification", "Coordinator Realignment", "GTS Request"]
    assoc_req = pkts[15]
    assert assoc_req.get("wpan.cinfo.alloc_addr") is True and assoc_req.get("wpan.cinfo.device_type") is True
    assoc_rsp = pkts[16]
    assert assoc_rsp.get("wpan.asoc.addr") == 0x0C05 and assoc_rsp.get("wpan.assoc.status") == 0
    bcn = pkts[20]
    assert bcn.protocols == "wpan:thread_bcn"
    assert bcn.get("thread_bcn.network_name") == "jpdissect-lab"
    assert bcn.get("thread_bcn.epid") == bytes.fromhex("7b280665d5f6198c")
    assert bcn.get("thread_bcn.joining") is True and bcn.get("thread_bcn.version") == 2
    assert bcn.get("wpan.assoc_permit") is True
    gts = pkts[21]
    assert gts.values("wpan.gts.address") == [0x0C05, 0x0C06]
    assert gts.get("wpan.pending16") == 0x0C07


def test_association_response_teaches_the_short_address() -> None:
    """A successful Association Response maps (PAN, short) to the device's EUI-64 (§7.5.3)."""
    pkts = dissect_all(WPAN / "mac_frames.pcap")
    # frame 20 (GTS Request) is sent from short 0x0c05, which frame 17 assigned to f2:cd:...
    assert pkts[19].get("wpan.src64") == bytes.fromhex("f2cdbbb94825e880")
    assert pkts[19].get("wpan.src64.origin") == 17


def test_malformed_headers_are_reported_not_raised() -> None:
    pkts = dissect_all(WPAN / "mac_frames.pcap")
    for p in pkts[23:26]:
        assert p.has("_ws.malformed") and not bugs(p)
        assert p.get("wpan.fcs") is None  # like Wireshark: nothing after an unparsable header


def test_truncated_frames_never_raise() -> None:
    """Every prefix of every frame of the capture and of the hand-built set: never a dissector bug."""
    frames = [f.data for f in read_frames(THREAD_PCAP)[:60]] + [f.data for f in read_frames(WPAN / "mac_frames.pcap")]
    cut = [d[:n] for d in frames for n in range(len(d))]
    for lt in (195, 230, 283):
        for p in dissect_bytes(cut, lt, prefs=["thread.network_key:17c627a33d5927bf887ae312092611b7"]):
            assert not bugs(p), (lt, p.data.hex(), bugs(p))


def test_fcs_format_preference() -> None:
    """wpan.fcs_format: the capture read with a 32-bit FCS fails the check; CC24xx reads metadata."""
    frames = [f.data for f in read_frames(THREAD_PCAP)[:3]]
    p32 = dissect_bytes(frames, 195, prefs=["wpan.fcs_format:ITU-T CRC-32"])
    assert all(p.get("wpan.fcs_ok") is False and p.get("wpan.fcs32") is not None for p in p32)
    cc = dissect_bytes([frames[0][:-2] + bytes([0xC4, 0x80 | 0x6B])], 195, prefs=["wpan.fcs_format:cc24xx"])[0]
    assert cc.get("wpan.rssi") == -60 and cc.get("wpan.correlation") == 0x6B and cc.get("wpan.fcs_ok") is True


def test_nonask_phy_header() -> None:
    """LINKTYPE_IEEE802_15_4_NONASK_PHY (215): preamble, SFD, PHR (frame length) then the PSDU."""
    fr = read_frames(THREAD_PCAP)[0].data
    p = dissect_bytes([bytes(4) + b"\xa7" + bytes([len(fr)]) + fr], 215)[0]
    assert p.get("wpan-nonask-phy.sfd") == 0xA7 and p.get("wpan-nonask-phy.frame_length") == len(fr)
    assert p.get("wpan.fcs_ok") is True and p.get("wpan.src64") == bytes.fromhex("52e339ea96b254ca")


@pytest.mark.parametrize("lt", [230, 283])
def test_no_fcs_and_tap_decode_like_the_original(lt: int) -> None:
    path = WPAN / ("nofcs.pcap" if lt == 230 else "tap.pcap")
    ours = dissect_all(path)
    orig = dissect_all(THREAD_PCAP)
    same = ours if lt == 230 else ours[:20]  # tap.pcap: 20 frames of the capture, then frame 1 without FCS
    for a, b in zip(same, orig, strict=False):
        for f in ("wpan.seq_no", "wpan.src64", "wpan.dst16", "wpan.frame_type", "6lowpan.src"):
            assert a.values(f) == b.values(f), (a.number, f)
    if lt == 283:
        assert ours[0].get("wpan-tap.ch_num") == 19 and ours[0].get("wpan-tap.lqi") == 200
        assert ours[0].get("wpan-tap.rss") == -50.5
        assert ours[-1].get("wpan-tap.fcs_type") == 0 and ours[-1].get("wpan.fcs") is None


@pytest.mark.parametrize(("flt", "count"), [
    ("wpan.addr16 == 0x5000", 67), ("wpan.fcs_ok", 341), ("wpan.src64.origin == 21", 41),
    ("6lowpan.fragment.count > 4", 14),
])
def test_display_filters_on_radio_fields(flt: str, count: int) -> None:
    """Hidden fields (wpan.addr16, wpan.fcs_ok) stay filterable; counts are tshark's with the key."""
    assert len(list(packets(THREAD_PCAP, filter=flt, prefs=[KEY_PREF]))) == count


def test_mutated_frames_never_raise() -> None:
    """Seeded mutations (bit flips, overwrites, cuts, appended junk) of real and hand-built frames,
    under every radio link type: whatever the bytes, no dissector raises (802.15.4 to MLE/CoAP)."""
    import random

    rnd = random.Random(4944)
    base = ([f.data for f in read_frames(THREAD_PCAP)] + [f.data for f in read_frames(WPAN / "mac_frames.pcap")]
            + [f.data[:-2] for f in read_frames(WPAN / "lowpan.pcap")])
    frames: list[tuple[int, bytes]] = []
    for _ in range(3000):
        d = bytearray(rnd.choice(base))
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            if op < 0.5 and d:
                d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8)
            elif op < 0.7 and d:
                d[rnd.randrange(len(d))] = rnd.randrange(256)
            elif op < 0.85:
                del d[rnd.randrange(len(d) + 1):]
            else:
                d += bytes(rnd.randrange(256) for _ in range(rnd.randrange(8)))
        frames.append((rnd.choice([195, 215, 230, 283]), bytes(d)))
    for lt in (195, 215, 230, 283):
        batch = [d for t, d in frames if t == lt]
        for p in dissect_bytes(batch, lt, prefs=[KEY_PREF, "6lowpan.context0:fd00::/64"]):
            assert not bugs(p), (lt, p.data.hex(), bugs(p))
