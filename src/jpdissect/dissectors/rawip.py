"""Raw IP link types: 101 (and the historical 12 and 14) by version nibble, 228 IPv4, 229 IPv6.

LINKTYPE_RAW (101) has no link header: the first nibble is the IP version
(pcap-linktype(7)).  DLT 12 and 14 meant raw IP on some BSDs and appear in
old files; Wireshark maps all three to its "raw" encapsulation, which is
why ``frame.protocols`` reads ``raw:ip:...`` for them but plain ``ip:...``
for LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229).
"""

from __future__ import annotations

from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import Packet, Protocol

P_RAW = Protocol("raw", "Raw packet data", "Raw")


@dissector("raw", "Raw IP (no link header): IPv4 or IPv6 by version nibble")
def dissect_raw(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    pkt.add_layer(P_RAW, off, 0, src)
    if pkt.cols:
        pkt.info = "Raw packet data"
        pkt.src = pkt.dst = "N/A"
    if end > off:
        v = buf[off] >> 4
        if v == 4:
            return pkt.cap.call("ip", pkt, buf, off, end, src)
        if v == 6:
            return pkt.cap.call("ipv6", pkt, buf, off, end, src)
    return pkt.cap.call_data(pkt, buf, off, end, src)


for _lt in (101, 12, 14):
    REGISTRY.add("wtap_encap", _lt, "raw")
REGISTRY.add("wtap_encap", 228, "ip")
REGISTRY.add("wtap_encap", 229, "ipv6")
