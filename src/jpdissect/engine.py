"""The dissection engine: one per capture, turning frames into packets.

It owns everything that changes while a capture is read -- preferences,
decode-as overrides, ports learned at run time, per-protocol state such as
reassembly tables -- so the dissector modules themselves stay stateless and
a second capture read in the same process starts clean.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from typing import Any

from jpdissect.capture import Frame
from jpdissect.dissectors import load_all
from jpdissect.dissectors.registry import REGISTRY, DissectFn, Registry
from jpdissect.lifetime import SINGLE_PASS
from jpdissect.model import (
    FT,
    PREFS,
    PROTOCOLS,
    SYNTHETIC,
    F,
    Group,
    Layer,
    Packet,
    Protocol,
    Severity,
)

# ---------------------------------------------------------------------------
# The frame pseudo-protocol (always the first layer, as in Wireshark)

P_FRAME = Protocol("frame", "Frame", "FRAME")
FF = P_FRAME.declare(
    F("frame.number", "Frame Number", FT.UINT32),
    F("frame.time", "Arrival Time", FT.ABSTIME),
    F("frame.time_epoch", "Epoch Time", FT.RELTIME, "Seconds since the epoch"),
    F("frame.time_relative", "Time since reference or first frame", FT.RELTIME),
    F("frame.time_delta", "Time delta from previous captured frame", FT.RELTIME),
    F("frame.time_delta_displayed", "Time delta from previous displayed frame", FT.RELTIME),
    F("frame.len", "Frame Length", FT.UINT32, unit="bytes"),
    F("frame.cap_len", "Capture Length", FT.UINT32, unit="bytes"),
    F("frame.interface_id", "Interface id", FT.UINT32),
    F("frame.encap_type", "Encapsulation type", FT.UINT16),
    F("frame.comment", "Comment", FT.STRING),
    F("frame.protocols", "Protocols in frame", FT.STRING),
    F("frame.marked", "Frame is marked", FT.BOOLEAN),
    F("frame.ignored", "Frame is ignored", FT.BOOLEAN),
)

P_DATA = Protocol("data", "Data", "DATA")
# frame.* values in tree order: (field, getter(packet), generated). They are the packet's own
# attributes, so outside a tree they are not recorded at all but read on demand (SYNTHETIC, below):
# a -T fields run asking for frame.number then makes no node for it.
_FRAME_VALUES: tuple[tuple[Any, Callable[[Packet], Any], bool], ...] = (
    (FF.interface_id, attrgetter("interface_id"), False),
    (FF.encap_type, lambda p: WTAP_ENCAP.get(p.linktype, WTAP_ENCAP_UNKNOWN), False),
    (FF.time, attrgetter("ts_ns"), False),
    (FF.time_epoch, attrgetter("ts_ns"), False),
    (FF.time_delta, attrgetter("delta_ns"), True),
    (FF.time_delta_displayed, attrgetter("delta_displayed_ns"), True),
    (FF.time_relative, attrgetter("rel_ns"), True),
    (FF.number, attrgetter("number"), False),
    (FF.len, attrgetter("wirelen"), False),
    (FF.cap_len, attrgetter("caplen"), False),
    (FF.marked, lambda p: False, True),
    (FF.ignored, lambda p: False, True),
)

FD = P_DATA.declare(
    F("data.data", "Data", FT.BYTES),
    F("data.len", "Length", FT.UINT32),
)

P_WS = Protocol("_ws", "Wireshark internal", "_WS")
FWS = P_WS.declare(
    F("_ws.expert", "Expert Info", FT.NONE),
    F("_ws.expert.message", "Message", FT.STRING),
    F("_ws.expert.severity", "Severity level", FT.UINT32,
      strings={1: "Comment", 2: "Chat", 3: "Note", 4: "Warning", 5: "Error"}),
    F("_ws.expert.group", "Group", FT.STRING),
    F("_ws.malformed", "Malformed Packet", FT.NONE),
)

SYNTHETIC["_ws.expert"] = lambda p: [None] * bool(p.experts)
SYNTHETIC["_ws.expert.message"] = lambda p: [e.message for e in p.experts]
SYNTHETIC["_ws.expert.severity"] = lambda p: [int(e.severity) for e in p.experts]
SYNTHETIC["_ws.expert.group"] = lambda p: [e.group.value for e in p.experts]
SYNTHETIC["_ws.malformed"] = lambda p: [None] * any(lay.malformed for lay in p.layers)
SYNTHETIC["frame.protocols"] = lambda p: [p.protocols]
SYNTHETIC["frame.comment"] = lambda p: list(p.comments)


def _frame_value(get: Callable[[Packet], Any]) -> Callable[[Packet], list[Any]]:
    return lambda p: [get(p)]


for _fd, _get, _gen in _FRAME_VALUES:
    SYNTHETIC[_fd.abbrev] = _frame_value(_get)


def _frame_fields(pkt: Packet, lay: Layer) -> None:
    """The frame subtree (tree only: outside a tree the same values are SYNTHETIC)."""
    add = lay.add
    for fd, get, generated in _FRAME_VALUES:
        add(fd, get(pkt), 0, 0, generated=generated)
    for c in pkt.comments:
        add(FF.comment, c, 0, 0)
    n, wire = pkt.caplen, pkt.wirelen
    lay.label = (
        f"Frame {pkt.number}: {wire} bytes on wire ({wire * 8} bits), {n} bytes captured ({n * 8} bits)"
        + (f" on interface {pkt.interface_id}" if pkt.interface_id else "")
    )


# frame.encap_type is Wireshark's own encapsulation number (wiretap's WTAP_ENCAP_*), not the
# pcap/pcapng link type the file stores: the mapping below is what tshark 4.0 prints for each
# link type (checked against it, tests/test_netlayers.py).  Link types tshark does not know
# make it refuse the file; jpdissect reads them as data and says WTAP_ENCAP_UNKNOWN.
WTAP_ENCAP_UNKNOWN = 0
WTAP_ENCAP: dict[int, int] = {
    0: 15, 1: 1, 9: 4, 12: 7, 101: 7, 108: 174, 113: 25, 195: 104, 215: 113, 228: 129, 229: 130,
    230: 127, 276: 210, 283: 206,
    **{147 + k: 45 + k for k in range(16)},  # LINKTYPE_USER0..15 -> WTAP_ENCAP_USER0..15
}
# Wireshark's names for those encapsulations, for the frame tree.
ENCAP_NAMES = {
    0: "Unknown", 1: "Ethernet", 4: "PPP", 7: "Raw IP", 15: "NULL/Loopback", 25: "Linux cooked-mode capture v1",
    104: "IEEE 802.15.4 Wireless PAN", 113: "IEEE 802.15.4 Wireless PAN non-ASK PHY",
    127: "IEEE 802.15.4 Wireless PAN with FCS not present", 129: "Raw IPv4", 130: "Raw IPv6",
    174: "OpenBSD loopback", 206: "IEEE 802.15.4 Wireless with TAP pseudo-header",
    210: "Linux cooked-mode capture v2",
    **{45 + k: f"USER {k}" for k in range(16)},
}
FF.encap_type.strings = ENCAP_NAMES

# Protocols at or below the transport layer: none of their fields depends on
# what a payload dissector finds.  When every field asked for (``-e``, ``-Y``)
# lives here and neither the tree nor the columns are wanted, the engine stops
# at the transport payload -- "decoding is lazy where it pays" (DESIGN §4).
LOWER_LAYERS = frozenset({
    "frame", "eth", "vlan", "sll", "null", "ip", "ipv6", "udp", "icmp", "icmpv6",
})
# Not wpan/6lowpan: with Thread keys, what they show depends on MLE and MeshCoP
# above UDP (address maps, key sequence, contexts, KEKs).

_DECODE_AS = re.compile(r"^\s*([a-z0-9_.]+)\s*==\s*([0-9x,\-]+)\s*,\s*([A-Za-z0-9_.\-]+)\s*$")


_UNRESOLVED = object()


class OptionError(ValueError):
    """A bad ``-o`` or ``-d`` argument, reported before reading anything."""


def parse_decode_as(spec: str, registry: Registry = REGISTRY) -> tuple[str, list[int], str]:
    """``udp.port==5685,coap`` -> ("udp.port", [5685], "coap"); ranges ``a-b`` allowed."""
    m = _DECODE_AS.match(spec)
    if not m:
        raise OptionError(
            f'Invalid -d argument "{spec}": expected <layer type>==<selector>,<decode-as protocol>, '
            "e.g. udp.port==5685,coap"
        )
    table, sel, proto = m.group(1), m.group(2), m.group(3).lower()
    if table not in registry.tables and table not in ("udp.port",):
        known = ", ".join(sorted(registry.tables))
        raise OptionError(f'Invalid -d table "{table}"; valid tables: {known}')
    if proto not in registry.named:
        known = ", ".join(sorted(registry.named))
        raise OptionError(f'Invalid -d protocol "{proto}"; valid protocols: {known}')
    keys: list[int] = []
    try:
        for part in sel.split(","):
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a, 0), int(b, 0)
                if hi - lo > 65535 or hi < lo:
                    raise ValueError(part)
                keys.extend(range(lo, hi + 1))
            else:
                keys.append(int(part, 0))
    except ValueError as exc:
        raise OptionError(f'Invalid -d selector "{sel}"') from exc
    return table, keys, proto


def parse_pref(spec: str) -> tuple[str, Any]:
    """``dtls.cid_length:4`` -> ("dtls.cid_length", 4), typed by the declaration."""
    name, sep, value = spec.partition(":")
    name = name.strip()
    if not sep:
        raise OptionError(f'Invalid -o flag "{spec}": expected name:value')
    pref = PREFS.get(name)
    if pref is None:
        known = ", ".join(sorted(PREFS)) or "(none)"
        raise OptionError(f'Invalid -o flag "{spec}": unknown preference "{name}"; known: {known}')
    try:
        return name, pref.parse(value)
    except ValueError as exc:
        raise OptionError(f'Invalid -o flag "{spec}": {exc}') from exc


class Engine:
    """Dissects frames in capture order and carries state between them.

    ``single_pass=True`` is a promise by the caller: every frame is dissected once, in capture
    order, and nothing but the returned packets is read (``jpdissect read``). The stateful
    dissectors then keep no memo for dissecting a frame again and no report rows of finished
    conversations, so memory stays flat however long the capture (:mod:`jpdissect.lifetime`).
    Output is the same with or without it.
    """

    def __init__(
        self,
        prefs: Iterable[str] | dict[str, Any] = (),
        decode_as: Iterable[str] = (),
        tree: bool = False,
        cols: bool = True,
        registry: Registry = REGISTRY,
        lazy: bool = False,
        single_pass: bool = False,
    ) -> None:
        load_all()
        self.registry = registry
        self.tree = tree
        self.cols = cols
        self.prefs: dict[str, Any] = {n: p.default for n, p in PREFS.items()}
        if isinstance(prefs, dict):
            self.prefs.update(prefs)
        else:
            for spec in prefs:
                k, v = parse_pref(spec)
                self.prefs[k] = v
        # Per-capture overrides of the static tables: decode-as and learned entries.
        self.overrides: dict[str, dict[Any, str]] = {}
        for spec in decode_as:
            table, keys, proto = parse_decode_as(spec, registry)
            for k in keys:
                self.overrides.setdefault(table, {})[k] = proto
        self._learned: dict[str, dict[Any, str]] = {}
        # (table -> key -> dissector or None), filled by lookup(): three table dispatches per
        # frame each cost four dict probes before; emptied whenever a learned entry changes.
        self._resolved: dict[str, dict[Any, DissectFn | None]] = {}
        self.state: dict[str, Any] = {SINGLE_PASS: True} if single_pass else {}
        self.count = 0
        self.first_ts: int | None = None
        self.prev_ts: int | None = None
        self.prev_displayed_ts: int | None = None
        self.secrets: list[tuple[int, bytes]] = []
        primed = {abbrev for abbrev, p in PROTOCOLS.items() if p.primed}
        #: The caller reads nothing of a packet but the primed fields (and the tree or columns when
        #: asked for): bookkeeping whose only product is an unprimed field may be skipped.
        self.lazy = lazy
        #: True when nothing above the transport layer can change the output.
        # Only a caller that knows every field it will read may ask for it (``read -T fields``);
        # analyses that walk state (sessions, statistics) never get a shallow engine.
        self.shallow = (
            lazy and not tree and not cols and bool(primed) and primed <= LOWER_LAYERS
            and not FF.protocols.primed
        )
        #: True when nothing reads a layer that holds no requested field: the zero-length
        # ``ethertype`` pseudo-layer (there only so frame.protocols reads as tshark's) is skipped.
        self.lean = lazy and not tree and not cols and not FF.protocols.primed
        self._generation = registry.generation
        self._named = registry.named
        self._tables = registry.tables
        self._heur = registry.heuristics
        self._post = registry.postdissectors

    # -- driving ---------------------------------------------------------
    def dissect(self, frame: Frame) -> Packet:
        """Dissect one frame; never raises for any bytes a frame can hold."""
        self.count += 1
        if self._generation != self.registry.generation:
            self._generation = self.registry.generation
            self._resolved.clear()
        pkt = Packet(
            self.count, frame.ts_ns, frame.data, frame.linktype, frame.wirelen,
            frame.interface_id, frame.comments, self.tree, self.cols,
        )
        pkt.cap = self
        pkt.offset = frame.offset
        pkt.flags = frame.flags
        ts = frame.ts_ns
        if self.first_ts is None:
            self.first_ts = ts
            self.prev_ts = ts
            self.prev_displayed_ts = ts
        pkt.rel_ns = ts - self.first_ts
        pkt.delta_ns = ts - (self.prev_ts if self.prev_ts is not None else ts)
        pkt.delta_displayed_ns = ts - (self.prev_displayed_ts if self.prev_displayed_ts is not None else ts)
        self.prev_ts = ts
        data = frame.data
        n = len(data)
        lay = pkt.add_layer(P_FRAME, 0, n)
        if pkt.tree:
            _frame_fields(pkt, lay)
        try:
            if not self.call_table("wtap_encap", frame.linktype, pkt, data, 0, n, 0):
                self.call_data(pkt, data, 0, n, 0)
            for post in self._post:
                post(pkt)
        except Exception as exc:  # noqa: BLE001 - the contract: nothing escapes a dissector
            # A dissector bug must not lose the frame: Wireshark shows it as a
            # dissector bug expert entry, and so do we.
            where = pkt.layers[-1]
            pkt.expert(where, Severity.ERROR, Group.MALFORMED,
                       f"Dissector bug, protocol {where.proto.short}: {type(exc).__name__}: {exc}")
            if pkt.cols and not pkt.info:
                pkt.info = "[Malformed Packet]"
        if pkt.tree:
            lay.add(FF.protocols, pkt.protocols, 0, 0, generated=True)
        if pkt.cols and any(lay.malformed for lay in pkt.layers) and "[Malformed" not in pkt.info:
            pkt.info = (pkt.info + " " if pkt.info else "") + "[Malformed Packet]"
        return pkt

    def displayed(self, pkt: Packet) -> None:
        """The CLI tells the engine which frames passed the filter (frame.time_delta_displayed)."""
        self.prev_displayed_ts = pkt.ts_ns

    def run(self, frames: Iterable[Frame]) -> Iterator[Packet]:
        for fr in frames:
            yield self.dissect(fr)

    # -- calling dissectors ---------------------------------------------
    def pref(self, name: str) -> Any:
        return self.prefs[name]

    def call(self, name: str, pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
        """Run a dissector by name; unknown names fall back to data."""
        fn = self._named.get(name)
        if fn is None:
            return self.call_data(pkt, buf, off, end, src)
        return fn(pkt, buf, off, end, src)

    @property
    def learned(self) -> dict[str, dict[Any, str]]:
        """Table entries discovered in the traffic (the TUI hands them between engines)."""
        return self._learned

    @learned.setter
    def learned(self, value: dict[str, dict[Any, str]]) -> None:
        self._learned = value
        self._resolved.clear()

    def lookup(self, table: str, key: Any) -> DissectFn | None:
        """Decode-as beats learned entries beats the static table (answers memoised)."""
        res = self._resolved.get(table)
        if res is None:
            res = self._resolved[table] = {}
        fn = res.get(key, _UNRESOLVED)
        if fn is _UNRESOLVED:
            fn = res[key] = self._lookup(table, key)
        return fn  # type: ignore[return-value]

    def _lookup(self, table: str, key: Any) -> DissectFn | None:
        ov = self.overrides.get(table)
        if ov is not None and key in ov:
            return self._named.get(ov[key])
        le = self.learned.get(table)
        if le is not None and key in le:
            return self._named.get(le[key])
        t = self._tables.get(table)
        if t is not None:
            name = t.get(key)
            if name is not None:
                return self._named.get(name)
        return None

    def call_table(self, table: str, key: Any, pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
        # lookup()'s memo read in line: every frame dispatches through three or more tables.
        res = self._resolved.get(table)
        fn = res.get(key, _UNRESOLVED) if res is not None else _UNRESOLVED
        if fn is _UNRESOLVED:
            fn = self.lookup(table, key)
        if fn is None:
            return False
        return fn(pkt, buf, off, end, src)

    def call_ports(
        self, table: str, heur: str, pkt: Packet, buf: bytes, off: int, end: int, src: int
    ) -> bool:
        """UDP-style dispatch: decode-as, then the lower port, the higher port, heuristics, data.

        Wireshark tries the lower-numbered port first (a client's ephemeral port
        is the higher one); decode-as on either port wins over everything.
        """
        if self.shallow:
            return True
        sport, dport = pkt.srcport, pkt.dstport
        lo, hi = (sport, dport) if sport <= dport else (dport, sport)
        ov = self.overrides.get(table)
        if ov is not None:
            for p in (lo, hi):
                name = ov.get(p)
                if name is not None:
                    return self.call(name, pkt, buf, off, end, src)
        for p in (lo, hi):
            fn = self.lookup(table, p)
            if fn is not None and fn(pkt, buf, off, end, src):
                return True
        if self.call_heuristics(heur, pkt, buf, off, end, src):
            return True
        return self.call_data(pkt, buf, off, end, src)

    def call_heuristics(self, table: str, pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
        for h in self._heur.get(table, ()):
            if h.enabled and h.fn(pkt, buf, off, end, src):
                return True
        return False

    def learn(self, table: str, key: Any, name: str) -> None:
        """Register a port (or other key) discovered in the traffic for the rest of the capture."""
        self._learned.setdefault(table, {})[key] = name
        self._resolved.pop(table, None)

    def call_data(self, pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
        return dissect_data(pkt, buf, off, end, src)


@REGISTRY.dissector("data", "Raw bytes nobody claims (data.data, data.len)")
def dissect_data(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """Bytes nobody claims: shown as ``data`` with its length, as tshark does."""
    if end <= off:
        return True
    proto = pkt.protocol
    lay = pkt.add_layer(P_DATA, off, end - off, src)
    if proto and proto != P_FRAME.short:
        pkt.protocol = proto  # Wireshark's data dissector leaves the Protocol column alone
    if pkt.tree or FD.data.primed:
        lay.add(FD.data, buf[off:end], off, end - off)
    lay.add(FD.len, end - off, off, end - off, generated=True)
    if pkt.tree:
        lay.label = f"Data ({end - off} bytes)"
    return True
