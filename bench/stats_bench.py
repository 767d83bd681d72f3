#!/usr/bin/env python3
"""Benchmarks of the statistics: summary speed against ``read -T fields``, flat memory, batch speedup.

Not a timed test: run it by hand and read the table. On a shared machine CPU time (user + sys of
the child, from ``os.wait4``) is steadier than wall time, so both are reported and each command
runs ``--repeat`` times, alternating, keeping the fastest run of each.

    python bench/stats_bench.py summary --frames 1000000          # issue 7: summary <= 1.5x read
    python bench/stats_bench.py memory --frames 200000 1000000     # peak RSS as the capture grows
    python bench/stats_bench.py batch --captures 24 --frames 20000 # report -j1 vs -j2, same numbers

Captures come from ``bench/gen_capture.py`` (seeded, so every run measures the same bytes) and are
kept in ``--workdir`` for reuse.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
GEN = BENCH / "gen_capture.py"
DEFAULT_WORKDIR = Path("/tmp/jpdissect-stats-bench")
#: The fields ``read -T fields`` prints in the comparison (bench/run.py's "udp" field set).
READ_FIELDS = ["frame.number", "frame.len", "ip.src", "ipv6.src", "udp.srcport", "udp.dstport", "udp.length"]
#: Issue 7: the summary of a capture within this factor of ``read -T fields`` on it.
TARGET_RATIO = 1.5
#: Issue 7: a batch on 2 workers at least this much faster than on 1.
TARGET_SPEEDUP = 1.7


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    rc: int
    #: Average number of CPUs other processes kept busy during the run (from /proc/stat).
    foreign_cpus: float = 0.0


def _busy_seconds() -> float | None:
    """CPU time all processes have used since boot (/proc/stat: everything but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    vals = [int(x) for x in fields]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def jpdissect_cmd() -> list[str]:
    exe = shutil.which("jpdissect")
    return [exe] if exe else [sys.executable, "-m", "jpdissect.cli"]


def stats_cmd() -> list[str]:
    """``jpdissect stats``/``report`` once wired into the main CLI, the module until then."""
    probe = subprocess.run([*jpdissect_cmd(), "stats", "-h"], capture_output=True)
    return jpdissect_cmd() if probe.returncode == 0 else [sys.executable, "-m", "jpdissect.stats.cli"]


def run(cmd: list[str], out: str = os.devnull) -> Run:
    """Run ``cmd``; its CPU time counts its worker processes too (they are waited for by it)."""
    busy0 = _busy_seconds()
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.PIPE)
        _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    busy1 = _busy_seconds()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    if rc not in (0, 2):
        sys.stderr.write(f"command failed ({rc}): {' '.join(cmd)}\n{err}\n")
    cpu = ru.ru_utime + ru.ru_stime
    foreign = max(0.0, (busy1 - busy0 - cpu) / wall) if busy0 is not None and busy1 is not None else 0.0
    return Run(wall, cpu, ru.ru_maxrss / 1024, rc, round(foreign, 2))


def capture(workdir: Path, frames: int, seed: int = 8974) -> Path:
    path = workdir / f"stats-{frames}-{seed}.pcap"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), "--frames", str(frames), "--seed", str(seed), "--out", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_summary(a: argparse.Namespace) -> dict[str, object]:
    cap = capture(a.workdir, a.frames[0])
    read = [*jpdissect_cmd(), "read", "-r", str(cap), "-T", "fields"] + [x for f in READ_FIELDS for x in ("-e", f)]
    summ = [*stats_cmd(), "stats", "summary", "-r", str(cap)]
    runs: dict[str, list[Run]] = {"read": [], "summary": []}
    loads = []
    for _ in range(a.repeat):
        loads.append(load())
        runs["read"].append(run(read))
        runs["summary"].append(run(summ))
    best = {k: min(v, key=lambda r: r.cpu) for k, v in runs.items()}
    best_wall = {k: min(r.wall for r in v) for k, v in runs.items()}
    ratio_cpu = best["summary"].cpu / best["read"].cpu
    ratio_wall = best_wall["summary"] / best_wall["read"]
    foreign = {k: [r.foreign_cpus for r in v] for k, v in runs.items()}
    return {"capture": str(cap), "frames": a.frames[0], "foreign_cpus_per_run": foreign,
            "cpu_s": {k: round(r.cpu, 2) for k, r in best.items()},
            "wall_s": {k: round(v, 2) for k, v in best_wall.items()},
            "rss_mib": {k: round(r.rss_mib, 1) for k, r in best.items()},
            "ratio_cpu": round(ratio_cpu, 3), "ratio_wall": round(ratio_wall, 3), "target": TARGET_RATIO,
            "ok": ratio_cpu <= TARGET_RATIO, "loadavg_before_each_pair": loads}


def bench_memory(a: argparse.Namespace) -> dict[str, object]:
    rows = []
    for n in a.frames:
        cap = capture(a.workdir, n)
        r = run([*stats_cmd(), "stats", "summary", "-r", str(cap)])
        rows.append({"frames": n, "rss_mib": round(r.rss_mib, 1), "cpu_s": round(r.cpu, 2), "wall_s": round(r.wall, 2)})
    return {"summary_peak_rss": rows, "loadavg": load()}


def bench_batch(a: argparse.Namespace) -> dict[str, object]:
    d = a.workdir / f"batch-{a.captures}x{a.frames[0]}"
    if not d.exists() or len(list(d.glob("*.pcap"))) < a.captures:
        d.mkdir(parents=True, exist_ok=True)
        for i in range(a.captures):
            # Sizes vary (as real batches do): 50 %..150 % of --frames.
            n = a.frames[0] // 2 + (a.frames[0] * i) // max(a.captures - 1, 1)
            src = capture(a.workdir, n, seed=1000 + i)
            shutil.copy(src, d / f"cap{i:02d}.pcap")
    out = {}
    runs: dict[int, list[Run]] = {1: [], 2: []}
    loads = []
    for _ in range(a.repeat):
        for j in (1, 2):
            loads.append(load())
            rep = a.workdir / f"batch-j{j}.md"
            runs[j].append(run([*stats_cmd(), "report", str(d), "-o", str(rep), "-j", str(j), "--no-progress"]))
    best = {j: min(v, key=lambda r: r.wall) for j, v in runs.items()}
    same = _tables(a.workdir / "batch-j1.md") == _tables(a.workdir / "batch-j2.md")
    # Pairs run back to back; the quietest pair (least CPU used by other processes) is the fair one.
    pairs = [(r1, r2) for r1, r2 in zip(runs[1], runs[2], strict=True)]
    quiet = min(pairs, key=lambda p: p[0].foreign_cpus + p[1].foreign_cpus)
    out = {"captures": a.captures, "frames_each_about": a.frames[0],
           "wall_s": {j: round(r.wall, 2) for j, r in best.items()},
           "speedup_best_of_each": round(best[1].wall / best[2].wall, 3),
           "quietest_pair": {"wall_s": [round(quiet[0].wall, 2), round(quiet[1].wall, 2)],
                             "speedup": round(quiet[0].wall / quiet[1].wall, 3),
                             "foreign_cpus": [quiet[0].foreign_cpus, quiet[1].foreign_cpus]},
           "all_pairs": [{"j1": round(p[0].wall, 2), "j2": round(p[1].wall, 2),
                          "foreign_cpus": [p[0].foreign_cpus, p[1].foreign_cpus]} for p in pairs],
           "target": TARGET_SPEEDUP, "identical_tables": same, "loadavg_before_each_run": loads,
           "cpus": os.cpu_count()}
    return out


def _tables(p: Path) -> list[str]:
    """The report's table rows (the header line with timings and worker count is left out)."""
    return [line for line in p.read_text().splitlines() if line.startswith("|")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["summary", "memory", "batch"])
    ap.add_argument("--frames", type=int, nargs="+", default=[200_000])
    ap.add_argument("--captures", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    a = ap.parse_args()
    res = {"summary": bench_summary, "memory": bench_memory, "batch": bench_batch}[a.what](a)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
