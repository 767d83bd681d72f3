"""Helpers shared by the link and network layer dissectors (not a dissector itself).

Kept out of the protocol modules so that eth/sll/null/raw/ip/ipv6/udp/icmp
agree on the few things they must agree on: which fields are wanted at all,
protocol-number names, the Internet checksum, and how an ICMP error's quoted
packet is dissected without disturbing the outer packet.
"""

from __future__ import annotations

import socket
import sys
from array import array
from typing import Any

from jpdissect.model import FieldDef, Group, Packet, Protocol, Severity
from jpdissect.reassembly import Issue

_inet_ntop = socket.inet_ntop
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


def wants(pkt: Packet, *protos: Protocol) -> bool:
    """True when the tree is built or any field of these protocols is primed.

    Dissectors test this once per layer and skip all field bookkeeping when
    it is False (the ``-T fields`` fast path); ``Protocol.primed`` is kept
    up to date by :func:`jpdissect.model.prime`.
    """
    if pkt.tree:
        return True
    for p in protos:
        if p.primed:
            return True
    return False


# IANA protocol numbers, spelled as Wireshark's ipproto value strings spell them
# (these names show up in Info columns, e.g. "proto=UDP 17").
IP_PROTO_NAMES: dict[int, str] = {
    0: "IPv6 Hop-by-Hop Option", 1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 8: "EGP",
    17: "UDP", 41: "IPv6", 43: "Routing Header for IPv6", 44: "Fragment Header for IPv6",
    46: "RSVP", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6", 59: "No Next Header for IPv6",
    60: "Destination Options for IPv6", 88: "EIGRP", 89: "OSPF IGP", 103: "PIM", 112: "VRRP",
    115: "L2TP", 132: "SCTP", 135: "Mobile IPv6", 136: "UDPLite", 137: "MPLS in IP",
    139: "HIP", 140: "Shim6", 143: "Ethernet", 253: "Experimental 1", 254: "Experimental 2",
}

ETHERTYPE_NAMES: dict[int, str] = {
    0x0800: "IPv4", 0x0806: "ARP", 0x8100: "802.1Q Virtual LAN", 0x86DD: "IPv6",
    0x88A8: "802.1ad Provider Bridge (Q-in-Q)", 0x8847: "MPLS label switched packet",
    0x88CC: "802.1 Link Layer Discovery Protocol (LLDP)", 0x888E: "802.1X Authentication",
    0x8863: "PPPoE Discovery", 0x8864: "PPPoE Session", 0x9000: "Loopback",
    0x88E5: "802.1AE (MACsec)", 0x0842: "Wake on LAN", 0xA0ED: "6LoWPAN",
}


def ip_str(addr: bytes) -> str:
    """An IPv4 or IPv6 address as text (inet_ntop is the fast path)."""
    return _inet_ntop(AF_INET if len(addr) == 4 else AF_INET6, addr)


def ether_str(mac: bytes) -> str:
    """A MAC address the way tshark's Source/Destination columns show it without name resolution."""
    if mac == b"\xff\xff\xff\xff\xff\xff":
        return "Broadcast"
    return mac.hex(":")


_LITTLE = sys.byteorder == "little"


def inet_sum(data: bytes | memoryview, start: int = 0) -> int:
    """The 16-bit ones' complement sum (not yet inverted) of ``data`` added to ``start``.

    RFC 1071 §2(B): the sum is byte-order independent, so it is taken over
    native-order 16-bit words (one C-level ``sum``) and swapped at the end.
    """
    if len(data) % 2:
        data = bytes(data) + b"\0"
    s = sum(array("H", bytes(data)))
    if _LITTLE:
        # Fold, then swap the two bytes of the folded native-order sum.
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        s = ((s & 0xFF) << 8) | (s >> 8)
    s += start
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def inet_checksum(data: bytes | memoryview, start: int = 0) -> int:
    """The Internet checksum (RFC 1071) of ``data`` with a pseudo-header sum ``start``."""
    return ~inet_sum(data, start) & 0xFFFF


def pseudo_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Pseudo-header sum: RFC 768 (IPv4: addresses, zero, protocol, length) / RFC 8200 §8.1 (IPv6)."""
    if len(src) == 4:
        return inet_sum(src + dst, proto + length)
    return inet_sum(src + dst, proto + (length & 0xFFFF) + (length >> 16))


# Checksum status values (Wireshark's proto_checksum_vals).
CKSUM_BAD, CKSUM_GOOD, CKSUM_UNVERIFIED, CKSUM_NOT_PRESENT, CKSUM_ILLEGAL = 0, 1, 2, 3, 4
CKSUM_STATUS = {0: "Bad", 1: "Good", 2: "Unverified", 3: "Not present", 4: "Illegal"}

# Key in pkt.scratch: set while an ICMP/ICMPv6 error's quoted packet is dissected.
IN_ERROR = "in_error_pkt"

_SAVED = ("src", "dst", "net_src", "net_dst", "srcport", "dstport", "ptype", "protocol", "info")


# What an ICMP error's quoted datagram was: pkt.scratch[QUOTED] after dissect_quoted().
QUOTED = "icmp.quoted"


def dissect_quoted(pkt: Packet, name: str, buf: bytes, off: int, end: int, src: int) -> None:
    """Dissect the packet an ICMP error quotes, leaving the outer packet's facts alone.

    Like Wireshark's ``in_error_pkt``: the quoted IP/UDP headers are decoded
    (their ports matter to a join proxy relaying errors to pledges), but they
    start no reassembly, raise no length complaints, and neither the columns
    nor ``pkt.src``/``dst``/ports/``scratch`` -- what sessions and the outer
    dissectors read -- change.  What the quote said is kept instead in
    ``pkt.scratch["icmp.quoted"]``: a dict with ``net_src``, ``net_dst``,
    ``srcport``, ``dstport`` and, for UDP, ``udp.stream``.
    """
    saved: list[Any] = [getattr(pkt, a) for a in _SAVED]
    sc = pkt.scratch
    before = dict(sc)
    sc.pop("udp.stream", None)
    sc[IN_ERROR] = True
    pkt.srcport = pkt.dstport = 0
    try:
        pkt.cap.call(name, pkt, buf, off, end, src)
    finally:
        quoted = {"net_src": pkt.net_src, "net_dst": pkt.net_dst, "srcport": pkt.srcport,
                  "dstport": pkt.dstport}
        if "udp.stream" in sc:
            quoted["udp.stream"] = sc["udp.stream"]
        sc.clear()
        sc.update(before)
        sc[QUOTED] = quoted
        for a, v in zip(_SAVED, saved, strict=True):
            setattr(pkt, a, v)


def bits(raw: int, mask: int, nbits: int) -> str:
    """Wireshark's bitfield picture: ``bits(0x45, 0xf0, 8)`` -> ``'0100 ....'``."""
    out = []
    for i in range(nbits - 1, -1, -1):
        b = 1 << i
        out.append(("1" if raw & b else "0") if mask & b else ".")
        if i and i % 4 == 0:
            out.append(" ")
    return "".join(out)


def flag_label(raw: int, mask: int, nbits: int, name: str, on: bool | None = None) -> str:
    """``.1.. .... = Don't fragment: Set`` for a one-bit flag."""
    v = bool(raw & mask) if on is None else on
    return f"{bits(raw, mask, nbits)} = {name}: {'Set' if v else 'Not set'}"


def want_group(pkt: Packet, key: str, fds: tuple[FieldDef, ...]) -> bool:
    """Like :func:`wants` for a named group of fields (cached per engine under ``key``).

    ``-e ip.src`` should not make the IPv4 dissector record its twenty other
    header fields: hot dissectors split their fields into groups and fill
    only the groups somebody asked for.
    """
    if pkt.tree:
        return True
    st = pkt.cap.state
    v = st.get(key)
    if v is None:
        v = st[key] = any(fd.primed for fd in fds)
    return v


def plan(pkt: Packet, key: str, groups: tuple[tuple[FieldDef, ...], ...]) -> tuple[bool, ...]:
    """One cached lookup answering :func:`want_group` for several groups at once.

    The answer depends only on the engine (its ``tree`` setting and the
    fields primed before the capture was opened), so it is computed on the
    first packet and reused: per packet, a hot dissector pays one dict
    lookup instead of one call per group.
    """
    st = pkt.cap.state
    v = st.get(key)
    if v is None:
        tree = pkt.tree
        v = st[key] = tuple(tree or any(fd.primed for fd in g) for g in groups)
    return v


class FragmentFields:
    """The fragment_items of one protocol: which fields show a reassembled datagram."""

    __slots__ = ("fragments", "fragment", "overlap", "conflict", "multiple_tails", "too_long", "error",
                 "count", "length", "data", "label")

    def __init__(self, fragments: FieldDef, fragment: FieldDef, overlap: FieldDef, conflict: FieldDef,
                 multiple_tails: FieldDef, too_long: FieldDef, error: FieldDef, count: FieldDef,
                 length: FieldDef, data: FieldDef, label: str) -> None:
        self.fragments, self.fragment, self.overlap, self.conflict = fragments, fragment, overlap, conflict
        self.multiple_tails, self.too_long, self.error = multiple_tails, too_long, error
        self.count, self.length, self.data, self.label = count, length, data, label


def show_fragments(pkt: Packet, parent: Any, frags: Any, data: bytes, ff: FragmentFields) -> None:
    """Wireshark's show_fragment_tree: the list of fragments of a completed datagram.

    Each fragment is a ``*.fragment`` (or, when its data conflicted, ran past
    the end or was a second tail, a ``*.fragment.error``) with its overlap
    flags as children; then the count, length and reassembled bytes.
    """
    tree = pkt.tree
    label = None
    if tree:
        label = (f"[{len(frags)} {ff.label} Fragments ({len(data)} bytes): "
                 + ", ".join(f"#{f.frame}({f.length})" for f in frags) + "]")
    value = data if ff.fragments.ftype.name == "BYTES" else None
    fn = parent.add(ff.fragments, value, 0, len(data), label=label, generated=True)
    for f in frags:
        fl = None
        if tree:
            fl = f"[Frame: {f.frame}, payload: {f.offset}-{f.offset + f.length - 1} ({f.length} bytes)]"
        item = fn.add(ff.error if f.error else ff.fragment, f.frame, 0, 0, label=fl, generated=True)
        iss = f.issues
        if iss:
            if iss & Issue.OVERLAP:
                item.add(ff.overlap, True, 0, 0, generated=True)
            if iss & Issue.CONFLICT:
                item.add(ff.conflict, True, 0, 0, generated=True)
            if iss & Issue.MULTIPLE_TAILS:
                item.add(ff.multiple_tails, True, 0, 0, generated=True)
            if iss & Issue.TOO_LONG:
                item.add(ff.too_long, True, 0, 0, generated=True)
    fn.add(ff.count, len(frags), 0, 0, generated=True)
    fn.add(ff.length, len(data), 0, 0, generated=True)
    if tree or ff.data.primed:
        fn.add(ff.data, data, 0, len(data), generated=True)


def fragment_experts(pkt: Packet, lay: Any, res: Any, at: int, rfc: str) -> None:
    """Expert notes for one arriving fragment (flags go on the completed datagram, as in tshark)."""
    iss = res.issues
    if not iss and not res.expired_fragments:
        return
    if iss & Issue.CONFLICT:
        pkt.expert(lay, Severity.WARN, Group.REASSEMBLE,
                   f"{rfc}: fragment overlaps frame(s) {', '.join(map(str, res.conflict_frames))} "
                   "with different data (the first copy is kept)", at)
    elif iss & Issue.OVERLAP:
        pkt.expert(lay, Severity.NOTE, Group.REASSEMBLE,
                   f"Fragment overlaps frame(s) {', '.join(map(str, res.overlap_frames))} with the same data",
                   at)
    if iss & Issue.MULTIPLE_TAILS:
        pkt.expert(lay, Severity.WARN, Group.REASSEMBLE, "Multiple tail fragments found", at)
    if iss & Issue.TOO_LONG:
        pkt.expert(lay, Severity.WARN, Group.REASSEMBLE, "Fragment extends past the end of the datagram", at)
    if res.expired_fragments:
        pkt.expert(lay, Severity.NOTE, Group.REASSEMBLE,
                   f"{res.expired_fragments} earlier fragment(s) of this datagram timed out and were dropped", at)


MAX_ECHO_PENDING = 65536  # unanswered echo requests remembered per capture, per protocol


def match_echo(pkt: Packet, lay: Any, state_key: str, resp_to: Any, resptime: Any,
               is_request: bool, ident: int, seq: int, want: bool) -> str:
    """Pair echo requests and replies on (addresses, identifier, sequence) as Wireshark does.

    Shared by ICMP and ICMPv6 (each with its own state key and fields); returns the Info suffix.
    """
    st = pkt.cap.state
    table = st.get(state_key)
    if table is None:
        table = st[state_key] = {}
    if is_request:
        if len(table) >= MAX_ECHO_PENDING:
            table.pop(next(iter(table)))
        table[(pkt.net_src, pkt.net_dst, ident, seq)] = (pkt.number, pkt.ts_ns)
        return ""
    req = table.get((pkt.net_dst, pkt.net_src, ident, seq))
    if req is None:
        return ""
    frame, ts = req
    if want:
        lay.add(resp_to, frame, 0, 0, generated=True)
        lay.add(resptime, (pkt.ts_ns - ts) / 1e6, 0, 0, generated=True)
    return f" (request in {frame})"
