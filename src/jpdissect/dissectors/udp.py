"""UDP (RFC 768): header, length and checksum checks, stream index, port dispatch.

Behaviour follows tshark 4.0's packet-udp.c so ``-T fields`` output is the
same: checksum Unverified unless ``-o udp.check_checksum:TRUE``, a zero
checksum over IPv4 is "Not present" and over IPv6 "Illegal" (RFC 8200
§8.1), ``udp.stream`` numbers conversations (the unordered address/port
pair) from 0 in order of first appearance -- an ICMP error's quoted header
counts, as in Wireshark -- and ``udp.time_relative``/``udp.time_delta`` are
per stream.

Downstream dissectors read ``pkt.srcport``/``pkt.dstport`` and
``pkt.scratch["udp.stream"]`` (not set by a lazy engine -- ``read -T fields``
-- unless a stream field is asked for: its table would grow with every
conversation of the capture); the payload ends where the UDP Length says.
"""

from __future__ import annotations

import struct
from array import array

from jpdissect.dissectors._netcommon import (
    CKSUM_BAD,
    CKSUM_GOOD,
    CKSUM_ILLEGAL,
    CKSUM_NOT_PRESENT,
    CKSUM_STATUS,
    CKSUM_UNVERIFIED,
    IN_ERROR,
    inet_checksum,
    plan,
    pseudo_sum,
    want_group,
    wants,
)
from jpdissect.dissectors.eth import _reported_end
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, Base, F, Group, Layer, Packet, Pref, Protocol, Severity, declare_prefs

UDP_HEADER = 8
STREAM_STATE = "udp.streams"
IPPROTO_UDP = 17

P_UDP = Protocol("udp", "User Datagram Protocol", "UDP")
FU = P_UDP.declare(
    F("udp.srcport", "Source Port", FT.UINT16),
    F("udp.dstport", "Destination Port", FT.UINT16),
    F("udp.port", "Source or Destination Port", FT.UINT16),
    F("udp.length", "Length", FT.UINT16, "Length in octets including this header and the data"),
    F("udp.checksum", "Checksum", FT.UINT16, base=Base.HEX),
    F("udp.checksum_calculated", "Calculated Checksum", FT.UINT16, base=Base.HEX),
    F("udp.checksum.status", "Checksum Status", FT.UINT8, strings=CKSUM_STATUS),
    F("udp.stream", "Stream index", FT.UINT32),
    F("udp.time_relative", "Time since first frame", FT.RELTIME,
      "Time relative to first frame in this UDP stream"),
    F("udp.time_delta", "Time since previous frame", FT.RELTIME,
      "Time delta from previous frame in this UDP stream"),
    F("udp.payload", "Payload", FT.BYTES),
    F("udp.length.bad", "Bad length value", FT.NONE),
    F("udp.checksum.zero", "Illegal checksum value (0)", FT.NONE),
    F("udp.checksum.bad", "Bad checksum", FT.NONE),
    F("udp.possible_traceroute", "Possible traceroute", FT.NONE),
)

declare_prefs(
    Pref("udp.check_checksum", bool, False, "Validate the UDP checksum if possible (tshark default: off)"),
    Pref("udp.ignore_ipv6_zero_checksum", bool, False, "Ignore zero-value UDP checksums over IPv6"),
    Pref("udp.calculate_timestamps", bool, True, "Calculate timestamps relative to the UDP stream"),
)

# LBL traceroute's base port 33434 (= 32768 + 666), three probes per hop, 30 hops.
TRACEROUTE_BASE, TRACEROUTE_SPAN = 32768 + 666, 30

_HDR = struct.Struct("!HHHH")


_KEY_TAIL = struct.Struct("!HHB").pack


class Streams:
    """Per-conversation facts Wireshark's udp_analysis keeps: index and timestamps.

    Stream numbers must be tshark's -- a conversation seen again hours later gets its old number
    -- so every conversation stays in the table for the whole capture. That makes the entry size
    the memory cost per pledge on a Join Proxy capture, hence: the key is one bytes object
    (``addr_a addr_b port_a port_b len(addr_a)``, the lower endpoint first, so either direction
    finds it; the length byte keeps keys of different address sizes apart) rather than a pair of
    (address, port) tuples, and the per-stream times live in two flat arrays indexed by stream
    number rather than in an object per stream: ~150 bytes per conversation instead of ~500.
    """

    __slots__ = ("index", "first_ns", "prev_ns")

    def __init__(self) -> None:
        self.index: dict[bytes, int] = {}
        self.first_ns = array("q")
        self.prev_ns = array("q")

    def __len__(self) -> int:
        return len(self.index)

    def of(self, src: bytes | None, sport: int, dst: bytes | None, dport: int, ts: int) -> int:
        """The stream number of (src, sport) <-> (dst, dport), created on first sight at ``ts``."""
        a, b = src or b"", dst or b""
        if (a, sport) <= (b, dport):
            key = a + b + _KEY_TAIL(sport, dport, len(a))
        else:
            key = b + a + _KEY_TAIL(dport, sport, len(b))
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.index)
            self.first_ns.append(ts)
            self.prev_ns.append(ts)
        return i


def streams_of(pkt: Packet) -> Streams:
    """The engine's UDP stream table, made on first use."""
    st = pkt.cap.state
    streams = st.get(STREAM_STATE)
    if streams is None:
        streams = st[STREAM_STATE] = Streams()
    return streams


_G_PORTS = (FU.srcport, FU.dstport, FU.port)
_G_LEN = (FU.length,)
_G_CSUM = (FU.checksum, FU.checksum_status, FU.checksum_calculated)
_G_STREAM = (FU.stream,)
_G_TIME = (FU.time_relative, FU.time_delta)
_G_PAYLOAD = (FU.payload,)
_TR_LO, _TR_HI = TRACEROUTE_BASE + 1, TRACEROUTE_BASE + TRACEROUTE_SPAN


_GROUPS = (_G_PORTS, _G_LEN, _G_CSUM, _G_STREAM, _G_TIME, _G_PAYLOAD)


@dissector("udp", "User Datagram Protocol")
def dissect_udp(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    n = end - off
    if n < UDP_HEADER:
        lay = pkt.add_layer(P_UDP, off, max(n, 0), src)
        return _short(pkt, lay, buf, off, end, src, IN_ERROR in pkt.scratch)
    lay = pkt.add_layer(P_UDP, off, UDP_HEADER, src)
    sport, dport, ulen, csum = _HDR.unpack_from(buf, off)
    cap = pkt.cap
    st = cap.state
    w = st.get("_plan.udp") or plan(pkt, "_plan.udp", _GROUPS)
    scratch = pkt.scratch
    in_error = IN_ERROR in scratch
    cols = pkt.cols
    tree = pkt.tree
    prefs = cap.prefs
    if tree:
        lay.label = f"User Datagram Protocol, Src Port: {sport}, Dst Port: {dport}"
    if w[0]:
        lay.add(FU.srcport, sport, off, 2)
        lay.add(FU.dstport, dport, off + 2, 2)
        lay.add(FU.port, sport, off, 2)
        lay.add(FU.port, dport, off + 2, 2)
    if _TR_LO <= sport <= _TR_HI or _TR_LO <= dport <= _TR_HI:
        _traceroute(pkt, lay, sport, dport, off)
    # Bytes on the wire after the UDP header start (more than captured after a snaplen cut).
    rep_len = n + (pkt.wirelen - pkt.caplen if src == 0 and end == len(buf) else 0)
    if w[1]:
        lay.add(FU.length, ulen, off + 4, 2,
                label=(f"Length: {ulen} (bogus, must be >= 8)" if ulen < UDP_HEADER and tree else None))
    if ulen < UDP_HEADER or ulen > rep_len or in_error:
        # Jumbogram, bad lengths, quoted headers: the careful path.
        r = _odd_length(pkt, lay, sport, dport, ulen, rep_len, in_error)
        if r is None:
            return True
        ulen, info = r
    elif cols:
        pkt.info = f"{sport} → {dport} Len={ulen - UDP_HEADER}"
    if csum == 0 or w[2] or prefs.get("udp.check_checksum"):
        _checksum(pkt, lay, buf, off, n, rep_len, ulen, csum, scratch.get("ip.fragmented", False))
    pkt.srcport, pkt.dstport = sport, dport
    pkt.ptype = "udp"
    if w[3] or w[4] or not cap.lazy:
        # The stream table grows by one entry per conversation for the whole capture: a lazy
        # engine's caller reads neither scratch nor unprimed fields, so without udp.stream or the
        # stream times asked for it is not kept at all (``read -T fields`` stays flat).
        streams = st.get(STREAM_STATE)
        if streams is None:
            streams = streams_of(pkt)
        ts = pkt.ts_ns
        si = streams.of(pkt.net_src, sport, pkt.net_dst, dport, ts)
        scratch["udp.stream"] = si
        if w[3]:
            lay.add(FU.stream, si, off + UDP_HEADER, 0, generated=True)
        if ulen > UDP_HEADER and not in_error and prefs.get("udp.calculate_timestamps", True):
            prev = streams.prev_ns
            delta = ts - prev[si]
            prev[si] = ts
            if w[4]:
                t = lay.add_text("[Timestamps]", off, 0)
                t.add(FU.time_relative, ts - streams.first_ns[si], off, 0, generated=True)
                t.add(FU.time_delta, delta, off, 0, generated=True)
    if ulen == UDP_HEADER:
        return True
    start = off + UDP_HEADER
    pend = off + ulen if off + ulen < end else end
    if in_error and pend <= start:
        return True
    if w[5] and pend > start:
        lay.add(FU.payload, buf[start:pend], start, pend - start,
                label=f"UDP payload ({pend - start} bytes)" if tree else None)
    return cap.call_ports("udp.port", "udp", pkt, buf, start, pend, src)


def _odd_length(pkt: Packet, lay: Layer, sport: int, dport: int, ulen: int, rep_len: int,
                in_error: bool) -> tuple[int, str] | None:
    """RFC 768 / RFC 2675 §4 length rules; None when the datagram ends here (Wireshark's return)."""
    cols = pkt.cols
    off = lay.offset
    info = f"{sport} → {dport}" if cols else ""
    jumbo = False
    if ulen == 0 and pkt.net_src is not None and len(pkt.net_src) == 16:
        ulen = rep_len  # RFC 2675 §4: a UDP jumbogram over IPv6 has Length 0
        jumbo = True
    if ulen < UDP_HEADER:
        lay.add(FU.length_bad, None, off + 4, 2)
        pkt.expert(lay, Severity.ERROR, Group.MALFORMED, f"Bad length value {ulen} < 8", off + 4, 2)
        if cols:
            pkt.info = f"{info} [BAD UDP LENGTH {ulen} < 8]"
        pkt.srcport, pkt.dstport = sport, dport
        return None
    if ulen > rep_len and not pkt.scratch.get("ip.fragmented", False) and not in_error:
        lay.add(FU.length_bad, None, off + 4, 2)
        pkt.expert(lay, Severity.ERROR, Group.MALFORMED, f"Bad length value {ulen} > IP payload length",
                   off + 4, 2)
        if cols:
            info += f" [BAD UDP LENGTH {ulen} > IP PAYLOAD LENGTH]"
    if cols and not in_error:
        pkt.info = f"{info} Len={ulen - UDP_HEADER}" + (" [Jumbogram]" if jumbo else "")
    return ulen, info


def _traceroute(pkt: Packet, lay: Layer, sport: int, dport: int, off: int) -> None:
    for port, at in ((sport, off), (dport, off + 2)):
        if TRACEROUTE_BASE < port <= TRACEROUTE_BASE + TRACEROUTE_SPAN:
            k = port - TRACEROUTE_BASE - 1
            lay.add(FU.possible_traceroute, None, at, 2)
            pkt.expert(lay, Severity.CHAT, Group.SEQUENCE,
                       f"Possible traceroute: hop #{k // 3 + 1}, attempt #{k % 3 + 1}", at, 2)


def _short(pkt: Packet, lay: object, buf: bytes, off: int, end: int, src: int, in_error: bool) -> bool:
    """Fewer than 8 bytes: the ports if they fit, then a cut or malformed note."""
    n = end - off
    if n >= 4:
        sport, dport = struct.unpack_from("!HH", buf, off)
        if wants(pkt, P_UDP):
            lay.add(FU.srcport, sport, off, 2)  # type: ignore[attr-defined]
            lay.add(FU.dstport, dport, off + 2, 2)  # type: ignore[attr-defined]
            lay.add(FU.port, sport, off, 2)  # type: ignore[attr-defined]
            lay.add(FU.port, dport, off + 2, 2)  # type: ignore[attr-defined]
        pkt.srcport, pkt.dstport = sport, dport
        if pkt.cols:
            pkt.info = f"{sport} → {dport}"
    if in_error:
        return True  # RFC 792: an ICMP error need only quote 8 bytes past the IP header
    if off + UDP_HEADER <= _reported_end(pkt, buf, end, src):
        pkt.expert(lay, Severity.WARN, Group.UNDECODED,  # type: ignore[arg-type]
                   f"Packet size limited during capture: UDP header cut short ({n} of 8 bytes captured)", off)
        if pkt.cols:
            pkt.info = "[Packet size limited during capture]"
    else:
        pkt.malformed(lay, f"RFC 768: UDP header needs 8 bytes, only {n} present", off, n)  # type: ignore[arg-type]
    return True


def _checksum(pkt: Packet, lay: object, buf: bytes, off: int, n: int, rep_len: int, ulen: int, csum: int,
              no_verify: bool) -> None:
    tree = pkt.tree
    want = want_group(pkt, "_g.udp.csum", _G_CSUM)
    calc = None
    v6 = pkt.net_src is not None and len(pkt.net_src) == 16
    if csum == 0:
        if not v6 or pkt.cap.prefs.get("udp.ignore_ipv6_zero_checksum") or IN_ERROR in pkt.scratch:
            status, note = CKSUM_NOT_PRESENT, "zero-value ignored"
        else:
            status, note = CKSUM_ILLEGAL, "zero-value illegal"
            lay.add(FU.checksum_zero, None, off + 6, 2)  # type: ignore[attr-defined]
            pkt.expert(lay, Severity.ERROR, Group.CHECKSUM,  # type: ignore[arg-type]
                       "RFC 8200 §8.1: a zero UDP checksum is illegal over IPv6", off + 6, 2)
            if pkt.cols:
                pkt.info += " [ILLEGAL CHECKSUM (0)]"
    elif (not no_verify and n >= rep_len and n >= ulen and pkt.cap.prefs.get("udp.check_checksum")
          and pkt.net_src is not None):
        seg = buf[off : off + ulen]
        residue = inet_checksum(seg, pseudo_sum(pkt.net_src, pkt.net_dst, IPPROTO_UDP, ulen))
        if residue == 0:
            status, note, calc = CKSUM_GOOD, "correct", csum
        else:
            status = CKSUM_BAD
            zeroed = bytes(seg[:6]) + b"\0\0" + bytes(seg[8:])
            calc = inet_checksum(zeroed, pseudo_sum(pkt.net_src, pkt.net_dst, IPPROTO_UDP, ulen)) or 0xFFFF
            note = f"incorrect, should be 0x{calc:04x} (maybe caused by \"UDP checksum offload\"?)"
            lay.add(FU.checksum_bad, None, off + 6, 2)  # type: ignore[attr-defined]
            pkt.expert(lay, Severity.ERROR, Group.CHECKSUM,  # type: ignore[arg-type]
                       f"Bad checksum [should be 0x{calc:04x}]", off + 6, 2)
            if pkt.cols:
                pkt.info += " [UDP CHECKSUM INCORRECT]"
    else:
        status, note = CKSUM_UNVERIFIED, "unverified"
    if want:
        c = lay.add(FU.checksum, csum, off + 6, 2,  # type: ignore[attr-defined]
                    label=f"Checksum: 0x{csum:04x} [{note}]" if tree else None)
        if calc is not None:
            c.add(FU.checksum_calculated, calc, off + 6, 2, generated=True)
        c.add(FU.checksum_status, status, off + 6, 2, generated=True)


REGISTRY.add("ip.proto", IPPROTO_UDP, "udp")
