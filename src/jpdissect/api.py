"""The Python API for scripts: open a capture, iterate packets, read fields, filter.

It is the same path the CLI takes, so a script sees exactly what
``jpdissect read`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from jpdissect.capture import CaptureReader, open_capture
from jpdissect.dissectors import jp, load_all
from jpdissect.engine import Engine
from jpdissect.model import FIELDS, Packet, prime, unprime_all
from jpdissect.sessions import sessions  # noqa: F401 - re-exported: the sessions DataFrame


def _compile(filter_text: str | None) -> Any:
    if not filter_text:
        return None
    from jpdissect.filters import compile_filter

    return compile_filter(filter_text)


def packets(
    source: str | os.PathLike[str] | BinaryIO,
    filter: str | None = None,  # noqa: A002 - tshark calls it a filter
    *,
    fields: Iterable[str] = (),
    prefs: Iterable[str] | dict[str, Any] = (),
    decode_as: Iterable[str] = (),
    tree: bool = False,
    reader: CaptureReader | None = None,
) -> Iterator[Packet]:
    """Dissected packets of a capture, in order, optionally only those passing ``filter``.

    ``fields`` names the fields you will read without a full tree (like
    ``-e``); with ``tree=True`` every field is recorded.
    """
    load_all()  # fields are declared on import: prime after every dissector is loaded
    flt = _compile(filter)
    unprime_all()
    wanted = list(fields)
    if flt is not None:
        wanted.extend(flt.fields)
    prime(wanted)
    eng = Engine(prefs=prefs, decode_as=decode_as, tree=tree)
    jp.install(eng)
    rd = reader if reader is not None else open_capture(source)
    eng.secrets = rd.secrets  # pcapng Decryption Secrets Blocks, filled in as they are read
    try:
        for fr in rd:
            pkt = eng.dissect(fr)
            if flt is None or flt(pkt):
                eng.displayed(pkt)
                yield pkt
    finally:
        if reader is None:
            rd.close()


def field_strings(pkt: Packet, abbrev: str, aggregator: str = ",", occurrence: str = "a") -> str:
    """One ``-T fields`` cell: every occurrence formatted as tshark formats it."""
    fd = FIELDS.get(abbrev)
    if fd is None:
        return ""
    vals = pkt.values(abbrev)
    if not vals:
        return ""
    if occurrence not in ("a", "0"):
        i = int(occurrence)
        i = i - 1 if i > 0 else len(vals) + i
        if not 0 <= i < len(vals):
            return ""
        vals = [vals[i]]
    return aggregator.join(fd.fmt_value(v) for v in vals)


def field_rows(source: str | os.PathLike[str], fields: list[str], **kw: Any) -> list[list[str]]:
    """What ``jpdissect read -r SOURCE -T fields -e …`` prints, as lists of cells."""
    return [[field_strings(p, f) for f in fields] for p in packets(source, fields=fields, **kw)]
