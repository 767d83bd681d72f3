"""Child process for the long passes over a capture file: rows, filter, statistics.

Why a child process and not a thread: a pass dissects every frame (~6 000 frames/s), and a
thread doing that holds the GIL for most of each 5 ms switch interval, so the UI would stutter
for minutes on a big file. A child runs on the other core, the UI stays smooth, and
cancelling is simply terminating it. It reads the file with its own reader, in capture
order, so its stateful dissection is exact; results come back as length-prefixed pickles
(:func:`jpdissect.tui.rows.write_msg`) on stdout.

Run as ``python -m jpdissect.tui.worker rows|filter|extract|stats PATH [options]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from array import array
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO

from jpdissect.capture import CaptureFormatError, Frame, open_capture
from jpdissect.tui.detail import EngineOptions, dissect_run, prime_columns
from jpdissect.tui.rows import BlockPacker, ExpertTally, write_msg

#: Seconds between progress messages (and partial results).
REPORT_EVERY = 0.25
#: Seconds between expert-info snapshots during the rows pass.
EXPERTS_EVERY = 2.0
#: The finished pledge-session table is sent to the UI (for exact jp fields in the detail pane)
#: only for captures up to this many frames: it pickles to ~100 bytes per frame.
JP_TABLE_MAX = 100_000


def final_sessions(eng: Any, n: int, last_ts: int | None) -> tuple[array, array, list[str], Any]:
    """Final pledge session (0 = none) and scheme (index into the returned names) of every
    frame, and the finished table: a single pass only knows a pledge-leg frame's scheme once
    the relayed twin has been seen."""
    from jpdissect.sessions import tracker_for

    table = tracker_for(eng).finish(last_ts)
    arr = array("I", bytes(4 * n))
    sch = array("I", bytes(4 * n))
    names: list[str] = [""]
    ids: dict[str, int] = {"": 0}
    for sess in table.sessions:
        for num, fi in sess.frames.items():
            if 0 < num <= n:
                arr[num - 1] = fi.session or 0
                name = fi.scheme or sess.scheme or ""
                k = ids.get(name)
                if k is None:
                    k = ids[name] = len(names)
                    names.append(name)
                sch[num - 1] = k
    return arr, sch, names, table


def two_pass_engine(path: str, opts: EngineOptions, out: BinaryIO, cols: bool) -> Any:
    """An engine that knows every pledge session of ``path`` (``read -2``): the jp look-ahead
    fields (``jp.peer_frame`` of an ingress copy, final session numbers) need the whole file."""
    from jpdissect.sessions import tracker_for

    frames = _open(path, out)
    if frames is None:
        return None
    first = opts.engine(tree=False, cols=False)
    n = 0
    last: int | None = None
    t = time.monotonic()
    for fr in frames:
        first.dissect(fr)
        last = fr.ts_ns
        n += 1
        if not n & 1023 and time.monotonic() - t >= REPORT_EVERY:
            t = time.monotonic()
            write_msg(out, ("pass1", n))
    table = tracker_for(first).finish(last)
    return opts.engine(tree=False, cols=cols, jp_table=table)


class _Input:
    """The capture read in order, remembering the damage message (if any) once iteration ends."""

    def __init__(self, path: str) -> None:
        self.reader = open_capture(path)
        self.error: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        with self.reader:
            yield from self.reader
            self.error = str(self.reader.error) if self.reader.error else None


def _open(path: str, out: BinaryIO) -> _Input | None:
    try:
        return _Input(path)
    except CaptureFormatError as exc:
        write_msg(out, ("done", 0, str(exc)))
        return None


def run_rows(path: str, opts: EngineOptions, out: BinaryIO) -> int:
    """The in-order pass: one packed row block per 1024 frames, expert tally, learned ports."""
    frames = _open(path, out)
    if frames is None:
        return 1
    prime_columns()
    eng = opts.engine(tree=False, cols=True)
    eng.secrets.extend(frames.reader.secrets)
    packer = BlockPacker()
    experts = ExpertTally()
    n = 0
    start = 0
    last = time.monotonic()
    last_experts = last
    learned_size = 0
    last_ts: int | None = None
    for fr in frames:
        pkt = eng.dissect(fr)
        eng.displayed(pkt)
        last_ts = fr.ts_ns
        if pkt.experts:
            experts.add(pkt)
        blk = packer.add(pkt)
        n += 1
        if blk is not None:
            write_msg(out, ("block", start, blk))
            start = n
            now = time.monotonic()
            if now - last >= REPORT_EVERY:
                last = now
                write_msg(out, ("progress", n))
                size = sum(len(t) for t in eng.learned.values())
                if size != learned_size:
                    learned_size = size
                    write_msg(out, ("learned", eng.learned))
            if now - last_experts >= EXPERTS_EVERY:
                last_experts = now
                write_msg(out, ("experts", experts.sorted()))
    blk = packer.flush()
    if blk is not None:
        write_msg(out, ("block", start, blk))
    try:
        sess, sch, names, table = final_sessions(eng, n, last_ts)
        write_msg(out, ("sessions", sess, sch, names))
        if n <= JP_TABLE_MAX:
            write_msg(out, ("jptable", table))
    except ImportError:
        pass
    write_msg(out, ("learned", eng.learned))
    write_msg(out, ("experts", experts.sorted()))
    write_msg(out, ("done", n, frames.error))
    return 0


def run_filter(path: str, opts: EngineOptions, text: str, ref: int | None, out: BinaryIO) -> int:
    """Indices (0-based) of the frames passing ``text``, in batches, dissected in order."""
    from jpdissect.filters import FilterError, compile_filter

    try:
        flt = compile_filter(text)
    except FilterError as exc:
        write_msg(out, ("done", 0, exc.message))
        return 1
    prime_columns(flt.fields)
    if ref is not None and flt.references:
        _set_reference(path, opts, flt, ref)
    eng = _engine_for(path, opts, out, flt.fields, cols=False)
    frames = _open(path, out)
    if frames is None or eng is None:
        return 1
    batch = array("I")
    n = 0
    last = time.monotonic()
    for fr in frames:
        pkt = eng.dissect(fr)
        if flt(pkt):
            eng.displayed(pkt)
            batch.append(n)
        n += 1
        if not n & 255:
            now = time.monotonic()
            if now - last >= REPORT_EVERY:
                last = now
                write_msg(out, ("match", batch, n))
                batch = array("I")
    write_msg(out, ("match", batch, n))
    write_msg(out, ("done", n, frames.error))
    return 0


def _engine_for(path: str, opts: EngineOptions, out: BinaryIO, fields: Any, cols: bool) -> Any:
    """Two passes when jp fields are asked for (as ``read -2``), else no jp layer at all."""
    try:
        from jpdissect.sessions import needs_two_pass
    except ImportError:
        return opts.engine(tree=False, cols=cols, jp=False)
    if needs_two_pass(fields):
        return two_pass_engine(path, opts, out, cols)
    return opts.engine(tree=False, cols=cols, jp=False)


def _set_reference(path: str, opts: EngineOptions, flt: Any, ref: int) -> None:
    """``${field}`` values from frame ``ref``, dissected with the same window as the detail pane."""
    window: deque[Frame] = deque(maxlen=opts.warmup + 1)
    first_ts: int | None = None
    prev_ts: int | None = None
    reader = open_capture(path)
    with reader:
        for k, fr in enumerate(reader):
            if first_ts is None:
                first_ts = fr.ts_ns
            if len(window) == window.maxlen:
                prev_ts = window[0].ts_ns
            window.append(fr)
            if k == ref:
                break
    if first_ts is None or not window:
        return
    frames = list(window)
    pkts = dissect_run(frames, ref + 2 - len(frames), first_ts, opts, prev_ts=prev_ts,
                       keep=lambda k: k == len(frames) - 1)
    flt.set_reference(pkts[0])


def run_extract(path: str, opts: EngineOptions, text: str, fields: list[str], out: BinaryIO) -> int:
    """Rows plus chosen field values of the frames passing ``text`` (Follow session uses it)."""
    from jpdissect.filters import FilterError, compile_filter
    from jpdissect.tui.statsbridge import MAX_EXTRACT, extract_row

    try:
        flt = compile_filter(text)
    except FilterError as exc:
        write_msg(out, ("done", 0, exc.message))
        return 1
    prime_columns([*flt.fields, *fields])
    eng = _engine_for(path, opts, out, [*flt.fields, *fields], cols=True)
    frames = _open(path, out)
    if frames is None or eng is None:
        return 1
    eng.secrets.extend(frames.reader.secrets)
    rows: list[Any] = []
    n = 0
    last = time.monotonic()
    for fr in frames:
        pkt = eng.dissect(fr)
        if flt(pkt):
            eng.displayed(pkt)
            if len(rows) < MAX_EXTRACT:
                rows.append(extract_row(n, pkt, fields))
        n += 1
        if not n & 255:
            now = time.monotonic()
            if now - last >= REPORT_EVERY:
                last = now
                write_msg(out, ("extract", rows, n))
                rows = []
    write_msg(out, ("extract", rows, n))
    write_msg(out, ("done", n, frames.error))
    return 0


def run_stats(path: str, opts: EngineOptions, out: BinaryIO) -> int:
    """The statistics pass: everything :mod:`jpdissect.tui.statsbridge` can compute."""
    from jpdissect.tui.statsbridge import StatsCollector

    frames = _open(path, out)
    if frames is None:
        return 1
    coll = StatsCollector(opts)
    coll.engine.secrets.extend(frames.reader.secrets)
    n = 0
    last = time.monotonic()
    for fr in frames:
        coll.add(fr)
        n += 1
        if not n & 255:
            now = time.monotonic()
            if now - last >= REPORT_EVERY:
                last = now
                write_msg(out, ("progress", n))
            if now - coll.last_snapshot >= coll.snapshot_every:
                write_msg(out, ("stats", coll.snapshot(final=False)))
    write_msg(out, ("stats", coll.snapshot(final=True)))
    write_msg(out, ("done", n, frames.error))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jpdissect.tui.worker")
    p.add_argument("job", choices=("rows", "filter", "extract", "stats"))
    p.add_argument("path")
    p.add_argument("--filter", default="")
    p.add_argument("--ref", type=int)
    p.add_argument("--field", action="append", default=[])
    p.add_argument("--warmup", type=int, default=256)
    p.add_argument("-o", action="append", default=[])
    p.add_argument("-d", action="append", default=[])
    a = p.parse_args(argv)
    opts = EngineOptions(tuple(a.o), tuple(a.d), a.warmup)
    out = sys.stdout.buffer
    try:
        if a.job == "rows":
            return run_rows(a.path, opts, out)
        if a.job == "filter":
            return run_filter(a.path, opts, a.filter, a.ref, out)
        if a.job == "extract":
            return run_extract(a.path, opts, a.filter, a.field, out)
        return run_stats(a.path, opts, out)
    except BrokenPipeError:  # the UI cancelled us or quit
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
