"""pcapng reader (draft-ietf-opsawg-pcapng).

A pcapng file is a sequence of blocks ``type(4) total_length(4) body total_length(4)``
(§3.1), grouped into sections that each start with a Section Header Block (§4.1) carrying the
byte order of everything up to the next SHB (§3.4). Packets live in Enhanced Packet Blocks
(§4.3), Simple Packet Blocks (§4.4) or the obsolete Packet Block (Appendix A); each refers to an
Interface Description Block (§4.2) of its own section by index. Name Resolution (§4.5) and
Decryption Secrets (§4.7) blocks are collected; statistics (§4.6), custom (§4.8) and unknown
blocks are skipped by their length, as §3.1 intends.

Interface ids restart at 0 in every section; :class:`Frame` carries a file-global id instead
(the position in :attr:`CaptureReader.interfaces`), so concatenated captures do not mix up
interfaces. The per-section tables are kept, keyed by section start offset, for
:meth:`PcapngReader.read_frame_at`.

The EPB case is decoded inline in the block loop (no method call) because it is nearly every
block of nearly every file; everything else, and any EPB that fails a check, goes through the
general path that produces the error messages.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import struct
from collections.abc import Callable, Generator
from typing import Any, BinaryIO

from jpdissect.capture import (
    _READ_ERRORS,
    MAX_BLOCK_SIZE,
    CaptureError,
    CaptureFormatError,
    CaptureReader,
    Frame,
    Interface,
    NameRecord,
    Section,
    _Damage,
    _describe,
    _fill,
)

__all__ = [
    "BT_DSB",
    "BT_EPB",
    "BT_IDB",
    "BT_ISB",
    "BT_NRB",
    "BT_PB",
    "BT_SHB",
    "BT_SPB",
    "PcapngReader",
]

# Block type codes, draft-ietf-opsawg-pcapng §10.1.
BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002  # obsolete Packet Block, Appendix A
BT_SPB = 0x00000003
BT_NRB = 0x00000004
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BT_DSB = 0x0000000A

_BOM_LE = b"\x4d\x3c\x2b\x1a"  # 0x1A2B3C4D written little-endian (§4.1 Byte-Order Magic)
_BOM_BE = b"\x1a\x2b\x3c\x4d"

# Minimum total lengths (header + fixed body + trailer).
_MIN_BLOCK = 12
_MIN_SHB = 28
_MIN_IDB = 20
_MIN_EPB = 32
_MIN_PB = 32
_MIN_SPB = 16
_MIN_DSB = 20

# Option codes (§3.5 common, §4.1 SHB, §4.2 IDB, §4.3 EPB).
_OPT_ENDOFOPT = 0
_OPT_COMMENT = 1
_SHB_HARDWARE, _SHB_OS, _SHB_USERAPPL = 2, 3, 4
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL, _IF_FILTER, _IF_OS, _IF_FCSLEN, _IF_TSOFFSET, _IF_HARDWARE = (
    2, 3, 9, 11, 12, 13, 14, 15)
_EPB_FLAGS = 2  # also pack_flags of the obsolete Packet Block

# NRB record types (§4.5).
_NRB_END, _NRB_IPV4, _NRB_IPV6 = 0, 1, 2

_NS_PER_S = 1_000_000_000

# ``not tlen & _FAST_LENGTH_MASK`` <=> tlen is a multiple of 4 and below 2**28, i.e. at most
# MAX_BLOCK_SIZE (asserted below): one AND in the hot loop instead of two comparisons.
_FAST_LENGTH_MASK = 0xF0000003
assert (1 << 28) - 4 == MAX_BLOCK_SIZE

# Runtime view of one interface, a tuple for cheap unpacking in the hot loop:
# (global id, linktype, mult, div, offset_ns, snaplen); ts_ns = ts * mult // div + offset_ns.
_IfaceRT = tuple[int, int, int, int, int, int]


class _SectionState:
    """Byte order, decoders and interface table of one section (everything an EPB needs)."""

    __slots__ = ("bo", "epb", "hdr", "head7", "ifaces", "index", "opt", "pb", "skip", "start", "u32")

    def __init__(self, start: int, index: int, bo: str, skip: bool) -> None:
        self.start = start
        self.index = index
        self.bo = bo
        self.skip = skip  # §3.4: a section of a version we cannot read is skipped whole
        self.ifaces: list[_IfaceRT] = []
        self.hdr: Callable[..., tuple[Any, ...]] = struct.Struct(bo + "II").unpack_from
        self.head7: Callable[..., tuple[Any, ...]] = struct.Struct(bo + "IIIIIII").unpack_from
        self.epb: Callable[..., tuple[Any, ...]] = struct.Struct(bo + "IIIII").unpack_from
        self.pb: Callable[..., tuple[Any, ...]] = struct.Struct(bo + "HHIIII").unpack_from
        self.u32: Callable[..., tuple[Any, ...]] = struct.Struct(bo + "I").unpack_from
        self.opt: Callable[..., tuple[Any, ...]] = struct.Struct(bo + "HH").unpack_from


def _text(b: bytes) -> str:
    """Option strings are UTF-8 and not NUL-terminated (§3.6.3), but some writers add NULs."""
    return b.decode("utf-8", "replace").rstrip("\x00")


def _options(buf: bytes, p: int, end: int, opt: Callable[..., tuple[Any, ...]]) -> list[tuple[int, bytes]]:
    """Options in ``buf[p:end]`` as (code, value) (§3.5); a malformed tail is ignored, not fatal.

    Options are "not really needed for packet processing" (§3.5), so an option whose length runs
    past the block loses the options, never the packet.
    """
    out: list[tuple[int, bytes]] = []
    while p + 4 <= end:
        code, ln = opt(buf, p)
        if code == _OPT_ENDOFOPT:
            break
        v = p + 4
        if v + ln > end:
            break
        out.append((code, buf[v:v + ln]))
        p = v + ((ln + 3) & ~3)
    return out


def _packet_options(buf: bytes, p: int, end: int, opt: Callable[..., tuple[Any, ...]],
                    u32: Callable[..., tuple[Any, ...]]) -> tuple[tuple[str, ...], int | None]:
    """opt_comment(s) and epb_flags (§4.3) of a packet block; other options are skipped."""
    comments: list[str] = []
    flags: int | None = None
    while p + 4 <= end:
        code, ln = opt(buf, p)
        if code == _OPT_ENDOFOPT:
            break
        v = p + 4
        if v + ln > end:
            break
        if code == _OPT_COMMENT:
            comments.append(_text(buf[v:v + ln]))
        elif code == _EPB_FLAGS and ln == 4:
            flags = u32(buf, v)[0]
        p = v + ((ln + 3) & ~3)
    return tuple(comments), flags


def _resolution(tsresol: int) -> tuple[int, int, int]:
    """(units per second, mult, div) for an if_tsresol byte (§4.2): MSB 0 -> 10^-n, 1 -> 2^-n."""
    n = tsresol & 0x7F
    units = (1 << n) if tsresol & 0x80 else 10 ** n
    g = math.gcd(_NS_PER_S, units)
    return units, _NS_PER_S // g, units // g


class PcapngReader(CaptureReader):
    """Reader for pcapng: several sections, interfaces and link types, EPB/SPB/PB packets."""

    format = "pcapng"

    def __init__(self, stream: BinaryIO, path: str, *, owned: list[BinaryIO], compressed: bool,
                 head: bytes, random_access: bool, origin: int) -> None:
        super().__init__(stream, path, owned=owned, compressed=compressed,
                         random_access=random_access, origin=origin)
        self._sections: list[_SectionState] = []
        self._section_starts: list[int] = []
        cut = (f'jpdissect: The file "{path}" appears to have been cut short in the middle of a '
               "packet or other data.")
        try:
            buf = _fill(self._read, head, _MIN_BLOCK)
            if len(buf) < _MIN_BLOCK:
                raise CaptureFormatError(cut, path)
            bom = buf[8:12]
            if bom not in (_BOM_LE, _BOM_BE):
                raise CaptureFormatError(
                    f'jpdissect: The file "{path}" isn\'t a capture file in a format jpdissect '
                    "understands.", path)
            bo = "<" if bom == _BOM_LE else ">"
            tlen = struct.unpack_from(bo + "I", buf, 4)[0]
            try:
                self._check_length(BT_SHB, tlen, 0)
            except _Damage as d:
                raise CaptureFormatError(
                    f'jpdissect: The file "{path}" appears to be damaged or corrupt: {d.detail}.',
                    path) from None
            buf = _fill(self._read, buf, tlen)
        except _READ_ERRORS as exc:
            raise CaptureFormatError(
                f'jpdissect: The file "{path}" could not be read: {_describe(exc)}.', path) from None
        if len(buf) < tlen:
            raise CaptureFormatError(cut, path)
        try:
            sec = self._new_section(buf, 0, tlen, 0, bo)
        except _Damage as d:
            raise CaptureFormatError(
                f'jpdissect: The file "{path}" appears to be damaged or corrupt: {d.detail}.',
                path) from None
        if sec.skip:
            major, minor = self.sections[0].version
            raise CaptureFormatError(
                f'jpdissect: The file "{path}" isn\'t a capture file in a format jpdissect '
                f"understands (pcapng: unknown SHB version {major}.{minor}).", path)
        self._start(self._records(buf, tlen, sec))

    # -- the block loop -----------------------------------------------------------------------
    def _records(self, buf: bytes, pos: int, sec: _SectionState) -> Generator[Frame, None, None]:
        """Yield frames from ``buf[pos:]`` and the rest of the stream; EPBs decoded inline.

        Per block the happy EPB case costs two ``unpack_from`` calls (block header with the EPB
        fixed fields, then the trailing length) and a slice; anything else goes through
        :meth:`_general`, which checks everything and words the errors.
        """
        base = 0  # stream offset of buf[0]
        more = self._more
        general = self._general
        new = Frame
        popts = _packet_options
        fastmask = _FAST_LENGTH_MASK
        head7, u32, opt, ifaces = sec.head7, sec.u32, sec.opt, sec.ifaces
        try:
            while True:
                blen = len(buf)
                need = _MIN_BLOCK
                limit = blen - 28
                while pos <= limit:
                    btype, tlen, iid, hi, lo, caplen, wirelen = head7(buf, pos)
                    end = pos + tlen
                    # Enhanced Packet Block, §4.3: interface id, timestamp (high, low), captured
                    # length, original length, data padded to 32 bits, options, trailing length.
                    # ``not tlen & fastmask``: a multiple of 4 (§3.1) and <= MAX_BLOCK_SIZE.
                    if btype == 6 and end <= blen and not tlen & fastmask:
                        dstart = pos + 28
                        oend = end - 4
                        ostart = dstart + ((caplen + 3) & ~3)
                        if ostart <= oend and u32(buf, oend)[0] == tlen:
                            try:
                                gid, lt, mult, div, off, _snap = ifaces[iid]
                            except IndexError:  # unknown interface: the general path says so
                                pass
                            else:
                                ts = ((hi << 32) | lo) * mult
                                if div != 1 or off:
                                    ts = ts // div + off
                                if ostart < oend:
                                    comments, flags = popts(buf, ostart, oend, opt, u32)
                                else:
                                    comments, flags = (), None
                                yield new(ts, caplen, wirelen, buf[dstart:dstart + caplen], lt,
                                          gid, comments, base + pos, flags)
                                pos = end
                                continue
                    nxt, fr, nsec = general(sec, buf, pos, base)
                    if nxt < 0:
                        need = -nxt
                        break
                    if nsec is not sec:
                        sec = nsec
                        head7, u32, opt, ifaces = sec.head7, sec.u32, sec.opt, sec.ifaces
                    if fr is not None:
                        yield fr
                    pos = nxt
                else:
                    # Fewer than 28 bytes left in the buffer: small blocks may still fit.
                    limit = blen - 12
                    while pos <= limit:
                        nxt, fr, nsec = general(sec, buf, pos, base)
                        if nxt < 0:
                            need = -nxt
                            break
                        if nsec is not sec:
                            sec = nsec
                            head7, u32, opt, ifaces = sec.head7, sec.u32, sec.opt, sec.ifaces
                        if fr is not None:
                            yield fr
                        pos = nxt
                buf = more(buf, pos, need, base)
                base += pos
                pos = 0
                if len(buf) < need:
                    if buf:
                        raise _Damage(None, base, truncated=True)
                    return
        except _Damage as d:
            self._set_error(d)

    def _general(self, sec: _SectionState, buf: bytes, pos: int,
                 base: int) -> tuple[int, Frame | None, _SectionState]:
        """Handle the block at ``buf[pos:]`` (at least 12 bytes there), whatever its type.

        Returns (end of the block in ``buf``, frame or None, section now in force), or
        (-bytes needed from ``pos``, None, sec) when the block is not wholly in ``buf`` yet.
        """
        offset = base + pos
        btype, tlen = sec.hdr(buf, pos)
        if btype == BT_SHB:
            # A new section may switch byte order: its length is read in the order its own
            # Byte-Order Magic gives (§4.1).
            bom = buf[pos + 8:pos + 12]
            if bom == _BOM_LE:
                bo = "<"
            elif bom == _BOM_BE:
                bo = ">"
            else:
                raise _Damage("pcapng: bad byte-order magic in a Section Header Block", offset)
            tlen = struct.unpack_from(bo + "I", buf, pos + 4)[0]
            self._check_length(btype, tlen, offset)
            end = pos + tlen
            if end > len(buf):
                return -tlen, None, sec
            return end, None, self._new_section(buf, pos, tlen, offset, bo)
        self._check_length(btype, tlen, offset)
        end = pos + tlen
        if end > len(buf):
            return -tlen, None, sec
        trailer = sec.u32(buf, end - 4)[0]
        if trailer != tlen:
            raise _Damage(f"pcapng: total block lengths (first {tlen} and second {trailer}) don't "
                          "match", offset)
        if sec.skip:
            return end, None, sec
        return end, self._block(sec, btype, buf, pos, tlen, offset), sec

    @staticmethod
    def _check_length(btype: int, tlen: int, offset: int) -> None:
        """§3.1: the total length is at least 12 and a multiple of 4; we also bound it."""
        if tlen < _MIN_BLOCK:
            raise _Damage(f"pcapng: total block length {tlen} is too small (< {_MIN_BLOCK})", offset)
        if tlen & 3:
            raise _Damage(f"pcapng: total block length {tlen} is not a multiple of 4", offset)
        if tlen > MAX_BLOCK_SIZE:
            raise _Damage(f"pcapng: total block length {tlen} is bigger than maximum of "
                          f"{MAX_BLOCK_SIZE}", offset)
        if btype == BT_SHB and tlen < _MIN_SHB:
            raise _Damage(f"pcapng: total block length {tlen} of an SHB is less than the minimum "
                          f"SHB size {_MIN_SHB}", offset)

    # -- block decoders -----------------------------------------------------------------------
    def _new_section(self, buf: bytes, pos: int, tlen: int, offset: int, bo: str) -> _SectionState:
        """Section Header Block (§4.1): byte order, version, and the descriptive options."""
        end = pos + tlen
        trailer = struct.unpack_from(bo + "I", buf, end - 4)[0]
        if trailer != tlen:
            raise _Damage(f"pcapng: total block lengths (first {tlen} and second {trailer}) don't "
                          "match", offset)
        major, minor = struct.unpack_from(bo + "HH", buf, pos + 12)
        # §3.4: "In case an application cannot read a Section because of different version
        # number, it MUST skip everything until the next Section Header Block."
        sec = _SectionState(offset, len(self._sections), bo, skip=major != 1)
        info = Section(offset=offset, big_endian=bo == ">", version=(major, minor))
        comments: list[str] = []
        for code, val in _options(buf, pos + 24, end - 4, sec.opt):
            if code == _OPT_COMMENT:
                comments.append(_text(val))
            elif code == _SHB_HARDWARE:
                info.hardware = _text(val)
            elif code == _SHB_OS:
                info.os = _text(val)
            elif code == _SHB_USERAPPL:
                info.userappl = _text(val)
        info.comments = tuple(comments)
        self.sections.append(info)
        self._sections.append(sec)
        self._section_starts.append(offset)
        return sec

    def _block(self, sec: _SectionState, btype: int, buf: bytes, pos: int, tlen: int,
               offset: int) -> Frame | None:
        """Any block but an SHB, whole in ``buf[pos:pos+tlen]``, lengths already checked."""
        if btype == BT_EPB:
            return self._epb(sec, buf, pos, tlen, offset)
        if btype == BT_IDB:
            self._idb(sec, buf, pos, tlen, offset)
        elif btype == BT_SPB:
            return self._spb(sec, buf, pos, tlen, offset)
        elif btype == BT_PB:
            return self._pb(sec, buf, pos, tlen, offset)
        elif btype == BT_DSB:
            self._dsb(sec, buf, pos, tlen, offset)
        elif btype == BT_NRB:
            self._nrb(sec, buf, pos, tlen)
        # ISB (§4.6), Custom Blocks (§4.8), and anything unknown: skipped (§3.1).
        return None

    def _iface(self, sec: _SectionState, iid: int, offset: int) -> _IfaceRT:
        if iid >= len(sec.ifaces):
            raise _Damage(f"pcapng: interface index {iid} is not less than interface count "
                          f"{len(sec.ifaces)}", offset)
        return sec.ifaces[iid]

    def _epb(self, sec: _SectionState, buf: bytes, pos: int, tlen: int, offset: int) -> Frame:
        """Enhanced Packet Block (§4.3), the checked path (the block loop inlines the happy case)."""
        if tlen < _MIN_EPB:
            raise _Damage(f"pcapng: total block length {tlen} of an EPB is less than the minimum "
                          f"EPB size {_MIN_EPB}", offset)
        iid, hi, lo, caplen, wirelen = sec.epb(buf, pos + 8)
        return self._packet(sec, buf, pos, tlen, offset, iid, hi, lo, caplen, wirelen, "an EPB")

    def _pb(self, sec: _SectionState, buf: bytes, pos: int, tlen: int, offset: int) -> Frame:
        """Obsolete Packet Block (Appendix A): a 16-bit interface id and a drops count, else EPB."""
        if tlen < _MIN_PB:
            raise _Damage(f"pcapng: total block length {tlen} of a PB is less than the minimum "
                          f"PB size {_MIN_PB}", offset)
        iid, _drops, hi, lo, caplen, wirelen = sec.pb(buf, pos + 8)
        return self._packet(sec, buf, pos, tlen, offset, iid, hi, lo, caplen, wirelen, "a PB")

    def _packet(self, sec: _SectionState, buf: bytes, pos: int, tlen: int, offset: int, iid: int,
                hi: int, lo: int, caplen: int, wirelen: int, what: str) -> Frame:
        gid, lt, mult, div, off, _snap = self._iface(sec, iid, offset)
        dstart = pos + 28
        oend = pos + tlen - 4
        ostart = dstart + ((caplen + 3) & ~3)
        if ostart > oend:
            raise _Damage(f"pcapng: total block length {tlen} of {what} is too small for "
                          f"{caplen} bytes of packet data", offset)
        ts = ((hi << 32) | lo) * mult // div + off
        comments, flags = _packet_options(buf, ostart, oend, sec.opt, sec.u32)
        return Frame(ts, caplen, wirelen, buf[dstart:dstart + caplen], lt, gid, comments, offset,
                     flags)

    def _spb(self, sec: _SectionState, buf: bytes, pos: int, tlen: int, offset: int) -> Frame:
        """Simple Packet Block (§4.4): interface 0 of the section, no timestamp, no options.

        The captured length is not stored: §4.4 makes it "the minimum value among the SnapLen
        (present in the Interface Description Block) and the Original Packet Length" (SnapLen 0
        = unlimited). A block too short to hold that much is damage, as Wireshark also says.
        With no timestamp in the block, ``ts_ns`` is 0, as Wireshark shows it.
        """
        if tlen < _MIN_SPB:
            raise _Damage(f"pcapng: total block length {tlen} of an SPB is less than the minimum "
                          f"SPB size {_MIN_SPB}", offset)
        if not sec.ifaces:
            raise _Damage("pcapng: SPB appeared before any IDBs", offset)
        gid, lt, _mult, _div, _off, snap = sec.ifaces[0]
        wirelen = sec.u32(buf, pos + 8)[0]
        caplen = min(wirelen, snap) if snap else wirelen
        if caplen > tlen - _MIN_SPB:
            raise _Damage(f"pcapng: total block length {tlen} of an SPB is too small for {caplen} "
                          "bytes of packet data", offset)
        return Frame(0, caplen, wirelen, buf[pos + 12:pos + 12 + caplen], lt, gid, (), offset, None)

    def _idb(self, sec: _SectionState, buf: bytes, pos: int, tlen: int, offset: int) -> None:
        """Interface Description Block (§4.2): link type, SnapLen, if_tsresol, if_tsoffset, names."""
        if tlen < _MIN_IDB:
            raise _Damage(f"pcapng: total block length {tlen} of an IDB is less than the minimum "
                          f"IDB size {_MIN_IDB}", offset)
        linktype, _reserved, snaplen = struct.unpack_from(sec.bo + "HHI", buf, pos + 8)
        itf = Interface(linktype=linktype, snaplen=snaplen, section=sec.index,
                        local_id=len(sec.ifaces))
        tsresol = 6  # §4.2: "If this option is not present, a resolution of 10^-6 is assumed"
        comments: list[str] = []
        for code, val in _options(buf, pos + 16, pos + tlen - 4, sec.opt):
            if code == _IF_TSRESOL and len(val) == 1:
                tsresol = itf.tsresol = val[0]
            elif code == _IF_TSOFFSET and len(val) == 8:
                itf.tsoffset_s = struct.unpack(sec.bo + "q", val)[0]
            elif code == _IF_NAME:
                itf.name = _text(val)
            elif code == _IF_DESCRIPTION:
                itf.description = _text(val)
            elif code == _OPT_COMMENT:
                comments.append(_text(val))
            elif code == _IF_OS:
                itf.os = _text(val)
            elif code == _IF_HARDWARE:
                itf.hardware = _text(val)
            elif code == _IF_FCSLEN and len(val) == 1:
                itf.fcslen = val[0]
            elif code == _IF_FILTER and val[:1] == b"\x00":  # type 0 = libpcap filter string
                itf.filter = _text(val[1:])
        itf.comments = tuple(comments)
        units, mult, div = _resolution(tsresol)
        itf.ts_units_per_second = units
        gid = len(self.interfaces)
        self.interfaces.append(itf)
        sec.ifaces.append((gid, linktype, mult, div, itf.tsoffset_s * _NS_PER_S, snaplen))

    def _dsb(self, sec: _SectionState, buf: bytes, pos: int, tlen: int, offset: int) -> None:
        """Decryption Secrets Block (§4.7): secrets type, secrets length, data (TLS keylog, ...)."""
        if tlen < _MIN_DSB:
            raise _Damage(f"pcapng: total block length {tlen} of a DSB is less than the minimum "
                          f"DSB size {_MIN_DSB}", offset)
        stype, slen = struct.unpack_from(sec.bo + "II", buf, pos + 8)
        if 16 + slen + 4 > tlen:
            raise _Damage(f"pcapng: secrets length {slen} is too large for a DSB of total length "
                          f"{tlen}", offset)
        self.secrets.append((stype, buf[pos + 16:pos + 16 + slen]))

    def _nrb(self, sec: _SectionState, buf: bytes, pos: int, tlen: int) -> None:
        """Name Resolution Block (§4.5): ipv4/ipv6 records; others and a malformed tail ignored."""
        p = pos + 8
        end = pos + tlen - 4
        opt = sec.opt
        while p + 4 <= end:
            rtype, rlen = opt(buf, p)
            if rtype == _NRB_END:
                break
            v = p + 4
            if v + rlen > end:
                break
            alen = 4 if rtype == _NRB_IPV4 else 16 if rtype == _NRB_IPV6 else 0
            if alen and rlen > alen:
                addr = str(ipaddress.ip_address(buf[v:v + alen]))
                names = tuple(_text(n) for n in buf[v + alen:v + rlen].split(b"\x00") if n)
                if names:
                    self.name_resolution.append(NameRecord(addr, names))
            p = v + ((rlen + 3) & ~3)

    # -- random access ------------------------------------------------------------------------
    def read_frame_at(self, offset: int) -> Frame:
        """Decode the packet block at ``offset`` (a :attr:`Frame.offset` from this reader).

        The section (byte order, interface table) is the one this reader saw covering that
        offset while iterating, so offsets must come from frames already yielded.
        """
        i = bisect.bisect_right(self._section_starts, offset) - 1
        if i < 0 or offset == self._section_starts[i]:
            raise CaptureError("has no packet block there", offset, self.path)
        sec = self._sections[i]
        head = self._read_at(offset, 8)
        if len(head) < 8:
            raise CaptureError("appears to have been cut short in the middle of a packet", offset,
                               self.path, None, True)
        btype, tlen = sec.hdr(head, 0)
        if btype not in (BT_EPB, BT_SPB, BT_PB):
            raise CaptureError("has no packet block there", offset, self.path,
                               f"pcapng: block type 0x{btype:08x}")
        try:
            self._check_length(btype, tlen, offset)
            blk = self._read_at(offset, tlen)
            if len(blk) < tlen:
                raise _Damage(None, offset, truncated=True)
            trailer = sec.u32(blk, tlen - 4)[0]
            if trailer != tlen:
                raise _Damage(f"pcapng: total block lengths (first {tlen} and second {trailer}) "
                              "don't match", offset)
            fr = self._block(sec, btype, blk, 0, tlen, offset)
        except _Damage as d:
            raise self._damage_at(d) from None
        assert fr is not None
        return fr
