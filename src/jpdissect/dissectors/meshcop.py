"""Thread MeshCoP TLVs and the Joiner Router relay (``c/rx``, ``c/tx``) on TMF CoAP.

A Thread joiner runs its DTLS handshake (EC-JPAKE) with the Joiner Router's joiner port (UDP 1000 in
OpenThread) over link-local addresses; the Joiner Router relays each datagram to the Commissioner in
a TMF (CoAP, UDP 61631) NON POST ``c/rx`` -- Joiner UDP Port, Joiner IID, Joiner Router Locator,
Joiner DTLS Encapsulation -- and the answers come back in ``c/tx``, the last one with the Joiner
Router KEK that protects the JOIN_ENT (``c/je``) sent to the joiner at the MAC layer.

The TLV layout and names come from :mod:`jpdissect.framing.meshcop` (the one description the lab also
builds with); this module adds byte spans, value fields named as Wireshark's MeshCoP dissector names
them (``thread_meshcop.tlv.*`` there, ``meshcop.tlv.*`` here; unknown TLVs as raw bytes), expert info,
the DTLS hand-off of TLV 17 (under a per-joiner DTLS session key), the joiner's link-local address
``fe80::IID`` and the KEK, stored in ``pkt.cap.state["thread.kek"]`` for the 802.15.4 dissector.

Found by Uri-Path (the CoAP dissector's ``coap.uri_path`` table), on TMF (``meshcop.tmf_port``) and
joiner (``meshcop.joiner_port``) ports, and by name from MLE for dataset TLVs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from jpdissect.dissectors.jp import RelayFacts, starts_like_dtls
from jpdissect.dissectors.registry import REGISTRY, dissector, heuristic
from jpdissect.framing.meshcop import (
    JOINER_DTLS_ENCAPSULATION,
    JOINER_IID,
    JOINER_ROUTER_KEK,
    JOINER_ROUTER_LOCATOR,
    JOINER_UDP_PORT,
    JOINER_UDP_PORT_DEFAULT,
    RELAY_LAYOUTS,
    TLVS,
    TMF_PORT,
    Tlv,
    decode_relay,
    decode_tlvs,
    tlv_name,
)
from jpdissect.model import FT, Base, F, Group, Node, Packet, Pref, Protocol, Severity, declare_prefs

P = Protocol("meshcop", "Thread Mesh Commissioning Protocol", "MeshCoP")

_TLV_NAMES = {t: d.name for t, d in TLVS.items()}
_STATES = {1: "Accept", 0: "Pending", -1: "Reject"}

FM = P.declare(
    F("meshcop.tlv", "TLV", FT.NONE),
    F("meshcop.tlv.type", "Type", FT.UINT8, strings=_TLV_NAMES),
    F("meshcop.tlv.len8", "Length", FT.UINT8),
    F("meshcop.tlv.len16", "Length", FT.UINT16, "Extended TLV: length 0xFF, then a 2-byte length"),
    F("meshcop.tlv.unknown", "Unknown", FT.BYTES),
    F("meshcop.tlv.channel_page", "Channel Page", FT.UINT8),
    F("meshcop.tlv.channel", "Channel", FT.UINT16),
    F("meshcop.tlv.pan_id", "PAN ID", FT.UINT16, base=Base.HEX),
    F("meshcop.tlv.xpan_id", "Extended PAN ID", FT.UINT64, base=Base.HEX),
    F("meshcop.tlv.net_name", "Network Name", FT.STRING),
    F("meshcop.tlv.pskc", "PSKc", FT.BYTES),
    F("meshcop.tlv.master_key", "Network Key", FT.BYTES, "Wireshark: Master Key"),
    F("meshcop.tlv.net_key_seq_ctr", "Network Key Sequence Counter", FT.BYTES),
    F("meshcop.tlv.ml_prefix", "Mesh Local Prefix", FT.IPv6),
    F("meshcop.tlv.steering_data", "Steering Data", FT.BYTES),
    F("meshcop.tlv.ba_locator", "Border Agent Locator", FT.BYTES),
    F("meshcop.tlv.commissioner_id", "Commissioner ID", FT.STRING),
    F("meshcop.tlv.commissioner_sess_id", "Commissioner Session ID", FT.BYTES),
    F("meshcop.tlv.sec_policy_rot", "Rotation Time", FT.UINT16, unit="hours"),
    F("meshcop.tlv.sec_policy_o", "Out-of-band Commissioning", FT.BOOLEAN, bitmask=0x80),
    F("meshcop.tlv.sec_policy_n", "Native Commissioning", FT.BOOLEAN, bitmask=0x40),
    F("meshcop.tlv.sec_policy_r", "Thread 1.x Routers", FT.BOOLEAN, bitmask=0x20),
    F("meshcop.tlv.sec_policy_c", "PSKc-based Commissioning", FT.BOOLEAN, bitmask=0x10),
    F("meshcop.tlv.sec_policy_b", "Thread 1.x Beacons", FT.BOOLEAN, bitmask=0x08),
    F("meshcop.tlv.get", "Requested TLV", FT.UINT8, "MGMT_GET: a TLV type asked for", strings=_TLV_NAMES),
    F("meshcop.tlv.active_tstamp", "Active Timestamp", FT.ABSTIME),
    F("meshcop.tlv.pending_tstamp", "Pending Timestamp", FT.ABSTIME),
    F("meshcop.tlv.udp_port", "UDP Port", FT.UINT16, "Commissioner UDP Port / Joiner UDP Port"),
    F("meshcop.tlv.state", "State", FT.INT32, strings=_STATES),
    F("meshcop.tlv.dtls_encap", "Joiner DTLS Encapsulation", FT.BYTES,
      "The joiner's DTLS datagram (decoded by the DTLS layer)"),
    F("meshcop.tlv.iid", "Interface Identifier", FT.BYTES, "Joiner IID"),
    F("meshcop.tlv.jr_locator", "Joiner Router Locator", FT.BYTES),
    F("meshcop.tlv.kek", "Key Encryption Key (KEK)", FT.BYTES),
    F("meshcop.tlv.provisioning_url", "Provisioning URL", FT.STRING),
    F("meshcop.tlv.vendor_name", "Vendor Name", FT.STRING),
    F("meshcop.tlv.vendor_model", "Vendor Model", FT.STRING),
    F("meshcop.tlv.vendor_sw_ver", "Vendor Software Version", FT.STRING),
    F("meshcop.tlv.vendor_data", "Vendor Data", FT.STRING),
    F("meshcop.tlv.vendor_stack_ver_oui", "OUI", FT.UINT24, base=Base.HEX),
    F("meshcop.tlv.vendor_stack_ver_build", "Build", FT.UINT16),
    F("meshcop.tlv.vendor_stack_ver_rev", "Revision", FT.UINT8),
    F("meshcop.tlv.vendor_stack_ver_min", "Minor", FT.UINT8),
    F("meshcop.tlv.vendor_stack_ver_maj", "Major", FT.UINT8),
    F("meshcop.tlv.udp_encap_src_port", "Source UDP Port", FT.UINT16),
    F("meshcop.tlv.udp_encap_dst_port", "Destination UDP Port", FT.UINT16),
    F("meshcop.tlv.udp_encap_payload", "UDP Payload", FT.BYTES),
    F("meshcop.tlv.ipv6_addr", "IPv6 Address", FT.IPv6),
    F("meshcop.tlv.delay_timer", "Delay Timer", FT.UINT32, unit="ms"),
    F("meshcop.tlv.chan_mask", "Channel Mask", FT.NONE),
    F("meshcop.tlv.chan_mask_page", "Channel Page", FT.UINT8),
    F("meshcop.tlv.chan_mask_len", "Mask Length", FT.UINT8),
    F("meshcop.tlv.chan_mask_mask", "Mask", FT.BYTES),
    F("meshcop.tlv.count", "Count", FT.UINT8),
    F("meshcop.tlv.period", "Period", FT.UINT16, unit="ms"),
    F("meshcop.tlv.scan_duration", "Scan Duration", FT.UINT16, unit="ms"),
    F("meshcop.tlv.energy_list", "Energy List", FT.BYTES),
    F("meshcop.tlv.discovery_req_ver", "Version", FT.UINT8, bitmask=0xF0),
    F("meshcop.tlv.discovery_req_j", "Joiner Flag", FT.BOOLEAN, bitmask=0x08),
    F("meshcop.tlv.discovery_rsp_ver", "Version", FT.UINT8, bitmask=0xF0),
    F("meshcop.tlv.discovery_rsp_n", "Native Commissioning", FT.BOOLEAN, bitmask=0x08),
    F("meshcop.tlv.joiner_adv", "Joiner Advertisement", FT.BYTES),
    F("meshcop.joiner_addr", "Joiner link-local address", FT.IPv6, "fe80::/64 + Joiner IID"),
    F("meshcop.jr_rloc16", "Joiner Router RLOC16", FT.UINT16, base=Base.HEX),
    F("meshcop.uri", "TMF resource", FT.STRING, "c/rx, c/tx, c/jf, c/je, ..."),
)

declare_prefs(
    Pref("meshcop.tmf_port", int, TMF_PORT, "Thread TMF CoAP port (c/rx, c/tx, c/je, ...)"),
    Pref("meshcop.joiner_port", int, JOINER_UDP_PORT_DEFAULT,
         "Joiner Router's joiner UDP port: the joiner's link-local DTLS (OpenThread default 1000)"),
)

#: Most TLVs shown for one payload (the codec stops walking at its own limit too).
MAX_TLVS_SHOWN = 256
#: Thread timestamps (Thread 1.3 §8.10.1.14): 48-bit seconds, 15-bit ticks of 1/32768 s, U bit.
TICKS_PER_SECOND = 32768
LINK_LOCAL_PREFIX = bytes.fromhex("fe80000000000000")
#: MeshCoP resources on TMF (OpenThread ``uri_paths.cpp``); all carry MeshCoP TLVs.
MESHCOP_URIS: dict[str, str] = {
    "c/rx": "RELAY_RX", "c/tx": "RELAY_TX", "c/jf": "JOIN_FIN", "c/je": "JOIN_ENT",
    "c/cp": "COMMISSIONER_PETITION", "c/ca": "COMMISSIONER_KEEP_ALIVE", "c/cs": "COMMISSIONER_SET",
    "c/cg": "COMMISSIONER_GET", "c/lp": "LEADER_PETITION", "c/la": "LEADER_KEEP_ALIVE",
    "c/ag": "ACTIVE_GET", "c/as": "ACTIVE_SET", "c/pg": "PENDING_GET", "c/ps": "PENDING_SET",
    "c/dc": "DATASET_CHANGED", "c/ab": "ANNOUNCE_BEGIN", "c/es": "ENERGY_SCAN", "c/er": "ENERGY_REPORT",
    "c/pq": "PANID_QUERY", "c/pc": "PANID_CONFLICT", "c/ur": "PROXY_RX", "c/ut": "PROXY_TX",
}
for _uri in MESHCOP_URIS:
    REGISTRY.add("coap.uri_path", "/" + _uri, "meshcop")
REGISTRY.add("udp.port", TMF_PORT, "tmf")
REGISTRY.add("udp.port", JOINER_UDP_PORT_DEFAULT, "thread-joiner")


# ---------------------------------------------------------------------------
# The ports


@dissector("tmf", "Thread Management Framework: CoAP on UDP 61631 (meshcop.tmf_port)")
def dissect_tmf(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    port = pkt.cap.pref("meshcop.tmf_port")
    if port != TMF_PORT and port not in (pkt.srcport, pkt.dstport):
        return False  # the port was moved away by preference: let the other dispatch steps decide
    return pkt.cap.call("coap", pkt, buf, off, end, src)


@dissector("thread-joiner", "Thread joiner's DTLS to the Joiner Router's joiner port (meshcop.joiner_port)")
def dissect_joiner(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    port = pkt.cap.pref("meshcop.joiner_port")
    if (port != JOINER_UDP_PORT_DEFAULT and port not in (pkt.srcport, pkt.dstport)) or \
            not starts_like_dtls(buf, off, end):
        return False  # not a joiner's datagram: leave it to the heuristics (port 1000 is not reserved)
    pkt.scratch["jp.joiner_leg"] = True
    return pkt.cap.call("dtls", pkt, buf, off, end, src)


@heuristic("udp", "thread_ports", "tmf")
def heur_thread_ports(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """TMF and joiner ports moved from their defaults by preference (the defaults are table entries)."""
    cap = pkt.cap
    if cap is None:
        return False
    ports = (pkt.srcport, pkt.dstport)
    tmf = cap.pref("meshcop.tmf_port")
    if tmf != TMF_PORT and tmf in ports:
        return cap.call("coap", pkt, buf, off, end, src)
    jp = cap.pref("meshcop.joiner_port")
    if jp != JOINER_UDP_PORT_DEFAULT and jp in ports and starts_like_dtls(buf, off, end):
        return dissect_joiner(pkt, buf, off, end, src)
    return False


# A port set by preference stands for a port-table entry, so it is tried before the content
# heuristics (which would otherwise take the joiner's DTLS as plain DTLS); it costs two lookups.
_udp_heur = REGISTRY.heuristics["udp"]
_udp_heur.insert(0, _udp_heur.pop(next(i for i, h in enumerate(_udp_heur) if h.fn is heur_thread_ports)))


# ---------------------------------------------------------------------------
# The TLVs


@dissector("meshcop", "Thread MeshCoP TLVs (TMF c/rx, c/tx, c/jf, c/je, ...; MLE datasets)")
def dissect_meshcop(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    info = pkt.scratch.get("coap")
    uri = ""
    if info is not None and info.payload_offset == off and info.payload_length == end - off:
        uri = info.path.lstrip("/")
    is_request = info is not None and 0 < info.code < 32
    lay = pkt.add_layer(P, off, end - off, src)
    if uri and (pkt.tree or FM.uri.primed):
        lay.add(FM.uri, uri, off, 0, generated=True)
    relay = None
    if uri in RELAY_LAYOUTS and is_request:
        relay, tlvs, errors = decode_relay(uri, buf, off, end)
    else:
        tlvs, errors = decode_tlvs(buf, off, end)
    dtls_tlv: Tlv | None = None
    # TLV fields for a tree or a primed meshcop field; value decoders that also check the
    # value (_CHECKED) run in every mode.
    record = pkt.tree or P.primed
    for i, t in enumerate(tlvs):
        if i >= MAX_TLVS_SHOWN:
            break
        if record or t.type in _CHECKED:
            _tlv(pkt, lay, buf, t)
        if t.type == JOINER_DTLS_ENCAPSULATION and dtls_tlv is None:
            dtls_tlv = t
    for e in errors:
        pkt.malformed(lay, f"MeshCoP: {e.message}", e.offset, e.length)
    if uri == "c/je" and is_request:
        # Thread 1.x §8.4.x: JOIN_ENT goes from the Joiner Router to the joiner, MAC-secured with the KEK.
        pkt.scratch["jp.event"] = ("JOIN_ENT", "thread-relay", "down")
    name = MESHCOP_URIS.get(uri, "")
    text = f"{uri} {name}".strip() if uri else "MeshCoP"
    if relay is not None:
        text = _relay(pkt, lay, buf, src, uri, relay, tlvs, dtls_tlv)
    elif dtls_tlv is not None and uri in RELAY_LAYOUTS:
        # A relay whose mandatory TLVs are missing: still show the datagram.
        _call_dtls(pkt, buf, dtls_tlv.value_offset, dtls_tlv.end, src, None)
    if pkt.cols:
        coap_info = pkt.info
        pkt.info = text if relay is not None else (f"{coap_info} [{name}]" if name else coap_info)
    if pkt.tree:
        lay.label = f"Thread MeshCoP{', ' + name if name else ''} ({len(tlvs)} TLVs)"
    return True


def _relay(pkt: Packet, lay: Node, buf: bytes, src: int, uri: str, relay: Any, tlvs: list[Tlv],
           dtls_tlv: Tlv | None) -> str:
    """c/rx / c/tx: the joiner, the JP state it echoes, the KEK, and the DTLS datagram inside."""
    joiner_ll = LINK_LOCAL_PREFIX + relay.joiner_iid
    tree = pkt.tree
    if tree or FM.joiner_addr.primed:
        lay.add(FM.joiner_addr, joiner_ll, off_of(tlvs, JOINER_IID, lay.offset), 8, generated=True)
    if tree or FM.jr_rloc16.primed:
        lay.add(FM.jr_rloc16, relay.router_locator, off_of(tlvs, JOINER_ROUTER_LOCATOR, lay.offset), 2,
                generated=True)
    if relay.kek is not None:
        _store_kek(pkt, relay.kek)
    # The JP state the relay echoes: from the first to the end of the last state TLV.
    s0 = s1 = -1
    for t in tlvs:
        if t.type in _STATE_TLVS:
            te = t.offset + t.header_len + t.length
            if s0 < 0 or t.offset < s0:
                s0 = t.offset
            if te > s1:
                s1 = te
    state = bytes(buf[s0:s1])
    pledge = (joiner_ll, relay.joiner_port)
    direction = "up" if uri == "c/rx" else "down"
    dtls_text = ""
    if dtls_tlv is not None:
        pkt.scratch["jp.relay"] = RelayFacts("thread-relay", direction, src, dtls_tlv.value_offset, dtls_tlv.end,
                                             state, s0, s1 - s0, pledge, relay.kek)
        dtls_text = _call_dtls(pkt, buf, dtls_tlv.value_offset, dtls_tlv.end, src,
                               ("thread-relay", relay.joiner_iid, relay.joiner_port))
    if not pkt.cols:
        return ""  # the text is the Info column
    who = f"[{ipaddress.IPv6Address(joiner_ll)}]:{relay.joiner_port}"
    kek = " +KEK" if relay.kek is not None else ""
    return f"{uri} {who} rloc16 0x{relay.router_locator:04x}{kek} {dtls_text}".rstrip()


def off_of(tlvs: list[Tlv], t: int, default: int) -> int:
    for x in tlvs:
        if x.type == t:
            return x.value_offset
    return default


def _store_kek(pkt: Packet, kek: bytes) -> None:
    """For the 802.15.4 dissector: JOIN_ENT is MAC-secured with this key (Key ID Mode 0)."""
    try:
        from jpdissect.thread_keys import set_kek
    except ImportError:  # pragma: no cover - the radio module is optional here
        pkt.cap.state["thread.kek"] = bytes(kek)
        return
    set_kek(pkt.cap.state, bytes(kek))


def _call_dtls(pkt: Packet, buf: bytes, off: int, end: int, src: int, key: object) -> str:
    if end <= off:
        return ""
    sc = pkt.scratch
    saved = sc.get("dtls.session_key")
    if key is not None:
        sc["dtls.session_key"] = key
    before = pkt.info
    try:
        pkt.cap.call("dtls", pkt, buf, off, end, src)
    finally:
        if saved is None:
            sc.pop("dtls.session_key", None)
        else:
            sc["dtls.session_key"] = saved
    return pkt.info if pkt.info != before else ""


# ---------------------------------------------------------------------------
# One TLV


def _tlv(pkt: Packet, lay: Node, buf: bytes, t: Tlv) -> None:
    want = pkt.tree or FM.tlv.primed
    node = lay.add(FM.tlv, None, t.offset, t.header_len + t.length,
                   label=f"{tlv_name(t.type)} TLV" if pkt.tree else None) if want else lay
    node.add(FM.tlv_type, t.type, t.offset, 1)
    if t.extended:
        node.add(FM.tlv_len8, 0xFF, t.offset + 1, 1)
        node.add(FM.tlv_len16, t.length, t.offset + 2, 2)
    else:
        node.add(FM.tlv_len8, t.length, t.offset + 1, 1)
    d = TLVS.get(t.type)
    v, n = t.value_offset, t.length
    if d is None or (d.length is not None and n != d.length):
        node.add(FM.tlv_unknown, t.value, v, n)
        if d is None and pkt.tree:
            pkt.expert(node, Severity.NOTE, Group.UNDECODED, f"Unknown MeshCoP TLV type {t.type}", t.offset, 1)
        return
    fn = _VALUE.get(t.type)
    if fn is None:
        node.add(FM.tlv_unknown, t.value, v, n)
        return
    fn(pkt, node, buf, v, n)


def _u(buf: bytes, v: int, n: int) -> int:
    return int.from_bytes(buf[v:v + n], "big")


def _timestamp(buf: bytes, v: int) -> int:
    raw = _u(buf, v, 8)
    secs, ticks = raw >> 16, (raw >> 1) & 0x7FFF
    return secs * 1_000_000_000 + ticks * 1_000_000_000 // TICKS_PER_SECOND


def _text(buf: bytes, v: int, n: int) -> str:
    return bytes(buf[v:v + n]).decode("utf-8", "replace")


def _channel(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    node.add(FM.tlv_channel_page, buf[v], v, 1)
    node.add(FM.tlv_channel, _u(buf, v + 1, 2), v + 1, 2)


def _sec_policy(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    if n < 3:
        node.add(FM.tlv_unknown, bytes(buf[v:v + n]), v, n)
        return
    node.add(FM.tlv_sec_policy_rot, _u(buf, v, 2), v, 2)
    b = buf[v + 2]
    for fd in (FM.tlv_sec_policy_o, FM.tlv_sec_policy_n, FM.tlv_sec_policy_r, FM.tlv_sec_policy_c,
               FM.tlv_sec_policy_b):
        node.add(fd, bool(b & fd.bitmask), v + 2, 1)


def _get(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    for i in range(n):
        node.add(FM.tlv_get, buf[v + i], v + i, 1)


def _state(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    b = buf[v]
    node.add(FM.tlv_state, b - 256 if b >= 128 else b, v, 1)


def _dtls_encap(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    if FM.tlv_dtls_encap.primed:  # the tree shows the datagram in the DTLS layer
        node.add(FM.tlv_dtls_encap, bytes(buf[v:v + n]), v, n)


def _vendor_stack(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    node.add(FM.tlv_vendor_stack_ver_oui, _u(buf, v, 3), v, 3)
    bld = _u(buf, v + 3, 2)
    node.add(FM.tlv_vendor_stack_ver_build, bld >> 4, v + 3, 2)
    node.add(FM.tlv_vendor_stack_ver_rev, bld & 0x0F, v + 4, 1)
    node.add(FM.tlv_vendor_stack_ver_min, buf[v + 5] >> 4, v + 5, 1)
    node.add(FM.tlv_vendor_stack_ver_maj, buf[v + 5] & 0x0F, v + 5, 1)


def _udp_encap(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    if n < 4:
        node.add(FM.tlv_unknown, bytes(buf[v:v + n]), v, n)
        return
    node.add(FM.tlv_udp_encap_src_port, _u(buf, v, 2), v, 2)
    node.add(FM.tlv_udp_encap_dst_port, _u(buf, v + 2, 2), v + 2, 2)
    if n > 4:
        node.add(FM.tlv_udp_encap_payload, bytes(buf[v + 4:v + n]), v + 4, n - 4)


def _chan_mask(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
    p, end = v, v + n
    while p + 2 <= end:
        ln = buf[p + 1]
        e = node.add(FM.tlv_chan_mask, None, p, min(2 + ln, end - p))
        e.add(FM.tlv_chan_mask_page, buf[p], p, 1)
        e.add(FM.tlv_chan_mask_len, ln, p + 1, 1)
        if p + 2 + ln > end:
            pkt.malformed(node, "MeshCoP Channel Mask: entry runs past the TLV", p, end - p)
            return
        e.add(FM.tlv_chan_mask_mask, bytes(buf[p + 2:p + 2 + ln]), p + 2, ln)
        p += 2 + ln


def _discovery(req: bool) -> Callable[[Packet, Node, bytes, int, int], None]:
    ver, flag = (FM.tlv_discovery_req_ver, FM.tlv_discovery_req_j) if req else (
        FM.tlv_discovery_rsp_ver, FM.tlv_discovery_rsp_n)

    def fn(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
        node.add(ver, buf[v] >> 4, v, 1)
        node.add(flag, bool(buf[v] & 0x08), v, 1)

    return fn


def _simple(fd: Any, conv: Callable[[bytes, int, int], Any]) -> Callable[[Packet, Node, bytes, int, int], None]:
    def fn(pkt: Packet, node: Node, buf: bytes, v: int, n: int) -> None:
        node.add(fd, conv(buf, v, n), v, n)

    return fn


def _raw(buf: bytes, v: int, n: int) -> bytes:
    return bytes(buf[v:v + n])


def _prefix(buf: bytes, v: int, n: int) -> bytes:
    return bytes(buf[v:v + n]) + bytes(16 - n)


_VALUE: dict[int, Callable[[Packet, Node, bytes, int, int], None]] = {
    0: _channel,
    1: _simple(FM.tlv_pan_id, _u),
    2: _simple(FM.tlv_xpan_id, _u),
    3: _simple(FM.tlv_net_name, _text),
    4: _simple(FM.tlv_pskc, _raw),
    5: _simple(FM.tlv_master_key, _raw),
    6: _simple(FM.tlv_net_key_seq_ctr, _raw),
    7: _simple(FM.tlv_ml_prefix, _prefix),
    8: _simple(FM.tlv_steering_data, _raw),
    9: _simple(FM.tlv_ba_locator, _raw),
    10: _simple(FM.tlv_commissioner_id, _text),
    11: _simple(FM.tlv_commissioner_sess_id, _raw),
    12: _sec_policy,
    13: _get,
    14: _simple(FM.tlv_active_tstamp, lambda b, v, n: _timestamp(b, v)),
    15: _simple(FM.tlv_udp_port, _u),
    16: _state,
    JOINER_DTLS_ENCAPSULATION: _dtls_encap,
    JOINER_UDP_PORT: _simple(FM.tlv_udp_port, _u),
    JOINER_IID: _simple(FM.tlv_iid, _raw),
    JOINER_ROUTER_LOCATOR: _simple(FM.tlv_jr_locator, _raw),
    JOINER_ROUTER_KEK: _simple(FM.tlv_kek, _raw),
    32: _simple(FM.tlv_provisioning_url, _text),
    33: _simple(FM.tlv_vendor_name, _text),
    34: _simple(FM.tlv_vendor_model, _text),
    35: _simple(FM.tlv_vendor_sw_ver, _text),
    36: _simple(FM.tlv_vendor_data, _text),
    37: _vendor_stack,
    48: _udp_encap,
    49: _simple(FM.tlv_ipv6_addr, _raw),
    51: _simple(FM.tlv_pending_tstamp, lambda b, v, n: _timestamp(b, v)),
    52: _simple(FM.tlv_delay_timer, _u),
    53: _chan_mask,
    54: _simple(FM.tlv_count, _u),
    55: _simple(FM.tlv_period, _u),
    56: _simple(FM.tlv_scan_duration, _u),
    57: _simple(FM.tlv_energy_list, _raw),
    128: _discovery(True),
    129: _discovery(False),
    130: _simple(FM.tlv_joiner_adv, _raw),
}
#: TLV types whose value decoder reports malformed values itself, with or without fields.
_CHECKED = frozenset({53})
#: The relay TLVs that make up the JP state a c/rx carries and its c/tx echoes.
_STATE_TLVS = frozenset({JOINER_UDP_PORT, JOINER_IID, JOINER_ROUTER_LOCATOR})
# Every TLV type the codec names has a value decoder (the names stay in the codec's one table).
assert set(TLVS) <= set(_VALUE), sorted(set(TLVS) - set(_VALUE))


__all__ = ["FM", "P", "dissect_joiner", "dissect_meshcop", "dissect_tmf"]
