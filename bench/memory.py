#!/usr/bin/env python3
"""Where jpdissect's memory goes: RSS growth along a capture and the allocation sites holding it.

Why: ``run.py --big`` says *whether* ``jpdissect read`` stays under its memory target on a
1 GiB capture; when it does not, this says *what* grows. It streams the capture through the
same API path the CLI uses (``jpdissect.api.packets`` + ``field_strings``, output discarded),
prints RSS every ``--every`` frames (flat = bounded state, a slope = something kept per frame
or per conversation), then, with ``--trace``, the ``tracemalloc`` sites that hold the most live
memory at the end, grouped by file and line, and the size of every ``engine.state`` entry.

    python bench/memory.py CAPTURE [--frames N] [--every K] [--trace] [-e FIELD ...] [--read]

``--read`` makes the engine ``jpdissect read -T fields`` makes (``lazy``, no columns, and the
single-pass promise under which finished conversations are forgotten); without it the engine is
the API's, which keeps per-session report rows and re-dissection memos.

``--trace`` slows dissection several times; use it on a few hundred thousand frames.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from typing import Any

DEFAULT_FIELDS = ["frame.number", "frame.len", "ip.src", "ipv6.src", "udp.srcport", "udp.dstport",
                  "udp.length", "coap.type", "coap.code", "coap.mid", "coap.token",
                  "dtls.record.content_type", "dtls.record.length"]


def rss_mib() -> float:
    """Current resident set size (VmRSS) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) / 1024
    return 0.0


def deep_size(obj: Any, seen: set[int] | None = None, depth: int = 0) -> int:
    """Rough recursive size of containers (dict/list/set/tuple, objects with __dict__/__slots__)."""
    if seen is None:
        seen = set()
    if id(obj) in seen or depth > 50:
        return 0
    seen.add(id(obj))
    n = sys.getsizeof(obj)
    if isinstance(obj, dict):
        for k, v in obj.items():
            n += deep_size(k, seen, depth + 1) + deep_size(v, seen, depth + 1)
    elif isinstance(obj, list | tuple | set | frozenset):
        for v in obj:
            n += deep_size(v, seen, depth + 1)
    else:
        d = getattr(obj, "__dict__", None)
        if d is not None:
            n += deep_size(d, seen, depth + 1)
        for s in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, s):
                n += deep_size(getattr(obj, s), seen, depth + 1)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--frames", type=int, default=0, help="stop after N frames (0 = all)")
    ap.add_argument("--every", type=int, default=50_000, help="print RSS every K frames")
    ap.add_argument("--trace", action="store_true", help="tracemalloc: top live allocation sites at the end")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("-e", dest="fields", action="append", help="fields (default: the coap+dtls set)")
    ap.add_argument("-d", dest="decode_as", action="append", default=[], help="decode-as (tshark syntax)")
    ap.add_argument("--lazy", action="store_true",
                    help="let the engine stop at UDP when only lower-layer fields are asked, as "
                    "`jpdissect read -T fields` does (Engine(lazy=True, cols=False))")
    ap.add_argument("--single-pass", action="store_true",
                    help="Engine(single_pass=True): keep no re-dissection memos or finished-session "
                    "report rows (jpdissect read always does)")
    ap.add_argument("--read", action="store_true",
                    help="the engine `jpdissect read -T fields` uses: --lazy --single-pass")
    a = ap.parse_args(argv)
    if a.read:
        a.lazy = a.single_pass = True
    fields = a.fields or DEFAULT_FIELDS

    from jpdissect.api import field_strings
    from jpdissect.capture import open_capture
    from jpdissect.dissectors import load_all
    from jpdissect.engine import Engine
    from jpdissect.model import prime, unprime_all

    if a.trace:
        tracemalloc.start(1)
    load_all()  # fields are declared on import: priming before it would silently prime nothing
    unprime_all()
    prime(fields)
    if a.lazy:
        eng = Engine(decode_as=a.decode_as, cols=False, lazy=True, single_pass=a.single_pass)
        print(f"lazy engine, shallow={getattr(eng, 'shallow', '?')}, single_pass={a.single_pass}")
    else:
        eng = Engine(decode_as=a.decode_as, single_pass=a.single_pass)
    base = rss_mib()
    print(f"start: RSS {base:.1f} MiB (interpreter + jpdissect imported)")
    print("| frames | RSS MiB | MiB per 100k frames since last | seconds |")
    print("|---:|---:|---:|---:|")
    t0 = time.perf_counter()
    last_rss, last_n = base, 0
    n = 0
    with open_capture(a.capture) as rd:
        for fr in rd:
            pkt = eng.dissect(fr)
            "\t".join([field_strings(pkt, f) for f in fields])
            n += 1
            if n % a.every == 0:
                r = rss_mib()
                slope = (r - last_rss) * 100_000 / (n - last_n)
                print(f"| {n} | {r:.1f} | {slope:+.1f} | {time.perf_counter() - t0:.1f} |", flush=True)
                last_rss, last_n = r, n
            if n == a.frames:
                break
    print(f"end: {n} frames, RSS {rss_mib():.1f} MiB")
    print()
    print("engine.state entries (rough deep size):")
    for k, v in sorted(eng.state.items(), key=lambda kv: str(kv[0])):
        size = deep_size(v)
        extra = f", {len(v)} items" if hasattr(v, "__len__") else ""
        print(f"- {k}: {size / (1 << 20):.1f} MiB ({type(v).__name__}{extra})")
    for k in ("learned", "overrides", "secrets"):
        v = getattr(eng, k, None)
        if v:
            print(f"- engine.{k}: {deep_size(v) / (1 << 20):.2f} MiB")
    if a.trace:
        snap = tracemalloc.take_snapshot()
        stats = snap.statistics("lineno")
        print()
        print(f"top {a.top} live allocation sites (tracemalloc, by line):")
        for st in stats[:a.top]:
            fr0 = st.traceback[0]
            print(f"- {st.size / (1 << 20):7.1f} MiB {st.count:9d} blocks  {fr0.filename}:{fr0.lineno}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
