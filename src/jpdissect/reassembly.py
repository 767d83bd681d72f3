"""Generic fragment reassembly: the one place that puts byte-offset fragments back together.

IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5) fragments use it now; DTLS
handshake fragments (RFC 6347 §4.2.3: ``fragment_offset``/``fragment_length``
of a message whose full ``length`` every fragment states) and 6LoWPAN
FRAG1/FRAGN (RFC 4944 §5.3: ``datagram_size`` in every fragment) reuse it.
All of them describe a fragment the same way -- a key naming the datagram,
a byte offset, the bytes, and either "more fragments follow" or the total
length -- so one table serves all of them and behaves the same for each:

* The total length is known either from the caller (``total=`` -- DTLS,
  6LoWPAN) or from the last fragment (``more=False``: its end is the total,
  the IP rule).  The datagram is complete when the bytes ``[0, total)`` are
  all covered.
* Overlaps, conflicting overlaps (the same byte with two values), several
  different "last" fragments, fragments reaching past the known total and
  datagrams larger than the limit are not errors the table hides: each
  :meth:`ReassemblyTable.add` returns the :class:`Issue` flags of *that*
  fragment, and the caller turns them into expert info.  On conflict the
  bytes seen first win (Wireshark keeps the first copy too).
* Memory is bounded: ``max_size`` bytes per datagram (``MAX_REASSEMBLY``),
  ``max_pending`` datagrams in progress (the least recently touched go
  first) and ``timeout_ns`` of capture time without a new fragment (the
  stale entry is dropped, as a receiver's reassembly timer would).
* Re-dissection is stable: the outcome of each fragment is remembered per
  frame number, so dissecting frame N again (the TUI does, in any order)
  neither adds the fragment twice nor changes what frame N showed -- except
  that a fragment dissected again after its datagram completed now knows
  the frame it was reassembled in (Wireshark's second pass does the same).
  That memo is one entry per fragment for the whole capture, so a table
  made for an engine under the single-pass promise (``replay=False``, see
  :mod:`jpdissect.lifetime`) keeps only the current frame's entries: the
  same frame seen again within its own dissection still gets its first
  answer, and nothing older is ever asked for.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from jpdissect.lifetime import single_pass

# An IPv4 datagram is at most 65535 bytes (RFC 791 §3.1 Total Length); an
# IPv6 fragmentable datagram likewise (RFC 8200 §4.5: a jumbogram cannot be
# fragmented).  A DTLS handshake message may claim up to 2^24 - 1 bytes, so a
# caller can ask for more, but nobody gets an unbounded buffer.
MAX_REASSEMBLY = 65535
# How many fragments one datagram may have before it is abandoned (8-byte
# IPv4 fragments of a 65535-byte datagram need 8192).
MAX_FRAGMENTS = 8192
# How many datagrams may be in progress at once in one table.
MAX_PENDING = 4096
# Capture-time age after which an incomplete datagram is dropped (Linux uses
# 30 s for ipfrag_time, RFC 8200 §4.5 says 60 s for IPv6).
STALE_NS = 60 * 1_000_000_000


class Issue(enum.Flag):
    """What was wrong with one fragment, for the caller's expert info."""

    NONE = 0
    OVERLAP = enum.auto()            # covers bytes already received
    CONFLICT = enum.auto()           # ... and some of those bytes differ
    MULTIPLE_TAILS = enum.auto()     # a second, different last fragment
    TOO_LONG = enum.auto()           # reaches past the known total length
    TOO_LARGE = enum.auto()          # the datagram exceeds max_size: abandoned
    TOO_MANY = enum.auto()           # more than MAX_FRAGMENTS fragments: abandoned
    TOTAL_MISMATCH = enum.auto()     # an explicit total differs from the one known


class Status(enum.Enum):
    PENDING = "pending"      # waiting for more fragments
    COMPLETE = "complete"    # this fragment completed the datagram: ``data`` is set
    DONE = "done"            # the datagram completed in another frame (``reassembled_in``)
    ERROR = "error"          # abandoned (TOO_LARGE / TOO_MANY); the fragment stays unreassembled


@dataclass(slots=True)
class Fragment:
    """One received piece: where it came from, where it goes, and what was wrong with it.

    ``issues`` are those found when the piece arrived (a duplicate is the
    later copy's OVERLAP, a conflicting copy's CONFLICT), so a completed
    datagram can list each fragment with its flags as Wireshark does.
    """

    frame: int
    offset: int
    length: int
    issues: Issue = Issue.NONE

    @property
    def error(self) -> bool:
        """Wireshark shows such a fragment as a defragmentation error, not as a fragment."""
        return bool(self.issues & (Issue.CONFLICT | Issue.MULTIPLE_TAILS | Issue.TOO_LONG))


@dataclass(slots=True)
class Result:
    """What one :meth:`ReassemblyTable.add` call means for the frame that made it."""

    status: Status
    issues: Issue
    # Set when the datagram is complete (in this frame or, on re-dissection, later).
    reassembled_in: int | None = None
    data: bytes | None = None
    fragments: tuple[Fragment, ...] = ()
    # Known total length (None until the last fragment or an explicit total).
    total: int | None = None
    # Missing byte ranges [start, end) while pending (end None: unknown total).
    gaps: tuple[tuple[int, int | None], ...] = ()
    # Frames holding bytes this fragment overlapped / overlapped with different values.
    overlap_frames: tuple[int, ...] = ()
    conflict_frames: tuple[int, ...] = ()
    # Fragments of this same key dropped as stale just before this one arrived
    # (the datagram timed out; this fragment starts a new one).
    expired_fragments: int = 0
    # Whatever the caller attached to the datagram with ``meta=`` (last one wins).
    meta: object = None

    @property
    def complete(self) -> bool:
        return self.status is Status.COMPLETE


@dataclass(slots=True)
class _Entry:
    key: Hashable
    pieces: list[tuple[int, bytes, int, Issue]] = field(default_factory=list)  # (offset, data, frame, issues)
    total: int | None = None
    tail_end: int | None = None       # end of the fragment that said "no more"
    last_ts: int = 0
    done_frame: int | None = None
    data: bytes | None = None
    frags: tuple[Fragment, ...] = ()
    error: bool = False
    meta: object = None


@dataclass(slots=True)
class _Seen:
    """What one fragment did, replayed when its frame is dissected again."""

    ent: _Entry
    issues: Issue
    overlap_frames: tuple[int, ...]
    conflict_frames: tuple[int, ...]
    expired: int


class ReassemblyTable:
    """Datagrams in progress, keyed by whatever identifies one (RFC 791: src, dst, proto, id).

    One table per protocol lives in the engine's per-capture state
    (``pkt.cap.state``), so a second capture starts empty.
    """

    def __init__(
        self,
        max_size: int = MAX_REASSEMBLY,
        max_pending: int = MAX_PENDING,
        timeout_ns: int = STALE_NS,
        max_fragments: int = MAX_FRAGMENTS,
        replay: bool = True,
    ) -> None:
        self.max_size = max_size
        self.max_pending = max_pending
        self.timeout_ns = timeout_ns
        self.max_fragments = max_fragments
        self.replay = replay
        self._pending: OrderedDict[Hashable, _Entry] = OrderedDict()
        # (frame, key, offset) -> what that fragment did: replayed on re-dissection
        # (without ``replay``: the current frame's fragments only).
        self._seen: dict[tuple[int, Hashable, int], _Seen] = {}
        self._seen_frame = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------
    def add(
        self,
        key: Hashable,
        frame: int,
        offset: int,
        data: bytes,
        more: bool = True,
        *,
        total: int | None = None,
        ts_ns: int | None = None,
        meta: object = None,
    ) -> Result:
        """Add one fragment of datagram ``key``: ``data`` belongs at byte ``offset``.

        ``more=False`` says this is the last fragment (its end is the total
        length); ``total`` gives the total length up front instead.  ``ts_ns``
        (capture time) drives the staleness timeout; without it nothing expires
        by age.
        """
        memo = self._seen.get((frame, key, offset))
        if memo is not None:
            return self._result(memo, frame)
        now = ts_ns if ts_ns is not None else 0
        expired = self._evict_stale(now, key) if ts_ns is not None else 0
        ent = self._pending.get(key)
        if ent is None:
            ent = _Entry(key)
            self._pending[key] = ent
            self._evict_excess()
        else:
            self._pending.move_to_end(key)
        ent.last_ts = now
        if meta is not None:
            ent.meta = meta
        ov: list[int] = []
        cf: list[int] = []
        if ent.error:
            # An abandoned datagram stays as a tombstone (until it goes stale)
            # so its later fragments are reported, not started afresh.
            issues = Issue.NONE
        else:
            issues = self._place(ent, offset, bytes(data), frame, more, total, ov, cf)
        seen = _Seen(ent, issues, tuple(ov), tuple(cf), expired)
        if not self.replay and frame != self._seen_frame:
            self._seen.clear()
            self._seen_frame = frame
        self._seen[(frame, key, offset)] = seen
        if not ent.error and ent.total is not None and _covered(ent.pieces, ent.total):
            self._finish(ent, frame)
            self._pending.pop(key, None)
        return self._result(seen, frame)

    def pending_keys(self) -> list[Hashable]:
        return list(self._pending)

    # ------------------------------------------------------------------
    def _place(
        self, ent: _Entry, offset: int, data: bytes, frame: int, more: bool, total: int | None,
        ov: list[int], cf: list[int],
    ) -> Issue:
        issues = Issue.NONE
        end = offset + len(data)
        if total is not None:
            if ent.total is not None and ent.total != total:
                issues |= Issue.TOTAL_MISMATCH
            elif ent.total is None:
                ent.total = total
        if not more:
            if ent.tail_end is not None and ent.tail_end != end:
                issues |= Issue.MULTIPLE_TAILS
            else:
                ent.tail_end = end
                if ent.total is None:
                    ent.total = end
        if ent.total is not None and end > ent.total:
            issues |= Issue.TOO_LONG
        if end > self.max_size or (ent.total is not None and ent.total > self.max_size):
            ent.error = True
            ent.pieces = []
            return issues | Issue.TOO_LARGE
        if len(ent.pieces) >= self.max_fragments:
            ent.error = True
            ent.pieces = []
            return issues | Issue.TOO_MANY
        for o, d, f, _i in ent.pieces:
            lo, hi = max(o, offset), min(o + len(d), end)
            if lo < hi:
                issues |= Issue.OVERLAP
                ov.append(f)
                if d[lo - o : hi - o] != data[lo - offset : hi - offset]:
                    issues |= Issue.CONFLICT
                    cf.append(f)
        if ent.total is not None and any(o + len(d) > ent.total for o, d, _f, _i in ent.pieces) and not (
            issues & Issue.TOO_LONG
        ):
            # A total learnt now shows that an earlier fragment was too long.
            issues |= Issue.TOO_LONG
        ent.pieces.append((offset, data, frame, issues))
        return issues

    def _finish(self, ent: _Entry, frame: int) -> None:
        total = ent.total or 0
        buf = bytearray(total)
        have = bytearray(total)  # 1 where a byte is already placed: first copy wins
        frags = []
        # In arrival order, so that on conflict the bytes seen first win.
        for o, d, _f, _i in ent.pieces:
            end = min(o + len(d), total)
            if o < end:
                if not any(have[o:end]):
                    buf[o:end] = d[: end - o]
                    have[o:end] = b"\x01" * (end - o)
                else:
                    for k in range(o, end):
                        if not have[k]:
                            buf[k] = d[k - o]
                            have[k] = 1
        for o, d, f, iss in sorted(ent.pieces, key=lambda p: (p[0], p[2])):
            frags.append(Fragment(f, o, len(d), iss))
        ent.data = bytes(buf)
        ent.frags = tuple(frags)
        ent.done_frame = frame
        ent.pieces = []  # the bytes live on in ent.data only

    def _result(self, seen: _Seen, frame: int) -> Result:
        ent = seen.ent
        frags: tuple[Fragment, ...] = ()
        done_in: int | None = None
        data: bytes | None = None
        if ent.error:
            status = Status.ERROR
        elif ent.done_frame is not None:
            done_in, frags = ent.done_frame, ent.frags
            if ent.done_frame == frame:
                status, data = Status.COMPLETE, ent.data
            else:
                status = Status.DONE
        else:
            status = Status.PENDING
        return Result(
            status, seen.issues, reassembled_in=done_in, data=data, fragments=frags, total=ent.total,
            gaps=_gaps(ent.pieces, ent.total) if status is Status.PENDING else (),
            overlap_frames=seen.overlap_frames, conflict_frames=seen.conflict_frames,
            expired_fragments=seen.expired, meta=ent.meta,
        )

    def _evict_stale(self, now: int, key: Hashable) -> int:
        """Drop datagrams untouched for ``timeout_ns``; returns how many fragments ``key`` lost."""
        pend = self._pending
        lost = 0
        while pend:
            k, ent = next(iter(pend.items()))
            if now - ent.last_ts <= self.timeout_ns:
                break
            del pend[k]
            self.evicted += 1
            if k == key:
                lost = len(ent.pieces)
        return lost

    def _evict_excess(self) -> None:
        pend = self._pending
        while len(pend) > self.max_pending:
            pend.popitem(last=False)
            self.evicted += 1


def _covered(pieces: list[tuple[int, bytes, int, Issue]], total: int) -> bool:
    """Whether ``[0, total)`` is fully covered by the pieces."""
    reach = 0
    for o, d, _f, _i in sorted(pieces, key=lambda p: p[0]):
        if o > reach:
            return False
        reach = max(reach, o + len(d))
        if reach >= total:
            return True
    return reach >= total


def _gaps(pieces: list[tuple[int, bytes, int, Issue]], total: int | None) -> tuple[tuple[int, int | None], ...]:
    out: list[tuple[int, int | None]] = []
    reach = 0
    for o, d, _f, _i in sorted(pieces, key=lambda p: p[0]):
        if o > reach:
            out.append((reach, o))
        reach = max(reach, o + len(d))
    if total is None:
        out.append((reach, None))
    elif reach < total:
        out.append((reach, total))
    return tuple(out)


def table_in(state: dict[str, Any], key: str, **limits: Any) -> ReassemblyTable:
    """The engine's reassembly table for one protocol (``state[key]``), made on first use with ``limits``
    (replaying re-dissected frames unless the engine promised a single pass)."""
    t = state.get(key)
    if t is None:
        t = state[key] = ReassemblyTable(replay=not single_pass(state), **limits)
    return t
