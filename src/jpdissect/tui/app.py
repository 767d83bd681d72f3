"""The main window: filter bar, packet list, detail tree, hex pane, status line.

The app wires the panes together and starts jobs; the work is in :mod:`index` (frames,
rows, passes), :mod:`detail` (fresh trees) and the engine. A 0.2 s timer picks up what
background jobs produced (``source.changed``) instead of threads poking widgets.
"""

from __future__ import annotations

import os
import threading
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import Footer, Input, Static, Tree
from textual.widgets.tree import TreeNode

from jpdissect.capture.writer import PcapngWriter
from jpdissect.model import Packet
from jpdissect.tui.index import PacketSource, Progress, StatsRun, View
from jpdissect.tui.screens import FollowScreen, GotoScreen, HelpScreen, SaveScreen, StatsScreen
from jpdissect.tui.statsbridge import FOLLOW_FIELDS, session_filter
from jpdissect.tui.widgets import (
    DetailTree,
    FilterInput,
    HexView,
    PacketList,
    filter_error_text,
    load_history,
    progress_text,
)

#: Seconds the cursor must rest on a frame before its full tree is built (holding ↓ stays smooth).
SELECT_DEBOUNCE = 0.08
#: Seconds after mounting before the file's background passes start.
BACKGROUND_DELAY = 0.3


class JpApp(App[None]):
    """``jpdissect tui``: Wireshark's three panes for a file or a live capture."""

    TITLE = "jpdissect"
    HELP_NAME = "Main window"
    CSS = """
    Screen { layout: vertical; }
    #filter-error { height: auto; display: none; padding: 0; }
    #filter-error.-shown { display: block; }
    PacketList { height: 2fr; min-height: 5; border-bottom: solid $primary-darken-1; }
    DetailTree { height: 2fr; min-height: 3; border-bottom: solid $primary-darken-1; }
    HexView { height: 1fr; min-height: 3; }
    #status { height: 1; background: $primary-darken-3; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("g,ctrl+g", "goto", "Go to"),
        Binding("m", "mark", "Mark"),
        Binding("right_square_bracket", "next_mark(1)", "Next mark", show=False),
        Binding("left_square_bracket", "next_mark(-1)", "Prev mark", show=False),
        Binding("s", "follow", "Follow session"),
        Binding("t", "stats", "Statistics"),
        Binding("w,ctrl+s", "save", "Save"),
        Binding("ctrl+r", "reference", "Set ${} reference", show=False),
        Binding("W", "wireshark", "Wireshark view", show=False),
        Binding("z", "zoom", "Zoom pane", show=False),
        Binding("f", "follow_tail", "Autoscroll", show=False),
        Binding("escape", "escape", "Cancel / back", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, source: PacketSource, *, initial_filter: str | None = None,
                 save_dir: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.marks: set[int] = set()
        self.view = View(source)
        self.history = load_history()
        self.initial_filter = initial_filter
        self.save_dir = save_dir
        self.reference: int | None = None
        self.message = ""
        self.packet: Packet | None = None
        self.packet_index: int | None = None
        self.stats_run: StatsRun | None = None
        self._select_timer: Any = None
        self._wanted: int | None = None
        self.title = f"jpdissect — {source.name}"

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield FilterInput(self.history, id="filter")
        yield Static("", id="filter-error")
        yield PacketList(self.view, self.marks, id="packets")
        yield DetailTree(id="detail")
        yield HexView(id="hex")
        yield Static("", id="status")
        yield Footer()

    # The main widgets live on the default screen; App.query_one would search whichever
    # screen is on top (statistics, follow), so look them up there once.
    def _main(self, selector: str, kind: type[Any]) -> Any:
        return self.screen_stack[0].query_one(selector, kind)

    @property
    def packet_list(self) -> PacketList:
        return self._main("#packets", PacketList)

    @property
    def detail(self) -> DetailTree:
        return self._main("#detail", DetailTree)

    @property
    def hexview(self) -> HexView:
        return self._main("#hex", HexView)

    @property
    def filter_input(self) -> FilterInput:
        return self._main("#filter", FilterInput)

    def on_mount(self) -> None:
        pl = self.packet_list
        pl.follow_tail = self.source.live
        pl.focus()
        pl.grew()
        self.set_interval(0.2, self.poll)
        start = getattr(self.source, "start", None)
        if callable(start) and not self.source.live:
            # Background passes begin once the first screen has reached the terminal: started
            # earlier, the scan thread competes with Textual's writer thread for the GIL.
            self.set_timer(BACKGROUND_DELAY, start)
        if self.initial_filter:
            fi = self.filter_input
            fi.value = self.initial_filter
            self.apply_filter(self.initial_filter)
        self.update_status()

    def poll(self) -> None:
        """Pick up what background jobs produced since the last tick."""
        try:
            if self.source.changed.is_set():
                self.source.changed.clear()
                self.packet_list.grew()
            self.update_status()
        except NoMatches:  # the app is shutting down: the main screen is already gone
            pass

    def update_status(self) -> None:
        self._main("#status", Static).update(
            progress_text(self.source, self.view, self.marks, self.message))

    def say(self, message: str) -> None:
        self.message = message
        self.update_status()

    # -- selection ---------------------------------------------------------------------------------
    @on(PacketList.Selected)
    def _selected(self, event: PacketList.Selected) -> None:
        if self._select_timer is not None:
            self._select_timer.stop()
        idx = event.index
        self._select_timer = self.set_timer(SELECT_DEBOUNCE, lambda: self.show_frame(idx))

    def show_frame(self, index: int | None) -> None:
        """Re-dissect frame ``index`` with a fresh full tree (in a thread) and show it."""
        self._select_timer = None
        self._wanted = index
        if index is None:
            self.packet, self.packet_index = None, None
            self.detail.show_packet(None)
            self.hexview.show(None)
            return
        self._dissect_worker(index)

    @work(thread=True, exclusive=True, group="detail")
    def _dissect_worker(self, index: int) -> None:
        try:
            pkt: Packet | None = self.source.dissect(index)
            err = ""
        except Exception as exc:  # noqa: BLE001 - a bad frame must not close the UI
            pkt, err = None, f"Frame {index + 1} could not be read: {exc}"
        self.call_from_thread(self._show_packet, index, pkt, err)

    def _show_packet(self, index: int, pkt: Packet | None, err: str) -> None:
        if index != self._wanted:
            return  # the cursor has moved on
        self.packet, self.packet_index = pkt, (index if pkt is not None else None)
        self.detail.show_packet(pkt, err)
        self.hexview.show(pkt)

    @on(Tree.NodeHighlighted, "#detail")
    def _node_highlighted(self, event: Tree.NodeHighlighted[Any]) -> None:
        span = DetailTree.span_of(event.node.data)
        self.hexview.show(self.packet, span)

    # -- filter ------------------------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        fi = self.filter_input
        exc = fi.validate_now()
        err = self._main("#filter-error", Static)
        if exc is None:
            err.remove_class("-shown")
            err.update("")
        else:
            err.add_class("-shown")
            err.update(filter_error_text(exc))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        self.packet_list.focus()

    def apply_filter(self, text: str) -> None:
        fi = self.filter_input
        if fi.validate_now() is not None:
            self.say("Invalid filter: fix the marked part first")
            return
        old = self.view.run
        if old is not None and not old.done:
            old.cancel()
        keep = self.packet_list.selected_index
        if not text.strip():
            self.view = View(self.source)
            self.say("Filter cleared")
        else:
            fi.remember(text)
            run = self.source.start_filter(text, self.reference)
            self.view = View(self.source, run)
            self.say(f"Filter: {text}")
        self.packet_list.set_view(self.view, keep_index=keep)
        self.update_status()

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    def action_reference(self) -> None:
        self.reference = self.packet_list.selected_index
        if self.reference is not None:
            self.say(f"Frame {self.reference + 1} is the ${{field}} reference; re-apply the filter to use it")

    # -- escape: leave the filter bar, un-zoom, or cancel the newest job -----------------------------
    def action_escape(self) -> None:
        if isinstance(self.focused, FilterInput):
            self.packet_list.focus()
            return
        if self.screen.maximized is not None:
            self.screen.minimize()
            return
        for p in reversed(self.source.busy()):
            cancel = getattr(p, "cancel", None)
            if p.cancellable and cancel is not None:
                cancel()
                self.say(f"Cancelled: {p.label}")
                return

    def action_zoom(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.focused is not None:
            self.screen.maximize(self.focused)

    # -- go to / marks -----------------------------------------------------------------------------
    def action_goto(self) -> None:
        def done(number: int | None) -> None:
            if number is not None:
                self.goto_index(number - 1)

        self.push_screen(GotoScreen(), done)

    def goto_index(self, index: int) -> bool:
        row = self.view.row_of(index)
        if row is None:
            n = self.source.count()
            why = "is not displayed (filter)" if 0 <= index < n else f"does not exist (1…{n:,})"
            self.say(f"Frame {index + 1} {why}")
            return False
        self.packet_list.follow_tail = False
        self.packet_list.move_to_row(row, center=True)
        self.packet_list.focus()
        return True

    def action_mark(self) -> None:
        idx = self.packet_list.selected_index
        if idx is None:
            return
        if idx in self.marks:
            self.marks.discard(idx)
        else:
            self.marks.add(idx)
        self.packet_list.refresh()
        self.update_status()

    def action_next_mark(self, step: int) -> None:
        cur = self.packet_list.selected_index
        if not self.marks or cur is None:
            return
        cands = sorted(self.marks)
        nxt = [m for m in cands if (m > cur if step > 0 else m < cur)]
        if nxt:
            self.goto_index(nxt[0] if step > 0 else nxt[-1])

    def action_follow_tail(self) -> None:
        pl = self.packet_list
        pl.follow_tail = not pl.follow_tail
        self.say(f"Autoscroll {'on' if pl.follow_tail else 'off'}")
        if pl.follow_tail:
            pl.grew()

    # -- follow / statistics -----------------------------------------------------------------------
    def action_follow(self) -> None:
        pkt = self.packet
        if pkt is None:
            self.say("Select a frame of the session to follow first")
            return
        found = session_filter(pkt)
        if found is None:
            self.say("This frame belongs to no session (no jp.session or dtls.session field)")
            return
        what, flt = found
        run = self.source.start_extract(flt, FOLLOW_FIELDS)

        def done(index: int | None) -> None:
            if run.progress.running:
                run.cancel()
            if index is not None:
                self.goto_index(index)

        self.push_screen(FollowScreen(self.source, run, f"Follow {what}  ({flt})"), done)

    def action_stats(self) -> None:
        run = self.stats_run
        if run is None or (not run.progress.running and run.progress.error is not None):
            run = self.stats_run = self.source.start_stats()

        def done(index: int | None) -> None:
            if index is not None:
                self.goto_index(index)

        self.push_screen(StatsScreen(self.source, run), done)

    # -- save --------------------------------------------------------------------------------------
    def action_save(self) -> None:
        base = os.path.splitext(self.source.name)[0] or "capture"
        default = os.path.join(self.save_dir or os.getcwd(), f"{base}-filtered.pcapng")
        n = len(self.view)

        def done(answer: tuple[str, str] | None) -> None:
            if answer is not None:
                path, which = answer
                self.save_frames(path, which)

        self.push_screen(SaveScreen(default, n, len(self.marks), self.source.count() - self.source.first()), done)

    def save_frames(self, path: str, which: str = "displayed") -> Progress:
        """Write the displayed, marked or all frames to ``path`` as pcapng, in a thread."""
        if which == "marked":
            indices: list[int] | Any = sorted(self.marks)
        elif which == "all":
            indices = range(self.source.first(), self.source.count())
        else:
            view = self.view
            indices = [view.index_at(r) for r in range(len(view))]
        prog = Progress(f"Saving {os.path.basename(path)}", total=len(indices))
        cancel = threading.Event()
        prog.cancel = cancel.set  # type: ignore[attr-defined]
        self.source.jobs.append(prog)
        self._save_worker(path, list(indices), prog, cancel)
        return prog

    @work(thread=True, exclusive=False, group="save")
    def _save_worker(self, path: str, indices: list[int], prog: Progress, cancel: threading.Event) -> None:
        src = self.source
        try:
            with PcapngWriter(path, src.interfaces, comment="saved by jpdissect tui") as w:
                for stype, data in src.secrets:
                    w.write_secrets(stype, data)
                for k, i in enumerate(indices):
                    if cancel.is_set():
                        break
                    w.write(src.frame(i))
                    prog.done = k + 1
        except (OSError, ValueError) as exc:
            prog.finish(f"{type(exc).__name__}: {exc}")
            self.call_from_thread(self.say, f"Save failed: {exc}")
            return
        if cancel.is_set():
            prog.finish("cancelled")
            try:
                os.unlink(path)
            except OSError:
                pass
            self.call_from_thread(self.say, "Save cancelled")
            return
        prog.finish(None)
        self.call_from_thread(self.say, f"Saved {prog.done:,} frames to {path}")

    # -- Wireshark fallback ------------------------------------------------------------------------
    @on(DetailTree.WiresharkWanted)
    def _wireshark_wanted(self, event: DetailTree.WiresharkWanted) -> None:
        if self.packet_index is None:
            return
        node = event.node
        node.add_leaf("fetching Wireshark's dissection (tshark -T pdml) …")
        self._fetch_wireshark(self.packet_index, node)

    @work(thread=True, group="wireshark")
    def _fetch_wireshark(self, index: int, node: TreeNode[Any]) -> None:
        from jpdissect.tui.wireshark import dissect_with_tshark, tshark_path, tshark_version

        slot = node.data
        frame = self.source.frame(index)
        got = dissect_with_tshark(frame, self.source.interfaces, slot.offset, slot.offset + slot.length)
        exe = tshark_path()
        label = tshark_version(exe) if exe else "tshark"
        self.call_from_thread(self._show_wireshark, index, node, got, label)

    def _show_wireshark(self, index: int, node: TreeNode[Any], got: Any, label: str) -> None:
        from rich.text import Text

        from jpdissect.tui.wireshark import WsNode

        if index != self.packet_index:
            return
        node.remove_children()
        if isinstance(got, str):
            node.add_leaf(Text(got, style="italic yellow"))
            return
        node.set_label(Text(f"Wireshark's dissection of these bytes — from {label}, not jpdissect",
                            style="bold magenta"))

        def add(parent: TreeNode[Any], items: list[WsNode]) -> None:
            for it in items:
                t = Text(f"[Wireshark] {it.text}", style="magenta")
                if it.children:
                    sub = parent.add(t, data=it)
                    add(sub, it.children)
                else:
                    parent.add_leaf(t, data=it)

        add(node, got)
        node.expand()

    def action_wireshark(self) -> None:
        """Open every 'Wireshark's dissection' slot of the selected frame."""
        tree = self.detail
        found = False
        for tn in list(tree.root.children):
            for ch in list(tn.children):
                if type(ch.data).__name__ == "WiresharkSlot":
                    tn.expand()
                    ch.expand()
                    found = True
        if not found:
            self.say("jpdissect dissects every byte of this frame itself: nothing is left to Wireshark")

    # -- help --------------------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen([JpApp, PacketList, DetailTree, Tree, HexView, FilterInput,
                                     FollowScreen, StatsScreen, GotoScreen, SaveScreen]))

    async def action_quit(self) -> None:
        self.source.close()
        self.exit()


def run_app(source: PacketSource, **kw: Any) -> int:
    """Run the UI until the user quits; the source is closed either way."""
    app = JpApp(source, **kw)
    try:
        app.run()
    finally:
        source.close()
    return 0
