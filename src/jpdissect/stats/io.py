"""I/O over time: frames and bytes per interval, per hop and scheme (tshark ``-z io,stat``).

Buckets are keyed by ``(interval index, leg, scheme)`` and only exist where traffic was, so memory
grows with the capture's *duration over the interval*, never with its frame count.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from jpdissect.stats import _arrow as A

#: tshark's default io,stat interval is the whole capture; one second is what people graph.
DEFAULT_INTERVAL_NS = 1_000_000_000
#: Most buckets kept (a 1 µs interval over a day-long capture would otherwise grow without bound);
#: past it, the interval in use doubles and the buckets are folded. A plot asks for few buckets
#: from a fine interval and so gets an interval fitted to the capture's duration in one pass.
MAX_BUCKETS = 200_000
OTHER = "other"


class IoStat:
    """Scan consumer: frames/bytes per interval since the first frame."""

    def __init__(self, interval_ns: int = DEFAULT_INTERVAL_NS, max_buckets: int = MAX_BUCKETS) -> None:
        if interval_ns <= 0:
            raise ValueError("the interval must be positive")
        self.interval_ns = interval_ns
        self.max_buckets = max_buckets
        self.first_ns: int | None = None
        self.buckets: defaultdict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def frame(self, fi: Any) -> None:
        if self.first_ns is None:
            self.first_ns = fi.ts_ns
        i = (fi.ts_ns - self.first_ns) // self.interval_ns
        b = self.buckets[(i, fi.leg or OTHER, fi.scheme or "")]
        b[0] += 1
        b[1] += fi.length
        if len(self.buckets) > self.max_buckets:
            self._fold()

    def datagram(self, dg: Any) -> None:
        pass

    def _fold(self) -> None:
        old = self.buckets
        self.interval_ns *= 2
        self.buckets = defaultdict(lambda: [0, 0])
        for (i, leg, scheme), (n, b) in old.items():
            t = self.buckets[(i // 2, leg, scheme)]
            t[0] += n
            t[1] += b

    def dataframe(self) -> pd.DataFrame:
        """Long form: ``interval_start`` (seconds since the first frame), leg, scheme, frames, bytes."""
        keys = sorted(self.buckets)
        return A.frame({
            "interval_start": (A.F64, [k[0] * self.interval_ns / 1e9 for k in keys]),
            "leg": (A.STR, [k[1] for k in keys]),
            "scheme": (A.STR, [k[2] or None for k in keys]),
            "frames": (A.I64, [self.buckets[k][0] for k in keys]),
            "bytes": (A.I64, [self.buckets[k][1] for k in keys]),
        })

    def wide(self) -> pd.DataFrame:
        """One row per interval: all frames/bytes, then frames and bytes per hop."""
        df = self.dataframe()
        if df.empty:
            return A.frame({"interval_start": (A.F64, []), "frames": (A.I64, []), "bytes": (A.I64, [])})
        d = df.astype({"frames": "int64", "bytes": "int64", "interval_start": "float64"})
        total = d.groupby("interval_start")[["frames", "bytes"]].sum()
        per_leg = d.pivot_table(index="interval_start", columns="leg", values=["frames", "bytes"],
                                aggfunc="sum", fill_value=0)
        per_leg.columns = [f"{leg}_{what}" for what, leg in per_leg.columns]
        out = total.join(per_leg).reset_index()
        return A.arrow(out)


__all__ = ["DEFAULT_INTERVAL_NS", "IoStat"]
