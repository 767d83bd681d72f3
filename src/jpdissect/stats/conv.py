"""UDP conversations (tshark ``-z conv,udp``) annotated with the hop and relay scheme.

One entry per address/port pair, both directions together, A being the side that spoke first.
Memory grows with the number of conversations (pledges, JP ports), not with frames.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from jpdissect.stats import _arrow as A
from jpdissect.stats.scan import addr_str


class _Conv:
    __slots__ = ("a", "b", "ab_frames", "ab_bytes", "ba_frames", "ba_bytes", "first", "last", "leg", "scheme",
                 "first_frame")

    def __init__(self, a: tuple[bytes, int], b: tuple[bytes, int], ts: int, number: int) -> None:
        self.a, self.b = a, b
        self.ab_frames = self.ab_bytes = self.ba_frames = self.ba_bytes = 0
        self.first = self.last = ts
        self.first_frame = number
        self.leg: str | None = None
        self.scheme: str | None = None


class Conversations:
    """Scan consumer: per-conversation frame and byte counts in each direction."""

    def __init__(self) -> None:
        self.convs: dict[tuple[tuple[bytes, int], tuple[bytes, int]], _Conv] = {}
        self.first_ns: int | None = None

    def frame(self, fi: Any) -> None:
        if self.first_ns is None:
            self.first_ns = fi.ts_ns
        if fi.payload is None:
            return
        s = (fi.src or b"", fi.sport)
        d = (fi.dst or b"", fi.dport)
        key = (s, d) if s <= d else (d, s)
        c = self.convs.get(key)
        if c is None:
            c = self.convs[key] = _Conv(s, d, fi.ts_ns, fi.number)
        if s == c.a:
            c.ab_frames += 1
            c.ab_bytes += fi.length
        else:
            c.ba_frames += 1
            c.ba_bytes += fi.length
        c.last = fi.ts_ns
        c.leg = fi.leg
        if fi.scheme:
            c.scheme = fi.scheme

    def datagram(self, dg: Any) -> None:
        pass

    def dataframe(self) -> pd.DataFrame:
        cs = sorted(self.convs.values(), key=lambda c: c.first_frame)
        t0 = self.first_ns or 0
        return A.frame({
            "address_a": (A.STR, [addr_str(c.a[0]) for c in cs]),
            "port_a": (A.I32, [c.a[1] for c in cs]),
            "address_b": (A.STR, [addr_str(c.b[0]) for c in cs]),
            "port_b": (A.I32, [c.b[1] for c in cs]),
            "frames_ab": (A.I64, [c.ab_frames for c in cs]),
            "bytes_ab": (A.I64, [c.ab_bytes for c in cs]),
            "frames_ba": (A.I64, [c.ba_frames for c in cs]),
            "bytes_ba": (A.I64, [c.ba_bytes for c in cs]),
            "frames": (A.I64, [c.ab_frames + c.ba_frames for c in cs]),
            "bytes": (A.I64, [c.ab_bytes + c.ba_bytes for c in cs]),
            "rel_start": (A.F64, [(c.first - t0) / 1e9 for c in cs]),
            "duration": (A.F64, [(c.last - c.first) / 1e9 for c in cs]),
            "leg": (A.STR, [c.leg for c in cs]),
            "scheme": (A.STR, [c.scheme for c in cs]),
        })


__all__ = ["Conversations"]
