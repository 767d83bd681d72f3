"""CBOR (RFC 8949) for dissectors: bounded well-formedness, diagnostic notation, bounded decoding.

Payloads come from the wire, so every walk here is bounded: nesting depth (:data:`MAX_DEPTH`), item
count (:data:`MAX_ITEMS`), input size (:data:`MAX_INPUT`) and the length of the produced text
(:data:`MAX_DIAG_CHARS`). Nothing recurses deeper than ``MAX_DEPTH``, and a length field claiming
more bytes than the buffer holds is rejected before anything is allocated.

Diagnostic notation (RFC 8949 §8) is produced by our own walker rather than by formatting cbor2's
Python objects: only the encoded bytes know whether a string was indefinite-length (``(_ ...)``) or a
float was half precision, and §8 wants the former shown. :func:`loads` -- the Python value, for
dissectors such as JPY that need it -- checks well-formedness and the bounds with the same walker,
then hands the bytes to cbor2.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import cbor2

#: Deepest nesting of arrays/maps/tags shown or decoded (the project-wide CBOR limit).
MAX_DEPTH = 32
#: Most data items walked in one top-level item.
MAX_ITEMS = 100_000
#: Largest input we agree to walk at all.
MAX_INPUT = 1 << 20
#: Longest diagnostic text produced; longer output is cut with an ellipsis.
MAX_DIAG_CHARS = 8192
#: Longest byte/text string shown in full inside diagnostic notation.
MAX_STRING_SHOWN = 1024

_ELLIPSIS = "…"


class CborError(ValueError):
    """Not well-formed (RFC 8949 §5.3.1, Appendix F) or over a limit; ``offset`` is absolute."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (offset {offset})")
        self.offset = offset
        self.reason = message


class _Budget:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items = 0


def _head(buf: bytes, p: int, end: int) -> tuple[int, int, int | None, int]:
    """Read an initial byte and its argument: (major type, additional info, argument, next offset).

    The argument is None for the indefinite-length marker (ai 31).
    """
    if p >= end:
        raise CborError("RFC 8949 §3: data item cut short", p)
    ib = buf[p]
    mt = ib >> 5
    ai = ib & 0x1F
    p += 1
    if ai < 24:
        return mt, ai, ai, p
    if ai == 24:
        if p + 1 > end:
            raise CborError("RFC 8949 §3: 1-byte argument cut short", p)
        return mt, ai, buf[p], p + 1
    if ai == 25:
        if p + 2 > end:
            raise CborError("RFC 8949 §3: 2-byte argument cut short", p)
        return mt, ai, (buf[p] << 8) | buf[p + 1], p + 2
    if ai == 26:
        if p + 4 > end:
            raise CborError("RFC 8949 §3: 4-byte argument cut short", p)
        return mt, ai, int.from_bytes(buf[p:p + 4], "big"), p + 4
    if ai == 27:
        if p + 8 > end:
            raise CborError("RFC 8949 §3: 8-byte argument cut short", p)
        return mt, ai, int.from_bytes(buf[p:p + 8], "big"), p + 8
    if ai == 31:
        if mt in (0, 1, 6):
            raise CborError(f"RFC 8949 §3.2: major type {mt} cannot be indefinite-length", p - 1)
        return mt, ai, None, p
    raise CborError(f"RFC 8949 §3: additional information {ai} is reserved", p - 1)


def item_end(buf: bytes, off: int = 0, end: int | None = None, max_depth: int = MAX_DEPTH) -> int:
    """Offset just past the one well-formed data item at ``off``; raises :class:`CborError`."""
    if end is None:
        end = len(buf)
    if end - off > MAX_INPUT:
        raise CborError(f"input of {end - off} bytes exceeds the {MAX_INPUT}-byte limit", off)
    return _skip(buf, off, end, 0, max_depth, _Budget())


def _skip(buf: bytes, p: int, end: int, depth: int, max_depth: int, budget: _Budget) -> int:
    budget.items += 1
    if budget.items > MAX_ITEMS:
        raise CborError(f"more than {MAX_ITEMS} data items", p)
    start = p
    mt, ai, arg, p = _head(buf, p, end)
    if mt <= 1:
        return p
    if mt in (2, 3):
        if arg is None:
            while True:
                if p >= end:
                    raise CborError("RFC 8949 §3.2.3: indefinite-length string without break", start)
                if buf[p] == 0xFF:
                    return p + 1
                cmt, _, carg, q = _head(buf, p, end)
                if cmt != mt or carg is None:
                    raise CborError("RFC 8949 §3.2.3: chunk of an indefinite-length string has the wrong type", p)
                if q + carg > end:
                    raise CborError("RFC 8949 §3: string chunk runs past the end", p)
                p = q + carg
        if p + arg > end:
            raise CborError(f"RFC 8949 §3: string of {arg} bytes runs past the end", start)
        return p + arg
    if mt == 7:
        if ai == 24 and arg is not None and arg < 32:
            raise CborError("RFC 8949 §3.3: simple value below 32 in two-byte form", start)
        if arg is None:
            raise CborError("RFC 8949 §3.2.1: break outside an indefinite-length item", start)
        return p
    if depth >= max_depth:
        raise CborError(f"nesting deeper than {max_depth}", start)
    if mt == 6:
        return _skip(buf, p, end, depth + 1, max_depth, budget)
    per = 2 if mt == 5 else 1
    if arg is None:
        while True:
            if p >= end:
                raise CborError("RFC 8949 §3.2.2: indefinite-length container without break", start)
            if buf[p] == 0xFF:
                return p + 1
            for _ in range(per):
                p = _skip(buf, p, end, depth + 1, max_depth, budget)
    if arg * per > end - p:  # every item takes at least one byte: refuse before looping
        raise CborError(f"RFC 8949 §3: {arg} elements cannot fit in the remaining bytes", start)
    for _ in range(arg * per):
        p = _skip(buf, p, end, depth + 1, max_depth, budget)
    return p


# ---------------------------------------------------------------------------
# Diagnostic notation (RFC 8949 §8)


class _Out:
    __slots__ = ("parts", "n", "limit", "full")

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.limit = limit
        self.full = False

    def w(self, s: str) -> None:
        if self.full:
            raise _Full
        self.parts.append(s)
        self.n += len(s)
        if self.n > self.limit:
            self.full = True
            raise _Full


class _Full(Exception):
    pass


def _fmt_float(x: float) -> str:
    """RFC 8949 §8: floats always show a decimal point or exponent; Infinity/NaN spelled out."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    r = repr(x)
    if "e" in r:
        mant, exp = r.split("e")
        if "." not in mant:
            mant += ".0"
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        return f"{mant}e{sign}{digits}"
    if "." not in r:
        r += ".0"
    return r


def _text(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch, f"\\u{o:04x}"))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _bytes(b: bytes) -> str:
    if len(b) > MAX_STRING_SHOWN:
        return f"h'{b[:MAX_STRING_SHOWN].hex()}{_ELLIPSIS}'"
    return f"h'{b.hex()}'"


def _diag(buf: bytes, p: int, end: int, depth: int, max_depth: int, out: _Out, budget: _Budget) -> int:
    budget.items += 1
    if budget.items > MAX_ITEMS:
        raise CborError(f"more than {MAX_ITEMS} data items", p)
    start = p
    mt, ai, arg, p = _head(buf, p, end)
    w = out.w
    if mt == 0:
        w(str(arg))
        return p
    if mt == 1:
        w(str(-1 - arg))  # type: ignore[operator]
        return p
    if mt in (2, 3):
        if arg is None:
            chunks: list[str] = []
            while True:
                if p >= end:
                    raise CborError("RFC 8949 §3.2.3: indefinite-length string without break", start)
                if buf[p] == 0xFF:
                    p += 1
                    break
                cmt, _, carg, q = _head(buf, p, end)
                if cmt != mt or carg is None:
                    raise CborError("RFC 8949 §3.2.3: chunk of an indefinite-length string has the wrong type", p)
                if q + carg > end:
                    raise CborError("RFC 8949 §3: string chunk runs past the end", p)
                chunks.append(_str_item(mt, buf[q:q + carg], q))
                p = q + carg
            # RFC 8949 §8.1: an indefinite-length string without chunks is ''_ / ""_
            w("(_ " + ", ".join(chunks) + ")" if chunks else ("''_" if mt == 2 else '""_'))
            return p
        if p + arg > end:
            raise CborError(f"RFC 8949 §3: string of {arg} bytes runs past the end", start)
        w(_str_item(mt, buf[p:p + arg], p))
        return p + arg
    if mt == 7:
        if arg is None:
            raise CborError("RFC 8949 §3.2.1: break outside an indefinite-length item", start)
        if ai == 25:
            w(_fmt_float(struct.unpack(">e", arg.to_bytes(2, "big"))[0]))
        elif ai == 26:
            w(_fmt_float(struct.unpack(">f", arg.to_bytes(4, "big"))[0]))
        elif ai == 27:
            w(_fmt_float(struct.unpack(">d", arg.to_bytes(8, "big"))[0]))
        elif ai == 24 and arg < 32:
            raise CborError("RFC 8949 §3.3: simple value below 32 in two-byte form", start)
        else:
            w({20: "false", 21: "true", 22: "null", 23: "undefined"}.get(arg, f"simple({arg})"))
        return p
    if depth >= max_depth:
        raise CborError(f"nesting deeper than {max_depth}", start)
    if mt == 6:
        w(f"{arg}(")
        p = _diag(buf, p, end, depth + 1, max_depth, out, budget)
        w(")")
        return p
    is_map = mt == 5
    w("{" if is_map else "[")
    if arg is None:
        w("_ ")
        first = True
        while True:
            if p >= end:
                raise CborError("RFC 8949 §3.2.2: indefinite-length container without break", start)
            if buf[p] == 0xFF:
                p += 1
                break
            if not first:
                w(", ")
            first = False
            p = _diag(buf, p, end, depth + 1, max_depth, out, budget)
            if is_map:
                w(": ")
                p = _diag(buf, p, end, depth + 1, max_depth, out, budget)
    else:
        per = 2 if is_map else 1
        if arg * per > end - p:
            raise CborError(f"RFC 8949 §3: {arg} elements cannot fit in the remaining bytes", start)
        for i in range(arg):
            if i:
                w(", ")
            p = _diag(buf, p, end, depth + 1, max_depth, out, budget)
            if is_map:
                w(": ")
                p = _diag(buf, p, end, depth + 1, max_depth, out, budget)
    w("}" if is_map else "]")
    return p


def _str_item(mt: int, b: bytes, at: int) -> str:
    if mt == 2:
        return _bytes(bytes(b))
    try:
        s = bytes(b).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CborError("RFC 8949 §3.1: text string is not valid UTF-8", at + exc.start) from None
    if len(s) > MAX_STRING_SHOWN:
        return _text(s[:MAX_STRING_SHOWN])[:-1] + _ELLIPSIS + '"'
    return _text(s)


def diag(buf: bytes, off: int = 0, end: int | None = None, *, max_depth: int = MAX_DEPTH,
         max_chars: int = MAX_DIAG_CHARS) -> tuple[str, int]:
    """Diagnostic notation of the one data item at ``off``: ``(text, offset after the item)``.

    Raises :class:`CborError` when the item is not well-formed or breaks a limit. Text longer than
    ``max_chars`` is cut with "…" (the item is still checked to its end).
    """
    if end is None:
        end = len(buf)
    if end - off > MAX_INPUT:
        raise CborError(f"input of {end - off} bytes exceeds the {MAX_INPUT}-byte limit", off)
    out = _Out(max_chars)
    try:
        after = _diag(buf, off, end, 0, max_depth, out, _Budget())
    except _Full:
        after = item_end(buf, off, end, max_depth)
        return "".join(out.parts)[:max_chars] + _ELLIPSIS, after
    return "".join(out.parts), after


def diag_all(buf: bytes, off: int = 0, end: int | None = None, *, sequence: bool = False,
             max_chars: int = MAX_DIAG_CHARS) -> tuple[list[str], CborError | None]:
    """Diagnostic notation of a whole body: one item (trailing bytes are an error) or a sequence.

    Never raises: returns what was rendered and the first error (None when well-formed).
    RFC 8742 CBOR sequences are items back to back; an empty body is an empty sequence.
    """
    if end is None:
        end = len(buf)
    items: list[str] = []
    p = off
    try:
        while p < end or (not sequence and not items):
            text, p = diag(buf, p, end, max_chars=max_chars)
            items.append(text)
            if not sequence:
                break
            if len(items) >= MAX_ITEMS:
                raise CborError(f"more than {MAX_ITEMS} items in the sequence", p)
        if not sequence and p != end:
            raise CborError(f"RFC 8949 §5.3.1: {end - p} bytes after the data item", p)
    except CborError as exc:
        return items, exc
    return items, None


def loads(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The Python value of one CBOR item (cbor2's types), after a bounded well-formedness check."""
    data = bytes(data)
    after = item_end(data, 0, len(data), max_depth)
    if after != len(data):
        raise CborError(f"RFC 8949 §5.3.1: {len(data) - after} bytes after the data item", after)
    try:
        return cbor2.loads(data)
    except Exception as exc:  # noqa: BLE001 - cbor2's validity checks (e.g. tag content) beyond ours
        raise CborError(f"cbor2: {exc}", 0) from None
