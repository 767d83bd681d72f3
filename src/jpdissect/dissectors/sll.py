"""Linux cooked-mode capture v1 (link type 113) and v2 (276): what ``tcpdump -i any`` writes.

v1 header (16 bytes): packet type(2) ARPHRD type(2) address length(2)
address(8) protocol(2).  v2 (20 bytes): protocol(2) reserved(2) ifindex(4)
ARPHRD type(2) packet type(1) address length(1) address(8).  (libpcap's
pcap-linktype(7) and sll.h.)  A protocol value above 1536 is an Ethertype;
below, a Linux protocol number (ETH_P_802_2 and friends), shown as
``sll.ltype``.  Field names and order are Wireshark's.
"""

from __future__ import annotations

import struct

from jpdissect.dissectors._netcommon import ETHERTYPE_NAMES, ether_str, ip_str, wants
from jpdissect.dissectors.eth import _short, ethertype
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Layer, Packet, Protocol

SLL_HEADER = 16
SLL2_HEADER = 20
SLL_ADDRLEN = 8
ETHERTYPE_MIN = 1536   # "yes, 1536 - that's how Linux does it" (libpcap)
ARPHRD_IPGRE = 778
ARPHRD_NETLINK = 824

PACKET_TYPES = {0: "Unicast to us", 1: "Broadcast", 2: "Multicast", 3: "Unicast to another host",
                4: "Sent by us"}
# The ARPHRD_ values (linux/if_arp.h) most likely to appear in cooked captures.
ARPHRD_NAMES = {
    1: "Ethernet", 6: "IEEE 802", 24: "IEEE 1394", 32: "InfiniBand", 256: "SLIP", 512: "PPP",
    768: "IPIP tunnel", 769: "IPv6-in-IPv4", 772: "Loopback", 776: "IPv6-in-IPv4", 778: "GRE over IP",
    801: "IEEE 802.11", 803: "IEEE 802.11 + radiotap header", 804: "IEEE 802.15.4",
    805: "IEEE 802.15.4 PHY", 823: "IPv6 over IEEE 802.15.4 (6LoWPAN)", 824: "Netlink",
    65534: "Void Type, nothing is known", 65535: "Void Type, nothing is known",
}
LINUX_PROTOCOLS = {0x0001: "Raw 802.3", 0x0002: "Ethernet", 0x0004: "802.2 LLC", 0x0007: "PPP (HDLC)",
                   0x000C: "CAN", 0x000D: "CAN FD", 0x0017: "IrDA LAP", 0x00F5: "ISI",
                   0x00F6: "IEEE 802.15.4"}

P_SLL = Protocol("sll", "Linux cooked-mode capture", "SLL")
FS = P_SLL.declare(
    F("sll.pkttype", "Packet type", FT.UINT16, strings=PACKET_TYPES),
    F("sll.hatype", "Link-layer address type", FT.UINT16, strings=ARPHRD_NAMES),
    F("sll.halen", "Link-layer address length", FT.UINT16),
    F("sll.src.eth", "Source", FT.ETHER, "Source link-layer address"),
    F("sll.src.ipv4", "Source", FT.IPv4, "Source link-layer address"),
    F("sll.src.other", "Source", FT.BYTES, "Source link-layer address"),
    F("sll.unused", "Unused", FT.BYTES, "Unused bytes"),
    F("sll.ltype", "Protocol", FT.UINT16, "Linux protocol type", base=Base.HEX, strings=LINUX_PROTOCOLS),
    F("sll.gretype", "Protocol", FT.UINT16, "GRE protocol type", base=Base.HEX),
    F("sll.etype", "Protocol", FT.UINT16, "Ethernet protocol type", base=Base.HEX, strings=ETHERTYPE_NAMES),
    F("sll.trailer", "Trailer", FT.BYTES),
    F("sll.ifindex", "Interface index", FT.UINT32),
)

_V1 = struct.Struct("!HHH8sH")
_V2 = struct.Struct("!HHIHBB8s")


def _address(pkt: Packet, lay: Layer, buf: bytes, off: int, halen: int, want: bool) -> None:
    """The source address: 6 bytes is Ethernet, 4 is IPv4 (tunnels), else raw bytes (Wireshark's rule)."""
    addr = buf[off : off + min(halen, SLL_ADDRLEN)]
    if halen == 6:
        pkt.dl_src = addr
        if pkt.cols:
            pkt.src = ether_str(addr)
        if want:
            lay.add(FS.src_eth, addr, off, 6)
    elif halen == 4:
        pkt.dl_src = addr
        if pkt.cols:
            pkt.src = ip_str(addr)
        if want:
            lay.add(FS.src_ipv4, addr, off, 4)
    elif halen and want:
        lay.add(FS.src_other, addr, off, len(addr))
    if want and halen < SLL_ADDRLEN:
        lay.add(FS.unused, buf[off + halen : off + SLL_ADDRLEN], off + halen, SLL_ADDRLEN - halen)


def _payload(pkt: Packet, lay: Layer, buf: bytes, proto_off: int, start: int, end: int, src: int,
             hatype: int, protocol: int, want: bool) -> None:
    if protocol <= ETHERTYPE_MIN:
        if want:
            lay.add(FS.ltype, protocol, proto_off, 2)
        if not (pkt.cap.call_table("sll.hatype", hatype, pkt, buf, start, end, src)
                or pkt.cap.call_table("sll.ltype", protocol, pkt, buf, start, end, src)):
            pkt.cap.call_data(pkt, buf, start, end, src)
        return
    if hatype == ARPHRD_IPGRE:
        if want:
            lay.add(FS.gretype, protocol, proto_off, 2)
        pkt.cap.call_data(pkt, buf, start, end, src)
        return
    if want:
        lay.add(FS.etype, protocol, proto_off, 2)
    ethertype(pkt, protocol, buf, start, end, src, lay, FS.trailer, start)


@dissector("sll", "Linux cooked-mode capture v1")
def dissect_sll(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P_SLL, off, min(SLL_HEADER, end - off), src)
    if end - off < SLL_HEADER:
        _short(pkt, lay, buf, off, end, src, SLL_HEADER, "Linux cooked v1 header")
        return True
    pkttype, hatype, halen, _addr, protocol = _V1.unpack_from(buf, off)
    if pkt.cols:
        pkt.info = PACKET_TYPES.get(pkttype, f"Unknown ({pkttype})")
    want = wants(pkt, P_SLL)
    if want:
        if pkt.tree:
            lay.label = "Linux cooked capture v1"
        lay.add(FS.pkttype, pkttype, off, 2)
        lay.add(FS.hatype, hatype, off + 2, 2)
        lay.add(FS.halen, halen, off + 4, 2)
    _address(pkt, lay, buf, off + 6, halen, want)
    _payload(pkt, lay, buf, off + 14, off + SLL_HEADER, end, src, hatype, protocol, want)
    return True


@dissector("sll2", "Linux cooked-mode capture v2")
def dissect_sll2(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P_SLL, off, min(SLL2_HEADER, end - off), src)
    if end - off < SLL2_HEADER:
        _short(pkt, lay, buf, off, end, src, SLL2_HEADER, "Linux cooked v2 header")
        return True
    protocol, _res, ifindex, hatype, pkttype, halen, _addr = _V2.unpack_from(buf, off)
    if pkt.cols:
        pkt.info = PACKET_TYPES.get(pkttype, f"Unknown ({pkttype})")
    want = wants(pkt, P_SLL)
    # Wireshark's order: protocol, ifindex, hatype, pkttype, halen, address.
    if want:
        if pkt.tree:
            lay.label = "Linux cooked capture v2"
        _add_protocol_first(lay, protocol, hatype, off)
        lay.add(FS.ifindex, ifindex, off + 4, 4)
        lay.add(FS.hatype, hatype, off + 8, 2)
        lay.add(FS.pkttype, pkttype, off + 10, 1)
        lay.add(FS.halen, halen, off + 11, 1)
    _address(pkt, lay, buf, off + 12, halen, want)
    _payload(pkt, lay, buf, off, off + SLL2_HEADER, end, src, hatype, protocol, False)
    return True


def _add_protocol_first(lay: Layer, protocol: int, hatype: int, off: int) -> None:
    if protocol <= ETHERTYPE_MIN:
        lay.add(FS.ltype, protocol, off, 2)
    elif hatype == ARPHRD_IPGRE:
        lay.add(FS.gretype, protocol, off, 2)
    else:
        lay.add(FS.etype, protocol, off, 2)


REGISTRY.add("wtap_encap", 113, "sll")
REGISTRY.add("wtap_encap", 276, "sll2")
