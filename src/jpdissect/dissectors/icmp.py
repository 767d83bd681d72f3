"""ICMP for IPv4 (RFC 792): type/code/checksum, echo matching, and the quoted packet of errors.

For the error messages (destination unreachable, source quench, redirect,
time exceeded, parameter problem) the quoted IP header and the first bytes
of its payload are dissected by the IP dissector in "quoted" mode: its
fields appear (``ip.src``, ``udp.srcport`` ... get a second occurrence,
exactly as in tshark) but it starts no reassembly and leaves the outer
packet's addresses, ports and columns alone.  A join proxy forwards such
errors to the pledge (draft-ietf-anima-constrained-join-proxy), and the
quoted UDP ports are how one tells which pledge they belong to.
"""

from __future__ import annotations

import struct

from jpdissect.dissectors._netcommon import (
    CKSUM_BAD,
    CKSUM_GOOD,
    CKSUM_STATUS,
    CKSUM_UNVERIFIED,
    IN_ERROR,
    dissect_quoted,
    inet_checksum,
    match_echo,
    wants,
)
from jpdissect.dissectors.eth import _reported_end
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Group, Layer, Packet, Protocol, Severity

ICMP_HEADER = 8
ECHO_STATE = "icmp.echo"

ECHO_REPLY, UNREACH, SOURCE_QUENCH, REDIRECT, ECHO = 0, 3, 4, 5, 8
TIME_EXCEEDED, PARAM_PROBLEM, TS_REQ, TS_REPLY, MASK_REQ, MASK_REPLY = 11, 12, 13, 14, 17, 18
ERROR_TYPES = frozenset({UNREACH, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAM_PROBLEM})

TYPES = {
    0: "Echo (ping) reply", 3: "Destination unreachable", 4: "Source quench (flow control)",
    5: "Redirect", 8: "Echo (ping) request", 9: "Router advertisement", 10: "Router solicitation",
    11: "Time-to-live exceeded", 12: "Parameter problem", 13: "Timestamp request", 14: "Timestamp reply",
    15: "Information request", 16: "Information reply", 17: "Address mask request",
    18: "Address mask reply", 42: "Extended Echo request", 43: "Extended Echo reply",
}
CODES = {
    UNREACH: {0: "Network unreachable", 1: "Host unreachable", 2: "Protocol unreachable",
              3: "Port unreachable", 4: "Fragmentation needed", 5: "Source route failed",
              6: "Destination network unknown", 7: "Destination host unknown", 8: "Source host isolated",
              9: "Network administratively prohibited", 10: "Host administratively prohibited",
              11: "Network unreachable for TOS", 12: "Host unreachable for TOS",
              13: "Communication administratively filtered", 14: "Host precedence violation",
              15: "Precedence cutoff in effect"},
    REDIRECT: {0: "Redirect for network", 1: "Redirect for host", 2: "Redirect for TOS and network",
               3: "Redirect for TOS and host"},
    TIME_EXCEEDED: {0: "Time to live exceeded in transit", 1: "Fragment reassembly time exceeded"},
    PARAM_PROBLEM: {0: "Pointer indicates the error", 1: "Required option missing", 2: "Bad length"},
}

P_ICMP = Protocol("icmp", "Internet Control Message Protocol", "ICMP")
FC = P_ICMP.declare(
    F("icmp.type", "Type", FT.UINT8, strings=TYPES),
    F("icmp.code", "Code", FT.UINT8),
    F("icmp.checksum", "Checksum", FT.UINT16, base=Base.HEX),
    F("icmp.checksum.status", "Checksum Status", FT.UINT8, strings=CKSUM_STATUS),
    F("icmp.unused", "Unused", FT.BYTES),
    F("icmp.ident", "Identifier (BE)", FT.UINT16, base=Base.DEC_HEX),
    F("icmp.ident_le", "Identifier (LE)", FT.UINT16, base=Base.DEC_HEX),
    F("icmp.seq", "Sequence Number (BE)", FT.UINT16, base=Base.DEC_HEX),
    F("icmp.seq_le", "Sequence Number (LE)", FT.UINT16, base=Base.DEC_HEX),
    F("icmp.mtu", "MTU of next hop", FT.UINT16),
    F("icmp.pointer", "Pointer", FT.UINT32),
    F("icmp.redir_gw", "Gateway Address", FT.IPv4),
    F("icmp.originate_timestamp", "Originate Timestamp", FT.UINT32),
    F("icmp.receive_timestamp", "Receive Timestamp", FT.UINT32),
    F("icmp.transmit_timestamp", "Transmit Timestamp", FT.UINT32),
    F("icmp.address_mask", "Address Mask", FT.IPv4),
    F("icmp.length", "Length", FT.UINT8),
    F("icmp.length.original_datagram", "Length of original datagram", FT.UINT8, unit="bytes"),
    F("icmp.resp_in", "Response frame", FT.FRAMENUM),
    F("icmp.resp_to", "Request frame", FT.FRAMENUM),
    F("icmp.resptime", "Response time", FT.DOUBLE, unit="ms"),
    F("icmp.checksum_bad", "Bad checksum", FT.NONE),
)


def type_code_names(t: int, c: int) -> tuple[str, str]:
    return TYPES.get(t, "Unknown ICMP (obsolete or malformed?)"), CODES.get(t, {}).get(c, "")


@dissector("icmp", "Internet Control Message Protocol")
def dissect_icmp(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    n = end - off
    lay = pkt.add_layer(P_ICMP, off, max(n, 0), src)
    in_error = IN_ERROR in pkt.scratch
    if n < 4:
        if not in_error:
            pkt.malformed(lay, f"RFC 792: ICMP header needs 4 bytes, only {n} present", off, n)
        return True
    t, c, csum = struct.unpack_from("!BBH", buf, off)
    tname, cname = type_code_names(t, c)
    want = wants(pkt, P_ICMP)
    tree = pkt.tree
    if tree:
        lay.label = "Internet Control Message Protocol"
    rep = _reported_end(pkt, buf, end, src)
    status = CKSUM_UNVERIFIED
    if not in_error and rep == end and not pkt.scratch.get("ip.fragmented"):
        status = CKSUM_GOOD if inet_checksum(buf[off:end]) == 0 else CKSUM_BAD
    if want:
        lay.add(FC.type, t, off, 1)
        lay.add(FC.code, c, off + 1, 1, label=f"Code: {c} ({cname})" if tree and cname else None)
        note = {CKSUM_GOOD: "correct", CKSUM_BAD: "incorrect", CKSUM_UNVERIFIED: "unverified"}[status]
        cn = lay.add(FC.checksum, csum, off + 2, 2, label=f"Checksum: 0x{csum:04x} [{note}]" if tree else None)
        cn.add(FC.checksum_status, status, off + 2, 2, generated=True)
    if status == CKSUM_BAD:
        lay.add(FC.checksum_bad, None, off + 2, 2)
        pkt.expert(lay, Severity.WARN, Group.CHECKSUM, "Bad checksum", off + 2, 2)
    info = f"{tname:<20}" + (f" ({cname})" if cname else "")
    if n < ICMP_HEADER:
        if pkt.cols and not in_error:
            pkt.info = info
        if not in_error:
            _cut(pkt, lay, buf, off, end, src, rep)
        return True
    body = off + ICMP_HEADER
    if t in (ECHO, ECHO_REPLY):
        ident, seq = struct.unpack_from("!HH", buf, off + 4)
        if want:
            lay.add(FC.ident, ident, off + 4, 2)
            lay.add(FC.ident_le, ((ident & 0xFF) << 8) | (ident >> 8), off + 4, 2)
            lay.add(FC.seq, seq, off + 6, 2)
            lay.add(FC.seq_le, ((seq & 0xFF) << 8) | (seq >> 8), off + 6, 2)
        info += f" id=0x{ident:04x}, seq={seq}/{((seq & 0xFF) << 8) | (seq >> 8)}"
        ttl = pkt.scratch.get("ip.ttl")
        if ttl is not None:
            info += f", ttl={ttl}"
        if not in_error:
            info += match_echo(pkt, lay, ECHO_STATE, FC.resp_to, FC.resptime, t == ECHO, ident, seq, want)
        if pkt.cols and not in_error:
            pkt.info = info
        if body < end:
            pkt.cap.call_data(pkt, buf, body, end, src)
        return True
    if pkt.cols and not in_error:
        pkt.info = info
    if t in ERROR_TYPES:
        if want:
            _error_fields(lay, buf, off, t, c)
        if body < end:
            dissect_quoted(pkt, "ip", buf, body, end, src)
        return True
    if want:
        if t in (TS_REQ, TS_REPLY) and n >= 20:
            ident, seq = struct.unpack_from("!HH", buf, off + 4)
            lay.add(FC.ident, ident, off + 4, 2)
            lay.add(FC.seq, seq, off + 6, 2)
            for i, fd in enumerate((FC.originate_timestamp, FC.receive_timestamp, FC.transmit_timestamp)):
                lay.add(fd, int.from_bytes(buf[off + 8 + 4 * i : off + 12 + 4 * i], "big"), off + 8 + 4 * i, 4)
            body = off + 20
        elif t in (MASK_REQ, MASK_REPLY) and n >= 12:
            ident, seq = struct.unpack_from("!HH", buf, off + 4)
            lay.add(FC.ident, ident, off + 4, 2)
            lay.add(FC.seq, seq, off + 6, 2)
            lay.add(FC.address_mask, bytes(buf[off + 8 : off + 12]), off + 8, 4)
            body = off + 12
    if body < end:
        pkt.cap.call_data(pkt, buf, body, end, src)
    return True


def _error_fields(lay: Layer, buf: bytes, off: int, t: int, c: int) -> None:
    """The four bytes after the checksum of an error message (RFC 792, RFC 1191, RFC 4884)."""
    if t == REDIRECT:
        lay.add(FC.redir_gw, bytes(buf[off + 4 : off + 8]), off + 4, 4)
    elif t == PARAM_PROBLEM:
        lay.add(FC.pointer, buf[off + 4], off + 4, 1)
        lay.add(FC.unused, bytes(buf[off + 5 : off + 8]), off + 5, 3)
    elif t == UNREACH and c == 4:
        lay.add(FC.unused, bytes(buf[off + 4 : off + 6]), off + 4, 2)
        lay.add(FC.mtu, int.from_bytes(buf[off + 6 : off + 8], "big"), off + 6, 2)
    elif buf[off + 5] and t in (UNREACH, TIME_EXCEEDED):
        # RFC 4884 §4.1: a non-zero length (in 32-bit words) announces extensions.
        lay.add(FC.unused, bytes(buf[off + 4 : off + 5]), off + 4, 1)
        lay.add(FC.length, buf[off + 5], off + 5, 1)
        lay.add(FC.length_original_datagram, buf[off + 5] * 4, off + 5, 1, generated=True)
        lay.add(FC.unused, bytes(buf[off + 6 : off + 8]), off + 6, 2)
    else:
        lay.add(FC.unused, bytes(buf[off + 4 : off + 8]), off + 4, 4)


def _cut(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, src: int, rep: int) -> None:
    if rep > end:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED, "Packet size limited during capture: ICMP cut short", off)
    else:
        pkt.malformed(lay, f"RFC 792: ICMP header needs 8 bytes, only {end - off} present", off, end - off)


REGISTRY.add("ip.proto", 1, "icmp")
