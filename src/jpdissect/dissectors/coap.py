"""CoAP over UDP (RFC 7252) with RFC 8974 extended tokens, RFC 7959 block-wise, RFC 7641 Observe.

The message layout (token-length and option-header nibbles, the option table, Content-Formats) comes
from :mod:`jpdissect.coapmsg`, the one description the project also builds messages from; this module
adds what a dissector needs on top: byte spans, expert info, request/response tracking across frames,
block reassembly, payload decoding (CBOR diagnostic notation, link-format, OSCORE), join-proxy
discovery (ports learned for the rest of the capture) and RFC 9031 CoJP marking.

Speed: with no tree and no primed field the per-packet work is the header, the option walk (needed
for tracking and the Info column) and the tracking dictionaries. CBOR and link-format bodies are only
decoded for the tree or primed fields -- except discovery answers, whose learned ports change how
later packets decode and so must be read in every mode.

What later dissectors can read (set on every CoAP message): ``pkt.scratch["coap"]``, a
:class:`CoapInfo`; ``pkt.scratch["coap.cojp"]`` (the RFC 9031 role, truthy) for CoJP traffic;
``pkt.scratch["coap.dtls_payload"]`` when the payload is a DTLS datagram (the "coap-dtls" scheme).
Dissector tables: ``coap.uri_path`` (key: the request path, e.g. ``"/c/rx"``; responses use their
request's) and ``coap.content_format`` (key: the number) hand the payload to another dissector.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from jpdissect import cbor, linkformat
from jpdissect.coapmsg import (
    CBOR_FORMATS,
    CBOR_SEQ_FORMATS,
    CODE_NAMES,
    HEADER_LEN,
    LINK_FORMAT,
    MAX_OPTION_NUMBER,
    OPTIONS,
    PAYLOAD_MARKER,
    RFC7252_MAX_TOKEN_LEN,
    STATELESS_PROXY,
    TEXT_FORMATS,
    TYPE_NAMES,
    TYPE_SHORT,
    OptFormat,
    OptionDef,
    check_option_length,
    code_name,
    content_format_name,
    option_critical,
    option_def,
    option_no_cache_key,
    option_unsafe,
    read_option_header,
    read_token_length,
)
from jpdissect.dissectors import oscore as osc
from jpdissect.dissectors.registry import REGISTRY, dissector, heuristic
from jpdissect.lifetime import Clock
from jpdissect.model import FT, F, FieldDef, Group, Packet, Pref, Protocol, Severity, declare_prefs

P = Protocol("coap", "Constrained Application Protocol", "CoAP")

#: Default CoAP port (RFC 7252 §12.6). 5684 (coaps) is DTLS and registered by the DTLS dissector.
COAP_PORT = 5683
#: Most message-layer / exchange records kept per capture (oldest dropped first); a backstop
#: behind the lifetimes below.
MAX_TRACKED = 200_000
#: RFC 7252 §4.8.2 EXCHANGE_LIFETIME with the default transmission parameters (247 s): a Message
#: ID may be reused after it (§4.5), so a message is remembered for duplicate detection that long;
#: an exchange (or a block transfer) without activity for that long is over. Observe
#: registrations (RFC 7641) live as long as notifications come, so they only leave by MAX_TRACKED.
EXCHANGE_LIFETIME_NS = 247 * 1_000_000_000
#: Largest body reassembled from RFC 7959 blocks.
MAX_REASSEMBLY = 1 << 20
#: Most block transfers in progress at once.
MAX_BLOCK_TRANSFERS = 4096
#: Token bytes shown in the Info column before an ellipsis.
INFO_TOKEN_BYTES = 16
#: Uri-Path values that mark an RFC 9031 join request (``/j``) and its JRC host name (§8.1).
COJP_HOST = "6tisch.arpa"
COJP_PATH = "/j"
#: RFC 7641 §3.4: Observe sequence numbers are compared modulo 2^24 within 2^23.
OBSERVE_WRAP = 1 << 24
OBSERVE_HALF = 1 << 23

_INT = FT.UINT32

# ---------------------------------------------------------------------------
# Fields. Option value fields are generated from the one option table (coapmsg.OPTIONS).

_OPT_FT = {OptFormat.UINT: FT.UINT32, OptFormat.STRING: FT.STRING, OptFormat.OPAQUE: FT.BYTES,
           OptFormat.EMPTY: FT.NONE}
# Wireshark declares Content-Format and Accept as strings (the media type); keep that and add numbers.
_OPT_FIELD_OVERRIDE = {12: FT.STRING, 17: FT.STRING}
_opt_defs: list[OptionDef] = [*OPTIONS.values(), STATELESS_PROXY]

_fields: list[FieldDef] = [
    F("coap.version", "Version", FT.UINT8, bitmask=0xC0),
    F("coap.type", "Type", FT.UINT8, strings=TYPE_NAMES, bitmask=0x30),
    F("coap.tkl", "Token Length field (TKL)", FT.UINT8, "The 4-bit TKL nibble (RFC 8974 §2.1)",
      bitmask=0x0F),
    F("coap.token_len", "Token Length", _INT, "Length of the token in bytes (RFC 8974: up to 65804)"),
    F("coap.token_len_ext", "Token Length extension", FT.UINT16,
      "Extended token length bytes (RFC 8974 §2.1: TKL 13 -> +13, TKL 14 -> +269)"),
    F("coap.token_extended", "Extended token (longer than 8 bytes)", FT.BOOLEAN,
      "RFC 8974 token; RFC 7252-only peers reject it"),
    F("coap.code", "Code", FT.UINT8, strings=CODE_NAMES),
    F("coap.mid", "Message ID", FT.UINT16),
    F("coap.token", "Token", FT.BYTES),
    F("coap.length", "Length", _INT, "CoAP message length"),
    F("coap.opt.name", "Opt Name", FT.STRING),
    F("coap.opt.desc", "Opt Desc", FT.STRING),
    F("coap.opt.number", "Option Number", FT.UINT16),
    F("coap.opt.critical", "Critical", FT.BOOLEAN, "RFC 7252 §5.4.6: odd option number"),
    F("coap.opt.unsafe", "Unsafe to forward", FT.BOOLEAN, "RFC 7252 §5.4.6: bit 1 of the option number"),
    F("coap.opt.no_cache_key", "NoCacheKey", FT.BOOLEAN, "RFC 7252 §5.4.6: bits 1-4 are 1110"),
    F("coap.opt.delta", "Opt Delta", FT.UINT8, bitmask=0xF0),
    F("coap.opt.delta_ext", "Opt Delta extended", FT.UINT16),
    F("coap.opt.length", "Opt Length", FT.UINT8, bitmask=0x0F),
    F("coap.opt.length_ext", "Opt Length extended", FT.UINT16),
    F("coap.opt.end_marker", "End of options marker", FT.UINT8),
    F("coap.opt.content_format", "Content-Format number", FT.UINT16),
    F("coap.opt.accept_format", "Accept number", FT.UINT16),
    F("coap.opt.block_number", "Block Number", _INT),
    F("coap.opt.block_mflag", "More Flag", FT.UINT8),
    F("coap.opt.block_size", "Encoded Block Size", FT.UINT8),
    F("coap.opt.object_security_reserved", "Reserved", FT.BOOLEAN, bitmask=0xE0),
    F("coap.opt.object_security_kid_context_present", "Key ID Context Present", FT.BOOLEAN, bitmask=0x10),
    F("coap.opt.object_security_kid_present", "Key ID Present", FT.BOOLEAN, bitmask=0x08),
    F("coap.opt.object_security_piv_len", "Partial IV Length", FT.UINT8, bitmask=0x07),
    F("coap.opt.object_security_piv", "Partial IV", FT.BYTES),
    F("coap.opt.object_security_kid_context_len", "Key ID Context Length", FT.UINT8),
    F("coap.opt.object_security_kid_context", "Key ID Context", FT.BYTES),
    F("coap.opt.object_security_kid", "Key ID", FT.BYTES),
    F("coap.oscore_piv", "OSCORE Partial IV", FT.BYTES, "The request's, shown on its response"),
    F("coap.oscore_kid", "OSCORE Key ID", FT.BYTES, "The request's, shown on its response"),
    F("coap.oscore_kid_context", "OSCORE Key ID Context", FT.BYTES, "The request's, shown on its response"),
    F("coap.opt.uri_path_recon", "Uri-Path", FT.STRING, "Reconstructed URI (host and path)"),
    F("coap.opt.unknown", "Unknown", FT.BYTES),
    F("coap.payload", "Payload", FT.STRING),
    F("coap.payload_desc", "Payload Desc", FT.STRING),
    F("coap.payload_length", "Payload Length", _INT),
    F("coap.payload.data", "Payload bytes", FT.BYTES),
    F("coap.payload.text", "Payload text", FT.STRING),
    F("coap.payload.cbor", "CBOR (diagnostic notation)", FT.STRING, "RFC 8949 §8"),
    F("coap.link", "Link", FT.STRING, "RFC 6690 link-value"),
    F("coap.link.target", "Target", FT.STRING),
    F("coap.link.rt", "Resource Type", FT.STRING),
    F("coap.link.if", "Interface Description", FT.STRING),
    F("coap.link.ct", "Content-Format hint", FT.STRING),
    F("coap.link.attr", "Attribute", FT.STRING, "name=value"),
    F("coap.discovery.rt", "Discovered resource type", FT.STRING),
    F("coap.discovery.uri", "Discovered endpoint", FT.STRING),
    F("coap.discovery.scheme", "Discovered scheme", FT.STRING),
    F("coap.discovery.addr", "Discovered address", FT.STRING),
    F("coap.discovery.port", "Discovered port", FT.UINT16),
    F("coap.discovery.brski_jp", "brski-jp port", FT.UINT16),
    F("coap.discovery.proto", "Port registered as", FT.STRING,
      "Dissector used for this UDP port for the rest of the capture"),
    F("coap.response_in", "Response In", FT.FRAMENUM),
    F("coap.response_to", "Request In", FT.FRAMENUM),
    F("coap.response_time", "Response Time", FT.RELTIME),
    F("coap.request_first_in", "Retransmission of request in", FT.FRAMENUM),
    F("coap.response_first_in", "Retransmission of response in", FT.FRAMENUM),
    F("coap.retransmitted", "Retransmitted", FT.NONE),
    F("coap.duplicate_of", "Duplicate of", FT.FRAMENUM, "Same sender, Message ID and type seen before"),
    F("coap.ack_to", "Acknowledges", FT.FRAMENUM, "The CON message this ACK/RST answers (by Message ID)"),
    F("coap.ack_in", "Acknowledged in", FT.FRAMENUM),
    F("coap.ack_time", "Acknowledgement Time", FT.RELTIME),
    F("coap.observe.registration_in", "Observe registration in", FT.FRAMENUM),
    F("coap.observe.notification", "Notification number", _INT, "Count of notifications so far"),
    F("coap.block_length", "Block Length", _INT),
    F("coap.blocks", "Blocks", FT.NONE),
    F("coap.block", "Block", FT.FRAMENUM),
    F("coap.block.count", "Block count", _INT),
    F("coap.block.reassembled.length", "Reassembled block length", _INT),
    F("coap.block.reassembled.in", "Reassembled in", FT.FRAMENUM),
    F("coap.block.error", "Block reassembly error", FT.STRING),
    F("coap.cojp", "RFC 9031 CoJP role", FT.STRING,
      "proxy-request, relayed-request or relayed-response (JP state in an extended token / option 40)"),
    F("coap.dtls_payload", "Payload is a DTLS datagram", FT.BOOLEAN, "The coap-dtls relay scheme"),
]
_opt_fd: dict[int, FieldDef] = {}
_declared = {f.abbrev for f in _fields}
for _d in _opt_defs:
    _abbrev = f"coap.opt.{_d.field}"
    if _abbrev in _declared:
        continue
    _ft = _OPT_FIELD_OVERRIDE.get(_d.number, _OPT_FT[_d.fmt])
    _fd = F(_abbrev, _d.name, _ft, f"{_d.name} option ({_d.ref})")
    _fields.append(_fd)
    _declared.add(_abbrev)
FC = P.declare(*_fields)
for _d in _opt_defs:
    _opt_fd[_d.number] = P.fields[f"coap.opt.{_d.field}"]
_BLOCK_OPTS = frozenset({19, 23, 27, 31})

# What the option walk extracts from each option in every mode (kind), and a bit per non-repeatable
# option for the RFC 7252 §5.4.5 repeat check -- precomputed from the one option table.
(_K_PATH, _K_CF, _K_OBSERVE, _K_BLOCK1, _K_BLOCK2, _K_HOST, _K_PORT, _K_QUERY, _K_OSCORE, _K_SIZE1,
 _K_PROXY, _K_STATELESS) = range(1, 13)
_KINDS = {11: _K_PATH, 12: _K_CF, 6: _K_OBSERVE, 27: _K_BLOCK1, 23: _K_BLOCK2, 3: _K_HOST, 7: _K_PORT,
          15: _K_QUERY, 9: _K_OSCORE, 60: _K_SIZE1, 35: _K_PROXY, 39: _K_PROXY, 40: _K_STATELESS}
_OPT_TABLE: dict[int, tuple[OptionDef, int, int, int, int]] = {
    d.number: (d, _KINDS.get(d.number, 0), 0 if d.repeatable else 1 << i, d.min_len, d.max_len)
    for i, d in enumerate(_opt_defs)
}
#: Codes whose combination with the type needs the RFC 7252 §4.1-§4.3 / §12.1 checks (_check_code):
#: Empty, and the reserved classes 1, 3 and 6-7 (any code of an ACK or RST is checked too).
_CHECKED_CODES = frozenset({0, *range(32, 64), *range(96, 128), *range(192, 256)})
_VALUE_FIELDS = [*_opt_fd.values(), FC.opt_content_format, FC.opt_accept_format, FC.opt_block_number,
                 FC.opt_block_mflag, FC.opt_block_size, FC.opt_unknown, FC.opt_number, FC.opt_critical,
                 FC.opt_unsafe, FC.opt_no_cache_key, FC.opt_object_security_reserved,
                 FC.opt_object_security_kid_context_present, FC.opt_object_security_kid_present,
                 FC.opt_object_security_piv_len, FC.opt_object_security_piv,
                 FC.opt_object_security_kid_context_len, FC.opt_object_security_kid_context,
                 FC.opt_object_security_kid]


def _any_opt_value_primed() -> bool:
    for fd in _VALUE_FIELDS:
        if fd.primed:
            return True
    return False

declare_prefs(
    Pref("coap.heuristic_strict", bool, True,
         "Heuristic CoAP on other UDP ports only claims messages whose options are all registered"),
    Pref("coap.stateless_proxy_option", bool, True,
         "Decode option 40 as the experimental Stateless-Proxy option of early RFC 9031 drafts"),
)

REGISTRY.add("udp.port", COAP_PORT, "coap")


# ---------------------------------------------------------------------------
# What later dissectors read


@dataclass(slots=True)
class CoapInfo:
    """The summary of one CoAP message, for dissectors above (Thread TMF, JP classification)."""

    type: int
    code: int
    mid: int
    token: bytes
    path: str
    content_format: int | None
    payload_offset: int
    payload_length: int
    token_offset: int
    request_frame: int | None = None
    options: list[tuple[int, int, int]] = field(default_factory=list)  # (number, value offset, length)


# ---------------------------------------------------------------------------
# Per-capture tracking state


@dataclass(slots=True)
class _Exchange:
    req_frame: int
    req_ts: int
    path: str
    recon: str
    method: int
    resp_frame: int | None = None
    last_ts: int = 0            # capture time of the latest response (0: none yet), for expiry
    observe: bool = False
    notifications: int = 0
    last_observe: int | None = None
    oscore: dict[str, Any] | None = None
    content_format: int | None = None


@dataclass(slots=True)
class _Msg:
    frame: int
    ts: int
    type: int
    ack_frame: int | None = None


@dataclass(slots=True)
class _Blocks:
    parts: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # byte offset -> (frame, data)
    total: int = 0
    done_frame: int | None = None
    body: bytes | None = None
    last_ts: int = 0  # capture time of the latest block, for expiry


class _State:
    """Per-engine CoAP state. ``values_primed`` is computed once: fields are primed before an
    engine starts (the CLI and :func:`jpdissect.api.packets` do), so it holds for the run.

    Tracking records expire after :data:`EXCHANGE_LIFETIME_NS` of capture time, dropped by a sweep
    every few seconds of capture time (:mod:`jpdissect.lifetime`): what a packet sees depends only
    on the capture, and a capture with a new pledge every second keeps minutes of state, not hours.
    """

    __slots__ = ("msgs", "exchanges", "blocks", "learned", "values_primed", "clock")

    def __init__(self) -> None:
        self.msgs: dict[tuple[Any, ...], _Msg] = {}
        self.exchanges: dict[tuple[Any, ...], _Exchange] = {}
        self.blocks: dict[tuple[Any, ...], _Blocks] = {}
        self.learned: dict[int, str] = {}
        self.values_primed = _any_opt_value_primed()
        self.clock = Clock()

    def sweep(self, state: dict[str, Any]) -> None:
        """Forget messages, exchanges and block transfers past their lifetime (and the OSCORE
        request facts stored with those exchanges)."""
        old = (self.clock.now or 0) - EXCHANGE_LIFETIME_NS
        msgs = self.msgs
        dead = []
        for k, m in msgs.items():  # in arrival order: stop at the first one still alive
            if m.ts >= old:
                break
            dead.append(k)
        for k in dead:
            del msgs[k]
        exs = self.exchanges
        dead = [k for k, e in exs.items() if not e.observe and (e.last_ts or e.req_ts) < old]
        ox = state.get(osc.STATE_KEY)
        for k in dead:
            del exs[k]
            if ox is not None:
                ox.pop(k, None)
        blocks = self.blocks
        for k in [k for k, b in blocks.items() if b.last_ts < old]:
            del blocks[k]


def _state(pkt: Packet) -> _State:
    cst = pkt.cap.state
    st = cst.get("coap")
    if st is None:
        st = cst["coap"] = _State()
    if st.clock.tick(pkt.ts_ns):
        st.sweep(cst)
    return st


def _bound(d: dict[Any, Any], limit: int) -> None:
    """Drop the oldest entries (dicts keep insertion order) so memory stays bounded.

    Evicts an eighth of the table at a time: dropping one entry per insert would copy the
    key list on every message once the table is full (quadratic on big captures).
    """
    if len(d) > limit:
        for k in list(itertools.islice(d, len(d) - limit + limit // 8)):
            del d[k]


# ---------------------------------------------------------------------------
# The heuristic


def looks_like_coap(buf: bytes, off: int, end: int, strict: bool = True) -> bool:
    """Strict enough not to claim random UDP: every header rule, a known code, options parsing to
    the end with (when strict) only registered option numbers and lengths within bounds."""
    n = end - off
    if n < HEADER_LEN:
        return False
    b0 = buf[off]
    if b0 >> 6 != 1:
        return False
    mtype = (b0 >> 4) & 3
    code = buf[off + 1]
    if code == 0:
        # RFC 7252 §4.1: Empty message is exactly the header (CON ping, ACK, RST).
        return n == HEADER_LEN and (b0 & 0x0F) == 0 and mtype != 1
    if code not in CODE_NAMES or code >= 224:
        return False
    if mtype == 3:  # RFC 7252 §4.2: Reset is always Empty
        return False
    if mtype == 2 and code < 32:  # an ACK never carries a request
        return False
    tlen, xlen, err = read_token_length(buf, off, end)
    if err is not None:
        return False
    p = off + HEADER_LEN + xlen + tlen
    if p > end:
        return False
    number = 0
    while p < end:
        if buf[p] == PAYLOAD_MARKER:
            return p + 1 < end
        delta, length, hlen, err = read_option_header(buf, p, end)
        if err is not None:
            return False
        number += delta
        v = p + hlen
        if number > MAX_OPTION_NUMBER or v + length > end:
            return False
        if strict and (option_def(number) is None or check_option_length(number, length) is not None):
            return False
        p = v + length
    return True


@heuristic("udp", "coap_udp", "coap")
def heur_coap(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    strict = pkt.cap.pref("coap.heuristic_strict") if pkt.cap is not None else True
    if not looks_like_coap(buf, off, end, strict):
        return False
    return dissect_coap(pkt, buf, off, end, src)


# ---------------------------------------------------------------------------
# The dissector


def _tok_str(tok: bytes) -> str:
    if len(tok) > INFO_TOKEN_BYTES:
        return tok[:INFO_TOKEN_BYTES].hex(" ") + " …"
    return tok.hex(" ")


def _opt_desc(num: int) -> str:
    return (f"Type {num}, {'Critical' if option_critical(num) else 'Elective'}, "
            f"{'Unsafe' if option_unsafe(num) else 'Safe'}"
            + (", NoCacheKey" if option_no_cache_key(num) and not option_unsafe(num) else ""))


def _looks_like_dtls(buf: bytes, off: int, end: int) -> bool:
    """A DTLS record header (RFC 6347 §4.1 / RFC 9147 §4): type 20-26, version 0xfeXX, length fits."""
    if end - off < 13:
        return False
    ct = buf[off]
    if not 20 <= ct <= 26 or buf[off + 1] != 0xFE or buf[off + 2] not in (0xFF, 0xFD, 0xFC):
        return False
    rlen = (buf[off + 11] << 8) | buf[off + 12]
    return off + 13 + rlen <= end


@dissector("coap", "Constrained Application Protocol (RFC 7252, RFC 8974 tokens)")
def dissect_coap(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    tree = pkt.tree
    lay = pkt.add_layer(P, off, end - off, src)
    n = end - off
    if n < HEADER_LEN:
        pkt.malformed(lay, f"RFC 7252 §3: message of {n} bytes is shorter than the 4-byte header", off, n)
        if pkt.cols:
            pkt.info = "CoAP [truncated header]"
        return True
    b0 = buf[off]
    ver = b0 >> 6
    mtype = (b0 >> 4) & 3
    tkl = b0 & 0x0F
    code = buf[off + 1]
    mid = (buf[off + 2] << 8) | buf[off + 3]
    add = lay.add
    # Attribute checks before calls: in fields mode most of these are skipped without a call.
    if tree or FC.length.primed:
        add(FC.length, n, off, n, generated=True)
    vnode = add(FC.version, ver, off, 1) if tree or FC.version.primed else lay
    if tree or FC.type.primed:
        add(FC.type, mtype, off, 1)
    if tree or FC.tkl.primed:
        add(FC.tkl, tkl, off, 1)
    cnode = add(FC.code, code, off + 1, 1) if tree or FC.code.primed else lay
    if tree or FC.mid.primed:
        add(FC.mid, mid, off + 2, 2)
    if ver != 1:
        pkt.malformed(vnode, f"RFC 7252 §3: version {ver} (must be 1)", off, 1)
    if mtype >= 2 or code in _CHECKED_CODES:
        _check_code(pkt, lay, cnode, mtype, code, off)

    p = off + HEADER_LEN
    if tkl < 13:
        tlen, xlen = tkl, 0
    else:
        tlen, xlen, terr = read_token_length(buf, off, end)
        if terr is not None:
            pkt.malformed(lay, terr, off, 1)
            if pkt.cols:
                pkt.info = f"{TYPE_SHORT[mtype]}, MID:{mid}, {code_name(code)}, [TKL {tkl}: format error]"
            _set_info(pkt, mtype, code, mid, b"", "", None, off + n, 0, off + HEADER_LEN)
            return True
    tok_off = p + xlen
    if xlen:
        if tree or FC.token_len_ext.primed:
            add(FC.token_len_ext, tlen - (13 if xlen == 1 else 269), p, xlen)
        if tree or FC.token_len.primed:
            add(FC.token_len, tlen, p, xlen, generated=True)
    elif tree or FC.token_len.primed:
        add(FC.token_len, tlen, off, 1)
    if tok_off + tlen > end:
        pkt.malformed(lay, f"RFC 8974 §2.1: token of {tlen} bytes runs past the message end "
                           f"({end - tok_off} bytes left)", tok_off, end - tok_off)
        if pkt.cols:
            pkt.info = f"{TYPE_SHORT[mtype]}, MID:{mid}, {code_name(code)}, [token truncated]"
        _set_info(pkt, mtype, code, mid, b"", "", None, end, 0, tok_off)
        return True
    token = buf[tok_off:tok_off + tlen]
    if tlen and (tree or FC.token.primed):
        add(FC.token, token, tok_off, tlen)
    if tlen > RFC7252_MAX_TOKEN_LEN and (tree or FC.token_extended.primed):
        tnode = add(FC.token_extended, True, tok_off, tlen, generated=True)
        if tree:
            pkt.expert(tnode, Severity.NOTE, Group.PROTOCOL,
                       f"Extended token of {tlen} bytes (RFC 8974); RFC 7252-only peers reject tokens "
                       "longer than 8 bytes", tok_off, tlen)
    p = tok_off + tlen
    if code == 0:
        if p < end:
            pkt.malformed(lay, "RFC 7252 §4.1: Empty message (code 0.00) with options or payload after the "
                               "header", p, end - p)
        if tlen:
            pkt.malformed(lay, "RFC 7252 §4.1: Empty message (code 0.00) with a token", tok_off, tlen)

    # -- options -----------------------------------------------------------
    number = 0
    idx = 0
    path_parts: list[str] = []
    query_parts: list[str] | None = None
    host: str | None = None
    port: int | None = None
    cf: int | None = None
    observe: int | None = None
    block1: int | None = None
    block2: int | None = None
    size1: int | None = None
    oscore_opt: osc.OscoreOption | None = None
    proxy = False
    stateless_proxy = False
    seen = 0  # bitmap of the non-repeatable registered options met so far (by table index)
    opt_spans: list[tuple[int, int, int]] = []
    payload_off = end
    st = _state(pkt)
    want_opt_fields = tree or FC.opt_name.primed
    want_values = want_opt_fields or st.values_primed
    while p < end:
        b = buf[p]
        if b == PAYLOAD_MARKER:
            if tree or FC.opt_end_marker.primed:
                add(FC.opt_end_marker, PAYLOAD_MARKER, p, 1)
            if p + 1 >= end:
                pkt.malformed(lay, "RFC 7252 §3: payload marker followed by a zero-length payload "
                                   "(message format error)", p, 1)
            else:
                payload_off = p + 1
            break
        delta = b >> 4
        length = b & 0x0F
        if delta < 13 and length < 13:
            hlen = 1
        else:
            delta, length, hlen, err = read_option_header(buf, p, end)
            if err is not None:
                pkt.malformed(lay, err, p, hlen)
                break
        onum = number + delta
        v = p + hlen
        if onum > MAX_OPTION_NUMBER:
            pkt.malformed(lay, f"RFC 7252 §3.1: option number {onum} exceeds 65535", p, hlen)
            break
        ve = v + length
        if ve > end:
            pkt.malformed(lay, f"RFC 7252 §3.1: option {onum} value of {length} bytes runs past the message "
                               f"end ({end - v} bytes left)", p, end - p)
            break
        number = onum
        idx += 1
        opt_spans.append((onum, v, length))
        ent = _OPT_TABLE.get(onum)
        # Values needed for tracking and the columns are decoded in every mode.
        if ent is not None:
            d, kind, bit, min_len, max_len = ent
            if kind:
                if kind == _K_PATH:
                    path_parts.append(buf[v:ve].decode("utf-8", "replace"))
                elif kind == _K_CF:
                    cf = int.from_bytes(buf[v:ve], "big")
                elif kind == _K_OBSERVE:
                    observe = int.from_bytes(buf[v:ve], "big")
                elif kind == _K_BLOCK1:
                    block1 = int.from_bytes(buf[v:ve], "big")
                elif kind == _K_BLOCK2:
                    block2 = int.from_bytes(buf[v:ve], "big")
                elif kind == _K_HOST:
                    host = buf[v:ve].decode("utf-8", "replace")
                elif kind == _K_PORT:
                    port = int.from_bytes(buf[v:ve], "big")
                elif kind == _K_QUERY:
                    if query_parts is None:
                        query_parts = []
                    query_parts.append(buf[v:ve].decode("utf-8", "replace"))
                elif kind == _K_OSCORE:
                    oscore_opt = osc.parse_option(buf, v, length)
                elif kind == _K_SIZE1:
                    size1 = int.from_bytes(buf[v:ve], "big")
                elif kind == _K_PROXY:
                    proxy = True
                elif kind == _K_STATELESS:
                    if pkt.cap is None or pkt.cap.pref("coap.stateless_proxy_option"):
                        stateless_proxy = True
                    else:
                        d = None
        else:
            d = None
            bit = 0
        if want_values:
            onode = _option_fields(pkt, lay, buf, idx, onum, d, p, hlen, v, length, want_opt_fields)
        else:
            onode = lay
        # Rule checks (cheap unless broken).
        if d is not None:
            if not min_len <= length <= max_len:
                pkt.expert(onode, Severity.WARN, Group.MALFORMED,
                           f"RFC 7252 §5.4.3: {d.name} length {length} outside {d.min_len}..{d.max_len} "
                           f"({d.ref})", v, length)
            if bit:
                if seen & bit:
                    pkt.expert(onode, Severity.WARN, Group.PROTOCOL,
                               f"RFC 7252 §5.4.5: {d.name} is not repeatable but occurs again", p, hlen + length)
                seen |= bit
            if oscore_opt is not None and onum == 9:
                if oscore_opt.error is not None:
                    pkt.malformed(onode, oscore_opt.error, oscore_opt.error_off)
                elif oscore_opt.warning is not None:
                    pkt.expert(onode, Severity.WARN, Group.PROTOCOL, oscore_opt.warning, v, length)
        elif tree and onum & 1:
            pkt.expert(onode, Severity.NOTE, Group.PROTOCOL,
                       f"Unrecognized critical option {onum}: an RFC 7252 §5.4.1 recipient rejects the "
                       "message", p, hlen + length)
        p = ve

    path = "/" + "/".join(path_parts) if path_parts else ""
    # -- tracking ------------------------------------------------------------
    src_ep = (pkt.net_src, pkt.srcport)
    dst_ep = (pkt.net_dst, pkt.dstport)
    _track_message(pkt, st, lay, src_ep, dst_ep, mtype, code, mid)
    ex: _Exchange | None = None
    recon = ""
    if 0 < code < 32:
        recon = _recon(host, port, path)
        ex = _track_request(pkt, st, lay, src_ep, dst_ep, token, code, path, recon, observe, cf, oscore_opt)
    elif code >= 64:
        ex = _track_response(pkt, st, lay, src_ep, dst_ep, token, observe, oscore_opt)
        if ex is not None:
            recon = ex.recon
            if not path:
                path = ex.path
    if recon and (tree or FC.opt_uri_path_recon.primed):
        add(FC.opt_uri_path_recon, recon, off, 0, generated=True)

    # -- RFC 9031 CoJP / stateless proxies -------------------------------------
    role = None
    if code != 0:
        if proxy and 0 < code < 32:
            role = "proxy-request"
        elif tlen > RFC7252_MAX_TOKEN_LEN or stateless_proxy:
            role = "relayed-request" if 0 < code < 32 else "relayed-response"
        if role is not None and (oscore_opt is not None or host == COJP_HOST or path == COJP_PATH
                                 or stateless_proxy):
            pkt.scratch["coap.cojp"] = role
            if tree or FC.cojp.primed:
                add(FC.cojp, role, off, 0, generated=True)

    # -- payload ------------------------------------------------------------------
    plen = end - payload_off
    body_off, body_end, body_src, body = payload_off, end, src, buf
    reassembled = False
    blk_opt = block1 if 0 < code < 32 else block2 if code >= 64 else None
    block_text = ""
    if blk_opt is not None and (plen > 0 or (blk_opt & 0x08) == 0):
        bnum, more = blk_opt >> 4, bool(blk_opt & 0x08)
        block_text = f"{'' if more else 'End of '}Block #{bnum}"
        if plen > 0:
            key = (src_ep, dst_ep, path, 1) if 0 < code < 32 else (dst_ep, src_ep, path, 2)
            if (more or bnum) and (tree or FC.block_length.primed):
                add(FC.block_length, plen, payload_off, plen)
            res = _reassemble(pkt, st, lay, key, blk_opt, buf, payload_off, end)
            if res is not None:
                body = res
                body_off, body_end = 0, len(res)
                body_src = pkt.add_source("Reassembled CoAP blocks", res)
                reassembled = True
    if plen > 0 and blk_opt is not None and not reassembled and ((blk_opt & 0x08) or (blk_opt >> 4)):
        plen_shown = None
    else:
        plen_shown = body_end - body_off if (plen > 0 or reassembled) else None
    if size1 is not None and reassembled and size1 != body_end - body_off and tree:
        pkt.expert(lay, Severity.NOTE, Group.REASSEMBLE,
                   f"RFC 7959 §4: Size1 {size1} differs from the reassembled {body_end - body_off} bytes")

    if pkt.cols:
        parts = [TYPE_SHORT[mtype], f"MID:{mid}", code_name(code)]
        if token:
            parts.append(f"TKN:{_tok_str(token)}")
        if block_text:
            parts.append(block_text)
        if observe is not None and code >= 64:
            parts.append(f"Observe:{observe}")
        uri = recon or path
        if query_parts and 0 < code < 32:
            uri += "?" + "&".join(query_parts)
        if uri:
            parts.append(uri)
        pkt.info = ", ".join(parts)
    if tree:
        lay.label = (f"Constrained Application Protocol, {TYPE_NAMES[mtype]}, {code_name(code)}, MID:{mid}")

    info = _set_info(pkt, mtype, code, mid, token, path, cf, payload_off, plen, tok_off, opt_spans)
    if ex is not None:
        info.request_frame = ex.req_frame

    if plen_shown is not None and plen_shown > 0:
        if tree or FC.payload_length.primed:
            add(FC.payload_length, plen_shown, payload_off, plen, generated=True)
        _payload(pkt, lay, body, body_off, body_end, body_src, cf, code, path, ex, oscore_opt, tree)
    elif plen > 0 and oscore_opt is not None:
        _payload(pkt, lay, buf, payload_off, end, src, cf, code, path, ex, oscore_opt, tree)
    return True


def _set_info(pkt: Packet, mtype: int, code: int, mid: int, token: bytes, path: str, cf: int | None,
              payload_off: int, plen: int, tok_off: int,
              options: list[tuple[int, int, int]] | None = None) -> CoapInfo:
    info = (CoapInfo(mtype, code, mid, token, path, cf, payload_off, plen, tok_off) if options is None
            else CoapInfo(mtype, code, mid, token, path, cf, payload_off, plen, tok_off, None, options))
    pkt.scratch["coap"] = info
    return info


def _check_code(pkt: Packet, lay: Any, cnode: Any, mtype: int, code: int, off: int) -> None:
    """RFC 7252 §4.1-§4.3 / §12.1 combinations of type and code."""
    cls = code >> 5
    if code == 0:
        if mtype == 1:
            pkt.malformed(cnode, "RFC 7252 §4.1: a Non-confirmable message cannot be Empty", off + 1, 1)
        return
    if mtype == 3:
        pkt.malformed(cnode, "RFC 7252 §4.2: a Reset message must be Empty (code 0.00)", off + 1, 1)
    elif mtype == 2 and cls == 0:
        pkt.malformed(cnode, "RFC 7252 §4.2: an Acknowledgement cannot carry a request", off + 1, 1)
    if cls == 7:
        pkt.expert(cnode, Severity.WARN, Group.PROTOCOL,
                   "RFC 8323 §5: signaling code (7.xx) is only defined for CoAP over reliable transports",
                   off + 1, 1)
    elif cls in (1, 6):
        pkt.expert(cnode, Severity.WARN, Group.PROTOCOL, f"RFC 7252 §12.1: code class {cls} is reserved",
                   off + 1, 1)
    elif cls == 3:
        pkt.expert(cnode, Severity.WARN, Group.PROTOCOL, "RFC 7252 §12.1: code class 3 is reserved",
                   off + 1, 1)


def _recon(host: str | None, port: int | None, path: str) -> str:
    """Wireshark's ``coap.opt.uri_path_recon``: ``[coap://host][:port]path`` from the options.

    As in Wireshark, a Uri-Port without a Uri-Host still contributes ``:port``.
    """
    out = ""
    if host is not None:
        out = "coap://" + (f"[{host}]" if host.count(":") > 1 and not host.startswith("[") else host)
    if port is not None:
        out += f":{port}"
    return out + path


def _option_fields(pkt: Packet, lay: Any, buf: bytes, idx: int, onum: int, d: OptionDef | None,
                   p: int, hlen: int, v: int, length: int, full: bool) -> Any:
    """One option's fields: with ``full`` (tree, or coap.opt.name primed) the name line and header
    nibbles as Wireshark shows them; otherwise only the primed value fields."""
    tree = pkt.tree
    if full:
        name = d.name if d is not None else f"Unknown Option ({onum})"
        label = None
        if tree:
            shown = _value_text(buf, v, length, d, onum)
            label = f"Opt Name: #{idx}: {name}" + (f": {shown}" if shown else "")
        # The field value is Wireshark's ("#1: Uri-Path"); the tree line adds the decoded value.
        onode = lay.add(FC.opt_name, f"#{idx}: {name}", p, hlen + length, label=label)
    else:
        onode = lay
    if tree:
        onode.add(FC.opt_desc, _opt_desc(onum), p, hlen + length)
        b = buf[p]
        onode.add(FC.opt_delta, b >> 4, p, 1)
        onode.add(FC.opt_length, b & 0x0F, p, 1)
        q = p + 1
        dn, ln = b >> 4, b & 0x0F
        if dn == 13:
            onode.add(FC.opt_delta_ext, buf[q], q, 1)
            q += 1
        elif dn == 14:
            onode.add(FC.opt_delta_ext, (buf[q] << 8) | buf[q + 1], q, 2)
            q += 2
        if ln == 13:
            onode.add(FC.opt_length_ext, buf[q], q, 1)
        elif ln == 14:
            onode.add(FC.opt_length_ext, (buf[q] << 8) | buf[q + 1], q, 2)
        onode.add(FC.opt_number, onum, p, hlen, generated=True)
        onode.add(FC.opt_critical, option_critical(onum), p, hlen, generated=True)
        onode.add(FC.opt_unsafe, option_unsafe(onum), p, hlen, generated=True)
        onode.add(FC.opt_no_cache_key, option_no_cache_key(onum), p, hlen, generated=True)
    elif FC.opt_number.primed or FC.opt_critical.primed or FC.opt_unsafe.primed or FC.opt_no_cache_key.primed:
        onode.add(FC.opt_number, onum, p, hlen, generated=True)
        onode.add(FC.opt_critical, option_critical(onum), p, hlen, generated=True)
        onode.add(FC.opt_unsafe, option_unsafe(onum), p, hlen, generated=True)
        onode.add(FC.opt_no_cache_key, option_no_cache_key(onum), p, hlen, generated=True)
    if d is None:
        if tree or FC.opt_unknown.primed:
            onode.add(FC.opt_unknown, bytes(buf[v:v + length]), v, length)
        return onode
    fd = _opt_fd[onum]
    if tree or fd.primed or onum == 12 and FC.opt_content_format.primed or onum == 17 and FC.opt_accept_format.primed:
        _add_value(pkt, onode, fd, d, buf, v, length)
    if onum in _BLOCK_OPTS:
        if tree or FC.opt_block_number.primed or FC.opt_block_mflag.primed or FC.opt_block_size.primed:
            _block_subfields(onode, buf, v, length)
    elif onum == 9:
        _oscore_option_fields(pkt, onode, osc.parse_option(buf, v, length))
    return onode


def _add_value(pkt: Packet, node: Any, fd: FieldDef, d: OptionDef, buf: bytes, v: int, length: int) -> None:
    raw = buf[v:v + length]
    fmt = d.fmt
    if d.number == 12 or d.number == 17:
        num = int.from_bytes(raw, "big")
        node.add(fd, content_format_name(num), v, length)
        node.add(FC.opt_content_format if d.number == 12 else FC.opt_accept_format, num, v, length)
    elif fmt is OptFormat.UINT:
        node.add(fd, int.from_bytes(raw, "big"), v, length)
    elif fmt is OptFormat.STRING:
        node.add(fd, raw.decode("utf-8", "replace"), v, length)
    elif fmt is OptFormat.EMPTY:
        node.add(fd, None, v, length)
    else:
        node.add(fd, bytes(raw), v, length)


def _value_text(buf: bytes, v: int, length: int, d: OptionDef | None, onum: int) -> str:
    raw = buf[v:v + length]
    if d is None:
        return raw.hex(" ")
    if onum in _BLOCK_OPTS:
        x = int.from_bytes(raw, "big")
        return f"NUM:{x >> 4}, M:{(x >> 3) & 1}, SZX:{1 << ((x & 7) + 4)}"
    if onum == 12 or onum == 17:
        return content_format_name(int.from_bytes(raw, "big"))
    if d.fmt is OptFormat.UINT:
        return str(int.from_bytes(raw, "big"))
    if d.fmt is OptFormat.STRING:
        return raw.decode("utf-8", "replace")
    if d.fmt is OptFormat.EMPTY:
        return ""
    if onum == 9:
        o = osc.parse_option(buf, v, length)
        bits = []
        if o.kid is not None:
            bits.append(f"Key ID:{o.kid.hex()}")
        if o.kid_context is not None:
            bits.append(f"Key ID Context:{o.kid_context.hex()}")
        if o.piv is not None:
            bits.append(f"Partial IV:{o.piv.hex()}")
        return ", ".join(bits) or "(empty)"
    return raw.hex(" ")


def _block_subfields(node: Any, buf: bytes, v: int, length: int) -> None:
    """RFC 7959 §2.2: NUM | M | SZX in the last byte."""
    x = int.from_bytes(buf[v:v + length], "big")
    last = v + length - 1 if length else v
    node.add(FC.opt_block_number, x >> 4, v, length)
    node.add(FC.opt_block_mflag, (x >> 3) & 1, last, 1 if length else 0)
    node.add(FC.opt_block_size, x & 7, last, 1 if length else 0,
             label=f"Block Size: {1 << ((x & 7) + 4)} ({x & 7} encoded)" if node.pkt.tree else None)


def _oscore_option_fields(pkt: Packet, node: Any, o: osc.OscoreOption) -> None:
    """Wireshark's ``coap.opt.object_security_*`` view of the option."""
    if o.length == 0:
        return
    f = o.flags
    off = o.offset
    node.add(FC.opt_object_security_reserved, bool(f & 0xE0), off, 1)
    node.add(FC.opt_object_security_kid_context_present, bool(f & osc.FLAG_H), off, 1)
    node.add(FC.opt_object_security_kid_present, bool(f & osc.FLAG_K), off, 1)
    node.add(FC.opt_object_security_piv_len, f & osc.FLAG_N, off, 1)
    if o.piv is not None:
        node.add(FC.opt_object_security_piv, o.piv, o.piv_off, len(o.piv))
    if o.kid_context is not None:
        node.add(FC.opt_object_security_kid_context_len, len(o.kid_context), o.kid_context_off - 1, 1)
        node.add(FC.opt_object_security_kid_context, o.kid_context, o.kid_context_off, len(o.kid_context))
    if o.kid is not None:
        node.add(FC.opt_object_security_kid, o.kid, o.kid_off, len(o.kid))


# ---------------------------------------------------------------------------
# Tracking


def _track_message(pkt: Packet, st: _State, lay: Any, src_ep: Any, dst_ep: Any, mtype: int, code: int,
                   mid: int) -> None:
    """RFC 7252 §4.4-§4.5: MIDs are per sender; ACK/RST echo the MID of the CON they answer."""
    num = pkt.number
    key = (src_ep, dst_ep, mid, mtype)
    prev = st.msgs.get(key)
    if prev is None:
        st.msgs[key] = _Msg(num, pkt.ts_ns, mtype)
        _bound(st.msgs, MAX_TRACKED)
    elif prev.frame < num:
        if mtype <= 1:
            node = lay.add(FC.retransmitted, None, 0, 0, generated=True)
            if 0 < code < 32:
                lay.add(FC.request_first_in, prev.frame, 0, 0, generated=True)
            elif code >= 64:
                lay.add(FC.response_first_in, prev.frame, 0, 0, generated=True)
            if pkt.tree:
                pkt.expert(node, Severity.NOTE, Group.SEQUENCE,
                           f"Retransmission of frame {prev.frame} (same sender and Message ID {mid})")
        lay.add(FC.duplicate_of, prev.frame, 0, 0, generated=True)
        if mtype >= 2 and pkt.tree:
            pkt.expert(lay, Severity.NOTE, Group.SEQUENCE,
                       f"Duplicate {TYPE_SHORT[mtype]} of frame {prev.frame} (Message ID {mid})")
    if mtype >= 2:
        con = st.msgs.get((dst_ep, src_ep, mid, 0))
        if con is not None and con.frame < num:
            lay.add(FC.ack_to, con.frame, 0, 0, generated=True)
            if pkt.tree or FC.ack_time.primed:
                lay.add(FC.ack_time, pkt.ts_ns - con.ts, 0, 0, generated=True)
            if con.ack_frame is None:
                con.ack_frame = num
    elif mtype == 0 and prev is not None and prev.frame == num and prev.ack_frame is not None:
        lay.add(FC.ack_in, prev.ack_frame, 0, 0, generated=True)


def _track_request(pkt: Packet, st: _State, lay: Any, src_ep: Any, dst_ep: Any, token: bytes, code: int,
                   path: str, recon: str, observe: int | None, cf: int | None,
                   oscore_opt: osc.OscoreOption | None) -> _Exchange:
    key = (src_ep, dst_ep, token)
    ex = st.exchanges.get(key)
    num = pkt.number
    if ex is not None and ex.req_frame == num:
        if ex.resp_frame is not None:
            lay.add(FC.response_in, ex.resp_frame, 0, 0, generated=True)
        return ex
    if ex is not None and ex.req_frame < num and ex.resp_frame is None and ex.path == path and ex.method == code:
        return ex  # a retransmission (new MID or same) of a request still waiting for its answer
    ex = _Exchange(num, pkt.ts_ns, path, recon, code, observe=observe == 0, content_format=cf)
    if oscore_opt is not None:
        ex.oscore = {"frame": num, "piv": oscore_opt.piv, "kid": oscore_opt.kid,
                     "kid_context": oscore_opt.kid_context}
        ox = pkt.cap.state.setdefault(osc.STATE_KEY, {})
        ox[key] = ex.oscore
        _bound(ox, MAX_TRACKED)
    st.exchanges[key] = ex
    _bound(st.exchanges, MAX_TRACKED)
    return ex


def _track_response(pkt: Packet, st: _State, lay: Any, src_ep: Any, dst_ep: Any, token: bytes,
                    observe: int | None, oscore_opt: osc.OscoreOption | None) -> _Exchange | None:
    ex = st.exchanges.get((dst_ep, src_ep, token))
    num = pkt.number
    if ex is None or ex.req_frame > num:
        return None
    ex.last_ts = pkt.ts_ns
    if ex.resp_frame is None or ex.resp_frame == num:
        ex.resp_frame = num
        lay.add(FC.response_to, ex.req_frame, 0, 0, generated=True)
        if pkt.tree or FC.response_time.primed:
            lay.add(FC.response_time, pkt.ts_ns - ex.req_ts, 0, 0, generated=True)
    if ex.observe and observe is not None:
        if ex.resp_frame != num:
            ex.notifications += 1
            lay.add(FC.observe_registration_in, ex.req_frame, 0, 0, generated=True)
            lay.add(FC.observe_notification, ex.notifications, 0, 0, generated=True)
        last = ex.last_observe
        if last is not None and pkt.tree:
            # RFC 7641 §3.4: V2 is fresher if (V1 < V2 and V2 - V1 < 2^23) or (V1 > V2 and V1 - V2 > 2^23).
            fresh = (last < observe and observe - last < OBSERVE_HALF) or \
                    (last > observe and last - observe > OBSERVE_HALF)
            if not fresh and observe != last:
                pkt.expert(lay, Severity.NOTE, Group.SEQUENCE,
                           f"RFC 7641 §3.4: Observe {observe} is not fresher than {last} (reordered)")
        ex.last_observe = observe % OBSERVE_WRAP
    if ex.oscore is not None:
        pkt.scratch["oscore.request"] = ex.oscore
        o = ex.oscore
        # Wireshark's coap.oscore_*: the nonce material a decryptor uses -- the response's own
        # Partial IV when it has one (RFC 8613 §8.3, e.g. Observe notifications), else the request's.
        own_piv = oscore_opt.piv if oscore_opt is not None else None
        for fd, k in ((FC.oscore_piv, "piv"), (FC.oscore_kid, "kid"), (FC.oscore_kid_context, "kid_context")):
            val = own_piv if k == "piv" and own_piv is not None else o.get(k)
            if val is not None:
                lay.add(fd, val, 0, 0, generated=True)
    return ex


def _reassemble(pkt: Packet, st: _State, lay: Any, key: tuple[Any, ...], blk: int, buf: bytes,
                off: int, end: int) -> bytes | None:
    """RFC 7959: collect blocks by byte offset (NUM << (SZX+4)); the last block (M=0) gets the body."""
    num, more, szx = blk >> 4, bool(blk & 0x08), blk & 7
    size = 1 << (szx + 4)
    boff = num * size
    data = bytes(buf[off:end])
    if more and len(data) != size:
        pkt.expert(lay, Severity.WARN, Group.PROTOCOL,
                   f"RFC 7959 §2.2: block {num} has {len(data)} bytes, not the block size {size} "
                   "(only the last block may be shorter)")
    if num == 0 and not more:
        return None  # a single block: nothing to reassemble
    tr = st.blocks.get(key)
    if tr is not None and (
        (tr.done_frame is not None and tr.done_frame < pkt.number)
        or (num == 0 and 0 in tr.parts and tr.parts[0][0] < pkt.number)
    ):
        tr = None  # the previous transfer on this path finished or restarts at block 0
    if tr is None:
        if more and num:
            return None  # joined in the middle of a transfer: nothing to anchor it to
        tr = _Blocks()
        st.blocks[key] = tr
        _bound(st.blocks, MAX_BLOCK_TRANSFERS)
    tr.last_ts = pkt.ts_ns
    if tr.done_frame == pkt.number and tr.body is not None:
        body = tr.body
    else:
        if boff + len(data) > MAX_REASSEMBLY:
            lay.add(FC.block_error, f"body over {MAX_REASSEMBLY} bytes", off, end - off, generated=True)
            return None
        prev = tr.parts.get(boff)
        if prev is None or prev[0] >= pkt.number:
            tr.parts[boff] = (pkt.number, data)
        if more:
            return None
        pos = 0
        chunks: list[bytes] = []
        for o in sorted(tr.parts):
            _f, d = tr.parts[o]
            if o > pos:
                break
            if o + len(d) <= pos:
                continue
            chunks.append(d[pos - o:])
            pos = o + len(d)
        if pos < boff + len(data):
            lay.add(FC.block_error, f"missing blocks before byte {pos}", off, end - off, generated=True)
            if pkt.tree:
                pkt.expert(lay, Severity.WARN, Group.REASSEMBLE,
                           f"RFC 7959: cannot reassemble, block data missing at byte {pos}")
            return None
        body = b"".join(chunks)
        tr.body = body
        tr.done_frame = pkt.number
    frames = sorted({f for f, _ in tr.parts.values()})
    if pkt.tree or FC.block.primed or FC.block_count.primed:
        bnode = lay.add(FC.blocks, None, 0, 0, generated=True)
        for f in frames:
            bnode.add(FC.block, f, 0, 0, generated=True)
        bnode.add(FC.block_count, len(frames), 0, 0, generated=True)
    lay.add(FC.block_reassembled_length, len(body), 0, 0, generated=True)
    return body


# ---------------------------------------------------------------------------
# Payloads


def _payload(pkt: Packet, lay: Any, buf: bytes, off: int, end: int, src: int, cf: int | None, code: int,
             path: str, ex: _Exchange | None, oscore_opt: osc.OscoreOption | None, tree: bool) -> None:
    n = end - off
    add = lay.add
    if tree or FC.payload_desc.primed or FC.payload.primed:
        desc = content_format_name(cf) if cf is not None else (
            "application/octet-stream" if code < 128 else "text/plain; charset=utf-8")
        add(FC.payload, f"Payload Content-Format: {desc}{'' if cf is not None else ' (no Content-Format)'}, "
                        f"Length: {n}", off, n)
        add(FC.payload_desc, desc, off, n)
    if FC.payload_data.primed:  # the tree shows the bytes in the layer that decodes them
        add(FC.payload_data, bytes(buf[off:end]), off, n)
    if oscore_opt is not None:
        osc.dissect_protected(pkt, buf, off, end, src, oscore_opt,
                              ex.oscore if ex is not None and ex.req_frame != pkt.number else None)
        return
    cap = pkt.cap
    # Sub-dissectors by request path, then by Content-Format (decode-as and learned entries apply).
    if path and cap is not None:
        fn = cap.lookup("coap.uri_path", path)
        if fn is not None:
            fn(pkt, buf, off, end, src)
            return
    if cf is not None and cap is not None:
        fn = cap.lookup("coap.content_format", cf)
        if fn is not None:
            fn(pkt, buf, off, end, src)
            return
    if (cf is None or cf == 42) and _looks_like_dtls(buf, off, end):
        pkt.scratch["coap.dtls_payload"] = True
        add(FC.dtls_payload, True, off, n, generated=True)
        info = pkt.scratch.get("coap")
        if info is not None and info.token:
            # The JP's state in the token names the pledge: one DTLS session per pledge on the
            # Registrar leg even though every pledge shares the JP's address and port there.
            pkt.scratch.setdefault("dtls.session_key", ("coap-dtls", info.token))
        if cap is not None:
            cap.call("dtls", pkt, buf, off, end, src)
        return
    if cf == LINK_FORMAT or (cf is None and code == 69 and path == "/.well-known/core"):
        _link_format(pkt, lay, buf, off, end, tree)
        return
    if cf in CBOR_FORMATS or cf in CBOR_SEQ_FORMATS:
        if tree or FC.payload_cbor.primed:
            _cbor(pkt, lay, buf, off, end, cf in CBOR_SEQ_FORMATS)
        return
    if cf in TEXT_FORMATS or (cf is None and code >= 128):
        # RFC 7252 §5.5.2: an error response's payload without Content-Format is a diagnostic text.
        if tree or FC.payload_text.primed:
            add(FC.payload_text, bytes(buf[off:end]).decode("utf-8", "replace"), off, n)
        return
    if cap is not None:
        proto = pkt.protocol
        cap.call_data(pkt, buf, off, end, src)
        pkt.protocol = proto  # Wireshark's "data" leaves the Protocol column to CoAP


def _cbor(pkt: Packet, lay: Any, buf: bytes, off: int, end: int, sequence: bool) -> None:
    items, err = cbor.diag_all(buf, off, end, sequence=sequence)
    p = off
    for text in items:
        lay.add(FC.payload_cbor, text, p, end - p)
    if err is not None:
        pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                   f"Invalid CBOR payload: {err.reason}", err.offset, max(0, end - err.offset))


def _link_format(pkt: Packet, lay: Any, buf: bytes, off: int, end: int, tree: bool) -> None:
    """RFC 6690 body; join-proxy discovery answers become fields and learned ports in every mode."""
    raw = bytes(buf[off:end])
    # Cheap pre-check so plain discovery answers cost nothing without a tree.
    want = tree or FC.link.primed or FC.link_target.primed or FC.link_rt.primed or FC.link_attr.primed
    if not want and b"brski" not in raw:
        return
    links, errors = linkformat.parse(raw)
    # Offsets from the parser are character offsets; for ASCII bodies (the norm) they equal bytes.
    ascii_body = raw.isascii()
    lnode: Any = lay
    for link in links:
        lo = off + link.start if ascii_body else off
        ll = (link.end - link.start) if ascii_body else end - off
        if want:
            lnode = lay.add(FC.link, str(link) if tree else link.target, lo, ll)
            lnode.add(FC.link_target, link.target, lo + 1 if ascii_body else off, len(link.target))
            for name, value in link.params:
                if name == "rt" and value is not None:
                    lnode.add(FC.link_rt, value, lo, ll)
                elif name == "if" and value is not None:
                    lnode.add(FC.link_if, value, lo, ll)
                elif name == "ct" and value is not None:
                    lnode.add(FC.link_ct, value, lo, ll)
                lnode.add(FC.link_attr, name if value is None else f"{name}={value}", lo, ll)
        _discovery(pkt, lnode if want else lay, link, lo, ll)
    if errors and tree:
        for eoff, msg in errors[:8]:
            pkt.expert(lay, Severity.WARN, Group.MALFORMED, f"Link format: {msg}",
                       off + eoff if ascii_body else off)


def _split_authority(uri: str) -> tuple[str, str | None, int | None]:
    """``jpy://[fe80::1]:7634/x`` -> ("jpy", "fe80::1", 7634)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "", None, None
    auth = rest.split("/", 1)[0]
    host: str | None
    port: int | None = None
    if auth.startswith("["):
        close = auth.find("]")
        host = auth[1:close] if close > 0 else auth[1:]
        tail = auth[close + 1:] if close > 0 else ""
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    else:
        h, _, pt = auth.rpartition(":")
        if h and pt.isdigit():
            host, port = h, int(pt)
        else:
            host = auth
    return scheme.lower(), host, port


#: Which dissector a discovered endpoint's UDP port gets (draft-ietf-anima-constrained-join-proxy §6):
#: a JPY scheme is the stateless JP↔Registrar framing; coaps is DTLS (stateful JP, or the pledge's
#: join port). Default ports of the scheme apply when the URI names none.
_SCHEME_PROTO = {"jpy": "jpy", "coaps+jpy": "jpy", "coaps": "dtls", "coap": "coap"}
_SCHEME_DEFAULT_PORT = {"coaps": 5684, "coap": 5683}


def _discovery(pkt: Packet, lay: Any, link: linkformat.Link, lo: int, ll: int) -> None:
    rts = link.types("rt")
    brski_rts = [rt for rt in rts if rt.startswith("brski")]
    jp_port = link.first("brski-jp")
    if not brski_rts and jp_port is None:
        return
    add = lay.add
    for rt in brski_rts:
        add(FC.discovery_rt, rt, lo, ll)
    scheme, host, port = _split_authority(link.target)
    if scheme:
        add(FC.discovery_uri, link.target, lo, ll)
        add(FC.discovery_scheme, scheme, lo, ll)
        if host is not None:
            add(FC.discovery_addr, host, lo, ll)
        if port is None:
            port = _SCHEME_DEFAULT_PORT.get(scheme)
        if port is not None:
            add(FC.discovery_port, port, lo, ll)
        proto = _SCHEME_PROTO.get(scheme)
        if proto is not None and port is not None:
            _learn(pkt, lay, port, proto, lo, ll)
    if jp_port is not None and jp_port.isdigit():
        jp = int(jp_port)
        add(FC.discovery_brski_jp, jp, lo, ll)
        if 0 < jp <= 0xFFFF:
            _learn(pkt, lay, jp, "dtls", lo, ll)


def _learn(pkt: Packet, lay: Any, port: int, proto: str, lo: int, ll: int) -> None:
    if pkt.cap is None or not 0 < port <= 0xFFFF:
        return
    st = _state(pkt)
    if st.learned.get(port) != proto:
        st.learned[port] = proto
        pkt.cap.learn("udp.port", port, proto)
    lay.add(FC.discovery_proto, f"udp.port {port} -> {proto}", lo, ll, generated=True)
