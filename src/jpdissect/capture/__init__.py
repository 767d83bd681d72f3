"""Frame sources: classic pcap and pcapng files, plain or gzip-compressed, from a path or a stream.

Everything above this package sees a capture as an iterable of :class:`Frame`; the file format,
its byte order, its timestamp resolution and its compression stay in here.

Design choices, and why:

* **Streaming, chunked.** A reader pulls the file in :data:`CHUNK_SIZE` pieces and decodes records
  out of one ``bytes`` buffer with ``struct.Struct.unpack_from`` and slicing. Calling ``read()``
  once per record costs more than the decoding itself; reading the whole file would make memory
  grow with file size. Memory therefore stays at one chunk plus the largest record.
* **Never a traceback on bad input.** A file that is not a capture at all (or cannot be opened)
  raises :class:`CaptureFormatError` from :func:`open_capture`. Damage found later (a cut-short
  record, a nonsensical length) does not raise: iteration ends after the last good frame and
  :attr:`CaptureReader.error` tells what and where, as tshark prints its "cut short" line after
  the packets it could read.
* **Hostile lengths are bounded before anything is allocated.** Lengths are checked against
  :data:`MAX_BLOCK_SIZE` / :data:`PCAP_MAX_CAPLEN` first, and even a bounded length is only ever
  satisfied by reading chunk after chunk, so a truncated file never makes us allocate the size it
  claims.
* **Non-seekable input works.** Format detection peeks at the first chunk and keeps it, so stdin
  and pipes (``-r -``) work, gzip included.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import stat
import sys
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, NamedTuple, Self

__all__ = [
    "CHUNK_SIZE",
    "MAX_BLOCK_SIZE",
    "PCAP_MAX_CAPLEN",
    "CaptureError",
    "CaptureFormatError",
    "CaptureReader",
    "Frame",
    "Interface",
    "NameRecord",
    "Section",
    "open_capture",
]

#: Bytes pulled from the underlying stream per read. Large enough that the per-read cost vanishes
#: next to the per-record cost, small enough to keep memory flat.
CHUNK_SIZE = 1 << 20

#: Largest pcapng block we agree to buffer (any block type): just under 256 MiB. Wireshark's own
#: limit is of the same order (a D-Bus message is up to 128 MiB); anything bigger is treated as
#: damage, never allocated. (2**28 - 4: the largest multiple of 4 below 2**28, which lets the
#: pcapng hot loop test "multiple of 4 and not too big" with a single AND.)
MAX_BLOCK_SIZE = (1 << 28) - 4

#: Largest classic-pcap record (captured length) we accept: Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD
#: (262144). A bigger value is almost always a corrupt record header, and tshark says so.
PCAP_MAX_CAPLEN = 0x40000

_PROG = "jpdissect"


@dataclass(slots=True)
class Frame:
    """One captured packet, as every later stage sees it.

    ``offset`` is where the record (pcap) or block (pcapng) starts in the (decompressed) stream:
    error messages quote it, and :meth:`CaptureReader.read_frame_at` takes it back for lazy random
    access (the TUI indexes offsets once, then reads frames on demand).
    """

    ts_ns: int
    caplen: int
    wirelen: int
    data: bytes
    linktype: int
    interface_id: int = 0
    comments: tuple[str, ...] = ()
    offset: int = 0
    flags: int | None = None


@dataclass(slots=True)
class Interface:
    """A capture interface: the pcap file header, or one pcapng Interface Description Block.

    ``ts_units_per_second`` is what ``if_tsresol`` says (10**6 when absent, 10**9 for ns pcap,
    2**k for a power-of-two resolution); ``tsresol`` keeps the raw option byte (None when the
    option was absent) so a writer can reproduce it. ``section``/``local_id`` say which pcapng
    section the IDB was in and its index there; the global index (``Frame.interface_id``) is
    the position in :attr:`CaptureReader.interfaces`.
    """

    linktype: int
    snaplen: int = 0
    name: str | None = None
    description: str | None = None
    ts_units_per_second: int = 1_000_000
    tsresol: int | None = None
    tsoffset_s: int = 0
    os: str | None = None
    hardware: str | None = None
    filter: str | None = None
    fcslen: int | None = None
    comments: tuple[str, ...] = ()
    section: int = 0
    local_id: int = 0


@dataclass(slots=True)
class Section:
    """A pcapng Section Header Block (draft-ietf-opsawg-pcapng §4.1); what capinfos shows."""

    offset: int
    big_endian: bool
    version: tuple[int, int]
    hardware: str | None = None
    os: str | None = None
    userappl: str | None = None
    comments: tuple[str, ...] = ()


class NameRecord(NamedTuple):
    """One Name Resolution Block record (draft-ietf-opsawg-pcapng §4.5): address -> names."""

    address: str
    names: tuple[str, ...]


class CaptureError(Exception):
    """Damage found part-way through a capture (the frames before it were all delivered).

    ``message`` is the phrase that follows the file name, in tshark's wording where tshark has
    one ("appears to have been cut short in the middle of a packet"); ``detail`` is the
    format-level reason (e.g. ``pcap: File has 2147483647-byte packet, bigger than maximum of
    262144``) or None; ``offset`` is the byte offset of the bad record or block.
    """

    def __init__(self, message: str, offset: int, path: str, detail: str | None = None,
                 truncated: bool = False) -> None:
        super().__init__(message, offset, path, detail, truncated)  # args: pickles whole
        self.message = message
        self.offset = offset
        self.path = path
        self.detail = detail
        self.truncated = truncated

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f'{_PROG}: The file "{self.path}" {self.message}{extra} (at byte offset {self.offset}).'


class CaptureFormatError(Exception):
    """The input cannot be read as a capture at all (missing, unreadable, not a capture, ...).

    ``str()`` is one complete line suitable for printing to stderr as is.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message, path)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class _Damage(Exception):
    """Raised inside the decoders; turned into :class:`CaptureError` (mid-file) or
    :class:`CaptureFormatError` (while opening)."""

    def __init__(self, detail: str | None, offset: int, truncated: bool = False) -> None:
        super().__init__(detail, offset, truncated)
        self.detail = detail
        self.offset = offset
        self.truncated = truncated


_CUT_SHORT = "appears to have been cut short in the middle of a packet"
_DAMAGED = "appears to be damaged or corrupt"
# Errors a decompressing or plain stream can raise on read; all mean "the bytes stop being good here".
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError)


class CaptureReader:
    """Base of the pcap and pcapng readers: the chunked stream plumbing and the public surface.

    Iterating yields :class:`Frame` objects in file order; iteration is one pass (iterating
    again continues where it stopped). If damage stops it, :attr:`error` says why and where.
    ``secrets`` and ``name_resolution`` fill up as the blocks carrying them are read.
    """

    format: str = ""

    def __init__(self, stream: BinaryIO, path: str, *, owned: list[BinaryIO], compressed: bool,
                 random_access: bool, origin: int) -> None:
        self.path = path
        self.compressed = compressed
        self.interfaces: list[Interface] = []
        self.sections: list[Section] = []
        self.secrets: list[tuple[int, bytes]] = []
        self.name_resolution: list[NameRecord] = []
        self.error: CaptureError | None = None
        self._stream = stream
        self._read: Callable[[int], bytes] = getattr(stream, "read1", None) or stream.read
        self._owned = owned
        self._random_access = random_access
        self._origin = origin
        self._closed = False
        self._gen: Generator[Frame, None, None] | None = None
        self._iter: Iterator[Frame] = iter(())

    # -- public surface ------------------------------------------------------------------------
    @property
    def random_access(self) -> bool:
        """Whether :meth:`read_frame_at` works (a seekable, uncompressed input)."""
        return self._random_access

    def __iter__(self) -> Iterator[Frame]:
        return self._iter

    def read_frame_at(self, offset: int) -> Frame:
        """Decode the single record/block at ``offset`` (a :attr:`Frame.offset` from this reader).

        Raises ``io.UnsupportedOperation`` on compressed or non-seekable input and
        :class:`CaptureError` when the bytes there are not a good packet record.
        """
        raise io.UnsupportedOperation("random access is not supported by this reader")

    def close(self) -> None:
        """Stop iteration and close whatever :func:`open_capture` opened (never a caller's stream)."""
        if self._closed:
            return
        self._closed = True
        gen = self._gen
        if gen is not None:
            gen.close()
        self._iter = iter(())
        for f in reversed(self._owned):
            try:
                f.close()
            except _READ_ERRORS:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.path!r} format={self.format}"
                f"{' gzip' if self.compressed else ''} interfaces={len(self.interfaces)}>")

    # -- plumbing shared by the subclasses -----------------------------------------------------
    def _start(self, gen: Generator[Frame, None, None]) -> None:
        """Prime the record generator up to the first frame.

        Doing this at open time means metadata that precedes the first packet (pcapng IDBs,
        DSBs, NRBs) is already in :attr:`interfaces` etc. when the caller gets the reader, the
        way tshark reads the IDBs while opening.
        """
        self._gen = gen
        first = next(gen, None)
        self._iter = itertools.chain((first,), gen) if first is not None else gen

    def _set_error(self, d: _Damage) -> None:
        self.error = self._damage_at(d)

    def _more(self, buf: bytes, pos: int, need: int, base: int) -> bytes:
        """Return ``buf[pos:]`` extended by fresh chunks until it holds ``need`` bytes or input ends.

        ``need`` has been bounded by the caller; reading chunk by chunk means a file that is
        shorter than a claimed length only ever costs what is actually there.
        """
        rest = buf[pos:] if pos < len(buf) else b""
        parts = [rest] if rest else []
        have = len(rest)
        del buf, rest  # the caller still holds the old chunk; don't add a third copy
        read = self._read
        while have < need:
            try:
                chunk = read(CHUNK_SIZE)
            except EOFError:  # a compressed stream that stops mid-way: the record is cut short
                raise _Damage(None, base + pos, truncated=True) from None
            except _READ_ERRORS as exc:
                what = "gzip" if self.compressed else "read error"
                raise _Damage(f"{what}: {_describe(exc)}", base + pos) from None
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def _read_at(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at stream offset ``offset``, leaving the iteration position alone."""
        if not self._random_access or self._closed:
            raise io.UnsupportedOperation("random access needs a seekable, uncompressed input")
        f = self._stream
        try:
            saved = f.tell()
            try:
                f.seek(self._origin + offset)
                parts: list[bytes] = []
                have = 0
                while have < n:
                    chunk = f.read(min(CHUNK_SIZE, n - have))
                    if not chunk:
                        break
                    parts.append(chunk)
                    have += len(chunk)
            finally:
                f.seek(saved)
        except _READ_ERRORS as exc:
            raise CaptureError(_DAMAGED, offset, self.path, f"read error: {_describe(exc)}") from None
        return b"".join(parts)

    def _damage_at(self, d: _Damage) -> CaptureError:
        return CaptureError(_CUT_SHORT if d.truncated else _DAMAGED, d.offset, self.path, d.detail,
                            d.truncated)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Prefixed(io.RawIOBase):
    """A read-only stream that first returns ``head`` and then continues with ``rest``.

    Format detection has to consume the first bytes of a stream that may not be seekable
    (stdin); gzip then needs to see them again.
    """

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._rest = rest
        self._rest_read: Callable[[int], bytes] = getattr(rest, "read1", None) or rest.read

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(b)
        if self._head:
            k = min(n, len(self._head))
            b[:k] = self._head[:k]
            self._head = self._head[k:]
            return k
        data = self._rest_read(n)
        k = len(data)
        b[:k] = data
        return k


def _fill(read: Callable[[int], bytes], buf: bytes, need: int) -> bytes:
    """Read until ``buf`` holds at least ``need`` bytes or the stream ends (short reads on pipes)."""
    parts = [buf]
    have = len(buf)
    while have < need:
        chunk = read(CHUNK_SIZE)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


_PCAP_MAGICS = {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
_MODIFIED_PCAP_MAGICS = {b"\xa1\xb2\xcd\x34", b"\x34\xcd\xb2\xa1"}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_OTHER_COMPRESSION = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "LZ4",
    b"\xfd\x37\x7a\x58": "xz",
    b"BZh": "bzip2",
}


def _not_capture(path: str, why: str = "") -> CaptureFormatError:
    return CaptureFormatError(
        f'{_PROG}: The file "{path}" isn\'t a capture file in a format {_PROG} understands{why}.', path)


def _open_path(path: str) -> BinaryIO:
    """Open a path for reading, with tshark's one-line messages for the usual failures."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CaptureFormatError(f'{_PROG}: The file "{path}" doesn\'t exist.', path) from None
    except PermissionError:
        raise CaptureFormatError(
            f'{_PROG}: You don\'t have permission to read the file "{path}".', path) from None
    except (OSError, ValueError) as exc:
        raise CaptureFormatError(
            f'{_PROG}: The file "{path}" could not be opened: {_describe(exc)}.', path) from None
    if stat.S_ISDIR(st.st_mode):
        raise CaptureFormatError(f'{_PROG}: "{path}" is a directory (folder), not a file.', path)
    try:
        # Unbuffered: we do our own 1 MiB buffering, a BufferedReader would only add a copy.
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise CaptureFormatError(f'{_PROG}: The file "{path}" doesn\'t exist.', path) from None
    except PermissionError:
        raise CaptureFormatError(
            f'{_PROG}: You don\'t have permission to read the file "{path}".', path) from None
    except IsADirectoryError:
        raise CaptureFormatError(f'{_PROG}: "{path}" is a directory (folder), not a file.', path) from None
    except OSError as exc:
        raise CaptureFormatError(
            f'{_PROG}: The file "{path}" could not be opened: {_describe(exc)}.', path) from None


def open_capture(source: str | os.PathLike[str] | BinaryIO) -> CaptureReader:
    """Open a pcap or pcapng capture, plain or gzip-compressed, and return its reader.

    ``source`` is a path, ``"-"`` for standard input, or a binary file object (which is not
    closed by the reader; it need not be seekable). Raises :class:`CaptureFormatError` with a
    one-line message if the input cannot be opened or is not a capture file.
    """
    owned: list[BinaryIO] = []
    stream: BinaryIO
    if isinstance(source, (str, bytes, os.PathLike)):
        spath = os.fsdecode(source)
        if spath == "-":
            if sys.stdin is None or not hasattr(sys.stdin, "buffer"):
                raise CaptureFormatError(f"{_PROG}: Standard input is not available for reading.", "-")
            stream = sys.stdin.buffer
        else:
            stream = _open_path(spath)
            owned.append(stream)
        path = spath
    else:
        stream = source
        name = getattr(source, "name", None)
        path = name if isinstance(name, str) else "<stream>"
    try:
        return _open_stream(stream, path, owned)
    except BaseException:
        for f in owned:
            f.close()
        raise


def _open_stream(stream: BinaryIO, path: str, owned: list[BinaryIO]) -> CaptureReader:
    read: Callable[[int], bytes] = getattr(stream, "read1", None) or stream.read
    try:
        seekable = bool(stream.seekable())
        origin = stream.tell() if seekable else 0
    except _READ_ERRORS:
        seekable, origin = False, 0
    try:
        head = _fill(read, b"", 4)
    except IsADirectoryError:
        raise CaptureFormatError(f'{_PROG}: "{path}" is a directory (folder), not a file.', path) from None
    except _READ_ERRORS as exc:
        raise CaptureFormatError(
            f'{_PROG}: The file "{path}" could not be read: {_describe(exc)}.', path) from None
    if not head:
        raise CaptureFormatError(f'{_PROG}: The file "{path}" is empty.', path)
    compressed = False
    if head[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=_Prefixed(head, stream), mode="rb")
        owned.append(gz)  # type: ignore[arg-type]
        stream = gz  # type: ignore[assignment]
        compressed, seekable = True, False
        read = gz.read1
        try:
            head = _fill(read, b"", 4)
        except _READ_ERRORS as exc:
            if not isinstance(exc, EOFError):
                raise CaptureFormatError(
                    f'{_PROG}: The file "{path}" appears to be damaged or corrupt: '
                    f"gzip: {_describe(exc)}.", path) from None
            raise CaptureFormatError(
                f'{_PROG}: The file "{path}" appears to have been cut short in the middle of a '
                "packet or other data.", path) from None
        if not head:
            raise CaptureFormatError(f'{_PROG}: The file "{path}" is empty (once decompressed).', path)
    magic = head[:4]
    kind: str
    if magic in _PCAP_MAGICS:
        kind = "pcap"
    elif magic == _PCAPNG_MAGIC:
        kind = "pcapng"
    elif magic in _MODIFIED_PCAP_MAGICS:
        raise CaptureFormatError(
            f'{_PROG}: The file "{path}" is a modified ("Kuznetzov") pcap file, which {_PROG} '
            'does not read; convert it with "editcap -F pcap".', path)
    else:
        for sig, what in _OTHER_COMPRESSION.items():
            if magic.startswith(sig):
                raise _not_capture(path, f" (it looks {what}-compressed; only gzip is supported)")
        raise _not_capture(path)
    if kind == "pcap":
        from jpdissect.capture.pcap import PcapReader

        return PcapReader(stream, path, owned=owned, compressed=compressed, head=head,
                          random_access=seekable and not compressed, origin=origin)
    from jpdissect.capture.pcapng import PcapngReader

    return PcapngReader(stream, path, owned=owned, compressed=compressed, head=head,
                        random_access=seekable and not compressed, origin=origin)
