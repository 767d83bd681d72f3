"""The lazy frame index behind the packet list: open a million-frame file in well under 2 s.

Three things happen, each as cheap as it can be:

1. **Offset scan** (a thread here): the reader walks the file without dissecting and records
   each frame's offset, timestamp and length (20 bytes a frame; ~2.7 s per million frames).
   The first :data:`FIRST_SCREEN` frames are scanned before the UI draws anything, so the
   first screen never waits for the rest.
2. **In-order pass** (a child process, :mod:`jpdissect.tui.worker`): dissects every frame in
   capture order -- so reassembly and learned ports are right -- and sends back packed
   summary rows, the expert-info tally and the ports it learned. Rows it has sent are *exact*.
3. **On demand** (here, on the UI thread): a row the pass has not reached yet is dissected
   with a short warm-up window and shown as *provisional* (dimmed) until the exact row
   arrives; the selected frame is always re-dissected with a fresh full tree
   (:func:`jpdissect.tui.detail.dissect_one`).

Random access shares the reader with the scan thread under one lock: pcapng random access
needs the section/interface tables that only iteration builds, and a second reader would have
to scan the file a second time to get them.
"""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jpdissect.capture import CaptureFormatError, Frame, Interface, open_capture
from jpdissect.model import Packet
from jpdissect.tui.detail import ROW_WARMUP, EngineOptions, dissect_one, dissect_run, prime_columns
from jpdissect.tui.rows import ExpertTally, Row, RowStore, read_msg, scheme_cell, scheme_of, session_of

#: Frames scanned (and dissected) before the first screen is drawn.
FIRST_SCREEN = 200
#: Frames pulled from the reader per lock hold in the scan thread.
SCAN_BATCH = 512
#: Provisional rows are dissected this many at a time and kept in an LRU of this many chunks.
CHUNK = 64
CHUNK_CACHE = 64

__all__ = [
    "CaptureFormatError", "ChildJob", "ExtractRun", "FileIndex", "FilterRun", "PacketSource",
    "Progress", "StatsRun", "View",
]


@dataclass
class Progress:
    """One long operation as the status line shows it; ``total`` 0 means unknown."""

    label: str
    done: int = 0
    total: int = 0
    running: bool = True
    cancellable: bool = True
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    def finish(self, error: str | None = None) -> None:
        self.running = False
        self.error = error
        self.finished = time.monotonic()

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class ChildJob:
    """A :mod:`jpdissect.tui.worker` child and the thread reading its messages.

    ``on_msg`` runs on the reader thread; it must only touch thread-safe state.
    """

    def __init__(self, job: str, path: str, opts: EngineOptions, on_msg: Callable[[tuple[Any, ...]], None],
                 extra: Iterable[str] = ()) -> None:
        cmd = [sys.executable, "-m", "jpdissect.tui.worker", job, path,
               "--warmup", str(opts.warmup), *opts.argv(), *extra]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.on_msg = on_msg
        self.cancelled = False
        self.stderr = b""
        self.thread = threading.Thread(target=self._pump, name=f"jpdissect-{job}", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        out = self.proc.stdout
        assert out is not None
        got_done = False
        while True:
            try:
                msg = read_msg(out)
            except Exception as exc:  # noqa: BLE001 - a broken child must not kill the UI
                msg = ("done", -1, f"worker: {exc}")
            if msg is None:
                break
            got_done = got_done or msg[0] == "done"
            self.on_msg(msg)
        self.proc.wait()
        if self.proc.stderr is not None:
            self.stderr = self.proc.stderr.read()[-2000:]
        if not got_done:
            why = "cancelled" if self.cancelled else (
                self.stderr.decode(errors="replace").strip().splitlines() or ["worker exited"])[-1]
            self.on_msg(("done", -1, why))

    def cancel(self) -> None:
        self.cancelled = True
        if self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


class FilterRun:
    """The frames passing one display filter, growing while the filter pass runs.

    ``head`` holds the matches of a pass over the frames present when the filter was applied
    (``upto``, None = to the end of the file); for a live capture ``tail`` collects matches of
    frames that arrived later, decided as they arrive.
    """

    def __init__(self, text: str, upto: int | None = None) -> None:
        self.text = text
        self.upto = upto
        self.head = array("I")
        self.tail = array("I")
        self.progress = Progress(f"Filtering “{text}”")
        self.error: str | None = None
        self.lock = threading.Lock()
        self.job: ChildJob | None = None
        self.cancel_flag = False

    @property
    def done(self) -> bool:
        return not self.progress.running

    def __len__(self) -> int:
        return len(self.head) + (len(self.tail) if self.done else 0)

    def index_at(self, row: int) -> int:
        h = len(self.head)
        return self.head[row] if row < h else self.tail[row - h]

    def position_of(self, index: int) -> int | None:
        """The display row of frame ``index`` if it passes the filter."""
        import bisect

        h = self.head
        k = bisect.bisect_left(h, index)
        if k < len(h) and h[k] == index:
            return k
        if self.done:
            t = self.tail
            k = bisect.bisect_left(t, index)
            if k < len(t) and t[k] == index:
                return len(h) + k
        return None

    def cancel(self) -> None:
        self.cancel_flag = True
        if self.job is not None:
            self.job.cancel()


class ExtractRun:
    """Rows and field values of the frames passing a filter (the Follow-session screen)."""

    def __init__(self, text: str, fields: tuple[str, ...]) -> None:
        self.text = text
        self.fields = fields
        self.rows: list[dict[str, Any]] = []
        self.progress = Progress(f"Collecting “{text}”")
        self.job: ChildJob | None = None
        self.cancel_flag = False

    def cancel(self) -> None:
        self.cancel_flag = True
        if self.job is not None:
            self.job.cancel()


class StatsRun:
    """Snapshots of the statistics pass; the last one has ``final`` set."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] | None = None
        self.progress = Progress("Statistics")
        self.job: ChildJob | None = None
        self.cancel_flag = False

    def cancel(self) -> None:
        self.cancel_flag = True
        if self.job is not None:
            self.job.cancel()


class View:
    """Display rows -> frame indices: every frame, or a filter's matches."""

    def __init__(self, source: PacketSource, run: FilterRun | None = None) -> None:
        self.source = source
        self.run = run

    def __len__(self) -> int:
        if self.run is None:
            return self.source.count() - self.source.first()
        return len(self.run)

    def index_at(self, row: int) -> int:
        if self.run is None:
            return self.source.first() + row
        return self.run.index_at(row)

    def row_of(self, index: int) -> int | None:
        if self.run is None:
            r = index - self.source.first()
            return r if 0 <= r < len(self) else None
        return self.run.position_of(index)


class PacketSource:
    """What the UI needs from a capture, file or live: rows, frames, trees, filters, progress."""

    name = ""
    live = False

    def __init__(self, opts: EngineOptions) -> None:
        self.opts = opts
        self.experts = ExpertTally()
        self.learned: dict[str, dict[Any, str]] = {}
        self.jobs: list[Progress] = []
        self.error: str | None = None
        self.changed = threading.Event()
        #: The finished pledge-session table, when the in-order pass could send it.
        self.jp_table: Any = None

    # -- to implement ---------------------------------------------------------------------
    def first(self) -> int:
        return 0

    def count(self) -> int:
        raise NotImplementedError

    def frame(self, i: int) -> Frame:
        raise NotImplementedError

    def row(self, i: int) -> Row | None:
        raise NotImplementedError

    def first_ts(self) -> int:
        raise NotImplementedError

    def last_rel_ns(self) -> int:
        """Time of the last known frame since the first (sizes the Time column)."""
        return 0

    @property
    def interfaces(self) -> list[Interface]:
        return []

    @property
    def secrets(self) -> list[tuple[int, bytes]]:
        return []

    def start_filter(self, text: str, ref: int | None) -> FilterRun:
        raise NotImplementedError

    def start_extract(self, text: str, fields: tuple[str, ...]) -> ExtractRun:
        run = ExtractRun(text, fields)
        _track(self, run)
        _extract_thread(self, run, self.input_done)
        return run

    def start_stats(self) -> StatsRun:
        run = StatsRun()
        _track(self, run)
        _stats_thread(self, run, self.input_done)
        return run

    def input_done(self) -> bool:
        """Whether no more frames will arrive (always False while a live capture runs)."""
        return True

    def close(self) -> None:
        for p in self.jobs:
            p.running = False

    # -- shared ---------------------------------------------------------------------------
    def dissect(self, i: int, warmup: int | None = None) -> Packet:
        """Frame ``i`` with a fresh full tree (see :mod:`jpdissect.tui.detail` for the window)."""
        return dissect_one(self.frame, i, self.first(), self.first_ts(), self.opts,
                           learned=self.learned, secrets=self.secrets, warmup=warmup,
                           jp_table=self.jp_table)

    def busy(self) -> list[Progress]:
        return [p for p in self.jobs if p.running]


class FileIndex(PacketSource):
    """A capture file: offsets scanned once, rows from the in-order child pass, frames on demand."""

    def __init__(self, path: str, opts: EngineOptions | None = None, *, use_worker: bool = True,
                 first_screen: int = FIRST_SCREEN, start: bool = True) -> None:
        super().__init__(opts or EngineOptions())
        prime_columns()
        self.path = path
        self.name = os.path.basename(path) if path != "-" else "<stdin>"
        self.reader = open_capture(path)
        self.size = _file_size(path)
        self.lock = threading.RLock()
        self.offsets = array("q")
        self.ts = array("q")
        self.wirelen = array("I")
        self.memory: list[Frame] | None = None if self.reader.random_access else []
        self.rows = RowStore()
        self.scan = Progress("Indexing", total=0, cancellable=False)
        self.rowpass = Progress("Dissecting in order")
        self.jobs += [self.scan, self.rowpass]
        self.scan_done = False
        self._row_job: ChildJob | None = None
        self._cache: OrderedDict[int, list[Row]] = OrderedDict()
        self._it = iter(self.reader)
        # In-process pass for inputs a child cannot re-read (stdin).
        self._inproc = None
        use_worker = use_worker and path != "-"
        if not use_worker:
            eng = self.opts.engine(tree=False, cols=True)
            eng.secrets.extend(self.reader.secrets)
            self._inproc = eng
        self._use_worker = use_worker
        self._started = False
        self._scan_some(first_screen)
        if not use_worker:
            self.rowpass.cancellable = False
        if start:
            self.start()

    def start(self) -> None:
        """Start the offset scan and the in-order pass (the UI calls this after its first paint,
        so neither competes with drawing the first screen)."""
        if self._started:
            return
        self._started = True
        self._thread = threading.Thread(target=self._scan_all, name="jpdissect-scan", daemon=True)
        self._thread.start()
        if self._use_worker:
            self._start_rows()

    # -- scanning ---------------------------------------------------------------------------
    def _scan_some(self, n: int) -> int:
        with self.lock:
            batch = list(itertools.islice(self._it, n))
        mem = self.memory
        eng = self._inproc
        for fr in batch:
            self.offsets.append(fr.offset)
            self.ts.append(fr.ts_ns)
            self.wirelen.append(fr.wirelen)
            if mem is not None:
                mem.append(fr)
            if eng is not None:
                pkt = eng.dissect(fr)
                eng.displayed(pkt)
                if pkt.experts:
                    self.experts.add(pkt)
                self.rows.append(pkt.protocol, pkt.src, pkt.dst, scheme_of(pkt), session_of(pkt), pkt.info)
        self.scan.done = len(self.offsets)
        if eng is not None:
            self.rowpass.done = len(self.rows)
            self.learned = eng.learned
        return len(batch)

    def _scan_all(self) -> None:
        try:
            while self._scan_some(SCAN_BATCH):
                self.changed.set()
        except Exception as exc:  # noqa: BLE001 - show it, don't kill the UI
            self.scan.finish(f"{type(exc).__name__}: {exc}")
        else:
            err = self.reader.error
            self.error = str(err) if err else None
            self.scan.finish(self.error)
            if self._inproc is not None:
                self._finish_inproc()
                self.rowpass.finish(self.error)
        self.scan.total = self.scan.done
        if self.rowpass.total == 0:
            self.rowpass.total = self.scan.done
        self.scan_done = True
        self.changed.set()

    def _finish_inproc(self) -> None:
        """End of the in-thread pass (stdin): final sessions, as the child pass sends them."""
        from jpdissect.tui.worker import JP_TABLE_MAX, final_sessions

        n = len(self.rows)
        try:
            sess, sch, names, table = final_sessions(self._inproc, n, self.ts[-1] if self.ts else None)
        except ImportError:
            return
        self.rows.set_sessions(sess, sch, names)
        if n <= JP_TABLE_MAX:
            self.jp_table = table

    # -- the in-order child pass ------------------------------------------------------------
    def _start_rows(self) -> None:
        def on_msg(msg: tuple[Any, ...]) -> None:
            kind = msg[0]
            if kind == "block":
                _, start, blk = msg
                if start == len(self.rows):
                    self.rows.extend_block(blk)
                    self.rowpass.done = len(self.rows)
            elif kind == "progress":
                self.rowpass.done = max(self.rowpass.done, msg[1])
            elif kind == "learned":
                self.learned = msg[1]
            elif kind == "sessions":
                self.rows.set_sessions(msg[1], msg[2], msg[3])
            elif kind == "jptable":
                self.jp_table = msg[1]
            elif kind == "experts":
                self.experts = ExpertTally()
                self.experts.merge(msg[1])
            elif kind == "done":
                _, n, err = msg
                if n >= 0:
                    self.rowpass.total = n
                    self.rowpass.finish(None)
                else:
                    self.rowpass.finish(err)
            self.changed.set()

        self._row_job = ChildJob("rows", self.path, self.opts, on_msg)
        self.rowpass.cancel = self._row_job.cancel  # type: ignore[attr-defined]

    # -- PacketSource -----------------------------------------------------------------------
    def count(self) -> int:
        return len(self.wirelen)

    def first_ts(self) -> int:
        return self.ts[0] if self.ts else 0

    def last_rel_ns(self) -> int:
        return self.ts[-1] - self.ts[0] if self.ts else 0

    @property
    def interfaces(self) -> list[Interface]:
        return self.reader.interfaces

    @property
    def secrets(self) -> list[tuple[int, bytes]]:
        return self.reader.secrets

    def frame(self, i: int) -> Frame:
        if self.memory is not None:
            return self.memory[i]
        with self.lock:
            return self.reader.read_frame_at(self.offsets[i])

    def row(self, i: int) -> Row | None:
        if i < 0 or i >= len(self.wirelen):
            return None
        rel = self.ts[i] - self.ts[0]
        if i < len(self.rows):
            proto, src, dst, scheme, info = self.rows.cells(i)
            return Row(i + 1, rel, src, dst, proto, self.wirelen[i], scheme, info, True)
        chunk = i // CHUNK
        rows = self._cache.get(chunk)
        if rows is None:
            rows = self._provisional(chunk)
        else:
            self._cache.move_to_end(chunk)
        k = i - chunk * CHUNK
        return rows[k] if k < len(rows) else None

    def _provisional(self, chunk: int) -> list[Row]:
        """Rows of one chunk the in-order pass has not reached, with a short warm-up window."""
        lo = chunk * CHUNK
        hi = min(lo + CHUNK, len(self.wirelen))
        start = max(0, lo - ROW_WARMUP)
        frames = [self.frame(j) for j in range(start, hi)]
        prev = self.ts[start - 1] if start > 0 else None
        pkts = dissect_run(frames, start + 1, self.first_ts(), self.opts, prev_ts=prev,
                           learned=self.learned, keep=lambda k: k >= lo - start)
        rows = [Row(p.number, p.rel_ns, p.src, p.dst, p.protocol, p.wirelen, scheme_cell(p), p.info, False)
                for p in pkts]
        self._cache[chunk] = rows
        if len(self._cache) > CHUNK_CACHE:
            self._cache.popitem(last=False)
        return rows

    def start_filter(self, text: str, ref: int | None) -> FilterRun:
        run = FilterRun(text)
        run.progress.total = self.count() if self.scan_done else 0

        def on_msg(msg: tuple[Any, ...]) -> None:
            kind = msg[0]
            if kind == "pass1":
                run.progress.label = f"Filtering “{text}” (sessions pass)"
                run.progress.done = msg[1]
            elif kind == "match":
                run.progress.label = f"Filtering “{text}”"
                _, batch, n = msg
                with run.lock:
                    run.head.extend(batch)
                run.progress.done = n
                if self.scan_done:
                    run.progress.total = self.count()
            elif kind == "done":
                _, n, err = msg
                if n >= 0:
                    run.progress.done = run.progress.total = n
                if n < 0 or (err and not run.head):
                    run.error = err
                run.progress.finish(run.error)
            self.changed.set()

        if self.path == "-":
            self._filter_in_thread(run, ref)
        else:
            extra = ["--filter", text] + (["--ref", str(ref)] if ref is not None else [])
            run.job = ChildJob("filter", self.path, self.opts, on_msg, extra)
        run.progress.cancel = run.cancel  # type: ignore[attr-defined]
        self.jobs.append(run.progress)
        return run

    def input_done(self) -> bool:
        return self.scan_done

    def start_extract(self, text: str, fields: tuple[str, ...]) -> ExtractRun:
        if self.path == "-":
            return super().start_extract(text, fields)
        run = ExtractRun(text, fields)
        _track(self, run)

        def on_msg(msg: tuple[Any, ...]) -> None:
            if msg[0] == "pass1":
                run.progress.done = msg[1]
                run.progress.total = self.count() if self.scan_done else 0
            elif msg[0] == "extract":
                run.rows.extend(msg[1])
                run.progress.done = msg[2]
                run.progress.total = self.count() if self.scan_done else 0
            elif msg[0] == "done":
                if msg[1] >= 0:
                    run.progress.done = run.progress.total = msg[1]
                run.progress.finish(msg[2] if msg[1] < 0 else None)
            self.changed.set()

        extra = ["--filter", text]
        for f in fields:
            extra += ["--field", f]
        run.job = ChildJob("extract", self.path, self.opts, on_msg, extra)
        return run

    def start_stats(self) -> StatsRun:
        if self.path == "-":
            return super().start_stats()
        run = StatsRun()
        _track(self, run)

        def on_msg(msg: tuple[Any, ...]) -> None:
            if msg[0] == "stats":
                run.snapshot = msg[1]
            elif msg[0] == "progress":
                run.progress.done = msg[1]
                run.progress.total = self.count() if self.scan_done else 0
            elif msg[0] == "done":
                if msg[1] >= 0:
                    run.progress.done = run.progress.total = msg[1]
                run.progress.finish(msg[2] if msg[1] < 0 else None)
            self.changed.set()

        run.job = ChildJob("stats", self.path, self.opts, on_msg)
        return run

    def _filter_in_thread(self, run: FilterRun, ref: int | None) -> None:
        """stdin has no path a child could re-read: filter the frames kept in memory."""
        _filter_frames_thread(self, run, ref, lambda: self.scan_done)

    def close(self) -> None:
        if self._row_job is not None:
            self._row_job.cancel()
        for p in self.jobs:
            c = getattr(p, "cancel", None)
            if c is not None and p.running:
                c()
        try:
            with self.lock:
                self.reader.close()
        except (OSError, io.UnsupportedOperation):
            pass


def _filter_frames_thread(src: PacketSource, run: FilterRun, ref: int | None,
                          input_done: Callable[[], bool]) -> threading.Thread:
    """Filter the frames ``src`` holds, in order, in a thread (live captures, stdin).

    It stops at ``run.upto`` when set (a live capture decides later frames as they arrive),
    otherwise when ``input_done()`` says no more frames will come.
    """
    from jpdissect.filters import FilterError, compile_filter

    def work() -> None:
        try:
            flt = compile_filter(run.text)
        except FilterError as exc:
            run.error = exc.message
            run.progress.finish(run.error)
            src.changed.set()
            return
        prime_columns(flt.fields)
        if ref is not None and flt.references:
            flt.set_reference(src.dissect(ref))
        start = src.first()
        if run.upto is not None:
            run.progress.total = run.upto - start
        eng = src.opts.engine(tree=False, cols=False)
        eng.secrets.extend(src.secrets)
        eng.count = start
        eng.first_ts = src.first_ts()
        i = start
        while True:
            if run.cancel_flag:
                run.progress.finish("cancelled")
                src.changed.set()
                return
            if run.upto is not None and i >= run.upto:
                break
            if i >= src.count():
                if input_done() and i >= src.count():
                    break
                time.sleep(0.05)
                continue
            try:
                fr = src.frame(i)
            except IndexError:  # dropped from a live ring meanwhile
                eng.count += 1
                i += 1
                continue
            pkt = eng.dissect(fr)
            if flt(pkt):
                eng.displayed(pkt)
                with run.lock:
                    run.head.append(i)
            i += 1
            run.progress.done = i - start
            if not (i & 1023):
                src.changed.set()
                time.sleep(0)  # let the UI thread have the GIL
        run.progress.finish(None)
        src.changed.set()

    t = threading.Thread(target=work, name="jpdissect-filter", daemon=True)
    t.start()
    return t


def _track(src: PacketSource, run: ExtractRun | StatsRun) -> None:
    run.progress.cancel = run.cancel  # type: ignore[attr-defined]
    src.jobs.append(run.progress)


def _in_order(src: PacketSource, run: ExtractRun | StatsRun, input_done: Callable[[], bool],
              idle: Callable[[], None] | None = None) -> Iterable[tuple[int, Frame]]:
    """Frames held by ``src`` in order, waiting for more until the input is complete.

    ``idle`` runs while caught up with a live capture, so results can be published then.
    """
    i = src.first()
    while not run.cancel_flag:
        if i >= src.count():
            if input_done() and i >= src.count():
                return
            if idle is not None:
                idle()
            time.sleep(0.05)
            continue
        try:
            fr = src.frame(i)
        except IndexError:
            i = max(i + 1, src.first())
            continue
        yield i, fr
        i += 1
        run.progress.done = i - src.first()
        run.progress.total = src.count() - src.first()
        if not (i & 1023):
            src.changed.set()
            time.sleep(0)


def _extract_thread(src: PacketSource, run: ExtractRun, input_done: Callable[[], bool]) -> None:
    from jpdissect.filters import FilterError, compile_filter
    from jpdissect.tui.statsbridge import MAX_EXTRACT, extract_row

    def work() -> None:
        try:
            flt = compile_filter(run.text)
        except FilterError as exc:
            run.progress.finish(exc.message)
            return
        prime_columns([*flt.fields, *run.fields])
        eng = src.opts.engine(tree=False, cols=True)
        eng.secrets.extend(src.secrets)
        eng.count = src.first()
        eng.first_ts = src.first_ts()
        for i, fr in _in_order(src, run, input_done):
            pkt = eng.dissect(fr)
            if flt(pkt) and len(run.rows) < MAX_EXTRACT:
                run.rows.append(extract_row(i, pkt, run.fields))
        run.progress.finish("cancelled" if run.cancel_flag else None)
        src.changed.set()

    threading.Thread(target=work, name="jpdissect-extract", daemon=True).start()


def _stats_thread(src: PacketSource, run: StatsRun, input_done: Callable[[], bool]) -> None:
    from jpdissect.tui.statsbridge import StatsCollector

    def work() -> None:
        coll = StatsCollector(src.opts)
        coll.engine.secrets.extend(src.secrets)

        def idle() -> None:
            # Caught up with a live capture: publish what is new at once.
            if run.snapshot is None or run.snapshot["frames"] != coll.frames:
                run.snapshot = coll.snapshot(final=False)
                src.changed.set()

        for _i, fr in _in_order(src, run, input_done, idle):
            coll.add(fr)
            if time.monotonic() - coll.last_snapshot >= coll.snapshot_every:
                run.snapshot = coll.snapshot(final=False)
        run.snapshot = coll.snapshot(final=not run.cancel_flag)
        run.progress.finish("cancelled" if run.cancel_flag else None)
        src.changed.set()

    threading.Thread(target=work, name="jpdissect-stats", daemon=True).start()


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path) if path != "-" else 0
    except OSError:
        return 0
