"""MeshCoP TLVs and the Thread relay messages ``c/rx`` / ``c/tx``, described once for both directions.

A MeshCoP TLV is ``type(1) length(1) value``; length 0xFF means an extended TLV whose real length is
the next two bytes (big-endian). :data:`TLVS` is the one table of TLV types (name, field suffix, value
format, fixed length); :func:`encode_tlv` and :func:`decode_tlvs` both read it.

The relay messages are described by :data:`RELAY_RX` and :data:`RELAY_TX`: the URI and the TLVs in the
order OpenThread appends them (``src/core/meshcop/joiner_router.cpp`` ``HandleUdpReceive`` for
``c/rx``; ``commissioner.cpp`` ``SendRelayTransmit`` for ``c/tx``):

* ``c/rx`` (Joiner Router → Border Agent/Commissioner, TMF port 61631): Joiner UDP Port, Joiner IID,
  Joiner Router Locator, Joiner DTLS Encapsulation.
* ``c/tx`` (Commissioner → Joiner Router): Joiner UDP Port, Joiner IID, Joiner Router Locator, then
  Joiner Router KEK only in the one that carries JOIN_FIN.rsp, then Joiner DTLS Encapsulation.

Both are NON POST requests with a 2-byte token (``OT_COAP_DEFAULT_TOKEN_LENGTH``), Uri-Path ``c`` /
``rx`` (or ``tx``), and OpenThread always writes the DTLS Encapsulation as an extended TLV (its
``ExtendedTlv``), even for a short datagram; :class:`TlvDef.always_extended` records that.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

from jpdissect.coapmsg import POST, URI_PATH, CoapMessage, MsgType
from jpdissect.framing import FramingError, Span

#: MeshCoP TLV header: type(1) length(1); length 0xFF escapes to a 2-byte length.
EXTENDED_LENGTH = 0xFF
TLV_HEADER_LEN = 2
EXTENDED_HEADER_LEN = 4
MAX_TLV_VALUE = 0xFFFF
#: Most TLVs walked in one payload.
MAX_TLVS = 256
#: Thread TMF CoAP port and OpenThread's default joiner UDP port (OPENTHREAD_CONFIG_JOINER_UDP_PORT).
TMF_PORT = 61631
JOINER_UDP_PORT_DEFAULT = 1000
#: OpenThread's OT_COAP_DEFAULT_TOKEN_LENGTH.
TMF_TOKEN_LEN = 2


class Fmt(enum.Enum):
    BYTES = "bytes"
    UINT = "uint"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class TlvDef:
    type: int
    name: str
    field: str
    fmt: Fmt = Fmt.BYTES
    #: Fixed value length, when the Thread spec fixes one.
    length: int | None = None
    #: Written with the 0xFF escape whatever the length (OpenThread's ExtendedTlv).
    always_extended: bool = False


JOINER_DTLS_ENCAPSULATION, JOINER_UDP_PORT, JOINER_IID, JOINER_ROUTER_LOCATOR, JOINER_ROUTER_KEK = (
    17, 18, 19, 20, 21)

#: Thread 1.x MeshCoP TLV types (Thread spec §8.10; OpenThread ``meshcop_tlvs.hpp``).
TLVS: dict[int, TlvDef] = {d.type: d for d in (
    TlvDef(0, "Channel", "channel", length=3),
    TlvDef(1, "PAN ID", "pan_id", Fmt.UINT, 2),
    TlvDef(2, "Extended PAN ID", "xpan_id", length=8),
    TlvDef(3, "Network Name", "net_name", Fmt.STRING),
    TlvDef(4, "PSKc", "pskc", length=16),
    TlvDef(5, "Network Key", "network_key", length=16),
    TlvDef(6, "Network Key Sequence", "key_sequence", Fmt.UINT, 4),
    TlvDef(7, "Mesh Local Prefix", "ml_prefix", length=8),
    TlvDef(8, "Steering Data", "steering_data"),
    TlvDef(9, "Border Agent Locator", "ba_locator", Fmt.UINT, 2),
    TlvDef(10, "Commissioner ID", "commissioner_id", Fmt.STRING),
    TlvDef(11, "Commissioner Session ID", "session_id", Fmt.UINT, 2),
    TlvDef(12, "Security Policy", "security_policy"),
    TlvDef(13, "Get", "get"),
    TlvDef(14, "Active Timestamp", "active_timestamp", length=8),
    TlvDef(15, "Commissioner UDP Port", "commissioner_udp_port", Fmt.UINT, 2),
    TlvDef(16, "State", "state", Fmt.UINT, 1),
    TlvDef(JOINER_DTLS_ENCAPSULATION, "Joiner DTLS Encapsulation", "joiner_dtls_encap",
           always_extended=True),
    TlvDef(JOINER_UDP_PORT, "Joiner UDP Port", "joiner_udp_port", Fmt.UINT, 2),
    TlvDef(JOINER_IID, "Joiner IID", "joiner_iid", length=8),
    TlvDef(JOINER_ROUTER_LOCATOR, "Joiner Router Locator", "joiner_rloc", Fmt.UINT, 2),
    TlvDef(JOINER_ROUTER_KEK, "Joiner Router KEK", "joiner_router_kek", length=16),
    TlvDef(32, "Provisioning URL", "provisioning_url", Fmt.STRING),
    TlvDef(33, "Vendor Name", "vendor_name", Fmt.STRING),
    TlvDef(34, "Vendor Model", "vendor_model", Fmt.STRING),
    TlvDef(35, "Vendor SW Version", "vendor_sw_version", Fmt.STRING),
    TlvDef(36, "Vendor Data", "vendor_data", Fmt.STRING),
    TlvDef(37, "Vendor Stack Version", "vendor_stack_version", length=6),
    TlvDef(48, "UDP Encapsulation", "udp_encap"),
    TlvDef(49, "IPv6 Address", "ipv6_address", length=16),
    TlvDef(51, "Pending Timestamp", "pending_timestamp", length=8),
    TlvDef(52, "Delay Timer", "delay_timer", Fmt.UINT, 4),
    TlvDef(53, "Channel Mask", "channel_mask"),
    TlvDef(54, "Count", "count", Fmt.UINT, 1),
    TlvDef(55, "Period", "period", Fmt.UINT, 2),
    TlvDef(56, "Scan Duration", "scan_duration", Fmt.UINT, 2),
    TlvDef(57, "Energy List", "energy_list"),
    TlvDef(128, "Discovery Request", "discovery_request", length=2),
    TlvDef(129, "Discovery Response", "discovery_response", length=2),
    TlvDef(130, "Joiner Advertisement", "joiner_advertisement"),
)}


def tlv_name(t: int) -> str:
    d = TLVS.get(t)
    return d.name if d is not None else f"Unknown TLV {t}"


def _value_bytes(d: TlvDef | None, value: bytes | int | str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, int):
        if d is None or d.fmt is not Fmt.UINT or d.length is None:
            raise TypeError(f"{tlv_name(d.type if d else -1)} does not take an integer")
        return value.to_bytes(d.length, "big")
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"cannot encode {type(value).__name__} as a TLV value")


def encode_tlv(t: int, value: bytes | int | str, *, extended: bool | None = None) -> bytes:
    """One TLV; ``extended`` None = as OpenThread writes this type (escape when needed or always)."""
    d = TLVS.get(t)
    raw = _value_bytes(d, value)
    if d is not None and d.length is not None and len(raw) != d.length:
        raise ValueError(f"{d.name} is {d.length} bytes, got {len(raw)}")
    if len(raw) > MAX_TLV_VALUE:
        raise ValueError("TLV value longer than 65535 bytes")
    if extended is None:
        extended = (d is not None and d.always_extended) or len(raw) >= EXTENDED_LENGTH
    if extended:
        return bytes((t, EXTENDED_LENGTH)) + len(raw).to_bytes(2, "big") + raw
    if len(raw) >= EXTENDED_LENGTH:
        raise ValueError(f"{len(raw)} bytes need the extended length form")
    return bytes((t, len(raw))) + raw


class Tlv(NamedTuple):
    """A decoded TLV with its byte positions (absolute) and the header form used.

    An immutable record like the frozen dataclasses elsewhere, as a named tuple because the
    dissector builds one per TLV of every Thread relay message: it is built several times faster.
    """

    type: int
    offset: int
    header_len: int
    length: int
    value: bytes
    extended: bool

    @property
    def value_offset(self) -> int:
        return self.offset + self.header_len

    @property
    def end(self) -> int:
        return self.offset + self.header_len + self.length

    @property
    def name(self) -> str:
        return tlv_name(self.type)

    @property
    def typed(self) -> bytes | int | str:
        """The value per the table (uint, string or bytes)."""
        d = TLVS.get(self.type)
        if d is not None and d.fmt is Fmt.UINT and (d.length is None or len(self.value) == d.length):
            return int.from_bytes(self.value, "big")
        if d is not None and d.fmt is Fmt.STRING:
            return self.value.decode("utf-8", "replace")
        return self.value

    def span(self) -> Span:
        d = TLVS.get(self.type)
        return Span(d.field if d else f"tlv{self.type}", self.offset, self.header_len + self.length,
                    self.value_offset, self.length, self.typed)


def decode_tlvs(buf: bytes, off: int = 0, end: int | None = None,
                max_tlvs: int = MAX_TLVS) -> tuple[list[Tlv], list[FramingError]]:
    """Walk ``buf[off:end]`` as MeshCoP TLVs; stops at the first cut-short TLV; never raises."""
    if end is None:
        end = len(buf)
    tlvs: list[Tlv] = []
    errors: list[FramingError] = []
    p = off
    while p < end:
        if len(tlvs) >= max_tlvs:
            errors.append(FramingError(p, f"MeshCoP: more than {max_tlvs} TLVs, rest not walked", end - p))
            break
        if p + TLV_HEADER_LEN > end:
            errors.append(FramingError(p, "MeshCoP TLV: header cut short", end - p))
            break
        t, n = buf[p], buf[p + 1]
        hlen = TLV_HEADER_LEN
        extended = n == EXTENDED_LENGTH
        if extended:
            if p + EXTENDED_HEADER_LEN > end:
                errors.append(FramingError(p, "MeshCoP TLV: extended length (0xFF + 2 bytes) cut short",
                                           end - p))
                break
            n = (buf[p + 2] << 8) | buf[p + 3]
            hlen = EXTENDED_HEADER_LEN
        if p + hlen + n > end:
            errors.append(FramingError(p, f"MeshCoP TLV {tlv_name(t)}: value of {n} bytes runs past the "
                                          "payload end", end - p))
            break
        tlv = Tlv(t, p, hlen, n, bytes(buf[p + hlen:p + hlen + n]), extended)
        d = TLVS.get(t)
        if d is not None and d.length is not None and n != d.length:
            errors.append(FramingError(p, f"MeshCoP TLV {d.name}: length {n}, the Thread spec fixes "
                                          f"{d.length}", hlen + n))
        tlvs.append(tlv)
        p += hlen + n
    return tlvs, errors


# ---------------------------------------------------------------------------
# The relay messages


@dataclass(frozen=True, slots=True)
class RelayLayout:
    """A relay URI and its TLVs in OpenThread's order; ``optional`` ones may be absent."""

    uri: str
    tlvs: tuple[int, ...]
    optional: frozenset[int] = frozenset()
    ref: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.uri.split("/"))


RELAY_RX = RelayLayout("c/rx", (JOINER_UDP_PORT, JOINER_IID, JOINER_ROUTER_LOCATOR, JOINER_DTLS_ENCAPSULATION),
                       ref="OpenThread joiner_router.cpp HandleUdpReceive")
RELAY_TX = RelayLayout("c/tx", (JOINER_UDP_PORT, JOINER_IID, JOINER_ROUTER_LOCATOR, JOINER_ROUTER_KEK,
                                JOINER_DTLS_ENCAPSULATION), frozenset({JOINER_ROUTER_KEK}),
                       ref="OpenThread commissioner.cpp SendRelayTransmit")
RELAY_LAYOUTS = {RELAY_RX.uri: RELAY_RX, RELAY_TX.uri: RELAY_TX}

_FIELD_OF = {JOINER_UDP_PORT: "joiner_port", JOINER_IID: "joiner_iid", JOINER_ROUTER_LOCATOR: "router_locator",
             JOINER_ROUTER_KEK: "kek", JOINER_DTLS_ENCAPSULATION: "dtls"}


@dataclass(slots=True)
class Relay:
    """The content of one ``c/rx`` or ``c/tx``: who the joiner is and the DTLS datagram."""

    uri: str
    joiner_port: int
    joiner_iid: bytes
    router_locator: int
    dtls: bytes
    kek: bytes | None = None
    tlvs: list[Tlv] = field(default_factory=list)

    @property
    def layout(self) -> RelayLayout:
        return RELAY_LAYOUTS[self.uri]

    def encode_tlvs(self) -> bytes:
        """The TLVs in the layout's order (OpenThread's), optional ones only when set."""
        out = bytearray()
        for t in self.layout.tlvs:
            v = getattr(self, _FIELD_OF[t])
            if v is None and t in self.layout.optional:
                continue
            out += encode_tlv(t, v)
        return bytes(out)

    def to_coap(self, token: bytes, mid: int) -> CoapMessage:
        """The TMF message: NON POST, Uri-Path from the layout, TLVs as payload."""
        msg = CoapMessage(type=MsgType.NON, code=POST, mid=mid, token=token)
        for seg in self.layout.path:
            msg.add(URI_PATH, seg)
        msg.payload = self.encode_tlvs()
        return msg

    def encode(self, token: bytes, mid: int) -> bytes:
        return self.to_coap(token, mid).encode()


def decode_relay(uri: str, payload: bytes, off: int = 0,
                 end: int | None = None) -> tuple[Relay | None, list[Tlv], list[FramingError]]:
    """Read the relay TLVs of ``uri`` (``c/rx`` or ``c/tx``) from a CoAP payload; never raises.

    OpenThread finds TLVs by type, not position, so order is not enforced; a missing mandatory TLV
    is an error and the relay is then None.
    """
    layout = RELAY_LAYOUTS.get(uri)
    tlvs, errors = decode_tlvs(payload, off, end)
    if layout is None:
        errors.append(FramingError(off, f"not a relay URI: {uri!r}"))
        return None, tlvs, errors
    found: dict[int, Tlv] = {}
    bad_length = False
    wanted = layout.tlvs
    for t in tlvs:
        tt = t.type
        if tt in wanted and tt not in found:
            if TLVS[tt].length not in (None, t.length):
                bad_length = True  # a fixed-length relay TLV of the wrong size: already reported
            found[tt] = t
    if len(found) < len(wanted):
        missing = [tlv_name(t) for t in wanted if t not in found and t not in layout.optional]
        if missing:
            errors.append(FramingError(off, f"{uri} ({layout.ref}): missing {', '.join(missing)}",
                                       (end if end is not None else len(payload)) - off))
            return None, tlvs, errors
    if bad_length:
        return None, tlvs, errors
    relay = Relay(uri, int.from_bytes(found[JOINER_UDP_PORT].value, "big"), found[JOINER_IID].value,
                  int.from_bytes(found[JOINER_ROUTER_LOCATOR].value, "big"),
                  found[JOINER_DTLS_ENCAPSULATION].value,
                  found[JOINER_ROUTER_KEK].value if JOINER_ROUTER_KEK in found else None, tlvs)
    return relay, tlvs, errors


def decode_relay_message(data: bytes) -> tuple[CoapMessage | None, Relay | None, list[FramingError]]:
    """A whole TMF datagram: the CoAP message, and the relay when its Uri-Path is ``c/rx``/``c/tx``."""
    msg, cerrs = CoapMessage.decode(data)
    errors = [FramingError(e.offset, e.message, e.length) for e in cerrs]
    if msg is None:
        return None, None, errors
    uri = msg.uri_path.lstrip("/")
    if uri not in RELAY_LAYOUTS:
        errors.append(FramingError(0, f"TMF message to {msg.uri_path!r}, not c/rx or c/tx"))
        return msg, None, errors
    # Offsets stay absolute in ``data``: the payload is its tail.
    relay, _tlvs, terrs = decode_relay(uri, data, len(data) - len(msg.payload), len(data))
    return msg, relay, errors + terrs


__all__ = [
    "JOINER_DTLS_ENCAPSULATION", "JOINER_IID", "JOINER_ROUTER_KEK", "JOINER_ROUTER_LOCATOR",
    "JOINER_UDP_PORT", "RELAY_RX", "RELAY_TX", "TLVS", "TMF_PORT", "Relay", "RelayLayout", "Tlv",
    "TlvDef", "decode_relay", "decode_relay_message", "decode_tlvs", "encode_tlv", "tlv_name",
]
