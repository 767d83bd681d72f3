"""6LoWPAN (RFC 4944, RFC 6282): mesh, broadcast and fragmentation headers, HC1/HC2, IPHC and NHC.

The output of this layer is an ordinary IPv6 packet -- a new data source "Decompressed 6LoWPAN
IPHC" (one frame) or "Reassembled 6LoWPAN" (FRAG1 + FRAGNs) -- handed to the ``ipv6`` dissector,
so everything above (UDP, CoAP, DTLS, MLE, the join-proxy framings) is dissected exactly as it
would be on Ethernet.

Decompression needs state from outside the frame: the link-layer addresses (IIDs elided with
SAM/DAM=11 come from the 802.15.4 source/destination or the mesh header, RFC 6282 §3.2.2) and the
context table for stateful compression (SAC/DAC=1). Contexts come from ``-o 6lowpan.contextN``
(Wireshark's preference names) or are learned from Thread: the mesh-local prefix (context 0) from an
MLE Active Operational Dataset, other contexts from Network Data 6LoWPAN ID sub-TLVs (mle.py calls
:func:`learn_context`).

Fragments (RFC 4944 §5.3) are reassembled per (link source, link destination, datagram size,
datagram tag). Offsets count bytes of the *uncompressed* datagram, so FRAG1 contributes its
decompressed headers plus payload, FRAGNs their raw payload. The frame that completes a datagram
carries ``6lowpan.fragment`` (one entry per frame), ``6lowpan.fragment.count`` and
``6lowpan.reassembled.length``: the radio-frame cost of each datagram the overhead analysis needs.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any

from jpdissect.dissectors.registry import REGISTRY, dissector, heuristic
from jpdissect.model import (
    FT,
    Base,
    F,
    Group,
    Layer,
    Node,
    Packet,
    Pref,
    Protocol,
    Severity,
    declare_prefs,
)
from jpdissect.reassembly import Issue, ReassemblyTable, Status, table_in

# ---------------------------------------------------------------------------
# Limits and constants

#: RFC 4944 §5.3: datagram_size is 11 bits.
MAX_DATAGRAM_SIZE = 2047
#: RFC 4944 §5.3: a reassembly not completed within 60 seconds is discarded.
FRAG_TIMEOUT_NS = 60 * 1_000_000_000
#: Datagrams being reassembled at once; the oldest is dropped beyond this (a flood of FRAG1s).
MAX_PENDING_DATAGRAMS = 1024
#: Fragments kept per datagram: 2047 bytes in 8-byte units bounds a sane sender well below this.
MAX_FRAGMENTS_PER_DATAGRAM = 256
#: Nested NHC extension headers / IP-in-IP we follow before calling the packet malformed.
MAX_NHC_DEPTH = 8
#: Context identifiers are 4 bits (RFC 6282 §3.1.2).
NUM_CONTEXTS = 16
IPV6_HDR_LEN = 40
UDP_HDR_LEN = 8

# Dispatch values (RFC 4944 §5.1, RFC 6282 §3.1, §4.1)
D_IPV6 = 0x41
D_HC1 = 0x42
D_BC0 = 0x50
D_ESC = 0x7F

IP_PROTO_HOPOPTS, IP_PROTO_ROUTING, IP_PROTO_FRAGMENT, IP_PROTO_DSTOPTS = 0, 43, 44, 60
IP_PROTO_MOBILITY, IP_PROTO_IPV6, IP_PROTO_UDP, IP_PROTO_NONE = 135, 41, 17, 59
NHC_EID_PROTO = {0: IP_PROTO_HOPOPTS, 1: IP_PROTO_ROUTING, 2: IP_PROTO_FRAGMENT, 3: IP_PROTO_DSTOPTS,
                 4: IP_PROTO_MOBILITY, 7: IP_PROTO_IPV6}
NHC_EID_NAMES = {0: "IPv6 Hop-by-Hop Options", 1: "IPv6 Routing", 2: "IPv6 Fragment",
                 3: "IPv6 Destination Options", 4: "IPv6 Mobility Header", 7: "IPv6 Header"}

LINK_LOCAL_PREFIX = bytes.fromhex("fe80") + bytes(14)

TF_NAMES = {0: "Traffic class and flow label inline", 1: "ECN and flow label inline",
            2: "Traffic class inline", 3: "Version, traffic class, and flow label compressed"}
HLIM_NAMES = {0: "Inline", 1: "1", 2: "64", 3: "255"}
SAM_NAMES = {0: "Inline", 1: "64-bits inline", 2: "16-bits inline", 3: "Compressed"}
MCAST_NAMES = {0: "Inline", 1: "48-bits inline", 2: "32-bits inline", 3: "8-bits inline"}
PORT_NAMES = {0: "Inline", 1: "Destination port 8-bits inline", 2: "Source port 8-bits inline",
              3: "12 bits of both ports elided"}

# ---------------------------------------------------------------------------
# Declarations

P = Protocol("6lowpan", "IPv6 over Low power Wireless Personal Area Networks", "6LoWPAN")
_H = Base.HEX
F6 = P.declare(
    F("6lowpan.pattern", "Pattern", FT.UINT8, "Dispatch pattern bits", base=_H),
    F("6lowpan.nhc.pattern", "Pattern", FT.UINT8, "NHC ID pattern bits", base=_H),
    F("6lowpan.padding", "Padding", FT.UINT8, base=_H),
    F("6lowpan.hc1.encoding", "HC1 Encoding", FT.UINT8, base=_H),
    F("6lowpan.hc1.src_prefix", "Source prefix", FT.BOOLEAN, "Source prefix compressed (link-local)"),
    F("6lowpan.hc1.src_ifc", "Source interface", FT.BOOLEAN, "Source IID elided (from the link layer)"),
    F("6lowpan.hc1.dst_prefix", "Destination prefix", FT.BOOLEAN),
    F("6lowpan.hc1.dst_ifc", "Destination interface", FT.BOOLEAN),
    F("6lowpan.hc1.class", "Traffic class and flow label", FT.BOOLEAN, "Both zero and elided"),
    F("6lowpan.hc1.next", "Next header", FT.UINT8, base=_H, strings={0: "Inline", 1: "UDP", 2: "ICMP", 3: "TCP"}),
    F("6lowpan.hc1.more", "More HC bits", FT.BOOLEAN),
    F("6lowpan.hc2.udp.encoding", "HC_UDP Encoding", FT.UINT8, base=_H),
    F("6lowpan.hc2.udp.src", "Source port", FT.BOOLEAN, "Compressed to 4 bits"),
    F("6lowpan.hc2.udp.dst", "Destination port", FT.BOOLEAN, "Compressed to 4 bits"),
    F("6lowpan.hc2.udp.length", "Length", FT.BOOLEAN, "Elided"),
    F("6lowpan.iphc.tf", "Traffic class and flow label", FT.UINT16, base=_H, strings=TF_NAMES),
    F("6lowpan.iphc.nh", "Next header", FT.BOOLEAN),
    F("6lowpan.iphc.hlim", "Hop limit", FT.UINT16, base=_H, strings=HLIM_NAMES),
    F("6lowpan.iphc.cid", "Context identifier extension", FT.BOOLEAN),
    F("6lowpan.iphc.sac", "Source address compression", FT.BOOLEAN),
    F("6lowpan.iphc.sam", "Source address mode", FT.UINT16, base=_H),
    F("6lowpan.iphc.m", "Multicast address compression", FT.BOOLEAN),
    F("6lowpan.iphc.dac", "Destination address compression", FT.BOOLEAN),
    F("6lowpan.iphc.dam", "Destination address mode", FT.UINT16, base=_H),
    F("6lowpan.iphc.sci", "Source context identifier", FT.UINT8, base=_H),
    F("6lowpan.iphc.dci", "Destination context identifier", FT.UINT8, base=_H),
    F("6lowpan.iphc.sctx.prefix", "Source context", FT.IPv6),
    F("6lowpan.iphc.sctx.origin", "Origin", FT.FRAMENUM),
    F("6lowpan.iphc.dctx.prefix", "Destination context", FT.IPv6),
    F("6lowpan.iphc.dctx.origin", "Origin", FT.FRAMENUM),
    F("6lowpan.nhc.ext.eid", "Header ID", FT.UINT8, base=_H, strings=NHC_EID_NAMES),
    F("6lowpan.nhc.ext.nh", "Next header", FT.BOOLEAN),
    F("6lowpan.nhc.ext.next", "Next header", FT.UINT8, base=_H),
    F("6lowpan.nhc.ext.length", "Header length", FT.UINT8),
    F("6lowpan.nhc.ext.reserved", "Reserved octet", FT.UINT8, base=_H),
    F("6lowpan.nhc.udp.checksum", "Checksum", FT.BOOLEAN, "Checksum elided"),
    F("6lowpan.nhc.udp.ports", "Ports", FT.UINT8, strings=PORT_NAMES),
    F("6lowpan.class", "Traffic class", FT.UINT8, base=_H),
    F("6lowpan.flow", "Flow label", FT.UINT24, base=_H),
    F("6lowpan.ecn", "ECN", FT.UINT8),
    F("6lowpan.dscp", "DSCP", FT.UINT8),
    F("6lowpan.next", "Next header", FT.UINT8, base=_H),
    F("6lowpan.hops", "Hop limit", FT.UINT8),
    F("6lowpan.src", "Source", FT.IPv6),
    F("6lowpan.dst", "Destination", FT.IPv6),
    F("6lowpan.udp.src", "Source port", FT.UINT16),
    F("6lowpan.udp.dst", "Destination port", FT.UINT16),
    F("6lowpan.udp.length", "UDP length", FT.UINT16),
    F("6lowpan.udp.checksum", "UDP checksum", FT.UINT16, base=_H),
    F("6lowpan.bcast.seqnum", "Sequence number", FT.UINT8),
    F("6lowpan.mesh.v", "V", FT.BOOLEAN, "Originator address is 16-bit"),
    F("6lowpan.mesh.f", "D", FT.BOOLEAN, "Final destination address is 16-bit"),
    F("6lowpan.mesh.hops", "Hops left", FT.UINT8),
    F("6lowpan.mesh.hops8", "Deep Hops left (Flags.Hops left == 15)", FT.UINT8),
    F("6lowpan.mesh.orig16", "Originator", FT.UINT16, base=_H),
    F("6lowpan.mesh.orig64", "Originator", FT.UINT64, base=_H),
    F("6lowpan.mesh.dest16", "Destination", FT.UINT16, base=_H),
    F("6lowpan.mesh.dest64", "Destination", FT.UINT64, base=_H),
    F("6lowpan.frag.size", "Datagram size", FT.UINT16),
    F("6lowpan.frag.tag", "Datagram tag", FT.UINT16, base=_H),
    F("6lowpan.frag.offset", "Datagram offset", FT.UINT8, "Offset in bytes (the header's value times 8)"),
    F("6lowpan.fragments", "Message fragments", FT.NONE),
    F("6lowpan.fragment", "Message fragment", FT.FRAMENUM),
    F("6lowpan.fragment.overlap", "Message fragment overlap", FT.BOOLEAN),
    F("6lowpan.fragment.overlap.conflicts", "Message fragment overlapping with conflicting data", FT.BOOLEAN),
    F("6lowpan.fragment.multiple_tails", "Message has multiple tail fragments", FT.BOOLEAN),
    F("6lowpan.fragment.too_long_fragment", "Message fragment too long", FT.BOOLEAN),
    F("6lowpan.fragment.error", "Message defragmentation error", FT.FRAMENUM),
    F("6lowpan.fragment.count", "Message fragment count", FT.UINT32),
    F("6lowpan.reassembled.in", "Reassembled in", FT.FRAMENUM),
    F("6lowpan.reassembled.length", "Reassembled 6LoWPAN length", FT.UINT32),
    F("6lowpan.reassembled.psdu_bytes", "Radio bytes", FT.UINT32,
      "Sum of the IEEE 802.15.4 frame lengths (PSDU with FCS) of all fragments of this datagram",
      unit="bytes"),
)

F6_CLASS = getattr(F6, "class")  # "class" is a keyword, so no attribute access


class _PrefixPref(Pref):
    """``fd00::/64`` (or empty): checked when ``-o`` is parsed, not when the first frame needs it."""

    def parse(self, text: str) -> Any:
        t = text.strip()
        if not t:
            return ""
        try:
            net = ipaddress.IPv6Network(t if "/" in t else t + "/64", strict=False)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv6 prefix like fd00:db8::/64") from exc
        return str(net)


declare_prefs(
    *[_PrefixPref(f"6lowpan.context{i}", str, "", "IPv6 prefix to use for stateful address decompression"
                  + (" (Thread: the mesh-local prefix)" if i == 0 else "")) for i in range(NUM_CONTEXTS)],
    _PrefixPref("sixlowpan.context0", str, "", "Alias of 6lowpan.context0"),
    Pref("6lowpan.rfc4944_short_address_format", bool, False,
         "Derive IID from a short 16-bit address according to RFC 4944 (using the PAN ID)"),
    Pref("6lowpan.learn_contexts", bool, True,
         "Learn contexts from Thread MLE (mesh-local prefix, Network Data 6LoWPAN ID)"),
)

# ---------------------------------------------------------------------------
# Context table


@dataclass(slots=True)
class Context:
    prefix: bytes  # 16 bytes, bits beyond plen zero
    plen: int
    frame: int = 0  # 0 = from a preference


_LINK_LOCAL_CTX = Context(LINK_LOCAL_PREFIX, 64)
_NO_CTX = Context(bytes(16), 0)


def _pref_contexts(cap: Any) -> dict[int, Context]:
    cached = cap.state.get("6lowpan.pref_contexts")
    if cached is not None:
        return cached
    out: dict[int, Context] = {}
    for i in range(NUM_CONTEXTS):
        v = cap.pref(f"6lowpan.context{i}")
        if not v and i == 0:
            v = cap.pref("sixlowpan.context0")
        if v:
            net = ipaddress.IPv6Network(v, strict=False)
            out[i] = Context(net.network_address.packed, net.prefixlen)
    cap.state["6lowpan.pref_contexts"] = out
    return out


def learn_context(cap: Any, cid: int, prefix: bytes, plen: int, frame: int) -> None:
    """Record context ``cid`` as learned from the traffic (Thread Network Data / mesh-local prefix).

    A context given with ``-o`` wins: the user knows better than a guess from the capture.
    """
    if not cap.pref("6lowpan.learn_contexts") or not 0 <= cid < NUM_CONTEXTS or not 0 < plen <= 128:
        return
    full = bytes(prefix[:16]).ljust(16, b"\x00")
    full = _mask(full, plen)
    table: dict[int, Context] = cap.state.setdefault("6lowpan.contexts", {})
    old = table.get(cid)
    if old is not None and old.prefix == full and old.plen == plen:
        return
    table[cid] = Context(full, plen, frame)


def find_context(cap: Any, cid: int) -> Context | None:
    pc = _pref_contexts(cap)
    if cid in pc:
        return pc[cid]
    learned = cap.state.get("6lowpan.contexts")
    if learned:
        return learned.get(cid)
    return None


def _mask(addr: bytes, plen: int) -> bytes:
    n = int.from_bytes(addr, "big")
    mask = ((1 << plen) - 1) << (128 - plen) if plen else 0
    return (n & mask).to_bytes(16, "big")


def _overlay(addr: bytes, ctx: Context) -> bytes:
    """RFC 6282 §3.1.1: the first ``plen`` bits come from the context, the rest from the IID."""
    if not ctx.plen:
        return addr
    plen = min(ctx.plen, 128)
    n = int.from_bytes(addr, "big")
    mask = ((1 << plen) - 1) << (128 - plen)
    return ((n & ~mask) | (int.from_bytes(ctx.prefix, "big") & mask)).to_bytes(16, "big")


# ---------------------------------------------------------------------------
# Link-layer IIDs


def iid_from_link(link: bytes | None, pan: int | None, rfc4944: bool) -> bytes | None:
    """RFC 6282 §3.2.2 / RFC 4944 §6: EUI-64 with the U/L bit flipped, or 0000:00ff:fe00:XXXX."""
    if link is None:
        return None
    if len(link) == 8:
        return bytes([link[0] ^ 0x02]) + bytes(link[1:])
    if len(link) == 6:  # an EUI-48 (6LoWPAN over Ethernet/BLE): RFC 2464 §4
        return bytes([link[0] ^ 0x02]) + bytes(link[1:3]) + b"\xff\xfe" + bytes(link[3:])
    if len(link) == 2:
        if rfc4944 and pan is not None:
            return bytes([(pan >> 8) & 0xFD, pan & 0xFF]) + b"\x00\xff\xfe\x00" + link
        return b"\x00\x00\x00\xff\xfe\x00" + link
    return None


@dataclass(slots=True)
class _Link:
    """Where elided IIDs come from: the MAC addresses, replaced by a mesh header's."""

    src: bytes | None
    dst: bytes | None
    pan: int | None
    rfc4944: bool = False

    def siid(self) -> bytes | None:
        return iid_from_link(self.src, self.pan, self.rfc4944)

    def diid(self) -> bytes | None:
        return iid_from_link(self.dst, self.pan, self.rfc4944)


# ---------------------------------------------------------------------------
# Entry points


@heuristic("wpan", "6lowpan_wpan", "6lowpan")
def heur_6lowpan(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """802.15.4 data payloads: anything whose first byte is a 6LoWPAN dispatch (RFC 4944 §5.1)."""
    if end <= off:
        return False
    d = buf[off]
    if d & 0xC0 == 0x00:
        return False  # NALP: not a LoWPAN frame
    if d & 0xC0 == 0x40 and d not in (D_IPV6, D_HC1, D_BC0) and d & 0xE0 != 0x60:
        return False  # reserved dispatch values
    if d & 0xF0 == 0xF0:
        return False  # RFC 8025 pages: not decoded
    if d & 0xC0 == 0xC0 and d & 0xD8 != 0xC0:  # 11000xxx FRAG1, 11100xxx FRAGN; the rest reserved
        return False
    return dissect_6lowpan(pkt, buf, off, end, src)


@dissector("6lowpan", "6LoWPAN: IPHC/NHC decompression and FRAG1/FRAGN reassembly into IPv6")
def dissect_6lowpan(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P, off, end - off, src)
    cap = pkt.cap
    w = pkt.scratch.get("wpan")
    link = _Link(
        w.dl_src() if w is not None else pkt.dl_src,
        w.dl_dst() if w is not None else pkt.dl_dst,
        w.src_pan if w is not None else None,
        bool(cap.pref("6lowpan.rfc4944_short_address_format")),
    )
    p = off
    if p >= end:
        pkt.malformed(lay, "RFC 4944 §5.1: empty 6LoWPAN payload", p)
        return True
    # Mesh header (RFC 4944 §5.2): 10 V F HopsLeft, [deep hops], originator, final destination
    if buf[p] & 0xC0 == 0x80:
        q = _mesh(pkt, lay, buf, p, end, link)
        if q is None:
            return True
        p = q
    # Broadcast header (RFC 4944 §11.1): LOWPAN_BC0 + sequence number
    if p < end and buf[p] == D_BC0:
        if p + 2 > end:
            pkt.malformed(lay, "RFC 4944 §11.1: LOWPAN_BC0 without its sequence number", p)
            return True
        b = lay.add_text("Broadcast Header", p, 2)
        b.add(F6.pattern, D_BC0, p, 1)
        b.add(F6.bcast_seqnum, buf[p + 1], p + 1, 1)
        p += 2
    if p >= end:
        pkt.malformed(lay, "RFC 4944 §5: 6LoWPAN headers without a payload", p)
        return True
    d = buf[p]
    if d & 0xF8 == 0xC0:
        return _frag1(pkt, lay, buf, p, end, src, link)
    if d & 0xF8 == 0xE0:
        return _fragn(pkt, lay, buf, p, end, src, link)
    res = _headers(pkt, lay, buf, p, end, src, link, None)
    if res is None:
        return True
    data, dsrc, doff, dend = res
    _set_summary(pkt, lay)
    return _call_ipv6(pkt, data, doff, dend, dsrc)


def _call_ipv6(pkt: Packet, data: bytes, off: int, end: int, src: int) -> bool:
    return pkt.cap.call("ipv6", pkt, data, off, end, src)


def _set_summary(pkt: Packet, lay: Layer) -> None:
    if pkt.tree:
        s = pkt.scratch.get("6lowpan.src")
        d = pkt.scratch.get("6lowpan.dst")
        if s is not None and d is not None:
            lay.label = (f"6LoWPAN, Src: {ipaddress.IPv6Address(s)}, Dest: {ipaddress.IPv6Address(d)}")


# ---------------------------------------------------------------------------
# Mesh header


def _mesh(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, link: _Link) -> int | None:
    h = buf[p]
    v, f, hops = bool(h & 0x20), bool(h & 0x10), h & 0x0F
    need = 1 + (1 if hops == 0xF else 0) + (2 if v else 8) + (2 if f else 8)
    if p + need > end:
        pkt.malformed(lay, "RFC 4944 §5.2: mesh header runs past the frame", p)
        return None
    m = lay.add_text("Mesh Header", p, need)
    m.add(F6.pattern, 0x02, p, 1)
    m.add(F6.mesh_v, v, p, 1)
    m.add(F6.mesh_f, f, p, 1)
    m.add(F6.mesh_hops, hops, p, 1)
    q = p + 1
    if hops == 0xF:
        m.add(F6.mesh_hops8, buf[q], q, 1)
        q += 1
    if v:
        a = buf[q : q + 2]
        m.add(F6.mesh_orig16, int.from_bytes(a, "big"), q, 2)
        q += 2
    else:
        a = buf[q : q + 8]
        m.add(F6.mesh_orig64, int.from_bytes(a, "big"), q, 8)
        q += 8
    link.src = bytes(a)
    if f:
        a = buf[q : q + 2]
        m.add(F6.mesh_dest16, int.from_bytes(a, "big"), q, 2)
        q += 2
    else:
        a = buf[q : q + 8]
        m.add(F6.mesh_dest64, int.from_bytes(a, "big"), q, 8)
        q += 8
    link.dst = bytes(a)
    return q


# ---------------------------------------------------------------------------
# Headers after the fragmentation header: uncompressed IPv6, HC1, IPHC


def _headers(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, src: int, link: _Link,
             dgram_size: int | None) -> tuple[bytes, int, int, int] | None:
    """Dissect the dispatch at ``p``; return (buffer, its source, start and end of the IPv6 bytes).

    With ``dgram_size`` (FRAG1) lengths in the rebuilt header come from the datagram size and the
    bytes returned are only this fragment's share of the datagram.
    """
    d = buf[p]
    if d == D_IPV6:
        lay.add(F6.pattern, D_IPV6, p, 1, label="Pattern: Uncompressed IPv6 (0x41)" if pkt.tree else None)
        if end - (p + 1) < IPV6_HDR_LEN:
            pkt.malformed(lay, "RFC 4944 §5.1: uncompressed IPv6 shorter than an IPv6 header", p + 1)
            pkt.cap.call_data(pkt, buf, p + 1, end, src)
            return None
        return buf, src, p + 1, end
    if d & 0xE0 == 0x60:
        data = _iphc(pkt, lay, buf, p, end, link, dgram_size)
        if data is None:
            return None
        return data, pkt.add_source("Decompressed 6LoWPAN IPHC", data), 0, len(data)
    if d == D_HC1:
        data = _hc1(pkt, lay, buf, p, end, link, dgram_size)
        if data is None:
            return None
        return data, pkt.add_source("Decompressed 6LoWPAN HC1", data), 0, len(data)
    pkt.expert(lay, Severity.WARN, Group.UNDECODED, f"Unknown 6LoWPAN dispatch 0x{d:02x}", p, 1)
    pkt.cap.call_data(pkt, buf, p, end, src)
    return None


# ---------------------------------------------------------------------------
# HC1 / HC2 (RFC 4944 §10; deprecated by RFC 6282 but still decodable)

HC1_NEXT = {0: "Inline", 1: "UDP", 2: "ICMP", 3: "TCP"}
HC1_NEXT_PROTO = {1: IP_PROTO_UDP, 2: 58, 3: 6}


class _Bits:
    """Big-endian bit reader: HC1/HC2 inline fields need not fall on byte boundaries."""

    def __init__(self, buf: bytes, byte_off: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, byte_off * 8, end * 8

    def take(self, n: int) -> int | None:
        if self.pos + n > self.end:
            return None
        v = 0
        for _ in range(n):
            v = v << 1 | (self.buf[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
            self.pos += 1
        return v

    def byte_pos(self) -> int:
        return (self.pos + 7) >> 3


def _hc1(pkt: Packet, lay: Node, buf: bytes, p: int, end: int, link: _Link,
         dgram_size: int | None) -> bytes | None:
    """RFC 4944 §10.1: HC1 encoding byte, optional HC2 UDP byte, then inline fields in order:
    hop limit, source prefix/IID, destination prefix/IID, traffic class + flow label, next header;
    HC2 (§10.3): source port, destination port (4 bits each when compressed: 0xF0B0 + n),
    length, checksum."""
    if p + 2 > end:
        pkt.malformed(lay, "RFC 4944 §10.1: HC1 encoding byte missing", p)
        return None
    h = lay.add_text("HC1 Encoding", p, 2)
    h.add(F6.pattern, D_HC1, p, 1)
    enc = buf[p + 1]
    e = h.add(F6.hc1_encoding, enc, p + 1, 1)
    for fd, bit in ((F6.hc1_src_prefix, 0x80), (F6.hc1_src_ifc, 0x40), (F6.hc1_dst_prefix, 0x20),
                    (F6.hc1_dst_ifc, 0x10), (F6.hc1_class, 0x08)):
        e.add(fd, bool(enc & bit), p + 1, 1)
    nxt = (enc >> 1) & 3
    e.add(F6.hc1_next, nxt, p + 1, 1)
    e.add(F6.hc1_more, bool(enc & 1), p + 1, 1)
    q = p + 2
    hc2 = 0
    if enc & 1:
        if nxt != 1:
            pkt.expert(h, Severity.WARN, Group.MALFORMED, "HC1 more bits expected for illegal next header type.", p + 1, 1)
            return None
        if q >= end:
            pkt.malformed(lay, "RFC 4944 §10.3.2: HC2 encoding byte missing", q)
            return None
        hc2 = buf[q]
        u = lay.add(F6.hc2_udp_encoding, hc2, q, 1)
        u.add(F6.hc2_udp_src, bool(hc2 & 0x80), q, 1)
        u.add(F6.hc2_udp_dst, bool(hc2 & 0x40), q, 1)
        u.add(F6.hc2_udp_length, bool(hc2 & 0x20), q, 1)
        q += 1
    r = _Bits(buf, q, end)

    def need(v: int | None, what: str) -> int:
        if v is None:
            raise _Short(what)
        return v

    try:
        hlim = need(r.take(8), "hop limit")
        lay.add(F6.hops, hlim, r.pos // 8 - 1, 1)
        addrs = []
        for pfx_bit, iid_bit, iid in ((0x80, 0x40, link.siid()), (0x20, 0x10, link.diid())):
            a = bytearray(16)
            at = r.pos // 8
            if enc & pfx_bit:
                a[:8] = LINK_LOCAL_PREFIX[:8]
            else:
                for i in range(8):
                    a[i] = need(r.take(8), "address prefix")
            if enc & iid_bit:
                a[8:] = iid if iid is not None else bytes(8)
            else:
                for i in range(8, 16):
                    a[i] = need(r.take(8), "interface identifier")
            addrs.append(bytes(a))
            lay.add(F6.src if len(addrs) == 1 else F6.dst, bytes(a), at, r.byte_pos() - at)
        tc = flow = 0
        if not enc & 0x08:
            tc = need(r.take(8), "traffic class")
            flow = need(r.take(20), "flow label")
            lay.add(F6_CLASS, tc, r.pos // 8 - 3, 1)
            lay.add(F6.flow, flow, r.pos // 8 - 3, 3)
        if nxt == 0:
            next_hdr = need(r.take(8), "next header")
            lay.add(F6.next, next_hdr, r.pos // 8 - 1, 1)
        else:
            next_hdr = HC1_NEXT_PROTO[nxt]
        udp: bytes = b""
        if enc & 1:
            sport = need(r.take(4), "source port") + 0xF0B0 if hc2 & 0x80 else need(r.take(16), "source port")
            dport = need(r.take(4), "destination port") + 0xF0B0 if hc2 & 0x40 else need(r.take(16), "destination port")
            lay.add(F6.udp_src, sport, q, 0)
            lay.add(F6.udp_dst, dport, q, 0)
            ulen = None
            if not hc2 & 0x20:
                ulen = need(r.take(16), "UDP length")
                lay.add(F6.udp_length, ulen, r.pos // 8 - 2, 2)
            cks = need(r.take(16), "UDP checksum")
            lay.add(F6.udp_checksum, cks, r.pos // 8 - 2, 2)
            udp = struct.pack("!HHHH", sport, dport, ulen or 0, cks)
    except _Short as exc:
        pkt.malformed(lay, f"RFC 4944 §10.1: HC1 {exc} runs past the frame", q)
        return None
    rest = bytes(buf[r.byte_pos() : end])
    plen = (dgram_size - IPV6_HDR_LEN) if dgram_size is not None else len(udp) + len(rest)
    if udp and hc2 & 0x20:  # HC2 elided the UDP length: it is the whole IPv6 payload
        udp = udp[:4] + struct.pack("!H", plen) + udp[6:]
    hdr = struct.pack("!IHBB", 6 << 28 | tc << 20 | flow, max(0, min(plen, 0xFFFF)), next_hdr, hlim)
    pkt.scratch["6lowpan.src"], pkt.scratch["6lowpan.dst"] = addrs[0], addrs[1]
    return hdr + addrs[0] + addrs[1] + udp + rest


class _Short(Exception):
    """An HC1 inline field is cut short (caught in _hc1, never escapes)."""


# ---------------------------------------------------------------------------
# IPHC (RFC 6282 §3)


@dataclass(slots=True)
class _Chunk:
    """One rebuilt header: IPv6 and UDP lengths depend on everything after them."""

    kind: str  # "ipv6" | "ext" | "udp"
    data: bytearray = field(default_factory=bytearray)
    udp_elided_cksum: bool = False


def _iphc(pkt: Packet, lay: Node, buf: bytes, p: int, end: int, link: _Link,
          dgram_size: int | None, depth: int = 0) -> bytes | None:
    """Decompress IPHC + NHC at ``p``; return the IPv6 packet (or the FRAG1 share of it)."""
    chunks: list[_Chunk] = []
    q = _iphc_hdr(pkt, lay, buf, p, end, link, chunks, depth)
    if q is None:
        return None
    payload = bytes(buf[q:end])
    hdr_len = sum(len(c.data) for c in chunks)
    if dgram_size is not None:
        total_after = dgram_size - hdr_len  # payload bytes of the whole datagram
        if total_after < len(payload):
            pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                       f"RFC 4944 §5.3: datagram_size {dgram_size} is smaller than the decompressed first fragment",
                       p)
            total_after = len(payload)
    else:
        total_after = len(payload)
    after = total_after
    for c in reversed(chunks):
        if c.kind == "ipv6":
            struct.pack_into("!H", c.data, 4, min(after, 0xFFFF))
        elif c.kind == "udp":
            struct.pack_into("!H", c.data, 4, min(after + UDP_HDR_LEN, 0xFFFF))
        after += len(c.data)
    out = bytearray().join(c.data for c in chunks) + payload
    # RFC 6282 §4.3.2: an elided UDP checksum is recomputed by the decompressor, which needs the
    # whole datagram -- done here when unfragmented, after reassembly otherwise.
    if dgram_size is None:
        _fix_elided_checksums(out, chunks)
    else:
        pkt.scratch["6lowpan.elided_udp"] = _elided_udp_offsets(chunks)
    return bytes(out)


def _elided_udp_offsets(chunks: list[_Chunk]) -> list[tuple[int, int]]:
    """(offset of the enclosing IPv6 header, offset of the UDP header) for elided checksums."""
    out = []
    pos = 0
    ip_at = 0
    for c in chunks:
        if c.kind == "ipv6":
            ip_at = pos
        elif c.kind == "udp" and c.udp_elided_cksum:
            out.append((ip_at, pos))
        pos += len(c.data)
    return out


def _fix_elided_checksums(out: bytearray, chunks: list[_Chunk]) -> None:
    for ip_at, udp_at in _elided_udp_offsets(chunks):
        patch_udp_checksum(out, ip_at, udp_at)


def patch_udp_checksum(out: bytearray, ip_at: int, udp_at: int) -> None:
    """Compute the UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1) and store it."""
    if udp_at + UDP_HDR_LEN > len(out) or ip_at + IPV6_HDR_LEN > len(out):
        return
    ulen = struct.unpack_from("!H", out, udp_at + 4)[0]
    seg = bytes(out[udp_at : udp_at + ulen])
    if len(seg) < ulen:
        return
    seg = seg[:6] + b"\x00\x00" + seg[8:]
    pseudo = bytes(out[ip_at + 8 : ip_at + 40]) + ulen.to_bytes(4, "big") + b"\x00\x00\x00" + bytes([IP_PROTO_UDP])
    c = _ones_sum(pseudo + seg)
    c = (~c) & 0xFFFF
    struct.pack_into("!H", out, udp_at + 6, c or 0xFFFF)


def _ones_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _need(pkt: Packet, lay: Node, buf: bytes, q: int, n: int, end: int, what: str) -> bool:
    if q + n > end:
        pkt.malformed(lay, f"RFC 6282 §3.1: IPHC {what} runs past the frame", q)
        return False
    return True


def _iphc_hdr(pkt: Packet, lay: Node, buf: bytes, p: int, end: int, link: _Link,
              chunks: list[_Chunk], depth: int) -> int | None:
    """Parse one IPHC header (+ its NHC chain) into ``chunks``; return the payload offset."""
    if not _need(pkt, lay, buf, p, 2, end, "encoding"):
        return None
    tree = pkt.tree
    cap = pkt.cap
    w = buf[p] << 8 | buf[p + 1]
    tf = (w >> 11) & 3
    nh = bool(w & 0x0400)
    hlim = (w >> 8) & 3
    cid = bool(w & 0x80)
    sac = bool(w & 0x40)
    sam = (w >> 4) & 3
    m = bool(w & 0x08)
    dac = bool(w & 0x04)
    dam = w & 3
    h = lay.add_text("IPHC Header", p, 2)
    h.add(F6.pattern, 0x03, p, 1)
    h.add(F6.iphc_tf, tf, p, 2)
    h.add(F6.iphc_nh, nh, p, 2)
    h.add(F6.iphc_hlim, hlim, p, 2)
    h.add(F6.iphc_cid, cid, p, 2)
    h.add(F6.iphc_sac, sac, p, 2)
    h.add(F6.iphc_sam, sam, p, 2, label=(f"Source address mode: {'Stateful' if sac else 'Stateless'} "
                                          f"{SAM_NAMES[sam]} (0x{sam:04x})") if tree else None)
    h.add(F6.iphc_m, m, p, 2)
    h.add(F6.iphc_dac, dac, p, 2)
    h.add(F6.iphc_dam, dam, p, 2, label=(f"Destination address mode: {(MCAST_NAMES if m else SAM_NAMES)[dam]} "
                                          f"(0x{dam:04x})") if tree else None)
    q = p + 2
    sci = dci = 0
    if cid:
        if not _need(pkt, lay, buf, q, 1, end, "context identifier extension"):
            return None
        sci, dci = buf[q] >> 4, buf[q] & 0xF
        h.add(F6.iphc_sci, sci, q, 1)
        h.add(F6.iphc_dci, dci, q, 1)
        q += 1

    # Traffic class and flow label (RFC 6282 §3.1.1, TF): ECN first, then DSCP, then pad + label.
    ecn = dscp = flow = 0
    tf_len = (4, 3, 1, 0)[tf]
    if not _need(pkt, lay, buf, q, tf_len, end, "traffic class/flow label"):
        return None
    if tf == 0:
        ecn, dscp = buf[q] >> 6, buf[q] & 0x3F
        flow = int.from_bytes(buf[q + 1 : q + 4], "big") & 0xFFFFF
    elif tf == 1:
        ecn = buf[q] >> 6
        flow = int.from_bytes(buf[q : q + 3], "big") & 0xFFFFF
    elif tf == 2:
        ecn, dscp = buf[q] >> 6, buf[q] & 0x3F
    if tf != 3:
        lay.add(F6.ecn, ecn, q, 1)
    if tf in (0, 2):
        lay.add(F6.dscp, dscp, q, 1)
    if dscp or ecn:
        lay.add(F6_CLASS, dscp << 2 | ecn, q, 0, generated=True)
    if tf in (0, 1):
        # The 20-bit flow label is right-aligned: 4 (TF=00) or 2 (TF=01) pad bits precede it.
        pad = (buf[q + 1] >> 4) if tf == 0 else (buf[q] >> 4) & 3
        lay.add(F6.padding, pad, q + (1 if tf == 0 else 0), 1)
        lay.add(F6.flow, flow, q + (1 if tf == 0 else 0), 3)
    q += tf_len
    tclass = dscp << 2 | ecn

    next_hdr = 0
    if not nh:
        if not _need(pkt, lay, buf, q, 1, end, "next header"):
            return None
        next_hdr = buf[q]
        lay.add(F6.next, next_hdr, q, 1)
        q += 1
    if hlim == 0:
        if not _need(pkt, lay, buf, q, 1, end, "hop limit"):
            return None
        hop_limit = buf[q]
        lay.add(F6.hops, hop_limit, q, 1)
        q += 1
    else:
        hop_limit = (0, 1, 64, 255)[hlim]

    # Source address (RFC 6282 §3.1.1 SAC/SAM)
    sctx = _LINK_LOCAL_CTX if not sac else (find_context(cap, sci) or _NO_CTX)
    if sac and sam != 0 and find_context(cap, sci) is None:
        _note_unknown_context(pkt, h, sci, p)
    ln = (16, 8, 2, 0)[sam] if not (sac and sam == 0) else 0
    if not _need(pkt, lay, buf, q, ln, end, "source address"):
        return None
    addr = bytearray(16)
    if sac and sam == 0:
        sctx = _NO_CTX  # the unspecified address ::
    elif sam == 3:
        iid = link.siid()
        if iid is None:
            pkt.expert(h, Severity.WARN, Group.UNDECODED,
                       "RFC 6282 §3.2.2: source IID elided but no link-layer source address", p)
            iid = bytes(8)
        addr[8:] = iid
    elif sam == 0:
        if not sac:
            sctx = _NO_CTX
        addr[:] = buf[q : q + 16]
    elif sam == 1:
        addr[8:] = buf[q : q + 8]
    else:
        addr[11:13] = b"\xff\xfe"
        addr[14:] = buf[q : q + 2]
    src_addr = _overlay(bytes(addr), sctx)
    lay.add(F6.src, src_addr, q, ln, generated=ln == 0)
    if sctx.plen:
        h.add(F6.iphc_sctx_prefix, sctx.prefix, p, 0, generated=True)
        if sctx.frame:
            h.add(F6.iphc_sctx_origin, sctx.frame, p, 0, generated=True)
    q += ln

    # Destination address (RFC 6282 §3.1.1 M/DAC/DAM)
    dctx = _LINK_LOCAL_CTX if not dac else (find_context(cap, dci) or _NO_CTX)
    addr = bytearray(16)
    if m and not dac:
        ln = (16, 6, 4, 1)[dam]
        if not _need(pkt, lay, buf, q, ln, end, "multicast destination"):
            return None
        if dam == 0:
            addr[:] = buf[q : q + 16]
        elif dam == 1:  # ffXX::00XX:XXXX:XXXX
            addr[0], addr[1] = 0xFF, buf[q]
            addr[11:16] = buf[q + 1 : q + 6]
        elif dam == 2:  # ffXX::00XX:XXXX
            addr[0], addr[1] = 0xFF, buf[q]
            addr[13:16] = buf[q + 1 : q + 4]
        else:  # ff02::00XX
            addr[0], addr[1], addr[15] = 0xFF, 0x02, buf[q]
        dst_addr = bytes(addr)
    elif m and dac:
        if dam != 0:
            pkt.malformed(h, f"RFC 6282 §3.1.1: M=1 DAC=1 DAM={dam} is reserved", p + 1)
            return None
        ln = 6
        if not _need(pkt, lay, buf, q, ln, end, "multicast destination"):
            return None
        if find_context(cap, dci) is None:
            _note_unknown_context(pkt, h, dci, p)
        # RFC 3306 unicast-prefix-based: ffXX:XXLL:PPPP:PPPP:PPPP:PPPP:XXXX:XXXX
        addr[0], addr[1], addr[2] = 0xFF, buf[q], buf[q + 1]
        addr[3] = min(dctx.plen, 64)
        addr[4:12] = dctx.prefix[:8]
        addr[12:16] = buf[q + 2 : q + 6]
        dst_addr = bytes(addr)
    else:
        if dac and dam == 0:
            pkt.malformed(h, "RFC 6282 §3.1.1: DAC=1 DAM=00 is reserved", p + 1)
            return None
        if dac and find_context(cap, dci) is None:
            _note_unknown_context(pkt, h, dci, p)
        ln = (16, 8, 2, 0)[dam]
        if not _need(pkt, lay, buf, q, ln, end, "destination address"):
            return None
        if dam == 3:
            iid = link.diid()
            if iid is None:
                pkt.expert(h, Severity.WARN, Group.UNDECODED,
                           "RFC 6282 §3.2.2: destination IID elided but no link-layer destination address", p)
                iid = bytes(8)
            addr[8:] = iid
        elif dam == 0:
            dctx = _NO_CTX
            addr[:] = buf[q : q + 16]
        elif dam == 1:
            addr[8:] = buf[q : q + 8]
        else:
            addr[11:13] = b"\xff\xfe"
            addr[14:] = buf[q : q + 2]
        dst_addr = _overlay(bytes(addr), dctx)
    lay.add(F6.dst, dst_addr, q, ln, generated=ln == 0)
    if dctx.plen:
        h.add(F6.iphc_dctx_prefix, dctx.prefix, p, 0, generated=True)
        if dctx.frame:
            h.add(F6.iphc_dctx_origin, dctx.frame, p, 0, generated=True)
    q += ln
    if depth == 0:
        pkt.scratch["6lowpan.src"] = src_addr
        pkt.scratch["6lowpan.dst"] = dst_addr

    ip = _Chunk("ipv6", bytearray(IPV6_HDR_LEN))
    struct.pack_into("!I", ip.data, 0, 6 << 28 | tclass << 20 | flow)
    ip.data[7] = hop_limit
    ip.data[8:24] = src_addr
    ip.data[24:40] = dst_addr
    chunks.append(ip)
    if not nh:
        ip.data[6] = next_hdr
        return q
    # Inner IIDs for IP-in-IP come from this header's addresses (RFC 6282 §4.2).
    inner = _Link(None, None, link.pan)
    inner_siid, inner_diid = src_addr[8:], dst_addr[8:]
    return _nhc(pkt, lay, buf, q, end, link, chunks, ip, depth, (inner, inner_siid, inner_diid))


def _note_unknown_context(pkt: Packet, where: Node, cid: int, p: int) -> None:
    """One note per frame and context: the prefix bits are taken as zero, like Wireshark does."""
    noted: set[int] = pkt.scratch.setdefault("6lowpan.ctx_noted", set())
    if cid in noted:
        return
    noted.add(cid)
    pkt.expert(where, Severity.NOTE, Group.ASSUMPTION,
               f"RFC 6282 §3.1.1: 6LoWPAN context {cid} unknown, its prefix is taken as :: "
               f"(set -o 6lowpan.context{cid}:PREFIX)", p)


def _nhc_proto(buf: bytes, q: int, end: int) -> int | None:
    """The IPv6 Next Header value an NHC encoding stands for (RFC 6282 §4.1)."""
    if q >= end:
        return None
    b = buf[q]
    if b & 0xF8 == 0xF0:
        return IP_PROTO_UDP
    if b & 0xF0 == 0xE0:
        return NHC_EID_PROTO.get((b >> 1) & 7)
    return None


def _nhc(pkt: Packet, lay: Node, buf: bytes, q: int, end: int, link: _Link, chunks: list[_Chunk],
         prev: _Chunk, depth: int, inner: tuple[_Link, bytes, bytes]) -> int | None:
    """Follow the NHC chain (RFC 6282 §4); ``prev`` gets its Next Header filled in."""
    hops = 0
    while True:
        hops += 1
        if hops + depth > MAX_NHC_DEPTH:
            pkt.malformed(lay, f"RFC 6282 §4: more than {MAX_NHC_DEPTH} NHC headers", q)
            return None
        proto = _nhc_proto(buf, q, end)
        if proto is None:
            if q >= end:
                pkt.malformed(lay, "RFC 6282 §4.1: next header compressed but no NHC follows", q)
            else:
                pkt.expert(lay, Severity.WARN, Group.UNDECODED, f"Unknown NHC encoding 0x{buf[q]:02x}", q, 1)
            return None
        _set_next(prev, proto)
        b = buf[q]
        if proto == IP_PROTO_UDP:
            return _nhc_udp(pkt, lay, buf, q, end, chunks)
        eid = (b >> 1) & 7
        nhflag = bool(b & 1)
        n = lay.add_text("IPv6 extension header", q, 1)
        n.add(F6.nhc_pattern, 0x0E, q, 1)
        n.add(F6.nhc_ext_eid, eid, q, 1)
        n.add(F6.nhc_ext_nh, nhflag, q, 1)
        q += 1
        if eid == 7:
            # IPv6-in-IPv6: an IPHC header follows (NH bit must be 0).
            ilink, siid, diid = inner
            ilink.src = bytes([siid[0] ^ 0x02]) + siid[1:]
            ilink.dst = bytes([diid[0] ^ 0x02]) + diid[1:]
            return _iphc_hdr(pkt, n, buf, q, end, ilink, chunks, depth + hops)
        nxt = 0
        if not nhflag:
            if not _need(pkt, lay, buf, q, 1, end, "extension next header"):
                return None
            nxt = buf[q]
            n.add(F6.nhc_ext_next, nxt, q, 1)
            q += 1
        if proto == IP_PROTO_FRAGMENT:
            # The fragment header keeps its reserved byte where the length would be; 8 bytes total.
            if not _need(pkt, lay, buf, q, 7, end, "fragment header"):
                return None
            n.add(F6.nhc_ext_reserved, buf[q], q, 1)
            body = bytes(buf[q + 1 : q + 7])
            ext = bytearray([nxt, buf[q]]) + body
            q += 7
        else:
            if not _need(pkt, lay, buf, q, 1, end, "extension length"):
                return None
            elen = buf[q]
            n.add(F6.nhc_ext_length, elen, q, 1)
            q += 1
            if not _need(pkt, lay, buf, q, elen, end, "extension header"):
                return None
            total = (2 + elen + 7) & ~7
            ext = bytearray([nxt, total // 8 - 1]) + buf[q : q + elen]
            pad = total - len(ext)
            if pad:
                if proto not in (IP_PROTO_HOPOPTS, IP_PROTO_DSTOPTS):
                    pkt.expert(n, Severity.WARN, Group.MALFORMED, "Extension header not 8-octet aligned", q - 1, 1)
                # RFC 6282 §4.2: the decompressor restores Pad1/PadN options.
                ext += b"\x00" if pad == 1 else bytes([1, pad - 2]) + bytes(pad - 2)
            q += elen
        c = _Chunk("ext", ext)
        chunks.append(c)
        if not nhflag:
            return q
        prev = c


def _set_next(prev: _Chunk, proto: int) -> None:
    if prev.kind == "ipv6":
        prev.data[6] = proto
    else:
        prev.data[0] = proto


def _nhc_udp(pkt: Packet, lay: Node, buf: bytes, q: int, end: int, chunks: list[_Chunk]) -> int | None:
    """UDP NHC (RFC 6282 §4.3.3): 11110CPP, ports per PP, checksum unless C."""
    b = buf[q]
    celided = bool(b & 0x04)
    pp = b & 3
    n = lay.add_text("UDP header compression", q, 1)
    n.add(F6.nhc_pattern, 0x1E, q, 1)
    n.add(F6.nhc_udp_checksum, celided, q, 1)
    n.add(F6.nhc_udp_ports, pp, q, 1)
    q += 1
    plen = (4, 3, 3, 1)[pp]
    if not _need(pkt, lay, buf, q, plen + (0 if celided else 2), end, "UDP ports/checksum"):
        return None
    if pp == 0:
        sport, dport = struct.unpack_from("!HH", buf, q)
        lay.add(F6.udp_src, sport, q, 2)
        lay.add(F6.udp_dst, dport, q + 2, 2)
    elif pp == 1:
        sport, dport = struct.unpack_from("!H", buf, q)[0], 0xF000 + buf[q + 2]
        lay.add(F6.udp_src, sport, q, 2)
        lay.add(F6.udp_dst, dport, q + 2, 1)
    elif pp == 2:
        sport, dport = 0xF000 + buf[q], struct.unpack_from("!H", buf, q + 1)[0]
        lay.add(F6.udp_src, sport, q, 1)
        lay.add(F6.udp_dst, dport, q + 1, 2)
    else:
        sport, dport = 0xF0B0 + (buf[q] >> 4), 0xF0B0 + (buf[q] & 0xF)
        lay.add(F6.udp_src, sport, q, 1)
        lay.add(F6.udp_dst, dport, q, 1)
    q += plen
    cks = 0
    if not celided:
        cks = struct.unpack_from("!H", buf, q)[0]
        lay.add(F6.udp_checksum, cks, q, 2)
        q += 2
    c = _Chunk("udp", bytearray(struct.pack("!HHHH", sport, dport, 0, cks)), celided)
    chunks.append(c)
    return q


# ---------------------------------------------------------------------------
# Fragmentation (RFC 4944 §5.3)


def _frag_hdr(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, first: bool) -> tuple[int, int, int, Node] | None:
    hl = 4 if first else 5
    if p + hl > end:
        pkt.malformed(lay, f"RFC 4944 §5.3: {'FRAG1' if first else 'FRAGN'} header needs {hl} bytes", p)
        return None
    size = (buf[p] << 8 | buf[p + 1]) & 0x7FF
    tag = buf[p + 2] << 8 | buf[p + 3]
    n = lay.add_text("Fragmentation Header", p, hl)
    n.add(F6.pattern, 0x18 if first else 0x1C, p, 1)
    n.add(F6.frag_size, size, p, 2)
    n.add(F6.frag_tag, tag, p + 2, 2)
    off = 0
    if not first:
        off = buf[p + 4] * 8
        n.add(F6.frag_offset, off, p + 4, 1)
    return size, tag, off, n


def _frag1(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, src: int, link: _Link) -> bool:
    hdr = _frag_hdr(pkt, lay, buf, p, end, True)
    if hdr is None:
        return True
    size, tag, _, n = hdr
    q = p + 4
    if q >= end:
        pkt.malformed(lay, "RFC 4944 §5.3: FRAG1 without payload", q)
        return True
    if size < IPV6_HDR_LEN:
        pkt.expert(n, Severity.WARN, Group.MALFORMED, f"Length is less than IPv6 header length {IPV6_HDR_LEN}", p, 2)
    # RFC 4944 §5.3: with a mesh header, "sender" and "destination" are the mesh originator and
    # final destination, which _mesh() has already put into ``link``.
    key_link = (link.src, link.dst)
    res = _headers(pkt, lay, buf, q, end, src, link, size)
    if res is None:
        return True
    data, dsrc, doff, dend = res
    # This fragment's share of the datagram: the decompressed headers + payload (IPHC), or the
    # bytes as sent (uncompressed IPv6 dispatch).
    share = bytes(data[doff:dend])
    _set_summary(pkt, lay)
    elided = pkt.scratch.pop("6lowpan.elided_udp", [])
    return _reassemble(pkt, lay, key_link, size, tag, 0, share, (data, dsrc, doff, dend), elided)


def _fragn(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, src: int, link: _Link) -> bool:
    hdr = _frag_hdr(pkt, lay, buf, p, end, False)
    if hdr is None:
        return True
    size, tag, off, _ = hdr
    q = p + 5
    return _reassemble(pkt, lay, (link.src, link.dst), size, tag, off, bytes(buf[q:end]), (buf, src, q, end), None)


# --- Reassembly ------------------------------------------------------------------------------


def _table(pkt: Packet) -> ReassemblyTable:
    return table_in(pkt.cap.state, "6lowpan.reasm", max_size=MAX_DATAGRAM_SIZE,
                    max_pending=MAX_PENDING_DATAGRAMS, timeout_ns=FRAG_TIMEOUT_NS,
                    max_fragments=MAX_FRAGMENTS_PER_DATAGRAM)


def _reassemble(pkt: Packet, lay: Layer, key_link: tuple[bytes | None, bytes | None], size: int, tag: int,
                off: int, data: bytes, show: tuple[bytes, int, int, int],
                elided: list[tuple[int, int]] | None) -> bool:
    """Add one fragment; dissect the datagram if it is now complete, else show the fragment as data.

    ``show`` is (buffer, source, start, end) of what to display as data while incomplete;
    ``elided`` (FRAG1 only) lists UDP headers whose checksum must be recomputed once complete.
    """
    key = ("6lowpan", key_link[0], key_link[1], size, tag)
    # Remember each fragment frame's radio length so the completing frame can report the total.
    flen: dict[int, int] = pkt.cap.state.setdefault("6lowpan.frag_frame_len", {})
    flen[pkt.number] = pkt.wirelen
    res = _table(pkt).add(key, pkt.number, off, data, total=size, ts_ns=pkt.ts_ns,
                          meta=tuple(elided) if elided is not None else None)
    iss = res.issues
    # Wireshark reports a datagram's fragment problems with the reassembled datagram; the frame
    # where one happens gets an expert entry now, the flags come with the completing frame.
    acc_all: dict[Any, list[Any]] = pkt.cap.state.setdefault("6lowpan.frag_issues", {})
    acc = acc_all.setdefault(key, [Issue.NONE, set()])
    if len(acc_all) > MAX_PENDING_DATAGRAMS * 2:
        acc_all.pop(next(iter(acc_all)))
    acc[0] |= iss
    if res.expired_fragments:
        pkt.expert(lay, Severity.WARN, Group.REASSEMBLE,
                   f"RFC 4944 §5.3: reassembly of datagram tag 0x{tag:04x} timed out (60 s); "
                   f"{res.expired_fragments} earlier fragment(s) were discarded")
    if iss & Issue.CONFLICT:
        acc[1].add(pkt.number)
        pkt.expert(lay, Severity.ERROR, Group.MALFORMED,
                   "RFC 4944 §5.3: fragment overlaps frame(s) "
                   f"{', '.join(map(str, res.conflict_frames))} with conflicting data; the first copy is kept")
    elif iss & Issue.OVERLAP:
        pkt.expert(lay, Severity.NOTE, Group.REASSEMBLE,
                   f"Fragment overlaps frame(s) {', '.join(map(str, res.overlap_frames))} with the same data "
                   "(a retransmission?)")
    if iss & Issue.TOO_LONG:
        pkt.expert(lay, Severity.ERROR, Group.MALFORMED,
                   f"RFC 4944 §5.3: fragment at offset {off} with {len(data)} bytes runs past datagram_size {size}")
    if iss & (Issue.TOO_LARGE | Issue.TOO_MANY) or res.status is Status.ERROR:
        lay.add(F6.fragment_error, pkt.number, 0, 0, generated=True)
        pkt.expert(lay, Severity.ERROR, Group.REASSEMBLE,
                   f"Reassembly of datagram tag 0x{tag:04x} abandoned (too large or too many fragments)")
    if res.status is Status.DONE and res.reassembled_in is not None:
        lay.add(F6.reassembled_in, res.reassembled_in, 0, 0, generated=True)
    if res.status is not Status.COMPLETE or res.data is None:
        sbuf, ssrc, soff, send = show
        pkt.cap.call_data(pkt, sbuf, soff, send, ssrc)
        return True
    out = bytearray(res.data)
    for ip_at, udp_at in res.meta or ():  # type: ignore[union-attr]
        patch_udp_checksum(out, ip_at, udp_at)
    flags, conflicted = acc_all.pop(key, [Issue.NONE, set()])
    # Like Wireshark, a fragment whose bytes conflicted is not part of the datagram (the first copy
    # won); it is named as the defragmentation error instead.
    frags = sorted((f for f in res.fragments if f.frame not in conflicted), key=lambda f: f.offset)
    fl = lay.add(F6.fragments, None, 0, 0)
    if flags & Issue.OVERLAP:
        fl.add(F6.fragment_overlap, True, 0, 0, generated=True)
    if flags & Issue.CONFLICT:
        fl.add(F6.fragment_overlap_conflicts, True, 0, 0, generated=True)
    if flags & Issue.MULTIPLE_TAILS:
        fl.add(F6.fragment_multiple_tails, True, 0, 0, generated=True)
    if flags & Issue.TOO_LONG:
        fl.add(F6.fragment_too_long_fragment, True, 0, 0, generated=True)
    for fr in sorted(conflicted):
        fl.add(F6.fragment_error, fr, 0, 0, generated=True)
    if pkt.tree and fl is not lay:
        fl.label = (f"{len(frags)} Message fragments ({size} bytes): "
                    + ", ".join(f"#{f.frame}({f.length})" for f in frags))
    for f in frags:
        fl.add(F6.fragment, f.frame, 0, 0, label=(f"Frame: {f.frame}, payload: {f.offset}-{f.offset + f.length - 1} "
                                                 f"({f.length} bytes)") if pkt.tree else None)
    fl.add(F6.fragment_count, len(res.fragments), 0, 0, generated=True)  # every frame on air, as Wireshark
    fl.add(F6.reassembled_length, size, 0, 0, generated=True)
    radio = sum(flen.pop(f.frame, 0) for f in {f.frame: f for f in res.fragments}.values())
    fl.add(F6.reassembled_psdu_bytes, radio, 0, 0, generated=True)
    if len(flen) > MAX_PENDING_DATAGRAMS * 8:  # fragments of datagrams that never completed
        for k in sorted(flen)[: len(flen) // 2]:
            del flen[k]
    data_out = bytes(out)
    rsrc = pkt.add_source("Reassembled 6LoWPAN", data_out)
    return _call_ipv6(pkt, data_out, 0, size, rsrc)


REGISTRY.add("ethertype", 0xA0ED, "6lowpan")
