"""Per-scheme summary of relayed traffic, aggregated as the capture streams by.

Memory stays flat however long the capture: each scheme keeps sums, extremes and exact value
counts of small integers (overhead and datagram sizes are bounded by 65535, so a count per distinct
value is bounded too -- and gives exact medians), and forward delays go into a log-scale
histogram (:data:`DELAY_BUCKETS_PER_OCTAVE` buckets per doubling, so a delay quantile is within
~4.5 % of the true value). The only thing that grows is the set of session ids seen (one integer
per pledge).

The summary also checks the draft's overhead claims (draft-ietf-anima-constrained-join-proxy
§4.3.3): the CBOR framing of a JPY message costs "3-6 bytes" on top of the header, and a message
adds at most 38 bytes with a 32-byte header. :func:`claims` says whether the observed traffic bears
them out, scheme by scheme.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jpdissect.framing.jpy import MAX_OVERHEAD as JPY_MAX_OVERHEAD
from jpdissect.stats import _arrow as A
from jpdissect.stats import radio
from jpdissect.stats.relayed import COMPONENTS, DOWN, SCHEMES, UP

#: Draft §4.3.3: the CBOR array and byte-string heads of a JPY message, "3-6 bytes".
JPY_CBOR_CLAIM = (3, 6)
#: Log-histogram resolution for forward delays.
DELAY_BUCKETS_PER_OCTAVE = 16
UNKNOWN_SCHEME = "(unknown)"


def _delay_bucket(ns: int) -> int:
    return -1 if ns <= 0 else int(math.log2(ns) * DELAY_BUCKETS_PER_OCTAVE)


def _bucket_value(b: int) -> float:
    if b < 0:
        return 0.0
    return 2 ** ((b + 0.5) / DELAY_BUCKETS_PER_OCTAVE)


def counter_quantile(c: Mapping[Any, int], q: float) -> float | None:
    """The ``q`` quantile (lower median convention) of a value -> count mapping."""
    total = sum(c.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for v in sorted(c):
        seen += c[v]
        if seen > rank:
            return float(v)
    return float(max(c))


@dataclass
class SchemeAgg:
    """Running totals for one scheme (mergeable: :meth:`merge` adds another capture's)."""

    datagrams: int = 0
    up: int = 0
    down: int = 0
    paired: int = 0
    inexact: int = 0
    errors: int = 0
    inner_bytes: int = 0
    relay_payload_bytes: int = 0
    relay_frame_bytes: int = 0
    overhead: Counter[int] = field(default_factory=Counter)
    inner_sizes: Counter[int] = field(default_factory=Counter)
    components: list[int] = field(default_factory=lambda: [0] * len(COMPONENTS))
    cbor_min: int | None = None
    cbor_max: int | None = None
    sessions: int = 0
    delays: Counter[int] = field(default_factory=Counter)
    pledge_frames: int = 0
    pledge_airtime_us: int = 0
    pledge_fragmented: int = 0
    pledge_costed: int = 0
    relay_frames: int = 0
    relay_airtime_us: int = 0
    relay_fragmented: int = 0
    relay_costed: int = 0
    relay_impossible: int = 0

    def merge(self, o: SchemeAgg) -> None:
        for k in ("datagrams", "up", "down", "paired", "inexact", "errors", "inner_bytes",
                  "relay_payload_bytes", "relay_frame_bytes", "pledge_frames", "pledge_airtime_us",
                  "pledge_fragmented", "pledge_costed", "relay_frames", "relay_airtime_us",
                  "relay_fragmented", "relay_costed", "relay_impossible", "sessions"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.overhead.update(o.overhead)
        self.inner_sizes.update(o.inner_sizes)
        self.delays.update(o.delays)
        self.components = [a + b for a, b in zip(self.components, o.components, strict=True)]
        for k, f in (("cbor_min", min), ("cbor_max", max)):
            a, b = getattr(self, k), getattr(o, k)
            setattr(self, k, b if a is None else a if b is None else f(a, b))


class SchemeSummary:
    """Scan consumer: streaming per-scheme aggregates of the relayed datagrams."""

    wants_frames = False

    def __init__(self, pledge_profile: str | radio.LinkProfile = radio.DEFAULT_PLEDGE_PROFILE,
                 relay_profile: str | radio.LinkProfile = radio.DEFAULT_RELAY_PROFILE, capture: str = "") -> None:
        self.pledge_profile = radio.profile(pledge_profile)
        self.relay_profile = radio.profile(relay_profile)
        self.capture = capture
        self.aggs: dict[str, SchemeAgg] = {}
        self.not_relayed = 0

    def frame(self, fi: Any) -> None:
        pass

    def datagram(self, dg: Any) -> None:
        r = dg.relay
        if r is None:
            self.not_relayed += 1
            return
        scheme = dg.scheme or UNKNOWN_SCHEME
        a = self.aggs.get(scheme)
        if a is None:
            a = self.aggs[scheme] = SchemeAgg()
        fr = dg.framing
        a.datagrams += 1
        if dg.direction == UP:
            a.up += 1
        elif dg.direction == DOWN:
            a.down += 1
        p = dg.pledge
        if p is not None:
            a.paired += 1
        if not fr.exact:
            a.inexact += 1
        if fr.errors:
            a.errors += 1
        n_relay = len(r.payload or b"")
        a.inner_bytes += fr.inner_len
        a.relay_payload_bytes += n_relay
        a.relay_frame_bytes += r.length
        a.overhead[fr.overhead] += 1
        a.inner_sizes[fr.inner_len] += 1
        comps = fr.components()
        for i, v in enumerate(comps):
            a.components[i] += v
        if scheme in ("jpy", "jpy-legacy"):
            cb = fr.cbor_bytes
            a.cbor_min = cb if a.cbor_min is None else min(a.cbor_min, cb)
            a.cbor_max = cb if a.cbor_max is None else max(a.cbor_max, cb)
        if dg.new_session:
            a.sessions += 1
        d = dg.forward_delay_ns
        if d is not None:
            a.delays[_delay_bucket(d)] += 1
        if p is not None:
            c = radio.cost_or_none(self.pledge_profile, fr.inner_len, p.sport, p.dport, p.hlim)
            if c is not None:
                a.pledge_costed += 1
                a.pledge_frames += c.frames
                a.pledge_airtime_us += c.airtime_us
                a.pledge_fragmented += c.frames > self.pledge_profile.hops
        c = radio.cost_or_none(self.relay_profile, n_relay, r.sport, r.dport, r.hlim)
        if c is None:
            a.relay_impossible += 1
        else:
            a.relay_costed += 1
            a.relay_frames += c.frames
            a.relay_airtime_us += c.airtime_us
            a.relay_fragmented += c.frames > self.relay_profile.hops

    def merge(self, other: SchemeSummary) -> None:
        """Add another capture's aggregates (batch reports merge per-capture results)."""
        for k, v in other.aggs.items():
            a = self.aggs.get(k)
            if a is None:
                a = self.aggs[k] = SchemeAgg()
            a.merge(v)
        self.not_relayed += other.not_relayed

    def dataframe(self) -> pd.DataFrame:
        return summary_frame(self.aggs)


def _order(keys: Iterable[str]) -> list[str]:
    ks = list(keys)
    return [s for s in SCHEMES if s in ks] + sorted(k for k in ks if k not in SCHEMES)


SUMMARY_TYPES: dict[str, Any] = {
    "scheme": A.STR, "sessions": A.I64, "datagrams": A.I64, "up": A.I64, "down": A.I64,
    "paired": A.I64, "inner_bytes": A.I64, "inner_mean": A.F64, "relay_payload_bytes": A.I64,
    "overhead_bytes": A.I64, "overhead_min": A.I64, "overhead_median": A.F64, "overhead_mean": A.F64,
    "overhead_max": A.I64, "overhead_pct": A.F64,
    **{f"{c}_mean": A.F64 for c in COMPONENTS},
    "cbor_min": A.I64, "cbor_max": A.I64,
    "pledge_radio_frames": A.I64, "pledge_frames_per_datagram": A.F64, "pledge_fragmented_pct": A.F64,
    "pledge_airtime_ms": A.F64,
    "relay_radio_frames": A.I64, "relay_frames_per_datagram": A.F64, "relay_fragmented_pct": A.F64,
    "relay_airtime_ms": A.F64, "relay_unfragmentable": A.I64,
    "forward_delay_median_ms": A.F64, "forward_delay_p95_ms": A.F64,
    "inexact": A.I64, "errors": A.I64,
}


def summary_frame(aggs: Mapping[str, SchemeAgg]) -> pd.DataFrame:
    """One row per scheme (in DESIGN.md order) from the aggregates."""
    rows = []
    for s in _order(aggs):
        a = aggs[s]
        n = a.datagrams
        tot_over = sum(k * v for k, v in a.overhead.items())
        dq50 = counter_quantile(a.delays, 0.5)
        dq95 = counter_quantile(a.delays, 0.95)
        row: dict[str, Any] = {
            "scheme": s, "sessions": a.sessions, "datagrams": n, "up": a.up, "down": a.down,
            "paired": a.paired, "inner_bytes": a.inner_bytes,
            "inner_mean": a.inner_bytes / n if n else None,
            "relay_payload_bytes": a.relay_payload_bytes, "overhead_bytes": tot_over,
            "overhead_min": min(a.overhead) if a.overhead else None,
            "overhead_median": counter_quantile(a.overhead, 0.5),
            "overhead_mean": tot_over / n if n else None,
            "overhead_max": max(a.overhead) if a.overhead else None,
            "overhead_pct": 100.0 * tot_over / a.inner_bytes if a.inner_bytes else None,
            "cbor_min": a.cbor_min, "cbor_max": a.cbor_max,
            "pledge_radio_frames": a.pledge_frames,
            "pledge_frames_per_datagram": a.pledge_frames / a.pledge_costed if a.pledge_costed else None,
            "pledge_fragmented_pct": 100.0 * a.pledge_fragmented / a.pledge_costed if a.pledge_costed else None,
            "pledge_airtime_ms": a.pledge_airtime_us / 1000.0,
            "relay_radio_frames": a.relay_frames,
            "relay_frames_per_datagram": a.relay_frames / a.relay_costed if a.relay_costed else None,
            "relay_fragmented_pct": 100.0 * a.relay_fragmented / a.relay_costed if a.relay_costed else None,
            "relay_airtime_ms": a.relay_airtime_us / 1000.0, "relay_unfragmentable": a.relay_impossible,
            "forward_delay_median_ms": _bucket_value(int(dq50)) / 1e6 if dq50 is not None else None,
            "forward_delay_p95_ms": _bucket_value(int(dq95)) / 1e6 if dq95 is not None else None,
            "inexact": a.inexact, "errors": a.errors,
        }
        for c, v in zip(COMPONENTS, a.components, strict=True):
            row[f"{c}_mean"] = v / n if n else None
        rows.append(row)
    return A.from_records(rows, SUMMARY_TYPES)


CLAIM_TYPES: dict[str, Any] = {
    "claim": A.STR, "scheme": A.STR, "observed": A.STR, "holds": A.BOOL, "datagrams": A.I64,
}


def claims(summary: pd.DataFrame) -> pd.DataFrame:
    """The draft's overhead claims against the observed traffic, one row per (claim, scheme).

    "3-6 bytes" is checked on the CBOR framing of JPY messages (``cbor_bytes``: array head and
    byte-string heads, the header itself excluded); "≤ 38 bytes" on the whole per-datagram overhead
    of every scheme, so the table also says which other framings would meet the draft's bound.
    """
    rows: list[dict[str, Any]] = []
    lo, hi = JPY_CBOR_CLAIM
    for rec in summary.to_dict("records"):
        s = rec["scheme"]
        n = rec["datagrams"]
        if s == "jpy" and rec["cbor_min"] is not None and not pd.isna(rec["cbor_min"]):
            ok = lo <= rec["cbor_min"] and rec["cbor_max"] <= hi
            rows.append({"claim": f"JPY CBOR framing adds {lo}-{hi} bytes (draft §4.3.3)", "scheme": s,
                         "observed": f"{rec['cbor_min']}-{rec['cbor_max']} bytes", "holds": bool(ok),
                         "datagrams": n})
        if rec["overhead_max"] is not None and not pd.isna(rec["overhead_max"]):
            rows.append({"claim": f"relay overhead <= {JPY_MAX_OVERHEAD} bytes (draft §4.3.3)", "scheme": s,
                         "observed": f"{rec['overhead_min']}-{rec['overhead_max']} bytes",
                         "holds": bool(rec["overhead_max"] <= JPY_MAX_OVERHEAD), "datagrams": n})
    return A.from_records(rows, CLAIM_TYPES)


__all__ = ["SUMMARY_TYPES", "SchemeAgg", "SchemeSummary", "claims", "counter_quantile", "summary_frame"]
