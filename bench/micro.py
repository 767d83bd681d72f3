#!/usr/bin/env python3
"""Per-dissector micro-benchmark: time jpdissect's UDP-payload dissectors in isolation.

Why: the end-to-end numbers in ``run.py`` say how fast ``jpdissect read`` is, not where the time
goes. This script takes the UDP payloads of a capture (parsed here with ``struct``, so it works
before jpdissect's own Ethernet/IP/UDP dissectors exist) and feeds each one straight to the
dissector that owns its port, through the documented contract ``fn(pkt, buf, off, end, src)``
with a real :class:`~jpdissect.engine.Engine` (state, tables, heuristics, prefs) behind it.
Subtracting these per-message costs from the end-to-end cost gives the share of the frame,
link, IP and UDP layers and of the output formatting.

    python bench/micro.py CAPTURE [--frames N] [--tree] [-e FIELD ...] [--profile]

Ports -> dissector: the engine's own ``udp.port`` table (lower port first, as the engine does),
then, for ports only heuristics find, :data:`PORT_FALLBACK` (5685 -> jpy in the generated capture).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import struct
import sys
import time
from collections import defaultdict
from typing import Any

DEFAULT_FIELDS = ["coap.type", "coap.code", "coap.mid", "coap.token",
                  "dtls.record.content_type", "dtls.record.length"]
PORT_FALLBACK = {5685: "jpy"}


def udp_payloads(path: str, limit: int) -> list[tuple[int, int, bytes]]:
    """(sport, dport, payload) of the first ``limit`` Ethernet/IPv{4,6}/UDP frames of a pcap."""
    out: list[tuple[int, int, bytes]] = []
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            raise SystemExit("micro.py reads the little-endian classic pcap gen_capture.py writes")
        rec = struct.Struct("<IIII")
        n = 0
        while n < limit:
            h = f.read(16)
            if len(h) < 16:
                break
            data = f.read(rec.unpack(h)[2])
            n += 1
            et = data[12] << 8 | data[13]
            if et == 0x86DD and data[20] == 17:
                off = 14 + 40
            elif et == 0x0800 and data[23] == 17:
                off = 14 + (data[14] & 0x0F) * 4
            else:
                continue
            sport, dport, ulen = struct.unpack_from("!HHH", data, off)
            out.append((sport, dport, data[off + 8:off + ulen]))
    return out


def run(payloads: list[tuple[int, int, bytes]], fields: list[str], tree: bool) -> dict[str, Any]:
    from jpdissect.dissectors import load_all
    from jpdissect.engine import Engine
    from jpdissect.model import Packet, prime, unprime_all

    load_all()  # fields are declared on import: priming before it would silently prime nothing
    unprime_all()
    prime(fields)
    eng = Engine(tree=tree, cols=tree)
    named = eng.registry.named
    table = eng.registry.tables.get("udp.port", {})
    groups: dict[str, list[tuple[int, int, bytes]]] = defaultdict(list)
    for sp, dp, pay in payloads:
        lo, hi = min(sp, dp), max(sp, dp)
        name = table.get(lo) or table.get(hi) or PORT_FALLBACK.get(lo) or PORT_FALLBACK.get(hi)
        if name and name in named:
            groups[name].append((sp, dp, pay))
    result: dict[str, Any] = {}
    for name, items in groups.items():
        fn = named[name]
        errors = 0
        t0 = time.perf_counter()
        for i, (sp, dp, pay) in enumerate(items, 1):
            pkt = Packet(i, 0, pay, 1, len(pay), tree=tree, cols=tree)
            pkt.cap = eng
            pkt.srcport, pkt.dstport = sp, dp
            try:
                fn(pkt, pay, 0, len(pay), 0)
            except Exception:  # noqa: BLE001 - counted: a dissector must never raise
                errors += 1
        secs = time.perf_counter() - t0
        result[name] = {"messages": len(items), "seconds": secs,
                        "us_per_msg": 1e6 * secs / len(items), "msgs_per_s": len(items) / secs,
                        "exceptions": errors}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("-e", dest="fields", action="append", help="primed fields (default: coap+dtls set)")
    ap.add_argument("--tree", action="store_true", help="build the full tree (like -V) instead")
    ap.add_argument("--profile", action="store_true", help="cProfile the run, top 25 by tottime")
    a = ap.parse_args(argv)
    fields = a.fields or DEFAULT_FIELDS
    payloads = udp_payloads(a.capture, a.frames)
    if a.profile:
        prof = cProfile.Profile()
        res = prof.runcall(run, payloads, fields, a.tree)
        pstats.Stats(prof, stream=sys.stderr).strip_dirs().sort_stats("tottime").print_stats(25)
    else:
        res = run(payloads, fields, a.tree)
    print(f"{len(payloads)} UDP payloads from the first {a.frames} frames; "
          f"{'full tree' if a.tree else 'no tree, primed: ' + ' '.join(fields)}")
    print("| dissector | messages | µs/message | messages/s | exceptions |")
    print("|---|---:|---:|---:|---:|")
    for name, r in sorted(res.items()):
        print(f"| {name} | {r['messages']} | {r['us_per_msg']:.1f} | {r['msgs_per_s']:,.0f} | {r['exceptions']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
