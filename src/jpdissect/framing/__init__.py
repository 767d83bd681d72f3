"""Relay framings the project both builds (the lab, the what-if analysis) and parses (the dissectors).

Each framing is described once, declaratively, and both directions are derived from that description
(DESIGN.md §4): :mod:`jpdissect.framing.jpy` for JPY messages (2-element and the legacy 5-element form)
and the example encrypted JPY header, :mod:`jpdissect.framing.meshcop` for MeshCoP TLVs and the Thread
``c/rx``/``c/tx`` relay messages.

Decoders never raise on wire bytes: they return what they could read, the byte span of every element
and a list of :class:`FramingError` naming the rule broken and the absolute offset, so a dissector can
turn them into fields and expert info without re-implementing the layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class FramingError:
    """A rule broken at ``offset`` (absolute in the buffer), covering ``length`` bytes."""

    offset: int
    message: str
    length: int = 1

    def __str__(self) -> str:
        return f"{self.message} (offset {self.offset})"


class Span(NamedTuple):
    """Where one decoded element sits: the whole item and its value part, both absolute.

    Immutable; a named tuple rather than a frozen dataclass because decoders build one per
    element of every relayed message (several times cheaper to build).
    """

    name: str
    offset: int
    length: int
    value_offset: int
    value_length: int
    value: object


__all__ = ["FramingError", "Span"]
