"""Classic pcap reader (draft-ietf-opsawg-pcap).

Layout (draft-ietf-opsawg-pcap §4, §5): a 24-byte File Header -- magic, version 2.4, two
reserved words, SnapLen, LinkType-and-additional-information -- then Packet Records of a 16-byte
header (seconds, micro- or nanoseconds, captured length, original length) and unpadded data.
The magic (0xA1B2C3D4 microseconds, 0xA1B23C4D nanoseconds) as it reads in either byte order
gives the byte order of every other field.

The record loop is the hottest code in the project (every frame of every file goes through it),
so it is written for CPython: locals only, one ``unpack_from`` per record, slicing a ``bytes``
chunk, and no per-record method calls.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import BinaryIO

from jpdissect.capture import (
    _READ_ERRORS,
    PCAP_MAX_CAPLEN,
    CaptureError,
    CaptureFormatError,
    CaptureReader,
    Frame,
    Interface,
    _Damage,
    _describe,
    _fill,
)

__all__ = ["PcapReader"]

_NS_PER_S = 1_000_000_000

# Magic as the first 4 bytes read -> (struct byte order, nanosecond timestamps).
_MAGICS: dict[bytes, tuple[str, bool]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
_FILE_HEADER_LEN = 24
_RECORD_HEADER_LEN = 16


def _too_big(caplen: int) -> str:
    return f"pcap: File has {caplen}-byte packet, bigger than maximum of {PCAP_MAX_CAPLEN}"


class PcapReader(CaptureReader):
    """Reader for classic pcap; one interface (the file header), ``interface_id`` always 0."""

    format = "pcap"

    def __init__(self, stream: BinaryIO, path: str, *, owned: list[BinaryIO], compressed: bool,
                 head: bytes, random_access: bool, origin: int) -> None:
        super().__init__(stream, path, owned=owned, compressed=compressed,
                         random_access=random_access, origin=origin)
        try:
            buf = _fill(self._read, head, _FILE_HEADER_LEN)
        except _READ_ERRORS as exc:
            raise CaptureFormatError(
                f'jpdissect: The file "{path}" could not be read: {_describe(exc)}.', path) from None
        if len(buf) < _FILE_HEADER_LEN:
            raise CaptureFormatError(
                f'jpdissect: The file "{path}" appears to have been cut short in the middle of a '
                "packet or other data.", path)
        bo, nano = _MAGICS[buf[:4]]
        major, minor, _res1, _res2, snaplen, network = struct.unpack_from(bo + "HHiIII", buf, 4)
        if major != 2:
            # draft-ietf-opsawg-pcap §4: the current major version is 2; any other value means a
            # format we cannot know how to read.
            raise CaptureFormatError(
                f'jpdissect: The file "{path}" isn\'t a capture file in a format jpdissect '
                f"understands (pcap: major version {major} unsupported).", path)
        # §4, Figure 2: FCS len(4) | R | P | Reserved3(10) | Link-layer type(16).
        self.linktype = network & 0xFFFF
        fcslen = (network >> 28) * 2 if network & 0x04000000 else None
        self.nanosecond = nano
        self.version = (major, minor)
        self.byte_order = bo
        self.interfaces.append(Interface(
            linktype=self.linktype, snaplen=snaplen,
            ts_units_per_second=_NS_PER_S if nano else 1_000_000,
            tsresol=9 if nano else 6, fcslen=fcslen))
        self._rec = struct.Struct(bo + "IIII")
        self._start(self._records(buf, _FILE_HEADER_LEN))

    def _records(self, buf: bytes, pos: int) -> Generator[Frame, None, None]:
        """Yield frames from ``buf[pos:]`` and the rest of the stream (the hot loop)."""
        unpack = self._rec.unpack_from
        mult = 1 if self.nanosecond else 1000
        lt = self.linktype
        maxcap = PCAP_MAX_CAPLEN
        new = Frame
        base = 0  # stream offset of buf[0]
        more = self._more
        last_sec = -1  # seconds repeat across many packets: skip a big-int multiply for them
        sec_ns = 0
        try:
            while True:
                blen = len(buf)
                limit = blen - 16
                need = _RECORD_HEADER_LEN
                while pos <= limit:
                    sec, frac, caplen, wirelen = unpack(buf, pos)
                    if caplen > maxcap:
                        raise _Damage(_too_big(caplen), base + pos)
                    start = pos + 16
                    end = start + caplen
                    if end > blen:
                        need = 16 + caplen
                        break
                    if sec != last_sec:
                        last_sec = sec
                        sec_ns = sec * 1_000_000_000
                    # draft-ietf-opsawg-pcap §5: seconds since the epoch + µs or ns by the magic.
                    yield new(sec_ns + frac * mult, caplen, wirelen, buf[start:end], lt, 0, (),
                              base + pos, None)
                    pos = end
                buf = more(buf, pos, need, base)
                base += pos
                pos = 0
                if len(buf) < need:
                    if buf:
                        raise _Damage(None, base, truncated=True)
                    return
        except _Damage as d:
            self._set_error(d)

    def read_frame_at(self, offset: int) -> Frame:
        """Decode the packet record at ``offset`` (a :attr:`Frame.offset` from this reader)."""
        if offset < _FILE_HEADER_LEN:
            raise CaptureError("has no packet record", offset, self.path,
                               "offset is inside the pcap file header")
        hdr = self._read_at(offset, _RECORD_HEADER_LEN)
        if len(hdr) < _RECORD_HEADER_LEN:
            raise CaptureError("appears to have been cut short in the middle of a packet", offset,
                               self.path, None, True)
        sec, frac, caplen, wirelen = self._rec.unpack_from(hdr)
        if caplen > PCAP_MAX_CAPLEN:
            raise CaptureError("appears to be damaged or corrupt", offset, self.path, _too_big(caplen))
        data = self._read_at(offset + _RECORD_HEADER_LEN, caplen)
        if len(data) < caplen:
            raise CaptureError("appears to have been cut short in the middle of a packet", offset,
                               self.path, None, True)
        mult = 1 if self.nanosecond else 1000
        return Frame(sec * _NS_PER_S + frac * mult, caplen, wirelen, data, self.linktype, 0, (),
                     offset, None)
