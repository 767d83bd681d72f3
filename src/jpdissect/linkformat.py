"""CoRE Link Format (RFC 6690 §2): ``</a>;rt="x";ct=40,<coap://h/b>;obs`` into links and attributes.

Discovery answers (``/.well-known/core``) are how a Join Proxy finds a Registrar's JPY or DTLS port,
so the dissector reads them into fields; the parser keeps byte offsets for every link and target so
the UI can highlight them. It is lenient where deployed stacks are (whitespace after commas) and
never raises: problems come back as ``(offset, message)`` pairs and parsing resumes at the next link.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Most links read from one body; the rest is reported, not parsed.
MAX_LINKS = 1024
#: Most parameters kept per link.
MAX_PARAMS = 64


@dataclass(slots=True)
class Link:
    """One link-value: the target URI-reference and its parameters in order.

    Offsets are relative to the start of the text given to :func:`parse` (add the payload offset).
    A parameter without ``=value`` (e.g. ``obs``) has value None.
    """

    target: str
    params: list[tuple[str, str | None]] = field(default_factory=list)
    start: int = 0
    end: int = 0
    target_start: int = 0

    def get(self, name: str) -> list[str | None]:
        """All values of a parameter (RFC 6690 allows repeats)."""
        name = name.lower()
        return [v for n, v in self.params if n == name]

    def first(self, name: str) -> str | None:
        vals = self.get(name)
        return vals[0] if vals else None

    def has(self, name: str) -> bool:
        name = name.lower()
        return any(n == name for n, _ in self.params)

    def types(self, name: str = "rt") -> list[str]:
        """Space-separated relation/resource types of ``rt``/``if``/``rel`` (RFC 6690 §3.1-3.2)."""
        out: list[str] = []
        for v in self.get(name):
            if v:
                out.extend(v.split())
        return out

    def __str__(self) -> str:
        ps = "".join(f";{n}" if v is None else f';{n}="{v}"' for n, v in self.params)
        return f"<{self.target}>{ps}"


_PTOKEN_STOP = frozenset(';,"<> \t\r\n')


def parse(text: str | bytes) -> tuple[list[Link], list[tuple[int, str]]]:
    """Parse a link-format body; returns the links and any ``(offset, problem)`` found."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    links: list[Link] = []
    errors: list[tuple[int, str]] = []
    n = len(text)
    i = 0
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if len(links) >= MAX_LINKS:
            errors.append((i, f"more than {MAX_LINKS} links; the rest is not parsed"))
            break
        start = i
        if text[i] != "<":
            errors.append((i, "RFC 6690 §2: link-value must start with '<'"))
            i = _skip_to_comma(text, i)
            continue
        close = text.find(">", i + 1)
        if close < 0:
            errors.append((i, "RFC 6690 §2: '<' without closing '>'"))
            break
        link = Link(text[i + 1:close], start=start, target_start=i + 1)
        i = close + 1
        while i < n and text[i] == ";":
            i += 1
            j = i
            while j < n and (text[j].isalnum() or text[j] in "!#$&+-.^_`|~*'"):
                j += 1
            name = text[i:j].lower()
            if not name:
                errors.append((i, "RFC 6690 §2: empty parameter name"))
                break
            value: str | None = None
            i = j
            if i < n and text[i] == "=":
                i += 1
                if i < n and text[i] == '"':
                    value, i, ok = _quoted(text, i)
                    if not ok:
                        errors.append((j, "RFC 6690 §2: unterminated quoted-string"))
                else:
                    k = i
                    while k < n and text[k] not in _PTOKEN_STOP:
                        k += 1
                    value = text[i:k]
                    i = k
            if len(link.params) < MAX_PARAMS:
                link.params.append((name, value))
        link.end = i
        links.append(link)
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i < n:
            if text[i] == ",":
                i += 1
            else:
                errors.append((i, "RFC 6690 §2: expected ',' or ';' after a link-value"))
                i = _skip_to_comma(text, i)
    return links, errors


def _quoted(text: str, i: int) -> tuple[str, int, bool]:
    """A quoted-string at ``text[i] == '"'`` (RFC 2616 §2.2 with backslash escapes)."""
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1, True
        out.append(c)
        i += 1
    return "".join(out), i, False


def _skip_to_comma(text: str, i: int) -> int:
    """Resume after the next comma outside angle brackets and quotes."""
    n = len(text)
    inq = False
    while i < n:
        c = text[i]
        if c == '"':
            inq = not inq
        elif c == "," and not inq:
            return i + 1
        i += 1
    return n
