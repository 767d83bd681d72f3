"""One capture analysed in one pass: the tables every stats command and the report need.

:func:`analyse` runs the :class:`~jpdissect.stats.scan.Scanner` with the consumers asked for and
returns a :class:`CaptureStats` made of plain, picklable data (DataFrames and mergeable
aggregates) -- what a report worker process sends back to its parent. Nothing in it depends on the
process that computed it, which is what makes a parallel batch report equal to a serial one.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jpdissect.stats import radio
from jpdissect.stats.conv import Conversations
from jpdissect.stats.io import DEFAULT_INTERVAL_NS, MAX_BUCKETS, IoStat
from jpdissect.stats.relayed import RelayedTable
from jpdissect.stats.scan import Scanner
from jpdissect.stats.summary import SchemeAgg, SchemeSummary, summary_frame
from jpdissect.stats.timeline import Timeline
from jpdissect.stats.whatif import WhatIf, whatif_frame

PARTS = ("summary", "relayed", "whatif", "io", "conv", "timeline")


@dataclass
class Options:
    """What to compute and under which assumptions (shared by the CLI, the API and the report)."""

    pledge_profile: str = radio.DEFAULT_PLEDGE_PROFILE
    relay_profile: str = radio.DEFAULT_RELAY_PROFILE
    interval_ns: int = DEFAULT_INTERVAL_NS
    io_max_buckets: int = MAX_BUCKETS
    prefs: tuple[str, ...] = ()
    decode_as: tuple[str, ...] = ()
    per_datagram: bool = False
    limit: int = 0

    def check(self) -> None:
        """Fail early (before any worker starts) on a bad profile."""
        radio.profile(self.pledge_profile)
        radio.profile(self.relay_profile)


@dataclass
class CaptureStats:
    """Everything computed for one capture."""

    path: str
    frames: int = 0
    udp: int = 0
    relayed: int = 0
    not_relayed: int = 0
    unpaired: int = 0
    sessions_seen: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    error: str | None = None
    summary_aggs: dict[str, SchemeAgg] = field(default_factory=dict)
    whatif_aggs: dict[str, Any] = field(default_factory=dict)
    whatif_pledge: Any = None
    whatif_observed: Counter[str] = field(default_factory=Counter)
    whatif_rows: pd.DataFrame | None = None
    whatif_frames: pd.DataFrame | None = None
    relayed_df: pd.DataFrame | None = None
    io_df: pd.DataFrame | None = None
    io_long: pd.DataFrame | None = None
    io_interval_ns: int = 0
    conv_df: pd.DataFrame | None = None
    sessions_df: pd.DataFrame | None = None
    events_df: pd.DataFrame | None = None
    seconds: float = 0.0

    @property
    def duration(self) -> float:
        if self.first_ns is None or self.last_ns is None:
            return 0.0
        return (self.last_ns - self.first_ns) / 1e9

    def summary(self) -> pd.DataFrame:
        return summary_frame(self.summary_aggs)

    def whatif(self) -> pd.DataFrame:
        from jpdissect.stats.whatif import _Agg

        return whatif_frame(self.whatif_aggs, self.whatif_pledge or _Agg(), self.whatif_observed)


def analyse(path: str | os.PathLike[str], opts: Options | None = None,
            parts: tuple[str, ...] = PARTS) -> CaptureStats:
    """Dissect ``path`` once and compute the ``parts`` asked for."""
    import time

    opts = opts or Options()
    name = os.fspath(path)
    cons: dict[str, Any] = {}
    if "summary" in parts:
        cons["summary"] = SchemeSummary(opts.pledge_profile, opts.relay_profile, capture=name)
    if "relayed" in parts:
        cons["relayed"] = RelayedTable(capture=name)
    if "whatif" in parts:
        cons["whatif"] = WhatIf(relay_profile=opts.relay_profile, pledge_profile=opts.pledge_profile,
                                keep_rows=opts.per_datagram, capture=name)
    if "io" in parts:
        cons["io"] = IoStat(opts.interval_ns, opts.io_max_buckets)
    if "conv" in parts:
        cons["conv"] = Conversations()
    if "timeline" in parts:
        cons["timeline"] = Timeline(capture=name)
    t0 = time.perf_counter()
    res = Scanner(cons.values(), prefs=opts.prefs, decode_as=opts.decode_as, limit=opts.limit).run(name)
    st = CaptureStats(name, res.frames, res.udp, res.relayed, 0, res.unpaired, res.sessions,
                      res.first_ns, res.last_ns, res.error)
    if "summary" in cons:
        st.summary_aggs = cons["summary"].aggs
        st.not_relayed = cons["summary"].not_relayed
    if "relayed" in cons:
        st.relayed_df = cons["relayed"].dataframe(opts.pledge_profile, opts.relay_profile)
        st.not_relayed = cons["relayed"].not_relayed
    if "whatif" in cons:
        w: WhatIf = cons["whatif"]
        st.whatif_aggs, st.whatif_pledge, st.whatif_observed = w.aggs, w.pledge, w.observed
        st.whatif_frames = w.frames_histogram()
        if opts.per_datagram:
            st.whatif_rows = w.rows_frame()
    if "io" in cons:
        st.io_interval_ns = cons["io"].interval_ns
        st.io_df = cons["io"].wide()
        st.io_long = cons["io"].dataframe()
    if "conv" in cons:
        st.conv_df = cons["conv"].dataframe()
    if "timeline" in cons:
        st.sessions_df = cons["timeline"].sessions_frame()
        st.events_df = cons["timeline"].events_frame()
    st.seconds = time.perf_counter() - t0
    return st


__all__ = ["PARTS", "CaptureStats", "Options", "analyse"]
