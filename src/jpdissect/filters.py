"""The display-filter language: Wireshark 4.0 display filters, compiled once, evaluated cheaply.

Users arrive with tshark filters in their fingers and in their scripts, so the
language follows ``man wireshark-filter`` (4.0) rather than inventing one:
presence tests, the four equality flavours (``==`` any_eq, ``!=`` all_ne,
``===`` all_eq, ``!==`` any_ne), ordering, ``contains``, ``matches``/``~``
(case-insensitive, like Wireshark's PCRE2 default), ``in {…}`` with ranges,
``not in``, slices, ``any``/``all`` modifiers, arithmetic with ``{ }``
grouping, bitwise ``&``, the functions ``len count upper lower string min
max abs`` and ``${field}`` references.  Deliberate departures are listed at
the end of this docstring.

Literals are untyped until they meet a field: ``ff:ee`` is bytes next to a
byte field, ``1.2.3.4`` an address next to ``ip.src``, ``1.5`` seconds next
to a relative time.  That is why literals are converted in the semantic pass,
once, at compile time -- evaluation then only compares ready Python values.

Every error is a :class:`FilterError` carrying the character span of the
offending token, so the CLI can print a tshark-style caret and the TUI can
highlight the span while the user types.

Evaluation is the hot path of ``read -Y``: each node becomes a closure, and
the common shapes (``field == const``, ``in {consts}``, presence, and/or/not)
are also emitted as Python source and compiled into one function per filter,
so ``udp.port == 5684`` costs one Python frame plus ``pkt.values()``.

Departures from tshark 4.0 (all on purpose):

* ``xor`` / ``^^`` exist (Wireshark 4.2 syntax; precedence between ``and`` and ``or``).
* Set elements may be separated by whitespace as well as commas (the 3.x syntax),
  so old filters keep working.  ``{1 -2}`` is therefore a subtraction, not two elements.
* Host names are never resolved: ``ip.addr == example.com`` is an error.
* A CIDR literal only works with the equality operators and ``in``; ordering
  against a netmask is refused instead of being silently meaningless.
* Regular expressions are Python's ``re``, not PCRE2; a leading ``(?-i)`` is
  understood, other PCRE-only syntax is reported as an error.
* The layer operator ``field#n`` is refused with an error (packets do not
  record which layer an occurrence came from).
"""

from __future__ import annotations

import calendar
import decimal
import ipaddress
import math
import operator
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jpdissect.model import FIELDS, FT, INTEGER_TYPES, FieldDef

__all__ = ["Filter", "FilterError", "compile_filter", "MAX_DEPTH"]

#: Parenthesis / operator nesting beyond this is refused: recursion in the
#: parser must end in a FilterError, never in a RecursionError.
MAX_DEPTH = 100

#: Longest number literal accepted; Python refuses to convert >4300-digit
#: strings anyway and nothing in a packet is that big.
_MAX_NUMBER_LEN = 64

Pred = Callable[[Any], bool]
Getter = Callable[[Any], list[Any]]


# ---------------------------------------------------------------------------
# Errors


class FilterError(ValueError):
    """A filter that cannot be compiled, with the span of the offending token.

    ``position``/``length`` are character offsets into ``text``; ``length``
    0 means "at the end of the input".
    """

    def __init__(self, message: str, position: int = 0, length: int = 1, text: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.length = length
        self.text = text

    def __str__(self) -> str:
        return self.message

    def caret(self) -> str:
        """The filter line and a ``^~~~`` marker under the problem, as tshark prints it."""
        text = self.text
        pos = max(0, min(self.position, len(text)))
        start = text.rfind("\n", 0, pos) + 1
        stop = text.find("\n", pos)
        line = text[start:] if stop < 0 else text[start:stop]
        # Keep tabs so the marker lines up under a tab-indented filter.
        pad = "".join("\t" if ch == "\t" else " " for ch in text[start:pos])
        width = max(1, min(self.length, len(line) - (pos - start)) if self.length else 1)
        return f"{line}\n{pad}^{'~' * (width - 1)}"


# ---------------------------------------------------------------------------
# The compiled filter


class Filter:
    """A compiled display filter: call it with a packet to get a bool.

    ``fields`` lists every field and protocol the filter mentions so the
    engine can prime them (dissectors only record what somebody asked for).
    ``references`` are the fields used as ``${field}``; their values come from
    the packet given to :meth:`set_reference` (the TUI's selected frame).
    """

    __slots__ = ("text", "fields", "references", "match", "_refvals", "_refgetters")

    def __init__(
        self,
        text: str,
        match: Pred,
        fields: set[str],
        refgetters: dict[str, Getter] | None = None,
        refvals: dict[str, list[Any]] | None = None,
    ) -> None:
        self.text = text
        self.match = match
        self.fields = fields
        self._refgetters = refgetters or {}
        self._refvals = refvals if refvals is not None else {}
        self.references: set[str] = set(self._refgetters)

    def __call__(self, pkt: Any) -> bool:
        # Replaced per instance by compile_filter (see _make_filter); ``match``
        # already swallows evaluation errors.
        return self.match(pkt)

    def set_reference(self, pkt: Any | None) -> None:
        """Load ``${field}`` values from ``pkt`` (``None``: references have no value)."""
        self._refvals.clear()
        if pkt is None:
            return
        for abbrev, get in self._refgetters.items():
            self._refvals[abbrev] = list(get(pkt))

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


def _always(pkt: Any) -> bool:
    return True


# ---------------------------------------------------------------------------
# Lexer


@dataclass(slots=True)
class _Tok:
    kind: str  # word str char op slice ref eof
    text: str
    pos: int
    end: int
    value: Any = None


_WORD_RE = re.compile(r"[A-Za-z0-9_:][A-Za-z0-9_.:/\-]*")
_OPS = (
    "===", "!==", "==", "!=", "<=", ">=", "&&", "||", "^^", "..",
    "<", ">", "!", "~", "&", "(", ")", "{", "}", ",", "+", "-", "*", "/", "%", "#",
)
_SIMPLE_ESC = {
    "'": b"'", '"': b'"', "\\": b"\\", "a": b"\a", "b": b"\b", "f": b"\f",
    "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
}
_HEX = frozenset("0123456789abcdefABCDEF")


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == '"' or (c in "rR" and i + 1 < n and text[i + 1] == '"'):
            tok = _lex_string(text, i)
            toks.append(tok)
            i = tok.end
            continue
        if c == "'":
            tok = _lex_char(text, i)
            toks.append(tok)
            i = tok.end
            continue
        if c == "[":
            j = text.find("]", i + 1)
            if j < 0:
                raise FilterError("The closing bracket of a slice is missing.", i, n - i)
            toks.append(_Tok("slice", text[i : j + 1], i, j + 1, text[i + 1 : j]))
            i = j + 1
            continue
        if c == "$" and i + 1 < n and text[i + 1] == "{":
            j = text.find("}", i + 2)
            if j < 0:
                raise FilterError("The closing brace of a field reference is missing.", i, n - i)
            toks.append(_Tok("ref", text[i : j + 1], i, j + 1, text[i + 2 : j].strip()))
            i = j + 1
            continue
        m = _WORD_RE.match(text, i)
        if m:
            _split_dots(toks, m.group(), i)
            i = m.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                toks.append(_Tok("op", op, i, i + len(op)))
                i += len(op)
                break
        else:
            raise FilterError(f'"{c}" was unexpected in this context.', i, 1)
    toks.append(_Tok("eof", "", n, n))
    return toks


def _split_dots(toks: list[_Tok], word: str, pos: int) -> None:
    """Words absorb dots (addresses, field names), but ``..`` is the range operator."""
    start = 0
    while True:
        k = word.find("..", start)
        if k < 0:
            break
        if k > start:
            toks.append(_Tok("word", word[start:k], pos + start, pos + k))
        toks.append(_Tok("op", "..", pos + k, pos + k + 2))
        start = k + 2
    if start < len(word):
        toks.append(_Tok("word", word[start:], pos + start, pos + len(word)))


def _lex_string(text: str, i: int) -> _Tok:
    """A double-quoted string: value is ``(bytes, raw)``; escapes per wireshark-filter(4)."""
    raw = text[i] != '"'
    j = i + 2 if raw else i + 1
    n = len(text)
    out = bytearray()
    while True:
        if j >= n:
            raise FilterError("The final quote was missing from a quoted string.", i, n - i)
        c = text[j]
        if c == '"':
            return _Tok("str", text[i : j + 1], i, j + 1, (bytes(out), raw))
        if c == "\\":
            if j + 1 >= n:
                raise FilterError("The final quote was missing from a quoted string.", i, n - i)
            if raw:
                # Raw strings keep the backslash; it only stops \" from ending the string.
                out += text[j : j + 2].encode("utf-8", "surrogatepass")
                j += 2
                continue
            b, j = _escape(text, j)
            out += b
            continue
        out += c.encode("utf-8", "surrogatepass")
        j += 1


def _escape(text: str, j: int) -> tuple[bytes, int]:
    """Decode one escape starting at the backslash ``text[j]``; returns bytes and the next index."""
    e = text[j + 1]
    simple = _SIMPLE_ESC.get(e)
    if simple is not None:
        return simple, j + 2
    if e in "01234567":
        k = j + 1
        while k < len(text) and k < j + 4 and text[k] in "01234567":
            k += 1
        v = int(text[j + 1 : k], 8)
        if v > 0xFF:
            raise FilterError(f"{text[j:k]} is not a valid octal escape sequence.", j, k - j)
        return bytes((v,)), k
    if e == "x":
        k = j + 2
        while k < len(text) and k < j + 4 and text[k] in _HEX:
            k += 1
        if k == j + 2:
            raise FilterError("\\x is not a valid character escape sequence.", j, 2)
        return bytes((int(text[j + 2 : k], 16),)), k
    if e in "uU":
        width = 4 if e == "u" else 8
        digits = text[j + 2 : j + 2 + width]
        if len(digits) != width or not all(d in _HEX for d in digits):
            raise FilterError(f"\\{e} needs {width} hex digits.", j, min(len(text) - j, 2 + width))
        cp = int(digits, 16)
        if cp > 0x10FFFF:
            raise FilterError(f"\\{e}{digits} is not a valid Unicode code point.", j, 2 + width)
        return chr(cp).encode("utf-8", "surrogatepass"), j + 2 + width
    raise FilterError(f"\\{e} is not a valid character escape sequence.", j, 2)


def _lex_char(text: str, i: int) -> _Tok:
    """A C-style character constant: its value is the byte value (an int)."""
    n = len(text)
    j = i + 1
    if j >= n:
        raise FilterError("The closing quote of a character constant is missing.", i, n - i)
    if text[j] == "\\":
        if j + 1 >= n:
            raise FilterError("The closing quote of a character constant is missing.", i, n - i)
        b, j = _escape(text, j)
    else:
        b = text[j].encode("utf-8", "surrogatepass")
        j += 1
    end = text.find("'", j)
    if end < 0:
        raise FilterError("The closing quote of a character constant is missing.", i, n - i)
    if end != j or len(b) != 1:
        raise FilterError(
            f"{text[i : end + 1]} is too long to be a valid character constant.", i, end + 1 - i
        )
    return _Tok("char", text[i : end + 1], i, end + 1, b[0])


# ---------------------------------------------------------------------------
# Syntax tree


@dataclass(slots=True)
class _Node:
    pos: int
    end: int


@dataclass(slots=True)
class _Field(_Node):
    fd: FieldDef


@dataclass(slots=True)
class _Ref(_Node):
    fd: FieldDef


@dataclass(slots=True)
class _Lit(_Node):
    tok: _Tok
    neg: bool = False  # a unary minus folded into the literal


@dataclass(slots=True)
class _Slice(_Node):
    base: _Node
    ranges: list[tuple[str, int, int]]


@dataclass(slots=True)
class _Func(_Node):
    name: str
    name_end: int
    args: list[_Node]


@dataclass(slots=True)
class _Arith(_Node):
    op: str
    left: _Node
    right: _Node
    op_pos: int


@dataclass(slots=True)
class _Neg(_Node):
    arg: _Node


@dataclass(slots=True)
class _Range(_Node):
    lo: _Node
    hi: _Node


@dataclass(slots=True)
class _Cmp(_Node):
    op: str
    base: str
    quant: str
    lhs: _Node
    rhs: _Node
    op_pos: int


@dataclass(slots=True)
class _In(_Node):
    lhs: _Node
    elems: list[_Node]
    negated: bool
    quant: str


@dataclass(slots=True)
class _Exists(_Node):
    arg: _Node


@dataclass(slots=True)
class _Logic(_Node):
    op: str  # and or xor
    items: list[_Node]


@dataclass(slots=True)
class _Not(_Node):
    arg: _Node


# The comparison operators: text -> (base predicate, default quantifier).
_CMP_OPS: dict[str, tuple[str, str]] = {
    "==": ("eq", "any"), "eq": ("eq", "any"), "any_eq": ("eq", "any"),
    "!=": ("ne", "all"), "ne": ("ne", "all"), "all_ne": ("ne", "all"),
    "===": ("eq", "all"), "all_eq": ("eq", "all"),
    "!==": ("ne", "any"), "any_ne": ("ne", "any"),
    ">": ("gt", "any"), "gt": ("gt", "any"), ">=": ("ge", "any"), "ge": ("ge", "any"),
    "<": ("lt", "any"), "lt": ("lt", "any"), "<=": ("le", "any"), "le": ("le", "any"),
    "contains": ("contains", "any"), "matches": ("matches", "any"), "~": ("matches", "any"),
}
_KEYWORDS = frozenset(
    {"and", "or", "xor", "not", "in", "any", "all", "bitwise_and"} | {k for k in _CMP_OPS if k.isalpha()}
    | {"any_eq", "all_ne", "all_eq", "any_ne"}
)
_FUNCS = frozenset({"len", "count", "upper", "lower", "string", "min", "max", "abs"})
_FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


# ---------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive descent over the token list; precedence follows wireshark-filter(4)."""

    def __init__(self, text: str, toks: list[_Tok]) -> None:
        self.text = text
        self.toks = toks
        self.i = 0
        self.depth = 0

    # -- token helpers ---------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        t = self.tok
        return (t.kind == "op" and t.text in ops) or (t.kind == "word" and t.text in ops)

    def unexpected(self, t: _Tok | None = None) -> FilterError:
        t = t or self.tok
        if t.kind == "eof":
            return FilterError("Unexpected end of filter expression.", t.pos, 0)
        return FilterError(f'"{t.text}" was unexpected in this context.', t.pos, t.end - t.pos)

    def enter(self, t: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError("Filter expression is nested too deeply.", t.pos, max(1, t.end - t.pos))

    # -- logical level ---------------------------------------------------
    def parse(self) -> _Node:
        node = self.parse_or()
        if self.tok.kind != "eof":
            raise self.unexpected()
        return node

    def _binary(self, ops: tuple[str, ...], name: str, sub: Callable[[], _Node]) -> _Node:
        first = sub()
        items = [first]
        while self.is_op(*ops):
            self.next()
            items.append(sub())
        if len(items) == 1:
            return first
        return _Logic(first.pos, items[-1].end, name, items)

    def parse_or(self) -> _Node:
        return self._binary(("or", "||"), "or", self.parse_xor)

    def parse_xor(self) -> _Node:
        return self._binary(("xor", "^^"), "xor", self.parse_and)

    def parse_and(self) -> _Node:
        return self._binary(("and", "&&"), "and", self.parse_not)

    def parse_not(self) -> _Node:
        t = self.tok
        if self.is_op("not", "!"):
            self.next()
            self.enter(t)
            arg = self.parse_not()
            self.depth -= 1
            return _Not(t.pos, arg.end, arg)
        return self.parse_test()

    def parse_test(self) -> _Node:
        t = self.tok
        if t.kind == "op" and t.text == "(":
            self.next()
            self.enter(t)
            node = self.parse_or()
            self.depth -= 1
            if not self.is_op(")"):
                raise self.unexpected()
            self.next()
            return node
        quant = ""
        if t.kind == "word" and t.text in ("any", "all"):
            quant = t.text
            self.next()
        lhs = self.parse_value()
        op = self.tok
        if op.kind in ("op", "word") and op.text in _CMP_OPS:
            self.next()
            rhs = self.parse_value()
            base, q = _CMP_OPS[op.text]
            return _Cmp(t.pos, rhs.end, op.text, base, quant or q, lhs, rhs, op.pos)
        negated = False
        if op.kind == "word" and op.text == "not" and self.peek().kind == "word" and self.peek().text == "in":
            self.next()
            negated = True
        if self.tok.kind == "word" and self.tok.text == "in":
            self.next()
            elems, end = self.parse_set()
            return _In(t.pos, end, lhs, elems, negated, quant or "any")
        if quant:
            raise FilterError(f'"{quant}" needs a comparison after the field.', t.pos, t.end - t.pos)
        return _Exists(lhs.pos, lhs.end, lhs)

    def parse_set(self) -> tuple[list[_Node], int]:
        if not self.is_op("{"):
            raise self.unexpected()
        self.next()
        elems: list[_Node] = []
        while True:
            if self.is_op("}") and elems:
                return elems, self.next().end
            lo = self.parse_value()
            if self.is_op(".."):
                self.next()
                hi = self.parse_value()
                elems.append(_Range(lo.pos, hi.end, lo, hi))
            else:
                elems.append(lo)
            if self.is_op(","):
                self.next()
                if self.is_op("}"):
                    raise self.unexpected()

    # -- value level -----------------------------------------------------
    def parse_value(self) -> _Node:
        return self._arith(("&", "bitwise_and"), self.parse_additive)

    def _arith(self, ops: tuple[str, ...], sub: Callable[[], _Node]) -> _Node:
        left = sub()
        while self.is_op(*ops):
            t = self.next()
            self.enter(t)
            right = sub()
            self.depth -= 1
            op = "&" if t.text == "bitwise_and" else t.text
            left = _Arith(left.pos, right.end, op, left, right, t.pos)
        return left

    def parse_additive(self) -> _Node:
        return self._arith(("+", "-"), self.parse_mult)

    def parse_mult(self) -> _Node:
        return self._arith(("*", "/", "%"), self.parse_unary)

    def parse_unary(self) -> _Node:
        t = self.tok
        if self.is_op("-", "+"):
            self.next()
            self.enter(t)
            arg = self.parse_unary()
            self.depth -= 1
            if t.text == "+":
                return arg
            if isinstance(arg, _Lit) and arg.tok.kind == "word" and not arg.neg:
                return _Lit(t.pos, arg.end, arg.tok, True)
            return _Neg(t.pos, arg.end, arg)
        return self.parse_primary()

    def parse_primary(self) -> _Node:
        t = self.tok
        node: _Node
        if t.kind == "op" and t.text == "{":
            self.next()
            self.enter(t)
            node = self.parse_value()
            self.depth -= 1
            if not self.is_op("}"):
                raise self.unexpected()
            end = self.next().end
            node = _grouped(node, t.pos, end)
        elif t.kind == "word":
            self.next()
            if t.text in FIELDS:
                node = _Field(t.pos, t.end, FIELDS[t.text])
            elif t.text in _KEYWORDS:
                raise self.unexpected(t)
            elif self.is_op("("):
                node = self.parse_call(t)
            else:
                node = _Lit(t.pos, t.end, t)
        elif t.kind in ("str", "char"):
            self.next()
            node = _Lit(t.pos, t.end, t)
        elif t.kind == "ref":
            self.next()
            fd = FIELDS.get(t.value)
            if fd is None:
                raise FilterError(
                    f'"{t.value}" is neither a field nor a protocol name.', t.pos, t.end - t.pos
                )
            node = _Ref(t.pos, t.end, fd)
        else:
            raise self.unexpected()
        while True:
            if self.tok.kind == "slice":
                s = self.next()
                node = _Slice(node.pos, s.end, node, _parse_ranges(s))
            elif self.is_op("#"):
                h = self.tok
                raise FilterError(
                    "The layer operator (#) is not supported: jpdissect does not record which "
                    "protocol layer a field occurrence belongs to.",
                    h.pos, 1,
                )
            else:
                return node

    def parse_call(self, name: _Tok) -> _Node:
        if name.text not in _FUNCS:
            raise FilterError(f"Function '{name.text}' does not exist", name.pos, name.end - name.pos)
        self.next()  # (
        self.enter(name)
        args: list[_Node] = []
        if not self.is_op(")"):
            while True:
                args.append(self.parse_value())
                if self.is_op(","):
                    self.next()
                    continue
                break
        self.depth -= 1
        if not self.is_op(")"):
            raise self.unexpected()
        end = self.next().end
        return _Func(name.pos, end, name.text, name.end, args)


def _grouped(node: _Node, pos: int, end: int) -> _Node:
    """Widen a ``{ }`` group's span so errors point at the braces, keep the node kind."""
    node.pos, node.end = pos, end
    return node


_RANGE_RES = (
    ("len", re.compile(r"\s*(-?\d+)\s*:\s*(\d+)\s*\Z")),
    ("toend", re.compile(r"\s*(-?\d+)\s*:\s*\Z")),
    ("head", re.compile(r"\s*:\s*(\d+)\s*\Z")),
    ("incl", re.compile(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*\Z")),
    ("one", re.compile(r"\s*(-?\d+)\s*\Z")),
)


def _parse_ranges(tok: _Tok) -> list[tuple[str, int, int]]:
    """``[i:j]``, ``[i-j]``, ``[i]``, ``[:j]``, ``[i:]`` and comma-joined lists of them."""
    out: list[tuple[str, int, int]] = []
    pos = tok.pos + 1
    for part in tok.value.split(","):
        span = (pos, max(1, len(part)))
        pos += len(part) + 1
        match = next(((k, m) for k, rx in _RANGE_RES if (m := rx.match(part))), None)
        if match is None or any(len(g) > _MAX_NUMBER_LEN for g in match[1].groups()):
            raise FilterError(f'"{part.strip()}" is not a valid slice range.', *span)
        kind, m = match
        nums = [int(g) for g in m.groups()]
        if kind == "len":
            if nums[1] <= 0:
                raise FilterError(f"Slice length must be positive in \"{part.strip()}\".", *span)
            out.append(("len", nums[0], nums[1]))
        elif kind == "toend":
            out.append(("toend", nums[0], 0))
        elif kind == "head":
            if nums[0] <= 0:
                raise FilterError(f"Slice length must be positive in \"{part.strip()}\".", *span)
            out.append(("len", 0, nums[0]))
        elif kind == "incl":
            a, b = nums
            if (a >= 0) == (b >= 0) and b < a:
                raise FilterError(f"Range {a}-{b} isn't valid because {a} is greater than {b}.", *span)
            out.append(("incl", a, b))
        else:
            out.append(("len", nums[0], 1))
    return out


# ---------------------------------------------------------------------------
# Types


_TYPE_NAMES = {
    FT.NONE: "Label", FT.PROTOCOL: "Protocol", FT.BOOLEAN: "Boolean",
    FT.UINT8: "Unsigned integer (1 byte)", FT.UINT16: "Unsigned integer (2 bytes)",
    FT.UINT24: "Unsigned integer (3 bytes)", FT.UINT32: "Unsigned integer (4 bytes)",
    FT.UINT64: "Unsigned integer (8 bytes)", FT.INT32: "Signed integer (4 bytes)",
    FT.INT64: "Signed integer (8 bytes)", FT.DOUBLE: "Floating point (double-precision)",
    FT.ABSTIME: "Date and time", FT.RELTIME: "Time offset", FT.STRING: "Character string",
    FT.BYTES: "Byte sequence", FT.ETHER: "Ethernet or other MAC address",
    FT.EUI64: "EUI64 address", FT.IPv4: "IPv4 address", FT.IPv6: "IPv6 address",
    FT.FRAMENUM: "Frame number",
}
_CLASS_NAMES = {
    "int": "Integer", "bool": "Boolean", "double": "Floating point (double-precision)",
    "reltime": "Time offset", "abstime": "Date and time", "string": "Character string",
    "bytes": "Byte sequence", "ether": "Ethernet or other MAC address", "eui64": "EUI64 address",
    "ipv4": "IPv4 address", "ipv6": "IPv6 address", "none": "Label",
}
_FT_CLASS = {
    FT.BOOLEAN: "bool", FT.DOUBLE: "double", FT.RELTIME: "reltime", FT.ABSTIME: "abstime",
    FT.STRING: "string", FT.BYTES: "bytes", FT.PROTOCOL: "bytes", FT.ETHER: "ether",
    FT.EUI64: "eui64", FT.IPv4: "ipv4", FT.IPv6: "ipv6", FT.NONE: "none",
}
_INT_RANGE = {
    FT.UINT8: (0, 0xFF), FT.UINT16: (0, 0xFFFF), FT.UINT24: (0, 0xFFFFFF),
    FT.UINT32: (0, 0xFFFFFFFF), FT.UINT64: (0, 2**64 - 1), FT.FRAMENUM: (0, 0xFFFFFFFF),
    FT.INT32: (-(2**31), 2**31 - 1), FT.INT64: (-(2**63), 2**63 - 1),
}
# What len() of a number field is: the size of its type on the wire, as in Wireshark.
_WIRE_SIZE = {
    FT.UINT8: 1, FT.UINT16: 2, FT.UINT24: 3, FT.UINT32: 4, FT.UINT64: 8, FT.FRAMENUM: 4,
    FT.INT32: 4, FT.INT64: 8, FT.DOUBLE: 8,
}
_BYTESLIKE = frozenset({"bytes", "ether", "eui64"})
_ORDERED = frozenset(
    {"int", "bool", "double", "reltime", "abstime", "string", "bytes", "ether", "eui64", "ipv4", "ipv6"}
)
_CONTAINS_OK = frozenset({"string", "bytes", "ether", "eui64"})
_ADDR_LEN = {"ether": 6, "eui64": 8, "ipv4": 4, "ipv6": 16}


@dataclass(slots=True, frozen=True)
class _Ty:
    cls: str
    fd: FieldDef | None = None

    @property
    def name(self) -> str:
        if self.fd is not None:
            return _TYPE_NAMES.get(self.fd.ftype, self.fd.ftype.value)
        return _CLASS_NAMES[self.cls]


def _ty_of(fd: FieldDef) -> _Ty:
    if fd.ftype in INTEGER_TYPES:
        return _Ty("int", fd)
    return _Ty(_FT_CLASS.get(fd.ftype, "none"), fd)


def _compatible(a: _Ty, b: _Ty) -> bool:
    return a.cls == b.cls or (a.cls in _BYTESLIKE and b.cls in _BYTESLIKE)


@dataclass(slots=True)
class _Val:
    """A compiled value expression: a getter of all its values in a packet.

    ``const`` holds the values when they are known at compile time (literals
    and arithmetic on them); ``abbrev`` is set when the getter is exactly
    ``pkt.values(abbrev)``, which lets the fast paths skip a Python frame.
    """

    get: Getter
    ty: _Ty
    pos: int
    end: int
    const: tuple[Any, ...] | None = None
    abbrev: str | None = None


class _Net:
    """An address literal with a netmask (``10.0.0.0/8``): equality means "inside"."""

    __slots__ = ("net", "mask", "text")

    def __init__(self, net: int, mask: int, text: str) -> None:
        self.net = net
        self.mask = mask
        self.text = text

    def match(self, v: Any) -> bool:
        return (int.from_bytes(v, "big") & self.mask) == self.net


class _OneOf:
    """A value-string name that several values share: equality means "any of them"."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable[Any]) -> None:
        self.values = frozenset(values)

    def match(self, v: Any) -> bool:
        return v in self.values


_Matcher = _Net | _OneOf


# ---------------------------------------------------------------------------
# Literal conversion (by the type of the other side)


_INT_RE = re.compile(r"-?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)\Z")
_FLOAT_RE = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,3})?\Z")
_SECONDS_RE = re.compile(r"-?(?:\d+\.?\d*|\.\d+)\Z")
_BYTES_SEP_RE = re.compile(r"[0-9a-fA-F]+(?:[:.\-][0-9a-fA-F]+)*\Z")
_IPV4_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\Z")
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ]\s*(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?\Z"
)
_LEGACY_RE = re.compile(
    r"([A-Za-z]{3})\s+(\d{1,2}),\s*(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(UTC)?\Z"
)
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}


class _Lits:
    """Converts a literal token to a Python value for a given type, with tshark's messages."""

    def __init__(self, lit: _Lit) -> None:
        self.lit = lit
        tok = lit.tok
        self.kind = tok.kind
        self.word = ("-" if lit.neg else "") + tok.text if tok.kind == "word" else ""
        self.pos = lit.pos
        self.len = max(1, lit.end - lit.pos)

    def err(self, msg: str) -> FilterError:
        return FilterError(msg, self.pos, self.len)

    @property
    def shown(self) -> str:
        return self.word if self.kind == "word" else self.lit.tok.text

    def string_bytes(self) -> bytes:
        return self.lit.tok.value[0]

    def string_str(self) -> str:
        return self.lit.tok.value[0].decode("utf-8", "surrogateescape")

    # -- per class -------------------------------------------------------
    def convert(self, ty: _Ty, purpose: str) -> Any:
        cls = ty.cls
        if cls == "int":
            return self.to_int(ty)
        if cls == "bool":
            return self.to_bool(ty)
        if cls == "double":
            return self.to_double()
        if cls == "reltime":
            return self.to_seconds_ns()
        if cls == "abstime":
            return self.to_abstime()
        if cls == "string":
            return self.to_string()
        if cls == "bytes":
            return self.to_bytes()
        if cls in ("ether", "eui64"):
            if purpose == "contains":
                return self.to_bytes()
            return self.to_mac(cls)
        if cls == "ipv4":
            return self.to_ipv4(purpose)
        if cls == "ipv6":
            return self.to_ipv6(purpose)
        raise self.err(f"{self.shown} cannot be compared with a {ty.name} value.")

    def _from_strings(self, ty: _Ty, name: str) -> Any:
        """Value-string names (``ip.proto == UDP``), case-insensitively, as tshark allows."""
        strings: Mapping[Any, str] | None = ty.fd.strings if ty.fd is not None else None
        if not strings:
            return None
        want = name.casefold()
        found = [v for v, s in strings.items() if isinstance(s, str) and s.casefold() == want]
        if ty.cls == "bool":
            found = [bool(v) for v in found]
        if not found:
            return None
        uniq = list(dict.fromkeys(found))
        return uniq[0] if len(uniq) == 1 else _OneOf(uniq)

    def to_int(self, ty: _Ty) -> Any:
        if self.kind == "char":
            v = self.lit.tok.value
            return -v if self.lit.neg else v
        if self.kind == "str":
            named = self._from_strings(ty, self.string_str())
            if named is not None:
                return named
            raise self.err(f'{ty.name} cannot be converted from a string ({self.lit.tok.text}).')
        w = self.word
        if not _INT_RE.match(w) or len(w) > _MAX_NUMBER_LEN:
            named = self._from_strings(ty, w)
            if named is not None:
                return named
            raise self.err(f'"{w}" is not a valid number.')
        v = _parse_int(w)
        if ty.fd is not None and ty.fd.ftype in _INT_RANGE:
            lo, hi = _INT_RANGE[ty.fd.ftype]
            if v > hi:
                raise self.err(f'"{w}" too big for this field, maximum {hi}.')
            # Negative literals against unsigned fields are accepted (tshark 4.0
            # does too); they simply never compare equal.
            if v < lo and lo < 0:
                raise self.err(f'"{w}" too small for this field, minimum {lo}.')
        elif not -(2**63) <= v <= 2**64 - 1:
            raise self.err(f'"{w}" causes an integer overflow.')
        return v

    def to_bool(self, ty: _Ty) -> Any:
        if self.kind == "word":
            w = self.word
            if w in ("True", "TRUE", "true"):
                return True
            if w in ("False", "FALSE", "false"):
                return False
            if _INT_RE.match(w) and len(w) <= _MAX_NUMBER_LEN:
                return _parse_int(w) != 0
            text = w
        elif self.kind == "char":
            return self.lit.tok.value != 0
        else:
            text = self.string_str()
        named = self._from_strings(ty, text)
        if named is not None:
            return named
        name = ty.fd.abbrev if ty.fd is not None else "a Boolean"
        raise self.err(f'"{text}" cannot be found among the possible values for {name}.')

    def to_double(self) -> float:
        if self.kind == "char":
            return float(self.lit.tok.value)
        if self.kind == "word":
            w = self.word
            if _FLOAT_RE.match(w) and len(w) <= _MAX_NUMBER_LEN:
                return float(w)
            if _INT_RE.match(w) and len(w) <= _MAX_NUMBER_LEN:
                return float(_parse_int(w))
            raise self.err(f'"{w}" is not a valid number.')
        raise self.err(f"{_CLASS_NAMES['double']} cannot be converted from a string ({self.lit.tok.text}).")

    def to_seconds_ns(self) -> int:
        """Times are compared in seconds (float) but stored as integer nanoseconds."""
        if self.kind != "word":
            raise self.err(f"Time offset cannot be converted from {self.lit.tok.text}.")
        w = self.word
        if not _SECONDS_RE.match(w) or len(w) > _MAX_NUMBER_LEN:
            raise self.err(f'"{w}" is not a valid time offset in seconds.')
        return int((decimal.Decimal(w) * 1_000_000_000).to_integral_value(decimal.ROUND_HALF_EVEN))

    def to_abstime(self) -> int:
        if self.kind == "word":
            # Seconds since the epoch: not in tshark 4.0, but what frame.time_epoch prints.
            return self.to_seconds_ns()
        if self.kind != "str":
            raise self.err(f"{self.lit.tok.text} is not a valid date and time.")
        s = self.string_str().strip()
        m = _ISO_RE.match(s)
        if m:
            y, mo, d, hh, mi, ss, frac, tz = m.groups()
            return self._to_ns(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), frac, tz)
        m = _LEGACY_RE.match(s)
        if m and m.group(1).lower() in _MONTHS:
            mon, d, y, hh, mi, ss, frac, tz = m.groups()
            return self._to_ns(int(y), _MONTHS[mon.lower()], int(d), int(hh), int(mi), int(ss), frac, tz)
        raise self.err(f'"{s}" is not a valid absolute time. Example: "Nov 12, 1999 08:55:44.123" or "2011-07-04 12:34:56"')

    def _to_ns(self, y: int, mo: int, d: int, hh: int, mi: int, ss: int, frac: str | None, tz: str | None) -> int:
        if not (1 <= mo <= 12 and 1 <= d <= 31 and hh <= 23 and mi <= 59 and ss <= 60 and 1 <= y):
            raise self.err(f"{self.lit.tok.text} is not a valid date and time.")
        tup = (y, mo, d, hh, mi, ss, 0, 0, -1)
        try:
            if tz is None:
                # Like Wireshark: a time without a zone designator is local time.
                secs = int(time.mktime(tup))
            else:
                secs = calendar.timegm(tup)
                if tz not in ("Z", "UTC"):
                    sign = -1 if tz[0] == "-" else 1
                    digits = tz[1:].replace(":", "")
                    off = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
                    secs -= sign * off
        except (OverflowError, ValueError) as exc:
            raise self.err(f"{self.lit.tok.text} is not a valid date and time.") from exc
        ns = int((frac or "0").ljust(9, "0")[:9])
        return secs * 1_000_000_000 + ns

    def to_string(self) -> str:
        if self.kind == "str":
            return self.string_str()
        if self.kind == "char":
            return chr(self.lit.tok.value)
        return self.word  # an unquoted word: deprecated in Wireshark, still accepted

    def to_bytes(self) -> bytes:
        if self.kind == "str":
            return self.string_bytes()
        if self.kind == "char":
            return bytes((self.lit.tok.value,))
        w = self.word
        if w.startswith(("0x", "0X")) and not w.startswith(("0x:", "0X:")):
            # A one-byte hex integer is a byte string; wider ones would need an endianness.
            if _INT_RE.match(w) and len(w) <= _MAX_NUMBER_LEN and int(w, 16) <= 0xFF:
                return bytes((int(w, 16),))
            raise self.err(f'"{w}" is not a valid byte string.')
        b = _parse_bytes(w)
        if b is None:
            raise self.err(f'"{w}" is not a valid byte string.')
        return b

    def to_mac(self, cls: str) -> bytes:
        want = _ADDR_LEN[cls]
        label = "Ethernet address" if cls == "ether" else "EUI64 address"
        if self.kind != "word":
            raise self.err(f"{_CLASS_NAMES[cls]} cannot be converted from {self.lit.tok.text}.")
        b = _parse_bytes(self.word)
        if b is None:
            raise self.err(f'"{self.word}" is not a valid byte string.')
        if len(b) < want:
            raise self.err(f'"{self.word}" contains too few bytes to be a valid {label}.')
        if len(b) > want:
            raise self.err(f'"{self.word}" contains too many bytes to be a valid {label}.')
        return b

    def to_ipv4(self, purpose: str) -> Any:
        if self.kind != "word":
            raise self.err(f"IPv4 address cannot be converted from a string ({self.lit.tok.text}).")
        w = self.word
        addr, slash, bits_s = w.partition("/")
        m = _IPV4_RE.match(addr)
        if not m or any(int(g) > 255 for g in m.groups()):
            raise self.err(f'"{w}" is not a valid IPv4 address (host names are not resolved).')
        packed = bytes(int(g) for g in m.groups())
        if not slash:
            return packed
        if not bits_s.isdigit() or len(bits_s) > 3:
            raise self.err(f'"{w}": the netmask must be a number of bits.')
        bits = int(bits_s)
        if bits > 32:
            raise self.err(f"Netmask bits in a CIDR IPv4 address should be <= 32, not {bits}")
        return self._net(packed, bits, 32, purpose)

    def to_ipv6(self, purpose: str) -> Any:
        if self.kind != "word":
            raise self.err(f"IPv6 address cannot be converted from a string ({self.lit.tok.text}).")
        w = self.word
        addr, slash, bits_s = w.partition("/")
        try:
            packed = ipaddress.IPv6Address(addr).packed
        except ValueError:
            raise self.err(f'"{w}" is not a valid IPv6 address (host names are not resolved).') from None
        if not slash:
            return packed
        if not bits_s.isdigit() or len(bits_s) > 3:
            raise self.err(f'"{w}": the prefix length must be a number of bits.')
        bits = int(bits_s)
        if bits > 128:
            raise self.err(f"Prefix length in a CIDR IPv6 address should be <= 128, not {bits}")
        return self._net(packed, bits, 128, purpose)

    def _net(self, packed: bytes, bits: int, width: int, purpose: str) -> Any:
        if purpose not in ("eq", "set"):
            raise self.err("An address with a netmask can only be used with ==, !=, ===, !== and in.")
        if bits == width:
            return packed
        mask = ((1 << bits) - 1) << (width - bits)
        return _Net(int.from_bytes(packed, "big") & mask, mask, self.word)


def _parse_int(w: str) -> int:
    neg = w.startswith("-")
    d = w[1:] if neg else w
    if d[:2] in ("0x", "0X"):
        v = int(d[2:], 16)
    elif d[:2] in ("0b", "0B"):
        v = int(d[2:], 2)
    elif len(d) > 1 and d[0] == "0":
        v = int(d[1:], 8)
    else:
        v = int(d)
    return -v if neg else v


def _parse_bytes(w: str) -> bytes | None:
    """``aa:bb``, ``aa-bb``, ``aa.bb``, ``aabb``, ``0011.2233.4455``; a lone digit is one byte."""
    if not _BYTES_SEP_RE.match(w):
        return None
    out = bytearray()
    for g in re.split(r"[:.\-]", w):
        if len(g) <= 2:
            out.append(int(g, 16))
        else:
            if len(g) % 2:
                g = "0" + g
            out += bytes.fromhex(g)
    return bytes(out)


# ---------------------------------------------------------------------------
# Evaluation helpers (closed over by the compiled predicates)


def _ip_getter(abbrev: str) -> Getter:
    """IP values are bytes by contract; tolerate ``ipaddress`` objects and strings too."""

    def get(pkt: Any) -> list[Any]:
        vals = pkt.values(abbrev)
        if vals and type(vals[0]) is not bytes:
            return [v if isinstance(v, bytes) else _ip_bytes(v) for v in vals]
        return vals

    return get


def _ip_bytes(v: Any) -> Any:
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    try:
        return ipaddress.ip_address(v).packed
    except ValueError:
        return v


def _proto_getter(abbrev: str) -> Getter:
    """A protocol's value is the bytes it spans (``frame contains "x"``, ``udp[0:2]``)."""

    def get(pkt: Any) -> list[Any]:
        nodes = getattr(pkt, "nodes", None)
        if nodes is None:
            return []
        srcs = pkt.sources
        out = []
        for n in nodes(abbrev):
            data = srcs[n.src].data
            out.append(bytes(data[n.offset : n.offset + n.length]))
        return out

    return get


def _slicer(ranges: list[tuple[str, int, int]]) -> Callable[[bytes], bytes | None]:
    """One byte-cutting function; ``None`` when the value is too short (no match, as in tshark)."""

    def cut_one(b: bytes, r: tuple[str, int, int]) -> bytes | None:
        kind, i, j = r
        size = len(b)
        s = i if i >= 0 else size + i
        if s < 0:
            return None
        if kind == "len":
            e = s + j
        elif kind == "toend":
            e = size
        else:
            e = (j if j >= 0 else size + j) + 1
        if e > size or s > size or e < s:
            return None
        return b[s:e]

    if len(ranges) == 1:
        r0 = ranges[0]
        return lambda b: cut_one(b, r0)

    def cut(b: bytes) -> bytes | None:
        parts = []
        for r in ranges:
            p = cut_one(b, r)
            if p is None:
                return None
            parts.append(p)
        return b"".join(parts)

    return cut


def _trunc_div(a: int, b: int) -> int:
    """C-style integer division (toward zero), as Wireshark computes it."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _c_mod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _truthy(v: Any) -> bool:
    if isinstance(v, bytes | bytearray):
        return any(v)
    return bool(v)


def _fmt_addr(cls: str, v: Any) -> str:
    if cls == "ipv4":
        return str(ipaddress.IPv4Address(bytes(v)))
    if cls == "ipv6":
        return str(ipaddress.IPv6Address(bytes(v)))
    return ":".join(f"{b:02x}" for b in v)


def _pairs_any(ga: Getter, gb: Getter, pred: Callable[[Any, Any], bool]) -> Pred:
    def f(pkt: Any) -> bool:
        a = ga(pkt)
        if not a:
            return False
        b = gb(pkt)
        for x in a:
            for y in b:
                if pred(x, y):
                    return True
        return False

    return f


def _pairs_all(ga: Getter, gb: Getter, pred: Callable[[Any, Any], bool]) -> Pred:
    def f(pkt: Any) -> bool:
        a = ga(pkt)
        if not a:
            return False
        b = gb(pkt)
        if not b:
            return False
        for x in a:
            for y in b:
                if not pred(x, y):
                    return False
        return True

    return f


def _each(g: Getter, test: Callable[[Any], bool], quant: str) -> Pred:
    if quant == "any":
        def f_any(pkt: Any) -> bool:
            for x in g(pkt):
                if test(x):
                    return True
            return False

        return f_any

    def f_all(pkt: Any) -> bool:
        vals = g(pkt)
        if not vals:
            return False
        for x in vals:
            if not test(x):
                return False
        return True

    return f_all


def _fast_const(g: Getter, base: str, quant: str, c: Any) -> Pred | None:
    """Comparisons against one plain constant, pushed into C-level list operations.

    ``c in vals`` walks the list in C; ``max``/``min`` decide "any/all greater"
    in one pass.  This is what keeps ``udp.port == 5684`` at a few hundred ns.
    """
    key = (base, quant)
    if key == ("eq", "any"):
        return lambda pkt: c in g(pkt)
    if key == ("ne", "all"):
        def ne_all(pkt: Any) -> bool:
            v = g(pkt)
            return bool(v) and c not in v

        return ne_all
    if key == ("eq", "all"):
        def eq_all(pkt: Any) -> bool:
            v = g(pkt)
            return bool(v) and v.count(c) == len(v)

        return eq_all
    if key == ("ne", "any"):
        def ne_any(pkt: Any) -> bool:
            v = g(pkt)
            return v.count(c) != len(v)

        return ne_any
    # any x > c  <=>  max(x) > c;  all x > c  <=>  min(x) > c  (and mirrored for <)
    agg = {("gt", "any"): max, ("ge", "any"): max, ("lt", "any"): min, ("le", "any"): min,
           ("gt", "all"): min, ("ge", "all"): min, ("lt", "all"): max, ("le", "all"): max}.get(key)
    if agg is None:
        return None
    cmp = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}[base]

    def order(pkt: Any) -> bool:
        v = g(pkt)
        return bool(v) and cmp(agg(v), c)

    return order


def _fast_src(v: str, base: str, quant: str, c: str) -> str | None:
    """The inline-source twin of :func:`_fast_const` for the generated filter function."""
    key = (base, quant)
    if key == ("eq", "any"):
        return f"({c} in {v})"
    if key == ("ne", "all"):
        return f"(bool(_v := {v}) and {c} not in _v)"
    if key == ("eq", "all"):
        return f"(bool(_v := {v}) and _v.count({c}) == len(_v))"
    if key == ("ne", "any"):
        return f"((_v := {v}).count({c}) != len(_v))"
    agg = {"gt": "max", "ge": "max", "lt": "min", "le": "min"}.get(base)
    if agg is None:
        return None
    if quant == "all":
        agg = "min" if agg == "max" else "max"
    sym = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[base]
    return f"(bool(_v := {v}) and {agg}(_v) {sym} {c})"


@dataclass(slots=True)
class _T:
    """A compiled test: the closure, and when cheap to express, inline Python source.

    The source lets :func:`compile_filter` generate one flat function for
    the common shapes (``a == 1 and not b``) instead of a call per node.
    """

    fn: Pred
    src: str | None = None


_PRED = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge,
    "lt": operator.lt, "le": operator.le, "contains": lambda a, b: b in a,
}


# ---------------------------------------------------------------------------
# Semantic pass: types, literal conversion, closure building


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text
        self.fields: set[str] = set()
        self.refgetters: dict[str, Getter] = {}
        self.refvals: dict[str, list[Any]] = {}
        self.env: dict[str, Any] = {}

    def bind(self, obj: Any) -> str:
        """A global name for ``obj`` in the generated function's namespace."""
        if type(obj) is int or type(obj) is bool:
            return repr(obj)
        name = f"_k{len(self.env)}"
        self.env[name] = obj
        return name

    def code(self, t: _T) -> str:
        return t.src if t.src is not None else f"{self.bind(t.fn)}(pkt)"

    def values_src(self, v: _Val) -> str:
        return f"pkt.values({v.abbrev!r})" if v.abbrev is not None else f"{self.bind(v.get)}(pkt)"

    def src(self, node: _Node) -> str:
        return self.text[node.pos : node.end]

    def err(self, msg: str, node: _Node) -> FilterError:
        return FilterError(msg, node.pos, max(1, node.end - node.pos))

    # -- tests -----------------------------------------------------------
    def test(self, node: _Node) -> _T:
        if isinstance(node, _Logic):
            ts = [self.test(x) for x in node.items]
            fn = _combine(node.op, [t.fn for t in ts])
            parts = [self.code(t) for t in ts]
            if node.op == "xor":
                src = parts[0]
                for p in parts[1:]:
                    src = f"(bool({src}) != bool({p}))"
                return _T(fn, src)
            return _T(fn, "(" + f" {node.op} ".join(parts) + ")")
        if isinstance(node, _Not):
            t = self.test(node.arg)
            p = t.fn
            return _T(lambda pkt: not p(pkt), f"(not {self.code(t)})")
        if isinstance(node, _Exists):
            return self.exists(node.arg)
        if isinstance(node, _Cmp):
            return self.compare(node)
        if isinstance(node, _In):
            return self.membership(node)
        raise self.err("Not a test.", node)  # pragma: no cover - parser never builds this

    def exists(self, arg: _Node) -> _T:
        if isinstance(arg, _Field):
            self.fields.add(arg.fd.abbrev)
            return _T(operator.methodcaller("has", arg.fd.abbrev), f"pkt.has({arg.fd.abbrev!r})")
        if isinstance(arg, _Lit):
            raise self.not_a_field(arg)
        if isinstance(arg, _Func):
            raise FilterError(
                "You cannot test whether a function is present.", arg.pos, arg.name_end - arg.pos
            )
        val = self.value(arg, None)
        g = val.get
        if isinstance(arg, _Arith | _Neg):
            # ``tcp.flags & 0x02``: true when some result is non-zero.
            return _T(lambda pkt: any(_truthy(v) for v in g(pkt)))
        return _T(lambda pkt: bool(g(pkt)))

    def not_a_field(self, lit: _Lit) -> FilterError:
        return self.err(f'"{self.src(lit)}" is neither a field nor a protocol name.', lit)

    def lhs(self, node: _Node, op: str) -> _Val:
        if isinstance(node, _Lit):
            shown = self.src(node)
            if node.tok.kind == "word" and _FIELD_NAME_RE.match(shown) and not _INT_RE.match(shown):
                raise self.err(f'"{shown}" is neither a field nor a protocol name.', node)
            raise self.err(f'Left side of "{op}" expression must be a field or function, not {shown}.', node)
        return self.value(node, None)

    def compare(self, node: _Cmp) -> _T:
        base, quant = node.base, node.quant
        L = self.lhs(node.lhs, node.op)
        cls = L.ty.cls
        lname = self.src(node.lhs)
        if cls == "none":
            raise self.err(f"{lname} (type={L.ty.name}) cannot participate in '{node.op}' comparison.", node.lhs)
        if base == "contains" and cls not in _CONTAINS_OK:
            raise self.err(f"{lname} (type={L.ty.name}) cannot participate in {node.op} comparison.", node.lhs)
        if base == "matches":
            return self.matches(node, L)
        if base in ("gt", "ge", "lt", "le") and cls not in _ORDERED:
            raise self.err(f"{lname} (type={L.ty.name}) cannot participate in '{node.op}' comparison.", node.lhs)
        purpose = "eq" if base in ("eq", "ne") else ("contains" if base == "contains" else "order")
        R = self.rhs(node.rhs, L.ty, purpose)
        if not _compatible(L.ty, R.ty) and not (base == "contains" and cls in _BYTESLIKE and R.ty.cls == "bytes"):
            raise self.err(f"{lname} and {self.src(node.rhs)} are not of compatible types.", node.rhs)
        g = L.get
        if R.const is not None and len(R.const) == 1:
            c = R.const[0]
            if isinstance(c, _Net | _OneOf):
                m = c.match
                if base == "eq":
                    return _T(_each(g, m, quant))
                return _T(_each(g, lambda v: not m(v), quant))
            if base == "contains":
                return _T(_each(g, lambda v: c in v, quant))
            fast = _fast_const(g, base, quant, c)
            if fast is not None:
                return _T(fast, _fast_src(self.values_src(L), base, quant, self.bind(c)))
        pred = _PRED[base]
        pairs = _pairs_any if quant == "any" else _pairs_all
        if R.const is not None:
            consts = list(R.const)
            if any(isinstance(c, _Net | _OneOf) for c in consts):  # pragma: no cover - literals are single
                raise self.err("A netmask cannot be used here.", node.rhs)
            return _T(pairs(g, lambda pkt: consts, pred))
        return _T(pairs(g, R.get, pred))

    def rhs(self, node: _Node, want: _Ty, purpose: str) -> _Val:
        if isinstance(node, _Lit):
            if want.cls in ("ether", "eui64") and purpose == "contains":
                want = _Ty("bytes")
            v = _Lits(node).convert(want, purpose)
            ty = want if not isinstance(v, bytes) or want.cls != "bytes" else _Ty("bytes")
            return _Val(lambda pkt: [v], ty, node.pos, node.end, const=(v,))
        return self.value(node, want)

    def matches(self, node: _Cmp, L: _Val) -> _T:
        lname = self.src(node.lhs)
        if L.ty.cls not in ("string", "bytes"):
            raise self.err(f"{lname} (type={L.ty.name}) cannot participate in {node.op} comparison.", node.lhs)
        rhs = node.rhs
        if not (isinstance(rhs, _Lit) and rhs.tok.kind == "str"):
            raise self.err("Matches requires a double quoted string on the right side.", rhs)
        raw_bytes: bytes = rhs.tok.value[0]
        flags = re.IGNORECASE  # Wireshark's matches is case-insensitive unless told otherwise
        if raw_bytes.startswith(b"(?-i)"):
            raw_bytes = raw_bytes[5:]
            flags = 0
        try:
            if L.ty.cls == "string":
                rx = re.compile(raw_bytes.decode("utf-8", "surrogateescape"), flags)
            else:
                rx = re.compile(raw_bytes, flags)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise self.err(f"Regex compilation error: {exc}.", rhs) from None
        search = rx.search
        return _T(_each(L.get, lambda v: search(v) is not None, node.quant))

    def membership(self, node: _In) -> _T:
        L = self.lhs(node.lhs, "in")
        lname = self.src(node.lhs)
        if L.ty.cls == "none":
            raise self.err(f"{lname} (type={L.ty.name}) cannot participate in 'in' comparison.", node.lhs)
        plain: set[Any] = set()
        tests: list[Callable[[Any, Any], bool]] = []  # (pkt, value) -> bool
        for el in node.elems:
            if isinstance(el, _Range):
                if L.ty.cls not in _ORDERED:
                    raise self.err(f"{lname} (type={L.ty.name}) cannot be used with a range.", el)
                lo = self.rhs(el.lo, L.ty, "order")
                hi = self.rhs(el.hi, L.ty, "order")
                for side, v in ((el.lo, lo), (el.hi, hi)):
                    if not _compatible(L.ty, v.ty):
                        raise self.err(f"{lname} and {self.src(side)} are not of compatible types.", side)
                tests.append(_range_test(lo, hi))
                continue
            v = self.rhs(el, L.ty, "set")
            if not _compatible(L.ty, v.ty):
                raise self.err(f"{lname} and {self.src(el)} are not of compatible types.", el)
            if v.const is not None:
                for c in v.const:
                    if isinstance(c, _Net | _OneOf):
                        tests.append(_matcher_test(c))
                    else:
                        plain.add(c)
            else:
                tests.append(_dynamic_test(v.get))
        g = L.get
        frozen = frozenset(plain)
        f: Pred
        if not tests:
            if node.quant == "all":
                def f(pkt: Any) -> bool:
                    vals = g(pkt)
                    return bool(vals) and all(x in frozen for x in vals)
            else:
                def f(pkt: Any) -> bool:
                    return not frozen.isdisjoint(g(pkt))
        else:
            def one(pkt: Any, x: Any) -> bool:
                if x in frozen:
                    return True
                for t in tests:
                    if t(pkt, x):
                        return True
                return False

            if node.quant == "all":
                def f(pkt: Any) -> bool:
                    vals = g(pkt)
                    return bool(vals) and all(one(pkt, x) for x in vals)
            else:
                def f(pkt: Any) -> bool:
                    return any(one(pkt, x) for x in g(pkt))
        src = None
        if not tests and node.quant == "any":
            src = f"(not {self.bind(frozen)}.isdisjoint({self.values_src(L)}))"
        if node.negated:
            # Wireshark: "a not in b" is "not (a in b)", so an absent field passes.
            inner = f
            return _T(lambda pkt: not inner(pkt), None if src is None else f"(not {src})")
        return _T(f, src)

    # -- values ----------------------------------------------------------
    def value(self, node: _Node, want: _Ty | None) -> _Val:
        if isinstance(node, _Field):
            return self.field_value(node)
        if isinstance(node, _Lit):
            if want is None:
                raise self.err(
                    f'"{self.src(node)}" is a constant; compare a field or function with it.', node
                )
            return self.rhs(node, want, "arith")
        if isinstance(node, _Slice):
            return self.slice_value(node)
        if isinstance(node, _Func):
            return self.func_value(node)
        if isinstance(node, _Arith):
            return self.arith_value(node, want)
        if isinstance(node, _Neg):
            return self.neg_value(node, want)
        if isinstance(node, _Ref):
            return self.ref_value(node)
        raise self.err("This cannot be used as a value.", node)

    def field_value(self, node: _Field) -> _Val:
        fd = node.fd
        a = fd.abbrev
        self.fields.add(a)
        ty = _ty_of(fd)
        if fd.ftype is FT.PROTOCOL:
            return _Val(_proto_getter(a), ty, node.pos, node.end)
        if ty.cls in ("ipv4", "ipv6"):
            return _Val(_ip_getter(a), ty, node.pos, node.end)
        return _Val(operator.methodcaller("values", a), ty, node.pos, node.end, abbrev=a)

    def ref_value(self, node: _Ref) -> _Val:
        fd = node.fd
        a = fd.abbrev
        self.fields.add(a)
        ty = _ty_of(fd)
        if fd.ftype is FT.PROTOCOL:
            self.refgetters[a] = _proto_getter(a)
        elif ty.cls in ("ipv4", "ipv6"):
            self.refgetters[a] = _ip_getter(a)
        else:
            self.refgetters[a] = operator.methodcaller("values", a)
        store = self.refvals
        return _Val(lambda pkt: store.get(a, []), ty, node.pos, node.end)

    def slice_value(self, node: _Slice) -> _Val:
        if isinstance(node.base, _Lit):
            raise self.err(f'"{self.src(node.base)}" is neither a field nor a protocol name.', node.base)
        base = self.value(node.base, None)
        cls = base.ty.cls
        if cls not in ("bytes", "string", "ether", "eui64", "ipv4", "ipv6"):
            raise self.err(
                f'"{self.src(node.base)}" is a {base.ty.name} and cannot be sliced into a sequence of bytes.',
                node.base,
            )
        cut = _slicer(node.ranges)
        g = base.get
        if cls == "string":
            def get(pkt: Any) -> list[Any]:
                out = []
                for v in g(pkt):
                    r = cut(v.encode("utf-8", "surrogateescape"))
                    if r is not None:
                        out.append(r)
                return out
        else:
            def get(pkt: Any) -> list[Any]:
                out = []
                for v in g(pkt):
                    r = cut(bytes(v))
                    if r is not None:
                        out.append(r)
                return out
        return _Val(get, _Ty("bytes"), node.pos, node.end)

    def func_value(self, node: _Func) -> _Val:
        name, args = node.name, node.args
        name_node = _Node(node.pos, node.name_end)
        if name in ("min", "max"):
            if not args:
                raise self.err(f"Function {name}() needs at least one argument.", name_node)
        elif len(args) != 1:
            raise self.err(f"Function {name}() takes exactly one argument.", name_node)
        if name == "count":
            arg = args[0]
            if not isinstance(arg, _Field):
                raise self.err("count() needs a field or protocol name.", arg)
            a = arg.fd.abbrev
            self.fields.add(a)
            vals = operator.methodcaller("values", a)

            def count(pkt: Any) -> list[Any]:
                n = len(vals(pkt))
                return [n] if n else []  # like tshark: count() of an absent field has no value

            return _Val(count, _Ty("int"), node.pos, node.end)
        if name in ("min", "max"):
            return self.minmax(node)
        arg = args[0]
        if isinstance(arg, _Lit):
            raise self.err(f"Only fields can be used as parameter for {name}()", arg)
        v = self.value(arg, None)
        cls = v.ty.cls
        g = v.get
        if name in ("upper", "lower"):
            if cls != "string":
                raise self.err(f"Only string type fields can be used as parameter for {name}()", arg)
            conv = str.upper if name == "upper" else str.lower
            return _Val(lambda pkt: [conv(x) for x in g(pkt)], _Ty("string"), node.pos, node.end)
        if name == "len":
            if cls in ("bytes", "ether", "eui64", "ipv4", "ipv6"):
                return _Val(lambda pkt: [len(x) for x in g(pkt)], _Ty("int"), node.pos, node.end)
            if cls == "string":
                return _Val(
                    lambda pkt: [len(x.encode("utf-8", "surrogateescape")) for x in g(pkt)],
                    _Ty("int"), node.pos, node.end,
                )
            fd = v.ty.fd
            size = _WIRE_SIZE.get(fd.ftype) if fd is not None else None
            if size is None:
                raise self.err(f"len() is not supported for {v.ty.name} values.", arg)
            return _Val(lambda pkt: [size] * len(g(pkt)), _Ty("int"), node.pos, node.end)
        if name == "string":
            if cls == "int":
                return _Val(lambda pkt: [str(x) for x in g(pkt)], _Ty("string"), node.pos, node.end)
            if cls in ("ipv4", "ipv6", "ether", "eui64"):
                return _Val(
                    lambda pkt: [_fmt_addr(cls, x) for x in g(pkt)], _Ty("string"), node.pos, node.end
                )
            raise self.err(f'String conversion for field "{self.src(arg)}" is not supported', arg)
        # abs
        if cls not in ("int", "double", "reltime"):
            raise self.err(f"abs() is not supported for {v.ty.name} values.", arg)
        return _Val(lambda pkt: [abs(x) for x in g(pkt)], _Ty(cls), node.pos, node.end)

    def minmax(self, node: _Func) -> _Val:
        first = next((a for a in node.args if not isinstance(a, _Lit)), None)
        if first is None:
            raise self.err(f"{node.name}() needs at least one field argument.", node)
        ty = self.value(first, None).ty
        if ty.cls not in _ORDERED:
            raise self.err(f"{node.name}() is not supported for {ty.name} values.", first)
        getters: list[Getter] = []
        for a in node.args:
            v = self.rhs(a, _Ty(ty.cls), "order") if isinstance(a, _Lit) else self.value(a, None)
            if not _compatible(ty, v.ty):
                raise self.err(f"All arguments of {node.name}() must have the same type.", a)
            if v.const is not None and any(isinstance(c, _Net | _OneOf) for c in v.const):
                raise self.err("A netmask or value name cannot be used here.", a)
            getters.append(v.get)
        agg = max if node.name == "max" else min

        def get(pkt: Any) -> list[Any]:
            allv = [x for gg in getters for x in gg(pkt)]
            return [agg(allv)] if allv else []

        return _Val(get, _Ty(ty.cls), node.pos, node.end)

    def neg_value(self, node: _Neg, want: _Ty | None) -> _Val:
        v = self.value(node.arg, want)
        if v.ty.cls not in ("int", "double", "reltime"):
            raise self.err(f"{v.ty.name} values cannot be negated.", node.arg)
        if v.const is not None:
            c = tuple(-x for x in v.const)
            return _Val(lambda pkt: list(c), _Ty(v.ty.cls), node.pos, node.end, const=c)
        g = v.get
        return _Val(lambda pkt: [-x for x in g(pkt)], _Ty(v.ty.cls), node.pos, node.end)

    def arith_value(self, node: _Arith, want: _Ty | None) -> _Val:
        op = node.op
        lnode, rnode = node.left, node.right
        l_lit, r_lit = _is_const_node(lnode), _is_const_node(rnode)
        if l_lit and r_lit:
            if want is None:
                raise self.err("An expression of constants needs a field to compare with.", node)
            base = _Ty(want.cls)
            L = self.value(lnode, base)
            R = self.value(rnode, _partner_type(base, op))
        elif l_lit:
            R = self.value(rnode, None)
            L = self.value(lnode, _partner_type(_Ty(R.ty.cls), op))
        else:
            L = self.value(lnode, None)
            R = self.value(rnode, _partner_type(_Ty(L.ty.cls), op))
        for side, v in ((lnode, L), (rnode, R)):
            if v.const is not None and any(isinstance(c, _Net | _OneOf) for c in v.const):
                raise self.err("A netmask or value name cannot be used in arithmetic.", side)
        fn, out_cls = self.arith_fn(op, L, R, node)
        gl, gr = L.get, R.get

        def get(pkt: Any) -> list[Any]:
            a = gl(pkt)
            if not a:
                return []
            b = gr(pkt)
            out = []
            for x in a:
                for y in b:
                    try:
                        out.append(fn(x, y))
                    except (ZeroDivisionError, ValueError, OverflowError):
                        pass  # like a missing value: the comparison just fails
            return out

        if L.const is not None and R.const is not None:
            c = tuple(get(None))
            return _Val(lambda pkt: list(c), _Ty(out_cls), node.pos, node.end, const=c)
        return _Val(get, _Ty(out_cls), node.pos, node.end)

    def arith_fn(self, op: str, L: _Val, R: _Val, node: _Arith) -> tuple[Callable[[Any, Any], Any], str]:
        a, b = L.ty.cls, R.ty.cls
        where = _Node(node.op_pos, node.op_pos + 1)
        if op == "&":
            if a == b == "int":
                return operator.and_, "int"
            if a == b == "bytes":
                def band(x: bytes, y: bytes) -> bytes:
                    if len(x) != len(y):
                        raise ValueError("length mismatch")
                    return bytes(p & q for p, q in zip(x, y, strict=True))

                return band, "bytes"
            raise self.err(f"{L.ty.name} and {R.ty.name} cannot be combined with &.", where)
        if op in ("+", "-"):
            fn = operator.add if op == "+" else operator.sub
            if a == b and a in ("int", "double", "reltime"):
                return fn, a
            if a == "abstime" and b == "reltime":
                return fn, "abstime"
            if op == "+" and a == "reltime" and b == "abstime":
                return fn, "abstime"
            if op == "-" and a == b == "abstime":
                return fn, "reltime"
            raise self.err(
                f"{self.src(node.left)} and {self.src(node.right)} are not type compatible.", node.right
            )
        if a != b:
            raise self.err(f"{self.src(node.left)} and {self.src(node.right)} are not type compatible.", node.right)
        if a == "int":
            return {"*": operator.mul, "/": _trunc_div, "%": _c_mod}[op], "int"
        if a == "double":
            return {"*": operator.mul, "/": operator.truediv, "%": math.fmod}[op], "double"
        raise self.err(f'{L.ty.name} values cannot be used with "{op}".', where)


def _is_const_node(n: _Node) -> bool:
    if isinstance(n, _Lit):
        return True
    if isinstance(n, _Neg):
        return _is_const_node(n.arg)
    if isinstance(n, _Arith):
        return _is_const_node(n.left) and _is_const_node(n.right)
    return False


def _partner_type(ty: _Ty, op: str) -> _Ty:
    """The type a literal takes next to ``ty`` in arithmetic: time ± seconds, else the same."""
    if ty.cls == "abstime" and op in ("+", "-"):
        return _Ty("reltime")
    return _Ty(ty.cls)


def _range_test(lo: _Val, hi: _Val) -> Callable[[Any, Any], bool]:
    for v in (lo, hi):
        if v.const is not None and any(isinstance(c, _Net | _OneOf) for c in v.const):
            raise FilterError("A netmask or value name cannot be a range bound.", v.pos, max(1, v.end - v.pos))
    if lo.const is not None and hi.const is not None and len(lo.const) == len(hi.const) == 1:
        a, b = lo.const[0], hi.const[0]
        return lambda pkt, x: a <= x <= b
    glo, ghi = lo.get, hi.get
    return lambda pkt, x: any(a <= x <= b for a in glo(pkt) for b in ghi(pkt))


def _matcher_test(m: _Matcher) -> Callable[[Any, Any], bool]:
    fn = m.match
    return lambda pkt, x: fn(x)


def _dynamic_test(g: Getter) -> Callable[[Any, Any], bool]:
    return lambda pkt, x: x in g(pkt)


def _combine(op: str, preds: Sequence[Pred]) -> Pred:
    if op == "xor":
        acc = preds[0]
        for p in preds[1:]:
            acc = _xor2(acc, p)
        return acc
    if len(preds) == 2:
        a, b = preds
        if op == "and":
            return lambda pkt: a(pkt) and b(pkt)
        return lambda pkt: a(pkt) or b(pkt)
    ps = tuple(preds)
    if op == "and":
        return lambda pkt: all(p(pkt) for p in ps)
    return lambda pkt: any(p(pkt) for p in ps)


def _xor2(a: Pred, b: Pred) -> Pred:
    return lambda pkt: bool(a(pkt)) != bool(b(pkt))


# ---------------------------------------------------------------------------
# Entry point


# What evaluation swallows: a dissector handing a value of the wrong Python
# type must not crash a whole read; like Wireshark, a test that cannot be
# evaluated is simply false.
_EVAL_ERRORS = (TypeError, AttributeError, ValueError, IndexError, OverflowError)


def _generate(comp: _Compiler, t: _T) -> Pred:
    """One flat Python function per filter: no call per node for the common shapes.

    Falls back to the closure tree when the source cannot be compiled (absurdly
    deep nesting hits CPython's parser limits before ours).
    """
    src = (
        "def _filter(pkt):\n"
        "    try:\n"
        f"        return {comp.code(t)}\n"
        "    except _EVAL_ERRORS:\n"
        "        return False\n"
    )
    env = dict(comp.env)
    env["_EVAL_ERRORS"] = _EVAL_ERRORS
    try:
        exec(compile(src, "<display filter>", "exec"), env)  # noqa: S102 - source built from our own templates
        fn: Pred = env["_filter"]
        return fn
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        inner = t.fn

        def guarded(pkt: Any) -> bool:
            try:
                return inner(pkt)
            except _EVAL_ERRORS:
                return False

        return guarded


def _make_filter(
    text: str, match: Pred, fields: set[str],
    refgetters: dict[str, Getter] | None = None, refvals: dict[str, list[Any]] | None = None,
) -> Filter:
    """A Filter whose ``__call__`` *is* the generated function.

    Python looks special methods up on the type, so a per-filter subclass is
    the only way to make ``flt(pkt)`` cost one Python frame instead of two;
    on the hot path of ``read -Y`` that halves the per-packet overhead.
    """
    cls = type("Filter", (Filter,), {"__slots__": (), "__call__": staticmethod(match),
                                     "__module__": __name__, "__doc__": Filter.__doc__})
    return cls(text, match, fields, refgetters, refvals)


_registry_ready = False


def _load_registry() -> None:
    """Fill FIELDS: dissector modules declare their fields when imported."""
    global _registry_ready
    if _registry_ready:
        return
    from jpdissect.dissectors import load_all

    load_all()
    import jpdissect.engine  # noqa: F401 - declares frame.*, data.*, _ws.*

    _registry_ready = True


def compile_filter(text: str) -> Filter:
    """Compile a display filter; raises :class:`FilterError` with the offending span.

    An empty (or all-blank) filter matches every packet, as in tshark.
    """
    _load_registry()
    try:
        if not text.strip():
            return _make_filter(text, _always, set())
        toks = _lex(text)
        tree = _Parser(text, toks).parse()
        comp = _Compiler(text)
        t = comp.test(tree)
        match = _generate(comp, t)
        return _make_filter(text, match, comp.fields, comp.refgetters, comp.refvals)
    except FilterError as exc:
        exc.text = text
        raise
    except RecursionError:
        raise FilterError("Filter expression is nested too deeply.", 0, len(text), text) from None
