"""What a UDP datagram costs on an IEEE 802.15.4 radio: 6LoWPAN frames, PSDU bytes and air time.

Wired captures (the lab's Ethernet legs) say nothing about the radio, yet the working groups argue
about relay framings in radio frames: a framing that pushes a DTLS flight over a fragment boundary
costs a whole extra frame, its ACK and its inter-frame space. This module answers "how many 802.15.4
frames and how much air time would this datagram take" from the UDP payload length and the ports,
under a stated :class:`LinkProfile`. Every number comes from a spec and the profile says which:

* IPv6 header compression, RFC 6282 §3 (IPHC): 2 bytes of dispatch/encoding, then whatever is not
  elided -- traffic class/flow label (TF=11: both zero, elided), hop limit (HLIM 1/64/255 elided),
  each address as 0, 2, 8 or 16 bytes inline depending on whether its IID derives from the MAC
  address, is a 16-bit short-address IID, or a 64-bit IID, and whether the prefix is link-local or
  in a shared context (SAC/DAC=1); a context other than 0 costs the CID byte.
* UDP next-header compression, RFC 6282 §4.3: 1 byte of NHC dispatch, ports 1 byte (both in
  0xF0B0-0xF0BF), 3 bytes (one in 0xF000-0xF0FF) or 4 bytes, checksum 2 bytes (carried: §4.3.2 lets
  only an upper layer that protects the datagram otherwise elide it; we never assume that).
* Fragmentation, RFC 4944 §5.3 with RFC 6282 §2: a datagram whose compressed form does not fit one
  frame is cut into a FRAG1 (4-byte header, carries the compressed headers) and FRAGNs (5-byte
  header); ``datagram_size`` and ``datagram_offset`` count the *uncompressed* IPv6 datagram, and
  every fragment but the last covers a multiple of 8 uncompressed bytes. ``datagram_size`` is 11
  bits, so nothing above 2047 bytes can be fragmented.
* The MAC frame, IEEE 802.15.4-2015 §7.2: frame control 2, sequence number 1, addressing fields
  (destination PAN ID 2, source PAN ID 2 unless PAN ID compression, each address 2 or 8), the
  auxiliary security header (§9.4: security control 1, frame counter 4 unless suppressed, key
  identifier 0/1/5/9 bytes for key identifier mode 0-3), the MIC (4/8/16 bytes for security levels
  1,5 / 2,6 / 3,7), FCS 2; aMaxPhyPacketSize 127 bytes of PSDU (§11.3). No header or payload IEs,
  no mesh header (route-over), no RPL option or 6LoRH (RFC 8138) -- said again in the profile text.
* The PHY, 2.4 GHz O-QPSK (§12): 250 kbit/s, so 4 µs per bit and 32 µs per byte; 16 µs per symbol.
  Each frame carries a 5-byte SHR (4-byte preamble, 1-byte SFD) and a 1-byte PHR in front of the
  PSDU: 6 bytes = 192 µs. An immediate ACK is a 5-byte PSDU (frame control, sequence number, FCS),
  sent aTurnaroundTime = 12 symbols (192 µs, §11.3 Table 11-1) after the frame. After the exchange
  comes the interframe space (§6.2.4): SIFS 12 symbols (192 µs) when the MPDU is at most
  aMaxSifsFrameSize = 18 bytes, LIFS 40 symbols (640 µs) otherwise. CSMA-CA backoffs and CCA are
  random and *not* counted: :attr:`RadioCost.channel_us` is the deterministic minimum.

``airtime_us`` is energy on air (data frames + ACKs); ``channel_us`` adds turnaround and IFS, the
time the channel is busy per datagram when frames follow each other as fast as the MAC allows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

# ---------------------------------------------------------------------------
# Constants, each from the section named

#: IEEE 802.15.4-2015 §11.3 Table 11-1: aMaxPhyPacketSize (PSDU bytes, FCS included).
MAX_PSDU = 127
#: §12.1.2 (O-QPSK PPDU): preamble 4 + SFD 1 = SHR 5 bytes, PHR 1 byte.
PHY_SHR_BYTES = 5
PHY_PHR_BYTES = 1
PHY_OVERHEAD_BYTES = PHY_SHR_BYTES + PHY_PHR_BYTES
#: 2.4 GHz O-QPSK: 250 kbit/s -> 4 µs per bit, 62.5 ksymbol/s -> 16 µs per symbol.
US_PER_BIT = 4
US_PER_BYTE = 8 * US_PER_BIT
US_PER_SYMBOL = 16
#: §11.3 Table 11-1: aTurnaroundTime, RX-to-TX, the ACK's delay after the frame.
TURNAROUND_SYMBOLS = 12
#: §6.2.4 / §8.4 (macSifsPeriod, macLifsPeriod for O-QPSK; aMaxSifsFrameSize).
SIFS_SYMBOLS = 12
LIFS_SYMBOLS = 40
MAX_SIFS_FRAME_SIZE = 18
#: §7.3.3 Imm-Ack: frame control 2 + sequence number 1 + FCS 2.
ACK_PSDU = 5
FCS_BYTES = 2
FRAME_CONTROL_BYTES = 2
SEQ_BYTES = 1
PAN_ID_BYTES = 2
#: §9.4.1: security control 1 byte, frame counter 4 bytes (absent when suppressed, 2015 only).
SEC_CONTROL_BYTES = 1
FRAME_COUNTER_BYTES = 4
#: §9.4.4: key identifier field length per key identifier mode 0..3.
KEY_ID_BYTES = (0, 1, 5, 9)
#: §9.4.2.2: MIC length per security level 0..7 (level 4, ENC without MIC, carries none).
MIC_BYTES = (0, 4, 8, 16, 0, 4, 8, 16)

#: RFC 4944 §5.3: FRAG1 header 4 bytes, FRAGN 5 bytes, offsets in 8-byte units, 11-bit size.
FRAG1_HEADER = 4
FRAGN_HEADER = 5
FRAG_UNIT = 8
MAX_DATAGRAM_SIZE = 2047
#: RFC 6282 §3.1.1: the two IPHC bytes; §3.1.2 the CID byte.
IPHC_BASE = 2
IPHC_CID_BYTE = 1
#: RFC 6282 §3.1.1 TF: inline bytes for TF=11, 10, 01, 00.
TF_BYTES = frozenset({0, 1, 3, 4})
#: RFC 4944 §5.2: mesh header dispatch/flags/hops-left byte (addresses follow).
MESH_DISPATCH_BYTES = 1
#: RFC 6282 §3.1.1 HLIM: these hop limits are elided.
ELIDED_HOP_LIMITS = frozenset({1, 64, 255})
#: RFC 6282 §4.3.1: the UDP NHC dispatch byte; §4.3.3 port forms; the inline checksum.
UDP_NHC_DISPATCH = 1
UDP_CHECKSUM_BYTES = 2
UDP_PORTS_4BIT = 1
UDP_PORTS_8BIT = 3
UDP_PORTS_INLINE = 4
PORT_4BIT_BASE, PORT_4BIT_MASK = 0xF0B0, 0xFFF0
PORT_8BIT_BASE, PORT_8BIT_MASK = 0xF000, 0xFF00
IPV6_HEADER = 40
UDP_HEADER = 8


class AddrMode(enum.Enum):
    """802.15.4 addressing mode of one MAC address field (§7.2.2.9)."""

    SHORT = "short"
    EXT = "ext"

    @property
    def nbytes(self) -> int:
        return 2 if self is AddrMode.SHORT else 8


class Iid(enum.Enum):
    """How much of an IPv6 address IPHC must carry inline (RFC 6282 §3.1.1 SAM/DAM).

    ``MAC``: prefix link-local or in a context, IID derived from the frame's MAC address -- 0 bytes.
    ``IID16``: prefix elided, IID ``0000:00ff:fe00:XXXX`` -- 2 bytes. ``IID64``: prefix elided,
    IID inline -- 8 bytes. ``INLINE``: no context for the prefix -- the whole 16 bytes.
    """

    MAC = "mac"
    IID16 = "iid16"
    IID64 = "iid64"
    INLINE = "inline"

    @property
    def nbytes(self) -> int:
        return {Iid.MAC: 0, Iid.IID16: 2, Iid.IID64: 8, Iid.INLINE: 16}[self]


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """One radio hop's configuration: MAC header, security, IPHC address forms, ACKs.

    Profiles are named and documented so a table can say which one it used (:meth:`describe`);
    :func:`profile` parses ``NAME[,key=value...]`` overrides from the command line.
    """

    name: str
    src_mode: AddrMode = AddrMode.EXT
    dst_mode: AddrMode = AddrMode.EXT
    pan_id_compression: bool = True
    security_level: int = 0
    key_id_mode: int = 1
    frame_counter_suppressed: bool = False
    src_iid: Iid = Iid.MAC
    dst_iid: Iid = Iid.MAC
    #: A non-zero context for either address costs the CID byte (RFC 6282 §3.1.2).
    nonzero_context: bool = False
    ack: bool = True
    #: RFC 6282 §3.1.1 TF: 0 (TF=11, both zero), 1 (TF=10, ECN+DSCP), 3 (TF=01), 4 (TF=00) bytes.
    tf_bytes: int = 0
    #: RFC 4944 §5.2 mesh header in every frame (mesh-under forwarding, e.g. Thread multi-hop):
    #: 1 byte + originator and final-destination addresses sized like the MAC addresses. The IIDs
    #: then derive from the mesh header on every hop (RFC 6282 §3.2.2).
    mesh_header: bool = False
    #: The relay leg crosses this many radio hops; costs are multiplied (route-over: each hop
    #: re-compresses and re-fragments, the profile applies to every hop).
    hops: int = 1
    source: str = ""
    #: Derived once (the cost function runs per datagram): PSDU overhead, payload room, IPHC base.
    _fixed: tuple[int, int, int, bool, int] = field(init=False, repr=False, compare=False, default=(0, 0, 0, True, 1))

    def __post_init__(self) -> None:
        if not 0 <= self.security_level <= 7:
            raise ValueError("security level is 0..7 (IEEE 802.15.4-2015 §9.4.2.2)")
        if not 0 <= self.key_id_mode <= 3:
            raise ValueError("key identifier mode is 0..3 (IEEE 802.15.4-2015 §9.4.2.3)")
        if self.hops < 1:
            raise ValueError("hops must be at least 1")
        if self.tf_bytes not in TF_BYTES:
            raise ValueError(f"tf_bytes is one of {sorted(TF_BYTES)} (RFC 6282 §3.1.1 TF)")
        base = (IPHC_BASE + (IPHC_CID_BYTE if self.nonzero_context else 0) + self.tf_bytes
                + self.src_iid.nbytes + self.dst_iid.nbytes + UDP_NHC_DISPATCH + UDP_CHECKSUM_BYTES)
        object.__setattr__(self, "_fixed", (self.frame_overhead, self.max_payload, base, self.ack, self.hops))

    # -- MAC ------------------------------------------------------------------
    @property
    def mhr_bytes(self) -> int:
        """Frame control, sequence number, PAN IDs and addresses (§7.2.1, intra-PAN)."""
        n = FRAME_CONTROL_BYTES + SEQ_BYTES + PAN_ID_BYTES + self.dst_mode.nbytes + self.src_mode.nbytes
        if not self.pan_id_compression:
            n += PAN_ID_BYTES
        return n

    @property
    def aux_security_bytes(self) -> int:
        if self.security_level == 0:
            return 0
        fc = 0 if self.frame_counter_suppressed else FRAME_COUNTER_BYTES
        return SEC_CONTROL_BYTES + fc + KEY_ID_BYTES[self.key_id_mode]

    @property
    def mic_bytes(self) -> int:
        return MIC_BYTES[self.security_level]

    @property
    def mesh_bytes(self) -> int:
        if not self.mesh_header:
            return 0
        return MESH_DISPATCH_BYTES + self.src_mode.nbytes + self.dst_mode.nbytes

    @property
    def frame_overhead(self) -> int:
        """PSDU bytes per frame that carry neither fragment header nor datagram (MAC + mesh header)."""
        return self.mhr_bytes + self.aux_security_bytes + self.mic_bytes + FCS_BYTES + self.mesh_bytes

    @property
    def max_payload(self) -> int:
        """Bytes of 6LoWPAN (fragment header + compressed headers + payload) one frame holds."""
        return MAX_PSDU - self.frame_overhead

    def describe(self) -> str:
        sec = ("no MAC security" if self.security_level == 0 else
               f"security level {self.security_level} (MIC {self.mic_bytes} B), key id mode "
               f"{self.key_id_mode}, aux header {self.aux_security_bytes} B")
        return (f"{self.name}: src {self.src_mode.value}/dst {self.dst_mode.value} MAC addresses, "
                f"PAN ID compression {'on' if self.pan_id_compression else 'off'}, {sec}; "
                f"MAC overhead {self.frame_overhead} B/frame incl. FCS, {self.max_payload} B 6LoWPAN "
                f"payload per frame; IPHC source {self.src_iid.value} ({self.src_iid.nbytes} B), "
                f"destination {self.dst_iid.value} ({self.dst_iid.nbytes} B)"
                f"{', CID byte' if self.nonzero_context else ''}, traffic class/flow label "
                f"{self.tf_bytes} B{', mesh header ' + str(self.mesh_bytes) + ' B/frame' if self.mesh_header else ''}; "
                f"{'ACK requested' if self.ack else 'no ACK'}; {self.hops} hop(s). {self.source}")

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("_fixed", None)
        for k, v in d.items():
            if isinstance(v, enum.Enum):
                d[k] = v.value
        return d


#: The pledge's hop: the pledge has no network key yet, so its frames go unsecured with its
#: extended (EUI-64) address -- seen in OpenThread's joiner frames (tests/data/thread/README.txt),
#: and RFC 9031 §5 has the JP accept the pledge's join traffic without link-layer keys. Both
#: addresses are link-local with IIDs derived from the MAC addresses, so IPHC elides them entirely
#: (RFC 6282 §3.2.2).
PLEDGE = LinkProfile(
    "pledge", src_mode=AddrMode.EXT, dst_mode=AddrMode.EXT, security_level=0, src_iid=Iid.MAC,
    dst_iid=Iid.MAC, tf_bytes=0,
    source="Defaults as OpenThread's joiner frames (ext/ext, unsecured, TF elided); RFC 6282 §3.2.2 "
           "IIDs from the MAC addresses.")

#: One hop of the JP<->Registrar path inside a secured mesh, as OpenThread sends its TMF relay
#: messages (checked frame by frame against tests/data/thread/thread_two_joiners.pcap): 16-bit
#: short MAC addresses, MAC security level 5 (ENC-MIC-32) with key identifier mode 1, mesh-local
#: prefix in context 0 with RLOC IIDs derived from the short addresses (elided), a DSCP in the
#: traffic class (TF=10, 1 byte). For several hops use ``hops=N`` and, mesh-under, ``mesh=1``.
MESH = LinkProfile(
    "mesh", src_mode=AddrMode.SHORT, dst_mode=AddrMode.SHORT, security_level=5, key_id_mode=1,
    src_iid=Iid.MAC, dst_iid=Iid.MAC, tf_bytes=1,
    source="Defaults as OpenThread's TMF frames between routers (short/short, level 5, key id mode 1, "
           "RLOC IIDs from the short addresses under context 0, TF=10).")

#: A route-over mesh that uses EUI-64 MAC addresses and global addresses with 64-bit IIDs, e.g.
#: 6TiSCH after the join: both IIDs inline (8 bytes each) under a shared context.
MESH_EXT = LinkProfile(
    "mesh-ext", src_mode=AddrMode.EXT, dst_mode=AddrMode.EXT, security_level=5, key_id_mode=1,
    src_iid=Iid.IID64, dst_iid=Iid.IID64,
    source="Extended MAC addresses, level 5/key id mode 1, both 64-bit IIDs inline under context 0 "
           "(route-over: valid on every hop).")

#: No compression help at all: full addresses inline (no shared context), unsecured.
WORST = LinkProfile(
    "uncompressed-addresses", src_mode=AddrMode.EXT, dst_mode=AddrMode.EXT, pan_id_compression=False,
    security_level=0, src_iid=Iid.INLINE, dst_iid=Iid.INLINE, source="Both addresses carried whole (no context), no PAN ID compression, unsecured.")

PROFILES: dict[str, LinkProfile] = {p.name: p for p in (PLEDGE, MESH, MESH_EXT, WORST)}
DEFAULT_PLEDGE_PROFILE = PLEDGE.name
DEFAULT_RELAY_PROFILE = MESH.name


_OVERRIDES = {
    "src": ("src_mode", AddrMode), "dst": ("dst_mode", AddrMode),
    "panc": ("pan_id_compression", bool), "sec": ("security_level", int), "kid": ("key_id_mode", int),
    "fcsupp": ("frame_counter_suppressed", bool), "src_iid": ("src_iid", Iid), "dst_iid": ("dst_iid", Iid),
    "cid": ("nonzero_context", bool), "ack": ("ack", bool), "hops": ("hops", int),
    "tf": ("tf_bytes", int), "mesh": ("mesh_header", bool),
}


def profile(spec: str | LinkProfile) -> LinkProfile:
    """``mesh`` or ``mesh,sec=6,hops=3,src=ext``: a named profile with overrides.

    Keys: src, dst (short|ext), panc (PAN ID compression), sec (0-7), kid (0-3), fcsupp, src_iid,
    dst_iid (mac|iid16|iid64|inline), cid, ack (booleans as 0/1, yes/no), hops, tf (0/1/3/4 bytes),
    mesh (RFC 4944 mesh header).
    """
    if isinstance(spec, LinkProfile):
        return spec
    name, *parts = [p.strip() for p in spec.split(",") if p.strip()] or [""]
    base = PROFILES.get(name)
    if base is None:
        raise ValueError(f"unknown link profile {name!r}; known: {', '.join(PROFILES)}")
    changes: dict[str, object] = {}
    for part in parts:
        key, sep, val = part.partition("=")
        if not sep or key not in _OVERRIDES:
            raise ValueError(f"bad link profile override {part!r}; keys: {', '.join(_OVERRIDES)}")
        attr, kind = _OVERRIDES[key]
        v: object
        if kind is bool:
            low = val.lower()
            if low not in ("1", "0", "yes", "no", "true", "false", "on", "off"):
                raise ValueError(f"{key}={val}: expected a boolean")
            v = low in ("1", "yes", "true", "on")
        elif kind is int:
            v = int(val, 0)
        else:
            v = kind(val)  # type: ignore[operator]
        changes[attr] = v
    if not changes:
        return base
    return replace(base, name=spec, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Header compression


def udp_ports_bytes(sport: int, dport: int) -> int:
    """RFC 6282 §4.3.3: bytes the two ports take after the NHC byte."""
    if sport & PORT_4BIT_MASK == PORT_4BIT_BASE and dport & PORT_4BIT_MASK == PORT_4BIT_BASE:
        return UDP_PORTS_4BIT
    if sport & PORT_8BIT_MASK == PORT_8BIT_BASE or dport & PORT_8BIT_MASK == PORT_8BIT_BASE:
        return UDP_PORTS_8BIT
    return UDP_PORTS_INLINE


def compressed_header_len(prof: LinkProfile, sport: int, dport: int, hop_limit: int = 64) -> int:
    """IPHC (RFC 6282 §3.1) + UDP NHC (§4.3) bytes for one datagram on this hop.

    Traffic class and flow label take ``prof.tf_bytes`` (OpenThread's joiner traffic elides them,
    its TMF messages carry a DSCP: TF=10, 1 byte); a hop limit other than 1/64/255 is inline.
    """
    n = prof._fixed[2] + udp_ports_bytes(sport, dport)
    if hop_limit not in ELIDED_HOP_LIMITS:
        n += 1
    return n


# ---------------------------------------------------------------------------
# Fragmentation


class DatagramTooLarge(ValueError):
    """RFC 4944 §5.3: datagram_size is 11 bits; larger datagrams cannot be fragmented."""


def fragment_payloads(payload_len: int, comp_hdr: int, max_payload: int,
                      uncomp_hdr: int = IPV6_HEADER + UDP_HEADER) -> tuple[int, ...]:
    """6LoWPAN bytes (fragment header + headers + data) of each frame carrying one datagram.

    ``payload_len`` is the UDP payload, ``comp_hdr`` the compressed IPv6+UDP headers, ``uncomp_hdr``
    the same headers uncompressed (48 for IPv6+UDP without extension headers). RFC 4944 §5.3:
    offsets count uncompressed bytes in 8-byte units, so every fragment but the last covers a
    multiple of 8 uncompressed bytes; FRAG1 holds the compressed headers (RFC 6282 §2).
    """
    if payload_len < 0 or comp_hdr < 0:
        raise ValueError("negative length")
    if comp_hdr + payload_len <= max_payload:
        return (comp_hdr + payload_len,)
    size = uncomp_hdr + payload_len
    if size > MAX_DATAGRAM_SIZE:
        raise DatagramTooLarge(f"{size}-byte IPv6 datagram exceeds RFC 4944's 11-bit datagram_size")
    room1 = max_payload - FRAG1_HEADER - comp_hdr
    covered1 = (uncomp_hdr + room1) // FRAG_UNIT * FRAG_UNIT
    chunk1 = covered1 - uncomp_hdr
    if room1 < 0 or chunk1 < 0:
        raise ValueError(f"compressed headers ({comp_hdr} B) do not fit a FRAG1 of {max_payload} B")
    frames = [FRAG1_HEADER + comp_hdr + chunk1]
    room_n = (max_payload - FRAGN_HEADER) // FRAG_UNIT * FRAG_UNIT
    if room_n <= 0:
        raise ValueError(f"a FRAGN of {max_payload} B carries no data")
    left = payload_len - chunk1
    while left > 0:
        c = min(room_n, left)
        frames.append(FRAGN_HEADER + c)
        left -= c
    return tuple(frames)


@dataclass(frozen=True, slots=True)
class RadioCost:
    """One datagram on one hop (times ``hops`` when the profile crosses several)."""

    frames: int
    psdu_bytes: int
    airtime_us: int
    channel_us: int
    header_bytes: int
    psdus: tuple[int, ...] = field(default=())

    @property
    def fragmented(self) -> bool:
        return self.frames > 1


def _frame_times(psdu: int, ack: bool) -> tuple[int, int]:
    air = (PHY_OVERHEAD_BYTES + psdu) * US_PER_BYTE
    busy = air
    if ack:
        ack_air = (PHY_OVERHEAD_BYTES + ACK_PSDU) * US_PER_BYTE
        air += ack_air
        busy += TURNAROUND_SYMBOLS * US_PER_SYMBOL + ack_air
    ifs = SIFS_SYMBOLS if psdu <= MAX_SIFS_FRAME_SIZE else LIFS_SYMBOLS
    busy += ifs * US_PER_SYMBOL
    return air, busy


def cost(prof: LinkProfile, payload_len: int, sport: int, dport: int, hop_limit: int = 64) -> RadioCost:
    """Frames, PSDU bytes and times for a UDP payload of ``payload_len`` bytes on this profile.

    Raises :class:`DatagramTooLarge` when RFC 4944 cannot carry it at all.
    """
    return _cost(prof._fixed, payload_len, compressed_header_len(prof, sport, dport, hop_limit))


@lru_cache(maxsize=1 << 16)
def _cost(fixed: tuple[int, int, int, bool, int], payload_len: int, hdr: int) -> RadioCost:
    """The cached part: everything that depends on the sizes only (ports enter through ``hdr``)."""
    overhead, max_payload, _base, ack, hops = fixed
    parts = fragment_payloads(payload_len, hdr, max_payload)
    psdus = tuple(p + overhead for p in parts)
    air = busy = 0
    for p in psdus:
        a, b = _frame_times(p, ack)
        air += a
        busy += b
    return RadioCost(len(psdus) * hops, sum(psdus) * hops, air * hops, busy * hops, hdr, psdus)


def cost_or_none(prof: LinkProfile, payload_len: int, sport: int, dport: int,
                 hop_limit: int = 64) -> RadioCost | None:
    """:func:`cost`, or None for a datagram 6LoWPAN cannot fragment (the tables show it as missing)."""
    try:
        return cost(prof, payload_len, sport, dport, hop_limit)
    except ValueError:
        return None


def costs(prof: LinkProfile, payload_lens: Iterable[int], sports: Iterable[int], dports: Iterable[int],
          hop_limit: int = 64) -> tuple[list[int | None], list[int | None], list[int | None], list[int | None]]:
    """Column-wise :func:`cost`: frames, PSDU bytes, air time, channel time (None where impossible)."""
    fr: list[int | None] = []
    ps: list[int | None] = []
    air: list[int | None] = []
    ch: list[int | None] = []
    for n, s, d in zip(payload_lens, sports, dports, strict=True):
        c = cost_or_none(prof, int(n), int(s), int(d), hop_limit)
        if c is None:
            fr.append(None)
            ps.append(None)
            air.append(None)
            ch.append(None)
        else:
            fr.append(c.frames)
            ps.append(c.psdu_bytes)
            air.append(c.airtime_us)
            ch.append(c.channel_us)
    return fr, ps, air, ch


def max_unfragmented_payload(prof: LinkProfile, sport: int, dport: int, hop_limit: int = 64) -> int:
    """Largest UDP payload that still fits one frame: the boundary a framing's overhead can cross."""
    return prof.max_payload - compressed_header_len(prof, sport, dport, hop_limit)


__all__ = [
    "MESH", "MESH_EXT", "PLEDGE", "PROFILES", "AddrMode", "DatagramTooLarge", "Iid", "LinkProfile",
    "RadioCost", "compressed_header_len", "cost", "cost_or_none", "costs", "fragment_payloads",
    "max_unfragmented_payload", "profile", "udp_ports_bytes",
]
