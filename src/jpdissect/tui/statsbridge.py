"""Where the UI's statistics and Follow-session data come from.

The UI computes nothing about protocols itself: it tallies what the dissectors put in the
packets (columns, ``jp.overhead`` per scheme, expert info) and asks
:mod:`jpdissect.dtls_sessions` and :mod:`jpdissect.sessions` for the session tables. It
does not import :mod:`jpdissect.stats`: that pulls in pandas/pyarrow (~2 s) for numbers the
jp layer already carries; each snapshot says in ``notes`` what was missing.

A :class:`StatsCollector` runs in the statistics child process for files and in the capture
thread for live captures, so one code path serves both.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from jpdissect.capture import Frame
from jpdissect.model import FIELDS, Packet
from jpdissect.tui.detail import EngineOptions, prime_columns
from jpdissect.tui.rows import scheme_cell

#: Frames a Follow-session extraction returns at most (a session is a few dozen frames).
MAX_EXTRACT = 20_000
#: Fields the Follow screen asks for, when the dissectors declare them.
FOLLOW_FIELDS = ("jp.scheme", "jp.session", "jp.peer_frame", "jp.forward_delay", "jp.leg",
                 "jp.direction", "jp.overhead", "dtls.session", "dtls.relayed_copy", "dtls.flight")
#: Session keys tried, in order, for "follow the session of the selected frame".
SESSION_KEYS = ("jp.session", "dtls.session")


def extract_row(index: int, pkt: Packet, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A frame as the Follow screen needs it: columns plus raw and displayed field values."""
    vals: dict[str, list[Any]] = {}
    shown: dict[str, list[str]] = {}
    for f in fields:
        fd = FIELDS.get(f)
        if fd is None:
            continue
        v = pkt.values(f)
        if v:
            vals[f] = [x if isinstance(x, int | float | str | bytes | bool) else str(x) for x in v]
            shown[f] = [fd.fmt_display(x) for x in v]
    return {
        "index": index, "number": pkt.number, "rel_ns": pkt.rel_ns, "ts_ns": pkt.ts_ns,
        "interface_id": pkt.interface_id, "src": pkt.src, "dst": pkt.dst,
        "protocol": pkt.protocol, "info": pkt.info, "length": pkt.wirelen,
        "scheme": scheme_cell(pkt), "values": vals, "shown": shown,
    }


def session_filter(pkt: Packet) -> tuple[str, str] | None:
    """The display filter selecting the session of ``pkt``: (description, filter)."""
    for key in SESSION_KEYS:
        if key in FIELDS:
            v = pkt.get(key)
            if v is not None:
                fd = FIELDS[key]
                what = "pledge session" if key.startswith("jp.") else "DTLS session"
                return f"{what} {fd.fmt_value(v)}", f"{key} == {fd.fmt_value(v)}"
    return None


class StatsCollector:
    """Tallies over a capture read in order: schemes, protocols, overhead, session tables."""

    snapshot_every = 2.0

    def __init__(self, opts: EngineOptions, engine: Any = None) -> None:
        prime_columns(["jp.overhead", "jp.leg"])
        self.engine = engine if engine is not None else opts.engine(tree=False, cols=True)
        self.frames = 0
        self.bytes = 0
        self.protocols: Counter[str] = Counter()
        self.scheme_frames: Counter[str] = Counter()
        self.scheme_bytes: Counter[str] = Counter()
        self.overhead_sum: Counter[str] = Counter()
        self.overhead_n: Counter[str] = Counter()
        self.overhead_samples: dict[str, list[int]] = {}
        self.last_snapshot = time.monotonic()

    def add(self, frame: Frame) -> Packet:
        pkt = self.engine.dissect(frame)
        self.engine.displayed(pkt)
        self.add_packet(pkt)
        return pkt

    def add_packet(self, pkt: Packet) -> None:
        self.frames += 1
        self.bytes += pkt.wirelen
        self.protocols[pkt.protocol] += 1
        scheme = pkt.get("jp.scheme") if "jp.scheme" in FIELDS else None
        if scheme is not None:
            name = FIELDS["jp.scheme"].fmt_display(scheme)
            self.scheme_frames[name] += 1
            self.scheme_bytes[name] += pkt.wirelen
            # Overhead is what the relay framing adds on the JP <-> Registrar leg.
            if "jp.overhead" in FIELDS and pkt.get("jp.leg") == "registrar":
                for ov in pkt.values("jp.overhead"):
                    if isinstance(ov, int):
                        self.overhead_sum[name] += ov
                        self.overhead_n[name] += 1
                        s = self.overhead_samples.setdefault(name, [])
                        if len(s) < 5000:
                            s.append(ov)

    def snapshot(self, final: bool) -> dict[str, Any]:
        """Everything the statistics screen shows; plain data, so it pickles from the child."""
        self.last_snapshot = time.monotonic()
        notes: list[str] = []
        snap: dict[str, Any] = {
            "final": final, "frames": self.frames, "bytes": self.bytes,
            "protocols": dict(self.protocols.most_common()),
            "schemes": {k: (self.scheme_frames[k], self.scheme_bytes[k]) for k in self.scheme_frames},
            "overhead": {k: (self.overhead_sum[k] / self.overhead_n[k], self.overhead_n[k])
                         for k in self.overhead_n},
            "overhead_samples": {k: list(v) for k, v in self.overhead_samples.items()},
        }
        if "jp.scheme" not in FIELDS:
            notes.append("The Scheme column and per-scheme overhead need the jp dissector "
                         "(dissectors/jp.py), which is not loaded.")
        from jpdissect import dtls_sessions

        try:
            snap["dtls_sessions"] = dtls_sessions.session_rows(dtls_sessions.list_sessions(self.engine))
        except Exception as exc:  # noqa: BLE001 - a stats module bug must not kill the screen
            snap["dtls_sessions"] = []
            notes.append(f"DTLS session table failed: {type(exc).__name__}: {exc}")
        snap["pledge_sessions"] = _pledge_sessions(self.engine, notes, final, self.frames)
        snap["notes"] = notes
        return snap


#: Above this many frames, mid-pass snapshots skip the pledge-session table (building it walks
#: every observation); the final snapshot always has it.
SESSIONS_SNAPSHOT_MAX = 200_000


def _pledge_sessions(engine: Any, notes: list[str], final: bool, frames: int) -> list[dict[str, Any]] | None:
    """Pledge sessions across both hops, from the engine's :mod:`jpdissect.sessions` tracker."""
    try:
        from jpdissect.sessions import tracker_for
    except ImportError:
        notes.append("Pledge sessions need jpdissect.sessions, which this tree does not have.")
        return None
    if not final and frames > SESSIONS_SNAPSHOT_MAX:
        notes.append("Pledge sessions appear when the statistics pass ends.")
        return None
    try:
        return tracker_for(engine).finish().rows()
    except Exception as exc:  # noqa: BLE001 - a sessions bug must not kill the screen
        notes.append(f"Pledge session table failed: {type(exc).__name__}: {exc}")
        return None


def _as_row(x: Any) -> dict[str, Any]:
    if isinstance(x, dict):
        return x
    as_dict = getattr(x, "as_dict", None)
    if as_dict is not None:
        return as_dict()
    return {"session": str(x)}
