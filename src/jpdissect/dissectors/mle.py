"""Thread Mesh Link Establishment (MLE, UDP 19788) and the Thread Network Data inside it.

An MLE message starts with a security suite byte (Thread 1.3 §4.4): 255 = no security (Discovery
Request/Response), 0 = an IEEE 802.15.4-style auxiliary security header follows, the command and
TLVs are AES-CCM* encrypted with the MLE key (first half of the Thread key hash) and a 4-byte MIC
ends the message. Unlike MAC security, the authenticated data is IPv6 source || IPv6 destination ||
the auxiliary header (§4.4.1.1, OpenThread ``Mle::ProcessMessageSecurity``), and the nonce uses the
sender's extended address as encoded in its link-local IPv6 source (IID with the U/L bit flipped).

MLE is also where the capture teaches the radio layers what they need: Source Address and Address16
TLVs map short addresses to extended ones (so short-addressed MAC frames can be decrypted), a Key ID
Mode 2 key source gives the current key sequence, and the Active Operational Dataset / Network Data
give the 6LoWPAN contexts (context 0 = mesh-local prefix).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from jpdissect import thread_keys as tk
from jpdissect.dissectors import sixlowpan, wpan
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.framing.meshcop import decode_tlvs
from jpdissect.model import (
    FT,
    Base,
    F,
    Group,
    Layer,
    Node,
    Packet,
    Protocol,
    Severity,
)

MLE_PORT = 19788
SEC_SUITE_802154 = 0
SEC_SUITE_NONE = 255
#: TLVs walked per message / per Network Data before we stop.
MAX_TLVS = 128
#: MeshCoP TLV 7 in an operational dataset: the mesh-local prefix (/64), Thread's context 0.
MESHCOP_ML_PREFIX = 7
ML_PREFIX_LEN = 64
#: MLE timestamps: 48-bit seconds, 15-bit ticks of 1/32768 s, 1-bit U flag (Thread 1.3 §8.10.1.14).
TICK_NS = 1_000_000_000 / 32768

SEC_SUITES = {0: "802.15.4 Security", 255: "No Security"}
COMMANDS = {
    0: "Link Request", 1: "Link Accept", 2: "Link Accept and Request", 3: "Link Reject",
    4: "Advertisement", 5: "Update", 6: "Update Request", 7: "Data Request", 8: "Data Response",
    9: "Parent Request", 10: "Parent Response", 11: "Child ID Request", 12: "Child ID Response",
    13: "Child Update Request", 14: "Child Update Response", 15: "Announce", 16: "Discovery Request",
    17: "Discovery Response", 18: "Link Metrics Management Request", 19: "Link Metrics Management Response",
    20: "Link Probe", 21: "Time Sync",
}
TLV_NAMES = {
    0: "Source Address", 1: "Mode", 2: "Timeout", 3: "Challenge", 4: "Response",
    5: "Link Layer Frame Counter", 6: "Link Quality", 7: "Network Parameter", 8: "MLE Frame Counter",
    9: "Route64", 10: "Address16", 11: "Leader Data", 12: "Network Data", 13: "TLV Request",
    14: "Scan Mask", 15: "Connectivity", 16: "Link Margin", 17: "Status", 18: "Version",
    19: "Address Registration", 20: "Channel", 21: "PAN ID", 22: "Active Timestamp",
    23: "Pending Timestamp", 24: "Active Operational Dataset", 25: "Pending Operational Dataset",
    26: "Thread Discovery", 27: "Supervision Interval", 56: "CSL Channel", 85: "CSL Synchronized Timeout",
    86: "CSL Clock Accuracy", 87: "Link Metrics Query", 88: "Link Metrics Management",
    89: "Link Metrics Report", 90: "Link Probe",
}
NWK_PARAMS = {0: "Channel", 1: "PAN ID", 2: "Permit Join", 3: "Beacon Payload"}
STATUS = {1: "Error", 2: "Duplicate Address Detected"}

P = Protocol("mle", "Mesh Link Establishment", "MLE")
_H = Base.HEX
_B = FT.BOOLEAN
FM = P.declare(
    F("mle.sec_suite", "Security Suite", FT.UINT8, base=_H, strings=SEC_SUITES),
    F("mle.mic", "Decrypted MIC", FT.BYTES, "The MIC after CTR decryption (the CBC-MAC tag)"),
    F("mle.cmd", "Command", FT.UINT8, strings=COMMANDS),
    F("mle.tlv", "TLV", FT.NONE),
    F("mle.tlv.type", "Type", FT.UINT8, strings=TLV_NAMES),
    F("mle.tlv.len", "Length", FT.UINT8),
    F("mle.tlv.source_addr", "Address", FT.BYTES),
    F("mle.tlv.mode.nwk_data", "Network Data", _B),
    F("mle.tlv.mode.device_type", "Device Type", _B),
    F("mle.tlv.mode.sec_data_req", "Secure Data Requests", _B),
    F("mle.tlv.mode.idle_rx", "Receive On When Idle", _B),
    F("mle.tlv.timeout", "Timeout", FT.UINT32, unit="s"),
    F("mle.tlv.challenge", "Challenge", FT.BYTES),
    F("mle.tlv.response", "Response", FT.BYTES),
    F("mle.tlv.ll_frm_cntr", "Link Layer Frame Counter", FT.UINT32),
    F("mle.tlv.mle_frm_cntr", "MLE Frame Counter", FT.UINT32),
    F("mle.tlv.unknown", "Unknown", FT.BYTES),
    F("mle.tlv.meshcop", "MeshCoP TLVs", FT.BYTES, "Dataset/discovery TLVs, when no MeshCoP dissector is loaded"),
    F("mle.tlv.lqi.complete", "Complete Flag", _B),
    F("mle.tlv.lqi.size", "Address Size", FT.UINT8),
    F("mle.tlv.neighbor", "Neighbor Record", FT.NONE),
    F("mle.tlv.neighbor.flagI", "Incoming", _B),
    F("mle.tlv.neighbor.flagO", "Outgoing", _B),
    F("mle.tlv.neighbor.flagP", "Priority", _B),
    F("mle.tlv.neighbor.idr", "Inverse Delivery Ratio", FT.UINT8),
    F("mle.tlv.neighbor.addr", "Address", FT.BYTES),
    F("mle.tlv.network.param_id", "Parameter ID", FT.UINT8, strings=NWK_PARAMS),
    F("mle.tlv.network.delay", "Delay", FT.UINT32),
    F("mle.tlv.network.channel", "Channel", FT.UINT16),
    F("mle.tlv.network.pan_id", "PAN ID", FT.UINT16, base=_H),
    F("mle.tlv.network.pmt_join", "Permit Join", _B),
    F("mle.tlv.network.bcn_payload", "Beacon Payload", FT.BYTES),
    F("mle.tlv.network.unknown", "(unknown)", FT.BYTES),
    F("mle.tlv.route64.id_seq", "ID Sequence", FT.UINT8),
    F("mle.tlv.route64.id_mask", "Assigned Router ID Mask", FT.BYTES),
    F("mle.tlv.route64", "Routing Table Entry", FT.UINT8, base=_H),
    F("mle.tlv.route64.nbr_out", "Neighbor Out Link Quality", FT.UINT8),
    F("mle.tlv.route64.nbr_in", "Neighbor In Link Quality", FT.UINT8),
    F("mle.tlv.route64.cost", "Router Cost", FT.UINT8),
    F("mle.tlv.addr16", "Address16", FT.BYTES),
    F("mle.tlv.leader_data.partition_id", "Partition ID", FT.UINT32, base=_H),
    F("mle.tlv.leader_data.weighting", "Weighting", FT.UINT8),
    F("mle.tlv.leader_data.data_version", "Data Version", FT.UINT8),
    F("mle.tlv.leader_data.stable_data_version", "Stable Data Version", FT.UINT8),
    F("mle.tlv.leader_data.router_id", "Leader Router ID", FT.UINT8),
    F("mle.tlv.scan_mask.r", "Router", _B),
    F("mle.tlv.scan_mask.e", "End Device", _B),
    F("mle.tlv.conn.flags", "Flags", FT.NONE),
    F("mle.tlv.conn.flags.pp", "Parent Priority", FT.INT32, strings={1: "High", 0: "Medium", -1: "Low"}),
    F("mle.tlv.conn.lq3", "Link Quality 3", FT.UINT8),
    F("mle.tlv.conn.lq2", "Link Quality 2", FT.UINT8),
    F("mle.tlv.conn.lq1", "Link Quality 1", FT.UINT8),
    F("mle.tlv.conn.leader_cost", "Leader Cost", FT.UINT8),
    F("mle.tlv.conn.id_seq", "ID Sequence", FT.UINT8),
    F("mle.tlv.conn.active_rtrs", "Active Routers", FT.UINT8),
    F("mle.tlv.conn.sed_buf_size", "SED Buffer Size", FT.UINT16),
    F("mle.tlv.conn.sed_dgram_cnt", "SED Datagram Count", FT.UINT8),
    F("mle.tlv.link_margin", "Link Margin", FT.UINT8, unit="dB"),
    F("mle.tlv.status", "Status", FT.UINT8, strings=STATUS),
    F("mle.tlv.version", "Version", FT.UINT16),
    F("mle.tlv.addr_reg", "Address Registration Entry", FT.NONE),
    F("mle.tlv.addr_reg_iid_type", "IID type", _B, "Compressed (context) or full address"),
    F("mle.tlv.addr_reg_cid", "Context ID", FT.UINT8),
    F("mle.tlv.addr_reg_iid", "IID", FT.BYTES),
    F("mle.tlv.addr_reg_ipv6", "IPv6 Address", FT.IPv6),
    F("mle.tlv.channel_page", "Channel Page", FT.UINT8),
    F("mle.tlv.channel", "Channel", FT.UINT16),
    F("mle.tlv.pan_id", "PAN ID", FT.UINT16, base=_H),
    F("mle.tlv.active_tstamp", "Active Timestamp", FT.ABSTIME),
    F("mle.tlv.pending_tstamp", "Pending Timestamp", FT.ABSTIME),
)

P_NWD = Protocol("thread_nwd", "Thread Network Data", "Thread NWD")
NWD_TYPES = {0: "Has Route", 1: "Prefix", 2: "Border Router", 3: "6LoWPAN ID", 4: "Commissioning Data",
             5: "Service", 6: "Server"}
FN = P_NWD.declare(
    F("thread_nwd.tlv", "TLV", FT.NONE),
    F("thread_nwd.tlv.type", "Type", FT.UINT8, strings=NWD_TYPES),
    F("thread_nwd.tlv.stable", "Stable", _B),
    F("thread_nwd.tlv.len", "Length", FT.UINT8),
    F("thread_nwd.tlv.unknown", "Unknown", FT.BYTES),
    F("thread_nwd.tlv.has_route.br_16", "Border Router 16", FT.UINT16, base=_H),
    F("thread_nwd.tlv.has_route.pref", "Preference", FT.UINT8),
    F("thread_nwd.tlv.prefix.domain_id", "Domain ID", FT.UINT8),
    F("thread_nwd.tlv.prefix.length", "Prefix Length", FT.UINT8),
    F("thread_nwd.tlv.prefix", "Prefix", FT.IPv6),
    F("thread_nwd.tlv.border_router.16", "Border Router 16", FT.UINT16, base=_H),
    F("thread_nwd.tlv.6co.flag", "Flag", FT.UINT8, base=_H),
    F("thread_nwd.tlv.6co.flag.c", "Compression Flag", _B),
    F("thread_nwd.tlv.6co.flag.cid", "CID", FT.UINT8),
    F("thread_nwd.tlv.6co.context_length", "Context Length", FT.UINT8),
    F("thread_nwd.tlv.server.16", "Server 16", FT.UINT16, base=_H),
    F("thread_nwd.tlv.server.data", "Server Data", FT.BYTES),
)
NWD_PREFIX, NWD_6LOWPAN_ID, NWD_COMMISSIONING = 1, 3, 4


# ---------------------------------------------------------------------------
# Dissector


@dissector("mle", "Thread Mesh Link Establishment (UDP 19788)")
def dissect_mle(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P, off, end - off, src)
    if pkt.cols:
        pkt.info = ""
    if off >= end:
        pkt.malformed(lay, "Thread §4.4: MLE message without a security suite byte", off)
        return True
    suite = buf[off]
    lay.add(FM.sec_suite, suite, off, 1)
    p = off + 1
    if suite == SEC_SUITE_NONE:
        _body(pkt, lay, buf, p, end, src)
        return True
    if suite != SEC_SUITE_802154:
        pkt.malformed(lay, f"Thread §4.4: unknown MLE security suite {suite}", off, 1)
        pkt.cap.call_data(pkt, buf, p, end, src)
        return True
    aux = wpan.parse_aux_security(buf, p, end, 1)
    if aux is None:
        pkt.malformed(lay, "Thread §4.4: MLE auxiliary security header cut short", p)
        return True
    wpan.add_aux_security(lay, aux, buf, p)
    q = p + aux.length
    res = _decrypt(pkt, lay, buf, p, q, end, aux)
    if res is None:
        if pkt.cols:
            pkt.info = "Encrypted MLE message"  # Wireshark leaves the column empty; say why instead
        m = tk.mic_length(aux.level)
        if end - m > q:
            pkt.cap.call_data(pkt, buf, q, end - m, src)
        return True
    data, dsrc = res
    _body(pkt, lay, data, 0, len(data), dsrc)
    return True


def _sender_ext_candidates(pkt: Packet) -> list[bytes]:
    """Extended addresses the sender may have used in the nonce, likeliest first.

    OpenThread derives it from the IPv6 source IID (``Mle::HandleUdpReceive``); Wireshark from the
    MAC source. They agree for every MLE message sent from a link-local address.
    """
    out: list[bytes] = []
    s = pkt.net_src
    if isinstance(s, bytes | bytearray) and len(s) == 16 and s[:2] == b"\xfe\x80":
        iid = bytes(s[8:])
        if iid[:6] != b"\x00\x00\x00\xff\xfe\x00":  # not a short-address (RLOC) IID
            out.append(bytes([iid[0] ^ 0x02]) + iid[1:])
    w = pkt.scratch.get("wpan")
    if w is not None and w.sender_ext is not None and w.sender_ext not in out:
        out.append(w.sender_ext)
    return out


def _decrypt(pkt: Packet, lay: Layer, buf: bytes, aux_at: int, q: int, end: int,
             aux: wpan.AuxSec) -> tuple[bytes, int] | None:
    cap = pkt.cap
    m = tk.mic_length(aux.level)
    if end - q < m:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED, "Packet was too small to include the CRC and MIC", q)
        return None
    if aux.level == 0:
        data = bytes(buf[q:end])
        return data, pkt.add_source("MLE payload", data)
    nk: bytes = cap.pref("thread.network_key")
    keys: list[tuple[bytes, int | None]] = []
    if aux.key_id_mode == 2 and aux.key_source is not None:
        if aux.key_source == tk.THREAD_WELL_KNOWN_KEY_SOURCE and aux.key_index == tk.THREAD_WELL_KNOWN_KEY_INDEX:
            keys.append((tk.THREAD_WELL_KNOWN_KEY, None))
        elif nk:
            keys.append((tk.mle_key(nk, aux.key_source), aux.key_source))
    elif aux.key_id_mode == 1 and nk and aux.key_index is not None:
        for seq in tk.sequences_for_key_index(aux.key_index, wpan.thread_key_sequence(cap)):
            keys.append((tk.mle_key(nk, seq), seq))
    plain: bytes = cap.pref("wpan.key")
    if plain and len(plain) == tk.KEY_LEN:
        keys.append((plain, None))
    if not keys:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED, "No encryption key set - can't decrypt", q)
        return None
    s, d = pkt.net_src, pkt.net_dst
    if not (isinstance(s, bytes | bytearray) and isinstance(d, bytes | bytearray) and len(s) == len(d) == 16):
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,
                   "MLE over a non-IPv6 network layer: no addresses for the authenticated data - can't decrypt", q)
        return None
    exts = _sender_ext_candidates(pkt)
    if not exts:
        pkt.expert(lay, Severity.WARN, Group.UNDECODED, "No extended source address - can't decrypt", q)
        return None
    aad = bytes(s) + bytes(d) + bytes(buf[aux_at:q])
    payload = bytes(buf[q:end])
    for ext in exts:
        nonce = tk.ccm_nonce(ext, aux.frame_counter or 0, aux.level)
        for key, seq in keys:
            pt, status = tk.ccm_star_decrypt(key, nonce, aux.level, aad, payload)
            if status in (tk.OK, tk.UNVERIFIED):
                if seq is not None and aux.key_id_mode == 2:
                    wpan.learn_key_sequence(cap, seq)
                if m and (pkt.tree or FM.mic.primed):
                    lay.add(FM.mic, _tag(key, nonce, payload[-m:]), end - m, m, generated=True)
                if not tk.is_encrypted(aux.level):
                    pt = payload[: len(payload) - m]
                    return pt, pkt.add_source("MLE payload", pt)
                return pt, pkt.add_source("Decrypted MLE payload", pt)
    pkt.expert(lay, Severity.WARN, Group.UNDECODED, "MIC check failed", end - m if m else q)
    if not tk.is_encrypted(aux.level):
        pt = payload[: len(payload) - m]
        return pt, pkt.add_source("MLE payload", pt)
    return None


def _tag(key: bytes, nonce: bytes, enc_mic: bytes) -> bytes:
    """The CBC-MAC tag: the transmitted MIC XOR E(K, A_0) (RFC 3610 §2.3)."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    s0 = enc.update(b"\x01" + nonce + b"\x00\x00") + enc.finalize()
    return bytes(a ^ b for a, b in zip(enc_mic, s0, strict=False))


# ---------------------------------------------------------------------------
# Command and TLVs


def _body(pkt: Packet, lay: Layer, buf: bytes, p: int, end: int, src: int) -> None:
    body = _in_source(lay, src, p, end - p)
    if p >= end:
        pkt.malformed(lay, "Thread §4.4: MLE message without a command", p)
        return
    cmd = buf[p]
    body.add(FM.cmd, cmd, p, 1)
    name = COMMANDS.get(cmd, f"Unknown ({cmd:x})")
    if pkt.cols:
        pkt.info = name
    if pkt.tree:
        lay.label = f"Mesh Link Establishment, {name}"
    p += 1
    count = 0
    while p < end:
        count += 1
        if count > MAX_TLVS:
            pkt.malformed(lay, f"more than {MAX_TLVS} MLE TLVs", p)
            return
        if p + 2 > end:
            pkt.malformed(lay, "Thread §4.5: MLE TLV header cut short", p)
            return
        t, n = buf[p], buf[p + 1]
        v = p + 2
        if v + n > end:
            pkt.malformed(lay, f"Thread §4.5: MLE TLV {TLV_NAMES.get(t, t)} length {n} runs past the message", p + 1)
            n = end - v
        tn = body.add(FM.tlv, None, p, 2 + n)
        tn.add(FM.tlv_type, t, p, 1)
        tn.add(FM.tlv_len, n, p + 1, 1)
        summary = _tlv(pkt, lay, tn, buf, t, v, n, src)
        if pkt.tree and tn is not body:
            tn.label = f"TLV ({TLV_NAMES.get(t, f'Unknown ({t})')}{summary})"
        p = v + n


def _in_source(parent: Node, src: int, off: int, length: int) -> Node:
    """A subtree whose children live in data source ``src`` (the decrypted payload)."""
    if src == parent.src:
        return parent
    n = parent.add_text("Decrypted MLE payload", off, length)
    if n is not parent:
        n.src = src
    return n


def _bad_len(pkt: Packet, lay: Layer, tn: Node, buf: bytes, t: int, v: int, n: int, want: str) -> str:
    pkt.expert(lay, Severity.WARN, Group.MALFORMED,
               f"TLV Length inconsistent: {TLV_NAMES.get(t, t)} length {n}, expected {want}", v - 1, 1)
    tn.add(FM.tlv_unknown, buf[v : v + n], v, n)
    return ""


def _tlv(pkt: Packet, lay: Layer, tn: Node, buf: bytes, t: int, v: int, n: int, src: int) -> str:
    """One TLV's value; returns text for the TLV's summary line."""
    cap = pkt.cap
    val = bytes(buf[v : v + n])
    w = pkt.scratch.get("wpan")
    if t == 0:  # Source Address
        if n not in (2, 8):
            return _bad_len(pkt, lay, tn, buf, t, v, n, "2 or 8")
        tn.add(FM.tlv_source_addr, val, v, n)
        if n == 2 and w is not None:
            short = int.from_bytes(val, "big")
            ext = w.src64
            if ext is None:
                # Not a Wireshark rule: a sender using its short MAC address still names its
                # extended address in the link-local IPv6 source of MLE (Thread §4.4).
                c = _sender_ext_candidates(pkt)
                ext = c[0] if c else None
            if ext is not None:
                wpan.learn_short_address(cap, w.src_pan, short, ext, pkt.number)
        return " = " + ":".join(f"{b:02x}" for b in val)
    if t == 1:
        if n != 1:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "1")
        mo = buf[v]
        tn.add(FM.tlv_mode_nwk_data, bool(mo & 0x01), v, 1)
        tn.add(FM.tlv_mode_device_type, bool(mo & 0x02), v, 1)
        tn.add(FM.tlv_mode_sec_data_req, bool(mo & 0x04), v, 1)
        tn.add(FM.tlv_mode_idle_rx, bool(mo & 0x08), v, 1)
        return f" = {mo:02x}"
    if t == 2:
        if n != 4:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "4")
        to = int.from_bytes(val, "big")
        tn.add(FM.tlv_timeout, to, v, 4)
        return f" = {to}"
    if t in (3, 4):
        tn.add(FM.tlv_challenge if t == 3 else FM.tlv_response, val, v, n)
        return f" = {val.hex()}"
    if t in (5, 8):
        if n != 4:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "4")
        c = int.from_bytes(val, "big")
        tn.add(FM.tlv_ll_frm_cntr if t == 5 else FM.tlv_mle_frm_cntr, c, v, 4)
        return f" = {c}"
    if t == 6 and n >= 1:
        return _link_quality(pkt, lay, tn, buf, v, n)
    if t == 7 and n >= 5:
        pid = buf[v]
        tn.add(FM.tlv_network_param_id, pid, v, 1)
        tn.add(FM.tlv_network_delay, int.from_bytes(buf[v + 1 : v + 5], "big"), v + 1, 4)
        r = v + 5
        rest = n - 5
        if pid == 0 and rest >= 2:
            tn.add(FM.tlv_network_channel, int.from_bytes(buf[r : r + 2], "big"), r, 2)
        elif pid == 1 and rest >= 2:
            tn.add(FM.tlv_network_pan_id, int.from_bytes(buf[r : r + 2], "big"), r, 2)
        elif pid == 2 and rest >= 1:
            tn.add(FM.tlv_network_pmt_join, bool(buf[r] & 1), r, 1)
        elif pid == 3:
            tn.add(FM.tlv_network_bcn_payload, buf[r : r + rest], r, rest)
        else:
            tn.add(FM.tlv_network_unknown, buf[r : r + rest], r, rest)
        return f" = {NWK_PARAMS.get(pid, f'Unknown ({pid})')}"
    if t == 9:
        return _route64(pkt, lay, tn, buf, v, n)
    if t == 10:
        if n != 2:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "2")
        tn.add(FM.tlv_addr16, val, v, 2)
        if w is not None and w.dst64 is not None:
            # Wireshark: an allocated Address16 belongs to the (extended) MAC destination.
            pan = w.dst_pan if w.dst_pan is not None else w.src_pan
            wpan.learn_short_address(cap, pan, int.from_bytes(val, "big"), w.dst64, pkt.number)
        return " = " + ":".join(f"{b:02x}" for b in val)
    if t == 11:
        if n != 8:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "8")
        tn.add(FM.tlv_leader_data_partition_id, int.from_bytes(buf[v : v + 4], "big"), v, 4)
        tn.add(FM.tlv_leader_data_weighting, buf[v + 4], v + 4, 1)
        tn.add(FM.tlv_leader_data_data_version, buf[v + 5], v + 5, 1)
        tn.add(FM.tlv_leader_data_stable_data_version, buf[v + 6], v + 6, 1)
        tn.add(FM.tlv_leader_data_router_id, buf[v + 7], v + 7, 1)
        return ""
    if t == 12:
        if n:
            _network_data(pkt, buf, v, v + n, src)
        return ""
    if t == 13:
        for i in range(n):
            tn.add(FM.tlv_type, buf[v + i], v + i, 1)
        return ""
    if t == 14:
        if n != 1:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "1")
        tn.add(FM.tlv_scan_mask_r, bool(buf[v] & 0x80), v, 1)
        tn.add(FM.tlv_scan_mask_e, bool(buf[v] & 0x40), v, 1)
        return f" = {buf[v]:02x}"
    if t == 15:
        if n not in (7, 10):
            return _bad_len(pkt, lay, tn, buf, t, v, n, "7 or 10")
        fl = tn.add(FM.tlv_conn_flags, None, v, 1)
        pp = (buf[v] >> 6) & 3
        fl.add(FM.tlv_conn_flags_pp, pp - 4 if pp & 2 else pp, v, 1)
        for i, fd in enumerate((FM.tlv_conn_lq3, FM.tlv_conn_lq2, FM.tlv_conn_lq1, FM.tlv_conn_leader_cost,
                                FM.tlv_conn_id_seq, FM.tlv_conn_active_rtrs), start=1):
            tn.add(fd, buf[v + i], v + i, 1)
        if n == 10:
            tn.add(FM.tlv_conn_sed_buf_size, int.from_bytes(buf[v + 7 : v + 9], "big"), v + 7, 2)
            tn.add(FM.tlv_conn_sed_dgram_cnt, buf[v + 9], v + 9, 1)
        return ""
    if t in (16, 17):
        if n != 1:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "1")
        tn.add(FM.tlv_link_margin if t == 16 else FM.tlv_status, buf[v], v, 1)
        return f" = {buf[v]}dB" if t == 16 else f" = {buf[v]}"
    if t == 18:
        if n != 2:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "2")
        ver = int.from_bytes(val, "big")
        tn.add(FM.tlv_version, ver, v, 2)
        return f" = {ver}"
    if t == 19:
        return _addr_reg(pkt, lay, tn, buf, v, n)
    if t == 20:
        if n != 3:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "3")
        tn.add(FM.tlv_channel_page, buf[v], v, 1)
        tn.add(FM.tlv_channel, int.from_bytes(buf[v + 1 : v + 3], "big"), v + 1, 2)
        return ""
    if t == 21:
        if n != 2:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "2")
        tn.add(FM.tlv_pan_id, int.from_bytes(val, "big"), v, 2)
        return ""
    if t in (22, 23):
        if n != 8:
            return _bad_len(pkt, lay, tn, buf, t, v, n, "8")
        secs = int.from_bytes(buf[v : v + 6], "big")
        ticks = int.from_bytes(buf[v + 6 : v + 8], "big") >> 1
        tn.add(FM.tlv_active_tstamp if t == 22 else FM.tlv_pending_tstamp,
               secs * 1_000_000_000 + round(ticks * TICK_NS), v, 8)
        return ""
    if t in (24, 25, 26):
        _meshcop(pkt, tn, buf, v, v + n, src, learn=t == 24)
        return ""
    tn.add(FM.tlv_unknown, val, v, n)
    return ""


def _link_quality(pkt: Packet, lay: Layer, tn: Node, buf: bytes, v: int, n: int) -> str:
    size = buf[v] & 0x0F
    tn.add(FM.tlv_lqi_complete, bool(buf[v] & 0x80), v, 1)
    tn.add(FM.tlv_lqi_size, size, v, 1)
    rec = size + 3
    if (n - 1) % rec:
        pkt.expert(lay, Severity.WARN, Group.MALFORMED, "TLV Length & Size field disagree", v, 1)
        tn.add(FM.tlv_unknown, buf[v + 1 : v + n], v + 1, n - 1)
        return ""
    q = v + 1
    for _ in range((n - 1) // rec):
        r = tn.add(FM.tlv_neighbor, None, q, rec)
        r.add(FM.tlv_neighbor_flagI, bool(buf[q] & 0x80), q, 1)
        r.add(FM.tlv_neighbor_flagO, bool(buf[q] & 0x40), q, 1)
        r.add(FM.tlv_neighbor_flagP, bool(buf[q] & 0x20), q, 1)
        r.add(FM.tlv_neighbor_idr, buf[q + 1], q + 1, 1)
        r.add(FM.tlv_neighbor_addr, buf[q + 2 : q + rec], q + 2, size + 1)
        q += rec
    k = (n - 1) // rec
    return f": {k} Neighbor{'s' if k != 1 else ''}" if k else ""


def _route64(pkt: Packet, lay: Layer, tn: Node, buf: bytes, v: int, n: int) -> str:
    if n < 9:
        return _bad_len(pkt, lay, tn, buf, 9, v, n, "at least 9")
    tn.add(FM.tlv_route64_id_seq, buf[v], v, 1)
    mask = int.from_bytes(buf[v + 1 : v + 9], "big")
    tn.add(FM.tlv_route64_id_mask, buf[v + 1 : v + 9], v + 1, 8)
    ids = [i for i in range(64) if mask >> (63 - i) & 1]
    if len(ids) != n - 9:
        pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                   f"TLV Length inconsistent: Route64 has {n - 9} entries for {len(ids)} router IDs", v - 1, 1)
        tn.add(FM.tlv_unknown, buf[v + 9 : v + n], v + 9, n - 9)
        return ""
    q = v + 9
    for rid in ids:
        e = buf[q]
        r = tn.add(FM.tlv_route64, e, q, 1, label=f"Routing Table Entry: 0x{e:02x} ({rid})" if pkt.tree else None)
        r.add(FM.tlv_route64_nbr_out, e >> 6, q, 1)
        r.add(FM.tlv_route64_nbr_in, (e >> 4) & 3, q, 1)
        r.add(FM.tlv_route64_cost, e & 0x0F, q, 1)
        q += 1
    return ""


def _addr_reg(pkt: Packet, lay: Layer, tn: Node, buf: bytes, v: int, n: int) -> str:
    q, end = v, v + n
    entries: list[tuple[int, bool]] = []
    while q < end:
        comp = bool(buf[q] & 0x80)
        ln = 9 if comp else 17
        entries.append((q, comp))
        q += ln
    if q != end:
        return _bad_len(pkt, lay, tn, buf, 19, v, n, "a whole number of entries")
    for q, comp in entries:
        e = tn.add(FM.tlv_addr_reg, None, q, 9 if comp else 17)
        e.add(FM.tlv_addr_reg_iid_type, comp, q, 1)
        if comp:
            e.add(FM.tlv_addr_reg_cid, buf[q] & 0x0F, q, 1)
            e.add(FM.tlv_addr_reg_iid, buf[q + 1 : q + 9], q + 1, 8)
        else:
            e.add(FM.tlv_addr_reg_ipv6, bytes(buf[q + 1 : q + 17]), q + 1, 16)
    return ""


def _meshcop(pkt: Packet, tn: Node, buf: bytes, v: int, end: int, src: int, learn: bool) -> None:
    """Operational dataset / discovery TLVs are MeshCoP TLVs: hand them to the MeshCoP dissector
    if one is registered, and learn the mesh-local prefix (6LoWPAN context 0) from an active one."""
    if learn:
        tlvs, _errs = decode_tlvs(buf, v, end)
        for t in tlvs:
            if t.type == MESHCOP_ML_PREFIX and t.length == 8:
                sixlowpan.learn_context(pkt.cap, 0, t.value + bytes(8), ML_PREFIX_LEN, pkt.number)
    for name in ("thread_meshcop", "meshcop"):
        if name in REGISTRY.named:
            proto = pkt.protocol
            info = pkt.info
            pkt.cap.call(name, pkt, buf, v, end, src)
            pkt.protocol, pkt.info = proto, info
            return
    tn.add(FM.tlv_meshcop, buf[v:end], v, end - v)


def _network_data(pkt: Packet, buf: bytes, p: int, end: int, src: int) -> None:
    """Thread Network Data (Thread 1.3 §5.18): TLVs ``type<<1 | stable, length, value``."""
    proto, info = pkt.protocol, pkt.info
    lay = pkt.add_layer(P_NWD, p, end - p, src)
    pkt.protocol = proto
    _nwd_tlvs(pkt, lay, buf, p, end, src, None, 0)
    pkt.info = info


def _nwd_tlvs(pkt: Packet, parent: Node, buf: bytes, p: int, end: int, src: int,
              prefix: tuple[bytes, int] | None, depth: int) -> None:
    count = 0
    while p < end:
        count += 1
        if count > MAX_TLVS or depth > 2:
            pkt.malformed(parent, "Thread Network Data nested or repeated too deeply", p)
            return
        if p + 2 > end:
            pkt.malformed(parent, "Thread §5.18: Network Data TLV header cut short", p)
            return
        t, stable, n = buf[p] >> 1, bool(buf[p] & 1), buf[p + 1]
        v = p + 2
        if v + n > end:
            pkt.malformed(parent, f"Thread §5.18: Network Data TLV {NWD_TYPES.get(t, t)} runs past its container", p + 1)
            return
        tn = parent.add(FN.tlv, None, p, 2 + n,
                        label=f"TLV ({NWD_TYPES.get(t, f'Unknown ({t})')})" if pkt.tree else None)
        tn.add(FN.tlv_type, t, p, 1)
        tn.add(FN.tlv_stable, stable, p, 1)
        tn.add(FN.tlv_len, n, p + 1, 1)
        if t == NWD_PREFIX and n >= 2:
            plen = buf[v + 1]
            pbytes = (plen + 7) // 8
            if 2 + pbytes > n or plen > 128:
                tn.add(FN.tlv_unknown, buf[v:v + n], v, n)
            else:
                pfx = bytes(buf[v + 2 : v + 2 + pbytes]).ljust(16, b"\x00")
                tn.add(FN.tlv_prefix_domain_id, buf[v], v, 1)
                tn.add(FN.tlv_prefix_length, plen, v + 1, 1)
                tn.add(FN.tlv_prefix, pfx, v + 2, pbytes)
                _nwd_tlvs(pkt, tn, buf, v + 2 + pbytes, v + n, src, (pfx, plen), depth + 1)
        elif t == NWD_6LOWPAN_ID and n >= 2:
            fl = buf[v]
            tn.add(FN.tlv_6co_flag, fl, v, 1)
            tn.add(FN.tlv_6co_flag_c, bool(fl & 0x10), v, 1)
            tn.add(FN.tlv_6co_flag_cid, fl & 0x0F, v, 1)
            tn.add(FN.tlv_6co_context_length, buf[v + 1], v + 1, 1)
            if prefix is not None:
                # The context is the enclosing Prefix TLV's prefix, truncated to the context length.
                sixlowpan.learn_context(pkt.cap, fl & 0x0F, prefix[0], buf[v + 1], pkt.number)
        elif t == 0 and n % 3 == 0:
            for i in range(v, v + n, 3):
                tn.add(FN.tlv_has_route_br_16, int.from_bytes(buf[i : i + 2], "big"), i, 2)
                tn.add(FN.tlv_has_route_pref, buf[i + 2] >> 6, i + 2, 1)
        elif t == 2 and n >= 2:
            tn.add(FN.tlv_border_router_16, int.from_bytes(buf[v : v + 2], "big"), v, 2)
            if n > 2:
                tn.add(FN.tlv_unknown, buf[v + 2 : v + n], v + 2, n - 2)
        elif t == NWD_COMMISSIONING:
            _meshcop(pkt, tn, buf, v, v + n, src, learn=False)
        elif t == 6 and n >= 2:
            tn.add(FN.tlv_server_16, int.from_bytes(buf[v : v + 2], "big"), v, 2)
            tn.add(FN.tlv_server_data, buf[v + 2 : v + n], v + 2, n - 2)
        elif n:
            tn.add(FN.tlv_unknown, buf[v : v + n], v, n)
        p = v + n


REGISTRY.add("udp.port", MLE_PORT, "mle")
