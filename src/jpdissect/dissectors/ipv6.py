"""IPv6 (RFC 8200): header, extension headers, fragment reassembly, ``ip.proto`` dispatch.

Extension headers are separate protocols, as in Wireshark 4.0
(``ipv6.hopopts``, ``ipv6.routing``, ``ipv6.fraghdr``, ``ipv6.dstopts`` in
``frame.protocols``).  Fragments (RFC 8200 §4.5) are reassembled with the
shared :mod:`jpdissect.reassembly` table keyed on (source, destination,
Identification); the fragmentable part of the datagram -- starting with the
header named by the offset-0 fragment's Next Header -- is dissected from a
new data source, "Reassembled IPv6".

6LoWPAN and other callers that rebuild an IPv6 header call this dissector
by name ("ipv6") on their own buffer.
"""

from __future__ import annotations

import struct

from jpdissect.dissectors._netcommon import (
    IN_ERROR,
    IP_PROTO_NAMES,
    FragmentFields,
    bits,
    fragment_experts,
    ip_str,
    plan,
    show_fragments,
    want_group,
    wants,
)
from jpdissect.dissectors.eth import _reported_end
from jpdissect.dissectors.ipv4 import DSCP_NAMES, DSCP_SHORT, ECN_NAMES, ECN_SHORT, FI
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Group, Layer, Node, Packet, Pref, Protocol, Severity, declare_prefs
from jpdissect.reassembly import ReassemblyTable, Status, table_in

IPV6_HEADER = 40
IPV6_MAX_DATAGRAM = 65535   # RFC 8200 §4.5: jumbograms cannot be fragmented
MAX_EXT_HEADERS = 32        # a longer chain of extension headers is reported, not followed
JUMBO_MIN = 65536           # RFC 2675 §2: a Jumbo Payload Length is > 65535
REASM_STATE = "ipv6.reasm"

NH_HOPOPTS, NH_ROUTING, NH_FRAGMENT, NH_NONE, NH_DSTOPTS = 0, 43, 44, 59, 60
EXT_HEADERS = frozenset({NH_HOPOPTS, NH_ROUTING, NH_FRAGMENT, NH_DSTOPTS})

OPT_PAD1, OPT_PADN, OPT_JUMBO, OPT_RA, OPT_TEL = 0x00, 0x01, 0xC2, 0x05, 0x04
OPT_NAMES = {0x00: "Pad1", 0x01: "PadN", 0xC2: "Jumbo Payload", 0x05: "Router Alert",
             0x04: "Tunnel Encapsulation Limit", 0x63: "RPL Option", 0x6D: "MPL Option",
             0xC9: "Home Address", 0x26: "Quick-Start", 0x07: "CALIPSO", 0x08: "SMF_DPD",
             0x0F: "Performance and Diagnostic Metrics", 0x8A: "Endpoint Identification",
             0x1E: "Experimental (0x1E)", 0x3E: "Experimental (0x3E)"}
OPT_ACTIONS = {0: "Skip and continue", 1: "Discard and silently ignore", 2: "Discard and send ICMP",
               3: "Discard and send ICMP if not multicast"}
RA_NAMES = {0: "MLD", 1: "RSVP", 2: "Active Networks"}
ROUTING_TYPES = {0: "Source Route", 1: "Nimrod", 2: "Type 2 Routing", 3: "RPL Source Route",
                 4: "Segment Routing", 5: "CRH-16", 6: "CRH-32"}

P_IPV6 = Protocol("ipv6", "Internet Protocol Version 6", "IPv6")
FI6 = P_IPV6.declare(
    F("ipv6.version", "Version", FT.UINT8),
    # No bitmasks on the hex fields: tshark -T fields prints them with the
    # width of the field type (0x00000000, 0x0d896f).
    F("ipv6.tclass", "Traffic Class", FT.UINT32, base=Base.HEX),
    F("ipv6.tclass.dscp", "Differentiated Services Codepoint", FT.UINT32, strings=DSCP_NAMES),
    F("ipv6.tclass.ecn", "Explicit Congestion Notification", FT.UINT32, strings=ECN_NAMES),
    F("ipv6.flow", "Flow Label", FT.UINT24, base=Base.HEX),
    F("ipv6.plen", "Payload Length", FT.UINT16),
    F("ipv6.nxt", "Next Header", FT.UINT8, strings=IP_PROTO_NAMES),
    F("ipv6.hlim", "Hop Limit", FT.UINT8),
    F("ipv6.src", "Source Address", FT.IPv6),
    F("ipv6.addr", "Source or Destination Address", FT.IPv6),
    F("ipv6.src_host", "Source Host", FT.STRING),
    F("ipv6.host", "Source or Destination Host", FT.STRING),
    F("ipv6.dst", "Destination Address", FT.IPv6),
    F("ipv6.dst_host", "Destination Host", FT.STRING),
    # Options of the hop-by-hop and destination options headers (RFC 8200 §4.2).
    F("ipv6.opt", "IPv6 Option", FT.NONE),
    F("ipv6.opt.type", "Type", FT.UINT8, base=Base.HEX, strings=OPT_NAMES),
    F("ipv6.opt.type.action", "Action", FT.UINT8, strings=OPT_ACTIONS),
    F("ipv6.opt.type.change", "May Change", FT.BOOLEAN),
    F("ipv6.opt.type.rest", "Low-Order Bits", FT.UINT8, base=Base.HEX),
    F("ipv6.opt.length", "Length", FT.UINT8),
    F("ipv6.opt.pad1", "Pad1", FT.NONE),
    F("ipv6.opt.padn", "PadN", FT.BYTES),
    F("ipv6.opt.router_alert", "Router Alert", FT.UINT16, strings=RA_NAMES),
    F("ipv6.opt.tel", "Tunnel Encapsulation Limit", FT.UINT8),
    F("ipv6.opt.jumbo", "Payload Length", FT.UINT32),
    F("ipv6.opt.unknown", "Unknown Option Payload", FT.BYTES),
    F("ipv6.opt.invalid_len", "Invalid IPv6 option length", FT.NONE),
    F("ipv6.opt.jumbo.missing", "IPv6 payload length equals 0 and Hop-By-Hop present and Jumbo Payload "
      "option missing", FT.NONE),
    # Reassembly.
    F("ipv6.fragments", "IPv6 Fragments", FT.NONE),
    F("ipv6.fragment", "IPv6 Fragment", FT.FRAMENUM),
    F("ipv6.fragment.overlap", "Fragment overlap", FT.BOOLEAN),
    F("ipv6.fragment.overlap.conflict", "Conflicting data in fragment overlap", FT.BOOLEAN),
    F("ipv6.fragment.multipletails", "Multiple tail fragments found", FT.BOOLEAN),
    F("ipv6.fragment.toolongfragment", "Fragment too long", FT.BOOLEAN),
    F("ipv6.fragment.error", "Defragmentation error", FT.FRAMENUM),
    F("ipv6.fragment.count", "Fragment count", FT.UINT32),
    F("ipv6.reassembled.in", "Reassembled IPv6 in frame", FT.FRAMENUM),
    F("ipv6.reassembled.length", "Reassembled IPv6 length", FT.UINT32),
    F("ipv6.reassembled.data", "Reassembled IPv6 data", FT.BYTES),
    # Expert markers.
    F("ipv6.plen_exceeds_framing", "IPv6 payload length does not match expected framing length", FT.NONE),
    F("ipv6.plen_zero", "IPv6 payload length equals 0", FT.NONE),
    F("ipv6.bogus_ipv6_version", "Bogus IP version", FT.NONE),
)

P_HOP = Protocol("ipv6.hopopts", "IPv6 Hop-by-Hop Option", "IPv6")
FH = P_HOP.declare(
    F("ipv6.hopopts.nxt", "Next Header", FT.UINT8, strings=IP_PROTO_NAMES),
    F("ipv6.hopopts.len", "Length", FT.UINT8, "In units of 8 octets, not counting the first 8"),
    F("ipv6.hopopts.len_oct", "Length", FT.UINT16, unit="bytes"),
)
P_DST = Protocol("ipv6.dstopts", "Destination Options for IPv6", "IPv6")
FD6 = P_DST.declare(
    F("ipv6.dstopts.nxt", "Next Header", FT.UINT8, strings=IP_PROTO_NAMES),
    F("ipv6.dstopts.len", "Length", FT.UINT8, "In units of 8 octets, not counting the first 8"),
    F("ipv6.dstopts.len_oct", "Length", FT.UINT16, unit="bytes"),
)
P_RT = Protocol("ipv6.routing", "Routing Header for IPv6", "IPv6")
FR = P_RT.declare(
    F("ipv6.routing.nxt", "Next Header", FT.UINT8, strings=IP_PROTO_NAMES),
    F("ipv6.routing.len", "Length", FT.UINT8),
    F("ipv6.routing.len_oct", "Length", FT.UINT16, unit="bytes"),
    F("ipv6.routing.type", "Type", FT.UINT8, strings=ROUTING_TYPES),
    F("ipv6.routing.segleft", "Segments Left", FT.UINT8),
    F("ipv6.routing.src.reserved", "Reserved", FT.BYTES),
    F("ipv6.routing.src.addr", "Address", FT.IPv6),
    F("ipv6.routing.mipv6.reserved", "Reserved", FT.BYTES),
    F("ipv6.routing.mipv6.home_address", "Home Address", FT.IPv6),
    F("ipv6.routing.unknown_data", "Type-Specific Data", FT.BYTES),
)
P_FRAG = Protocol("ipv6.fraghdr", "Fragment Header for IPv6", "IPv6")
FF6 = P_FRAG.declare(
    F("ipv6.fraghdr.nxt", "Next header", FT.UINT8, strings=IP_PROTO_NAMES),
    F("ipv6.fraghdr.reserved_octet", "Reserved octet", FT.UINT8, base=Base.HEX),
    F("ipv6.fraghdr.offset", "Offset", FT.UINT16, "In units of 8 octets", bitmask=0xFFF8),
    F("ipv6.fraghdr.reserved_bits", "Reserved bits", FT.UINT16, bitmask=0x0006),
    F("ipv6.fraghdr.more", "More Fragments", FT.BOOLEAN, bitmask=0x0001),
    F("ipv6.fraghdr.ident", "Identification", FT.UINT32, base=Base.HEX),
)

declare_prefs(Pref("ipv6.defragment", bool, True, "Reassemble fragmented IPv6 datagrams"))

_HDR = struct.Struct("!IHBB16s16s")


def _table(pkt: Packet) -> ReassemblyTable:
    return table_in(pkt.cap.state, REASM_STATE, max_size=IPV6_MAX_DATAGRAM)


@dissector("ipv6", "Internet Protocol Version 6")
def dissect_ipv6(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    n = end - off
    lay = pkt.add_layer(P_IPV6, off, min(IPV6_HEADER, max(n, 0)), src)
    if pkt.cols:
        pkt.info = ""  # as Wireshark's col_clear
    w = pkt.cap.state.get("_plan.ipv6") or plan(pkt, "_plan.ipv6", _GROUPS)
    want = w[0]
    tree = pkt.tree
    if n < 1:
        _cut(pkt, lay, buf, off, end, src, IPV6_HEADER)
        return True
    version = buf[off] >> 4
    if version != 6:
        if want:
            lay.add(FI6.version, version, off, 1)
            lay.add(FI.version, version, off, 1)
        lay.add(FI6.bogus_ipv6_version, None, off, 1)
        pkt.expert(lay, Severity.ERROR, Group.PROTOCOL, f"Bogus IP version ({version}, must be 6)", off, 1)
        if pkt.cols:
            pkt.info = f"Bogus IPv6 version ({version}, must be 6)"
        return True
    if n < IPV6_HEADER:
        _partial(pkt, lay, buf, off, end, src, want or wants(pkt, P_IPV6))
        return True
    vtf, plen, nxt, hlim, sa, da = _HDR.unpack_from(buf, off)
    tc = (vtf >> 20) & 0xFF
    flow = vtf & 0xFFFFF
    if want:
        _fixed_fields(pkt, lay, off, vtf, tc, flow, plen, nxt, hlim)
    if w[1]:
        _addr_fields(lay, off, sa, da, w)
    if tree:
        lay.label = f"Internet Protocol Version 6, Src: {ip_str(sa)}, Dst: {ip_str(da)}"
    # Also inside an ICMPv6 error (the quoted UDP's stream key); the caller restores them.
    pkt.net_src, pkt.net_dst = sa, da
    if pkt.cols:
        pkt.src, pkt.dst = ip_str(sa), ip_str(da)
    in_error = IN_ERROR in pkt.scratch
    rep_end = _reported_end(pkt, buf, end, src)
    start = off + IPV6_HEADER
    if plen:
        if start + plen > rep_end:
            if not in_error:
                lay.add(FI6.plen_exceeds_framing, None, off + 4, 2)
                pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                           f"IPv6 payload length exceeds framing length ({rep_end - start} bytes)", off + 4, 2)
        elif start + plen < end:
            end = start + plen
    elif not in_error:
        if nxt == NH_HOPOPTS:
            # RFC 2675 §2: Payload Length 0 announces a jumbogram; its length is in the
            # hop-by-hop Jumbo Payload option, which Wireshark insists on (and > 65535).
            jumbo = _find_jumbo(buf, start, end)
            if jumbo is None:
                lay.add(FI6.opt_jumbo_missing, None, off + 4, 2)
                pkt.expert(lay, Severity.ERROR, Group.MALFORMED, "IPv6 payload length equals 0 and Hop-By-Hop "
                           "present and Jumbo Payload option missing", off + 4, 2)
                # Wireshark stops inside the hop-by-hop header, with no length to trust.
                pkt.malformed(pkt.add_layer(P_HOP, start, min(8, max(end - start, 0)), src),
                              "RFC 2675 §2: no valid Jumbo Payload option; the datagram length is unknown", start)
                return True
            end = min(end, start + jumbo)
        elif end > start:
            lay.add(FI6.plen_zero, None, off + 4, 2)
            pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                       'IPv6 payload length equals 0 (maybe because of "TCP segmentation offload" (TSO))',
                       off + 4, 2)
    full = plen == 0 or end >= start + plen
    if nxt == 58:
        pkt.scratch["ipv6.hlim"] = hlim
    return _chain(pkt, lay, buf, off, start, end, src, nxt, sa, da, plen, full, in_error)


def _find_jumbo(buf: bytes, p: int, end: int) -> int | None:
    """The Jumbo Payload Length from the hop-by-hop header at ``p`` if valid (RFC 2675 §2: > 65535)."""
    if end - p < 8:
        return None
    hend = min(end, p + (buf[p + 1] + 1) * 8)
    q = p + 2
    while q + 2 <= hend:
        t = buf[q]
        if t == OPT_PAD1:
            q += 1
            continue
        ln = buf[q + 1]
        if t == OPT_JUMBO and ln == 4 and q + 6 <= hend:
            v = int.from_bytes(buf[q + 2 : q + 6], "big")
            return v if v >= JUMBO_MIN else None
        q += 2 + ln
    return None


def _chain(pkt: Packet, lay: Layer, buf: bytes, ip_off: int, p: int, end: int, src: int, nxt: int,
           sa: bytes, da: bytes, plen: int, full: bool, in_error: bool) -> bool:
    """Walk the extension headers (RFC 8200 §4.1 order), then dispatch the upper layer."""
    first = True
    for _ in range(MAX_EXT_HEADERS):
        if nxt not in EXT_HEADERS:
            break
        if nxt == NH_FRAGMENT:
            return _fragment(pkt, lay, buf, ip_off, p, end, src, sa, da, full, in_error)
        if end - p < 2:
            _cut(pkt, lay, buf, p, end, src, 8, f"{IP_PROTO_NAMES[nxt]} header")
            return True
        hl = (buf[p + 1] + 1) * 8
        if p + hl > end:
            ext = pkt.add_layer(_EXT_PROTO[nxt], p, end - p, src)
            _cut(pkt, ext, buf, p, end, src, hl, f"{IP_PROTO_NAMES[nxt]} header")
            return True
        if nxt == NH_HOPOPTS:
            if not first:
                pkt.expert(lay, Severity.ERROR, Group.MALFORMED,
                           "RFC 8200 §4.3: Hop-by-Hop Options header must immediately follow the IPv6 header", p)
            jumbo = _options_header(pkt, buf, p, hl, src, P_HOP, FH)
            if jumbo is not None and plen:
                pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                           "RFC 2675 §3: a Jumbo Payload option must not be present when the IPv6 payload "
                           "length is not 0", p)
        elif nxt == NH_DSTOPTS:
            _options_header(pkt, buf, p, hl, src, P_DST, FD6)
        else:
            final = _routing(pkt, buf, p, hl, src)
            if final is not None and not in_error:
                # The packet's real destination (Wireshark sets the Destination column to it, and
                # the UDP/ICMPv6 pseudo-header uses it, RFC 8200 §8.1).
                da = final
                pkt.net_dst = final
                if pkt.cols:
                    pkt.dst = ip_str(final)
        nxt = buf[p]
        p += hl
        first = False
    else:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   f"More than {MAX_EXT_HEADERS} extension headers; not decoding further", p)
        pkt.cap.call_data(pkt, buf, p, end, src)
        return True
    return _upper(pkt, nxt, buf, p, end, src)


def _upper(pkt: Packet, nxt: int, buf: bytes, p: int, end: int, src: int) -> bool:
    if nxt == NH_NONE:
        if p < end:
            pkt.cap.call_data(pkt, buf, p, end, src)
        return True
    if not pkt.cap.call_table("ip.proto", nxt, pkt, buf, p, end, src):
        pkt.cap.call_data(pkt, buf, p, end, src)
        if pkt.cols:
            pkt.protocol = "IPv6"
            pkt.info = f"{IP_PROTO_NAMES.get(nxt, 'Unknown')} ({nxt})"
    return True


def _fixed_fields(pkt: Packet, lay: Layer, off: int, vtf: int, tc: int, flow: int, plen: int, nxt: int,
                  hlim: int) -> None:
    tree = pkt.tree
    add = lay.add
    add(FI6.version, 6, off, 1, label="0110 .... = Version: 6" if tree else None)
    add(FI.version, 6, off, 1)  # Wireshark adds a hidden ip.version too, so "ip.version == 6" works
    dscp, ecn = tc >> 2, tc & 3
    t = add(FI6.tclass, tc, off, 4, label=(
        f"{bits(vtf, 0x0FF00000, 32)} = Traffic Class: 0x{tc:02x} (DSCP: {DSCP_SHORT.get(dscp, 'Unknown')}, "
        f"ECN: {ECN_SHORT[ecn]})" if tree else None))
    t.add(FI6.tclass_dscp, dscp, off, 4, label=(
        f"{bits(vtf, 0x0FC00000, 32)} = Differentiated Services Codepoint: "
        f"{DSCP_NAMES.get(dscp, 'Unknown')} ({dscp})" if tree else None))
    t.add(FI6.tclass_ecn, ecn, off, 4, label=(
        f"{bits(vtf, 0x00300000, 32)} = Explicit Congestion Notification: {ECN_NAMES[ecn]} ({ecn})"
        if tree else None))
    add(FI6.flow, flow, off + 1, 3,
        label=f"{bits(vtf, 0x000FFFFF, 32)} = Flow Label: 0x{flow:05x}" if tree else None)
    add(FI6.plen, plen, off + 4, 2)
    add(FI6.nxt, nxt, off + 6, 1)
    add(FI6.hlim, hlim, off + 7, 1)


def _addr_fields(lay: Layer, off: int, sa: bytes, da: bytes, w: tuple[bool, ...]) -> None:
    """Source/destination fields, each only if wanted (w[2:] follows _G_ADDR's order)."""
    add = lay.add
    if w[2]:
        add(FI6.src, sa, off + 8, 16)
    if w[3]:
        add(FI6.addr, sa, off + 8, 16)
    if w[4] or w[5]:
        s = ip_str(sa)
        if w[4]:
            add(FI6.src_host, s, off + 8, 16)
        if w[5]:
            add(FI6.host, s, off + 8, 16)
    if w[6]:
        add(FI6.dst, da, off + 24, 16)
    if w[3]:
        add(FI6.addr, da, off + 24, 16)
    if w[7] or w[5]:
        d = ip_str(da)
        if w[7]:
            add(FI6.dst_host, d, off + 24, 16)
        if w[5]:
            add(FI6.host, d, off + 24, 16)


def _partial(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, src: int, want: bool) -> None:
    """Fewer than 40 bytes: the fields that fit, in order (as tshark shows them), then the cut."""
    n = end - off
    if want and n >= 8:
        vtf, plen, nxt, hlim, sa, _da = _HDR.unpack(bytes(buf[off:end]) + bytes(IPV6_HEADER - n))
        _fixed_fields(pkt, lay, off, vtf, (vtf >> 20) & 0xFF, vtf & 0xFFFFF, plen, nxt, hlim)
        if n >= 24:
            s = ip_str(sa)
            lay.add(FI6.src, sa, off + 8, 16)
            lay.add(FI6.addr, sa, off + 8, 16)
            lay.add(FI6.src_host, s, off + 8, 16)
            lay.add(FI6.host, s, off + 8, 16)
    elif want:
        lay.add(FI6.version, 6, off, 1)
        lay.add(FI.version, 6, off, 1)
    _cut(pkt, lay, buf, off, end, src, IPV6_HEADER)


def _cut(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, src: int, need: int,
         what: str = "IPv6 header") -> None:
    if IN_ERROR in pkt.scratch:
        return  # an ICMPv6 error quotes "as much of invoking packet as possible" (RFC 4443 §3.1)
    if off + need <= _reported_end(pkt, buf, end, src):
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   f"Packet size limited during capture: {what} cut short ({end - off} of {need} bytes captured)",
                   off)
        if pkt.cols:
            pkt.info = "[Packet size limited during capture]"
    else:
        pkt.malformed(lay, f"RFC 8200: {what} needs {need} bytes, the frame has {end - off}", off, end - off)
        if pkt.cols and what == "IPv6 header":
            pkt.info = f"Invalid IPv6 header ({end - off} bytes, need exactly {IPV6_HEADER})"


def _options_header(pkt: Packet, buf: bytes, p: int, hl: int, src: int, proto: Protocol,
                    ft: object) -> int | None:
    """Hop-by-Hop / Destination Options (RFC 8200 §4.2-4.3, §4.6); returns a Jumbo length if present."""
    ext = pkt.add_layer(proto, p, hl, src)
    want = want_group(pkt, "_g." + proto.abbrev, _G_OPT + tuple(proto.fields.values()))
    tree = pkt.tree
    if want:
        ext.add(ft.nxt, buf[p], p, 1)  # type: ignore[attr-defined]
        ext.add(ft.len, buf[p + 1], p + 1, 1)  # type: ignore[attr-defined]
        ext.add(ft.len_oct, hl, p + 1, 1, generated=True)  # type: ignore[attr-defined]
    jumbo = None
    q, hend = p + 2, p + hl
    while q < hend:
        t = buf[q]
        if t == OPT_PAD1:
            if want:
                o = ext.add(FI6.opt, None, q, 1, label="Pad1" if tree else None)
                _opt_type(pkt, o, t, q)
                o.add(FI6.opt_pad1, None, q, 1)
            q += 1
            continue
        if q + 2 > hend or q + 2 + buf[q + 1] > hend:
            ext.add(FI6.opt_invalid_len, None, q, hend - q)
            pkt.expert(ext, Severity.ERROR, Group.MALFORMED,
                       "RFC 8200 §4.2: option length runs past the end of the extension header", q, hend - q)
            break
        ln = buf[q + 1]
        v = q + 2
        if t == OPT_JUMBO and ln == 4:
            jumbo = int.from_bytes(buf[v : v + 4], "big")
        if want:
            name = OPT_NAMES.get(t, f"Unknown IPv6 Option (0x{t:02x})")
            o = ext.add(FI6.opt, None, q, 2 + ln, label=name if tree else None)
            _opt_type(pkt, o, t, q)
            o.add(FI6.opt_length, ln, q + 1, 1)
            if t == OPT_PADN:
                o.add(FI6.opt_padn, buf[v : v + ln], v, ln)
            elif t == OPT_RA and ln == 2:
                o.add(FI6.opt_router_alert, int.from_bytes(buf[v : v + 2], "big"), v, 2)
            elif t == OPT_TEL and ln == 1:
                o.add(FI6.opt_tel, buf[v], v, 1)
            elif t == OPT_JUMBO and ln == 4:
                o.add(FI6.opt_jumbo, jumbo, v, 4)
            else:
                o.add(FI6.opt_unknown, buf[v : v + ln], v, ln)
        q = v + ln
    if jumbo is not None and jumbo < JUMBO_MIN:
        pkt.expert(ext, Severity.WARN, Group.PROTOCOL,
                   f"RFC 2675 §2: Jumbo Payload Length {jumbo} is not greater than 65535", p)
    return jumbo


def _opt_type(pkt: Packet, o: Node, t: int, q: int) -> None:
    tree = pkt.tree
    tn = o.add(FI6.opt_type, t, q, 1)
    a = t >> 6
    tn.add(FI6.opt_type_action, a, q, 1,
           label=f"{bits(t, 0xC0, 8)} = Action: {OPT_ACTIONS[a]} ({a})" if tree else None)
    tn.add(FI6.opt_type_change, bool(t & 0x20), q, 1,
           label=f"{bits(t, 0x20, 8)} = May Change: {'Yes' if t & 0x20 else 'No'}" if tree else None)
    tn.add(FI6.opt_type_rest, t & 0x1F, q, 1,
           label=f"{bits(t, 0x1F, 8)} = Low-Order Bits: 0x{t & 0x1F:02x}" if tree else None)


def _routing(pkt: Packet, buf: bytes, p: int, hl: int, src: int) -> bytes | None:
    """RFC 8200 §4.4 Routing header; type 0 (deprecated, RFC 5095) and 2 (RFC 6275 §6.4) decoded.

    Returns the final destination when segments are left: the last address
    of a type 0 header, the home address of a type 2 header.
    """
    ext = pkt.add_layer(P_RT, p, hl, src)
    rtype, segleft = buf[p + 2], buf[p + 3]
    final = None
    if rtype == 0:
        pkt.expert(ext, Severity.NOTE, Group.DEPRECATED, "RFC 5095: Routing Header type 0 is deprecated", p + 2, 1)
        n = (hl - 8) // 16
        if segleft and n:
            final = bytes(buf[p + 8 + 16 * (n - 1) : p + 8 + 16 * n])
    elif rtype == 2 and hl == 24 and segleft == 1:
        final = bytes(buf[p + 8 : p + 24])
    if pkt.tree:
        ext.label = f"Routing Header for IPv6 ({ROUTING_TYPES.get(rtype, 'Unknown')})"
    if not want_group(pkt, "_g.ipv6.routing", tuple(P_RT.fields.values())):
        return final
    ext.add(FR.nxt, buf[p], p, 1)
    ext.add(FR.len, buf[p + 1], p + 1, 1)
    ext.add(FR.len_oct, hl, p + 1, 1, generated=True)
    ext.add(FR.type, rtype, p + 2, 1)
    ext.add(FR.segleft, segleft, p + 3, 1)
    q, hend = p + 4, p + hl
    if rtype == 0 and hl >= 8:
        ext.add(FR.src_reserved, buf[q : q + 4], q, 4)
        q += 4
        while q + 16 <= hend:
            ext.add(FR.src_addr, buf[q : q + 16], q, 16)
            q += 16
    elif rtype == 2 and hl == 24:
        ext.add(FR.mipv6_reserved, buf[q : q + 4], q, 4)
        ext.add(FR.mipv6_home_address, buf[q + 4 : q + 20], q + 4, 16)
    elif q < hend:
        ext.add(FR.unknown_data, buf[q:hend], q, hend - q)
    return final


def _fragment(pkt: Packet, lay: Layer, buf: bytes, ip_off: int, p: int, end: int, src: int,
              sa: bytes, da: bytes, full: bool, in_error: bool) -> bool:
    """RFC 8200 §4.5 Fragment header; reassembly keyed on (source, destination, Identification)."""
    if end - p < 8:
        ext = pkt.add_layer(P_FRAG, p, end - p, src)
        _cut(pkt, ext, buf, p, end, src, 8, "Fragment header")
        return True
    ext = pkt.add_layer(P_FRAG, p, 8, src)
    nxt, resv, ofl, ident = struct.unpack_from("!BBHI", buf, p)
    units, more = ofl >> 3, bool(ofl & 1)
    foff = units * 8
    tree = pkt.tree
    if want_group(pkt, "_g.ipv6.fraghdr", tuple(P_FRAG.fields.values())):
        ext.add(FF6.nxt, nxt, p, 1)
        ext.add(FF6.reserved_octet, resv, p + 1, 1)
        ext.add(FF6.offset, units, p + 2, 2,
                label=f"{bits(ofl, 0xFFF8, 16)} = Offset: {units} ({foff} bytes)" if tree else None)
        ext.add(FF6.reserved_bits, (ofl >> 1) & 3, p + 2, 2,
                label=f"{bits(ofl, 0x0006, 16)} = Reserved bits: {(ofl >> 1) & 3}" if tree else None)
        ext.add(FF6.more, more, p + 2, 2,
                label=f"{bits(ofl, 0x0001, 16)} = More Fragments: {'Yes' if more else 'No'}" if tree else None)
        ext.add(FF6.ident, ident, p + 4, 4)
        if tree:
            ext.label = "Fragment Header for IPv6"
    start = p + 8
    cap = pkt.cap
    if foff == 0 and not more:
        # RFC 8200 §4.5 / RFC 6946: an "atomic fragment" is a whole datagram.
        return _upper(pkt, nxt, buf, start, end, src)
    if in_error or not full or not cap.prefs.get("ipv6.defragment", True):
        if foff == 0:
            pkt.scratch["ip.fragmented"] = True
            return _upper(pkt, nxt, buf, start, end, src)
        _frag_info(pkt, foff, more, ident, nxt)
        cap.call_data(pkt, buf, start, end, src)
        return True
    res = _table(pkt).add((sa, da, ident), pkt.number, foff, buf[start:end], more=more, ts_ns=pkt.ts_ns,
                          meta=nxt if foff == 0 else None)
    fragment_experts(pkt, ext, res, p, "RFC 8200 §4.5")
    if res.status is Status.COMPLETE and res.data is not None:
        data = res.data
        if wants(pkt, P_IPV6):
            show_fragments(pkt, lay, res.fragments, data, FRAG_FIELDS)
        src2 = pkt.add_source("Reassembled IPv6", data)
        first_nxt = res.meta if isinstance(res.meta, int) else nxt
        # The fragmentable part may itself start with extension headers (RFC 8200 §4.5).
        return _chain(pkt, lay, data, 0, 0, len(data), src2, first_nxt, sa, da, len(data), True, False)
    done_in = None
    if res.status is Status.DONE and res.reassembled_in is not None:
        done_in = res.reassembled_in
        lay.add(FI6.reassembled_in, done_in, ip_off, 0, generated=True)
    elif res.status is Status.ERROR:
        lay.add(FI6.fragment_error, pkt.number, ip_off, 0, generated=True)
        pkt.expert(lay, Severity.ERROR, Group.REASSEMBLE,
                   f"Reassembly abandoned: datagram larger than {IPV6_MAX_DATAGRAM} bytes or too many fragments",
                   p)
    _frag_info(pkt, foff, more, ident, nxt, done_in)
    cap.call_data(pkt, buf, start, end, src)
    return True


def _frag_info(pkt: Packet, foff: int, more: bool, ident: int, nxt: int, done_in: int | None = None) -> None:
    if pkt.cols:
        pkt.protocol = "IPv6"
        pkt.info = (f"IPv6 fragment (off={foff} more={'y' if more else 'n'} ident=0x{ident:08x} nxt={nxt})"
                    + (f" [Reassembled in #{done_in}]" if done_in else ""))


FRAG_FIELDS = FragmentFields(
    FI6.fragments, FI6.fragment, FI6.fragment_overlap, FI6.fragment_overlap_conflict,
    FI6.fragment_multipletails, FI6.fragment_toolongfragment, FI6.fragment_error, FI6.fragment_count,
    FI6.reassembled_length, FI6.reassembled_data, "IPv6")

# Field groups recorded together (see want_group).
_G_ADDR = (FI6.src, FI6.addr, FI6.src_host, FI6.host, FI6.dst, FI6.dst_host)
_G_OPT = tuple(fd for a, fd in P_IPV6.fields.items() if a.startswith("ipv6.opt"))
_G_HDR = (FI.version,) + tuple(fd for fd in P_IPV6.fields.values() if fd not in _G_ADDR and fd not in _G_OPT)
_GROUPS = (_G_HDR, _G_ADDR) + tuple((fd,) for fd in _G_ADDR)

_EXT_PROTO = {NH_HOPOPTS: P_HOP, NH_DSTOPTS: P_DST, NH_ROUTING: P_RT, NH_FRAGMENT: P_FRAG}

REGISTRY.add("ethertype", 0x86DD, "ipv6")
REGISTRY.add("ip.proto", 41, "ipv6")  # IPv6-in-IPv4 / IPv6-in-IPv6 (RFC 4213, RFC 2473)
