"""Ethernet II / IEEE 802.3 (link type 1), 802.1Q VLAN and 802.1ad QinQ tags, Ethertype dispatch.

The Ethertype step is shared with Linux cooked captures: like Wireshark's
``ethertype`` dissector it shows the type, hands the payload to the
``ethertype`` table, and afterwards shows what the payload did not claim as
Ethernet padding (up to the 60-byte minimum frame, IEEE 802.3 §3.2.8) and a
trailer.  It also appears as the pseudo-protocol ``ethertype`` in
``frame.protocols`` (``eth:ethertype:ip:udp``), as tshark prints it.
"""

from __future__ import annotations

import struct

from jpdissect.dissectors._netcommon import ETHERTYPE_NAMES, bits, ether_str, wants
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, FieldDef, Group, Layer, Node, Packet, Protocol, Severity

ETH_HEADER = 14
VLAN_HEADER = 4
ETH_MIN_FRAME = 60          # IEEE 802.3 minimum frame without FCS: shorter frames are padded
ETH_MAX_LEN = 1500          # IEEE 802.3 length field maximum; 1536 and up is an Ethertype
ETHERTYPE_MIN = 1536
MAX_VLAN_DEPTH = 8          # tag stacks deeper than this are reported, not followed (Wireshark: same idea)

P_ETH = Protocol("eth", "Ethernet II", "Ethernet")
FE = P_ETH.declare(
    F("eth.dst", "Destination", FT.ETHER, "Destination Hardware Address"),
    F("eth.dst.oui", "Destination OUI", FT.UINT24, "Destination Organizationally Unique Identifier"),
    F("eth.dst.lg", "LG bit", FT.BOOLEAN, "Locally administered (1) or globally unique (0) address"),
    F("eth.dst.ig", "IG bit", FT.BOOLEAN, "Group (1) or individual (0) address"),
    F("eth.src", "Source", FT.ETHER, "Source Hardware Address"),
    F("eth.src.oui", "Source OUI", FT.UINT24, "Source Organizationally Unique Identifier"),
    F("eth.src.lg", "LG bit", FT.BOOLEAN, "Locally administered (1) or globally unique (0) address"),
    F("eth.src.ig", "IG bit", FT.BOOLEAN, "Group (1) or individual (0) address"),
    F("eth.addr", "Address", FT.ETHER, "Source or Destination Hardware Address"),
    F("eth.addr.oui", "Address OUI", FT.UINT24, "Address Organizationally Unique Identifier"),
    F("eth.lg", "LG bit", FT.BOOLEAN, "Locally administered (1) or globally unique (0) address"),
    F("eth.ig", "IG bit", FT.BOOLEAN, "Group (1) or individual (0) address"),
    F("eth.type", "Type", FT.UINT16, base=Base.HEX, strings=ETHERTYPE_NAMES),
    F("eth.len", "Length", FT.UINT16, "IEEE 802.3 length field"),
    F("eth.invalid_lentype", "Invalid length/type", FT.UINT16, base=Base.HEX_DEC),
    F("eth.padding", "Padding", FT.BYTES, "Ethernet Padding"),
    F("eth.trailer", "Trailer", FT.BYTES, "Ethernet Trailer or Checksum"),
)

# The pseudo-protocol tshark lists in frame.protocols between a link layer and its payload.
P_ETHERTYPE = Protocol("ethertype", "Ethertype", "Ethertype")

VLAN_PRIORITIES = {
    0: "Best Effort (default)", 1: "Background", 2: "Excellent Effort", 3: "Critical Applications",
    4: "Video, < 100ms latency and jitter", 5: "Voice, < 10ms latency and jitter",
    6: "Internetwork Control", 7: "Network Control",
}

P_VLAN = Protocol("vlan", "802.1Q Virtual LAN", "VLAN")
FV = P_VLAN.declare(
    F("vlan.priority", "Priority", FT.UINT16, "IEEE 802.1Q PCP", strings=VLAN_PRIORITIES, bitmask=0xE000),
    F("vlan.dei", "DEI", FT.BOOLEAN, "Drop Eligible Indicator", bitmask=0x1000),
    F("vlan.id", "ID", FT.UINT16, "VLAN ID", bitmask=0x0FFF),
    F("vlan.etype", "Type", FT.UINT16, "Ethertype", base=Base.HEX, strings=ETHERTYPE_NAMES),
    F("vlan.len", "Length", FT.UINT16),
    F("vlan.trailer", "Trailer", FT.BYTES, "VLAN Trailer"),
    F("vlan.too_many_tags", "Too many nested VLAN tags", FT.NONE),
)

P_QINQ = Protocol("ieee8021ad", "IEEE 802.1ad", "IEEE 802.1ad")
FQ = P_QINQ.declare(
    F("ieee8021ad.priority", "Priority", FT.UINT16, bitmask=0xE000),
    F("ieee8021ad.dei", "DEI", FT.UINT16, "Drop Eligibility", bitmask=0x1000),
    F("ieee8021ad.id", "ID", FT.UINT16, "Vlan ID", bitmask=0x0FFF),
    # Wireshark shows the S-tag's inner type and trailer with its 802.1ah fields.
    F("ieee8021ah.etype", "Type", FT.UINT16, base=Base.HEX, strings=ETHERTYPE_NAMES),
    F("ieee8021ah.trailer", "Trailer", FT.BYTES),
)

_H = struct.Struct("!H")
_ETH = struct.Struct("!6s6sH")


def _reported_end(pkt: Packet, buf: bytes, end: int, src: int) -> int:
    """Where the bytes *on the wire* end: beyond ``end`` when the capture was cut short (snaplen)."""
    if src == 0 and end == len(buf):
        return end + max(0, pkt.wirelen - pkt.caplen)
    return end


def payload_end(etype: int, buf: bytes, off: int, end: int) -> int:
    """How much of ``buf[off:end]`` the network layer will claim (the rest is padding/trailer).

    IPv4: Total Length (RFC 791 §3.1) when it is at least the header length
    (Wireshark's set_actual_length; 0 means TSO, take everything).  IPv6:
    40 + Payload Length (RFC 8200 §3) unless it is 0 (jumbogram/TSO).
    """
    if etype == 0x0800:
        if end - off >= 4 and buf[off] >> 4 == 4:
            tl = (buf[off + 2] << 8) | buf[off + 3]
            if tl >= (buf[off] & 0x0F) * 4 >= 20 and off + tl < end:
                return off + tl
    elif etype == 0x86DD:
        if end - off >= 6 and buf[off] >> 4 == 6:
            plen = (buf[off + 4] << 8) | buf[off + 5]
            if plen and off + 40 + plen < end:
                return off + 40 + plen
    return end


def ethertype(
    pkt: Packet, etype: int, buf: bytes, off: int, end: int, src: int,
    parent: Node, trailer_fd: FieldDef, frame_start: int = 0,
) -> None:
    """Dispatch ``buf[off:end]`` on ``etype``; then show padding and trailer in ``parent``.

    ``frame_start`` is where the link-layer frame begins in ``buf`` (for the
    60-byte minimum).  Unknown types go to data with the Ethertype as the
    Protocol column and its name as Info, as tshark does.
    """
    cap = pkt.cap
    if not cap.lean or P_ETHERTYPE.primed:
        prev = pkt.protocol
        pkt.add_layer(P_ETHERTYPE, off, 0, src)
        pkt.protocol = prev
    pend = payload_end(etype, buf, off, end)
    if not cap.call_table("ethertype", etype, pkt, buf, off, pend, src):
        cap.call_data(pkt, buf, off, pend, src)
        if pkt.cols:
            pkt.protocol = f"0x{etype:04x}"
            name = ETHERTYPE_NAMES.get(etype)
            if name is not None:
                pkt.info = name
    if pend < end and (pkt.tree or FE.padding.primed or trailer_fd.primed):
        _trailer(pkt, buf, pend, end, src, parent, trailer_fd, frame_start)


def _trailer(
    pkt: Packet, buf: bytes, pend: int, end: int, src: int, parent: Node, trailer_fd: FieldDef,
    frame_start: int,
) -> None:
    """Wireshark's add_ethernet_trailer with no FCS assumed: zero padding up to 60 bytes, then trailer."""
    wire_len = pkt.wirelen if src == 0 else end - frame_start
    trailer_reported = _reported_end(pkt, buf, end, src) - pend
    pad = 0
    if wire_len >= ETH_MIN_FRAME and wire_len - trailer_reported < ETH_MIN_FRAME:
        pad = min(ETH_MIN_FRAME - (wire_len - trailer_reported), end - pend)
        if any(buf[pend : pend + pad]):
            pad = 0  # Wireshark's default: padding must be zeros
        if pad:
            parent.add(FE.padding, buf[pend : pend + pad], pend, pad)
    if pend + pad < end:
        parent.add(trailer_fd, buf[pend + pad : end], pend + pad, end - pend - pad)


def _addr_fields(lay: Node, mac: bytes, off: int, which: FieldDef, oui_fd: FieldDef,
                 lg_fd: FieldDef, ig_fd: FieldDef, tree: bool) -> None:
    b0 = mac[0]
    oui = (b0 << 16) | (mac[1] << 8) | mac[2]
    lg, ig = bool(b0 & 2), bool(b0 & 1)
    n = lay.add(which, mac, off, 6)
    if tree:
        n.label = f"{which.name}: {mac.hex(':')}"
    n.add(oui_fd, oui, off, 3, label=f"{oui_fd.name}: {mac[:3].hex(':')}" if tree else None)
    a = n.add(FE.addr, mac, off, 6)
    a.add(FE.addr_oui, oui, off, 3)
    lgl = igl = None
    if tree:
        lgl = (f"{bits(b0 << 16, 0x020000, 24)} = LG bit: " + (
            "Locally administered address (this is NOT the factory default)" if lg
            else "Globally unique address (factory default)"))
        igl = f"{bits(b0 << 16, 0x010000, 24)} = IG bit: " + (
            "Group address (multicast/broadcast)" if ig else "Individual address (unicast)")
    n.add(lg_fd, lg, off, 3, label=lgl)
    n.add(FE.lg, lg, off, 3, label=lgl)
    n.add(ig_fd, ig, off, 3, label=igl)
    n.add(FE.ig, ig, off, 3, label=igl)


@dissector("eth", "Ethernet II / IEEE 802.3 (no FCS)")
def dissect_eth(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    if end - off < ETH_HEADER:
        lay = pkt.add_layer(P_ETH, off, end - off, src)
        if pkt.cols:
            pkt.info = "Ethernet II"
        _short(pkt, lay, buf, off, end, src, ETH_HEADER, "Ethernet header")
        return True
    dst, srcmac, etype = _ETH.unpack_from(buf, off)
    lay = pkt.add_layer(P_ETH, off, ETH_HEADER, src)
    pkt.dl_src, pkt.dl_dst = srcmac, dst
    if pkt.cols:
        pkt.info = "Ethernet II"
        pkt.src, pkt.dst = ether_str(srcmac), ether_str(dst)
    want = pkt.tree or P_ETH.primed  # wants(pkt, P_ETH), in line: every Ethernet frame asks
    if want:
        tree = pkt.tree
        if tree:
            lay.label = f"Ethernet II, Src: {srcmac.hex(':')}, Dst: {dst.hex(':')}"
        _addr_fields(lay, dst, off, FE.dst, FE.dst_oui, FE.dst_lg, FE.dst_ig, tree)
        _addr_fields(lay, srcmac, off + 6, FE.src, FE.src_oui, FE.src_lg, FE.src_ig, tree)
    if etype <= ETH_MAX_LEN:
        # IEEE 802.3 length field: an LLC frame follows (not decoded here).
        if want:
            lay.add(FE.len, etype, off + 12, 2)
        pend = min(end, off + ETH_HEADER + etype)
        if off + ETH_HEADER + etype > _reported_end(pkt, buf, end, src):
            pkt.expert(lay, Severity.ERROR, Group.MALFORMED,
                       f"IEEE 802.3 §3.2.6: length field value {etype} goes past the end of the frame",
                       off + 12, 2)
        pkt.cap.call_data(pkt, buf, off + ETH_HEADER, pend, src)
        if pend < end and (pkt.tree or FE.trailer.primed or FE.padding.primed):
            _trailer(pkt, buf, pend, end, src, lay, FE.trailer, off)
        return True
    if etype < ETHERTYPE_MIN:
        if want:
            lay.add(FE.invalid_lentype, etype, off + 12, 2)
        pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                   f"Invalid length/type: 0x{etype:04x} ({etype}) is neither a length nor an Ethertype",
                   off + 12, 2)
        pkt.cap.call_data(pkt, buf, off + ETH_HEADER, end, src)
        return True
    if want:
        lay.add(FE.type, etype, off + 12, 2)
    ethertype(pkt, etype, buf, off + ETH_HEADER, end, src, lay, FE.trailer, off)
    return True


def _short(pkt: Packet, lay: Layer, buf: bytes, off: int, end: int, src: int, need: int, what: str) -> None:
    """A header that does not fit: a snaplen cut (tshark: "Packet size limited") or a malformed frame."""
    if off + need <= _reported_end(pkt, buf, end, src):
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   f"Packet size limited during capture: {what} cut short ({end - off} of {need} bytes)", off)
        if pkt.cols:
            pkt.info = "[Packet size limited during capture]"
    else:
        pkt.malformed(lay, f"{what} needs {need} bytes, only {end - off} present", off, end - off)


def _tag(pkt: Packet, buf: bytes, off: int, end: int, src: int, proto: Protocol) -> tuple[Layer, int, int] | None:
    """Common part of 802.1Q and 802.1ad tags; returns (layer, tci, inner ethertype)."""
    if end - off < VLAN_HEADER:
        lay = pkt.add_layer(proto, off, end - off, src)
        if end - off >= 2:
            # The TCI is there; only the inner Ethertype is missing (tshark shows the TCI too).
            _tci_fields(pkt, lay, proto, _H.unpack_from(buf, off)[0], off)
        _short(pkt, lay, buf, off, end, src, VLAN_HEADER, f"{proto.name} tag")
        return None
    tci, inner = struct.unpack_from("!HH", buf, off)
    lay = pkt.add_layer(proto, off, VLAN_HEADER, src)
    depth = pkt.scratch.get("vlan.depth", 0) + 1
    pkt.scratch["vlan.depth"] = depth
    if depth > MAX_VLAN_DEPTH:
        lay.add(FV.too_many_tags, None, off, VLAN_HEADER)
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   f"Too many nested VLAN tags (more than {MAX_VLAN_DEPTH}); not decoding further", off)
        pkt.cap.call_data(pkt, buf, off + VLAN_HEADER, end, src)
        return None
    return lay, tci, inner


@dissector("vlan", "IEEE 802.1Q VLAN tag")
def dissect_vlan(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """IEEE 802.1Q-2018 §9.6: TCI = PCP(3) DEI(1) VID(12), then the inner Ethertype."""
    r = _tag(pkt, buf, off, end, src, P_VLAN)
    if r is None:
        return True
    lay, tci, inner = r
    _tci_fields(pkt, lay, P_VLAN, tci, off)
    _tag_payload(pkt, buf, off, end, src, lay, inner, FV.etype, FV.len, FV.trailer)
    return True


@dissector("ieee8021ad", "IEEE 802.1ad S-tag (QinQ)")
def dissect_qinq(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """IEEE 802.1Q-2018 §9.5 S-tag (TPID 0x88a8), usually followed by a C-tag (0x8100)."""
    r = _tag(pkt, buf, off, end, src, P_QINQ)
    if r is None:
        return True
    lay, tci, inner = r
    _tci_fields(pkt, lay, P_QINQ, tci, off)
    _tag_payload(pkt, buf, off, end, src, lay, inner, FQ.ieee8021ah_etype, FV.len, FQ.ieee8021ah_trailer)
    return True


def _tci_fields(pkt: Packet, lay: Layer, proto: Protocol, tci: int, off: int) -> None:
    """The Tag Control Information: PCP(3) DEI(1) VID(12) (IEEE 802.1Q-2018 §9.6)."""
    pcp, dei, vid = tci >> 13, (tci >> 12) & 1, tci & 0x0FFF
    tree = pkt.tree
    if proto is P_VLAN:
        if pkt.cols:
            pkt.info = f"PRI: {pcp}  DEI: {dei}  ID: {vid}"
        if wants(pkt, P_VLAN):
            if tree:
                lay.label = f"802.1Q Virtual LAN, PRI: {pcp}, DEI: {dei}, ID: {vid}"
            lay.add(FV.priority, pcp, off, 2, label=(
                f"{bits(tci, 0xE000, 16)} = Priority: {VLAN_PRIORITIES[pcp]} ({pcp})" if tree else None))
            lay.add(FV.dei, bool(dei), off, 2, label=(
                f"{bits(tci, 0x1000, 16)} = DEI: {'Eligible' if dei else 'Ineligible'}" if tree else None))
            lay.add(FV.id, vid, off, 2, label=f"{bits(tci, 0x0FFF, 16)} = ID: {vid}" if tree else None)
    elif wants(pkt, P_QINQ, P_VLAN):
        if tree:
            lay.label = f"IEEE 802.1ad, ID: {vid}"
        lay.add(FQ.priority, pcp, off, 2, label=f"{bits(tci, 0xE000, 16)} = Priority: {pcp}" if tree else None)
        lay.add(FQ.dei, dei, off, 2, label=f"{bits(tci, 0x1000, 16)} = DEI: {dei}" if tree else None)
        lay.add(FQ.id, vid, off, 2, label=f"{bits(tci, 0x0FFF, 16)} = ID: {vid}" if tree else None)


def _tag_payload(pkt: Packet, buf: bytes, off: int, end: int, src: int, lay: Layer, inner: int,
                 etype_fd: FieldDef, len_fd: FieldDef, trailer_fd: FieldDef) -> None:
    start = off + VLAN_HEADER
    if inner <= ETH_MAX_LEN:
        lay.add(len_fd, inner, off + 2, 2)
        pkt.cap.call_data(pkt, buf, start, min(end, start + inner), src)
        return
    lay.add(etype_fd, inner, off + 2, 2)
    ethertype(pkt, inner, buf, start, end, src, lay, trailer_fd, _frame_start(pkt, src))


def _frame_start(pkt: Packet, src: int) -> int:
    """Where the Ethernet frame starts (for the 60-byte minimum): the eth layer's offset."""
    for lay in pkt.layers:
        if lay.proto is P_ETH and lay.src == src:
            return lay.offset
    return 0


REGISTRY.add("wtap_encap", 1, "eth")
REGISTRY.add("ethertype", 0x8100, "vlan")
REGISTRY.add("ethertype", 0x88A8, "ieee8021ad")
REGISTRY.add("ethertype", 0x9100, "vlan")  # pre-standard QinQ outer tag, decoded as 802.1Q
