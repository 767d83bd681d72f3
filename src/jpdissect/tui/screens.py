"""Modal screens: help, go to frame, save, follow a pledge session, statistics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Static,
    TabbedContent,
    TabPane,
)

from jpdissect.tui.index import ExtractRun, PacketSource, Progress, StatsRun

if TYPE_CHECKING:
    from textual_plotext import PlotextPlot


def _progress_line(p: Progress, what: str) -> Text:
    t = Text()
    if p.running:
        frac = p.fraction
        if frac is not None:
            k = int(frac * 20)
            t.append(f"{what}: [{'█' * k}{'░' * (20 - k)}] {frac * 100:.0f}%  ", "yellow")
        else:
            t.append(f"{what}: {p.done:,} frames read…  ", "yellow")
        t.append("Esc cancels", "dim")
    elif p.error:
        t.append(f"{what} stopped: {p.error}", "red")
    else:
        t.append(f"{what}: done, {p.done:,} frames in {p.seconds:.1f} s", "green")
    return t


# ---------------------------------------------------------------------------
# Help


def binding_rows(classes: Iterable[type]) -> list[tuple[str, str, str]]:
    """(where, key, what) for every binding of the given widget/screen/app classes."""
    rows: list[tuple[str, str, str]] = []
    for cls in classes:
        where = cls.__dict__.get("HELP_NAME") or {"Tree": "Detail tree"}.get(cls.__name__, cls.__name__)
        for b in getattr(cls, "BINDINGS", []):
            if isinstance(b, Binding):
                key, desc = b.key, b.description
            else:
                key, desc = b[0], (b[2] if len(b) > 2 else b[1])
            key = key.replace("question_mark", "?").replace("left_square_bracket", "[")
            key = key.replace("right_square_bracket", "]").replace("slash", "/")
            rows.append((where, key, desc))
    return rows


MOUSE_HELP = [
    ("Mouse", "click a row", "select that frame"),
    ("Mouse", "click a tree line / ▶", "highlight its bytes / expand or collapse"),
    ("Mouse", "wheel, scrollbars", "scroll any pane"),
    ("Mouse", "click a footer key", "run that command"),
]


class HelpScreen(ModalScreen[None]):
    """Every key of every pane, generated from the bindings so it cannot go stale."""

    HELP_NAME = "Help"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; height: 90%; border: thick $accent; background: $surface; }
    HelpScreen DataTable { height: 1fr; }
    """

    def __init__(self, sources: Iterable[type]) -> None:
        super().__init__()
        self.sources = list(sources)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("jpdissect — keys (Esc closes)", style="bold"))
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        t = self.query_one(DataTable)
        t.add_columns("Where", "Key", "Does")
        for row in binding_rows(self.sources) + MOUSE_HELP:
            t.add_row(*row)
        t.focus()


# ---------------------------------------------------------------------------
# Go to frame


class GotoScreen(ModalScreen[int | None]):
    HELP_NAME = "Go to frame"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    GotoScreen { align: center middle; }
    GotoScreen > Vertical { width: 50; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Go to frame number:")
            yield Input(type="integer", id="goto-input", placeholder="e.g. 1234")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.dismiss(int(event.value))
        except ValueError:
            self.dismiss(None)


# ---------------------------------------------------------------------------
# Save


class SaveScreen(ModalScreen[tuple[str, str] | None]):
    """File name and which frames: the displayed (filtered) ones, the marked ones, or all."""

    HELP_NAME = "Save"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    SaveScreen { align: center middle; }
    SaveScreen > Vertical { width: 70; height: auto; border: thick $accent; background: $surface; padding: 0 1; }
    SaveScreen RadioSet { width: 100%; }
    """

    def __init__(self, default_path: str, displayed: int, marked: int, total: int) -> None:
        super().__init__()
        self.default_path = default_path
        self.counts = (displayed, marked, total)

    def compose(self) -> ComposeResult:
        d, m, t = self.counts
        with Vertical():
            yield Label("Save frames as pcapng:")
            yield Input(self.default_path, id="save-path")
            with RadioSet(id="save-which"):
                yield RadioButton(f"Displayed (filtered) frames: {d:,}", value=True, id="displayed")
                yield RadioButton(f"Marked frames: {m:,}", id="marked", disabled=not m)
                yield RadioButton(f"All frames: {t:,}", id="all")
            with Horizontal():
                yield Button("Save", variant="primary", id="save-ok")
                yield Button("Cancel", id="save-cancel")

    def _which(self) -> str:
        rs = self.query_one(RadioSet)
        btn = rs.pressed_button
        return btn.id if btn is not None and btn.id else "displayed"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss((event.value, self._which()))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save-ok":
            self.dismiss((self.query_one("#save-path", Input).value, self._which()))
        else:
            self.dismiss(None)


# ---------------------------------------------------------------------------
# Follow a pledge session


def _leg_of(row: dict[str, Any], multi_if: bool) -> int:
    """0 = pledge hop, 1 = Join Proxy <-> Registrar hop, by the best evidence available."""
    leg = row["values"].get("jp.leg")
    if leg:
        v = leg[0]
        if isinstance(v, int):
            return 0 if v == 0 else 1
        return 0 if "pledge" in str(v).lower() else 1
    if multi_if:
        return 0 if row["interface_id"] == 0 else 1
    # DESIGN: pledges are link-local only; the relay leg is routable.
    return 0 if row["src"].startswith("fe80:") or row["dst"].startswith("fe80:") else 1


def align_twins(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any] | None, str, dict[str, Any] | None]]:
    """(pledge-hop frame, forward delay, relay-hop frame) lines, twins on one line.

    Twins are what the ``jp`` dissector links with ``jp.peer_frame`` (the same datagram
    before and after the Join Proxy); the delay is its ``jp.forward_delay``. Frames
    without a twin (lost before relaying, or the proxy's own traffic) stand alone.
    """
    multi_if = len({r["interface_id"] for r in rows}) > 1
    by_number = {r["number"]: r for r in rows}
    used: set[int] = set()
    out: list[tuple[dict[str, Any] | None, str, dict[str, Any] | None]] = []
    for r in rows:
        if r["number"] in used:
            continue
        used.add(r["number"])
        peer_no = (r["values"].get("jp.peer_frame") or [None])[0]
        peer = by_number.get(peer_no) if isinstance(peer_no, int) else None
        if peer is not None and peer["number"] in used:
            peer = None
        delay = ""
        if peer is not None:
            used.add(peer["number"])
            d = r["shown"].get("jp.forward_delay") or peer["shown"].get("jp.forward_delay")
            delay = d[0] if d else f"{abs(peer['ts_ns'] - r['ts_ns']) / 1e6:.3f} ms"
        if _leg_of(r, multi_if) == 0:
            out.append((r, delay, peer))
        else:
            out.append((peer, delay, r))
    return out


class FollowScreen(Screen[int | None]):
    """Both legs of one session, each datagram next to its relayed twin, with forward delays."""

    HELP_NAME = "Follow session"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close / cancel"),
        Binding("enter", "goto", "Go to frame"),
    ]
    DEFAULT_CSS = """
    FollowScreen { layout: vertical; overflow: hidden; }
    FollowScreen DataTable { height: 1fr; }
    FollowScreen #follow-title { height: auto; background: $primary-darken-2; }
    """

    def __init__(self, source: PacketSource, run: ExtractRun, title: str) -> None:
        super().__init__()
        self.source = source
        self.run = run
        self.title_text = title
        self._shown = -1
        self.lines: list[tuple[dict[str, Any] | None, str, dict[str, Any] | None]] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title_text, style="bold"), id="follow-title")
        yield Static("", id="follow-progress")
        yield DataTable(id="follow-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self._columns(self.size.width)
        self.set_interval(0.3, self.refresh_rows)
        self.refresh_rows()
        self.query_one(DataTable).focus()

    def _columns(self, width: int) -> None:
        """Both legs share the width equally, so a twin is always on screen next to its copy."""
        t = self.query_one(DataTable)
        self._summary_w = max(12, (width - 2 - (6 + 9 + 11 + 6 + 9) - 7 * 2) // 2)
        t.clear(columns=True)
        w = self._summary_w
        for title, cw in (("Pledge hop", 6), ("Time", 9), ("pledge ↔ JP", w), ("Fwd delay", 11),
                          ("Relay hop", 6), ("Time", 9), ("JP ↔ Registrar", w)):
            t.add_column(title, width=cw)
        self._shown = -1

    def on_resize(self, event: Any) -> None:
        self._columns(event.size.width)
        self.refresh_rows()

    def refresh_rows(self) -> None:
        self.query_one("#follow-progress", Static).update(_progress_line(self.run.progress, "Collecting"))
        rows = list(self.run.rows)
        if len(rows) == self._shown and not self.run.progress.running:
            return
        self._shown = len(rows)
        self.lines = align_twins(rows)
        t = self.query_one(DataTable)
        cur = t.cursor_row
        t.clear()
        for a, delay, b in self.lines:
            t.add_row(*_half(a), _delay(delay), *_half(b))
        if self.lines:
            t.move_cursor(row=min(cur, len(self.lines) - 1))
        legs = sum(1 for a, _, b in self.lines if a is not None and b is not None)
        title = Text(self.title_text, style="bold")
        title.append(f" — {len(rows)} frames, {legs} relayed twins", "")
        self.query_one("#follow-title", Static).update(title)

    def action_goto(self) -> None:
        t = self.query_one(DataTable)
        if 0 <= t.cursor_row < len(self.lines):
            a, _, b = self.lines[t.cursor_row]
            r = a or b
            if r is not None:
                self.dismiss(r["index"])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_goto()

    def action_close(self) -> None:
        if self.run.progress.running:
            self.run.cancel()
        else:
            self.dismiss(None)


def _half(r: dict[str, Any] | None) -> tuple[str, str, Text]:
    if r is None:
        return ("", "", Text(""))
    d = (r["values"].get("jp.direction") or [""])[0]
    arrow = "↑ " if d == "up" else "↓ " if d == "down" else ""
    return (str(r["number"]), f"{r['rel_ns'] / 1e9:.4f}",
            Text(f"{arrow}{r['info']}", no_wrap=True, overflow="ellipsis"))


def _delay(shown: str) -> str:
    """``0.002841411 seconds`` -> ``2.841 ms``: the column is narrow and delays are small."""
    try:
        v = float(shown.split()[0])
    except (ValueError, IndexError):
        return shown
    return f"{v * 1e3:.3f} ms" if "second" in shown else shown


# ---------------------------------------------------------------------------
# Statistics


#: The session-table columns worth a screen's width (the rest is in ``jpdissect sessions``).
SESSION_COLUMNS = (
    "session", "scheme", "pledge", "registrar", "outcome", "handshake_duration", "first_frame",
    "last_frame", "up_pledge_datagrams", "down_pledge_datagrams", "registrar_overhead_bytes",
    "forwarded", "unforwarded", "forward_delay_up_mean", "forward_delay_down_mean",
    "retransmissions_up", "retransmissions_down", "alerts",
    # DTLS session table (dtls_sessions) when there are no pledge sessions
    "client", "server", "version", "cipher_suite", "complete", "flights", "retransmissions",
)


class StatsScreen(Screen[int | None]):
    """Overhead per scheme (plotted), sessions, expert info and protocols, filling in as the pass runs."""

    HELP_NAME = "Statistics"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close / cancel"),
        Binding("enter", "goto", "Go to first frame", show=False),
    ]
    DEFAULT_CSS = """
    StatsScreen { layout: vertical; overflow: hidden; }
    StatsScreen #stats-progress { height: 1; }
    StatsScreen TabbedContent { height: 1fr; }
    StatsScreen TabPane { height: 1fr; padding: 0; }
    StatsScreen DataTable { height: 1fr; }
    StatsScreen #stats-plot { height: 1fr; min-height: 6; }
    StatsScreen #overhead-table { height: auto; max-height: 10; }
    """

    def __init__(self, source: PacketSource, run: StatsRun) -> None:
        super().__init__()
        self.source = source
        self.run = run
        self._seen: Any = None
        self._expert_rows: list[int] = []
        self._session_rows: list[int] = []

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        yield Static("", id="stats-progress")
        with TabbedContent(id="stats-tabs"):
            with TabPane("Overhead", id="tab-overhead"):
                yield PlotextPlot(id="stats-plot")
                yield DataTable(id="overhead-table", cursor_type="row")
            with TabPane("Sessions", id="tab-sessions"):
                yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Expert info", id="tab-experts"):
                yield DataTable(id="experts-table", cursor_type="row", zebra_stripes=True)
            with TabPane("Protocols", id="tab-protocols"):
                yield DataTable(id="protocols-table", cursor_type="row")
            with TabPane("Notes", id="tab-notes"), VerticalScroll():
                yield Static("", id="stats-notes")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(0.5, self.refresh_stats)
        self.refresh_stats()

    def refresh_stats(self) -> None:
        p = self.run.progress
        line = _progress_line(p, "Statistics pass")
        rp = getattr(self.source, "rowpass", None)
        if rp is not None and rp.running:
            line.append(f"   (expert info: in-order pass at {rp.done:,} frames)", "dim")
        self.query_one("#stats-progress", Static).update(line)
        self._fill_experts()
        snap = self.run.snapshot
        if snap is None or snap is self._seen:
            return
        self._seen = snap
        self._fill_overhead(snap)
        self._fill_sessions(snap)
        self._fill_protocols(snap)
        notes = snap.get("notes") or []
        self.query_one("#stats-notes", Static).update("\n".join(notes) or "Nothing missing.")

    def _fill_overhead(self, snap: dict[str, Any]) -> None:
        plot: PlotextPlot = self.query_one("#stats-plot")  # type: ignore[assignment]
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        ov: dict[str, tuple[float, int]] = snap.get("overhead") or {}
        schemes: dict[str, tuple[int, int]] = snap.get("schemes") or {}
        if ov:
            names = sorted(ov)
            plt.bar(names, [round(ov[n][0], 1) for n in names])
            plt.title("Mean relay overhead per datagram (bytes), by scheme")
        elif schemes:
            names = sorted(schemes)
            plt.bar(names, [schemes[n][1] for n in names])
            plt.title("Bytes per scheme (jp.overhead not available)")
        else:
            plt.title("No scheme information: see the Notes tab")
        plot.refresh()
        t = self.query_one("#overhead-table", DataTable)
        t.clear(columns=True)
        t.add_columns("Scheme", "Frames", "Bytes", "Relayed datagrams", "Mean overhead (B)")
        for n in sorted(set(schemes) | set(ov)):
            f, b = schemes.get(n, (0, 0))
            m, k = ov.get(n, (0.0, 0))
            t.add_row(n, f"{f:,}", f"{b:,}", f"{k:,}", f"{m:.1f}" if k else "")

    def _fill_sessions(self, snap: dict[str, Any]) -> None:
        t = self.query_one("#sessions-table", DataTable)
        t.clear(columns=True)
        rows = snap.get("pledge_sessions")
        if not rows:
            rows = snap.get("dtls_sessions") or []
        if not rows:
            t.add_column("No sessions found")
            return
        cols = [c for c in SESSION_COLUMNS if c in rows[0]] or [
            c for c in rows[0] if not c.endswith("_random")]
        t.add_columns(*cols)
        self._session_rows = []
        for r in rows:
            t.add_row(*[_fmt(r.get(c)) for c in cols])
            ff = r.get("first_frame")
            self._session_rows.append(ff - 1 if isinstance(ff, int) and ff > 0 else -1)

    def _fill_protocols(self, snap: dict[str, Any]) -> None:
        t = self.query_one("#protocols-table", DataTable)
        t.clear(columns=True)
        t.add_columns("Protocol (top layer)", "Frames", "%")
        total = snap.get("frames") or 1
        for name, n in (snap.get("protocols") or {}).items():
            t.add_row(name or "(none)", f"{n:,}", f"{100 * n / total:.1f}")

    def _fill_experts(self) -> None:
        entries = self.source.experts.sorted()
        key = tuple((e.severity, e.message, e.count) for e in entries)
        if key == getattr(self, "_experts_key", None):
            return
        self._experts_key = key
        t = self.query_one("#experts-table", DataTable)
        cur = t.cursor_row
        t.clear(columns=True)
        t.add_columns("Severity", "Group", "Protocol", "Count", "Summary", "First frames")
        names = {5: "Error", 4: "Warning", 3: "Note", 2: "Chat", 1: "Comment"}
        styles = {5: "bold red", 4: "yellow", 3: "cyan", 2: "blue", 1: "green"}
        self._expert_rows = []
        for e in entries:
            t.add_row(Text(names.get(e.severity, str(e.severity)), style=styles.get(e.severity, "")),
                      e.group, e.proto, f"{e.count:,}", e.message,
                      ", ".join(str(f) for f in e.frames[:8]) + (" …" if len(e.frames) > 8 else ""))
            self._expert_rows.append(e.frames[0] - 1 if e.frames else -1)
        if entries:
            t.move_cursor(row=min(max(cur, 0), len(entries) - 1))

    def action_goto(self) -> None:
        for tid, rows in (("#experts-table", self._expert_rows), ("#sessions-table", self._session_rows)):
            t = self.query_one(tid, DataTable)
            if t.has_focus and 0 <= t.cursor_row < len(rows):
                idx = rows[t.cursor_row]
                if idx >= 0:
                    self.dismiss(idx)
                return

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id in ("experts-table", "sessions-table"):
            self.action_goto()

    def action_close(self) -> None:
        if self.run.progress.running and not self.source.live:
            self.run.cancel()
        else:
            self.dismiss(None)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return str(v)
