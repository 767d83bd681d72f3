"""Dissector tables, heuristic lists and named dissectors.

Protocol modules register themselves here at import time, the way Wireshark
dissectors call ``dissector_add_uint`` and ``heur_dissector_add``.  The
registry is static (what the code knows); everything that changes while a
capture is read (decode-as, ports learned from discovery) lives on the
:class:`~jpdissect.engine.Engine`.

A dissector is ``fn(pkt, buf, off, end, src) -> bool``: it decodes
``buf[off:end]`` (``src`` names the packet data source ``buf`` is) and returns
False only to say "not mine" -- which heuristics must do before touching the
packet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jpdissect.model import Packet

DissectFn = Callable[[Packet, bytes, int, int, int], bool]


@dataclass(slots=True)
class Heuristic:
    name: str          # e.g. "dtls_udp"
    proto: str         # the protocol it finds, for -d / listing
    fn: DissectFn
    enabled: bool = True


class Registry:
    """What dissectors exist and where they hang."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, str]] = {}
        self.heuristics: dict[str, list[Heuristic]] = {}
        self.named: dict[str, DissectFn] = {}
        self.descriptions: dict[str, str] = {}
        # Run after every frame's dissection chain (Wireshark's post-dissectors): for layers
        # that need what the whole chain found, like the join-proxy classification.
        self.postdissectors: list[Callable[[Packet], None]] = []
        #: Bumped by every registration, so engines know their memoised lookups are stale
        # (a module imported mid-capture, such as the BRSKI decoders, adds table entries).
        self.generation = 0

    def dissector(self, name: str, desc: str = "") -> Callable[[DissectFn], DissectFn]:
        """Decorator: make ``fn`` callable by name (decode-as, table entries)."""

        def deco(fn: DissectFn) -> DissectFn:
            if name in self.named:
                raise ValueError(f"dissector {name} registered twice")
            self.named[name] = fn
            self.generation += 1
            self.descriptions[name] = desc or (fn.__doc__ or "").strip().split("\n")[0]
            return fn

        return deco

    def add(self, table: str, key: Any, name: str) -> None:
        """Hang named dissector ``name`` on ``table[key]`` (e.g. ``udp.port`` 5683)."""
        self.tables.setdefault(table, {})[key] = name
        self.generation += 1

    def heuristic(self, table: str, name: str, proto: str) -> Callable[[DissectFn], DissectFn]:
        """Decorator: add ``fn`` to the ordered heuristic list of ``table``."""

        def deco(fn: DissectFn) -> DissectFn:
            self.heuristics.setdefault(table, []).append(Heuristic(name, proto, fn))
            return fn

        return deco


REGISTRY = Registry()
dissector = REGISTRY.dissector
heuristic = REGISTRY.heuristic
