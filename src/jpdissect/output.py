"""Output formats of ``jpdissect read``: tshark's one-line summary, -V tree, -x hex,
-T fields/json/ek.

Each formatter turns one :class:`~jpdissect.model.Packet` into text; none of
them knows about files or argument parsing, so the TUI and scripts can reuse
them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from jpdissect.model import FIELDS, FT, SYNTHETIC, Node, Packet


@dataclass
class FieldOptions:
    """tshark's ``-E`` options."""

    header: bool = False
    separator: str = "\t"
    occurrence: str = "a"
    aggregator: str = ","
    quote: str = ""
    bom: bool = False

    def set(self, spec: str) -> None:
        key, sep, val = spec.partition("=")
        if not sep:
            raise ValueError(f'Invalid -E option "{spec}": expected name=value')
        key = key.strip()
        if key == "header":
            if val not in ("y", "n"):
                raise ValueError(f'Invalid -E header value "{val}": use y or n')
            self.header = val == "y"
        elif key == "separator":
            self.separator = _special(val)
        elif key == "aggregator":
            self.aggregator = _special(val)
        elif key == "occurrence":
            if val not in ("f", "l", "a") and not val.lstrip("-").isdigit():
                raise ValueError(f'Invalid -E occurrence value "{val}": use f, l, a or a number')
            self.occurrence = val
        elif key == "quote":
            if val not in ("d", "s", "n"):
                raise ValueError(f'Invalid -E quote value "{val}": use d, s or n')
            self.quote = {"d": '"', "s": "'", "n": ""}[val]
        elif key == "bom":
            self.bom = val == "y"
        else:
            raise ValueError(f'Invalid -E option "{key}": known are header, separator, occurrence, aggregator, quote, bom')


def _special(val: str) -> str:
    """tshark spells tab and space as /t and /s in -E values."""
    return {"/t": "\t", "/s": " "}.get(val, val)


def select_occurrence(vals: list[Any], occurrence: str) -> list[Any]:
    if occurrence == "a" or not vals:
        return vals
    if occurrence == "f":
        return vals[:1]
    if occurrence == "l":
        return vals[-1:]
    i = int(occurrence)
    if i == 0:
        return vals
    i = i - 1 if i > 0 else len(vals) + i
    return [vals[i]] if 0 <= i < len(vals) else []


class FieldsWriter:
    """``-T fields``: one line per packet, cells in ``-e`` order.

    This is the hot loop of ``read -T fields``, so everything that depends only on the
    options is decided here once: each field's formatter and whether it is synthetic
    (computed from the packet rather than recorded), and lines are handed to the stream
    in batches -- one ``write`` per line was a noticeable share of a fast read.
    """

    BATCH = 256

    def __init__(self, out: TextIO, fields: list[str], opts: FieldOptions) -> None:
        self.out = out
        self.fields = fields
        self.opts = opts
        self.fds = [FIELDS[f] for f in fields]
        self._plan = [(fd.abbrev, fd.fmt, fd.fmt_value, SYNTHETIC.get(fd.abbrev)) for fd in self.fds]
        self._lines: list[str] = []
        if opts.header:
            out.write(opts.separator.join(fields) + "\n")
        #: One packet in, one line buffered: generated for these options (see :meth:`_compile`).
        self.write: Callable[[Packet], None] = self._compile()

    def _compile(self) -> Callable[[Packet], None]:
        """``write`` for these fields and options, as straight-line code.

        A loop over the fields spent more on unpacking its per-field plan and re-testing options
        than on the values; generated code, one block per ``-e`` field with its formatter bound by
        name and the options decided here, does the same cell by cell. Only plan positions and
        ``repr`` of validated field names reach the source text.
        """
        opts = self.opts
        occ = opts.occurrence
        ns: dict[str, Any] = {"self": self, "AGG": opts.aggregator, "SEP": opts.separator,
                              "Q": opts.quote, "OCC": occ, "LINES": self._lines,
                              "select_occurrence": select_occurrence}
        body = ["def write(pkt):", "    get = pkt.index.get"]
        for i, (abbrev, fmt, fmt_value, synth) in enumerate(self._plan):
            ns[f"F{i}"], ns[f"V{i}"], ns[f"S{i}"] = fmt, fmt_value, synth
            body.append(f"    n = get({abbrev!r})")
            if occ != "a":
                missing = "[]" if synth is None else f"S{i}(pkt)"
                body += [
                    f"    v = [x.value for x in n] if n is not None else {missing}",
                    f"    c{i} = AGG.join([V{i}(x) for x in select_occurrence(v, OCC)])",
                ]
            else:
                if synth is None:
                    missing = f"c{i} = ''"
                else:
                    # Most synthetic fields have one value (frame.number, frame.len...): no join.
                    missing = (f"v = S{i}(pkt); c{i} = (F{i}(v[0]) if v[0] is not None else V{i}(None)) "
                               f"if len(v) == 1 else AGG.join([V{i}(x) for x in v])")
                body += [
                    "    if n is None:",
                    f"        {missing}",
                    "    elif len(n) == 1:",
                    "        v = n[0].value",
                    f"        c{i} = F{i}(v) if v is not None else V{i}(v)",
                    "    else:",
                    f"        c{i} = AGG.join([V{i}(x.value) for x in n])",
                ]
            if opts.quote:
                body.append(f"    if c{i}: c{i} = Q + c{i} + Q")
        cells = ", ".join(f"c{i}" for i in range(len(self._plan)))
        body += [
            f"    LINES.append(SEP.join(({cells},)))",
            "    if len(LINES) >= self.BATCH:",
            "        self.flush()",
        ]
        exec("\n".join(body), ns)  # noqa: S102 - code built above from positions, not from input
        return ns["write"]  # type: ignore[no-any-return]

    def flush(self) -> None:
        """Hand the buffered lines to the stream (call before flushing it or reporting errors)."""
        lines = self._lines
        if lines:
            lines.append("")
            self.out.write("\n".join(lines))
            lines.clear()


# ---------------------------------------------------------------------------
# One-line summary


def summary_columns(pkt: Packet) -> tuple[str, str, str, str, str, str, str]:
    """No., Time, Source, Destination, Protocol, Length, Info."""
    return (
        str(pkt.number),
        f"{pkt.rel_ns / 1e9:.6f}",
        pkt.src,
        pkt.dst,
        pkt.protocol,
        str(pkt.wirelen),
        pkt.info,
    )


def summary_line(pkt: Packet) -> str:
    """tshark's default line: ``    1   0.000000    127.0.0.1 → 127.0.0.1    UDP 53 …``."""
    no, t, src, dst, proto, ln, info = summary_columns(pkt)
    arrow = " → " if (src or dst) else "   "
    return f"{no:>5} {t:>11} {src:>12}{arrow}{dst:<12} {proto} {ln} {info}".rstrip()


# ---------------------------------------------------------------------------
# -V detail tree


def write_tree(out: TextIO, pkt: Packet) -> None:
    """-V: the full tree with expert entries under the layer that raised them."""
    for lay in pkt.layers:
        for depth, node in lay.walk():
            out.write("    " * depth + node.text() + "\n")
        for e in pkt.experts:
            if e.proto == lay.proto.abbrev and lay.src == e.src:
                out.write(f"    [Expert Info ({e.severity.name.title()}/{e.group.value}): {e.message}]\n")
    out.write("\n")


# ---------------------------------------------------------------------------
# -x hex dump


def hexdump(data: bytes) -> str:
    """tshark's hex/ASCII dump: 16 bytes a line, offset in 4 hex digits."""
    out = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        hx = " ".join(f"{b:02x}" for b in chunk[:8])
        if len(chunk) > 8:
            hx += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        if len(chunk) > 8:
            asc = asc[:8] + " " + asc[8:]
        out.append(f"{i:04x}  {hx:<49}  {asc}")
    return "\n".join(out)


def write_hex(out: TextIO, pkt: Packet) -> None:
    for i, s in enumerate(pkt.sources):
        if i:
            out.write(f"{s.name} ({len(s.data)} bytes):\n")
        out.write(hexdump(s.data) + "\n")
    out.write("\n")


# ---------------------------------------------------------------------------
# -T json / ek


def _put(obj: dict[str, Any], key: str, val: Any) -> None:
    """Duplicate keys become lists (tshark's --no-duplicate-keys behaviour)."""
    if key in obj:
        cur = obj[key]
        if isinstance(cur, list) and obj.get("\0list_" + key):
            cur.append(val)
        else:
            obj[key] = [cur, val]
            obj["\0list_" + key] = True
    else:
        obj[key] = val


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if not k.startswith("\0")}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def _node_json(node: Node) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for ch in node.children or ():
        fd = ch.fd
        if fd.abbrev == "_ws.text":
            key = ch.label or ""
            val: Any = _node_json(ch) if ch.children else ""
            _put(obj, key, val)
            continue
        _put(obj, fd.abbrev, fd.fmt_value(ch.value) if fd.ftype not in (FT.NONE, FT.PROTOCOL) else "")
        if ch.children:
            _put(obj, fd.abbrev + "_tree", _node_json(ch))
    return obj


def packet_json(pkt: Packet, fields: list[str] | None = None) -> dict[str, Any]:
    """The ``_source.layers`` document tshark's ``-T json`` prints for one packet."""
    layers: dict[str, Any] = {}
    if fields:
        for f in fields:
            fd = FIELDS[f]
            vals = pkt.values(f)
            if vals:
                layers[f] = [fd.fmt_value(v) for v in vals]
    else:
        for lay in pkt.layers:
            _put(layers, lay.proto.abbrev, _node_json(lay))
    day = time.strftime("%Y-%m-%d", time.gmtime(pkt.ts_ns // 1_000_000_000))
    return {"_index": f"packets-{day}", "_type": "doc", "_score": None, "_source": {"layers": _clean(layers)}}


class JsonWriter:
    """A JSON array streamed one packet at a time (memory stays flat)."""

    def __init__(self, out: TextIO, fields: list[str] | None) -> None:
        self.out = out
        self.fields = fields
        self.n = 0

    def write(self, pkt: Packet) -> None:
        self.out.write("[\n" if self.n == 0 else ",\n")
        self.out.write(json.dumps(packet_json(pkt, self.fields), indent=2, ensure_ascii=False))
        self.n += 1

    def close(self) -> None:
        self.out.write("\n]\n" if self.n else "[\n]\n")


def _flatten(node: Node, proto: str, obj: dict[str, Any]) -> None:
    for ch in node.children or ():
        fd = ch.fd
        if fd.abbrev != "_ws.text":
            key = f"{proto}_{fd.abbrev.replace('.', '_')}"
            val = fd.fmt_value(ch.value) if fd.ftype not in (FT.NONE, FT.PROTOCOL) else ""
            if key in obj:
                cur = obj[key]
                obj[key] = [*cur, val] if isinstance(cur, list) else [cur, val]
            else:
                obj[key] = val
        if ch.children:
            _flatten(ch, proto, obj)


class EkWriter:
    """``-T ek``: newline-delimited Elasticsearch bulk documents, flattened keys."""

    def __init__(self, out: TextIO, fields: list[str] | None) -> None:
        self.out = out
        self.fields = fields

    def write(self, pkt: Packet) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(pkt.ts_ns // 1_000_000_000))
        self.out.write(json.dumps({"index": {"_index": f"packets-{day}", "_type": "doc"}}) + "\n")
        layers: dict[str, Any] = {}
        if self.fields:
            for f in self.fields:
                vals = pkt.values(f)
                if vals:
                    fd = FIELDS[f]
                    layers[f.replace(".", "_")] = [fd.fmt_value(v) for v in vals]
        else:
            for lay in pkt.layers:
                obj: dict[str, Any] = {}
                _flatten(lay, lay.proto.abbrev, obj)
                if lay.proto.abbrev in layers:
                    cur = layers[lay.proto.abbrev]
                    layers[lay.proto.abbrev] = [*cur, obj] if isinstance(cur, list) else [cur, obj]
                else:
                    layers[lay.proto.abbrev] = obj
        doc = {"timestamp": str(pkt.ts_ns // 1_000_000), "layers": layers}
        self.out.write(json.dumps(doc, ensure_ascii=False) + "\n")


PacketWriter = Callable[[Packet], None]
