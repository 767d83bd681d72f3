"""Capture input/output: pcap and pcapng readers, gzip and stdin, damage handling, writers.

Fixtures are hand-built here, byte by byte, with builders that follow the specs directly
(draft-ietf-opsawg-pcap §4-§5, draft-ietf-opsawg-pcapng §3-§4 and Appendix A) and share no
code with the readers, so a reader bug cannot hide behind the same bug in the fixture.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from jpdissect import capture
from jpdissect.capture import (
    MAX_BLOCK_SIZE,
    PCAP_MAX_CAPLEN,
    CaptureError,
    CaptureFormatError,
    Frame,
    Interface,
    NameRecord,
    open_capture,
)
from jpdissect.capture.writer import PcapngWriter, PcapWriter

DATA = Path(__file__).parent / "data" / "capture"
THREAD = Path("/work/shared/captures/thread")
NS = 1_000_000_000


# ---------------------------------------------------------------------------------------------
# Builders. pcap: draft-ietf-opsawg-pcap §4 (File Header) and §5 (Packet Record).
# ---------------------------------------------------------------------------------------------
def pcap_header(bo: str = "<", nano: bool = False, linktype: int = 1, snaplen: int = 65535,
                major: int = 2, minor: int = 4, network: int | None = None) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    net = linktype if network is None else network
    return struct.pack(bo + "IHHIIII", magic, major, minor, 0, 0, snaplen, net)


def pcap_record(bo: str, sec: int, frac: int, data: bytes, wirelen: int | None = None) -> bytes:
    return struct.pack(bo + "IIII", sec, frac, len(data), len(data) if wirelen is None else wirelen) + data


def build_pcap(bo: str = "<", nano: bool = False, linktype: int = 1,
               packets: list[tuple[int, int, bytes]] | None = None) -> bytes:
    """A pcap of ``packets`` = [(seconds, fraction, data)] (fraction in µs or ns by ``nano``)."""
    if packets is None:
        packets = [(1_700_000_000 + i, 1000 * i + 7, bytes(range(i, i + 5 + 3 * i))) for i in range(5)]
    return pcap_header(bo, nano, linktype) + b"".join(pcap_record(bo, s, f, d) for s, f, d in packets)


# pcapng: §3.1 block = type, total length, body padded to 32 bits, total length again.
def pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) & 3)


def opt(bo: str, code: int, value: bytes) -> bytes:
    """§3.5: option code (16), option length (16), value padded to 32 bits."""
    return struct.pack(bo + "HH", code, len(value)) + pad4(value)


def end_opt() -> bytes:
    return b"\x00\x00\x00\x00"  # opt_endofopt


def block(bo: str, btype: int, body: bytes) -> bytes:
    body = pad4(body)
    n = len(body) + 12
    return struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n)


def shb(bo: str, options: bytes = b"", major: int = 1, minor: int = 0) -> bytes:
    """§4.1: Byte-Order Magic 0x1A2B3C4D, version, Section Length (-1 = unknown), options."""
    return block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, major, minor, -1) + options)


def idb(bo: str, linktype: int, snaplen: int = 0, options: bytes = b"") -> bytes:
    """§4.2: LinkType (16), Reserved (16), SnapLen (32), options."""
    return block(bo, 1, struct.pack(bo + "HHI", linktype, 0, snaplen) + options)


def epb(bo: str, iid: int, ts: int, data: bytes, wirelen: int | None = None,
        options: bytes = b"") -> bytes:
    """§4.3: Interface ID, Timestamp (Upper), Timestamp (Lower), Captured and Original Packet
    Length, Packet Data padded to 32 bits, options. ``ts`` is in the interface's units."""
    wl = len(data) if wirelen is None else wirelen
    return block(bo, 6, struct.pack(bo + "IIIII", iid, ts >> 32, ts & 0xFFFFFFFF, len(data), wl)
                 + pad4(data) + options)


def spb(bo: str, wirelen: int, data: bytes) -> bytes:
    """§4.4: Original Packet Length, Packet Data."""
    return block(bo, 3, struct.pack(bo + "I", wirelen) + data)


def pb(bo: str, iid: int, ts: int, data: bytes, options: bytes = b"") -> bytes:
    """Appendix A (obsolete Packet Block): Interface ID (16), Drops Count (16), then as an EPB."""
    return block(bo, 2, struct.pack(bo + "HHIIII", iid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                    len(data)) + pad4(data) + options)


def nrb(bo: str, records: list[tuple[int, bytes]]) -> bytes:
    """§4.5: records of Record Type (16), Record Value Length (16), value padded; nrb_record_end."""
    body = b"".join(struct.pack(bo + "HH", t, len(v)) + pad4(v) for t, v in records)
    return block(bo, 4, body + struct.pack(bo + "HH", 0, 0))


def dsb(bo: str, stype: int, data: bytes) -> bytes:
    """§4.7: Secrets Type (32), Secrets Length (32), Secrets Data padded."""
    return block(bo, 0x0A, struct.pack(bo + "II", stype, len(data)) + pad4(data))


def isb(bo: str, iid: int) -> bytes:
    """§4.6: Interface ID, Timestamp (Upper, Lower), options (none here)."""
    return block(bo, 5, struct.pack(bo + "III", iid, 0, 0))


def custom_block(bo: str) -> bytes:
    """§4.8: Custom Block 0x00000BAD with a Private Enterprise Number and data."""
    return block(bo, 0x00000BAD, struct.pack(bo + "I", 32473) + b"custom!!")


def tsresol(bo: str, v: int) -> bytes:
    return opt(bo, 9, bytes([v]))


def build_multi_section() -> bytes:
    """Two sections of opposite byte order, three interfaces with different link types and
    timestamp resolutions, every block type we read or skip, comments and flags."""
    le, be = "<", ">"
    s1 = b"".join([
        shb(le, opt(le, 1, b"section one") + opt(le, 4, b"test builder") + end_opt()),
        idb(le, 1, 65535, opt(le, 2, b"eth0") + opt(le, 3, b"wired") + tsresol(le, 6) + end_opt()),
        idb(le, 195, 0, opt(le, 2, b"wpan0") + tsresol(le, 9) + end_opt()),
        epb(le, 0, 1_700_000_000_000_001, b"\x01" * 14),
        nrb(le, [(1, bytes([192, 0, 2, 1]) + b"pledge.example\x00"),
                 (2, bytes(15) + b"\x01" + b"localhost6\x00alias6\x00")]),
        epb(le, 1, 1_700_000_000_123_456_789, b"\x41\xd8\x85" + b"\x02" * 20,
            options=opt(le, 1, b"first comment") + opt(le, 1, b"second comment")
            + opt(le, 2, struct.pack(le + "I", 0x00000001)) + end_opt()),
        dsb(le, 0x544C534B, b"CLIENT_RANDOM 00 11\n"),
        isb(le, 0),
        custom_block(le),
        block(le, 0x7FFF1234, b"unknown block type"),
        spb(le, 60, b"\x03" * 60),  # interface 0 (snaplen 65535): caplen = wirelen = 60
        pb(le, 1, 1_700_000_001_000_000_000, b"\x04" * 9, opt(le, 1, b"old packet block") + end_opt()),
    ])
    s2 = b"".join([
        shb(be, end_opt()),
        idb(be, 147, 16, tsresol(be, 0x80 | 20) + end_opt()),  # 2^-20 s units, snaplen 16
        epb(be, 0, (1_700_000_002 << 20) + (1 << 19), b"\x05" * 16),  # .5 s
        spb(be, 40, b"\x06" * 16),  # caplen = min(wirelen 40, snaplen 16) = 16
    ])
    return s1 + s2


def frames_of(source: object) -> tuple[list[Frame], CaptureError | None]:
    with open_capture(source) as r:  # type: ignore[arg-type]
        frames = list(r)
        return frames, r.error


def key(f: Frame) -> tuple[object, ...]:
    """What must survive a write/read round trip (offsets and interface numbering may not)."""
    return (f.ts_ns, f.caplen, f.wirelen, f.data, f.linktype, f.comments, f.flags)


# ---------------------------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bo", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, bo: str, nano: bool) -> None:
    """§4: the magic read in either byte order gives byte order and µs/ns resolution."""
    pkts = [(1_700_000_000, 999_999, b"abc"), (1_700_000_001, 0, b""), (5, 123, bytes(300))]
    p = tmp_path / "x.pcap"
    p.write_bytes(build_pcap(bo, nano, 228, pkts))
    with open_capture(p) as r:
        assert r.format == "pcap" and not r.compressed and r.random_access
        frames = list(r)
        assert r.error is None
        assert [i.linktype for i in r.interfaces] == [228]
        assert r.interfaces[0].ts_units_per_second == (NS if nano else 10**6)
    mult = 1 if nano else 1000
    assert [f.ts_ns for f in frames] == [s * NS + fr * mult for s, fr, _ in pkts]
    assert [f.data for f in frames] == [d for *_, d in pkts]
    assert all(f.caplen == len(f.data) == f.wirelen and f.linktype == 228 for f in frames)
    assert all(f.interface_id == 0 and f.comments == () and f.flags is None for f in frames)
    assert [f.offset for f in frames] == [24, 24 + 16 + 3, 24 + 32 + 3]
    assert all(isinstance(f.data, bytes) for f in frames)


def test_pcap_linktype_field_keeps_only_the_link_type_and_reads_fcs_len() -> None:
    """§4 Figure 2: FCS len(4) | R | P | Reserved3 | LinkType(16); P set -> FCS len in 16-bit words."""
    network = (2 << 28) | 0x04000000 | 1  # Ethernet, 4-byte FCS
    data = pcap_header(network=network) + pcap_record("<", 1, 2, b"x" * 18)
    with open_capture(io.BytesIO(data)) as r:
        assert [f.linktype for f in r] == [1]
        assert r.interfaces[0].fcslen == 4


def test_pcap_wirelen_differs_from_caplen() -> None:
    data = pcap_header(snaplen=8) + pcap_record("<", 1, 2, b"12345678", wirelen=1500)
    (f,), err = frames_of(io.BytesIO(data))
    assert (f.caplen, f.wirelen, err) == (8, 1500, None)


def test_pcap_unsupported_major_version() -> None:
    with pytest.raises(CaptureFormatError, match="major version 3 unsupported"):
        open_capture(io.BytesIO(pcap_header(major=3)))


@pytest.mark.parametrize("magic", [b"\xa1\xb2\xcd\x34", b"\x34\xcd\xb2\xa1"])
def test_modified_pcap_is_rejected_with_a_clear_message(magic: bytes) -> None:
    with pytest.raises(CaptureFormatError, match=r'modified \("Kuznetzov"\) pcap') as ei:
        open_capture(io.BytesIO(magic + bytes(40)))
    assert "\n" not in str(ei.value)


def test_pcap_header_only_is_an_empty_capture() -> None:
    assert frames_of(io.BytesIO(pcap_header())) == ([], None)


def test_pcap_oversized_record_stops_with_error_after_good_frames() -> None:
    """Wireshark's limit (262144) with its wording; frames before the bad record are kept."""
    good = build_pcap()
    bad_at = len(good)
    data = good + struct.pack("<IIII", 1, 2, PCAP_MAX_CAPLEN + 1, 10) + bytes(64)
    frames, err = frames_of(io.BytesIO(data))
    assert len(frames) == 5
    assert err is not None and err.offset == bad_at and not err.truncated
    assert err.detail == "pcap: File has 262145-byte packet, bigger than maximum of 262144"
    assert str(err) == (
        'jpdissect: The file "<stream>" appears to be damaged or corrupt: pcap: File has '
        f"262145-byte packet, bigger than maximum of 262144 (at byte offset {bad_at}).")


def test_pcap_record_at_the_maximum_is_read() -> None:
    data = pcap_header(snaplen=PCAP_MAX_CAPLEN) + pcap_record("<", 1, 0, bytes(PCAP_MAX_CAPLEN))
    (f,), err = frames_of(io.BytesIO(data))
    assert f.caplen == PCAP_MAX_CAPLEN and err is None


# ---------------------------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bo", ["<", ">"])
def test_pcapng_basic_both_byte_orders(bo: str) -> None:
    data = (shb(bo, end_opt()) + idb(bo, 1, 96, tsresol(bo, 9) + end_opt())
            + epb(bo, 0, 1_700_000_000_000_000_001, b"hello", wirelen=60)
            + epb(bo, 0, 1_700_000_000_500_000_000, b"world!!", options=end_opt()))
    with open_capture(io.BytesIO(data)) as r:
        assert r.format == "pcapng"
        frames = list(r)
        assert r.error is None
        assert r.sections[0].big_endian is (bo == ">")
    assert [(f.ts_ns, f.data, f.caplen, f.wirelen, f.linktype) for f in frames] == [
        (1_700_000_000_000_000_001, b"hello", 5, 60, 1),
        (1_700_000_000_500_000_000, b"world!!", 7, 7, 1),
    ]


def test_pcapng_multi_section_everything() -> None:
    """Sections of both byte orders, interface ids renumbered file-wide, SPB/PB, NRB, DSB, ISB,
    custom and unknown blocks skipped, comments and flags, per-interface resolutions."""
    data = build_multi_section()
    with open_capture(io.BytesIO(data)) as r:
        frames = list(r)
        assert r.error is None
        assert [(s.big_endian, s.version) for s in r.sections] == [(False, (1, 0)), (True, (1, 0))]
        assert r.sections[0].comments == ("section one",)
        assert r.sections[0].userappl == "test builder"
        assert [(i.linktype, i.name, i.section, i.local_id) for i in r.interfaces] == [
            (1, "eth0", 0, 0), (195, "wpan0", 0, 1), (147, None, 1, 0)]
        assert r.interfaces[0].description == "wired"
        assert [i.ts_units_per_second for i in r.interfaces] == [10**6, 10**9, 2**20]
        assert [i.tsresol for i in r.interfaces] == [6, 9, 0x94]
        assert r.secrets == [(0x544C534B, b"CLIENT_RANDOM 00 11\n")]
        assert r.name_resolution == [NameRecord("192.0.2.1", ("pledge.example",)),
                                     NameRecord("::1", ("localhost6", "alias6"))]
    got = [(f.interface_id, f.linktype, f.ts_ns, f.caplen, f.wirelen, f.comments, f.flags)
           for f in frames]
    assert got == [
        (0, 1, 1_700_000_000_000_001_000, 14, 14, (), None),
        (1, 195, 1_700_000_000_123_456_789, 23, 23, ("first comment", "second comment"), 1),
        (0, 1, 0, 60, 60, (), None),  # SPB: no timestamp
        (1, 195, 1_700_000_001_000_000_000, 9, 9, ("old packet block",), None),
        (2, 147, 1_700_000_002_500_000_000, 16, 16, (), None),
        (2, 147, 0, 16, 40, (), None),  # SPB: caplen = min(wirelen, snaplen 16)
    ]
    assert frames[1].data == b"\x41\xd8\x85" + b"\x02" * 20
    assert frames[5].data == b"\x06" * 16
    offsets = [f.offset for f in frames]
    assert offsets == sorted(set(offsets))
    for f in frames:  # each offset points at the block type of a packet block
        bo = ">" if f.interface_id == 2 else "<"
        assert struct.unpack_from(bo + "I", data, f.offset)[0] in (2, 3, 6)


def test_committed_fixture_matches_builder() -> None:
    """tests/data/capture/multi_section.pcapng is build_multi_section(), for other tests to use."""
    assert (DATA / "multi_section.pcapng").read_bytes() == build_multi_section()
    assert (DATA / "be_ns.pcap").read_bytes() == build_pcap(">", True, 195)


@pytest.mark.parametrize(("resol", "ts", "expect_ns"), [
    (6, 1_700_000_000_000_001, 1_700_000_000_000_001_000),       # 10^-6 (the default value)
    (9, 1_700_000_000_000_000_001, 1_700_000_000_000_000_001),   # 10^-9
    (3, 1_700_000_000_001, 1_700_000_000_001_000_000),           # 10^-3
    (12, 1_000_000_000_001_999, 1_000_000_000_001),  # 10^-12 (ps): floor to ns
    (0x80 | 20, (1_700_000_000 << 20) | 1, 1_700_000_000 * NS + 953),  # 2^-20: 1/1048576 s
    (0x80 | 0, 1_700_000_000, 1_700_000_000 * NS),              # 2^0 = whole seconds
    (None, 1_700_000_000_000_001, 1_700_000_000_000_001_000),    # absent -> 10^-6 (§4.2)
])
def test_if_tsresol(resol: int | None, ts: int, expect_ns: int) -> None:
    """§4.2 if_tsresol: MSB 0 -> 10^-n seconds, MSB 1 -> 2^-n seconds."""
    o = (tsresol("<", resol) if resol is not None else b"") + end_opt()
    data = shb("<") + idb("<", 1, 0, o) + epb("<", 0, ts, b"x")
    (f,), err = frames_of(io.BytesIO(data))
    assert err is None and f.ts_ns == expect_ns


@pytest.mark.parametrize("offset_s", [3600, -3600])
def test_if_tsoffset_is_added_in_seconds(offset_s: int) -> None:
    """§4.2 if_tsoffset: a signed 64-bit number of seconds added to every timestamp."""
    o = tsresol("<", 9) + opt("<", 14, struct.pack("<q", offset_s)) + end_opt()
    data = shb("<") + idb("<", 1, 0, o) + epb("<", 0, 5 * NS + 7, b"x")
    (f,), _ = frames_of(io.BytesIO(data))
    assert f.ts_ns == (5 + offset_s) * NS + 7


def test_idb_after_packets_and_interfaces_per_section() -> None:
    """§3.4 Figure 6: an IDB may come after packets of other interfaces; ids restart per section."""
    data = (shb("<") + idb("<", 1) + epb("<", 0, 1, b"a") + idb("<", 105) + epb("<", 1, 2, b"b")
            + shb("<") + idb("<", 195) + epb("<", 0, 3, b"c"))
    frames, err = frames_of(io.BytesIO(data))
    assert err is None
    assert [(f.interface_id, f.linktype) for f in frames] == [(0, 1), (1, 105), (2, 195)]


def test_open_reads_metadata_before_first_packet() -> None:
    """IDBs, DSBs and NRBs that precede the first packet are known as soon as open returns."""
    r = open_capture(io.BytesIO(build_multi_section()))
    assert len(r.interfaces) == 2 and r.name_resolution == []
    list(r)
    assert len(r.interfaces) == 3 and r.secrets


def test_epb_options_malformed_tail_keeps_the_packet() -> None:
    """§3.5 options are not needed for packet processing: a bad option length loses options only."""
    bad = struct.pack("<HH", 1, 200) + b"abcd"  # claims 200 bytes, has 4
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, b"pkt", options=opt("<", 1, b"ok") + bad)
    (f,), err = frames_of(io.BytesIO(data))
    assert err is None and f.data == b"pkt" and f.comments == ("ok",)


def test_unsupported_section_version_skipped_until_next_shb() -> None:
    """§3.4: a section of a version we cannot read is skipped up to the next SHB."""
    data = (shb("<") + idb("<", 1) + epb("<", 0, 1, b"a")
            + shb("<", major=2) + idb("<", 2) + epb("<", 0, 2, b"skipped")
            + shb(">") + idb(">", 3) + epb(">", 0, 3, b"c"))
    frames, err = frames_of(io.BytesIO(data))
    assert err is None and [f.data for f in frames] == [b"a", b"c"]


def test_first_section_unsupported_version_is_a_format_error() -> None:
    with pytest.raises(CaptureFormatError, match=r"unknown SHB version 2\.0"):
        open_capture(io.BytesIO(shb("<", major=2)))


def test_bad_byte_order_magic_is_not_a_capture() -> None:
    data = bytearray(shb("<"))
    data[8:12] = b"XXXX"
    with pytest.raises(CaptureFormatError, match="isn't a capture file"):
        open_capture(io.BytesIO(bytes(data)))


def _first_block_damage(data: bytes) -> tuple[list[Frame], CaptureError]:
    frames, err = frames_of(io.BytesIO(data))
    assert err is not None
    return frames, err


def test_pcapng_damage_kinds() -> None:
    """Each length rule of §3.1 (and our bound) stops reading at the offending block."""
    head = shb("<") + idb("<", 1) + epb("<", 0, 1, b"good")
    at = len(head)
    cases = {
        "too small": struct.pack("<II", 6, 8) + bytes(8),
        "not a multiple of 4": struct.pack("<II", 6, 34) + bytes(40),
        "bigger than maximum": struct.pack("<II", 6, MAX_BLOCK_SIZE + 4) + bytes(40),
        "don't match": epb("<", 0, 2, b"x")[:-4] + struct.pack("<I", 4),
        "interface index 7 is not less than interface count 1": epb("<", 7, 2, b"x"),
        "less than the minimum EPB size": block("<", 6, bytes(16)),
        "too small for 100 bytes": block("<", 6, struct.pack("<IIIII", 0, 0, 0, 100, 100) + bytes(8)),
        "SPB appeared before any IDBs": b"",  # handled below
        "of an SPB is too small for 100 bytes": spb("<", 100, b"\x00" * 20),
        "secrets length": block("<", 0x0A, struct.pack("<II", 1, 1000) + bytes(8)),
        "less than the minimum IDB size": block("<", 1, b"\x00\x00\x00\x00"),
    }
    for what, tail in cases.items():
        if not tail:
            continue
        frames, err = _first_block_damage(head + tail + epb("<", 0, 3, b"never"))
        assert [f.data for f in frames] == [b"good"], what
        assert err.offset == at and what in (err.detail or ""), (what, err.detail)
        assert str(err).startswith('jpdissect: The file "<stream>" appears to be damaged or corrupt: pcapng:')
    frames, err = _first_block_damage(shb("<") + spb("<", 4, b"abcd"))
    assert frames == [] and err.detail == "pcapng: SPB appeared before any IDBs"


def test_hostile_block_length_does_not_allocate_it() -> None:
    """A block claiming ~256 MiB in a tiny file: an error, and memory stays small."""
    data = shb("<") + idb("<", 1) + struct.pack("<II", 6, MAX_BLOCK_SIZE) + bytes(100)
    tracemalloc.start()
    try:
        frames, err = frames_of(io.BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == [] and err is not None and err.truncated
    assert peak < 8 * capture.CHUNK_SIZE


def test_big_blocks_across_chunk_boundaries() -> None:
    """Blocks bigger than a chunk and records straddling chunk boundaries read the same."""
    big = bytes(range(256)) * (3 * capture.CHUNK_SIZE // 256 + 7)
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, b"a") + epb("<", 0, 2, big) + epb("<", 0, 3, b"z")
    frames, err = frames_of(io.BytesIO(data))
    assert err is None and [f.data for f in frames] == [b"a", big, b"z"]
    pkts = [(i, i, bytes([i & 255]) * (i % 1500)) for i in range(3000)]  # ~2.2 MB
    frames, err = frames_of(io.BytesIO(build_pcap(packets=pkts)))
    assert err is None and [f.data for f in frames] == [d for *_, d in pkts]


class ShortReads(io.RawIOBase):
    """A non-seekable stream returning at most a few bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int = 3) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._step = step
        self._n = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        self._n += 1
        k = min(len(b), len(self._data), 1 + self._n % self._step)
        b[:k] = self._data[:k]
        self._data = self._data[k:]
        return k


@pytest.mark.parametrize("chunk", [1, 5, 13, 64])
def test_tiny_chunks_and_short_reads_give_identical_results(chunk: int) -> None:
    """The chunk loop must not depend on where chunk boundaries fall."""
    for data in (build_multi_section(), build_pcap(), build_pcap(">", True)):
        ref = frames_of(io.BytesIO(data))
        cut = data[:-3]
        ref_cut = frames_of(io.BytesIO(cut))
        with mock.patch.object(capture, "CHUNK_SIZE", chunk):
            assert frames_of(io.BytesIO(data)) == ref
            assert frames_of(ShortReads(data)) == ref
            a, b = frames_of(ShortReads(cut, 7)), ref_cut
            assert a[0] == b[0] and str(a[1]) == str(b[1])


# ---------------------------------------------------------------------------------------------
# Truncation at every byte offset
# ---------------------------------------------------------------------------------------------
def _record_ends_pcap(data: bytes) -> list[tuple[int, int]]:
    out, pos = [], 24
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos, pos + 16 + caplen))
        pos += 16 + caplen
    return out


def _block_spans(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, type) of every block, following SHB byte orders."""
    out, pos, bo = [], 0, "<"
    while pos < len(data):
        btype = struct.unpack_from("<I", data, pos)[0]
        if btype == 0x0A0D0D0A:
            bo = "<" if data[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, n = struct.unpack_from(bo + "II", data, pos)
        out.append((pos, pos + n, btype))
        pos += n
    return out


def test_pcap_truncated_at_every_offset() -> None:
    data = build_pcap()
    full, _ = frames_of(io.BytesIO(data))
    spans = _record_ends_pcap(data)
    for k in range(len(data) + 1):
        if k < 24:
            with pytest.raises(CaptureFormatError):
                open_capture(io.BytesIO(data[:k]))
            continue
        frames, err = frames_of(io.BytesIO(data[:k]))
        done = [i for i, (_, e) in enumerate(spans) if e <= k]
        assert frames == full[:len(done)], k
        partial = [s for s, e in spans if s < k < e]
        if partial:
            assert err is not None and err.truncated and err.offset == partial[0], k
            assert str(err).endswith(f"cut short in the middle of a packet (at byte offset {partial[0]}).")
        else:
            assert err is None, k


def test_pcapng_truncated_at_every_offset() -> None:
    data = build_multi_section()
    full, _ = frames_of(io.BytesIO(data))
    spans = _block_spans(data)
    first_shb_end = spans[0][1]
    packet_blocks = [s for s, _, t in spans if t in (2, 3, 6)]
    for k in range(len(data) + 1):
        if k < first_shb_end:
            with pytest.raises(CaptureFormatError):
                open_capture(io.BytesIO(data[:k]))
            continue
        frames, err = frames_of(io.BytesIO(data[:k]))
        n_done = len([s for s in packet_blocks if any(s == a and e <= k for a, e, _ in spans)])
        assert frames == full[:n_done], k
        partial = [s for s, e, _ in spans if s < k < e]
        if partial:
            assert err is not None and err.truncated and err.offset == partial[0], k
        else:
            assert err is None, k


# ---------------------------------------------------------------------------------------------
# Opening: errors, gzip, stdin, file objects
# ---------------------------------------------------------------------------------------------
def test_missing_file() -> None:
    with pytest.raises(CaptureFormatError) as ei:
        open_capture("/nonexistent/x.pcap")
    assert str(ei.value) == 'jpdissect: The file "/nonexistent/x.pcap" doesn\'t exist.'


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError) as ei:
        open_capture(tmp_path)
    assert str(ei.value) == f'jpdissect: "{tmp_path}" is a directory (folder), not a file.'


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.pcap"
    p.write_bytes(b"")
    with pytest.raises(CaptureFormatError, match="is empty"):
        open_capture(p)


def test_garbage_file(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_bytes(b"hello world, this is not a capture\n" * 10)
    with pytest.raises(CaptureFormatError) as ei:
        open_capture(str(p))
    assert str(ei.value) == f'jpdissect: The file "{p}" isn\'t a capture file in a format jpdissect understands.'


def test_zstd_file_says_so() -> None:
    with pytest.raises(CaptureFormatError, match="zstd"):
        open_capture(io.BytesIO(b"\x28\xb5\x2f\xfd" + bytes(20)))


def test_truncated_global_header() -> None:
    with pytest.raises(CaptureFormatError, match="cut short in the middle of a packet or other data"):
        open_capture(io.BytesIO(build_pcap()[:10]))


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "secret.pcap"
    p.write_bytes(build_pcap())
    if os.geteuid() != 0:
        p.chmod(0)
    else:  # root reads anything: simulate what open() raises for everyone else
        def deny(*_a: object, **_k: object) -> None:
            raise PermissionError(13, "Permission denied", str(p))
        monkeypatch.setattr(capture, "open", deny, raising=False)
    with pytest.raises(CaptureFormatError) as ei:
        open_capture(p)
    assert str(ei.value) == f'jpdissect: You don\'t have permission to read the file "{p}".'


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip(tmp_path: Path, kind: str) -> None:
    raw = build_pcap() if kind == "pcap" else build_multi_section()
    p = tmp_path / f"x.{kind}.gz"
    p.write_bytes(gzip.compress(raw))
    ref, _ = frames_of(io.BytesIO(raw))
    with open_capture(p) as r:
        assert r.compressed and r.format == kind and not r.random_access
        assert list(r) == ref and r.error is None
        with pytest.raises(io.UnsupportedOperation):
            r.read_frame_at(ref[0].offset)


def test_gzip_cut_short_and_corrupt() -> None:
    raw = build_pcap(packets=[(i, i, bytes(200)) for i in range(200)])
    z = gzip.compress(raw)
    ref, _ = frames_of(io.BytesIO(raw))
    frames, err = frames_of(io.BytesIO(z[: len(z) // 2]))
    assert frames == ref[:len(frames)] and err is not None
    frames, err = frames_of(io.BytesIO(z + b"trailing garbage"))
    assert frames == ref[:len(frames)] and err is not None  # gzip's own complaint, as damage
    with pytest.raises(CaptureFormatError):
        open_capture(io.BytesIO(b"\x1f\x8b" + b"\xff" * 30))
    with pytest.raises(CaptureFormatError, match="isn't a capture file"):
        open_capture(io.BytesIO(gzip.compress(b"plain text, gzipped")))


def test_stdin_via_subprocess() -> None:
    """``-`` reads sys.stdin.buffer; a pipe is not seekable and must stream."""
    raw = build_multi_section()
    code = ("from jpdissect.capture import open_capture\n"
            "r = open_capture('-')\n"
            "fr = list(r)\n"
            "print(r.path, r.format, r.random_access, len(fr), fr[1].comments, r.error)\n")
    out = subprocess.run([sys.executable, "-c", code], input=gzip.compress(raw), capture_output=True,
                         check=True, timeout=60)
    assert out.stdout.decode().split() == ["-", "pcapng", "False", "6", "('first", "comment',",
                                           "'second", "comment')", "None"]


def test_pipe_file_object_streams() -> None:
    """A non-seekable pipe fed by a thread: frames arrive as they are written."""
    raw = build_pcap(">", True)
    rfd, wfd = os.pipe()

    def feed() -> None:
        with open(wfd, "wb", buffering=0) as w:
            w.writelines(raw[i:i + 7] for i in range(0, len(raw), 7))

    t = threading.Thread(target=feed)
    t.start()
    with open(rfd, "rb", buffering=0) as rf:
        frames, err = frames_of(rf)
    t.join()
    assert err is None and frames == frames_of(io.BytesIO(raw))[0]


def test_file_object_not_at_start_and_not_closed() -> None:
    raw = build_multi_section()
    f = io.BytesIO(b"JUNK" + raw)
    f.seek(4)
    with open_capture(f) as r:
        frames = list(r)
        assert r.path == "<stream>"
        assert [r.read_frame_at(x.offset) for x in frames] == frames
    assert not f.closed


def test_close_is_idempotent_and_stops_iteration(tmp_path: Path) -> None:
    p = tmp_path / "x.pcap"
    p.write_bytes(build_pcap())
    r = open_capture(p)
    it = iter(r)
    next(it)
    r.close()
    r.close()
    assert list(r) == []


# ---------------------------------------------------------------------------------------------
# Random access
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_read_frame_at_matches_iteration_and_does_not_disturb_it(tmp_path: Path, kind: str) -> None:
    raw = build_pcap() if kind == "pcap" else build_multi_section()
    p = tmp_path / f"x.{kind}"
    p.write_bytes(raw)
    with open_capture(p) as r:
        seen: list[Frame] = []
        for f in r:
            seen.append(f)
            assert r.read_frame_at(seen[0].offset) == seen[0]  # interleaved with iteration
        assert [r.read_frame_at(f.offset) for f in reversed(seen)] == seen[::-1]
        with pytest.raises(CaptureError):
            r.read_frame_at(0)
        with pytest.raises(CaptureError):
            r.read_frame_at(len(raw) - 2)


def test_read_frame_at_reports_damage() -> None:
    raw = bytearray(build_multi_section())
    with open_capture(io.BytesIO(bytes(raw))) as r:
        frames = list(r)
    off = frames[1].offset
    raw[off + 4:off + 8] = struct.pack("<I", 1000)  # now a lie
    with open_capture(io.BytesIO(bytes(raw))) as r:
        list(r)
        assert r.error is not None and r.error.offset == off
        with pytest.raises(CaptureError) as ei:
            r.read_frame_at(off)
        assert ei.value.offset == off


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
def test_pcapng_writer_round_trip(tmp_path: Path) -> None:
    src, _ = frames_of(io.BytesIO(build_multi_section()))
    src.append(Frame(2**33 * NS + 1, 3, 9, b"abc", 228, 9, ("x" * 70000,), 0, 0xFFFFFFFF))
    p = tmp_path / "out.pcapng"
    with open_capture(io.BytesIO(build_multi_section())) as r, PcapngWriter(p, r.interfaces) as w:
        for f in src:
            w.write(f)
        w.write_secrets(0x544C534B, b"CLIENT_RANDOM a b\n")
        w.write_secrets(0x5A4B4559, b"zigbee")
    with open_capture(p) as back:
        got = list(back)
        assert back.error is None
        assert back.sections[0].userappl == "jpdissect"
        assert back.secrets == [(0x544C534B, b"CLIENT_RANDOM a b\n"), (0x5A4B4559, b"zigbee")]
        assert all(i.tsresol == 9 for i in back.interfaces)
        assert [i.name for i in back.interfaces][:2] == ["eth0", "wpan0"]
    want = [key(f) for f in src]
    want[-1] = (2**33 * NS + 1, 3, 9, b"abc", 228, ("x" * 65535,), 0xFFFFFFFF)  # 16-bit option length
    assert [key(f) for f in got] == want
    assert [f.interface_id for f in got] == [f.interface_id for f in src[:-1]] + [3]


def test_pcapng_writer_without_interfaces_adds_them_lazily() -> None:
    buf = io.BytesIO()
    frames = [Frame(i * NS, 1, 1, bytes([i]), lt, iid) for i, (lt, iid) in
              enumerate([(1, 0), (195, 4), (1, 0), (147, 0), (195, 4)])]
    with PcapngWriter(buf) as w:
        for f in frames:
            w.write(f)
    assert not buf.closed
    got, err = frames_of(io.BytesIO(buf.getvalue()))
    assert err is None
    assert [(f.linktype, f.interface_id, f.ts_ns) for f in got] == [
        (1, 0, 0), (195, 1, NS), (1, 0, 2 * NS), (147, 2, 3 * NS), (195, 1, 4 * NS)]


def test_pcapng_writer_output_is_valid_for_tshark(tmp_path: Path) -> None:
    """If Wireshark's own reader is around, it must agree with ours on what we wrote."""
    import shutil

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    p = tmp_path / "w.pcapng"
    with PcapngWriter(p) as w:
        w.write(Frame(1_700_000_000_123_456_789, 4, 4, b"\x00\x01\x02\x03", 147, 0, ("hi there",)))
    out = subprocess.run(["tshark", "-r", str(p), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "frame.comment"], capture_output=True, check=True, timeout=60)
    assert out.stdout.decode().split() == ["1700000000.123456789", "hi", "there"]


def test_pcap_writer_round_trip() -> None:
    buf = io.BytesIO()
    src = [Frame(1_700_000_000 * NS + 123_456_789, 3, 60, b"abc", 195),
           Frame(1_700_000_001 * NS, 0, 0, b"", 195)]
    with PcapWriter(buf) as w:
        for f in src:
            w.write(f)
        with pytest.raises(ValueError):
            w.write(Frame(0, 1, 1, b"x", 1))
    got, err = frames_of(io.BytesIO(buf.getvalue()))
    assert err is None and [key(f) for f in got] == [key(f) for f in src]
    empty = io.BytesIO()
    PcapWriter(empty, linktype=228).close()
    with open_capture(io.BytesIO(empty.getvalue())) as r:
        assert list(r) == [] and r.interfaces[0].linktype == 228


def test_interface_dataclass_defaults() -> None:
    itf = Interface(linktype=1)
    assert itf.ts_units_per_second == 10**6 and itf.name is None and itf.comments == ()


# ---------------------------------------------------------------------------------------------
# The shared Thread sample captures
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not (THREAD / "thread_two_joiners.pcapng").exists(), reason="shared captures absent")
def test_thread_captures_pcap_and_pcapng_agree() -> None:
    a, ea = frames_of(THREAD / "thread_two_joiners.pcap")
    b, eb = frames_of(THREAD / "thread_two_joiners.pcapng")
    assert ea is None and eb is None
    assert len(a) == len(b) == 341
    assert [f.data for f in a] == [f.data for f in b]
    assert [f.ts_ns // 1000 for f in a] == [f.ts_ns // 1000 for f in b]
    assert all(f.linktype == 195 for f in a + b)
    assert all(len(f.comments) == 1 and f.comments[0].startswith("tx by sim node") for f in b)
    assert a[0].ts_ns == 1_795_442_594_866_336_000 and b[0].ts_ns == 1_795_442_594_866_336_061


def _iter_ok(frames: Iterator[Frame]) -> int:
    return sum(1 for _ in frames)


def test_synthetic_many_frames_sanity(tmp_path: Path) -> None:
    """Not timed: a 50k-frame file reads completely with flat memory (a smoke test of the loop)."""
    p = tmp_path / "many.pcap"
    with PcapWriter(p, linktype=1) as w:
        for i in range(50_000):
            w.write(Frame(i * 1000, 60, 60, bytes(60), 1))
    tracemalloc.start()
    try:
        with open_capture(p) as r:
            n = _iter_ok(iter(r))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 50_000 and peak < 6 * capture.CHUNK_SIZE, peak
