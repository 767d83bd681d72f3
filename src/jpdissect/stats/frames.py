"""The packets DataFrame: one row per frame, the requested fields as typed columns.

Built column by column: each requested field owns a list that the dissection loop appends one
value to per frame (read straight from the packet's field index, as ``-T fields`` does), and the
lists become Arrow arrays of the field's declared type at the end of each batch. No per-frame dict
or row object is ever made, which is what keeps a million-frame frame affordable, and
:func:`iter_batches` hands out :class:`pyarrow.RecordBatch` es of :data:`BATCH_ROWS` rows so a
caller that aggregates can keep memory flat.

Types follow the field declarations (``jpdissect fields``): integers keep their width and
nullability, addresses become their text form (IPv6 compressed, EUI-64 colon-hex), absolute times
become UTC timestamps, relative times durations, byte fields ``binary``. A field absent from a
frame is null; a protocol name (``dtls``) is a boolean "present" column.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from jpdissect.model import FIELDS, FT, FieldDef, Packet

#: Rows per Arrow batch: large enough to amortise the conversion, small enough to stay flat.
BATCH_ROWS = 65_536
OCCURRENCES = ("first", "last", "all", "count")

_INT_TYPES: dict[FT, pa.DataType] = {
    FT.UINT8: pa.uint8(), FT.UINT16: pa.uint16(), FT.UINT24: pa.uint32(), FT.UINT32: pa.uint32(),
    FT.UINT64: pa.uint64(), FT.INT32: pa.int32(), FT.INT64: pa.int64(), FT.FRAMENUM: pa.uint32(),
}


def arrow_type(fd: FieldDef) -> pa.DataType:
    """The Arrow type a field's values take in the packets frame."""
    ft = fd.ftype
    if ft in _INT_TYPES:
        return _INT_TYPES[ft]
    if ft is FT.BOOLEAN or ft is FT.NONE or ft is FT.PROTOCOL:
        return pa.bool_()
    if ft is FT.DOUBLE:
        return pa.float64()
    if ft is FT.BYTES:
        return pa.binary()
    if ft is FT.ABSTIME:
        return pa.timestamp("ns", tz="UTC")
    if ft is FT.RELTIME:
        return pa.duration("ns")
    return pa.string()


def _ip_text(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        try:
            return socket.inet_ntop(socket.AF_INET6 if len(v) == 16 else socket.AF_INET, bytes(v))
        except (ValueError, OSError):
            return bytes(v).hex()
    return None if v is None else str(v)


def _converter(fd: FieldDef) -> Callable[[Any], Any] | None:
    """Per-value conversion to what Arrow takes for the field's type (None: as is)."""
    ft = fd.ftype
    if ft is FT.IPv4 or ft is FT.IPv6:
        return _ip_text
    if ft is FT.ETHER or ft is FT.EUI64:
        return fd.fmt_value
    if ft is FT.NONE or ft is FT.PROTOCOL:
        return lambda _v: True
    if ft is FT.RELTIME:
        return lambda v: round(v * 1e9) if isinstance(v, float) else v
    if ft is FT.STRING:
        return lambda v: v if isinstance(v, str) else str(v)
    if ft is FT.BYTES:
        return lambda v: bytes(v)
    return None


class _Column:
    """One field's values, appended frame by frame."""

    __slots__ = ("abbrev", "fd", "values", "conv", "occurrence", "typ")

    def __init__(self, abbrev: str, occurrence: str) -> None:
        fd = FIELDS.get(abbrev)
        if fd is None:
            raise KeyError(f"unknown field {abbrev!r} (see 'jpdissect fields')")
        self.abbrev = abbrev
        self.fd = fd
        self.values: list[Any] = []
        self.conv = _converter(fd)
        self.occurrence = occurrence
        base = arrow_type(fd)
        self.typ = (pa.list_(base) if occurrence == "all" else pa.int32() if occurrence == "count" else base)

    def append(self, pkt: Packet) -> None:
        nodes = pkt.index.get(self.abbrev)
        if nodes is None:
            vals = pkt.values(self.abbrev)  # synthetic fields (frame.protocols, _ws.expert...)
            if not vals:
                self.values.append(0 if self.occurrence == "count" else None)
                return
        else:
            vals = nodes  # type: ignore[assignment]
        occ = self.occurrence
        conv = self.conv
        if occ == "count":
            self.values.append(len(vals))
            return
        if occ == "all":
            out = [n.value if nodes is not None else n for n in vals]
            self.values.append([conv(v) for v in out] if conv is not None else out)
            return
        item = vals[0] if occ == "first" else vals[-1]
        v = item.value if nodes is not None else item
        if self.fd.ftype is FT.PROTOCOL or self.fd.ftype is FT.NONE:
            v = True
        self.values.append(conv(v) if conv is not None and v is not None else v)

    def take(self) -> pa.Array:
        arr = pa.array(self.values, type=self.typ)
        self.values = []
        return arr


def _declare_all() -> None:
    """Make every field known (frame.* live in the engine module, the rest in the dissectors)."""
    import jpdissect.engine  # noqa: F401
    from jpdissect.dissectors import load_all

    load_all()


def _engine(source: Any, fields: Sequence[str], flt: Any, prefs: Any, decode_as: Any) -> Any:
    from jpdissect.dissectors import load_all
    from jpdissect.engine import Engine
    from jpdissect.model import prime, unprime_all

    load_all()
    unprime_all()
    wanted = list(fields)
    if flt is not None:
        wanted.extend(flt.fields)
    prime(wanted)

    def make() -> Engine:  # one in-order pass, only the packets read: see jpdissect.lifetime
        return Engine(prefs=prefs, decode_as=decode_as, tree=False, cols=False, single_pass=True)

    try:
        from jpdissect.sessions import needs_two_pass, prepare_two_pass
    except ImportError:  # the join-proxy issue not landed: jp.* fields do not exist either
        return make()
    if needs_two_pass(fields, flt.fields if flt is not None else ()):
        return prepare_two_pass(make, source)
    return make()


def iter_batches(source: str | os.PathLike[str], fields: Sequence[str], filter: str | None = None,  # noqa: A002
                 *, occurrence: str = "first", prefs: Any = (), decode_as: Any = (), limit: int = 0,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Record batches of the packets frame, :data:`BATCH_ROWS` rows at a time.

    ``occurrence``: which value of a field that occurs several times in a frame -- ``first``,
    ``last``, ``all`` (a list column) or ``count``. ``filter`` is a display filter; ``limit``
    stops after that many frames are read (like ``-c``).
    """
    if occurrence not in OCCURRENCES:
        raise ValueError(f"occurrence must be one of {', '.join(OCCURRENCES)}")
    from jpdissect.capture import open_capture

    flt = None
    if filter:
        from jpdissect.filters import compile_filter

        flt = compile_filter(filter)
    names = list(dict.fromkeys(fields))
    _declare_all()
    cols = [_Column(f, occurrence) for f in names]
    eng = _engine(source, names, flt, prefs, decode_as)
    appends = [c.append for c in cols]
    rows = 0
    read = 0
    with open_capture(source) as rd:
        for fr in rd:
            pkt = eng.dissect(fr)
            read += 1
            if flt is None or flt(pkt):
                eng.displayed(pkt)
                for ap in appends:
                    ap(pkt)
                rows += 1
                if rows >= batch_rows:
                    yield pa.RecordBatch.from_arrays([c.take() for c in cols], names=names)
                    rows = 0
            if limit and read >= limit:
                break
    if rows or not names:
        yield pa.RecordBatch.from_arrays([c.take() for c in cols], names=names)


def packets(source: str | os.PathLike[str], fields: Sequence[str], filter: str | None = None,  # noqa: A002
            *, occurrence: str = "first", prefs: Any = (), decode_as: Any = (), limit: int = 0) -> pd.DataFrame:
    """One row per frame (passing ``filter``), one typed column per field in ``fields``."""
    names = list(dict.fromkeys(fields))
    _declare_all()
    batches = list(iter_batches(source, names, filter, occurrence=occurrence, prefs=prefs,
                                decode_as=decode_as, limit=limit))
    if batches:
        table = pa.Table.from_batches(batches)
    else:
        table = pa.table({n: pa.array([], type=_Column(n, occurrence).typ) for n in names})
    return table.to_pandas(types_mapper=pd.ArrowDtype)


__all__ = ["BATCH_ROWS", "arrow_type", "iter_batches", "packets"]
