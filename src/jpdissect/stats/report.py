"""Batch reports: tables and matplotlib plots for one capture or many, in HTML or Markdown.

Captures are analysed in worker processes (:class:`concurrent.futures.ProcessPoolExecutor`), each
returning a :class:`~jpdissect.stats.analysis.CaptureStats` and its own plots as PNG bytes; the
parent merges the per-scheme aggregates *in input order*, whatever order the workers finish in, so
the numbers of a parallel run are identical to those of ``-j 1`` (which runs everything in this
process). Captures are handed out largest first, so that two workers finish together instead of
one waiting for the other's last big file.

Plots (PNG, written next to the report in ``<name>_files/`` and, for HTML, embedded):

* overhead per scheme -- mean bytes per relayed datagram, stacked by framing component, with the
  draft's 38-byte bound;
* radio frames per datagram -- share of datagrams needing 1, 2, 3... 802.15.4 frames on one
  Registrar-hop radio hop, per scheme, for the same traffic (the what-if);
* handshake timeline per session -- each copy of each datagram on its hop, per capture;
* I/O over time -- frames per interval on each hop, per capture.
"""

from __future__ import annotations

import base64
import glob
import html
import io
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from jpdissect.stats import radio
from jpdissect.stats.analysis import CaptureStats, Options, analyse
from jpdissect.stats.formats import Table, markdown_table
from jpdissect.stats.relayed import COMPONENTS, SCHEMES
from jpdissect.stats.summary import SchemeAgg, claims, summary_frame
from jpdissect.stats.whatif import _Agg, assumptions, whatif_frame

#: What counts as a capture when a directory is given.
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
#: Per-capture timeline plots drawn (beyond this only the tables are listed: a 500-capture batch
#: would otherwise be a 500-image page).
MAX_CAPTURE_PLOTS = 64
#: Figure geometry and resolution: readable when viewed at 100 % in a browser.
FIG_DPI = 110
FIG_WIDTH = 9.0
#: Labels drawn on the timeline (one per distinct message per session hop, so it stays legible).
TIMELINE_ABBREV = {
    "ClientHello": "CH", "HelloVerifyRequest": "HVR", "ServerHello": "SH", "Certificate": "Cert",
    "ServerKeyExchange": "SKE", "CertificateRequest": "CR", "ServerHelloDone": "SHD",
    "ClientKeyExchange": "CKE", "CertificateVerify": "CV", "NewSessionTicket": "NST", "Finished": "Fin",
    "AppData": "App", "Alert": "Alert", "CCS": "CCS",
}
#: Which message names a datagram on the timeline, in priority order.
KEY_MESSAGES = ("ClientHello", "HelloVerifyRequest", "ServerHello", "Finished", "AppData", "Alert")
#: Labels closer than this fraction of the time span are stacked, up to this many levels.
LABEL_GAP_FRACTION = 0.02
LABEL_LEVELS = 2
MAX_BURST_LABELS = 6
SCHEME_COLOURS = {"stateful": "#4c72b0", "jpy": "#dd8452", "jpy-legacy": "#937860", "coap-dtls": "#55a868",
                  "thread-relay": "#c44e52", "cojp": "#8172b3", "pledge hop": "#999999"}
#: The report's I/O plot starts from this interval and doubles it until the capture fits in
#: :data:`REPORT_IO_BUCKETS` buckets (one pass, whatever the duration).
REPORT_IO_BASE_NS = 1_000_000
REPORT_IO_BUCKETS = 240
IO_PLOT_BINS = 60
#: What a report computes per capture (the per-datagram tables stay out: the report shows aggregates).
REPORT_PARTS = ("summary", "whatif", "io", "timeline")
COMPONENT_COLOURS = ("#dd8452", "#4c72b0", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


class ReportError(ValueError):
    """Bad inputs or output path, reported before any work starts."""


# ---------------------------------------------------------------------------
# Inputs


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files as given, directories walked for captures, globs expanded; sorted within each, deduplicated."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and str(f).endswith(CAPTURE_SUFFIXES))
            if not found:
                raise ReportError(f"{item}: no capture files ({', '.join(CAPTURE_SUFFIXES)}) in this directory")
            out.extend(found)
        elif p.is_file():
            out.append(str(p))
        elif any(ch in item for ch in "*?["):
            found = sorted(f for f in glob.glob(item, recursive=True) if Path(f).is_file())
            if not found:
                raise ReportError(f"{item}: the pattern matches no file")
            out.extend(found)
        else:
            raise ReportError(f"{item}: no such file or directory")
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------
# Plots


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # No software/date metadata: the same numbers give the same bytes in every process.
    fig.savefig(buf, format="png", dpi=FIG_DPI, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def plot_overhead(summary: pd.DataFrame, whatif: pd.DataFrame) -> bytes:
    """Mean framing bytes per relayed datagram, stacked by component, observed and re-encoded."""
    plt = _plt()
    from jpdissect.framing.jpy import MAX_OVERHEAD

    fig, axes = plt.subplots(1, 2, figsize=(FIG_WIDTH * 1.35, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    s = summary[summary["scheme"].isin(SCHEMES)].reset_index(drop=True)
    names = [f"{x}\n(n={n})" for x, n in zip(s["scheme"], s["datagrams"], strict=True)]
    left = [0.0] * len(names)
    for comp, colour in zip(COMPONENTS, COMPONENT_COLOURS, strict=True):
        vals = [float(v) if not pd.isna(v) else 0.0 for v in s[f"{comp}_mean"]]
        if any(vals):
            ax.barh(names, vals, left=left, color=colour, label=comp.removesuffix("_bytes").replace("_", " "))
            left = [a + b for a, b in zip(left, vals, strict=True)]
    for i, total in enumerate(left):
        ax.text(total + 0.5, i, f"{total:.1f} B", va="center", fontsize=9)
    top = max([MAX_OVERHEAD, *left]) * 1.2
    for a in axes:
        a.axvline(MAX_OVERHEAD, color="black", linestyle="--", linewidth=1)
        a.set_xlim(0, top)
    ax.text(MAX_OVERHEAD + 0.3, -0.45, f"draft bound {MAX_OVERHEAD} B (§4.3.3)", fontsize=8, va="top")
    ax.set_xlabel("mean framing bytes per relayed datagram (observed)")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4, frameon=False)
    ax.set_title("Overhead per scheme, by component (observed captures)")
    ax2 = axes[1]
    w = whatif[whatif["scheme"].isin(SCHEMES) & (whatif["datagrams"] > 0)].reset_index(drop=True)
    wn = [f"{x}\n(n={n})" for x, n in zip(w["scheme"], w["datagrams"], strict=True)]
    ax2.barh(wn, [float(v) for v in w["overhead_mean"]],
             color=[SCHEME_COLOURS.get(x, "#777777") for x in w["scheme"]])
    for i, v in enumerate(w["overhead_mean"]):
        ax2.text(float(v) + 0.5, i, f"{float(v):.1f} B", va="center", fontsize=9)
    ax2.invert_yaxis()
    ax2.set_xlabel("mean framing bytes, every datagram re-encoded")
    ax2.set_title("What-if: the same datagrams in every scheme")
    fig.tight_layout()
    return _png(fig)


def plot_radio_frames(hist: pd.DataFrame, relay_profile: str) -> bytes:
    """Share of datagrams needing N 802.15.4 frames, per scheme, same traffic."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 4.0))
    h = hist.astype({"radio_frames": "int64", "datagrams": "int64"})
    schemes = [s for s in [*SCHEMES, "pledge hop"] if s in set(h["scheme"])]
    schemes = [s for s in schemes if h[h["scheme"] == s]["datagrams"].sum() > 0]
    ks = sorted(set(h["radio_frames"]))
    width = 0.8 / max(len(schemes), 1)
    for i, s in enumerate(schemes):
        d = h[h["scheme"] == s]
        tot = d["datagrams"].sum()
        share = {int(k): 100.0 * v / tot for k, v in zip(d["radio_frames"], d["datagrams"], strict=True)}
        mean = sum(k * v for k, v in zip(d["radio_frames"], d["datagrams"], strict=True)) / tot
        ax.bar([k + (i - (len(schemes) - 1) / 2) * width for k in ks], [share.get(k, 0.0) for k in ks],
               width=width, color=SCHEME_COLOURS.get(s, "#777777"), label=f"{s} (n={tot}, mean {mean:.2f})")
    ax.set_xticks(ks)
    ax.set_xlabel("IEEE 802.15.4 frames per datagram (6LoWPAN fragments)")
    ax.set_ylabel("% of datagrams")
    ax.set_title(f"Radio frames per datagram, one hop ({relay_profile}; pledge hop for reference)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _key_label(label: str) -> str:
    """The one message that matters in a datagram's label (the plot has room for one word)."""
    parts = label.split("+")
    for name in KEY_MESSAGES:
        if name in parts:
            return TIMELINE_ABBREV[name]
    if label.startswith("CoAP "):
        return label.split()[1]  # the method, or the response code ("2.04")
    return TIMELINE_ABBREV.get(parts[0], parts[0][:6])


def plot_timeline(events: pd.DataFrame, title: str) -> bytes:
    """Each copy of each relayed datagram: one band per session, pledge hop above registrar hop."""
    plt = _plt()
    ev = events.astype({"session": "int64", "time": "float64"})
    sessions = sorted(set(ev["session"]))
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 1.0 + 0.9 * max(len(sessions), 1)))
    ypos = {s: i for i, s in enumerate(sessions)}
    lane = {"pledge": -0.18, "registrar": 0.18}
    for (leg, direction), grp in ev.groupby(["leg", "direction"], sort=True):
        ys = [ypos[s] + lane.get(str(leg), 0.0) for s in grp["session"]]
        ax.scatter(list(grp["time"]), ys, marker=">" if direction == "up" else "<", s=24,
                   color="#4c72b0" if leg == "pledge" else "#c44e52", label=f"{leg} hop, {direction}",
                   zorder=3)
    span = (ev["time"].max() - ev["time"].min()) if len(ev) else 1.0
    gap = max(span, 1e-6) * LABEL_GAP_FRACTION
    for sess, grp in ev[ev["leg"] == "pledge"].groupby("session", sort=True):
        # One label per burst (a flight and its answer take milliseconds, the axis seconds).
        bursts: list[tuple[float, list[str]]] = []
        for rec in grp.itertuples(index=False):
            short = _key_label(str(rec.label)) + ("↑" if rec.direction == "up" else "↓")
            if bursts and rec.time - bursts[-1][0] < gap:
                if bursts[-1][1][-1] != short:
                    bursts[-1][1].append(short)
            else:
                bursts.append((rec.time, [short]))
        for i, (t, names) in enumerate(bursts):
            text = " ".join(names[:MAX_BURST_LABELS]) + (" …" if len(names) > MAX_BURST_LABELS else "")
            ax.annotate(text, (t, ypos[sess] + lane["pledge"]), xytext=(-3, 6 + 9 * (i % LABEL_LEVELS)),
                        textcoords="offset points", fontsize=7, ha="left", color="#333333")
    ax.set_yticks(range(len(sessions)))
    ax.set_yticklabels([f"session {s}" for s in sessions])
    ax.set_ylim(len(sessions) - 0.45, -0.85)
    ax.set_xlabel("seconds since the first frame (labels: what the pledge sent ↑ / received ↓)")
    ax.set_title(title, pad=20)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
    fig.tight_layout()
    return _png(fig)


def plot_io(io_long: pd.DataFrame, title: str, interval: float) -> bytes:
    """Frames per interval on each hop, as bars one interval wide."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 3.2))
    d = io_long.astype({"interval_start": "float64", "frames": "int64"})
    # Re-bin to about IO_PLOT_BINS bars: a whole multiple of the collected interval, so exact.
    duration = float(d["interval_start"].max()) + interval if len(d) else interval
    k = max(1, math.ceil(duration / IO_PLOT_BINS / interval))
    interval *= k
    d["interval_start"] = (d["interval_start"] / interval + 1e-9).astype("int64") * interval
    legs = sorted(set(d["leg"]))
    width = interval / max(len(legs), 1)
    for i, (leg, grp) in enumerate(d.groupby("leg", sort=True)):
        g = grp.groupby("interval_start")["frames"].sum()
        ax.bar([x + i * width for x in g.index], list(g.values), width=width, align="edge",
               label=f"{leg} hop", color={"pledge": "#4c72b0", "registrar": "#c44e52"}.get(str(leg), "#999999"))
    ax.set_xlabel("seconds since the first frame")
    ax.set_ylabel(f"frames per {_fmt_interval(interval)}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _fmt_interval(s: float) -> str:
    if s >= 1:
        return f"{s:g} s"
    if s >= 1e-3:
        return f"{s * 1e3:g} ms"
    return f"{s * 1e6:g} µs"


# ---------------------------------------------------------------------------
# Workers


@dataclass
class Done:
    """One capture's result as a worker hands it back."""

    path: str
    stats: CaptureStats | None
    plots: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def work(path: str, opts: Options, draw: bool = True) -> Done:
    """Analyse one capture and draw its own plots (runs in a worker process)."""
    from jpdissect.capture import CaptureFormatError

    t0 = time.perf_counter()
    try:
        st = analyse(path, opts, REPORT_PARTS)
    except (CaptureFormatError, OSError) as exc:
        return Done(path, None, error=str(exc), seconds=time.perf_counter() - t0)
    plots: dict[str, bytes] = {}
    if draw:
        name = Path(path).name
        if st.events_df is not None and len(st.events_df):
            plots["timeline"] = plot_timeline(st.events_df, f"Handshake timeline per session: {name}")
        if st.io_long is not None and len(st.io_long):
            plots["io"] = plot_io(st.io_long, f"I/O over time: {name}", st.io_interval_ns / 1e9)
    return Done(path, st, plots, st.error, time.perf_counter() - t0)


def _warm(_: int) -> int:
    return os.getpid()


def _pool(jobs: int) -> ProcessPoolExecutor:
    import multiprocessing as mp
    from multiprocessing.context import BaseContext

    ctx: BaseContext
    try:
        ctx = mp.get_context("fork")  # workers inherit the imports: no per-worker start-up
    except ValueError:  # pragma: no cover - platforms without fork
        ctx = mp.get_context()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)


def run_batch(paths: Sequence[str], opts: Options, jobs: int = 0, progress: bool = True,
              on_done: Callable[[Done], None] | None = None) -> tuple[list[Done], int]:
    """Analyse every capture; returns the results in input order and the number of workers used."""
    jobs = jobs or os.cpu_count() or 1
    jobs = max(1, min(jobs, len(paths)))
    draw_for = set(paths[:MAX_CAPTURE_PLOTS])
    results: dict[str, Done] = {}
    _plt()  # import matplotlib before forking
    order = sorted(paths, key=lambda p: -_size(p))  # largest first: the batch ends together
    with _progress(progress, len(paths)) as advance:
        if jobs == 1:
            for p in order:
                d = work(p, opts, p in draw_for)
                results[p] = d
                advance(d)
                if on_done:
                    on_done(d)
        else:
            with _pool(jobs) as pool:
                list(pool.map(_warm, range(jobs)))  # start every worker before the progress thread runs
                futs: dict[Future[Done], str] = {pool.submit(work, p, opts, p in draw_for): p for p in order}
                from concurrent.futures import as_completed

                for f in as_completed(futs):
                    d = f.result()
                    results[futs[f]] = d
                    advance(d)
                    if on_done:
                        on_done(d)
    return [results[p] for p in paths], jobs


def _size(p: str) -> int:
    try:
        return os.path.getsize(p)
    except OSError:
        return 0


class _progress:
    """A rich progress bar on stderr (or nothing), as a context giving an ``advance(done)`` callable."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[Done], None]:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]analysing[/]"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.description}"),
                                console=Console(stderr=True), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("", total=self.total)
        return self.advance

    def advance(self, d: Done) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=Path(d.path).name)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------------------
# Merging and writing


@dataclass
class Report:
    captures: list[Done]
    summary: pd.DataFrame
    claims: pd.DataFrame
    whatif: pd.DataFrame
    frames_hist: pd.DataFrame
    inventory: pd.DataFrame
    assumptions: list[str]
    profiles: list[str]
    plots: dict[str, bytes]
    frames: int = 0
    workers: int = 1
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(1 for d in self.captures if d.stats is None)


def merge(done: Sequence[Done], opts: Options) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Summary, what-if and frames histogram of the whole batch, merged in input order."""
    aggs: dict[str, SchemeAgg] = {}
    wagg: dict[str, _Agg] = {}
    wpledge = _Agg()
    observed: Counter[str] = Counter()
    hist: Counter[tuple[str, int]] = Counter()
    for d in done:
        st = d.stats
        if st is None:
            continue
        for k, a in st.summary_aggs.items():
            aggs.setdefault(k, SchemeAgg()).merge(a)
        for k, a in st.whatif_aggs.items():
            wagg.setdefault(k, _Agg()).merge(a)
        if st.whatif_pledge is not None:
            wpledge.merge(st.whatif_pledge)
        observed.update(st.whatif_observed)
    for k, w in [*wagg.items(), ("pledge hop", wpledge)]:
        for f, n in w.frames.items():
            hist[(k, f)] += n
    from jpdissect.stats import _arrow as A

    keys = sorted(hist, key=lambda kf: ([*SCHEMES, "pledge hop"].index(kf[0])
                                        if kf[0] in (*SCHEMES, "pledge hop") else 99, kf[1]))
    hist_df = A.frame({"scheme": (A.STR, [k[0] for k in keys]), "radio_frames": (A.I32, [k[1] for k in keys]),
                       "datagrams": (A.I64, [hist[k] for k in keys])})
    return summary_frame(aggs), whatif_frame(wagg, wpledge, observed), hist_df


def _inventory(done: Sequence[Done]) -> pd.DataFrame:
    from jpdissect.stats import _arrow as A

    rows = []
    for d in done:
        st = d.stats
        schemes = ""
        if st is not None:
            schemes = ", ".join(s for s in SCHEMES if s in st.summary_aggs) or "-"
        rows.append({
            "capture": d.path, "frames": st.frames if st else None, "duration_s": st.duration if st else None,
            "pledges": st.sessions_seen if st else None, "relayed": st.relayed - st.not_relayed if st else None,
            "unpaired": st.unpaired if st else None, "schemes": schemes, "error": d.error,
        })
    return A.from_records(rows, {"capture": A.STR, "frames": A.I64, "duration_s": A.F64, "pledges": A.I64,
                                 "relayed": A.I64, "unpaired": A.I64, "schemes": A.STR, "error": A.STR})


def build_report(paths: Sequence[str], out: str, opts: Options, jobs: int = 0, progress: bool = True,
                 title: str = "Join Proxy overhead report") -> Report:
    """Analyse ``paths`` and write the report to ``out`` (``.html``/``.htm`` or ``.md``)."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".html", ".htm", ".md", ".markdown"):
        raise ReportError(f"{out}: the report is written as .html or .md")
    if not paths:
        raise ReportError("no captures to report on")
    opts.check()
    t0 = time.perf_counter()
    if opts.io_max_buckets > REPORT_IO_BUCKETS:
        opts = replace(opts, interval_ns=min(opts.interval_ns, REPORT_IO_BASE_NS), io_max_buckets=REPORT_IO_BUCKETS)
    done, workers = run_batch(paths, opts, jobs, progress)
    rep = assemble(done, opts, title)
    rep.workers = workers
    rep.seconds = time.perf_counter() - t0
    write_report(rep, out, title, opts)
    return rep


def assemble(done: Sequence[Done], opts: Options, title: str = "") -> Report:
    summary, whatif, hist = merge(done, opts)
    rp, pp = radio.profile(opts.relay_profile), radio.profile(opts.pledge_profile)
    plots: dict[str, bytes] = {}
    if len(summary):
        plots["overhead"] = plot_overhead(summary, whatif)
    if len(hist):
        plots["radio_frames"] = plot_radio_frames(hist, rp.name)
    return Report(list(done), summary, claims(summary), whatif, hist, _inventory(done),
                  assumptions(rp, pp), [f"Pledge hop: {pp.describe()}", f"Registrar hop: {rp.describe()}"],
                  plots, frames=sum(d.stats.frames for d in done if d.stats is not None))


def _claims_sentence(cl: pd.DataFrame) -> list[str]:
    out = []
    for rec in cl.to_dict("records"):
        verdict = "holds" if rec["holds"] else "does NOT hold"
        out.append(f"{rec['claim']} -- {rec['scheme']}: {verdict} (observed {rec['observed']} over "
                   f"{rec['datagrams']} relayed datagrams)")
    return out


def _sections(rep: Report) -> list[tuple[str, Any]]:
    """The report's content in order: ("table", Table) | ("plot", (key, caption)) | ("text", str)."""
    sec: list[tuple[str, Any]] = []
    jpy = rep.claims[rep.claims["scheme"] == "jpy"]
    if len(jpy):
        sec.append(("h2", "The draft's claims on this traffic"))
        sec.append(("list", _claims_sentence(jpy)))
    else:
        sec.append(("text", "No JPY traffic in these captures: the draft's JPY claims (3-6 bytes of CBOR, "
                            "at most 38 bytes) cannot be checked on it; the what-if table below applies "
                            "JPY to the observed datagrams instead."))
    sec.append(("table", Table("The same traffic under every scheme (what-if)", rep.whatif, rep.assumptions)))
    sec.append(("plot", ("overhead", "Overhead per scheme")))
    sec.append(("plot", ("radio_frames", "Radio frames per datagram")))
    sec.append(("table", Table("Relayed traffic per scheme (observed)", rep.summary, rep.profiles)))
    sec.append(("table", Table("Overhead claims, every scheme", rep.claims,
                               ["'relay overhead <= 38 bytes' is the draft's bound for JPY (32-byte header); "
                                "other schemes are measured against it for comparison"])))
    sec.append(("table", Table("Captures", rep.inventory)))
    for d in rep.captures:
        if d.stats is None:
            continue
        name = Path(d.path).name
        sec.append(("h2", f"Capture {name}"))
        if d.stats.sessions_df is not None and len(d.stats.sessions_df):
            sec.append(("table", Table(f"Sessions: {name}", d.stats.sessions_df.drop(columns=["capture"]))))
        if "timeline" in d.plots:
            sec.append(("plot", (f"{d.path}::timeline", f"Handshake timeline: {name}")))
        if "io" in d.plots:
            sec.append(("plot", (f"{d.path}::io", f"I/O over time: {name}")))
    return sec


def _all_plots(rep: Report) -> dict[str, bytes]:
    plots = dict(rep.plots)
    for d in rep.captures:
        for k, v in d.plots.items():
            plots[f"{d.path}::{k}"] = v
    return plots


def _plot_files(rep: Report, out: str) -> dict[str, str]:
    """Write every PNG to ``<out stem>_files/``; returns key -> path relative to the report."""
    plots = _all_plots(rep)
    folder = Path(out).with_name(Path(out).stem + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    used: set[str] = set()
    for k, data in plots.items():
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in
                       (Path(k.split("::")[0]).name + "-" + k.split("::")[1] if "::" in k else k))
        fname = base + ".png"
        i = 1
        while fname in used:
            i += 1
            fname = f"{base}-{i}.png"
        used.add(fname)
        (folder / fname).write_bytes(data)
        names[k] = f"{folder.name}/{fname}"
    return names


def write_report(rep: Report, out: str, title: str, opts: Options) -> None:
    files = _plot_files(rep, out)
    head = [f"{len(rep.captures)} capture(s), {rep.frames} frames, analysed by {rep.workers} worker process(es) "
            f"in {rep.seconds:.1f} s"]
    if Path(out).suffix.lower() in (".md", ".markdown"):
        Path(out).write_text(_markdown(rep, title, head, files))
    else:
        Path(out).write_text(_html(rep, title, head, _all_plots(rep)))


def _markdown(rep: Report, title: str, head: list[str], files: dict[str, str]) -> str:
    out = [f"# {title}", "", *head, ""]
    for kind, x in _sections(rep):
        if kind == "h2":
            out += [f"## {x}", ""]
        elif kind == "text":
            out += [x, ""]
        elif kind == "list":
            out += [f"- {s}" for s in x] + [""]
        elif kind == "table":
            out += [markdown_table(x, 3), ""]
        elif kind == "plot" and x[0] in files:
            out += [f"![{x[1]}]({files[x[0]]})", ""]
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:2px 6px}
th{background:#f0f0f0}td.n{text-align:right}.notes{font-size:12px;color:#555}img{max-width:100%}
.ok{color:#1a7f37;font-weight:bold}.bad{color:#b42318;font-weight:bold}"""


def _html_table(t: Table) -> str:
    from jpdissect.stats.formats import _cell

    numeric = [pd.api.types.is_numeric_dtype(t.df[c]) for c in t.df.columns]
    rows = ["<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in t.df.columns) + "</tr>"]
    for rec in t.df.itertuples(index=False, name=None):
        rows.append("<tr>" + "".join(f"<td class=\"n\">{html.escape(_cell(v))}</td>" if n else
                                     f"<td>{html.escape(_cell(v))}</td>" for v, n in zip(rec, numeric, strict=True))
                    + "</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in t.notes)
    return (f"<h3>{html.escape(t.title)}</h3><table>{''.join(rows)}</table>"
            + (f"<ul class=\"notes\">{notes}</ul>" if notes else ""))


def _html(rep: Report, title: str, head: list[str], plots: dict[str, bytes]) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    out += [f"<p>{html.escape(h)}</p>" for h in head]
    for kind, x in _sections(rep):
        if kind == "h2":
            out.append(f"<h2>{html.escape(x)}</h2>")
        elif kind == "text":
            out.append(f"<p>{html.escape(x)}</p>")
        elif kind == "list":
            items = []
            for s in x:
                cls = "bad" if "does NOT hold" in s else "ok"
                items.append(f"<li class=\"{cls}\">{html.escape(s)}</li>")
            out.append("<ul>" + "".join(items) + "</ul>")
        elif kind == "table":
            out.append(_html_table(x))
        elif kind == "plot" and x[0] in plots:
            b64 = base64.b64encode(plots[x[0]]).decode("ascii")
            out.append(f"<figure><img alt=\"{html.escape(x[1])}\" src=\"data:image/png;base64,{b64}\">"
                       f"<figcaption>{html.escape(x[1])}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


__all__ = ["CAPTURE_SUFFIXES", "Done", "Report", "ReportError", "assemble", "build_report", "expand_inputs",
           "merge", "run_batch", "work", "write_report"]
