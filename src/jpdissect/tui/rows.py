"""Packed summary rows, the expert-info tally, and the child-process message framing.

A million summary rows kept as Python tuples of strings cost more than half a
gigabyte; the same rows packed here cost a few tens of megabytes. Protocol,
addresses and the scheme cell repeat endlessly, so they are interned into one
string table and stored as integer ids; the Info column is mostly unique, so it
is kept in zlib-compressed blocks of :data:`BLOCK` rows and only the few blocks
on screen are ever decompressed.
"""

from __future__ import annotations

import pickle
import struct
import threading
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

from jpdissect.model import FIELDS, Packet

#: Rows per compressed Info block: big enough to compress well (~8x), small enough that
#: decompressing one to draw a screen costs microseconds.
BLOCK = 1024
#: Decompressed Info blocks kept (a screen touches at most two).
INFO_CACHE_BLOCKS = 16
#: Frame numbers remembered per expert-info message, for "go to first occurrences".
EXPERT_FRAMES_KEPT = 50

_SEP = "\x00"


class Row(NamedTuple):
    """One packet-list line. ``exact`` is False for a row dissected out of order (provisional).

    ``scheme`` is the whole Scheme/Session cell (``jpy #3``).
    """

    number: int
    rel_ns: int
    src: str
    dst: str
    protocol: str
    length: int
    scheme: str
    info: str
    exact: bool = True


def scheme_of(pkt: Packet) -> str:
    """The relay scheme the ``jp`` layer gave this frame ('' when none, or no jp dissector)."""
    v = pkt.get("jp.scheme") if "jp.scheme" in FIELDS else None
    return str(v) if v is not None else ""


def session_of(pkt: Packet) -> int:
    """The pledge session number of this frame (0 = none)."""
    v = pkt.get("jp.session") if "jp.session" in FIELDS else None
    return v if isinstance(v, int) else 0


def scheme_text(scheme: str, session: int) -> str:
    """The Scheme/Session cell: ``jpy #3``."""
    if not scheme:
        return f"#{session}" if session else ""
    return f"{scheme} #{session}" if session else scheme


def scheme_cell(pkt: Packet) -> str:
    """The Scheme/Session column of a packet, from the fields the ``jp`` layer declares."""
    return scheme_text(scheme_of(pkt), session_of(pkt))


#: Fields the row pass must record even without a tree (the Scheme/Session column).
COLUMN_FIELDS = ("jp.scheme", "jp.session")


class RowStore:
    """Summary rows in capture order, appended by one writer and read by the UI thread.

    ``append`` is for in-process passes (live capture, stdin); ``extend_block``
    takes a block already packed by the child process. Reads never block on the
    writer for long: the lock only guards list/array growth.
    """

    def __init__(self) -> None:
        self.strings: list[str] = [""]
        self._ids: dict[str, int] = {"": 0}
        self.proto = array("I")
        self.src = array("I")
        self.dst = array("I")
        self.scheme = array("I")
        #: Pledge session per row: single-pass numbers first, replaced by the final ones
        #: (:meth:`set_sessions`) when the in-order pass has seen the whole capture.
        self.session = array("I")
        self.sessions_final = False
        self._blocks: list[bytes] = []
        self._pending: list[str] = []
        self._cache: OrderedDict[int, list[str]] = OrderedDict()
        self._remote: dict[int, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.proto)

    def intern(self, s: str) -> int:
        i = self._ids.get(s)
        if i is None:
            i = len(self.strings)
            self.strings.append(s)
            self._ids[s] = i
        return i

    def append(self, protocol: str, src: str, dst: str, scheme: str, session: int, info: str) -> None:
        with self._lock:
            it = self.intern
            self.proto.append(it(protocol))
            self.src.append(it(src))
            self.dst.append(it(dst))
            self.scheme.append(it(scheme))
            self.session.append(session)
            self._pending.append(info)
            if len(self._pending) == BLOCK:
                self._blocks.append(_pack_info(self._pending))
                self._pending = []

    def extend_block(self, block: PackedBlock) -> None:
        """Append a child-process block; its string ids are the child's, mapped here once."""
        with self._lock:
            if self._pending:
                raise RuntimeError("extend_block after append: blocks would misalign")
            remote = self._remote
            for i, s in block.new_strings.items():
                remote[i] = self.intern(s)
            for dst_arr, src_ids in ((self.proto, block.proto), (self.src, block.src),
                                     (self.dst, block.dst), (self.scheme, block.scheme)):
                dst_arr.extend([remote[i] for i in src_ids])
            self.session.extend(block.session)
            self._blocks.append(block.info)

    def set_sessions(self, final: array, schemes: array, names: list[str]) -> None:
        """Replace the single-pass sessions and schemes by the final ones of the whole capture."""
        with self._lock:
            n = len(self.session)
            ids = [self.intern(s) for s in names]
            self.session = array("I", final[:n]) + self.session[len(final):]
            self.scheme = array("I", (ids[k] if k else old for k, old in zip(schemes[:n], self.scheme, strict=False))) \
                + self.scheme[len(schemes):]
            self.sessions_final = True

    def cells(self, i: int) -> tuple[str, str, str, str, str]:
        """(protocol, src, dst, Scheme/Session cell, info) of row ``i``."""
        with self._lock:
            st = self.strings
            b, k = divmod(i, BLOCK)
            if b < len(self._blocks):
                infos = self._cache.get(b)
                if infos is None:
                    infos = zlib.decompress(self._blocks[b]).decode("utf-8").split(_SEP)
                    self._cache[b] = infos
                    if len(self._cache) > INFO_CACHE_BLOCKS:
                        self._cache.popitem(last=False)
                else:
                    self._cache.move_to_end(b)
                info = infos[k]
            else:
                info = self._pending[k]
            return (st[self.proto[i]], st[self.src[i]], st[self.dst[i]],
                    scheme_text(st[self.scheme[i]], self.session[i]), info)

    def nbytes(self) -> int:
        """Approximate memory held, for the status line and the benchmark report."""
        n = sum(len(b) for b in self._blocks) + sum(len(s) + 49 for s in self.strings)
        return n + 5 * 4 * len(self.proto)


def _pack_info(infos: list[str]) -> bytes:
    return zlib.compress(_SEP.join(s.replace(_SEP, " ") for s in infos).encode("utf-8"), 1)


@dataclass
class PackedBlock:
    """Up to :data:`BLOCK` rows as the child process sends them."""

    new_strings: dict[int, str]
    proto: array
    src: array
    dst: array
    scheme: array
    session: array
    info: bytes

    @property
    def count(self) -> int:
        return len(self.proto)


class BlockPacker:
    """The child-process side of :class:`RowStore`: rows in, :class:`PackedBlock` out.

    The child keeps its own string table and sends each string once, the first time a
    block uses it, so a block of 1024 rows pickles to a few kilobytes.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._new: dict[int, str] = {}
        self._reset()

    def _reset(self) -> None:
        self.proto = array("I")
        self.src = array("I")
        self.dst = array("I")
        self.scheme = array("I")
        self.session = array("I")
        self.info: list[str] = []

    def _id(self, s: str) -> int:
        i = self._ids.get(s)
        if i is None:
            i = len(self._ids)
            self._ids[s] = i
            self._new[i] = s
        return i

    def add(self, pkt: Packet) -> PackedBlock | None:
        """Add a dissected packet's row; returns a full block when one is ready to send."""
        _id = self._id
        self.proto.append(_id(pkt.protocol))
        self.src.append(_id(pkt.src))
        self.dst.append(_id(pkt.dst))
        self.scheme.append(_id(scheme_of(pkt)))
        self.session.append(session_of(pkt))
        self.info.append(pkt.info)
        return self.flush() if len(self.info) >= BLOCK else None

    def flush(self) -> PackedBlock | None:
        if not self.info:
            return None
        blk = PackedBlock(self._new, self.proto, self.src, self.dst, self.scheme, self.session,
                          _pack_info(self.info))
        self._new = {}
        self._reset()
        return blk


# ---------------------------------------------------------------------------
# Expert info tally


@dataclass
class ExpertEntry:
    severity: int
    group: str
    proto: str
    message: str
    count: int = 0
    frames: list[int] = field(default_factory=list)


class ExpertTally:
    """Wireshark's Expert Information dialog in numbers: one entry per distinct message."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, str, str, str], ExpertEntry] = {}

    def add(self, pkt: Packet) -> None:
        for e in pkt.experts:
            key = (int(e.severity), e.group.value, e.proto, e.message)
            ent = self.entries.get(key)
            if ent is None:
                ent = self.entries[key] = ExpertEntry(*key)
            ent.count += 1
            if len(ent.frames) < EXPERT_FRAMES_KEPT:
                ent.frames.append(pkt.number)

    def merge(self, other: Iterable[ExpertEntry]) -> None:
        for ent in other:
            key = (ent.severity, ent.group, ent.proto, ent.message)
            self.entries[key] = ent

    def sorted(self) -> list[ExpertEntry]:
        return sorted(self.entries.values(), key=lambda e: (-e.severity, -e.count, e.proto, e.message))


# ---------------------------------------------------------------------------
# Child-process messages: 4-byte length + pickle. Both ends are this package, so pickle is safe.

_LEN = struct.Struct("<I")


def write_msg(out: BinaryIO, msg: tuple[Any, ...]) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LEN.pack(len(data)) + data)
    out.flush()


def read_msg(inp: BinaryIO) -> tuple[Any, ...] | None:
    head = _read_exact(inp, 4)
    if head is None:
        return None
    body = _read_exact(inp, _LEN.unpack(head)[0])
    if body is None:
        return None
    return pickle.loads(body)  # noqa: S301 - our own child process


def _read_exact(inp: BinaryIO, n: int) -> bytes | None:
    parts: list[bytes] = []
    have = 0
    while have < n:
        chunk = inp.read(n - have)
        if not chunk:
            return None
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)
