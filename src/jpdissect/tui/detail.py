"""Out-of-order dissection: a frame's full tree, or a provisional row, with a warm-up window.

Stateful dissectors (handshake reassembly, learned ports, DTLS sessions) want frames in
capture order. The in-order pass (:mod:`jpdissect.tui.worker`) gets that right for the
packet list, but it keeps no trees: a million trees do not fit in memory. So the detail
pane re-dissects the selected frame with a *fresh* engine, after first dissecting the
``warmup`` frames before it without a tree.

The trade-off, stated: the tree is exact whenever the state it depends on was built within
the window (every frame of a capture shorter than the window; reassembly of adjacent
fragments; anything decided inside one datagram). State older than the window -- a port
learned from discovery a minute earlier, DTLS keys from a handshake thousands of frames
back -- is approximated by seeding the engine with the ports the in-order pass has learned
so far, and is otherwise missing. Wireshark makes the same kind of trade when it
re-dissects one frame from per-frame data saved in its first pass; we save nothing per
frame, which is what keeps a million-frame file within a few tens of megabytes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jpdissect.capture import Frame
from jpdissect.engine import Engine
from jpdissect.model import Packet, prime
from jpdissect.tui.rows import COLUMN_FIELDS

#: Frames dissected (without a tree) before the selected one. Each costs ~0.15 ms.
DEFAULT_WARMUP = 256
#: Smaller window for provisional packet-list rows, which are replaced by exact ones later.
ROW_WARMUP = 32


@dataclass(frozen=True)
class EngineOptions:
    """What every engine of one UI session shares: ``-o`` preferences, ``-d`` decode-as, window."""

    prefs: tuple[str, ...] = ()
    decode_as: tuple[str, ...] = ()
    warmup: int = DEFAULT_WARMUP

    def engine(self, tree: bool = False, cols: bool = True, jp_table: Any = None, jp: bool = True) -> Engine:
        """An engine with the jp post-dissector installed (scheme, session, twins).

        With ``jp_table`` (a finished :class:`jpdissect.sessions.SessionTable` from an
        in-order pass) the jp layer shows final session numbers and every twin, as in
        ``read -2``; without it, what a single pass knows so far. ``jp=False`` leaves the jp
        layer out (a filter that names no jp field runs ~2x faster without it).
        """
        eng = Engine(prefs=list(self.prefs), decode_as=list(self.decode_as), tree=tree, cols=cols)
        if jp:
            install_jp(eng, jp_table)
        return eng

    def argv(self) -> list[str]:
        """The same options for a child process's command line."""
        out: list[str] = []
        for p in self.prefs:
            out += ["-o", p]
        for d in self.decode_as:
            out += ["-d", d]
        return out


def install_jp(eng: Engine, jp_table: Any = None) -> None:
    """Add the jp layer to ``eng`` when the jp dissector is part of this tree."""
    try:
        from jpdissect import sessions
        from jpdissect.dissectors import jp
    except ImportError:  # pragma: no cover - older trees without sessions
        return
    if jp_table is not None:
        eng.state[sessions.STATE_TABLE] = jp_table
    jp.install(eng)


def tree_engine_from(warm: Engine, opts: EngineOptions) -> Engine:
    """A full-tree engine that continues where the tree-less warm-up engine stopped.

    An engine decides once, when it is made, what a tree costs it (which frame fields to
    fill; hot dissectors also cache per-engine plans in ``state["_plan.*"]``), so the tree
    is not switched on in place: a new engine takes over the warm-up engine's capture state
    -- reassembly tables, sessions, learned ports, counters -- minus those plans. (An
    ``Engine.with_tree()`` doing this belongs in engine.py.)
    """
    eng = Engine(prefs=list(opts.prefs), decode_as=list(opts.decode_as), tree=True, cols=True)
    state = {k: v for k, v in warm.state.items() if not (isinstance(k, str) and k.startswith("_plan."))}
    try:
        from jpdissect.dissectors.jp import STATE_INSTALLED
    except ImportError:  # pragma: no cover
        STATE_INSTALLED = "jp.installed"  # noqa: N806
    state.pop(STATE_INSTALLED, None)  # so install_jp hooks the jp layer into *this* engine
    eng.state = state
    eng.learned = warm.learned
    eng.secrets = warm.secrets
    eng.count = warm.count
    eng.first_ts = warm.first_ts
    eng.prev_ts = warm.prev_ts
    eng.prev_displayed_ts = warm.prev_displayed_ts
    install_jp(eng)
    return eng


def prime_columns(extra: Iterable[str] = ()) -> None:
    """Ask dissectors to record the column fields (and a filter's) without a full tree.

    Priming is process-wide and only ever added to here: an extra primed field costs a
    little speed, a missing one would silently empty a column.
    """
    from jpdissect.dissectors import load_all

    load_all()  # fields only exist once their dissector module is imported
    try:
        import jpdissect.dissectors.jp  # noqa: F401 - declares jp.* (a post-dissector, not in load_all)
    except ImportError:  # pragma: no cover
        pass
    prime([*COLUMN_FIELDS, *extra])


def dissect_run(
    frames: Sequence[Frame],
    first_number: int,
    first_ts: int,
    opts: EngineOptions,
    *,
    prev_ts: int | None = None,
    tree_for: int | None = None,
    learned: dict[str, dict[Any, str]] | None = None,
    secrets: Sequence[tuple[int, bytes]] = (),
    keep: Callable[[int], bool] | None = None,
    jp_table: Any = None,
) -> list[Packet]:
    """Dissect consecutive ``frames`` (numbered from ``first_number``) with one fresh engine.

    ``tree_for`` (an index into ``frames``) gets a full tree; ``keep`` says which packets to
    return (default: all). Numbers and relative times match the in-order pass because the
    engine is told where the run starts.
    """
    eng = opts.engine(tree=False, cols=True, jp_table=jp_table)
    if learned:
        eng.learned = copy.deepcopy(learned)
    eng.secrets.extend(secrets)
    eng.count = first_number - 1
    eng.first_ts = first_ts
    start_prev = prev_ts if prev_ts is not None else (frames[0].ts_ns if frames else first_ts)
    eng.prev_ts = start_prev
    eng.prev_displayed_ts = start_prev
    out: list[Packet] = []
    for k, fr in enumerate(frames):
        if k == tree_for:
            eng = tree_engine_from(eng, opts)
        pkt = eng.dissect(fr)
        eng.displayed(pkt)  # unfiltered context: every frame counts as displayed
        if keep is None or keep(k):
            out.append(pkt)
    return out


def dissect_one(
    get_frame: Callable[[int], Frame],
    index: int,
    first_index: int,
    first_ts: int,
    opts: EngineOptions,
    *,
    learned: dict[str, dict[Any, str]] | None = None,
    secrets: Sequence[tuple[int, bytes]] = (),
    warmup: int | None = None,
    jp_table: Any = None,
) -> Packet:
    """The full tree of frame ``index`` (0-based), after ``warmup`` frames of context."""
    w = opts.warmup if warmup is None else warmup
    start = max(first_index, index - w)
    frames = [get_frame(j) for j in range(start, index + 1)]
    prev = get_frame(start - 1).ts_ns if start > first_index else None
    pkts = dissect_run(frames, start + 1, first_ts, opts, prev_ts=prev, tree_for=len(frames) - 1,
                       learned=learned, secrets=secrets, keep=lambda k: k == len(frames) - 1,
                       jp_table=jp_table)
    return pkts[0]
