"""The three Wireshark panes and the filter bar, as Textual widgets.

The packet list is a line-API ``ScrollView``: it renders only the rows on screen and asks
the :class:`~jpdissect.tui.index.View` for them, so a million rows cost nothing until
they are looked at. The detail tree and the hex pane show one frame's fresh full tree and
its data sources, and talk through the byte span of the highlighted node
(``node.offset``/``node.length`` in ``pkt.sources[node.src]``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.suggester import Suggester
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from jpdissect.model import FIELDS, Expert, Layer, Node, Packet, Severity
from jpdissect.tui.index import PacketSource, View
from jpdissect.tui.rows import Row

# ---------------------------------------------------------------------------
# Packet list


@dataclass
class Column:
    title: str
    natural: int
    minimum: int
    right: bool = False
    middle: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("No.", 7, 3, True),
    Column("Time", 11, 8, True),
    Column("Source", 24, 11, middle=True),
    Column("Destination", 24, 11, middle=True),
    Column("Protocol", 9, 8),
    Column("Length", 6, 4, True),
    Column("Scheme/Session", 14, 8),
    Column("Info", 60, 18),
)


def fit_columns(width: int, number_width: int = 7, time_width: int = 11) -> list[int]:
    """Column widths for a list ``width`` cells wide.

    No. and Time are as wide as the capture's largest values; then natural widths when they
    fit, otherwise addresses, scheme and Info shrink to their minimums, and whatever still
    does not fit is reached by scrolling sideways (←/→).
    """
    gaps = len(COLUMNS) - 1
    w = [c.natural for c in COLUMNS]
    w[0] = max(3, number_width)
    w[1] = max(4, time_width)
    total = sum(w) + gaps
    if total <= width:
        w[-1] += width - total  # Info takes the slack
        return w
    # Shrink the shrinkable columns in turn, not below their minimums; Source and
    # Destination shrink together so neither is cut more than the other.
    over = total - width
    for group in ((7,), (2, 3), (6,), (5,), (4,)):
        floor = 36 if group == (7,) else None
        while over > 0:
            progressed = False
            for i in group:
                lo = floor if floor is not None else COLUMNS[i].minimum
                if over > 0 and w[i] > lo:
                    w[i] -= 1
                    over -= 1
                    progressed = True
            if not progressed:
                break
    if over > 0:
        give = min(over, w[7] - COLUMNS[7].minimum)
        w[7] -= give
    return w


def _cell(text: str, width: int, right: bool = False, middle: bool = False) -> str:
    """Pad or cut to ``width``; addresses are cut in the middle, where they repeat least."""
    if len(text) > width:
        if width <= 1:
            return text[:width]
        if middle and width >= 7:
            head = (width - 1) // 2
            return text[:head] + "…" + text[len(text) - (width - 1 - head):]
        return text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def row_cells(row: Row) -> list[str]:
    return [str(row.number), f"{row.rel_ns / 1e9:.6f}", row.src, row.dst, row.protocol,
            str(row.length), row.scheme, row.info]


class PacketList(ScrollView, can_focus=True):
    """The virtualised packet list: header line plus one line per displayed frame."""

    HELP_NAME = "Packet list"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "packet-list--header", "packet-list--cursor", "packet-list--marked",
        "packet-list--provisional", "packet-list--malformed", "packet-list--pending",
    }

    DEFAULT_CSS = """
    PacketList { background: $surface; overflow-y: scroll; }
    PacketList > .packet-list--header { text-style: bold; background: $primary-darken-2; color: $text; }
    PacketList > .packet-list--cursor { background: $accent; color: $text; text-style: bold; }
    PacketList:blur > .packet-list--cursor { background: $accent-darken-2; text-style: none; }
    PacketList > .packet-list--marked { background: $warning-darken-3; color: $text; }
    PacketList > .packet-list--provisional { color: $text-muted; text-style: italic; }
    PacketList > .packet-list--malformed { color: $error; }
    PacketList > .packet-list--pending { color: $text-disabled; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    class Selected(Message):
        """The cursor moved to frame ``index`` (0-based), or to nothing (``None``)."""

        def __init__(self, index: int | None) -> None:
            super().__init__()
            self.index = index

    def __init__(self, view: View, marks: set[int], **kw: Any) -> None:
        super().__init__(**kw)
        self.view = view
        self.marks = marks
        self.widths = fit_columns(80)
        self.follow_tail = False
        self._last_selected: int | None = -1
        #: Frame to re-select once a running filter has found it (set by :meth:`set_view`).
        self.pending_keep: int | None = None
        self._width: tuple[int, int, int] = (-1, 0, 0)

    # -- data ----------------------------------------------------------------------------------
    def set_view(self, view: View, keep_index: int | None = None) -> None:
        """Show another view (new filter), keeping the selected frame if it is still shown."""
        self.view = view
        self.refresh_size()
        row = view.row_of(keep_index) if keep_index is not None else None
        self.pending_keep = keep_index if row is None and view.run is not None else None
        self.scroll_to(y=0, animate=False)
        self.cursor = min(row or 0, max(0, len(view) - 1))
        self.scroll_to_cursor(center=True)
        self.refresh()

    def refresh_size(self) -> None:
        width = max(self.scrollable_content_region.width, 20)
        src = self.view.source
        nw = len(str(src.count()))
        tw = len(f"{src.last_rel_ns() / 1e9:.6f}")
        if (width, nw, tw) != self._width:
            self._width = (width, nw, tw)
            self.widths = fit_columns(width, nw, tw)
        total = sum(self.widths) + len(self.widths) - 1
        self.virtual_size = Size(total if total > width else 0, len(self.view) + 1)

    def grew(self) -> None:
        """More rows arrived (scan, filter, live capture): resize, follow the tail if asked."""
        n = len(self.view)
        self.refresh_size()
        keep = self.pending_keep
        if keep is not None:
            row = self.view.row_of(keep)
            run = self.view.run
            if row is not None:
                self.move_to_row(row, center=True)
            elif run is None or run.done:
                self.pending_keep = None
        if self.follow_tail and n:
            self.cursor = n - 1
            self.scroll_to_cursor()
        elif self.selected_index != self._last_selected:
            self.cursor = self.cursor  # rows appeared under the cursor: announce the selection
        self.refresh()

    @property
    def selected_index(self) -> int | None:
        n = len(self.view)
        if not n or not 0 <= self.cursor < n:
            return None
        return self.view.index_at(self.cursor)

    # -- rendering -----------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        self.refresh_size()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if width != self._width[0]:
            self.refresh_size()
        total = sum(self.widths) + len(self.widths) - 1
        if y == 0:
            text = " ".join(_cell(c.title, w, c.right) for c, w in zip(COLUMNS, self.widths, strict=True))
            text = text.ljust(total)
            style = self.get_component_rich_style("packet-list--header")
            return Strip([Segment(text, style)], total).crop_extend(scroll_x, scroll_x + width, style)
        r = scroll_y + y - 1
        base = self.rich_style
        if r >= len(self.view):
            return Strip.blank(width, base)
        index = self.view.index_at(r)
        row = self.view.source.row(index)
        if row is None:
            text = _cell(str(index + 1), self.widths[0], True) + " …"
            style = base + self.get_component_rich_style("packet-list--pending")
        else:
            text = " ".join(_cell(v, w, c.right, c.middle)
                            for v, w, c in zip(row_cells(row), self.widths, COLUMNS, strict=True))
            style = base
            if not row.exact:
                style += self.get_component_rich_style("packet-list--provisional")
            if "[Malformed" in row.info:
                style += self.get_component_rich_style("packet-list--malformed")
        if index in self.marks:
            style += self.get_component_rich_style("packet-list--marked")
        if r == self.cursor:
            style += self.get_component_rich_style("packet-list--cursor")
        text = text.ljust(total)
        return Strip([Segment(text, style)], total).crop_extend(scroll_x, scroll_x + width, style)

    # -- cursor --------------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        n = len(self.view)
        if n and not 0 <= new < n:
            self.cursor = max(0, min(new, n - 1))
            return
        self.refresh()
        idx = self.selected_index
        if idx != self._last_selected:
            self._last_selected = idx
            self.post_message(self.Selected(idx))

    def scroll_to_cursor(self, center: bool = False) -> None:
        h = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_y)
        if center:
            self.scroll_to(y=max(0, self.cursor - h // 2), animate=False)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + h:
            self.scroll_to(y=self.cursor - h + 1, animate=False)

    def move_to_row(self, row: int, center: bool = False) -> None:
        """Put the cursor on display row ``row``; the user's choice beats a pending re-select."""
        self.pending_keep = None
        n = len(self.view)
        if not n:
            return
        self.cursor = max(0, min(row, n - 1))
        self.scroll_to_cursor(center=center)

    def action_cursor(self, delta: int) -> None:
        self.follow_tail = False
        self.move_to_row(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.follow_tail = False
        h = max(1, self.scrollable_content_region.height - 2)
        self.move_to_row(self.cursor + direction * h)
        self.scroll_to(y=max(0, int(self.scroll_y) + direction * h), animate=False)

    def action_edge(self, end: int) -> None:
        self.follow_tail = bool(end)
        self.move_to_row(len(self.view) - 1 if end else 0)

    def on_click(self, event: events.Click) -> None:
        if event.y <= 0:
            return
        row = int(self.scroll_y) + event.y - 1
        if 0 <= row < len(self.view):
            self.follow_tail = False
            self.pending_keep = None
            self.cursor = row


# ---------------------------------------------------------------------------
# Detail tree


@dataclass
class Span:
    """What a detail-tree line points at in the bytes."""

    src: int
    offset: int
    length: int


@dataclass
class WiresharkSlot:
    """A not-yet-fetched Wireshark dissection of bytes jpdissect shows as data."""

    offset: int
    length: int
    loaded: bool = False


_SEV_STYLE = {Severity.ERROR: "bold red", Severity.WARN: "yellow", Severity.NOTE: "cyan",
              Severity.CHAT: "blue", Severity.COMMENT: "green"}


class DetailTree(Tree[Any]):
    """One frame's full tree: every layer and field, expert entries under their layer.

    Which subtrees are open is remembered by field name across frames, as Wireshark does,
    so walking through a handshake keeps the DTLS layer open.
    """

    HELP_NAME = "Detail tree"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "expand_all", "Expand subtree"),
        Binding("c", "collapse_all", "Collapse subtree"),
    ]

    class WiresharkWanted(Message):
        def __init__(self, node: TreeNode[Any]) -> None:
            super().__init__()
            self.node = node

    def __init__(self, **kw: Any) -> None:
        super().__init__("Packet details", **kw)
        self.show_root = False
        self.guide_depth = 2
        self.open_paths: set[str] = set()
        self.packet: Packet | None = None

    def show_packet(self, pkt: Packet | None, message: str = "") -> None:
        self.clear()
        self.packet = pkt
        if pkt is None:
            self.root.add_leaf(message or "No packet selected")
            return
        for lay in pkt.layers:
            tn = self.root.add(self._label(lay), data=lay)
            self._fill(tn, lay, lay.proto.abbrev)
            for e in pkt.experts:
                if e.proto == lay.proto.abbrev and e.src == lay.src:
                    tn.add_leaf(self._expert_label(e), data=e)
            if lay.proto.abbrev == "data" and lay.src == 0:
                tn.add(Text("Wireshark's dissection of these bytes (via tshark) — expand to fetch",
                            style="italic magenta"), data=WiresharkSlot(lay.offset, lay.length),
                       allow_expand=True)
            if lay.proto.abbrev in self.open_paths:
                tn.expand()
        self.root.expand()

    def _fill(self, tn: TreeNode[Any], node: Node, path: str) -> None:
        for ch in node.children or ():
            p = f"{path}/{ch.fd.abbrev}"
            if ch.children:
                sub = tn.add(self._label(ch), data=ch)
                self._fill(sub, ch, p)
                if p in self.open_paths:
                    sub.expand()
            else:
                tn.add_leaf(self._label(ch), data=ch)

    @staticmethod
    def _label(node: Node) -> Text:
        t = Text(node.text())
        if isinstance(node, Layer):
            t.stylize("bold")
            if node.malformed:
                t.stylize("red")
        elif node.generated:
            t.stylize("dim")
        return t

    @staticmethod
    def _expert_label(e: Expert) -> Text:
        return Text(f"[Expert Info ({e.severity.name.title()}/{e.group.value}): {e.message}]",
                    style=_SEV_STYLE.get(e.severity, ""))

    @staticmethod
    def path_of(tn: TreeNode[Any]) -> str:
        parts: list[str] = []
        while tn.parent is not None:
            d = tn.data
            if isinstance(d, Node):
                parts.append(d.fd.abbrev)
            tn = tn.parent
        return "/".join(reversed(parts))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        self.open_paths.add(self.path_of(event.node))
        if isinstance(event.node.data, WiresharkSlot) and not event.node.data.loaded:
            event.node.data.loaded = True
            self.post_message(self.WiresharkWanted(event.node))

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[Any]) -> None:
        self.open_paths.discard(self.path_of(event.node))

    def action_expand_all(self) -> None:
        node = self.cursor_node
        if node is not None:
            node.expand_all()

    def action_collapse_all(self) -> None:
        node = self.cursor_node
        if node is not None:
            node.collapse_all()

    @staticmethod
    def span_of(data: Any) -> Span | None:
        if isinstance(data, Node):
            return Span(data.src, data.offset, data.length)
        if isinstance(data, Expert):
            return Span(data.src, data.offset, data.length)
        if isinstance(data, WiresharkSlot):
            return Span(0, data.offset, data.length)
        span = getattr(data, "span", None)  # Wireshark fallback nodes
        return span if isinstance(span, Span) else None


# ---------------------------------------------------------------------------
# Hex pane


def hex_text(data: bytes, start: int = -1, length: int = 0) -> Text:
    """tshark's hex/ASCII dump with bytes ``[start, start+length)`` highlighted in both halves."""
    out = Text(no_wrap=True)
    hl = Style(reverse=True, bold=True)
    # A zero-length span (a generated field) highlights nothing.
    end = start + length if start >= 0 and length > 0 else -1
    off_style = Style(dim=True)
    for i in range(0, len(data), 16):
        if i:
            out.append("\n")
        out.append(f"{i:04x}  ", off_style)
        chunk = data[i : i + 16]
        for k, b in enumerate(chunk):
            pos = i + k
            inside = start <= pos < end
            sep = "  " if k == 8 else (" " if k else "")
            # The space between two highlighted bytes is highlighted too: one solid bar.
            prev_inside = start <= pos - 1 < end
            out.append(sep, hl if inside and prev_inside and k else None)
            out.append(f"{b:02x}", hl if inside else None)
        out.append(" " * (49 - _hex_width(len(chunk))) + "  ")
        for k, b in enumerate(chunk):
            pos = i + k
            if k == 8:
                out.append(" ")
            ch = chr(b) if 32 <= b < 127 else "."
            out.append(ch, hl if start <= pos < end else None)
    return out


def _hex_width(n: int) -> int:
    return 3 * n - 1 + (1 if n > 8 else 0) if n else 0


class HexView(VerticalScroll, can_focus=True):
    """Hex/ASCII of the selected frame's data source, highlighting the selected field's bytes."""

    HELP_NAME = "Hex pane"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "next_source", "Next data source"),
    ]

    DEFAULT_CSS = """
    HexView { background: $surface; }
    HexView > #hex-tabs { height: 1; color: $text-muted; }
    HexView > #hex-body { width: auto; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.packet: Packet | None = None
        self.source_index = 0
        #: (src, offset, length) currently highlighted -- what the tests assert.
        self.highlight: tuple[int, int, int] | None = None

    def compose(self) -> Any:
        yield Static("", id="hex-tabs")
        yield Static("", id="hex-body")

    def show(self, pkt: Packet | None, span: Span | None = None) -> None:
        if pkt is not self.packet:
            self.packet = pkt
            self.source_index = 0
        if span is not None and pkt is not None and 0 <= span.src < len(pkt.sources):
            self.source_index = span.src
        self.highlight = (span.src, span.offset, span.length) if span is not None else None
        self._redraw()
        if span is not None and span.length > 0:
            line = span.offset // 16 + 1
            self.scroll_to(y=max(0, line - 2), animate=False)

    def _redraw(self) -> None:
        tabs = self.query_one("#hex-tabs", Static)
        body = self.query_one("#hex-body", Static)
        pkt = self.packet
        if pkt is None:
            tabs.update("")
            body.update("")
            return
        parts = Text()
        for i, s in enumerate(pkt.sources):
            if i:
                parts.append(" │ ")
            parts.append(f"{s.name} ({len(s.data)} bytes)", "bold reverse" if i == self.source_index else "")
        if len(pkt.sources) > 1:
            parts.append("   x: next source", "dim")
        tabs.update(parts)
        data = pkt.sources[self.source_index].data
        hl = self.highlight
        if hl is not None and hl[0] == self.source_index:
            body.update(hex_text(data, hl[1], hl[2]))
        else:
            body.update(hex_text(data))

    def action_next_source(self) -> None:
        if self.packet is not None and len(self.packet.sources) > 1:
            self.source_index = (self.source_index + 1) % len(self.packet.sources)
            self._redraw()


# ---------------------------------------------------------------------------
# Filter bar

_IDENT_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*$")


class FieldSuggester(Suggester):
    """Completes the field name being typed (like Wireshark's filter toolbar) or a past filter."""

    def __init__(self, history: list[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.history = history
        self._names: list[str] | None = None

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        for h in reversed(self.history):
            if h.startswith(value) and h != value:
                return h
        m = _IDENT_TAIL.search(value)
        if not m:
            return None
        if self._names is None:
            from jpdissect.filters import compile_filter

            compile_filter("")  # loads every dissector, so FIELDS is complete
            self._names = sorted(FIELDS)
        word = m.group(0)
        for name in self._names:
            if name.startswith(word) and name != word:
                return value[: m.start()] + name
        return None


def history_path() -> Path:
    base = os.environ.get("JPDISSECT_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "jpdissect")
    return Path(base) / "filter_history"


#: Filters remembered across sessions.
HISTORY_MAX = 200


def load_history() -> list[str]:
    try:
        lines = history_path().read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [x for x in lines if x.strip()][-HISTORY_MAX:]


def save_history(history: list[str]) -> None:
    p = history_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(history[-HISTORY_MAX:]) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only home must not break filtering


class FilterInput(Input):
    """The display-filter bar: validates as you type, ↑/↓ walk the history, Enter applies.

    Green (``-filter-ok``) or red (``-filter-bad``, with the error line under it) as you type.
    """

    HELP_NAME = "Filter bar"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Older filter", show=False),
        Binding("down", "history(1)", "Newer filter", show=False),
    ]

    DEFAULT_CSS = """
    FilterInput { padding: 0 1; background: $boost; }
    FilterInput:focus { background: $primary-darken-3; }
    FilterInput.-filter-ok, FilterInput.-filter-ok:focus { background: $success-darken-3; }
    FilterInput.-filter-bad, FilterInput.-filter-bad:focus { background: $error-darken-3; }
    """

    class Apply(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: list[str], **kw: Any) -> None:
        super().__init__(placeholder="Apply a display filter … (/ to focus, Enter to apply, ↑ history)",
                         suggester=FieldSuggester(history), compact=True, **kw)
        self.history = history
        self._pos: int | None = None
        self.error: Any = None

    def validate_now(self) -> Any:
        """Compile the current text; returns the FilterError or None and sets the colour."""
        from jpdissect.filters import FilterError, compile_filter

        text = self.value
        self.remove_class("-filter-ok", "-filter-bad")
        self.error = None
        if not text.strip():
            return None
        try:
            compile_filter(text)
        except FilterError as exc:
            self.error = exc
            self.add_class("-filter-bad")
            return exc
        self.add_class("-filter-ok")
        return None

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        pos = len(self.history) if self._pos is None else self._pos
        pos = max(0, min(len(self.history), pos + step))
        self._pos = pos
        self.value = self.history[pos] if pos < len(self.history) else ""
        self.cursor_position = len(self.value)

    def remember(self, text: str) -> None:
        if text.strip():
            if text in self.history:
                self.history.remove(text)
            self.history.append(text)
            save_history(self.history)
        self._pos = None


def filter_error_text(exc: Any) -> Text:
    """The filter with the offending span marked, then the message (tshark's caret, in colour)."""
    text: str = exc.text or ""
    pos = max(0, min(exc.position, len(text)))
    ln = exc.length or 1
    t = Text()
    t.append(text[:pos])
    t.append(text[pos : pos + ln] or " ", "bold white on red")
    t.append(text[pos + ln :])
    t.append(f"   ✗ col {pos + 1}: {exc.message}", "bold red")
    return t


# ---------------------------------------------------------------------------
# Status line


def progress_text(src: PacketSource, view: View, marks: set[int], message: str = "") -> Text:
    """File, counts, running jobs with a bar each, and the last message."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f" {src.name} ", "bold")
    n = src.count() - src.first()
    t.append(f"Packets: {n:,}")
    if view.run is not None:
        pct = 100.0 * len(view) / n if n else 0.0
        t.append(f" · Displayed: {len(view):,} ({pct:.1f}%)")
    if marks:
        t.append(f" · Marked: {len(marks):,}")
    for p in src.busy():
        frac = p.fraction
        bar = ""
        if frac is not None:
            k = int(frac * 10)
            bar = f" [{'█' * k}{'░' * (10 - k)}] {frac * 100:.0f}%"
        else:
            bar = f" {p.done:,}"
        t.append(f" · {p.label}{bar}", "yellow")
        if p.cancellable:
            t.append(" (Esc cancels)", "dim")
    if src.error:
        t.append(f" · {src.error}", "red")
    if message:
        t.append(f" · {message}", "italic")
    return t
