"""Capture writers: pcapng (the default output of ``-w``) and classic pcap.

:class:`PcapngWriter` writes one little-endian section: an SHB naming jpdissect
(``shb_userappl``), one IDB per distinct (link type, interface id) of the frames written, each with
``if_tsresol`` = 9 so nanosecond timestamps survive a round trip exactly, then one EPB per frame
with its comments and flags (draft-ietf-opsawg-pcapng §4.1-§4.3). IDBs are written lazily, when a
frame first needs one: §3.4 (Figure 6) allows an IDB anywhere before the packets that use it,
which is what lets the writer stream without knowing all interfaces in advance.

:class:`PcapWriter` writes classic pcap with the nanosecond magic (draft-ietf-opsawg-pcap §4);
it can only hold one link type, and no comments or flags.
"""

from __future__ import annotations

import os
import struct
from types import TracebackType
from typing import BinaryIO, Self

from jpdissect.capture import Frame, Interface

__all__ = ["PcapWriter", "PcapngWriter"]

_U32 = struct.Struct("<I")
_EPB_HEAD = struct.Struct("<IIIIIII")
_OPT_HEAD = struct.Struct("<HH")
_END_OF_OPT = b"\x00\x00\x00\x00"
_BUFFER = 1 << 20

# Block types and option codes (draft-ietf-opsawg-pcapng §10.1, §4.1-§4.3, §4.7).
_BT_SHB, _BT_IDB, _BT_EPB, _BT_DSB = 0x0A0D0D0A, 1, 6, 0x0A
_OPT_COMMENT, _SHB_USERAPPL = 1, 4
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL, _IF_FILTER, _IF_OS, _IF_FCSLEN, _IF_HARDWARE = (
    2, 3, 9, 11, 12, 13, 15)
_EPB_FLAGS = 2
_MAX_OPTION = 0xFFFF


def _pad(n: int) -> bytes:
    return b"\x00" * (-n & 3)


def _option(code: int, value: bytes) -> bytes:
    """One option, value padded to 32 bits (§3.5). Over-long values are cut to the 16-bit limit."""
    value = value[:_MAX_OPTION]
    return _OPT_HEAD.pack(code, len(value)) + value + _pad(len(value))


def _block(btype: int, body: bytes) -> bytes:
    """Wrap a body (already a multiple of 4 long) as a block: type, length, body, length (§3.1)."""
    total = len(body) + 12
    return _U32.pack(btype) + _U32.pack(total) + body + _U32.pack(total)


class _Output:
    """Where the bytes go: a path we open (and close) or a caller's binary file (left open)."""

    def __init__(self, dest: str | os.PathLike[str] | BinaryIO) -> None:
        if isinstance(dest, (str, bytes, os.PathLike)):
            self._f: BinaryIO = open(dest, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed in close()
            self._owned = True
        else:
            self._f = dest
            self._owned = False
        self.write = self._f.write
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._f.flush()
        if self._owned:
            self._f.close()


class PcapngWriter:
    """Write frames (and decryption secrets) as pcapng; a context manager.

    ``interfaces`` (e.g. a reader's :attr:`~jpdissect.capture.CaptureReader.interfaces`, which
    may still be growing) supplies the metadata -- name, description, snaplen -- of the
    interface a frame names by ``interface_id``; frames whose interface is unknown get a plain
    IDB for their link type. The interfaces already in ``interfaces`` are written at once, in
    order, so their ids are kept; later ones are numbered in order of first use.
    """

    def __init__(self, fileobj_or_path: str | os.PathLike[str] | BinaryIO,
                 interfaces: list[Interface] | None = None, *, userappl: str = "jpdissect",
                 comment: str | None = None) -> None:
        self._out = _Output(fileobj_or_path)
        self._interfaces = interfaces
        self._ids: dict[tuple[int, int], int] = {}
        opts = _option(_SHB_USERAPPL, userappl.encode())
        if comment:
            opts = _option(_OPT_COMMENT, comment.encode()) + opts
        # §4.1: Byte-Order Magic, version 1.0, Section Length -1 (not specified: we stream).
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts + _END_OF_OPT
        self._out.write(_block(_BT_SHB, body))
        # Interfaces known now are written up front, in order, so interface ids survive a round
        # trip; any that appear later are added when first used.
        for i, itf in enumerate(list(interfaces or ())):
            self._interface_for(itf.linktype, i)

    def _interface_for(self, linktype: int, interface_id: int) -> int:
        key = (linktype, interface_id)
        local = self._ids.get(key)
        if local is not None:
            return local
        itf: Interface | None = None
        known = self._interfaces
        if known is not None and 0 <= interface_id < len(known) and known[interface_id].linktype == linktype:
            itf = known[interface_id]
        opts = b""
        snaplen = 0
        if itf is not None:
            snaplen = itf.snaplen
            if itf.name is not None:
                opts += _option(_IF_NAME, itf.name.encode())
            if itf.description is not None:
                opts += _option(_IF_DESCRIPTION, itf.description.encode())
            if itf.filter is not None:
                opts += _option(_IF_FILTER, b"\x00" + itf.filter.encode())
            if itf.os is not None:
                opts += _option(_IF_OS, itf.os.encode())
            if itf.hardware is not None:
                opts += _option(_IF_HARDWARE, itf.hardware.encode())
            if itf.fcslen is not None:
                opts += _option(_IF_FCSLEN, bytes([itf.fcslen & 0xFF]))
            for c in itf.comments:
                opts += _option(_OPT_COMMENT, c.encode())
        # §4.2: if_tsresol 9 = 10^-9 s, so Frame.ts_ns is written as is (and if_tsoffset is
        # never needed: ts_ns is already absolute).
        opts += _option(_IF_TSRESOL, b"\x09") + _END_OF_OPT
        body = struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen & 0xFFFFFFFF) + opts
        self._out.write(_block(_BT_IDB, body))
        local = len(self._ids)
        self._ids[key] = local
        return local

    def write(self, frame: Frame) -> None:
        """Append one frame as an EPB (§4.3); its IDB is written first if it is new."""
        local = self._ids.get((frame.linktype, frame.interface_id))
        if local is None:
            local = self._interface_for(frame.linktype, frame.interface_id)
        ts = frame.ts_ns
        if not 0 <= ts < 1 << 64:
            raise ValueError(f"timestamp {ts} ns cannot be written to pcapng (unsigned 64-bit)")
        data = frame.data
        caplen = len(data)
        opts = b""
        if frame.comments:
            opts = b"".join(_option(_OPT_COMMENT, c.encode()) for c in frame.comments)
        if frame.flags is not None:
            opts += _OPT_HEAD.pack(_EPB_FLAGS, 4) + _U32.pack(frame.flags & 0xFFFFFFFF)
        if opts:
            opts += _END_OF_OPT
        pad = -caplen & 3
        total = 32 + caplen + pad + len(opts)
        self._out.write(b"".join((
            _EPB_HEAD.pack(_BT_EPB, total, local, ts >> 32, ts & 0xFFFFFFFF, caplen,
                           frame.wirelen & 0xFFFFFFFF),
            data, b"\x00" * pad, opts, _U32.pack(total))))

    def write_secrets(self, secrets_type: int, data: bytes) -> None:
        """Append a Decryption Secrets Block (§4.7), e.g. type 0x544c534b for a TLS key log."""
        body = struct.pack("<II", secrets_type, len(data)) + data + _pad(len(data))
        self._out.write(_block(_BT_DSB, body))

    def close(self) -> None:
        """Flush, and close the file if this writer opened it."""
        self._out.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class PcapWriter:
    """Write frames as classic nanosecond pcap (one link type); a context manager.

    The file header is written with the first frame's link type unless ``linktype`` is given
    (an empty file gets ``linktype`` or 1, Ethernet). A frame of another link type raises
    ``ValueError``: pcap cannot say so (use pcapng).
    """

    def __init__(self, fileobj_or_path: str | os.PathLike[str] | BinaryIO,
                 linktype: int | None = None, snaplen: int = 262144) -> None:
        self._out = _Output(fileobj_or_path)
        self._snaplen = snaplen
        self._linktype: int | None = None
        if linktype is not None:
            self._header(linktype)

    def _header(self, linktype: int) -> None:
        # draft-ietf-opsawg-pcap §4: magic 0xA1B23C4D (nanoseconds), version 2.4, zero reserved.
        self._out.write(struct.pack("<IHHIIII", 0xA1B23C4D, 2, 4, 0, 0, self._snaplen, linktype))
        self._linktype = linktype

    def write(self, frame: Frame) -> None:
        """Append one record (§5)."""
        if self._linktype is None:
            self._header(frame.linktype)
        elif frame.linktype != self._linktype:
            raise ValueError(f"pcap holds one link type ({self._linktype}); frame has "
                             f"{frame.linktype}: write pcapng instead")
        sec, ns = divmod(frame.ts_ns, 1_000_000_000)
        if not 0 <= sec < 1 << 32:
            raise ValueError(f"timestamp {frame.ts_ns} ns cannot be written to pcap")
        data = frame.data
        self._out.write(struct.pack("<IIII", sec, ns, len(data), frame.wirelen & 0xFFFFFFFF) + data)

    def close(self) -> None:
        """Write the header if nothing was written yet, flush, close what this writer opened."""
        if self._out.closed:
            return
        if self._linktype is None:
            self._header(1)
        self._out.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
