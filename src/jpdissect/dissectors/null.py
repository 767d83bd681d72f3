"""BSD loopback encapsulations: NULL (link type 0) and OpenBSD LOOP (108).

NULL puts a 4-byte address family in front of the packet, in the byte
order of the machine that *wrote* the capture (pcap-linktype(7)); LOOP
always uses network byte order.  Like Wireshark we read the value in host
order and swap it when its upper 16 bits are set; a value above 1500 is an
Ethertype (an old Linux loopback encoding).  AF_INET is 2 everywhere;
AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS) -- and, unlike
Wireshark, 10 (Linux) too, which pcaps written by some Linux tools carry.
"""

from __future__ import annotations

import sys

from jpdissect.dissectors._netcommon import wants
from jpdissect.dissectors.eth import _short
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Layer, Packet, Protocol

NULL_HEADER = 4
IEEE_802_3_MAX_LEN = 1500

FAMILIES = {2: "IP", 7: "OSI", 10: "IPv6 (Linux)", 16: "Appletalk", 23: "Netware IPX/SPX", 24: "IPv6",
            28: "IPv6", 30: "IPv6"}

P_NULL = Protocol("null", "Null/Loopback", "NULL")
FN = P_NULL.declare(
    F("null.family", "Family", FT.UINT32, strings=FAMILIES),
    F("null.type", "Type", FT.UINT16, base=Base.HEX),
)

_HOST_ORDER = sys.byteorder


def _header(buf: bytes, off: int) -> int:
    """Wireshark's rules for a DLT_NULL header written in either byte order (packet-null.c)."""
    v = int.from_bytes(buf[off : off + 4], _HOST_ORDER)
    if v & 0xFFFF0000:
        if not v & 0xFF000000 and (v & 0x00FF0000) < 0x00060000:
            v >>= 16  # IRIX / UNICOS: a 16-bit AF_ value in the first two bytes
        else:
            v = int.from_bytes(v.to_bytes(4, "little"), "big")
    elif not v & 0xFF and (v & 0xFF00) < 0x0600:
        v = ((v & 0xFF) << 8) | ((v >> 8) & 0xFF)
    return v


def _start(pkt: Packet, off: int, end: int, src: int) -> Layer:
    lay = pkt.add_layer(P_NULL, off, min(NULL_HEADER, end - off), src)
    if pkt.cols:
        pkt.info = "Null/Loopback"
        pkt.src = pkt.dst = "N/A"
    return lay


@dissector("null", "BSD loopback (DLT_NULL): host-order address family")
def dissect_null(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = _start(pkt, off, end, src)
    if end - off < NULL_HEADER:
        _short(pkt, lay, buf, off, end, src, NULL_HEADER, "Null/Loopback header")
        return True
    v = _header(buf, off)
    start = off + NULL_HEADER
    if v > IEEE_802_3_MAX_LEN:
        if wants(pkt, P_NULL):
            lay.add(FN.type, v & 0xFFFF, off, 4)
        if not pkt.cap.call_table("ethertype", v & 0xFFFF, pkt, buf, start, end, src):
            pkt.cap.call_data(pkt, buf, start, end, src)
        return True
    return _family(pkt, lay, v, buf, off, end, src)


@dissector("loop", "OpenBSD loopback (DLT_LOOP): network-order address family")
def dissect_loop(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = _start(pkt, off, end, src)
    if end - off < NULL_HEADER:
        _short(pkt, lay, buf, off, end, src, NULL_HEADER, "Loopback header")
        return True
    v = int.from_bytes(buf[off : off + 4], "big")
    return _family(pkt, lay, v, buf, off, end, src)


def _family(pkt: Packet, lay: Layer, fam: int, buf: bytes, off: int, end: int, src: int) -> bool:
    if wants(pkt, P_NULL):
        lay.add(FN.family, fam, off, 4)
    if not pkt.cap.call_table("null.type", fam, pkt, buf, off + NULL_HEADER, end, src):
        pkt.cap.call_data(pkt, buf, off + NULL_HEADER, end, src)
    return True


REGISTRY.add("wtap_encap", 0, "null")
REGISTRY.add("wtap_encap", 108, "loop")
REGISTRY.add("null.type", 2, "ip")
for _fam in (10, 24, 28, 30):
    REGISTRY.add("null.type", _fam, "ipv6")
