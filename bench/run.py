#!/usr/bin/env python3
"""Benchmark harness: jpdissect against tshark, scapy and pyshark on one generated capture.

Why this shape:

* **One capture, one run.** The capture is generated (``gen_capture.py``, seeded) or reused with
  ``--capture``, and every tool reads the same file in the same invocation, so ratios are
  comparable even when absolute numbers move with the machine's load. Tools run one after
  another, never in parallel; the 1-minute load average is recorded per row because other
  processes on a shared machine do move the numbers.
* **Every tool is a child process.** Wall time is measured around the child and its peak RSS
  comes from ``os.wait4`` (the kernel's ``ru_maxrss`` for that child -- the largest of it and its
  waited-for descendants, not a sum). A sampler also sums the RSS of the child's whole session
  every 50 ms ("tree peak"), which is the honest number for pyshark (Python + its tshark).
* **Same fields everywhere.** A field set is only used with the fields ``jpdissect fields``
  lists (so the comparison never charges a peer for work jpdissect skips); missing fields are
  reported. tshark gets ``-n`` (no name resolution; jpdissect does none).
* **A missing peer is a row, not a crash.** Anything not installed, failing or timing out is
  reported in the table with the reason.

Modes::

    python bench/run.py                            # generate 200k frames, run everything
    python bench/run.py --capture F --peers tshark # reuse a capture, only tshark as peer
    python bench/run.py --check 5000               # also diff jpdissect's rows against tshark's
    python bench/run.py --profile 20000            # also cProfile jpdissect on a prefix
    python bench/run.py --big [--big-gb 1] [--keep]  # >= 1 GiB capture: jpdissect peak RSS

The markdown report goes to stdout and to ``--out`` (default under ``/tmp``; results are not
meant to be committed).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import pstats
import shutil
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GEN = BENCH / "gen_capture.py"
PEERS = BENCH / "peers.py"

DEFAULT_WORKDIR = "/tmp/jpdissect-bench"
DEFAULT_FIELDSETS: dict[str, list[str]] = {
    "udp": ["frame.number", "frame.len", "ip.src", "ipv6.src", "udp.srcport", "udp.dstport",
            "udp.length"],
    "coap+dtls": ["frame.number", "frame.len", "ip.src", "ipv6.src", "udp.srcport", "udp.dstport",
                  "udp.length", "coap.type", "coap.code", "coap.mid", "coap.token",
                  "dtls.record.content_type", "dtls.record.length"],
}
ALL_PEERS = ("tshark", "scapy", "pyshark")
#: Given to the peers only, so they decode what jpdissect decodes by default: Thread TMF is CoAP
#: on 61631 (jpdissect's ``tmf``); tshark 4.0 leaves it as data unless told, scapy unless bound.
DEFAULT_PEER_DECODE_AS = ["udp.port==61631,coap"]
RSS_TARGET_MIB = 150
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------
# Measuring one child process


@dataclass
class Measured:
    seconds: float
    cpu: float
    rss_mib: float           # ru_maxrss of the child (KiB on Linux)
    tree_mib: float          # sampled peak of the summed RSS of the child's session
    rc: int
    stderr: str
    timed_out: bool = False


def _session_rss(sid: int) -> int:
    """Bytes resident in every process of session ``sid`` (our child made itself its leader)."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(b")") + 2:].split()
        # fields after "comm": state(0) ppid(1) pgrp(2) session(3) ... rss(21)
        if len(rest) > 21 and int(rest[3]) == sid:
            total += int(rest[21]) * PAGE
    return total


#: Interpreter settings that a developer's or CI shell may export but a user's does not, and that
#: slow every Python tool measured here: no bytecode cache (every module compiled from source at
#: each start) and unbuffered stdout (a system call per printed line).
PYTHON_DEBUG_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")


def child_env() -> dict[str, str]:
    """The environment the measured tools run in: this one minus :data:`PYTHON_DEBUG_ENV`."""
    return {k: v for k, v in os.environ.items() if k not in PYTHON_DEBUG_ENV}


def measure(cmd: Sequence[str], stdout: str = "/dev/null", timeout: float = 3600.0,
            env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` as a new session; wall time, CPU time and peak RSS of that child only.

    ``env`` defaults to :func:`child_env`, for every tool alike.
    """
    if env is None:
        env = child_env()
    fd, name = tempfile.mkstemp(prefix="jpdissect-bench-stderr.")
    os.close(fd)
    err_path = Path(name)
    peak = [0]
    done = threading.Event()
    timed_out = [False]
    with open(stdout, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 start_new_session=True, env=env)
        except OSError as exc:
            return Measured(0.0, 0.0, 0.0, 0.0, 127, f"{type(exc).__name__}: {exc}")

        def sample() -> None:
            while not done.wait(0.05):
                try:
                    peak[0] = max(peak[0], _session_rss(p.pid))
                except OSError:
                    pass
                if time.perf_counter() - t0 > timeout and not timed_out[0]:
                    timed_out[0] = True
                    try:
                        os.killpg(p.pid, signal.SIGKILL)  # the session we started, nothing else
                    except OSError:
                        pass

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        th.join()
        p.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    err_path.unlink(missing_ok=True)
    return Measured(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, peak[0] / (1 << 20),
                    p.returncode, stderr, timed_out[0])


# ---------------------------------------------------------------------------------------------
# Captures


_PCAP_LE = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
_PCAP_BE = (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
_PCAPNG_PACKET_BLOCKS = (2, 3, 6)   # obsolete PB, SPB, EPB (draft-ietf-opsawg-pcapng §4)


def _walk(path: str, limit: int | None, out_path: str | None) -> int:
    """Count (and optionally copy) the first ``limit`` packets of a pcap or pcapng file.

    Only record/block headers are read; nothing is decoded, so counting a 1 GiB file costs a
    fraction of a second per million frames and needs no Wireshark tools.
    """
    n = 0
    with open(path, "rb") as f, (open(out_path, "wb") if out_path else open(os.devnull, "wb")) as out:
        head = f.read(24)
        if head[:4] in _PCAP_LE + _PCAP_BE:
            rec = struct.Struct(("<" if head[:4] in _PCAP_LE else ">") + "IIII")
            out.write(head)
            while limit is None or n < limit:
                h = f.read(16)
                if len(h) < 16:
                    break
                ln = rec.unpack(h)[2]
                if out_path:
                    out.write(h)
                    out.write(f.read(ln))
                else:
                    f.seek(ln, 1)
                n += 1
            return n
        if head[:4] != b"\x0a\x0d\x0d\x0a":
            raise SystemExit(f"{path}: neither pcap nor pcapng")
        f.seek(0)
        bo = "<"
        while limit is None or n < limit:
            h = f.read(8)
            if len(h) < 8:
                break
            if h[:4] == b"\x0a\x0d\x0d\x0a":      # SHB: byte-order magic follows
                bom = f.read(4)
                bo = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
                f.seek(-4, 1)
            btype, blen = struct.unpack(bo + "II", h)
            if blen < 12:
                break
            body = f.read(blen - 8)
            out.write(h)
            out.write(body)
            if btype in _PCAPNG_PACKET_BLOCKS:
                n += 1
    return n


def count_frames(path: str) -> int:
    """Packets in a pcap or pcapng capture."""
    return _walk(path, None, None)


def prefix_capture(src: str, n: int, dst: str) -> int:
    """The first ``n`` frames of ``src`` as a new file of the same format."""
    return _walk(src, n, dst)


def generate(path: str, frames: int | None, size_gb: float | None, seed: int) -> dict[str, object]:
    cmd = [sys.executable, str(GEN), "--out", path, "--seed", str(seed)]
    cmd += ["--size-gb", str(size_gb)] if size_gb else ["--frames", str(frames)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Tools


def jp_cli() -> list[str] | None:
    """The ``jpdissect`` console script of this interpreter (not a pyenv shim: no extra fork)."""
    cand = Path(sysconfig.get_path("scripts")) / "jpdissect"
    exe = str(cand) if cand.exists() else shutil.which("jpdissect")
    if not exe:
        return None
    try:
        r = subprocess.run([exe, "read", "-h"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [exe] if r.returncode == 0 else None


def jp_fields(cli: list[str] | None) -> tuple[set[str], str]:
    """Fields jpdissect declares: ``jpdissect fields`` (tshark -G layout) or the model's table."""
    if cli:
        r = subprocess.run(cli + ["fields"], capture_output=True, text=True, timeout=120)
        if r.returncode == 0:
            names = {ln.split("\t")[2] for ln in r.stdout.splitlines()
                     if ln.startswith(("F\t", "P\t")) and ln.count("\t") >= 2}
            if names:
                return names, "jpdissect fields"
    code = ("import jpdissect.engine; from jpdissect.dissectors import load_all; load_all();"
            "from jpdissect.model import FIELDS; print('\\n'.join(FIELDS))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return set(), f"import failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}"
    return set(r.stdout.split()), "jpdissect.model.FIELDS"


def jp_lower_layers() -> set[str]:
    """Protocols after which ``jpdissect read -T fields`` may stop (``engine.LOWER_LAYERS``).

    When every requested field lives there, the CLI dissects only up to UDP ("shallow"), while
    tshark, scapy and pyshark still dissect every layer: same output, less work. The report says
    so for such field sets.
    """
    code = "from jpdissect.engine import LOWER_LAYERS; print(' '.join(sorted(LOWER_LAYERS)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return set(r.stdout.split()) if r.returncode == 0 else set()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def tshark_version() -> str:
    exe = shutil.which("tshark")
    if not exe:
        return "not installed"
    r = subprocess.run([exe, "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.stdout else "unknown"


@dataclass
class Row:
    tool: str
    fieldset: str
    frames: int | None = None
    seconds: float | None = None
    cpu: float | None = None
    rss: float | None = None
    tree: float | None = None
    startup: float | None = None
    load: float | None = None
    note: str = ""
    is_ref: bool = False

    @property
    def pps(self) -> float | None:
        if self.frames and self.seconds:
            return self.frames / self.seconds
        return None

    @property
    def cpu_pps(self) -> float | None:
        """Frames per CPU second (user + system of the child and its waited-for children).

        On a shared machine wall time stretches with other people's load; CPU time much less.
        """
        if self.frames and self.cpu:
            return self.frames / self.cpu
        return None


def _frames_from_stderr(stderr: str) -> int | None:
    for ln in reversed(stderr.splitlines()):
        if ln.startswith("frames="):
            return int(ln.split("=", 1)[1])
    return None


def _last_err(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines()
             if ln.strip() and "Running as user" not in ln and "could be dangerous" not in ln]
    return lines[-1][:160] if lines else ""


@dataclass
class Tool:
    """How to run one tool on a capture with a field list."""

    name: str
    available: str | None      # None = available, else why not
    build: Callable[[str, list[str]], list[str]] | None  # (capture, fields) -> argv
    counts_itself: bool = False  # frames come from "frames=N" on stderr


def _d(decode_as: Sequence[str]) -> list[str]:
    out: list[str] = []
    for spec in decode_as:
        out += ["-d", spec]
    return out


def tools(peers: Sequence[str], cli: list[str] | None, jp_mode: str, decode_as: Sequence[str],
          peer_decode_as: Sequence[str]) -> list[Tool]:
    """The command line of every tool: ``decode_as`` goes to all, ``peer_decode_as`` to the peers."""
    out: list[Tool] = []
    d = _d(decode_as)
    pd = _d([*decode_as, *peer_decode_as])
    api = [sys.executable, str(PEERS), "jpdissect-api"]
    if jp_mode in ("auto", "cli", "both"):
        if cli:
            out.append(Tool("jpdissect read", None,
                            lambda c, fs: cli + ["read", "-r", c, "-T", "fields"] + d + _e(fs)))
        elif jp_mode == "cli":
            out.append(Tool("jpdissect read", "CLI not available (jpdissect read -h failed)", None))
    if jp_mode in ("api", "both") or (jp_mode == "auto" and not cli):
        out.append(Tool("jpdissect api", None, lambda c, fs: api + [c] + d + _e(fs), True))
    tshark = shutil.which("tshark")
    for p in peers:
        if p == "tshark":
            out.append(Tool("tshark", None if tshark else "not installed",
                            lambda c, fs: [tshark, "-n", "-r", c, "-T", "fields"] + pd + _e(fs)))
        elif p == "scapy":
            ok = importlib.util.find_spec("scapy") is not None
            out.append(Tool("scapy", None if ok else "not installed",
                            lambda c, fs: [sys.executable, str(PEERS), "scapy", c] + pd + _e(fs), True))
        elif p == "pyshark":
            ok = importlib.util.find_spec("pyshark") is not None
            why = None if ok and tshark else ("not installed" if not ok else "tshark not installed")
            out.append(Tool("pyshark", why,
                            lambda c, fs: [sys.executable, str(PEERS), "pyshark", c] + pd + _e(fs), True))
        else:
            out.append(Tool(p, "unknown peer", None))
    return out


def _e(fields: Sequence[str]) -> list[str]:
    out: list[str] = []
    for f in fields:
        out += ["-e", f]
    return out


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            n += chunk.count(b"\n")
    return n


def run_tool(t: Tool, capture: str, frames: int, fields: list[str], fieldset: str,
             timeout: float, repeat: int, startup_capture: str | None,
             count_to: Path | None = None) -> Row:
    """Time one tool; with ``count_to`` its rows go to that file, so a run killed by the timeout
    still tells how many frames it got through (and at what rate, with what RSS)."""
    row = Row(t.name, fieldset)
    if t.available is not None:
        row.note = t.available
        return row
    assert t.build is not None
    best: Measured | None = None
    row.load = os.getloadavg()[0]
    for _ in range(max(1, repeat)):
        m = measure(t.build(capture, fields), stdout=str(count_to) if count_to else "/dev/null",
                    timeout=timeout)
        if m.timed_out or m.rc != 0:
            row.note = (f"timed out after {timeout:.0f} s" if m.timed_out
                        else f"failed rc={m.rc}: {_last_err(m.stderr)}")
            row.seconds, row.rss, row.tree, row.cpu = m.seconds, m.rss_mib, m.tree_mib, m.cpu
            if count_to is not None:
                row.frames = _count_lines(count_to)
                row.note += f" after {row.frames} of {frames} frames (rates are up to that point)"
                count_to.unlink(missing_ok=True)
            return row
        if best is None or m.seconds < best.seconds:
            best = m
    assert best is not None
    row.seconds, row.cpu, row.rss, row.tree = best.seconds, best.cpu, best.rss_mib, best.tree_mib
    row.frames = _frames_from_stderr(best.stderr) if t.counts_itself else frames
    if count_to is not None:
        count_to.unlink(missing_ok=True)
    if startup_capture:
        s = measure(t.build(startup_capture, fields), timeout=timeout)
        if s.rc == 0:
            row.startup = s.seconds
    if repeat > 1:
        row.note = f"best of {repeat}"
    return row


# ---------------------------------------------------------------------------------------------
# Report


def fmt(v: float | None, nd: int = 2) -> str:
    return "—" if v is None else f"{v:,.{nd}f}"


def table(rows: list[Row]) -> str:
    out = ["| tool | field set | frames | seconds | packets/s | jpdissect × | peak RSS MiB "
           "| tree peak MiB | startup s | CPU s | packets/CPU-s | jpdissect × (CPU) | load | notes |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for fs in dict.fromkeys(r.fieldset for r in rows):
        group = [r for r in rows if r.fieldset == fs]
        ref = next((r for r in group if r.is_ref and r.pps), None)
        for r in group:
            ratio = (ref.pps / r.pps) if ref and ref.pps and r.pps else None
            cratio = (ref.cpu_pps / r.cpu_pps) if ref and ref.cpu_pps and r.cpu_pps else None
            out.append(
                f"| {r.tool} | {r.fieldset} | {r.frames if r.frames is not None else '—'} "
                f"| {fmt(r.seconds)} | {fmt(r.pps, 0)} | {fmt(ratio)} | {fmt(r.rss, 1)} "
                f"| {fmt(r.tree, 1)} | {fmt(r.startup)} | {fmt(r.cpu)} | {fmt(r.cpu_pps, 0)} "
                f"| {fmt(cratio)} | {fmt(r.load)} | {r.note} |")
    return "\n".join(out)


def environment(cap_info: dict[str, object]) -> str:
    cpu = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        git, dirty = "", ""
    rev = (git or "no commit") + (" + uncommitted changes" if dirty else "")
    lines = [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"load avg at start {os.getloadavg()[0]:.2f}",
        f"- Python {platform.python_version()}; jpdissect {_version('jpdissect')} ({rev}); "
        f"{tshark_version()}; scapy {_version('scapy')}; pyshark {_version('pyshark')}",
        "- capture: " + ", ".join(f"{k}={v}" for k, v in cap_info.items()),
        "- every tool runs without " + ", ".join(PYTHON_DEBUG_ENV)
        + " (unset for the children if this shell had them: "
        + (", ".join(k for k in PYTHON_DEBUG_ENV if k in os.environ) or "it had none") + ")",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Extra sections: agreement with tshark, cProfile


def check_against_tshark(capture: str, fields: list[str], jp_cmd: list[str], workdir: Path,
                         name: str, tshark_extra: list[str]) -> tuple[str, list[str]]:
    """Row-by-row diff of jpdissect's ``-T fields`` output against tshark's on the same frames.

    Also returns the fields jpdissect fills in fewer than half as many rows as tshark: a speed
    ratio over such a field set compares unequal work, and the report must say so.
    """
    tshark = shutil.which("tshark")
    if not tshark:
        return f"- {name}: tshark not installed, no check", []
    a, b = workdir / f"check-{name}-jp.tsv", workdir / f"check-{name}-tshark.tsv"
    mj = measure(jp_cmd, stdout=str(a))
    mt = measure([tshark, "-n", "-r", capture, "-T", "fields"] + tshark_extra + _e(fields), stdout=str(b))
    if mj.rc != 0:
        return f"- {name}: jpdissect failed: {_last_err(mj.stderr)}", []
    if mt.rc != 0:
        return f"- {name}: tshark failed: {_last_err(mt.stderr)}", []
    ja = a.read_text().splitlines()
    tb = b.read_text().splitlines()
    bad: dict[str, list[str]] = {f: [] for f in fields}
    nbad: dict[str, int] = dict.fromkeys(fields, 0)
    for i, (x, y) in enumerate(zip(ja, tb, strict=False), 1):
        if x == y:
            continue
        xs, ys = x.split("\t"), y.split("\t")
        for k, f in enumerate(fields):
            xv = xs[k] if k < len(xs) else "<missing>"
            yv = ys[k] if k < len(ys) else "<missing>"
            if xv != yv:
                nbad[f] += 1
                if len(bad[f]) < 2:
                    bad[f].append(f"frame {i}: jpdissect `{xv[:60]}` tshark `{yv[:60]}`")

    def filled(rows: list[str]) -> list[int]:
        cnt = [0] * len(fields)
        for r in rows:
            for k, v in enumerate(r.split("\t")[:len(fields)]):
                if v:
                    cnt[k] += 1
        return cnt

    fj, ft = filled(ja), filled(tb)
    lines = [f"- {name}: {len(ja)} jpdissect rows, {len(tb)} tshark rows, "
             f"{sum(1 for x, y in zip(ja, tb, strict=False) if x == y)} identical"]
    lines.append("  - non-empty cells jpdissect/tshark: "
                 + ", ".join(f"`{f}` {fj[k]}/{ft[k]}" for k, f in enumerate(fields)))
    for f in fields:
        if nbad[f]:
            lines.append(f"  - `{f}` differs in {nbad[f]} rows; e.g. " + "; ".join(bad[f]))
    unfilled = [f for k, f in enumerate(fields) if ft[k] and fj[k] * 2 < ft[k]]
    return "\n".join(lines), unfilled


def compare_protocols(capture: str, jp_cmd: list[str], workdir: Path, tshark_extra: list[str],
                      top: int = 8) -> tuple[str, float]:
    """How deep each tool dissects: ``frame.protocols`` of jpdissect vs tshark, most common pairs.

    Returns the text and the mean ratio of layer counts (jpdissect / tshark): well below 1 means
    jpdissect stops early and its speed is for less work, whatever the field list.
    """
    tshark = shutil.which("tshark")
    if not tshark:
        return "- tshark not installed, no protocol-depth check", 1.0
    a, b = workdir / "check-protocols-jp.tsv", workdir / "check-protocols-tshark.tsv"
    mj = measure(jp_cmd, stdout=str(a))
    mt = measure([tshark, "-n", "-r", capture, "-T", "fields"] + tshark_extra + ["-e", "frame.protocols"],
                 stdout=str(b))
    if mj.rc != 0 or mt.rc != 0:
        return f"- protocol-depth check failed: {_last_err(mj.stderr if mj.rc else mt.stderr)}", 1.0
    pairs: dict[tuple[str, str], int] = {}
    ratios: list[float] = []
    for x, y in zip(a.read_text().splitlines(), b.read_text().splitlines(), strict=False):
        pairs[(x, y)] = pairs.get((x, y), 0) + 1
        nx = len([p for p in x.split(":") if p])
        ny = len([p for p in y.split(":") if p])
        if ny:
            ratios.append(nx / ny)
    mean = sum(ratios) / len(ratios) if ratios else 1.0
    lines = [f"- layers per frame, jpdissect / tshark (mean ratio): {mean:.2f}",
             "", "| frames | jpdissect frame.protocols | tshark frame.protocols |", "|---:|---|---|"]
    for (x, y), n in sorted(pairs.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"| {n} | `{x or '(empty)'}` | `{y}` |")
    return "\n".join(lines), mean


def profile_jpdissect(capture: str, fields: list[str], workdir: Path, decode_as: list[str],
                      cli: list[str] | None, top: int = 25) -> str:
    """cProfile the path users run (the CLI script if it works, else the API workload).

    Besides the hottest functions, lists the cumulative time of every ``dissect_*`` function:
    these nest (Ethernet includes IPv6 includes UDP includes DTLS), so differences between
    levels give each layer's own share.
    """
    prof = workdir / "jpdissect.prof"
    if cli:
        target = [cli[0], "read", "-r", capture, "-T", "fields"]
        what = "`jpdissect read -T fields`"
    else:
        target = [str(PEERS), "jpdissect-api", capture]
        what = "`peers.py jpdissect-api`"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof)] + target + _d(decode_as) + _e(fields)
    m = measure(cmd)
    if m.rc != 0:
        return f"profiling failed: {_last_err(m.stderr)}"
    out = io.StringIO()
    st = pstats.Stats(str(prof), stream=out)
    st.strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    start = text.find("   ncalls")
    total = max((v[3] for v in st.stats.values()), default=0.0)  # type: ignore[attr-defined]
    cum: list[tuple[float, int, str]] = []
    for (fname, line, func), (_cc, nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        if func.startswith("dissect") or func in ("field_strings", "_records", "call_ports", "write_fields"):
            cum.append((ct, nc, f"{fname}:{line}({func})"))
    cum.sort(reverse=True)
    lines = [f"cProfile of {what} on this prefix ({m.seconds:.1f} s wall under the profiler; "
             f"profiling roughly doubles the time, so read shares, not seconds).", "",
             "Cumulative time of the dissect functions (nested: each includes the layers above it):", "",
             "| cumulative s | share of run | calls | function |", "|---:|---:|---:|---|"]
    for ct, nc, name in cum[:20]:
        share = f"{100 * ct / total:.0f} %" if total else "—"
        lines.append(f"| {ct:.2f} | {share} | {nc} | `{name}` |")
    lines += ["", f"Top {top} functions by own time:", "", "```", text[start:].rstrip(), "```"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def parse_fieldsets(specs: list[str] | None) -> dict[str, list[str]]:
    if not specs:
        return {k: list(v) for k, v in DEFAULT_FIELDSETS.items()}
    out: dict[str, list[str]] = {}
    for s in specs:
        name, sep, lst = s.partition("=")
        if not sep:
            raise SystemExit(f"--fieldset wants NAME=field,field,...: {s!r}")
        out[name] = [f.strip() for f in lst.split(",") if f.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--frames", type=int, default=200_000, help="frames to generate (default 200000)")
    ap.add_argument("--capture", help="reuse this capture instead of generating one")
    ap.add_argument("--seed", type=int, default=8974)
    ap.add_argument("--workdir", default=DEFAULT_WORKDIR, help=f"scratch directory (default {DEFAULT_WORKDIR})")
    ap.add_argument("--out", help="markdown report path (default WORKDIR/last.md)")
    ap.add_argument("--peers", default=",".join(ALL_PEERS), help="comma list of tshark,scapy,pyshark ('' = none)")
    ap.add_argument("--jpdissect", choices=("auto", "cli", "api", "both"), default="auto",
                    help="how to run jpdissect: the CLI if it works (auto), the API, or both")
    ap.add_argument("--pyshark-frames", type=int, default=20_000, help="pyshark runs on this prefix (default 20000)")
    ap.add_argument("--scapy-frames", type=int, default=0, help="scapy runs on this prefix (0 = whole capture)")
    ap.add_argument("--fieldset", action="append", metavar="NAME=f1,f2,...",
                    help="replace the default field sets (repeatable)")
    ap.add_argument("--decode-as", action="append", default=[], metavar="SPEC",
                    help="decode-as given to every tool, tshark syntax, e.g. udp.port==5683,data (repeatable)")
    ap.add_argument("--peer-decode-as", action="append", metavar="SPEC",
                    help="decode-as given to the peers only (repeatable; default "
                    f"{' '.join(DEFAULT_PEER_DECODE_AS)}; pass '' for none)")
    ap.add_argument("--repeat", type=int, default=1, help="run each timing N times, keep the fastest")
    ap.add_argument("--no-startup", action="store_true", help="skip the 1-frame startup-cost runs")
    ap.add_argument("--timeout", type=float, default=3600.0, help="per-run timeout in seconds")
    ap.add_argument("--check", type=int, default=2000, metavar="N",
                    help="diff jpdissect's rows against tshark's on the first N frames (default 2000, 0 = off)")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="cProfile jpdissect (API path) on the first N frames, second field set")
    ap.add_argument("--big", action="store_true", help="memory mode: >= --big-gb capture, jpdissect peak RSS")
    ap.add_argument("--big-gb", type=float, default=1.0, help="size of the --big capture in GiB (default 1)")
    ap.add_argument("--big-peers", default="", help="peers to also run on the big capture (e.g. tshark)")
    ap.add_argument("--big-fieldsets", default="", help="field sets to run in --big mode (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the --big capture")
    a = ap.parse_args(argv)
    a.decode_as = [d for d in a.decode_as if d]
    a.peer_decode_as = [d for d in (a.peer_decode_as if a.peer_decode_as is not None
                                    else DEFAULT_PEER_DECODE_AS) if d]

    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out_path = Path(a.out) if a.out else workdir / "last.md"
    peers = [p for p in a.peers.split(",") if p]
    fieldsets = parse_fieldsets(a.fieldset)

    cli = jp_cli() if a.jpdissect in ("auto", "cli", "both") else None
    have, have_src = jp_fields(cli)

    # Field sets restricted to what jpdissect declares (so nobody is charged for extra work).
    used: dict[str, list[str]] = {}
    notes: list[str] = []
    for name, fs in fieldsets.items():
        ok = [f for f in fs if f in have]
        missing = [f for f in fs if f not in have]
        if missing:
            notes.append(f"- field set `{name}`: jpdissect ({have_src}) lacks {', '.join(missing)}"
                         + (" — those fields were left out for every tool" if ok else ""))
        if not ok:
            notes.append(f"- field set `{name}` skipped: no field of it is declared by jpdissect")
            continue
        if any(ok == v for v in used.values()):
            notes.append(f"- field set `{name}` skipped: after filtering it equals another set")
            continue
        used[name] = ok
    lower = jp_lower_layers()
    for name, fs in used.items():
        if lower and {f.split(".", 1)[0] for f in fs} <= lower:
            notes.append(f"- field set `{name}`: only link/IP/UDP fields, so `jpdissect read` stops at the "
                         "transport layer (Engine.shallow) while the peers dissect every layer — same "
                         "output, less work; the `jpdissect api` path and the other sets dissect fully")

    cleanup: list[Path] = []
    if a.big and not a.capture:
        # SIGTERM (e.g. a CI timeout) must not leave a gigabyte behind: make it an exception.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        capture, frames, cap_info = _prepare_capture(a, workdir, cleanup)
        if a.big:
            peers = [p for p in a.big_peers.split(",") if p]
            if a.big_fieldsets:
                keep = a.big_fieldsets.split(",")
                used = {k: v for k, v in used.items() if k in keep}
        return _run(a, capture, frames, cap_info, used, notes, peers, cli, have, have_src, workdir,
                    out_path)
    finally:
        if not a.keep:
            for p in cleanup:
                p.unlink(missing_ok=True)


def _prepare_capture(a: argparse.Namespace, workdir: Path,
                     cleanup: list[Path]) -> tuple[str, int, dict[str, object]]:
    """Reuse ``--capture`` or generate one; a generated ``--big`` file is listed for deletion."""
    if a.capture:
        return a.capture, count_frames(a.capture), {"path": a.capture, "frames": count_frames(a.capture),
                                                    "bytes": os.path.getsize(a.capture)}
    if a.big:
        path = workdir / "big.pcap"
        cleanup.append(path)      # before generating: an interrupted generation is cleaned too
        t0 = time.perf_counter()
        info = generate(str(path), None, a.big_gb, a.seed)
        frames = int(info["frames"])  # type: ignore[call-overload]
        return str(path), frames, {"path": str(path), "frames": frames, "bytes": info["bytes"],
                                   "seed": a.seed, "generated_in_s": round(time.perf_counter() - t0, 1)}
    path = workdir / f"bench-{a.frames}-{a.seed}.pcap"
    t0 = time.perf_counter()
    info = generate(str(path), a.frames, None, a.seed)
    frames = int(info["frames"])  # type: ignore[call-overload]
    return str(path), frames, {"path": str(path), "frames": frames, "bytes": info["bytes"], "seed": a.seed,
                               "generated_in_s": round(time.perf_counter() - t0, 1),
                               "frames_per_scheme": info["frames_per_scheme_built"]}


def _run(a: argparse.Namespace, capture: str, frames: int, cap_info: dict[str, object],
         used: dict[str, list[str]], notes: list[str], peers: list[str], cli: list[str] | None,
         have: set[str], have_src: str, workdir: Path, out_path: Path) -> int:
    """Everything after the capture exists: checks, timings, report (split out for cleanup)."""
    report: list[str] = []
    report.append("# jpdissect benchmark" + (" — memory (--big)" if a.big else ""))
    report.append("")
    report.append(environment(cap_info))
    report.append(f"- fields known to jpdissect from: {have_src} ({len(have)} names); decode-as given to "
                  f"every tool: {', '.join(a.decode_as) or 'none'}; to the peers only: "
                  f"{', '.join(a.peer_decode_as) or 'none'}")
    report.extend(notes)
    report.append("")

    startup_cap: str | None = None
    if not a.no_startup:
        startup_cap = str(workdir / "startup-1frame.pcap")
        prefix_capture(capture, 1, startup_cap)
    prefixes: dict[int, str] = {}

    def prefix(n: int) -> tuple[str, int]:
        if n <= 0 or n >= frames:
            return capture, frames
        if n not in prefixes:
            p = str(workdir / f"prefix-{n}.pcap")
            prefix_capture(capture, n, p)
            prefixes[n] = p
        return prefixes[n], n

    dargs = _d(a.decode_as)
    pdargs = _d([*a.decode_as, *a.peer_decode_as])

    def jp_cmd_for(c: str, fs: list[str]) -> list[str]:
        if cli:
            return cli + ["read", "-r", c, "-T", "fields"] + dargs + _e(fs)
        return [sys.executable, str(PEERS), "jpdissect-api", c] + dargs + _e(fs)

    # The agreement check runs first: it is cheap, and it tells whether the timings below
    # compare equal work.
    check_text: list[str] = []
    unfilled: dict[str, list[str]] = {}
    if a.check and not a.big:
        cap, _ = prefix(a.check)
        if "frame.protocols" in have:
            txt, depth = compare_protocols(cap, jp_cmd_for(cap, ["frame.protocols"]), workdir, pdargs)
            check_text.append(txt)
            check_text.append("")
            if depth < 0.75:
                report.insert(-1, f"- **warning**: jpdissect dissects {depth:.0%} as many layers per frame "
                              "as tshark on this capture — every speed ratio below compares unequal "
                              "work (see the agreement section)")
        for fsname, fs in used.items():
            print(f"[bench] checking {fsname} against tshark on {min(a.check, frames)} frames ...",
                  file=sys.stderr, flush=True)
            txt, unfilled[fsname] = check_against_tshark(cap, fs, jp_cmd_for(cap, fs), workdir, fsname, pdargs)
            check_text.append(txt)
            if unfilled[fsname]:
                report.insert(-1, f"- **warning**: in field set `{fsname}` jpdissect fills less than "
                              f"half as many cells as tshark for {', '.join(unfilled[fsname])} — "
                              "its speed there is for less work (see the agreement section)")

    rows: list[Row] = []
    tl = tools(peers, cli, a.jpdissect, a.decode_as, a.peer_decode_as)
    for fsname, fs in used.items():
        first_jp = True
        for t in tl:
            cap, n = capture, frames
            note = ""
            if t.available is None and t.name == "pyshark":
                cap, n = prefix(a.pyshark_frames)
            elif t.available is None and t.name == "scapy" and a.scapy_frames:
                cap, n = prefix(a.scapy_frames)
            if n < frames:
                note = f"first {n} frames only"
            print(f"[bench] {t.name} / {fsname} on {n} frames ...", file=sys.stderr, flush=True)
            r = run_tool(t, cap, n, fs, fsname, a.timeout, a.repeat, startup_cap,
                         workdir / "big-rows.tsv" if a.big else None)
            r.note = "; ".join(x for x in (note, r.note) if x)
            if t.name.startswith("jpdissect") and first_jp and r.pps:
                r.is_ref = True
                first_jp = False
            if t.name.startswith("jpdissect") and unfilled.get(fsname):
                r.note = "; ".join(x for x in (r.note, f"leaves empty vs tshark: {len(unfilled[fsname])} field(s)") if x)
            rows.append(r)
            print(f"[bench]   {fmt(r.seconds)} s, {fmt(r.pps, 0)} pkt/s, {fmt(r.rss, 1)} MiB {r.note}",
                  file=sys.stderr, flush=True)

    report.append(table(rows))
    report.append("")
    for fsname, fs in used.items():
        report.append(f"- `{fsname}`: `-e {' -e '.join(fs)}`")
    report.append("- *jpdissect ×* = the first jpdissect row's packets/s divided by this row's "
                  "(> 1: jpdissect is faster); *(CPU)* is the same on CPU time, which the machine's "
                  "load disturbs much less than wall time. Seconds are wall time including start-up; "
                  "*startup s* is the same command on a 1-frame capture. *peak RSS* is the "
                  "child's ru_maxrss (wait4); *tree peak* is the sampled sum over the child's "
                  "process session (pyshark = Python + tshark).")
    if a.big:
        jp_rows = [r for r in rows if r.tool.startswith("jpdissect") and r.rss is not None]
        for r in jp_rows:
            over = r.rss is not None and r.rss >= RSS_TARGET_MIB
            if r.note.startswith("failed"):
                verdict = "FAIL (the run failed)"
            elif "timed out" in r.note:
                verdict = "FAIL (over target before the timeout)" if over else "INCOMPLETE (timed out)"
            else:
                verdict = "FAIL" if over else "PASS"
            report.append(f"- {r.tool} / `{r.fieldset}`: peak RSS {fmt(r.rss, 1)} MiB reading "
                          f"{r.frames} of {frames} frames of a {cap_info['bytes']:,}-byte capture "
                          f"→ target < {RSS_TARGET_MIB} MiB: **{verdict}**")

    if check_text:
        report.append("")
        report.append(f"## Output agreement with tshark (first {min(a.check, frames)} frames)")
        report.append("")
        report.extend(check_text)
        report.append("")
        report.append("Differences are expected where jpdissect decodes what tshark 4.0 cannot "
                      "(RFC 8974 extended tokens, DTLS inside JPY/CoAP payloads) — read them, "
                      "don't just count them.")

    if a.profile and not a.big:
        cap, _ = prefix(a.profile)
        fs = list(used.values())[-1] if used else DEFAULT_FIELDSETS["udp"]
        report.append("")
        report.append(f"## Where jpdissect spends its time (first {min(a.profile, frames)} frames)")
        report.append("")
        report.append(profile_jpdissect(cap, fs, workdir, a.decode_as, cli))

    text = "\n".join(report) + "\n"
    sys.stdout.write(text)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text)
    print(f"[bench] report written to {out_path}", file=sys.stderr)

    for p in prefixes.values():
        Path(p).unlink(missing_ok=True)
    if startup_cap:
        Path(startup_cap).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
