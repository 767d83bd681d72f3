"""``jpdissect live``: capture from an interface, dissect as frames arrive, list or show them.

Capture is done by ``dumpcap`` (Debian's ``tshark``/``wireshark-common``), which writes pcapng
to its standard output (``-w -``); our streaming pcapng reader consumes that pipe directly, so
live frames go through exactly the same reader and engine as a file. Without dumpcap, scapy's
sniffer is the fallback. ``-w OUT`` keeps dumpcap's own bytes (a lossless copy, written as
they are read); ``--ring N`` bounds memory by keeping only the newest N frames for the list,
the detail pane and re-filtering.

Frames are dissected once, in order, on the capture thread (live rates are far below the
engine's ~6 000 frames/s), so live rows are always exact.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

from jpdissect.capture import CaptureFormatError, Frame, Interface, open_capture
from jpdissect.model import Packet
from jpdissect.tui.detail import EngineOptions, prime_columns
from jpdissect.tui.index import FilterRun, PacketSource, Progress, _filter_frames_thread
from jpdissect.tui.rows import Row, scheme_cell

#: Frames kept in memory by default (the list, the detail pane and re-filtering see these).
DEFAULT_RING = 100_000
#: Seconds dumpcap gets to say it has started capturing (or why it cannot).
START_TIMEOUT = 10.0


class LiveError(Exception):
    """Capture cannot start; ``str()`` is one line telling the user what to do."""


def explain_dumpcap(stderr: str, iface: str, bpf: str | None) -> str:
    """dumpcap's complaint, as one line saying what to do about it."""
    low = stderr.lower()
    if "no device named" in low or "no such device" in low:
        have = ", ".join(available_interfaces()) or "none found"
        return (f"jpdissect: there is no interface '{iface}' on this machine (interfaces: {have}); "
                "pick one with -i ('ip link' or 'dumpcap -D' lists them).")
    if "permission" in low or "operation not permitted" in low:
        return (f"jpdissect: not allowed to capture on '{iface}': run as root, or allow your user to "
                "capture with 'sudo dpkg-reconfigure wireshark-common' (answer Yes), "
                "'sudo usermod -aG wireshark $USER' and logging in again.")
    if "filter" in low and ("invalid" in low or "syntax" in low or "can't parse" in low):
        detail = _last_line(stderr)
        return f"jpdissect: the capture filter '{bpf}' is not valid BPF syntax (see pcap-filter(7)): {detail}"
    if "not up" in low or "network is down" in low:
        return f"jpdissect: interface '{iface}' is down; bring it up with 'ip link set {iface} up'."
    return f"jpdissect: capture on '{iface}' failed: {_last_line(stderr) or 'dumpcap exited'}"


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Capturing on")]
    lines = [ln.removeprefix("dumpcap: ") for ln in lines]
    return " ".join(lines[-2:]) if lines else ""


def available_interfaces() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/net"))
    except OSError:
        return []


def dumpcap_path() -> str | None:
    env = os.environ.get("JPDISSECT_DUMPCAP")
    if env is not None:
        return env if env and os.access(env, os.X_OK) else None
    return shutil.which("dumpcap")


class _Tee(io.RawIOBase):
    """dumpcap's stdout, with every byte also written to ``-w OUT`` as it is read."""

    def __init__(self, src: BinaryIO, copy: BinaryIO | None) -> None:
        super().__init__()
        self._read = getattr(src, "read1", None) or src.read
        self._copy = copy

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._read(len(b))
        n = len(data)
        b[:n] = data
        if n and self._copy is not None:
            self._copy.write(data)
            self._copy.flush()
        return n


class Capture:
    """A running capture feeding frames to ``on_frame`` on its own thread."""

    def __init__(self, iface: str, bpf: str | None, out: str | None,
                 on_frame: Callable[[Frame], None], on_interfaces: Callable[[list[Interface]], None],
                 backend: str = "auto") -> None:
        self.iface = iface
        self.bpf = bpf
        self.out = out
        self.on_frame = on_frame
        self.on_interfaces = on_interfaces
        self.error: str | None = None
        self.stopped = threading.Event()
        self.finished = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self._sniffer: Any = None
        exe = dumpcap_path()
        if backend == "dumpcap" or (backend == "auto" and exe is not None):
            if exe is None:
                raise LiveError("jpdissect: dumpcap is not installed: 'sudo apt install tshark' "
                                "(or wireshark-common) provides it.")
            self._start_dumpcap(exe)
        else:
            self._start_scapy()

    # -- dumpcap ------------------------------------------------------------------------------
    def _start_dumpcap(self, exe: str) -> None:
        if self.iface not in ("any",) and available_interfaces() and self.iface not in available_interfaces():
            raise LiveError(explain_dumpcap("no such device", self.iface, self.bpf))
        cmd = [exe, "-i", self.iface, "-w", "-", "-q"]
        if self.bpf:
            cmd += ["-f", self.bpf]
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise LiveError(f"jpdissect: dumpcap could not be started: {exc.strerror or exc}") from None
        err_lines: list[str] = []
        started = threading.Event()

        def read_stderr() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                err_lines.append(line)
                if line.startswith("File:"):
                    started.set()
            started.set()

        threading.Thread(target=read_stderr, name="dumpcap-stderr", daemon=True).start()
        started.wait(START_TIMEOUT)
        if not any(ln.startswith("File:") for ln in err_lines):
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                pass
            if self.proc.poll() is not None:
                raise LiveError(explain_dumpcap("".join(err_lines), self.iface, self.bpf))
        self._err_lines = err_lines
        threading.Thread(target=self._pump_dumpcap, name="jpdissect-live", daemon=True).start()

    def _pump_dumpcap(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        copy = open(self.out, "wb") if self.out else None  # noqa: SIM115 - closed below
        try:
            stream = io.BufferedReader(_Tee(self.proc.stdout, copy), buffer_size=1 << 16)
            try:
                reader = open_capture(stream)
            except CaptureFormatError as exc:
                if not self.stopped.is_set():
                    self.error = f"jpdissect: dumpcap's output could not be read: {exc}"
                return
            self.on_interfaces(reader.interfaces)
            known = len(reader.interfaces)
            for fr in reader:
                if len(reader.interfaces) != known:
                    known = len(reader.interfaces)
                    self.on_interfaces(reader.interfaces)
                self.on_frame(fr)
                if self.stopped.is_set():
                    break
        finally:
            if copy is not None:
                copy.close()
            if self.proc.poll() is not None and self.proc.returncode not in (0, -15) and not self.stopped.is_set():
                self.error = explain_dumpcap("".join(self._err_lines), self.iface, self.bpf)
            self.finished.set()

    # -- scapy fallback -----------------------------------------------------------------------
    def _start_scapy(self) -> None:
        try:
            from scapy.config import conf
            from scapy.sendrecv import AsyncSniffer
        except ImportError:
            raise LiveError("jpdissect: live capture needs dumpcap ('sudo apt install tshark') or scapy "
                            "('pip install scapy').") from None
        if available_interfaces() and self.iface not in available_interfaces():
            raise LiveError(explain_dumpcap("no such device", self.iface, self.bpf))
        writer = None
        if self.out:
            from jpdissect.capture.writer import PcapngWriter

            writer = PcapngWriter(self.out)
        itf_sent: set[int] = set()

        def prn(p: Any) -> None:
            lt = conf.l2types.layer2num.get(type(p), 1)
            if lt not in itf_sent:
                itf_sent.add(lt)
                self.on_interfaces([Interface(lt, name=self.iface)])
            fr = Frame(int(float(p.time) * 1e9), len(bytes(p)), getattr(p, "wirelen", None) or len(bytes(p)),
                       bytes(p), lt)
            if writer is not None:
                writer.write(fr)
            self.on_frame(fr)

        try:
            self._sniffer = AsyncSniffer(iface=self.iface, filter=self.bpf, prn=prn, store=False)
            self._sniffer.start()
        except PermissionError:
            raise LiveError(explain_dumpcap("permission", self.iface, self.bpf)) from None
        except OSError as exc:
            raise LiveError(explain_dumpcap(str(exc), self.iface, self.bpf)) from None
        self._scapy_writer = writer

    # -- stopping ----------------------------------------------------------------------------
    def stop(self) -> None:
        self.stopped.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self._sniffer is not None:
            try:
                self._sniffer.stop()
            except Exception:  # noqa: BLE001 - already stopped
                pass
            if self._scapy_writer is not None:
                self._scapy_writer.close()
            self.finished.set()
        self.finished.wait(5)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()


class LiveStore(PacketSource):
    """Frames of a live capture: dissected once, in order, as they arrive; newest ``ring`` kept."""

    live = True

    def __init__(self, opts: EngineOptions, iface: str, ring: int = DEFAULT_RING,
                 on_packet: Callable[[Packet], None] | None = None) -> None:
        super().__init__(opts)
        prime_columns()
        self.name = f"live: {iface}"
        self.ring = max(1, ring)
        self.frames: deque[Frame] = deque()
        self.rows: deque[Row] = deque()
        self.base = 0
        self.total = 0
        self._first_ts: int | None = None
        self._interfaces: list[Interface] = []
        self.engine = opts.engine(tree=False, cols=True)
        self.lock = threading.Lock()
        self.capture_progress = Progress(f"Capturing on {iface}", cancellable=True)
        self.jobs.append(self.capture_progress)
        self.on_packet = on_packet
        self.capture: Capture | None = None
        self._filter: tuple[FilterRun, Any] | None = None
        self.protocols: Counter[str] = Counter()

    # -- feeding -------------------------------------------------------------------------------
    def start(self, iface: str, bpf: str | None, out: str | None, backend: str = "auto") -> None:
        self.capture = Capture(iface, bpf, out, self.feed, self.set_interfaces, backend)
        self.capture_progress.cancel = self.stop  # type: ignore[attr-defined]

    def set_interfaces(self, itfs: list[Interface]) -> None:
        self._interfaces = list(itfs)

    def feed(self, frame: Frame) -> Packet:
        pkt = self.engine.dissect(frame)
        self.engine.displayed(pkt)
        row = Row(pkt.number, pkt.rel_ns, pkt.src, pkt.dst, pkt.protocol, pkt.wirelen,
                  scheme_cell(pkt), pkt.info, True)
        with self.lock:
            if self._first_ts is None:
                self._first_ts = frame.ts_ns
            self.frames.append(frame)
            self.rows.append(row)
            i = self.total
            self.total += 1
            while len(self.frames) > self.ring:
                self.frames.popleft()
                self.rows.popleft()
                self.base += 1
        if pkt.experts:
            self.experts.add(pkt)
        self.protocols[pkt.protocol] += 1
        self.learned = self.engine.learned
        flt = self._filter
        if flt is not None and flt[0].upto is not None and i >= flt[0].upto and not flt[0].cancel_flag:
            if flt[1](pkt):
                with flt[0].lock:
                    flt[0].tail.append(i)
        self.capture_progress.done = self.total
        if self.on_packet is not None:
            self.on_packet(pkt)
        self.changed.set()
        return pkt

    def stop(self) -> None:
        if self.capture is not None:
            self.capture.stop()
        if self.capture_progress.running:
            self.capture_progress.finish(self.capture.error if self.capture else None)
        self.changed.set()

    # -- PacketSource ------------------------------------------------------------------------------
    def input_done(self) -> bool:
        return self.capture is None or not self.capture.running

    def first(self) -> int:
        return self.base

    def count(self) -> int:
        return self.total

    def first_ts(self) -> int:
        return self._first_ts or 0

    def last_rel_ns(self) -> int:
        with self.lock:
            return self.rows[-1].rel_ns if self.rows else 0

    @property
    def interfaces(self) -> list[Interface]:
        return self._interfaces

    def frame(self, i: int) -> Frame:
        with self.lock:
            k = i - self.base
            if k < 0 or k >= len(self.frames):
                raise IndexError(f"frame {i + 1} is no longer in the ring buffer")
            return self.frames[k]

    def row(self, i: int) -> Row | None:
        with self.lock:
            k = i - self.base
            if k < 0 or k >= len(self.rows):
                return None
            return self.rows[k]

    def start_filter(self, text: str, ref: int | None) -> FilterRun:
        from jpdissect.filters import compile_filter

        flt = compile_filter(text)  # validated by the filter bar already
        prime_columns(flt.fields)
        if ref is not None and flt.references:
            flt.set_reference(self.dissect(ref))
        run = FilterRun(text, upto=self.total)
        self._filter = (run, flt)
        run.progress.cancel = run.cancel  # type: ignore[attr-defined]
        self.jobs.append(run.progress)
        _filter_frames_thread(self, run, ref, self.input_done)
        return run

    def close(self) -> None:
        self.stop()
        super().close()


# ---------------------------------------------------------------------------
# Plain (non-UI) mode


def run_plain(store: LiveStore, args: Any, out: TextIO = sys.stdout) -> int:
    """tshark-style: one summary line per frame that passes ``-Y``; statistics at the end."""
    from jpdissect.output import summary_line

    flt = None
    if args.Y:
        from jpdissect.filters import FilterError, compile_filter

        try:
            flt = compile_filter(args.Y)
        except FilterError as exc:
            sys.stderr.write(f"jpdissect: {exc.message}\n{exc.caret()}\n")
            return 1
        prime_columns(flt.fields)
    shown = [0]
    done = threading.Event()

    def on_packet(pkt: Packet) -> None:
        if flt is None or flt(pkt):
            shown[0] += 1
            if not args.q:
                out.write(summary_line(pkt) + "\n")
                out.flush()
        if args.c and store.total >= args.c:
            done.set()

    store.on_packet = on_packet
    try:
        store.start(args.i, args.f, args.w, backend=args.backend)
    except LiveError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stderr.write(f"Capturing on '{args.i}'" + (f" (filter: {args.f})" if args.f else "") + "\n")
    deadline = time.monotonic() + args.duration if args.duration else None
    last_stats = time.monotonic()
    status = 0
    try:
        while not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            assert store.capture is not None
            if not store.capture.running:
                break
            done.wait(0.1)
            if args.stats_every and time.monotonic() - last_stats >= args.stats_every:
                last_stats = time.monotonic()
                sys.stderr.write(stats_line(store) + "\n")
    except KeyboardInterrupt:
        status = 0
    finally:
        store.stop()
    err = store.capture.error if store.capture else None
    if err:
        sys.stderr.write(err + "\n")
        status = 2
    sys.stderr.write(f"{store.total} packets captured, {shown[0]} shown\n")
    if not args.q or args.stats_every:
        sys.stderr.write(stats_line(store) + "\n")
    return status


def stats_line(store: LiveStore) -> str:
    """One line of running statistics: protocols, schemes, expert-info counts."""
    protos = ", ".join(f"{k or '?'} {v}" for k, v in store.protocols.most_common(6))
    sev = Counter()
    for e in store.experts.entries.values():
        sev[e.severity] += e.count
    names = {5: "errors", 4: "warnings", 3: "notes", 2: "chats", 1: "comments"}
    experts = ", ".join(f"{sev[s]} {names[s]}" for s in sorted(sev, reverse=True)) or "no expert info"
    return f"[stats] {store.total} frames · {protos} · {experts}"
