"""ICMPv6 (RFC 4443), Neighbor Discovery (RFC 4861), MLD (RFC 2710, RFC 3810).

Errors (destination unreachable, packet too big, time exceeded, parameter
problem) carry "as much of the invoking packet as possible" (RFC 4443
§3.1); it is dissected by the IPv6 dissector in quoted mode, as for ICMP.
Echo requests and replies are paired; ND messages get their fixed fields
and their options (link-layer addresses, prefix information, MTU; others
shown raw), MLDv1/v2 their records.  The checksum always covers the
RFC 8200 §8.1 pseudo-header and is verified, as tshark does.
"""

from __future__ import annotations

import struct

from jpdissect.dissectors._netcommon import (
    CKSUM_BAD,
    CKSUM_GOOD,
    CKSUM_STATUS,
    CKSUM_UNVERIFIED,
    IN_ERROR,
    bits,
    dissect_quoted,
    inet_checksum,
    ip_str,
    match_echo,
    pseudo_sum,
    wants,
)
from jpdissect.dissectors.eth import _reported_end
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Group, Layer, Node, Packet, Protocol, Severity

ICMPV6_HEADER = 8
IPPROTO_ICMPV6 = 58
ECHO_STATE = "icmpv6.echo"
MAX_ND_OPTIONS = 64       # options per ND message before we stop (RFC 4861 sets no limit)
MAX_MLD_RECORDS = 1024    # MLDv2 multicast address records decoded per report

UNREACH, TOO_BIG, TIME_EXCEEDED, PARAM_PROBLEM = 1, 2, 3, 4
ECHO_REQ, ECHO_REPLY = 128, 129
MLD_QUERY, MLD_REPORT, MLD_DONE = 130, 131, 132
RS, RA, NS, NA, REDIRECT = 133, 134, 135, 136, 137
MLDV2_REPORT = 143
ERROR_TYPES = frozenset({UNREACH, TOO_BIG, TIME_EXCEEDED, PARAM_PROBLEM})

TYPES = {
    1: "Destination Unreachable", 2: "Packet Too Big", 3: "Time Exceeded", 4: "Parameter Problem",
    100: "Private experimentation", 101: "Private experimentation", 128: "Echo (ping) request",
    129: "Echo (ping) reply", 130: "Multicast Listener Query", 131: "Multicast Listener Report",
    132: "Multicast Listener Done", 133: "Router Solicitation", 134: "Router Advertisement",
    135: "Neighbor Solicitation", 136: "Neighbor Advertisement", 137: "Redirect",
    138: "Router Renumbering", 139: "ICMP Node Information Query", 140: "ICMP Node Information Response",
    141: "Inverse Neighbor Discovery Solicitation Message",
    142: "Inverse Neighbor Discovery Advertisement Message", 143: "Multicast Listener Report Message v2",
    144: "Home Agent Address Discovery Request Message", 145: "Home Agent Address Discovery Reply Message",
    146: "Mobile Prefix Solicitation", 147: "Mobile Prefix Advertisement",
    148: "Certification Path Solicitation Message", 149: "Certification Path Advertisement Message",
    151: "Multicast Router Advertisement", 152: "Multicast Router Solicitation",
    153: "Multicast Router Termination", 154: "FMIPv6 Messages", 155: "RPL Control Message",
    157: "Duplicate Address Request", 158: "Duplicate Address Confirmation",
    159: "MPL Control Message", 160: "Extended Echo Request", 161: "Extended Echo Reply",
    200: "Private experimentation", 201: "Private experimentation",
}
CODES = {
    UNREACH: {0: "no route to destination", 1: "Administratively prohibited",
              2: "Beyond scope of source address", 3: "Address unreachable", 4: "Port unreachable",
              5: "Source address failed ingress/egress policy", 6: "Reject route to destination",
              7: "Error in Source Routing Header"},
    TIME_EXCEEDED: {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"},
    PARAM_PROBLEM: {0: "erroneous header field encountered", 1: "unrecognized Next Header type encountered",
                    2: "unrecognized IPv6 option encountered",
                    3: "IPv6 First Fragment has incomplete IPv6 Header Chain"},
}
OPT_TYPES = {
    1: "Source link-layer address", 2: "Target link-layer address", 3: "Prefix information",
    4: "Redirected header", 5: "MTU", 6: "NBMA Shortcut Limit Option", 7: "Advertisement Interval Option",
    8: "Home Agent Information Option", 14: "Nonce", 24: "Route Information", 25: "Recursive DNS Server",
    31: "DNS Search List Option", 33: "Address Registration Option", 34: "6LoWPAN Context Option",
    35: "Authoritative Border Router", 38: "PREF64 Option",
}
MLDR_RECORD_TYPES = {1: "Mode is include", 2: "Mode is exclude", 3: "Changed to include",
                     4: "Changed to exclude", 5: "Allow new sources", 6: "Block old sources"}

P_ICMPV6 = Protocol("icmpv6", "Internet Control Message Protocol v6", "ICMPv6")
F6 = P_ICMPV6.declare(
    F("icmpv6.type", "Type", FT.UINT8, strings=TYPES),
    F("icmpv6.code", "Code", FT.UINT8),
    F("icmpv6.checksum", "Checksum", FT.UINT16, base=Base.HEX),
    F("icmpv6.checksum.status", "Checksum Status", FT.UINT8, strings=CKSUM_STATUS),
    F("icmpv6.reserved", "Reserved", FT.BYTES),
    F("icmpv6.length", "Length of original datagram", FT.UINT8),
    F("icmpv6.mtu", "MTU", FT.UINT32),
    F("icmpv6.pointer", "Pointer", FT.UINT32),
    F("icmpv6.echo.identifier", "Identifier", FT.UINT16, base=Base.HEX),
    F("icmpv6.echo.sequence_number", "Sequence", FT.UINT16),
    F("icmpv6.resp_in", "Response In", FT.FRAMENUM),
    F("icmpv6.resp_to", "Response To", FT.FRAMENUM),
    F("icmpv6.resptime", "Response Time", FT.DOUBLE, unit="ms"),
    F("icmpv6.data", "Data", FT.BYTES),
    F("icmpv6.unknown_data", "Unknown Data", FT.BYTES),
    # Neighbor Discovery (RFC 4861 §4).
    F("icmpv6.nd.ra.cur_hop_limit", "Cur hop limit", FT.UINT8),
    F("icmpv6.nd.ra.flag", "Flags", FT.UINT8, base=Base.HEX),
    F("icmpv6.nd.ra.flag.m", "Managed address configuration", FT.BOOLEAN),
    F("icmpv6.nd.ra.flag.o", "Other configuration", FT.BOOLEAN),
    F("icmpv6.nd.ra.flag.h", "Home Agent", FT.BOOLEAN),
    F("icmpv6.nd.ra.flag.prf", "Prf (Default Router Preference)", FT.UINT8),
    F("icmpv6.nd.ra.flag.p", "Proxy", FT.BOOLEAN),
    F("icmpv6.nd.ra.flag.rsv", "Reserved", FT.UINT8),
    F("icmpv6.nd.ra.router_lifetime", "Router lifetime (s)", FT.UINT16),
    F("icmpv6.nd.ra.reachable_time", "Reachable time (ms)", FT.UINT32),
    F("icmpv6.nd.ra.retrans_timer", "Retrans timer (ms)", FT.UINT32),
    F("icmpv6.nd.ns.target_address", "Target Address", FT.IPv6),
    F("icmpv6.nd.na.flag", "Flags", FT.UINT32, base=Base.HEX),
    F("icmpv6.nd.na.flag.r", "Router", FT.BOOLEAN),
    F("icmpv6.nd.na.flag.s", "Solicited", FT.BOOLEAN),
    F("icmpv6.nd.na.flag.o", "Override", FT.BOOLEAN),
    F("icmpv6.nd.na.flag.rsv", "Reserved", FT.UINT32),
    F("icmpv6.nd.na.target_address", "Target Address", FT.IPv6),
    F("icmpv6.nd.rd.target_address", "Target Address", FT.IPv6),
    F("icmpv6.rd.na.destination_address", "Destination Address", FT.IPv6),
    F("icmpv6.opt", "ICMPv6 Option", FT.NONE),
    F("icmpv6.opt.type", "Type", FT.UINT8, strings=OPT_TYPES),
    F("icmpv6.opt.length", "Length", FT.UINT8, "In units of 8 bytes, including type and length"),
    # Wireshark registers these names twice (FT_ETHER for a 6-byte MAC, FT_BYTES
    # otherwise); the MAC form is the one real traffic shows, so it is the type here.
    F("icmpv6.opt.linkaddr", "Link-layer address", FT.ETHER),
    F("icmpv6.opt.src_linkaddr", "Source Link-layer address", FT.ETHER),
    F("icmpv6.opt.target_linkaddr", "Target Link-layer address", FT.ETHER),
    F("icmpv6.opt.linkaddr_eui64", "Link-layer address", FT.EUI64),
    F("icmpv6.opt.src_linkaddr_eui64", "Source Link-layer address", FT.EUI64),
    F("icmpv6.opt.target_linkaddr_eui64", "Target Link-layer address", FT.EUI64),
    F("icmpv6.opt.padding", "Padding", FT.NONE),
    F("icmpv6.opt.reserved", "Reserved", FT.NONE),
    F("icmpv6.opt.prefix.length", "Prefix Length", FT.UINT8),
    F("icmpv6.opt.prefix.flag", "Flag", FT.UINT8, base=Base.HEX),
    F("icmpv6.opt.prefix.flag.l", "On-link flag(L)", FT.BOOLEAN),
    F("icmpv6.opt.prefix.flag.a", "Autonomous address-configuration flag(A)", FT.BOOLEAN),
    F("icmpv6.opt.prefix.flag.r", "Router address flag(R)", FT.BOOLEAN),
    F("icmpv6.opt.prefix.flag.reserved", "Reserved", FT.UINT8),
    F("icmpv6.opt.prefix.valid_lifetime", "Valid Lifetime", FT.UINT32),
    F("icmpv6.opt.prefix.preferred_lifetime", "Preferred Lifetime", FT.UINT32),
    F("icmpv6.opt.prefix", "Prefix", FT.IPv6),
    F("icmpv6.opt.mtu", "MTU", FT.UINT32),
    F("icmpv6.invalid_option_length", "Invalid Option Length", FT.NONE),
    # MLD (RFC 2710) and MLDv2 (RFC 3810).
    F("icmpv6.mld.maximum_response_delay", "Maximum Response Delay [ms]", FT.UINT16),
    F("icmpv6.mld.maximum_response_code", "Maximum Response Code", FT.UINT16),
    F("icmpv6.mld.multicast_address", "Multicast Address", FT.IPv6),
    F("icmpv6.mld.flag", "Flags", FT.UINT8, base=Base.HEX),
    F("icmpv6.mld.flag.s", "Suppress Router-Side Processing", FT.BOOLEAN),
    F("icmpv6.mld.flag.qrv", "QRV (Querier's Robustness Variable)", FT.UINT8),
    F("icmpv6.mld.flag.reserved", "Reserved", FT.UINT8),
    F("icmpv6.mld.qqi", "QQIC (Querier's Query Interval Code)", FT.UINT8),
    F("icmpv6.mld.nb_sources", "Number of Sources", FT.UINT16),
    F("icmpv6.mld.source_address", "Source Address", FT.IPv6),
    F("icmpv6.mldr.nb_mcast_records", "Number of Multicast Address Records", FT.UINT16),
    F("icmpv6.mldr.mar", "Multicast Address Record", FT.NONE),
    F("icmpv6.mldr.mar.record_type", "Record Type", FT.UINT8, strings=MLDR_RECORD_TYPES),
    F("icmpv6.mldr.mar.aux_data_len", "Aux Data Len", FT.UINT8),
    F("icmpv6.mldr.mar.nb_sources", "Number of Sources", FT.UINT16),
    F("icmpv6.mldr.mar.multicast_address", "Multicast Address", FT.IPv6),
    F("icmpv6.mldr.mar.source_address", "Source Address", FT.IPv6),
    F("icmpv6.mldr.mar.auxiliary_data", "Auxiliary Data", FT.BYTES),
    F("icmpv6.checksum_bad.expert", "Bad checksum", FT.NONE),
)


@dissector("icmpv6", "Internet Control Message Protocol v6")
def dissect_icmpv6(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    n = end - off
    lay = pkt.add_layer(P_ICMPV6, off, max(n, 0), src)
    in_error = IN_ERROR in pkt.scratch
    if n < 4:
        if not in_error:
            pkt.malformed(lay, f"RFC 4443 §2.1: ICMPv6 header needs 4 bytes, only {n} present", off, n)
        return True
    t, c, csum = struct.unpack_from("!BBH", buf, off)
    tname = TYPES.get(t, f"Unknown ({t})")
    cname = CODES.get(t, {}).get(c, "")
    want = wants(pkt, P_ICMPV6)
    tree = pkt.tree
    if tree:
        lay.label = "Internet Control Message Protocol v6"
    rep = _reported_end(pkt, buf, end, src)
    status = CKSUM_UNVERIFIED
    if (not in_error and rep == end and not pkt.scratch.get("ip.fragmented") and pkt.net_src is not None
            and len(pkt.net_src) == 16):
        ps = pseudo_sum(pkt.net_src, pkt.net_dst, IPPROTO_ICMPV6, n)
        status = CKSUM_GOOD if inet_checksum(buf[off:end], ps) == 0 else CKSUM_BAD
    if want:
        lay.add(F6.type, t, off, 1)
        lay.add(F6.code, c, off + 1, 1, label=f"Code: {c} ({cname})" if tree and cname else None)
        note = {CKSUM_GOOD: "correct", CKSUM_BAD: "incorrect", CKSUM_UNVERIFIED: "unverified"}[status]
        cn = lay.add(F6.checksum, csum, off + 2, 2, label=f"Checksum: 0x{csum:04x} [{note}]" if tree else None)
        cn.add(F6.checksum_status, status, off + 2, 2, generated=True)
    if status == CKSUM_BAD:
        lay.add(F6.checksum_bad_expert, None, off + 2, 2)
        pkt.expert(lay, Severity.WARN, Group.CHECKSUM, "Bad checksum", off + 2, 2)
    info = tname + (f" ({cname})" if cname else "")
    cols = pkt.cols and not in_error
    if cols:
        pkt.info = info
    body = off + ICMPV6_HEADER
    if n < ICMPV6_HEADER:
        if not in_error:
            _cut(pkt, lay, off, end, rep)
        return True
    if t in ERROR_TYPES:
        if want:
            if t == TOO_BIG:
                lay.add(F6.mtu, int.from_bytes(buf[off + 4 : off + 8], "big"), off + 4, 4)
            elif t == PARAM_PROBLEM:
                lay.add(F6.pointer, int.from_bytes(buf[off + 4 : off + 8], "big"), off + 4, 4)
            elif buf[off + 4]:
                # RFC 4884 §4.1: a non-zero length (64-bit words) announces extensions.
                lay.add(F6.length, buf[off + 4], off + 4, 1)
                lay.add(F6.reserved, bytes(buf[off + 5 : off + 8]), off + 5, 3)
            else:
                lay.add(F6.reserved, bytes(buf[off + 4 : off + 8]), off + 4, 4)
        if body < end:
            dissect_quoted(pkt, "ipv6", buf, body, end, src)
        return True
    if t in (ECHO_REQ, ECHO_REPLY):
        ident, seq = struct.unpack_from("!HH", buf, off + 4)
        if want:
            lay.add(F6.echo_identifier, ident, off + 4, 2)
            lay.add(F6.echo_sequence_number, seq, off + 6, 2)
        info += f" id=0x{ident:04x}, seq={seq}"
        hlim = pkt.scratch.get("ipv6.hlim")
        if hlim is not None:
            info += f", hop limit={hlim}"
        if not in_error:
            info += match_echo(pkt, lay, ECHO_STATE, F6.resp_to, F6.resptime, t == ECHO_REQ, ident, seq, want)
        if cols:
            pkt.info = info
        if body < end:
            pkt.cap.call_data(pkt, buf, body, end, src)
        return True
    if t in (RS, RA, NS, NA, REDIRECT):
        _nd(pkt, lay, buf, off, end, t, want, cols, info)
        return True
    if t in (MLD_QUERY, MLD_REPORT, MLD_DONE):
        _mld(pkt, lay, buf, off, end, t, want)
        return True
    if t == MLDV2_REPORT:
        _mldv2_report(pkt, lay, buf, off, end, want)
        return True
    if want and body - 4 < end:
        lay.add(F6.unknown_data, bytes(buf[off + 4 : end]), off + 4, end - off - 4)
    return True


def _nd(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, t: int, want: bool, cols: bool,
        info: str) -> None:
    """RFC 4861 §4.1-4.5 fixed parts, then options (§4.6)."""
    tree = pkt.tree
    p = off + 4
    if t == RS:
        if want:
            lay.add(F6.reserved, bytes(buf[p : p + 4]), p, 4)
        p += 4
    elif t == RA:
        if end - p < 12:
            _short_nd(pkt, lay, p, end)
            return
        hop, fl, life, reach, retrans = struct.unpack_from("!BBHII", buf, p)
        if want:
            lay.add(F6.nd_ra_cur_hop_limit, hop, p, 1)
            fn = lay.add(F6.nd_ra_flag, fl, p + 1, 1)
            for fd, m in ((F6.nd_ra_flag_m, 0x80), (F6.nd_ra_flag_o, 0x40), (F6.nd_ra_flag_h, 0x20)):
                fn.add(fd, bool(fl & m), p + 1, 1)
            fn.add(F6.nd_ra_flag_prf, (fl >> 3) & 3, p + 1, 1)
            fn.add(F6.nd_ra_flag_p, bool(fl & 4), p + 1, 1)
            fn.add(F6.nd_ra_flag_rsv, fl & 3, p + 1, 1)
            lay.add(F6.nd_ra_router_lifetime, life, p + 2, 2)
            lay.add(F6.nd_ra_reachable_time, reach, p + 4, 4)
            lay.add(F6.nd_ra_retrans_timer, retrans, p + 8, 4)
        p += 12
    elif t in (NS, NA):
        if end - p < 20:
            _short_nd(pkt, lay, p, end)
            return
        target = bytes(buf[p + 4 : p + 20])
        if t == NS:
            if want:
                lay.add(F6.reserved, bytes(buf[p : p + 4]), p, 4)
                lay.add(F6.nd_ns_target_address, target, p + 4, 16)
            info += f" for {ip_str(target)}"
        else:
            fl = int.from_bytes(buf[p : p + 4], "big")
            names = [nm for m, nm in ((0x80000000, "rtr"), (0x40000000, "sol"), (0x20000000, "ovr")) if fl & m]
            if want:
                fn = lay.add(F6.nd_na_flag, fl, p, 4, label=(
                    f"Flags: 0x{fl:08x}" + "".join(f", {x}" for x in (
                        "Router" if fl & 0x80000000 else "", "Solicited" if fl & 0x40000000 else "",
                        "Override" if fl & 0x20000000 else "") if x) if tree else None))
                for fd, m, nm in ((F6.nd_na_flag_r, 0x80000000, "Router"), (F6.nd_na_flag_s, 0x40000000, "Solicited"),
                                  (F6.nd_na_flag_o, 0x20000000, "Override")):
                    fn.add(fd, bool(fl & m), p, 4,
                           label=f"{bits(fl, m, 32)} = {nm}: {'Set' if fl & m else 'Not set'}" if tree else None)
                fn.add(F6.nd_na_flag_rsv, fl & 0x1FFFFFFF, p, 4)
                lay.add(F6.nd_na_target_address, target, p + 4, 16)
            info += f" {ip_str(target)}" + (f" ({', '.join(names)})" if names else "")
        p += 20
    else:  # Redirect
        if end - p < 36:
            _short_nd(pkt, lay, p, end)
            return
        if want:
            lay.add(F6.reserved, bytes(buf[p : p + 4]), p, 4)
            lay.add(F6.nd_rd_target_address, bytes(buf[p + 4 : p + 20]), p + 4, 16)
            lay.add(F6.rd_na_destination_address, bytes(buf[p + 20 : p + 36]), p + 20, 16)
        p += 36
    src_ll, tgt_ll = _options(pkt, lay, buf, p, end, want)
    if t in (RS, RA, NS) and src_ll is not None:
        info += f" from {src_ll}"
    elif t == NA and tgt_ll is not None:
        info += f" is at {tgt_ll}"
    if cols:
        pkt.info = info


def _short_nd(pkt: Packet, lay: Layer, p: int, end: int) -> None:
    pkt.malformed(lay, f"RFC 4861 §4: message body too short ({end - p} bytes)", p, end - p)


def _ll_text(addr: bytes) -> str:
    return addr.hex(":")


def _options(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, want: bool) -> tuple[str | None, str | None]:
    """ND options: type(1) length(1, units of 8 octets) value; a zero length is invalid (RFC 4861 §4.6)."""
    tree = pkt.tree
    src_ll = tgt_ll = None
    for _ in range(MAX_ND_OPTIONS):
        if end - p < 2:
            if p < end:
                pkt.malformed(lay, "RFC 4861 §4.6: truncated option", p, end - p)
            break
        ot, ol = buf[p], buf[p + 1]
        olen = ol * 8
        if ol == 0 or p + olen > end:
            lay.add(F6.invalid_option_length, None, p + 1, 1)
            pkt.malformed(lay, f"RFC 4861 §4.6: option length {ol} is invalid here", p + 1, 1)
            break
        name = OPT_TYPES.get(ot, f"Unknown ({ot})")
        o: Node = lay
        if want:
            o = lay.add(F6.opt, None, p, olen, label=f"ICMPv6 Option ({name})" if tree else None)
            o.add(F6.opt_type, ot, p, 1)
            o.add(F6.opt_length, ol, p + 1, 1, label=f"Length: {ol} ({olen} bytes)" if tree else None)
        v, vend = p + 2, p + olen
        if ot in (1, 2):
            # RFC 2464 §6 (Ethernet: 6 bytes); RFC 4944 §8 / RFC 8505 (IEEE 802.15.4:
            # an EUI-64 followed by 6 bytes of zero padding).
            if olen == 8:
                addr, fds = bytes(buf[v : v + 6]), (F6.opt_linkaddr, F6.opt_src_linkaddr, F6.opt_target_linkaddr)
            elif olen == 16 and not any(buf[v + 8 : v + 14]):
                addr = bytes(buf[v : v + 8])
                fds = (F6.opt_linkaddr_eui64, F6.opt_src_linkaddr_eui64, F6.opt_target_linkaddr_eui64)
            else:
                addr, fds = bytes(buf[v:vend]), (F6.opt_linkaddr, F6.opt_src_linkaddr, F6.opt_target_linkaddr)
            txt = _ll_text(addr)
            if ot == 1:
                src_ll = txt
            else:
                tgt_ll = txt
            if want:
                o.add(fds[0], addr, v, len(addr), label=f"Link-layer address: {txt}" if tree else None)
                o.add(fds[1] if ot == 1 else fds[2], addr, v, len(addr))
                if len(addr) == 8 and olen == 16:
                    o.add(F6.opt_padding, None, v + 8, 6)
                if tree:
                    o.label = f"ICMPv6 Option ({name} : {txt})"
        elif ot == 3 and olen == 32 and want:
            plen, fl, valid, pref = struct.unpack_from("!BBII", buf, v)
            o.add(F6.opt_prefix_length, plen, v, 1)
            fn = o.add(F6.opt_prefix_flag, fl, v + 1, 1)
            fn.add(F6.opt_prefix_flag_l, bool(fl & 0x80), v + 1, 1)
            fn.add(F6.opt_prefix_flag_a, bool(fl & 0x40), v + 1, 1)
            fn.add(F6.opt_prefix_flag_r, bool(fl & 0x20), v + 1, 1)
            fn.add(F6.opt_prefix_flag_reserved, fl & 0x1F, v + 1, 1)
            o.add(F6.opt_prefix_valid_lifetime, valid, v + 2, 4)
            o.add(F6.opt_prefix_preferred_lifetime, pref, v + 6, 4)
            o.add(F6.opt_reserved, None, v + 10, 4)
            o.add(F6.opt_prefix, bytes(buf[v + 14 : v + 30]), v + 14, 16)
        elif ot == 5 and olen == 8 and want:
            o.add(F6.opt_reserved, None, v, 2)
            o.add(F6.opt_mtu, int.from_bytes(buf[v + 2 : v + 6], "big"), v + 2, 4)
        elif want and vend > v:
            o.add(F6.unknown_data, bytes(buf[v:vend]), v, vend - v)
        p = vend
        if p >= end:
            break
    return src_ll, tgt_ll


def _mld(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, t: int, want: bool) -> None:
    """MLDv1 (RFC 2710 §3) and, for a longer query, MLDv2 (RFC 3810 §5.1)."""
    p = off + 4
    if end - p < 20:
        pkt.malformed(lay, f"RFC 2710 §3: MLD message body too short ({end - p} bytes)", p, end - p)
        return
    if not want:
        return
    delay = int.from_bytes(buf[p : p + 2], "big")
    if t == MLD_QUERY and end - p >= 24:
        lay.add(F6.mld_maximum_response_code, delay, p, 2)
    else:
        lay.add(F6.mld_maximum_response_delay, delay, p, 2)
    lay.add(F6.reserved, bytes(buf[p + 2 : p + 4]), p + 2, 2)
    lay.add(F6.mld_multicast_address, bytes(buf[p + 4 : p + 20]), p + 4, 16)
    if t == MLD_QUERY and end - p >= 24:
        fl, qqic, nsrc = buf[p + 20], buf[p + 21], int.from_bytes(buf[p + 22 : p + 24], "big")
        fn = lay.add(F6.mld_flag, fl, p + 20, 1)
        fn.add(F6.mld_flag_s, bool(fl & 8), p + 20, 1)
        fn.add(F6.mld_flag_qrv, fl & 7, p + 20, 1)
        fn.add(F6.mld_flag_reserved, fl >> 4, p + 20, 1)
        lay.add(F6.mld_qqi, qqic, p + 21, 1)
        lay.add(F6.mld_nb_sources, nsrc, p + 22, 2)
        q = p + 24
        for _ in range(nsrc):
            if q + 16 > end:
                pkt.malformed(lay, "RFC 3810 §5.1.10: fewer source addresses than announced", q)
                break
            lay.add(F6.mld_source_address, bytes(buf[q : q + 16]), q, 16)
            q += 16


def _mldv2_report(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, want: bool) -> None:
    """RFC 3810 §5.2: reserved(2) count(2), then multicast address records."""
    tree = pkt.tree
    p = off + 4
    if end - p < 4:
        pkt.malformed(lay, "RFC 3810 §5.2: report too short", p, end - p)
        return
    count = int.from_bytes(buf[p + 2 : p + 4], "big")
    if want:
        lay.add(F6.reserved, bytes(buf[p : p + 2]), p, 2)
        lay.add(F6.mldr_nb_mcast_records, count, p + 2, 2)
    q = p + 4
    for _ in range(min(count, MAX_MLD_RECORDS)):
        if end - q < 20:
            pkt.malformed(lay, "RFC 3810 §5.2.4: multicast address record cut short", q, end - q)
            return
        rtype, aux, nsrc = buf[q], buf[q + 1], int.from_bytes(buf[q + 2 : q + 4], "big")
        rlen = 20 + 16 * nsrc + 4 * aux
        if q + rlen > end:
            pkt.malformed(lay, "RFC 3810 §5.2.4: multicast address record runs past the message", q, end - q)
            return
        if want:
            maddr = bytes(buf[q + 4 : q + 20])
            r = lay.add(F6.mldr_mar, None, q, rlen, label=(
                f"Multicast Address Record {MLDR_RECORD_TYPES.get(rtype, 'Unknown')}: {ip_str(maddr)}"
                if tree else None))
            r.add(F6.mldr_mar_record_type, rtype, q, 1)
            r.add(F6.mldr_mar_aux_data_len, aux, q + 1, 1)
            r.add(F6.mldr_mar_nb_sources, nsrc, q + 2, 2)
            r.add(F6.mldr_mar_multicast_address, maddr, q + 4, 16)
            s = q + 20
            for _ in range(nsrc):
                r.add(F6.mldr_mar_source_address, bytes(buf[s : s + 16]), s, 16)
                s += 16
            if aux:
                r.add(F6.mldr_mar_auxiliary_data, bytes(buf[s : s + 4 * aux]), s, 4 * aux)
        q += rlen


def _cut(pkt: Packet, lay: Layer, off: int, end: int, rep: int) -> None:
    if rep > end:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED, "Packet size limited during capture: ICMPv6 cut short", off)
    else:
        pkt.malformed(lay, f"RFC 4443 §2.1: ICMPv6 header needs 8 bytes, only {end - off} present", off, end - off)


REGISTRY.add("ip.proto", IPPROTO_ICMPV6, "icmpv6")
