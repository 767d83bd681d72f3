"""IPv4 (RFC 791): header, options, checksum, fragment reassembly, ``ip.proto`` dispatch.

Field names, types and the single-pass behaviour follow tshark 4.0 so that
``-T fields`` output matches it byte for byte: the header checksum is
reported Unverified unless ``-o ip.check_checksum:TRUE`` (tshark's
default), ``ip.frag_offset`` is the raw 13-bit value (units of 8 bytes),
non-final fragments are shown as data with Info ``Fragmented IP protocol
(proto=UDP 17, off=0, ID=57d4)`` and the last one carries the reassembled
datagram as a new data source, "Reassembled IPv4".

An ICMP error's quoted header is dissected by this same code with
``pkt.scratch["in_error_pkt"]`` set: no reassembly, no total-length
complaints, and the caller restores addresses and columns.
"""

from __future__ import annotations

import socket
import struct

from jpdissect.dissectors._netcommon import (
    CKSUM_BAD,
    CKSUM_GOOD,
    CKSUM_STATUS,
    CKSUM_UNVERIFIED,
    IN_ERROR,
    IP_PROTO_NAMES,
    FragmentFields,
    bits,
    flag_label,
    fragment_experts,
    inet_checksum,
    ip_str,
    plan,
    show_fragments,
    wants,
)
from jpdissect.dissectors.eth import _reported_end
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Group, Layer, Node, Packet, Pref, Protocol, Severity, declare_prefs
from jpdissect.reassembly import ReassemblyTable, Status, table_in

IPV4_MIN_HEADER = 20
IPV4_MAX_DATAGRAM = 65535  # RFC 791 §3.1: Total Length is 16 bits
REASM_STATE = "ip.reasm"

DSCP_NAMES = {
    0: "Default", 8: "Class Selector 1", 10: "Assured Forwarding 11", 12: "Assured Forwarding 12",
    14: "Assured Forwarding 13", 16: "Class Selector 2", 18: "Assured Forwarding 21",
    20: "Assured Forwarding 22", 22: "Assured Forwarding 23", 24: "Class Selector 3",
    26: "Assured Forwarding 31", 28: "Assured Forwarding 32", 30: "Assured Forwarding 33",
    32: "Class Selector 4", 34: "Assured Forwarding 41", 36: "Assured Forwarding 42",
    38: "Assured Forwarding 43", 40: "Class Selector 5", 44: "Voice Admit", 46: "Expedited Forwarding",
    48: "Class Selector 6", 56: "Class Selector 7", 1: "Lower Effort",
}
DSCP_SHORT = {0: "CS0", 8: "CS1", 16: "CS2", 24: "CS3", 32: "CS4", 40: "CS5", 48: "CS6", 56: "CS7",
              10: "AF11", 12: "AF12", 14: "AF13", 18: "AF21", 20: "AF22", 22: "AF23", 26: "AF31",
              28: "AF32", 30: "AF33", 34: "AF41", 36: "AF42", 38: "AF43", 44: "VA", 46: "EF", 1: "LE"}
ECN_NAMES = {0: "Not ECN-Capable Transport", 1: "ECN-Capable Transport codepoint '01'",
             2: "ECN-Capable Transport codepoint '10'", 3: "Congestion Experienced"}
ECN_SHORT = {0: "Not-ECT", 1: "ECT(1)", 2: "ECT(0)", 3: "CE"}

# RFC 791 §3.1 option numbers (type octet: copied(1) class(2) number(5)).
OPT_EOL, OPT_NOP, OPT_RR, OPT_TS, OPT_LSRR, OPT_SSRR, OPT_RA = 0, 1, 7, 68, 131, 137, 148
OPT_NAMES = {
    0: "End of Options List (EOL)", 1: "No-Operation (NOP)", 7: "Record Route", 68: "Time Stamp",
    131: "Loose Source Route", 137: "Strict Source Route", 148: "Router Alert", 130: "Security",
    133: "Extended Security", 134: "Commercial Security", 136: "Stream ID", 11: "MTU Probe",
    12: "MTU Reply", 82: "Traceroute", 149: "Selective Directed Broadcast", 25: "Quick-Start",
}
OPT_NUMBER_NAMES = {0: "End of Option List (EOL)", 1: "No-Operation (NOP)", 7: "Record route",
                    4: "Time stamp", 3: "Loose source route", 9: "Strict source route",
                    20: "Router Alert", 2: "Security", 5: "Extended security", 8: "Stream identifier"}
OPT_CLASSES = {0: "Control", 1: "Reserved for future use", 2: "Debugging and measurement", 3: "Reserved for future use"}
TS_FLAGS = {0: "Time stamps only", 1: "Time stamp and address", 3: "Time stamps for prespecified addresses"}
RA_VALUES = {0: "Router shall examine packet"}

P_IP = Protocol("ip", "Internet Protocol Version 4", "IPv4")
FI = P_IP.declare(
    F("ip.version", "Version", FT.UINT8),
    F("ip.hdr_len", "Header Length", FT.UINT8, unit="bytes"),
    F("ip.dsfield", "Differentiated Services Field", FT.UINT8, base=Base.HEX),
    F("ip.dsfield.dscp", "Differentiated Services Codepoint", FT.UINT8, strings=DSCP_NAMES),
    F("ip.dsfield.ecn", "Explicit Congestion Notification", FT.UINT8, strings=ECN_NAMES),
    F("ip.len", "Total Length", FT.UINT16),
    F("ip.id", "Identification", FT.UINT16, base=Base.HEX_DEC),
    # No bitmask here on purpose: tshark -T fields prints ip.flags with the
    # width of the whole octet (0x02), not of the 3-bit mask.
    F("ip.flags", "Flags", FT.UINT8, base=Base.HEX),
    F("ip.flags.rb", "Reserved bit", FT.BOOLEAN),
    F("ip.flags.df", "Don't fragment", FT.BOOLEAN),
    F("ip.flags.mf", "More fragments", FT.BOOLEAN),
    F("ip.frag_offset", "Fragment Offset", FT.UINT16, "In units of 8 bytes"),
    F("ip.ttl", "Time to Live", FT.UINT8),
    F("ip.proto", "Protocol", FT.UINT8, strings=IP_PROTO_NAMES),
    F("ip.checksum", "Header Checksum", FT.UINT16, base=Base.HEX),
    F("ip.checksum_calculated", "Calculated Checksum", FT.UINT16, base=Base.HEX),
    F("ip.checksum.status", "Header checksum status", FT.UINT8, strings=CKSUM_STATUS),
    F("ip.src", "Source Address", FT.IPv4),
    F("ip.addr", "Source or Destination Address", FT.IPv4),
    F("ip.src_host", "Source Host", FT.STRING),
    F("ip.host", "Source or Destination Host", FT.STRING),
    F("ip.dst", "Destination Address", FT.IPv4),
    F("ip.dst_host", "Destination Host", FT.STRING),
    # Options (RFC 791 §3.1): each option as a whole, then its parts.
    F("ip.options.eol", "IP Option - End of Options List (EOL)", FT.BYTES),
    F("ip.options.nop", "IP Option - No-Operation (NOP)", FT.BYTES),
    F("ip.options.record_route", "IP Option - Record Route", FT.BYTES),
    F("ip.options.timestamp", "IP Option - Time Stamp", FT.BYTES),
    F("ip.options.route", "IP Option - Loose Source Route", FT.BYTES),
    F("ip.options.source_route", "IP Option - Strict Source Route", FT.BYTES),
    F("ip.options.routeralert", "IP Option - Router Alert", FT.BYTES),
    F("ip.opt.type", "Type", FT.UINT8),
    F("ip.opt.type.copy", "Copy on fragmentation", FT.BOOLEAN),
    F("ip.opt.type.class", "Class", FT.UINT8, strings=OPT_CLASSES),
    F("ip.opt.type.number", "Number", FT.UINT8, strings=OPT_NUMBER_NAMES),
    F("ip.opt.len", "Length", FT.UINT8),
    F("ip.opt.ptr", "Pointer", FT.UINT8),
    F("ip.opt.ra", "Router Alert", FT.UINT16, strings=RA_VALUES),
    F("ip.opt.overflow", "Overflow", FT.UINT8),
    F("ip.opt.flag", "Flag", FT.UINT8, base=Base.HEX, strings=TS_FLAGS),
    F("ip.opt.time_stamp", "Time stamp", FT.UINT32),
    F("ip.opt.time_stamp_addr", "Address", FT.IPv4),
    F("ip.rec_rt", "Recorded Route", FT.IPv4),
    F("ip.rec_rt_host", "Recorded Route Host", FT.STRING),
    F("ip.cur_rt", "Current Route", FT.IPv4),
    F("ip.cur_rt_host", "Current Route Host", FT.STRING),
    F("ip.src_rt", "Source Route", FT.IPv4),
    F("ip.src_rt_host", "Source Route Host", FT.STRING),
    F("ip.empty_rt", "Empty Route", FT.IPv4),
    F("ip.empty_rt_host", "Empty Route Host", FT.STRING),
    # Reassembly (Wireshark's fragment_items).
    F("ip.fragments", "IPv4 Fragments", FT.BYTES),
    F("ip.fragment", "IPv4 Fragment", FT.FRAMENUM),
    F("ip.fragment.overlap", "Fragment overlap", FT.BOOLEAN),
    F("ip.fragment.overlap.conflict", "Conflicting data in fragment overlap", FT.BOOLEAN),
    F("ip.fragment.multipletails", "Multiple tail fragments found", FT.BOOLEAN),
    F("ip.fragment.toolongfragment", "Fragment too long", FT.BOOLEAN),
    F("ip.fragment.error", "Defragmentation error", FT.FRAMENUM),
    F("ip.fragment.count", "Fragment count", FT.UINT32),
    F("ip.reassembled_in", "Reassembled IPv4 in frame", FT.FRAMENUM),
    F("ip.reassembled.length", "Reassembled IPv4 length", FT.UINT32),
    F("ip.reassembled.data", "Reassembled IPv4 data", FT.BYTES),
    # Expert markers (present when the problem is).
    F("ip.bogus_ip_length", "Bogus IP length", FT.NONE),
    F("ip.bogus_header_length", "Bogus IP header length", FT.NONE),
    F("ip.bogus_ip_version", "Bogus IP version", FT.NONE),
    F("ip.checksum_bad.expert", "Bad checksum", FT.NONE),
    F("ip.opt.len.invalid", "Invalid length for option", FT.NONE),
)

declare_prefs(
    Pref("ip.check_checksum", bool, False, "Validate the IPv4 header checksum if possible (tshark default: off)"),
    Pref("ip.defragment", bool, True, "Reassemble fragmented IPv4 datagrams"),
)

_HDR = struct.Struct("!BBHHHBBH4s4s")
_ntop = socket.inet_ntop
_AF_INET = socket.AF_INET


FRAG_FIELDS = FragmentFields(
    FI.fragments, FI.fragment, FI.fragment_overlap, FI.fragment_overlap_conflict, FI.fragment_multipletails,
    FI.fragment_toolongfragment, FI.fragment_error, FI.fragment_count, FI.reassembled_length,
    FI.reassembled_data, "IPv4")

# Field groups recorded together (see want_group): "-e ip.src" costs the address group only.
_G_ADDR = (FI.src, FI.addr, FI.src_host, FI.host, FI.dst, FI.dst_host)
_G_HDR = tuple(fd for fd in P_IP.fields.values() if fd not in _G_ADDR)
# plan() answers: [0] header fields, [1] any address field, [2:] each address field.
_GROUPS = (_G_HDR, _G_ADDR) + tuple((fd,) for fd in _G_ADDR)


def _table(pkt: Packet) -> ReassemblyTable:
    return table_in(pkt.cap.state, REASM_STATE, max_size=IPV4_MAX_DATAGRAM)


@dissector("ip", "Internet Protocol Version 4")
def dissect_ip(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    n = end - off
    if n < 1:
        lay = pkt.add_layer(P_IP, off, 0, src)
        _cut(pkt, lay, buf, off, end, src, 1)
        return True
    b0 = buf[off]
    version, hlen = b0 >> 4, (b0 & 0x0F) * 4
    if version == 6:
        # Wireshark hands an IPv6 packet found under an IPv4 Ethertype to IPv6.
        return pkt.cap.call("ipv6", pkt, buf, off, end, src)
    lay = pkt.add_layer(P_IP, off, min(max(hlen, IPV4_MIN_HEADER), n), src)
    if pkt.cols:
        pkt.info = ""  # Wireshark clears Info here: a broken header leaves only its own note
    tree = pkt.tree
    w = pkt.cap.state.get("_plan.ip") or plan(pkt, "_plan.ip", _GROUPS)
    want = w[0]
    if version != 4:
        if want:
            lay.add(FI.version, version, off, 1)
        lay.add(FI.bogus_ip_version, None, off, 1)
        pkt.expert(lay, Severity.ERROR, Group.PROTOCOL, f"Bogus IP version ({version}, must be 4)", off, 1)
        if pkt.cols:
            pkt.info = f"Bogus IPv4 version ({version}, must be 4)"
        return True
    if want:
        lay.add(FI.version, 4, off, 1, label="0100 .... = Version: 4" if tree else None)
        lay.add(FI.hdr_len, hlen, off, 1,
                label=f".... {bits(b0, 0x0F, 8)[5:]} = Header Length: {hlen} bytes ({hlen // 4})" if tree else None)
    if hlen < IPV4_MIN_HEADER:
        lay.add(FI.bogus_header_length, None, off, 1)
        msg = f"Bogus IP header length ({hlen}, must be at least {IPV4_MIN_HEADER})"
        pkt.expert(lay, Severity.ERROR, Group.PROTOCOL, msg, off, 1)
        if pkt.cols:
            pkt.info = msg
        return True
    if n < IPV4_MIN_HEADER:
        _partial(pkt, lay, buf, off, end, src, wants(pkt, P_IP))
        return True
    tos, tl, ident, fl, ttl, proto, csum, sa, da = _HDR.unpack_from(buf, off)[1:]
    in_error = IN_ERROR in pkt.scratch
    rep_end = end + (pkt.wirelen - pkt.caplen if src == 0 and end == len(buf) else 0)
    if want:
        _ds_len_fields(pkt, lay, off, tos, tl)
    if tl < hlen:
        if tl == 0 and not in_error:
            tl = rep_end - off  # TCP segmentation offload: Wireshark takes the frame's length
        else:
            lay.add(FI.bogus_ip_length, None, off + 2, 2)
            pkt.expert(lay, Severity.ERROR, Group.PROTOCOL,
                       f"Bogus IP length ({tl}, less than header length {hlen})", off + 2, 2)
            if pkt.cols:
                pkt.info = f"Bogus IP length ({tl}, less than header length {hlen})"
            return True
    if want:
        _fixed_fields(pkt, lay, off, ident, fl, ttl, proto)
    if off + tl > rep_end:
        if not in_error:
            lay.add(FI.bogus_ip_length, None, off + 2, 2)
            pkt.expert(lay, Severity.ERROR, Group.PROTOCOL,
                       f"IPv4 total length exceeds packet length ({rep_end - off} bytes)", off + 2, 2)
    elif off + tl < end:
        end = off + tl
    full = end >= off + tl  # the whole datagram was captured (reassembly needs that)
    # The checksum, if asked for, needs the whole header.
    want_addr = w[1]
    if n < hlen:
        if want:
            _csum_fields(pkt, lay, off, csum, CKSUM_UNVERIFIED, None)
        if want_addr:
            _addr_fields(pkt, lay, off, sa, da, w)
        _set_addresses(pkt, sa, da)
        _cut(pkt, lay, buf, off, end, src, hlen, "IPv4 options")
        return True
    status, calc = CKSUM_UNVERIFIED, None
    if pkt.cap.prefs.get("ip.check_checksum"):  # tshark 4.0 checks a quoted header too
        status = CKSUM_GOOD if inet_checksum(buf[off : off + hlen]) == 0 else CKSUM_BAD
        calc = inet_checksum(bytes(buf[off : off + 10]) + b"\0\0" + bytes(buf[off + 12 : off + hlen]))
    final = route_final(buf, off + IPV4_MIN_HEADER, off + hlen) if hlen > IPV4_MIN_HEADER else None
    via = None
    if final is not None:
        # A source route in progress: the header holds the next hop, the option the destination.
        via, da = da, bytes(buf[final : final + 4])
    if want:
        _csum_fields(pkt, lay, off, csum, status, calc)
    if want_addr:
        if via is None:
            _addr_fields(pkt, lay, off, sa, da, w)
        else:
            _addr_fields(pkt, lay, off, sa, da, w, with_dst=False)
            lay.add(FI.cur_rt, via, off + 16, 4)
            lay.add(FI.cur_rt_host, ip_str(via), off + 16, 4)
    if status == CKSUM_BAD:
        lay.add(FI.checksum_bad_expert, None, off + 10, 2)
        pkt.expert(lay, Severity.ERROR, Group.CHECKSUM, f"Bad checksum [should be 0x{calc or 0:04x}]", off + 10, 2)
    # Also inside an ICMP error: the quoted UDP's stream is that of the quoted
    # addresses (as in Wireshark); the ICMP dissector restores the outer ones.
    pkt.net_src, pkt.net_dst = sa, da  # da: the final destination when source-routed
    if pkt.cols:
        pkt.src, pkt.dst = _ntop(_AF_INET, sa), _ntop(_AF_INET, da)
    if hlen > IPV4_MIN_HEADER and wants(pkt, P_IP):
        _options(pkt, lay, buf, off + IPV4_MIN_HEADER, off + hlen)
    if tree:
        lay.label = (f"Internet Protocol Version 4, Src: {ip_str(sa)}, Dst: {ip_str(da)}"
                     + (f", Via: {ip_str(via)}" if via is not None else ""))
    if proto == 1:
        pkt.scratch["ip.ttl"] = ttl
    start = off + hlen
    mf = fl & 0x2000
    foff = (fl & 0x1FFF) * 8
    if mf or foff:
        return _fragment(pkt, lay, buf, off, start, end, full, src, sa, da, proto, ident, mf, foff,
                         status, in_error)
    if start < end and pkt.cap.call_table("ip.proto", proto, pkt, buf, start, end, src):
        return True
    return _payload(pkt, proto, buf, start, end, src)


def _payload(pkt: Packet, proto: int, buf: bytes, start: int, end: int, src: int) -> bool:
    if start >= end:
        return True  # nothing after the header: Wireshark calls no dissector at all
    if not pkt.cap.call_table("ip.proto", proto, pkt, buf, start, end, src):
        pkt.cap.call_data(pkt, buf, start, end, src)
        if pkt.cols:
            pkt.protocol = "IPv4"
            pkt.info = f"{IP_PROTO_NAMES.get(proto, 'Unknown')} ({proto})"
    return True


def _set_addresses(pkt: Packet, sa: bytes, da: bytes) -> None:
    pkt.net_src, pkt.net_dst = sa, da
    if pkt.cols:
        pkt.src, pkt.dst = ip_str(sa), ip_str(da)


def _ds_len_fields(pkt: Packet, lay: Layer, off: int, tos: int, tl: int) -> None:
    tree = pkt.tree
    dscp, ecn = tos >> 2, tos & 3
    ds = lay.add(FI.dsfield, tos, off + 1, 1, label=(
        f"Differentiated Services Field: 0x{tos:02x} (DSCP: {DSCP_SHORT.get(dscp, 'Unknown')}, "
        f"ECN: {ECN_SHORT[ecn]})" if tree else None))
    ds.add(FI.dsfield_dscp, dscp, off + 1, 1, label=(
        f"{bits(tos, 0xFC, 8)} = Differentiated Services Codepoint: {DSCP_NAMES.get(dscp, 'Unknown')} ({dscp})"
        if tree else None))
    ds.add(FI.dsfield_ecn, ecn, off + 1, 1, label=(
        f"{bits(tos, 0x03, 8)} = Explicit Congestion Notification: {ECN_NAMES[ecn]} ({ecn})" if tree else None))
    lay.add(FI.len, tl, off + 2, 2)


def _fixed_fields(pkt: Packet, lay: Layer, off: int, ident: int, fl: int, ttl: int, proto: int) -> None:
    tree = pkt.tree
    lay.add(FI.id, ident, off + 4, 2)
    flags = fl >> 13
    hi = fl >> 8
    fn = lay.add(FI.flags, flags, off + 6, 1, label=(
        f"{bits(hi, 0xE0, 8)} = Flags: 0x{flags:x}"
        + (", Don't fragment" if flags & 2 else "") + (", More fragments" if flags & 1 else "") if tree else None))
    fn.add(FI.flags_rb, bool(flags & 4), off + 6, 1,
           label=flag_label(hi, 0x80, 8, "Reserved bit") if tree else None)
    fn.add(FI.flags_df, bool(flags & 2), off + 6, 1,
           label=flag_label(hi, 0x40, 8, "Don't fragment") if tree else None)
    fn.add(FI.flags_mf, bool(flags & 1), off + 6, 1,
           label=flag_label(hi, 0x20, 8, "More fragments") if tree else None)
    fo = fl & 0x1FFF
    lay.add(FI.frag_offset, fo, off + 6, 2,
            label=f"{bits(fl, 0x1FFF, 16)} = Fragment Offset: {fo * 8}" if tree else None)
    lay.add(FI.ttl, ttl, off + 8, 1)
    lay.add(FI.proto, proto, off + 9, 1)


def _csum_fields(pkt: Packet, lay: Layer, off: int, csum: int, status: int, calc: int | None) -> None:
    tree = pkt.tree
    if status == CKSUM_UNVERIFIED:
        note = "validation disabled"
    elif status == CKSUM_GOOD:
        note = "correct"
    else:
        note = f"incorrect, should be 0x{calc or 0:04x}(may be caused by \"IP checksum offload\"?)"
    lay.add(FI.checksum, csum, off + 10, 2, label=f"Header Checksum: 0x{csum:04x} [{note}]" if tree else None)
    if calc is not None:
        lay.add(FI.checksum_calculated, calc, off + 10, 2, generated=True)
    lay.add(FI.checksum_status, status, off + 10, 0, generated=True)


def _addr_fields(pkt: Packet, lay: Layer, off: int, sa: bytes, da: bytes, w: tuple[bool, ...],
                 with_dst: bool = True) -> None:
    """Source/destination fields, each only if wanted (w[2:] follows _G_ADDR's order)."""
    add = lay.add
    if w[2]:
        add(FI.src, sa, off + 12, 4)
    if w[3]:
        add(FI.addr, sa, off + 12, 4)
    if w[4] or w[5]:
        s = _ntop(_AF_INET, sa)
        if w[4]:
            add(FI.src_host, s, off + 12, 4)
        if w[5]:
            add(FI.host, s, off + 12, 4)
    if not with_dst:
        return
    if w[6]:
        add(FI.dst, da, off + 16, 4)
    if w[3]:
        add(FI.addr, da, off + 16, 4)
    if w[7] or w[5]:
        d = _ntop(_AF_INET, da)
        if w[7]:
            add(FI.dst_host, d, off + 16, 4)
        if w[5]:
            add(FI.host, d, off + 16, 4)


def _partial(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, src: int, want: bool) -> None:
    """Fewer than 20 bytes: show the fields that fit, in header order, then say why it stops."""
    n = end - off
    if want:
        padded = bytes(buf[off:end]) + bytes(IPV4_MIN_HEADER - n)
        tos, tl, ident, fl, ttl, proto, csum, sa, _da = _HDR.unpack(padded)[1:]
        add = lay.add
        if n >= 2:
            ds = add(FI.dsfield, tos, off + 1, 1)
            ds.add(FI.dsfield_dscp, tos >> 2, off + 1, 1)
            ds.add(FI.dsfield_ecn, tos & 3, off + 1, 1)
        if n >= 4:
            add(FI.len, tl, off + 2, 2)
            if tl >= (buf[off] & 0x0F) * 4 and off + tl > _reported_end(pkt, buf, end, src) \
                    and IN_ERROR not in pkt.scratch:
                lay.add(FI.bogus_ip_length, None, off + 2, 2)
                pkt.expert(lay, Severity.ERROR, Group.PROTOCOL,
                           f"IPv4 total length exceeds packet length ({_reported_end(pkt, buf, end, src) - off} bytes)",
                           off + 2, 2)
        if n >= 6:
            add(FI.id, ident, off + 4, 2)
        if n >= 8:
            flags = fl >> 13
            fn = add(FI.flags, flags, off + 6, 1)
            fn.add(FI.flags_rb, bool(flags & 4), off + 6, 1)
            fn.add(FI.flags_df, bool(flags & 2), off + 6, 1)
            fn.add(FI.flags_mf, bool(flags & 1), off + 6, 1)
            add(FI.frag_offset, fl & 0x1FFF, off + 6, 2)
        if n >= 9:
            add(FI.ttl, ttl, off + 8, 1)
        if n >= 10:
            add(FI.proto, proto, off + 9, 1)
        if n >= 12:
            add(FI.checksum, csum, off + 10, 2)
            add(FI.checksum_status, CKSUM_UNVERIFIED, off + 10, 0, generated=True)
        if n >= 16:
            s = ip_str(sa)
            add(FI.src, sa, off + 12, 4)
            add(FI.addr, sa, off + 12, 4)
            add(FI.src_host, s, off + 12, 4)
            add(FI.host, s, off + 12, 4)
    if n >= 16:
        pkt.net_src = bytes(buf[off + 12 : off + 16])
        if pkt.cols:
            pkt.src = ip_str(pkt.net_src)
    _cut(pkt, lay, buf, off, end, src, IPV4_MIN_HEADER, "IPv4 header")


def _cut(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, src: int, need: int,
         what: str = "IPv4 header") -> None:
    """The header does not fit in the captured bytes: snaplen cut, or a frame too short on the wire."""
    if IN_ERROR in pkt.scratch:
        return  # an ICMP error may quote any prefix of the datagram (RFC 1812 §4.3.2.3)
    if off + need <= _reported_end(pkt, buf, end, src):
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   f"Packet size limited during capture: {what} cut short ({end - off} of {need} bytes captured)",
                   off)
        if pkt.cols:
            pkt.info = "[Packet size limited during capture]"
    else:
        pkt.malformed(lay, f"RFC 791 §3.1: {what} needs {need} bytes, the frame has {end - off}", off, end - off)


def _options(pkt: Packet, lay: Layer, buf: bytes, p: int, hend: int) -> None:
    """RFC 791 §3.1 options: single-octet EOL/NOP, else type-length-value."""
    tree = pkt.tree
    start = p
    names: list[str] = []
    parent: Node = lay.add_text("", start, hend - start) if tree else lay
    while p < hend:
        t = buf[p]
        if t == OPT_EOL:
            o = parent.add(FI.options_eol, buf[p : p + 1], p, 1,
                           label="IP Option - End of Options List (EOL)" if tree else None)
            _opt_type(pkt, o, t, p)
            break  # RFC 791: the rest of the option area is padding (Wireshark shows nothing)
        if t == OPT_NOP:
            o = parent.add(FI.options_nop, buf[p : p + 1], p, 1,
                           label="IP Option - No-Operation (NOP)" if tree else None)
            _opt_type(pkt, o, t, p)
            p += 1
            continue
        name = OPT_NAMES.get(t, f"Unknown (0x{t:02x})")
        if p + 1 >= hend:
            parent.add(FI.opt_len_invalid, None, p, 1)
            pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                       f"{name} (with option length = 1 byte; should be >= 2)", p, 1)
            break
        ln = buf[p + 1]
        if ln < 2:
            parent.add(FI.opt_len_invalid, None, p + 1, 1)
            pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                       f"{name} (with too-short option length = {ln} byte{'s' if ln != 1 else ''})", p + 1, 1)
            break
        if p + ln > hend:
            parent.add(FI.opt_len_invalid, None, p + 1, 1)
            pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                       f"{name} (option length = {ln} bytes says option goes past end of options)", p + 1, 1)
            break
        names.append(name)
        _one_option(pkt, parent, buf, t, ln, p, name)
        p += ln
    if tree and isinstance(parent, Node) and parent is not lay:
        parent.label = f"Options: ({hend - start} bytes)" + "".join(f", {n}" for n in names)


_OPT_FD = {OPT_RR: "options_record_route", OPT_TS: "options_timestamp", OPT_LSRR: "options_route",
           OPT_SSRR: "options_source_route", OPT_RA: "options_routeralert"}


def _opt_type(pkt: Packet, o: Node, t: int, p: int) -> None:
    tree = pkt.tree
    tn = o.add(FI.opt_type, t, p, 1)
    num, cls = t & 0x1F, (t >> 5) & 3
    tn.add(FI.opt_type_copy, bool(t & 0x80), p, 1, label=(
        f"{bits(t, 0x80, 8)} = Copy on fragmentation: {'Yes' if t & 0x80 else 'No'}" if tree else None))
    tn.add(FI.opt_type_class, cls, p, 1, label=(
        f"{bits(t, 0x60, 8)} = Class: {OPT_CLASSES[cls]} ({cls})" if tree else None))
    tn.add(FI.opt_type_number, num, p, 1, label=(
        f"{bits(t, 0x1F, 8)} = Number: {OPT_NUMBER_NAMES.get(num, 'Unknown')} ({num})" if tree else None))


def _one_option(pkt: Packet, parent: Node, buf: bytes, t: int, ln: int, p: int, name: str) -> None:
    tree = pkt.tree
    fdname = _OPT_FD.get(t)
    fd = getattr(FI, fdname) if fdname else None
    if fd is None:
        o = parent.add_text(f"IP Option - {name} ({ln} bytes)", p, ln) if tree else parent
    else:
        o = parent.add(fd, buf[p : p + ln], p, ln, label=f"IP Option - {name} ({ln} bytes)" if tree else None)
    _opt_type(pkt, o, t, p)
    o.add(FI.opt_len, ln, p + 1, 1)
    if t in (OPT_RR, OPT_LSRR, OPT_SSRR) and ln >= 3:
        _route_option(pkt, o, buf, t, ln, p)
    elif t == OPT_TS and ln >= 4:
        ptr, of = buf[p + 2], buf[p + 3]
        o.add(FI.opt_ptr, ptr, p + 2, 1)
        o.add(FI.opt_overflow, of >> 4, p + 3, 1,
              label=f"{bits(of, 0xF0, 8)} = Overflow: {of >> 4}" if tree else None)
        flag = of & 0x0F
        o.add(FI.opt_flag, flag, p + 3, 1, label=(
            f"{bits(of, 0x0F, 8)} = Flag: {TS_FLAGS.get(flag, 'Unknown')} (0x{flag:x})" if tree else None))
        q = p + 4
        while q + 4 <= p + ln:
            if flag in (1, 3):
                if q + 8 > p + ln:
                    break
                a = buf[q : q + 4]
                o.add(FI.opt_time_stamp_addr, a, q, 4)
                q += 4
            o.add(FI.opt_time_stamp, int.from_bytes(buf[q : q + 4], "big"), q, 4)
            q += 4
    elif t == OPT_RA and ln == 4:
        v = int.from_bytes(buf[p + 2 : p + 4], "big")
        o.add(FI.opt_ra, v, p + 2, 2)
        if tree:
            o.label = f"IP Option - Router Alert ({ln} bytes): {RA_VALUES.get(v, 'Reserved')} ({v})"


def _route_option(pkt: Packet, o: Node, buf: bytes, t: int, ln: int, p: int) -> None:
    """RFC 791 §3.1 record route / loose / strict source route: pointer, then 4-byte slots.

    Slots before the pointer were recorded; the one it points at is next.
    For a source route still in progress the last slot is the final
    destination -- shown as ``ip.dst`` there, as Wireshark does.
    """
    tree = pkt.tree
    ptr = buf[p + 2]
    o.add(FI.opt_ptr, ptr, p + 2, 1)
    if ptr < 4 or ptr & 3:
        pkt.expert(o, Severity.WARN, Group.PROTOCOL,
                   "Pointer points before first address" if ptr < 4 else "Pointer points to middle of address",
                   p + 2, 1)
        return
    for k in range(3, ln - 3, 4):
        q = p + k
        a = bytes(buf[q : q + 4])
        nxt = k + 1 == ptr
        if ptr > ln or k + 1 < ptr:
            fd_a, fd_h = FI.rec_rt, FI.rec_rt_host
        elif t != OPT_RR and k == ln - 4:
            o.add(FI.dst, a, q, 4)
            o.add(FI.addr, a, q, 4)
            txt = ip_str(a)
            o.add(FI.dst_host, txt, q, 4)
            o.add(FI.host, txt, q, 4)
            continue
        elif t == OPT_RR:
            fd_a, fd_h = FI.empty_rt, FI.empty_rt_host
        else:
            fd_a, fd_h = FI.src_rt, FI.src_rt_host
        o.add(fd_a, a, q, 4, label=f"{fd_a.name}: {ip_str(a)}{' <- (next)' if nxt else ''}" if tree else None)
        o.add(fd_h, ip_str(a), q, 4)


def route_final(buf: bytes, p: int, hend: int) -> int | None:
    """Offset of the final destination in a loose/strict source route still in progress, else None.

    Wireshark's get_dst_offset: the option must be well formed (length 3 +
    4n, pointer on a slot boundary inside the option).
    """
    while p < hend:
        t = buf[p]
        if t == OPT_EOL:
            return None
        if t == OPT_NOP:
            p += 1
            continue
        if p + 1 >= hend:
            return None
        ln = buf[p + 1]
        if ln < 2 or p + ln > hend:
            return None
        if t in (OPT_LSRR, OPT_SSRR):
            if p + 2 >= hend:
                return None
            ptr = buf[p + 2]
            if ln < 7 or ln % 4 != 3 or ptr < 4 or ptr % 4 or ptr > ln:
                return None
            return p + ln - 4
        p += ln
    return None


def _fragment(
    pkt: Packet, lay: Layer, buf: bytes, off: int, start: int, end: int, full: bool, src: int,
    sa: bytes, da: bytes, proto: int, ident: int, mf: int, foff: int, status: int, in_error: bool,
) -> bool:
    """RFC 791 §3.2 reassembly keyed on (source, destination, protocol, identification)."""
    cap = pkt.cap
    # Wireshark does not reassemble from a quoted header, a bad checksum or a cut-short capture.
    if in_error or not full or status == CKSUM_BAD or not cap.prefs.get("ip.defragment", True):
        if foff == 0:
            # Only the first part of the datagram: upper layers must not check its length.
            pkt.scratch["ip.fragmented"] = True
            return _payload(pkt, proto, buf, start, end, src)
        _fragment_info(pkt, proto, foff, ident)
        cap.call_data(pkt, buf, start, end, src)
        return True
    res = _table(pkt).add((sa, da, proto, ident), pkt.number, foff, buf[start:end], more=bool(mf),
                          ts_ns=pkt.ts_ns)
    fragment_experts(pkt, lay, res, off, "RFC 791 §3.2")
    if res.status is Status.COMPLETE and res.data is not None:
        data = res.data
        if wants(pkt, P_IP):
            show_fragments(pkt, lay, res.fragments, data, FRAG_FIELDS)
        src2 = pkt.add_source("Reassembled IPv4", data)
        return _payload(pkt, proto, data, 0, len(data), src2)
    done_in = None
    if res.status is Status.DONE and res.reassembled_in is not None:
        done_in = res.reassembled_in
        lay.add(FI.reassembled_in, done_in, off, 0, generated=True)
    elif res.status is Status.ERROR:
        lay.add(FI.fragment_error, pkt.number, off, 0, generated=True)
        pkt.expert(lay, Severity.ERROR, Group.REASSEMBLE,
                   f"Reassembly abandoned: datagram larger than {IPV4_MAX_DATAGRAM} bytes or too many fragments",
                   off)
    _fragment_info(pkt, proto, foff, ident, done_in)
    cap.call_data(pkt, buf, start, end, src)
    return True


def _fragment_info(pkt: Packet, proto: int, foff: int, ident: int, done_in: int | None = None) -> None:
    if pkt.cols:
        pkt.protocol = "IPv4"
        pkt.info = (f"Fragmented IP protocol (proto={IP_PROTO_NAMES.get(proto, 'Unknown')} {proto}, "
                    f"off={foff}, ID={ident:04x})" + (f" [Reassembled in #{done_in}]" if done_in else ""))


REGISTRY.add("ethertype", 0x0800, "ip")
REGISTRY.add("ip.proto", 4, "ip")  # IPv4-in-IPv4 (RFC 2003)
