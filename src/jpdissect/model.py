"""Packet / Layer / Node model, declared fields and expert info.

Every protocol module declares its fields once in a table (like Wireshark's
``hf_register_info``); the CLI's ``fields`` listing, the display-filter
compiler and every output format read that one table.

Speed matters more here than anywhere else: ``read -T fields`` must beat
tshark, so nodes are tiny slotted objects and a field that nobody asked for
(no full tree, not *primed* by ``-e`` or a filter) is never materialised --
the same trick tshark uses when it runs without a protocol tree.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class FT(enum.Enum):
    """Field types, named after Wireshark's ``ftenum`` so filters behave alike."""

    NONE = "FT_NONE"
    PROTOCOL = "FT_PROTOCOL"
    BOOLEAN = "FT_BOOLEAN"
    UINT8 = "FT_UINT8"
    UINT16 = "FT_UINT16"
    UINT24 = "FT_UINT24"
    UINT32 = "FT_UINT32"
    UINT64 = "FT_UINT64"
    INT32 = "FT_INT32"
    INT64 = "FT_INT64"
    DOUBLE = "FT_DOUBLE"
    ABSTIME = "FT_ABSOLUTE_TIME"
    RELTIME = "FT_RELATIVE_TIME"
    STRING = "FT_STRING"
    BYTES = "FT_BYTES"
    ETHER = "FT_ETHER"
    EUI64 = "FT_EUI64"
    IPv4 = "FT_IPv4"
    IPv6 = "FT_IPv6"
    FRAMENUM = "FT_FRAMENUM"


INTEGER_TYPES = frozenset(
    {FT.UINT8, FT.UINT16, FT.UINT24, FT.UINT32, FT.UINT64, FT.INT32, FT.INT64, FT.FRAMENUM}
)
_HEX_WIDTH = {FT.UINT8: 2, FT.UINT16: 4, FT.UINT24: 6, FT.UINT32: 8, FT.UINT64: 16}


class Base(enum.Enum):
    """How an integer is shown (Wireshark's ``field_display_e``)."""

    DEC = "BASE_DEC"
    HEX = "BASE_HEX"
    DEC_HEX = "BASE_DEC_HEX"
    HEX_DEC = "BASE_HEX_DEC"
    NONE = "BASE_NONE"


class FieldDef:
    """One declared field: the unit a filter names and an output prints.

    ``primed`` is flipped on, for the run, for fields that ``-e`` or a display
    filter mentions; dissectors then record them even without a full tree.
    """

    __slots__ = (
        "abbrev", "name", "ftype", "desc", "base", "strings", "bitmask", "unit",
        "primed", "proto", "fmt",
    )

    def __init__(
        self,
        abbrev: str,
        name: str,
        ftype: FT,
        desc: str = "",
        base: Base | None = None,
        strings: Mapping[Any, str] | None = None,
        bitmask: int = 0,
        unit: str = "",
    ) -> None:
        self.abbrev = abbrev
        self.name = name
        self.ftype = ftype
        self.desc = desc
        if base is None:
            base = Base.DEC if ftype in INTEGER_TYPES else Base.NONE
        self.base = base
        self.strings = strings
        self.bitmask = bitmask
        self.unit = unit
        self.primed = False
        self.proto = abbrev.split(".", 1)[0]
        #: value -> text as tshark -T fields prints it; chosen once here, since output
        #: formatting runs for every requested field of every packet.
        self.fmt: Callable[[Any], str] = _formatter(ftype, base)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"FieldDef({self.abbrev!r})"

    # -- formatting -----------------------------------------------------
    def fmt_value(self, value: Any) -> str:
        """The value as ``tshark -T fields`` prints it (4.0 conventions)."""
        if value is None:
            return "1" if self.ftype is FT.NONE else ""
        return self.fmt(value)

    def fmt_display(self, value: Any) -> str:
        """The value as the detail tree shows it: names from value strings, units."""
        ft = self.ftype
        raw = self.fmt_value(value)
        if self.strings is not None and not isinstance(value, bytes | bytearray):
            name = self.strings.get(value)
            if ft in INTEGER_TYPES:
                num = raw if self.base in (Base.HEX, Base.HEX_DEC) else str(value)
                return f"{name if name is not None else 'Unknown'} ({num})"
            if name is not None:
                return name
        if ft is FT.BOOLEAN:
            return "True" if value else "False"
        if ft in INTEGER_TYPES and self.base is Base.DEC_HEX:
            return f"{value} (0x{value:x})"
        if ft in INTEGER_TYPES and self.base is Base.HEX_DEC:
            return f"{raw} ({value})"
        if ft is FT.RELTIME:
            return f"{raw} seconds"
        if ft is FT.STRING:
            return str(value)
        if self.unit:
            return f"{raw} {self.unit}"
        return raw


def _fmt_ipv4(v: Any) -> str:
    return socket.inet_ntop(socket.AF_INET, v) if isinstance(v, bytes | bytearray) else str(v)


def _fmt_ipv6(v: Any) -> str:
    return socket.inet_ntop(socket.AF_INET6, v) if isinstance(v, bytes | bytearray) else str(v)


def _fmt_colons(v: Any) -> str:
    return bytes(v).hex(":")


def _fmt_bytes(v: Any) -> str:
    return bytes(v).hex()


def _fmt_bool(v: Any) -> str:
    return "1" if v else "0"


def _fmt_double(v: Any) -> str:
    return str(v) if isinstance(v, int) else repr(float(v))


def _fmt_empty(v: Any) -> str:
    return ""


def _fmt_none(v: Any) -> str:
    return "1"  # tshark prints a present FT_NONE field as 1


def _formatter(ft: FT, base: Base) -> Callable[[Any], str]:
    if ft in INTEGER_TYPES:
        if base in (Base.HEX, Base.HEX_DEC):
            spec = f"#0{_HEX_WIDTH.get(ft, 0) + 2}x"  # tshark pads to the type's width, mask or not
            return lambda v: format(v, spec)
        return str
    return {
        FT.BOOLEAN: _fmt_bool,
        FT.BYTES: _fmt_bytes,
        FT.ETHER: _fmt_colons,
        FT.EUI64: _fmt_colons,
        FT.IPv4: _fmt_ipv4,
        FT.IPv6: _fmt_ipv6,
        FT.RELTIME: fmt_reltime,
        FT.ABSTIME: fmt_abstime,
        FT.DOUBLE: _fmt_double,
        FT.NONE: _fmt_none,
        FT.PROTOCOL: _fmt_empty,
    }.get(ft, str)


def fmt_reltime(value: int | float) -> str:
    """Relative times are kept as integer nanoseconds; tshark prints 9 digits."""
    if isinstance(value, float):
        value = round(value * 1_000_000_000)
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 1_000_000_000}.{value % 1_000_000_000:09d}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def fmt_abstime(ts_ns: int) -> str:
    """``Nov 23, 2026 14:37:06.222637000 UTC`` like tshark run with TZ=UTC."""
    import time

    secs, frac = divmod(ts_ns, 1_000_000_000)
    t = time.gmtime(secs)
    return (
        f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}, {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{frac:09d} UTC"
    )


# ---------------------------------------------------------------------------
# The global field registry


FIELDS: dict[str, FieldDef] = {}
PROTOCOLS: dict[str, Protocol] = {}


class Protocol:
    """A protocol: its own presence field plus its declared field table."""

    __slots__ = ("abbrev", "name", "short", "fd", "fields", "primed")

    def __init__(self, abbrev: str, name: str, short: str | None = None) -> None:
        self.abbrev = abbrev
        self.name = name
        self.short = short or abbrev.upper()
        self.fd = FieldDef(abbrev, name, FT.PROTOCOL, name)
        self.fields: dict[str, FieldDef] = {}
        # True while any of this protocol's fields (or the protocol itself) is
        # primed: one attribute test lets a dissector skip all field bookkeeping.
        self.primed = False
        if abbrev in FIELDS and FIELDS[abbrev].ftype is not FT.PROTOCOL:
            raise ValueError(f"protocol {abbrev} clashes with a field")
        FIELDS[abbrev] = self.fd
        PROTOCOLS[abbrev] = self

    def declare(self, *defs: FieldDef) -> FieldTable:
        """Register this protocol's field table; returns attribute access by short name."""
        for d in defs:
            if d.abbrev in FIELDS:
                raise ValueError(f"field {d.abbrev} declared twice")
            FIELDS[d.abbrev] = d
            self.fields[d.abbrev] = d
        return FieldTable(defs, self.abbrev)


class FieldTable:
    """``F.srcport`` for ``udp.srcport``: short, typo-checked access in dissectors."""

    def __init__(self, defs: Iterable[FieldDef], prefix: str) -> None:
        for d in defs:
            short = d.abbrev[len(prefix) + 1 :] if d.abbrev.startswith(prefix + ".") else d.abbrev
            setattr(self, short.replace(".", "_"), d)


def F(abbrev: str, name: str, ftype: FT, desc: str = "", **kw: Any) -> FieldDef:
    """Shorthand used in the declaration tables."""
    return FieldDef(abbrev, name, ftype, desc, **kw)


def prime(abbrevs: Iterable[str]) -> None:
    """Ask every dissector to record these fields even without a full tree."""
    for a in abbrevs:
        fd = FIELDS.get(a)
        if fd is not None:
            fd.primed = True
            proto = PROTOCOLS.get(fd.proto)
            if proto is not None:
                proto.primed = True


def unprime_all() -> None:
    for fd in FIELDS.values():
        fd.primed = False
    for p in PROTOCOLS.values():
        p.primed = False


# ---------------------------------------------------------------------------
# Expert info (Wireshark's severities and groups)


class Severity(enum.IntEnum):
    COMMENT = 1
    CHAT = 2
    NOTE = 3
    WARN = 4
    ERROR = 5


class Group(enum.Enum):
    CHECKSUM = "Checksum"
    SEQUENCE = "Sequence"
    RESPONSE_CODE = "Response code"
    REQUEST_CODE = "Request code"
    UNDECODED = "Undecoded"
    REASSEMBLE = "Reassemble"
    MALFORMED = "Malformed"
    DEBUG = "Debug"
    PROTOCOL = "Protocol"
    SECURITY = "Security"
    COMMENTS = "Comment"
    DECRYPTION = "Decryption"
    ASSUMPTION = "Assumption"
    DEPRECATED = "Deprecated"


@dataclass(slots=True)
class Expert:
    severity: Severity
    group: Group
    message: str
    proto: str
    offset: int
    length: int = 0
    src: int = 0

    def __str__(self) -> str:
        return f"[{self.severity.name.title()}/{self.group.value}] {self.message}"


# ---------------------------------------------------------------------------
# Instances


_new = object.__new__


class Node:
    """One field occurrence: value plus the byte span it came from.

    ``offset``/``length`` are relative to data source ``src`` of the packet
    (0 = the captured frame, others = reassembled/decrypted buffers), which is
    what lets the UI highlight bytes exactly.
    """

    __slots__ = ("fd", "value", "offset", "length", "src", "children", "label", "pkt", "generated")

    def __init__(
        self, pkt: Packet, fd: FieldDef, value: Any, offset: int, length: int, src: int
    ) -> None:
        self.pkt = pkt
        self.fd = fd
        self.value = value
        self.offset = offset
        self.length = length
        self.src = src
        self.children: list[Node] | None = None
        self.label: str | None = None
        self.generated = False

    def add(
        self,
        fd: FieldDef,
        value: Any,
        offset: int,
        length: int,
        label: str | None = None,
        generated: bool = False,
    ) -> Node:
        """Add a child field; a no-op returning ``self`` when nobody wants it.

        The tree shape only matters when the full tree is built, and then every
        node is materialised and linked to its parent. Without a tree, a primed
        field is only indexed (what ``values``, filters and ``-T fields`` read):
        nothing walks ``children`` then, and linking them was a tenth of a fast read.
        """
        pkt = self.pkt
        tree = pkt.tree
        if not (tree or fd.primed):
            return self
        # Node.__init__ spelled out: calling a Python class costs a second frame, and this runs for
        # every recorded value of every packet.
        n = _new(Node)
        n.pkt = pkt
        n.fd = fd
        n.value = value
        n.offset = offset
        n.length = length
        n.src = self.src
        n.children = None
        n.label = label
        n.generated = generated
        if tree:
            ch = self.children
            if ch is None:
                self.children = [n]
            else:
                ch.append(n)
        idx = pkt.index
        lst = idx.get(fd.abbrev)
        if lst is None:
            idx[fd.abbrev] = [n]
        else:
            lst.append(n)
        return n

    def add_text(self, text: str, offset: int = 0, length: int = 0) -> Node:
        """A label-only line in the tree (Wireshark's ``proto_tree_add_item`` of FT_NONE text)."""
        if not self.pkt.tree:
            return self
        n = Node(self.pkt, _TEXT, None, offset, length, self.src)
        n.label = text
        if self.children is None:
            self.children = [n]
        else:
            self.children.append(n)
        return n

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Node]]:
        yield depth, self
        if self.children:
            for c in self.children:
                yield from c.walk(depth + 1)

    def text(self) -> str:
        """The detail-tree line for this node."""
        if self.label is not None:
            return self.label
        fd = self.fd
        if fd.ftype is FT.PROTOCOL or fd.ftype is FT.NONE:
            return fd.name
        s = f"{fd.name}: {fd.fmt_display(self.value)}"
        return f"[{s}]" if self.generated else s


_TEXT = FieldDef("_ws.text", "Text item", FT.NONE)


class Layer(Node):
    """A protocol layer: the top node of one protocol's subtree."""

    __slots__ = ("proto", "malformed")

    # No __init__: Packet.add_layer is the one place layers are made, with every slot set there.


@dataclass(slots=True)
class DataSource:
    """A byte buffer the UI can show: the frame itself or a reassembled/decrypted one."""

    name: str
    data: bytes


class Packet:
    """One dissected frame: layers in order, an index of recorded fields, columns.

    Dissectors communicate downward through plain attributes (like Wireshark's
    ``pinfo``): network addresses, ports, the current conversation key.
    """

    __slots__ = (
        "number", "ts_ns", "caplen", "wirelen", "linktype", "interface_id", "data",
        "comments", "layers", "index", "experts", "_sources", "tree", "cols",
        "protocol", "info", "src", "dst", "net_src", "net_dst", "dl_src", "dl_dst",
        "srcport", "dstport", "ptype", "cap", "rel_ns", "delta_ns", "delta_displayed_ns",
        "scratch", "offset", "flags",
    )

    def __init__(self, number: int, ts_ns: int, data: bytes, linktype: int, wirelen: int,
                 interface_id: int = 0, comments: tuple[str, ...] = (), tree: bool = False,
                 cols: bool = True) -> None:
        self.number = number
        self.ts_ns = ts_ns
        self.data = data
        self.caplen = len(data)
        self.wirelen = wirelen
        self.linktype = linktype
        self.interface_id = interface_id
        self.comments = comments
        self.layers: list[Layer] = []
        self.index: dict[str, list[Node]] = {}
        self.experts: list[Expert] = []
        # Made on first use: most packets never get a second data source, and nothing but the UI,
        # byte-slice filters and the decoders of reassembled/decrypted buffers reads the list.
        self._sources: list[DataSource] | None = None
        self.tree = tree
        self.cols = cols
        self.protocol = ""
        self.info = ""
        self.src = ""
        self.dst = ""
        self.net_src: Any = None
        self.net_dst: Any = None
        self.dl_src: Any = None
        self.dl_dst: Any = None
        self.srcport = 0
        self.dstport = 0
        self.ptype = ""
        self.cap: Any = None
        self.rel_ns = 0
        self.delta_ns = 0
        self.delta_displayed_ns = 0
        self.scratch: dict[str, Any] = {}
        self.offset = 0
        self.flags: int | None = None

    # -- building -------------------------------------------------------
    def add_layer(self, proto: Protocol, offset: int, length: int, src: int = 0) -> Layer:
        """Start a protocol's subtree; the protocol column follows the top layer."""
        # Every slot set here rather than in an __init__: a layer is made for every protocol of
        # every frame, and calling a Python class costs a second frame.
        lay = _new(Layer)
        lay.pkt = self
        lay.fd = proto.fd
        lay.value = None
        lay.offset = offset
        lay.length = length
        lay.src = src
        lay.children = None
        lay.label = None
        lay.generated = False
        lay.proto = proto
        lay.malformed = False
        self.layers.append(lay)
        lst = self.index.get(proto.abbrev)
        if lst is None:
            self.index[proto.abbrev] = [lay]
        else:
            lst.append(lay)
        self.protocol = proto.short
        return lay

    def add_source(self, name: str, data: bytes) -> int:
        """Register a reassembled or decrypted buffer; returns its ``src`` index."""
        sources = self.sources
        sources.append(DataSource(name, data))
        return len(sources) - 1

    @property
    def sources(self) -> list[DataSource]:
        """The data sources: 0 is the captured frame, then reassembled/decrypted buffers."""
        s = self._sources
        if s is None:
            s = self._sources = [DataSource("Frame", self.data)]
        return s

    def expert(
        self,
        where: Node | None,
        severity: Severity,
        group: Group,
        message: str,
        offset: int | None = None,
        length: int = 0,
    ) -> Expert:
        """Record an expert-info entry; malformed errors also flag the layer."""
        proto = where.fd.proto if where is not None else "frame"
        src = where.src if where is not None else 0
        if offset is None:
            offset = where.offset if where is not None else 0
        e = Expert(severity, group, message, proto, offset, length, src)
        self.experts.append(e)
        if group is Group.MALFORMED and isinstance(where, Layer):
            where.malformed = True
        elif group is Group.MALFORMED and where is not None:
            for lay in reversed(self.layers):
                if lay.proto.abbrev == proto:
                    lay.malformed = True
                    break
        return e

    def malformed(self, where: Node, message: str, offset: int | None = None, length: int = 0) -> Expert:
        """Shorthand for the commonest expert entry: a rule broken at an offset."""
        return self.expert(where, Severity.ERROR, Group.MALFORMED, message, offset, length)

    def release(self) -> None:
        """Drop the tree once the packet is printed.

        Nodes point back at their packet, so every dissected packet is a
        reference cycle; breaking it here lets reference counting free it at
        once instead of leaving it to the cyclic garbage collector, which
        would otherwise dominate a long read. Emptied in place, not replaced:
        two fresh containers per frame were measurable, and nothing holds
        these two past the packet.
        """
        self.layers.clear()
        self.index.clear()

    # -- reading --------------------------------------------------------
    def nodes(self, abbrev: str) -> list[Node]:
        return self.index.get(abbrev, [])

    def values(self, abbrev: str) -> list[Any]:
        """All values of a field in this packet, in dissection order."""
        lst = self.index.get(abbrev)
        if lst is None:
            return _synthetic(self, abbrev)
        return [n.value for n in lst]

    def get(self, abbrev: str, default: Any = None) -> Any:
        """The first value of a field, or ``default``."""
        v = self.values(abbrev)
        return v[0] if v else default

    def has(self, abbrev: str) -> bool:
        return abbrev in self.index or bool(_synthetic(self, abbrev))

    def layer(self, proto: str) -> Layer | None:
        for lay in self.layers:
            if lay.proto.abbrev == proto:
                return lay
        return None

    @property
    def protocols(self) -> str:
        """``frame.protocols``: the layer chain as Wireshark spells it."""
        return ":".join(lay.proto.abbrev for lay in self.layers if lay.proto.abbrev != "frame")

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Packet {self.number} {self.protocols}>"


# Fields that are computed from the packet itself instead of being added by a dissector.
SYNTHETIC: dict[str, Callable[[Packet], list[Any]]] = {}


def _synthetic(pkt: Packet, abbrev: str) -> list[Any]:
    fn = SYNTHETIC.get(abbrev)
    return fn(pkt) if fn is not None else []


@dataclass
class Pref:
    """A ``-o name:value`` preference, declared next to the protocol that reads it."""

    name: str
    kind: type
    default: Any
    desc: str
    choices: tuple[str, ...] = field(default_factory=tuple)

    def parse(self, text: str) -> Any:
        if self.kind is bool:
            t = text.strip().lower()
            if t in ("true", "1", "yes", "on", "y"):
                return True
            if t in ("false", "0", "no", "off", "n"):
                return False
            raise ValueError(f"{text!r} is not a boolean")
        if self.kind is int:
            return int(text, 0)
        if self.kind is bytes:
            t = text.replace(":", "").replace(" ", "")
            return bytes.fromhex(t)
        if self.choices and text not in self.choices:
            raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
        return self.kind(text)


PREFS: dict[str, Pref] = {}


def declare_prefs(*prefs: Pref) -> None:
    for p in prefs:
        if p.name in PREFS:
            raise ValueError(f"preference {p.name} declared twice")
        PREFS[p.name] = p
