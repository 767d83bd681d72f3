"""Relayed datagrams: what each relay framing adds, byte for byte, split into its parts.

The overhead question the working groups argue about ("3-6 bytes of CBOR", "at most 38 bytes",
"the TLVs cost more than the token") is answered here from the bytes of every relayed datagram,
with the same codecs the lab builds the framings with (:mod:`jpdissect.framing`,
:mod:`jpdissect.coapmsg`) -- a decoder that disagreed with the builder would show up as a
non-zero residue, never as a silently different number.

:func:`decompose` splits one relay-leg UDP payload into the inner datagram (what the pledge sent or
receives) and the framing, in :data:`COMPONENTS`:

``cbor_bytes``         CBOR structure: the array head and the byte-string heads (JPY, legacy JPY)
``state_bytes``        JP state outside a token: the JPY header value; the legacy IP address bstr
                       value and the port/family/ifindex integers (a CBOR uint is its own head)
``coap_header_bytes``  the 4-byte CoAP header, RFC 8974 token-length extension bytes and the
                       0xFF payload marker (cojp: only the extension bytes the JP's state adds)
``token_bytes``        token bytes the JP adds (its state in an extended token; Thread's TMF token)
``options_bytes``      CoAP option bytes of the outer message (cojp: the change the JP made, known
                       only when the pledge-side copy was seen)
``tlv_header_bytes``   MeshCoP TLV type/length bytes, extended lengths included, of every TLV
``tlv_value_bytes``    MeshCoP TLV values other than the encapsulated datagram itself

The sum is the per-datagram overhead; ``udp_ip_header_bytes`` (IP header with extension headers +
UDP header of the relay frame) is kept apart because every scheme pays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jpdissect.coapmsg import HEADER_LEN as COAP_HEADER_LEN
from jpdissect.coapmsg import (
    MAX_OPTION_NUMBER,
    PAYLOAD_MARKER,
    URI_PATH,
    VERSION,
    CoapMessage,
    check_option_length,
    is_request,
    is_response,
    read_option_header,
    read_token_length,
    token_length_encoding,
)
from jpdissect.framing import jpy
from jpdissect.framing.meshcop import (
    JOINER_DTLS_ENCAPSULATION,
    JOINER_IID,
    JOINER_UDP_PORT,
    RELAY_LAYOUTS,
    TMF_PORT,
    decode_tlvs,
)

#: The schemes, in the order tables list them (DESIGN.md §1).
SCHEMES: tuple[str, ...] = ("stateful", "jpy", "jpy-legacy", "coap-dtls", "thread-relay", "cojp")
COMPONENTS: tuple[str, ...] = (
    "cbor_bytes", "state_bytes", "coap_header_bytes", "token_bytes", "options_bytes",
    "tlv_header_bytes", "tlv_value_bytes",
)
UP, DOWN = "up", "down"
#: Leg names as the jp dissector spells them (jp.leg).
PLEDGE_LEG, RELAY_LEG = "pledge", "registrar"
#: DTLS record (RFC 6347 §4.1): 13-byte header, content types 20-26, versions 1.0/1.2 (0xfeff/0xfefd).
DTLS_RECORD_HEADER = 13
DTLS_CONTENT_TYPES = range(20, 27)
DTLS_VERSION_MAJOR = 0xFE
#: DTLS 1.3 unified header (RFC 9147 §4): first byte 001xxxxx.
DTLS13_UNIFIED_MASK, DTLS13_UNIFIED_BITS = 0xE0, 0x20
#: RFC 9031 §8.1 / the lab: JP state is one AES block in front of the pledge's own token.
STATE_TOKEN_LEN = jpy.HEADER_LEN


@dataclass(slots=True)
class Framing:
    """One relay-leg datagram taken apart: the inner datagram and each framing component."""

    scheme: str
    inner_len: int
    inner: bytes | None = None
    direction: str | None = None
    cbor_bytes: int = 0
    state_bytes: int = 0
    coap_header_bytes: int = 0
    token_bytes: int = 0
    options_bytes: int = 0
    tlv_header_bytes: int = 0
    tlv_value_bytes: int = 0
    #: c/rx, c/tx, the JPY layout, CoAP code...: what the table's "detail" column shows.
    detail: str = ""
    #: cojp without the pledge-side copy: the options change is unknown (assumed 0).
    exact: bool = True
    errors: list[str] = field(default_factory=list)
    #: What the pledge-hop copy shares with this one (the inner bytes; for cojp code + payload).
    pair: Any = None
    #: The JP state that names the pledge on the Registrar hop, identical in both directions.
    state: Any = None

    @property
    def overhead(self) -> int:
        return (self.cbor_bytes + self.state_bytes + self.coap_header_bytes + self.token_bytes
                + self.options_bytes + self.tlv_header_bytes + self.tlv_value_bytes)

    def components(self) -> tuple[int, ...]:
        return (self.cbor_bytes, self.state_bytes, self.coap_header_bytes, self.token_bytes,
                self.options_bytes, self.tlv_header_bytes, self.tlv_value_bytes)


def looks_like_dtls(data: bytes) -> bool:
    """A DTLS record header at the start (RFC 6347 §4.1, or RFC 9147's unified header)."""
    if len(data) >= DTLS_RECORD_HEADER and data[0] in DTLS_CONTENT_TYPES and data[1] == DTLS_VERSION_MAJOR:
        return True
    return len(data) >= 2 and data[0] & DTLS13_UNIFIED_MASK == DTLS13_UNIFIED_BITS and data[0] != 0x3F


def _coap_parts(data: bytes, msg: CoapMessage) -> tuple[int, int, int]:
    """(header incl. token-length extension and payload marker, token, options) byte counts."""
    _tkl, ext = token_length_encoding(len(msg.token))
    header = COAP_HEADER_LEN + len(ext) + (1 if msg.payload else 0)
    token = len(msg.token)
    options = len(data) - header - token - len(msg.payload)
    return header, token, options


def decompose(scheme: str, data: bytes, inner: bytes | None = None) -> Framing:
    """Take a relay-leg UDP payload of ``scheme`` apart; never raises.

    ``inner`` is the pledge-side copy when it is known (matters for cojp only, where the JP
    rewrites the message instead of wrapping it). A payload that does not decode as the scheme
    comes back with ``errors`` and everything counted as inner.
    """
    n = len(data)
    if scheme == "stateful":
        return Framing(scheme, n, data, pair=data)
    if scheme in ("jpy", "jpy-legacy"):
        return _jpy(scheme, data)
    if scheme in ("coap-dtls", "cojp", "thread-relay"):
        msg, errs = CoapMessage.decode(data)
        if msg is None or errs:
            f = Framing(scheme, n, None)
            f.errors.append("CoAP: " + (errs[0].message if errs else "no message"))
            return f
        if scheme == "coap-dtls":
            return _coap_dtls(data, msg)
        if scheme == "thread-relay":
            return _thread(data, msg)
        return _cojp(data, msg, inner)
    f = Framing(scheme, n, None)
    f.errors.append(f"unknown scheme {scheme!r}")
    return f


def _jpy(scheme: str, data: bytes, m: jpy.JpyMessage | None = None) -> Framing:
    if m is None:
        m = jpy.decode(data)
    content = m.span("content")
    if m.layout is None or content is None or m.layout.name != scheme:
        f = Framing(scheme, len(data), None)
        f.errors.append(m.errors[0].message if m.errors else f"not a {scheme} message")
        return f
    f = Framing(scheme, content.value_length, bytes(data[content.value_offset:content.value_offset
                                                        + content.value_length]))
    f.detail = m.layout.name
    f.pair = f.inner
    f.state = (scheme, bytes(data[:content.offset]))  # the array up to the content: the JP's state
    state = 0
    for s in m.spans:
        if s.name == "content":
            continue
        # A byte string's value is state and its head is CBOR structure; an integer is all state.
        state += s.value_length if s.value_offset != s.offset else s.length
    # Elements past the layout (the Registrar ignores them) are state the JP chose to send.
    covered = sum(s.length for s in m.spans)
    extra = (m.length or len(data)) - (covered + _array_head_len(data))
    f.state_bytes = state + max(extra, 0)
    f.cbor_bytes = len(data) - f.state_bytes - f.inner_len
    f.errors.extend(e.message for e in m.errors)
    return f


def _array_head_len(data: bytes) -> int:
    ai = data[0] & 0x1F if data else 0
    return 1 + {24: 1, 25: 2, 26: 4, 27: 8}.get(ai, 0)


def _coap_dtls(data: bytes, msg: CoapMessage) -> Framing:
    return _coap_dtls_parts(msg.payload, msg.token, msg.code, _coap_parts(data, msg))


def _coap_dtls_parts(payload: bytes, token: bytes, code: int, parts: tuple[int, int, int]) -> Framing:
    f = Framing("coap-dtls", len(payload), payload, pair=payload, state=("coap-dtls", token))
    f.coap_header_bytes, f.token_bytes, f.options_bytes = parts
    f.direction = UP if is_request(code) else DOWN if is_response(code) else None
    f.detail = "request" if f.direction == UP else "response" if f.direction == DOWN else f"code {code}"
    return f


def _thread(data: bytes, msg: CoapMessage) -> Framing:
    return _thread_parts(data, msg.uri_path.lstrip("/"), _coap_parts(data, msg), len(data) - len(msg.payload))


def _thread_parts(data: bytes, uri: str, parts: tuple[int, int, int], start: int) -> Framing:
    tlvs, errs = decode_tlvs(data, start, len(data))
    inner = b""
    th = tv = 0
    iid = port = None
    for t in tlvs:
        th += t.header_len
        if t.type == JOINER_DTLS_ENCAPSULATION and not inner:
            inner = t.value
        else:
            tv += t.length
            if t.type == JOINER_IID:
                iid = t.value
            elif t.type == JOINER_UDP_PORT:
                port = t.value
    f = Framing("thread-relay", len(inner), inner, pair=inner, state=("thread-relay", iid, port))
    f.coap_header_bytes, f.token_bytes, f.options_bytes = parts
    f.tlv_header_bytes, f.tlv_value_bytes = th, tv
    f.detail = uri
    f.direction = UP if uri == "c/rx" else DOWN if uri == "c/tx" else None
    if uri not in RELAY_LAYOUTS:
        f.errors.append(f"TMF message to '/{uri}', not c/rx or c/tx")
    if not any(t.type == JOINER_DTLS_ENCAPSULATION for t in tlvs):
        f.errors.append("no Joiner DTLS Encapsulation TLV")
    f.errors.extend(e.message for e in errs)
    # Bytes after a cut-short TLV are neither inner nor a TLV we could read: count them as values.
    f.tlv_value_bytes += len(data) - start - sum(t.header_len + t.length for t in tlvs)
    return f


def _cojp(data: bytes, msg: CoapMessage, inner: bytes | None) -> Framing:
    """RFC 9031 stateless proxy: the JP rewrites the pledge's message instead of wrapping it.

    With the pledge-side copy the split is exact: token bytes added, token-length extension bytes
    added, and the rest (Proxy-Scheme removed, options rewritten) under options -- possibly
    negative. Without it the JP state is taken to be the first 16 token bytes (the lab's layout,
    RFC 8974 §3 "state in front of the origin's token") and the options unchanged (``exact`` False).
    """
    tok = msg.token
    f = Framing("cojp", 0, None, pair=coap_pair_key(msg), state=("cojp", tok[:STATE_TOKEN_LEN]))
    f.direction = UP if is_request(msg.code) else DOWN if (is_response(msg.code) or msg.code == 0) else None
    f.detail = "request" if f.direction == UP else "response"
    _t, ext_relay = token_length_encoding(len(tok))
    if inner is not None:
        pm, perrs = CoapMessage.decode(inner)
        if pm is not None and not perrs:
            _t, ext_inner = token_length_encoding(len(pm.token))
            f.inner, f.inner_len = inner, len(inner)
            f.token_bytes = len(tok) - len(pm.token)
            f.coap_header_bytes = len(ext_relay) - len(ext_inner)
            f.options_bytes = len(data) - len(inner) - f.token_bytes - f.coap_header_bytes
            return f
        f.errors.append("the pledge-side copy is not CoAP")
    state = STATE_TOKEN_LEN if len(tok) >= STATE_TOKEN_LEN else 0
    _t, ext_inner = token_length_encoding(len(tok) - state)
    f.token_bytes = state
    f.coap_header_bytes = len(ext_relay) - len(ext_inner)
    if not state:
        f.errors.append(f"token of {len(tok)} bytes holds no {STATE_TOKEN_LEN}-byte JP state")
    f.exact = False
    f.inner_len = len(data) - f.token_bytes - f.coap_header_bytes
    return f


@dataclass(slots=True)
class _Coap:
    """The parts of a CoAP message the decomposition needs, located without building options."""

    type: int
    code: int
    mid: int
    token: bytes
    ext_len: int
    payload_start: int
    uri_path: list[bytes]

    def payload(self, data: bytes) -> bytes:
        return data[self.payload_start:]


def _coap_walk(data: bytes) -> _Coap | None:
    """Walk a CoAP message with the shared primitives of :mod:`jpdissect.coapmsg` (RFC 7252 §3,
    RFC 8974 §2.1) -- the rules :meth:`CoapMessage.decode` applies, without its per-option objects.
    None where ``decode`` would report a format error."""
    n = len(data)
    if n < COAP_HEADER_LEN or data[0] >> 6 != VERSION:
        return None
    tlen, xlen, err = read_token_length(data, 0, n)
    if err is not None:
        return None
    tok = COAP_HEADER_LEN + xlen
    q = tok + tlen
    if q > n:
        return None
    code = data[1]
    if code == 0 and q < n or code == 0 and tlen:
        return None  # RFC 7252 §4.1: an Empty message is 4 bytes
    number = 0
    uri: list[bytes] = []
    while q < n:
        if data[q] == PAYLOAD_MARKER:
            if q + 1 >= n:
                return None
            return _Coap((data[0] >> 4) & 3, code, (data[2] << 8) | data[3], data[tok:tok + tlen], xlen, q + 1, uri)
        delta, length, hlen, err = read_option_header(data, q, n)
        if err is not None:
            return None
        number += delta
        v = q + hlen
        if number > MAX_OPTION_NUMBER or v + length > n or check_option_length(number, length) is not None:
            return None
        if number == URI_PATH:
            uri.append(data[v:v + length])
        q = v + length
    return _Coap((data[0] >> 4) & 3, code, (data[2] << 8) | data[3], data[tok:tok + tlen], xlen, n, uri)


def _coap_fields(data: bytes, c: _Coap) -> tuple[int, int, int]:
    """(header incl. token-length extension and payload marker, token, options) byte counts."""
    has_payload = c.payload_start < len(data)
    header = COAP_HEADER_LEN + c.ext_len + (1 if has_payload else 0)
    token = len(c.token)
    options = c.payload_start - (1 if has_payload else 0) - COAP_HEADER_LEN - c.ext_len - token
    return header, token, options


def coap_pair_key(msg: CoapMessage) -> Any:
    """What a stateless CoAP proxy keeps: code and payload (the OSCORE ciphertext); it may renumber
    the Message ID and rewrites the token (RFC 8974 §3, RFC 9031 §8.1)."""
    if msg.payload:
        return ("coap", msg.code, msg.payload)
    return ("coap", msg.type, msg.code, msg.mid)


# ---------------------------------------------------------------------------
# Telling the schemes apart on the wire


def classify(data: bytes, sport: int, dport: int) -> str | None:
    """The relay scheme of a Registrar-hop UDP payload, or None (see :func:`identify`)."""
    f = identify(data, sport, dport)
    return f.scheme if f is not None else None


def identify(data: bytes, sport: int, dport: int) -> Framing | None:
    """The relay framing of a non-link-local UDP payload, taken apart, or None for "not a relay".

    Content first, ports last: the JPY port is discovered, coap-dtls has none, and a lab run on
    loopback moves every port. TMF (61631) is CoAP with ``c/rx``/``c/tx``; a CBOR array that
    decodes as one of the JPY layouts is JPY; CoAP with a token long enough to carry JP state is
    coap-dtls when its payload is a DTLS record and cojp otherwise; a bare DTLS record is a stateful
    relay (or the pledge's own hop, which the caller tells apart by address).

    This runs on every Registrar-hop datagram of a capture, so it walks messages with the codecs'
    primitives instead of building their full objects; :func:`decompose` is the reference it must
    agree with (the tests check both on every datagram of the bundled captures).
    """
    if not data:
        return None
    b0 = data[0]
    if sport == TMF_PORT or dport == TMF_PORT:
        c = _coap_walk(data)
        if c is not None:
            uri = b"/".join(c.uri_path).decode("utf-8", "replace")
            if uri in RELAY_LAYOUTS:
                return _thread_parts(data, uri, _coap_fields(data, c), c.payload_start)
    if looks_like_dtls(data):
        return Framing("stateful", len(data), data, pair=data)
    if b0 >> 5 == jpy.MT_ARRAY:
        f = _jpy_two(data)
        if f is not None:
            return f
        m = jpy.decode(data)
        if m.layout is not None and m.content is not None and not m.errors:
            return _jpy(m.layout.name, data, m)
    if b0 >> 6 == 1:  # CoAP version 1 (RFC 7252 §3)
        c = _coap_walk(data)
        if c is not None and len(c.token) >= STATE_TOKEN_LEN:
            payload = c.payload(data)
            if payload and looks_like_dtls(payload):
                return _coap_dtls_parts(payload, c.token, c.code, _coap_fields(data, c))
            msg, errs = CoapMessage.decode(data)
            if msg is not None and not errs:
                return _cojp(data, msg, None)
    return None


def _jpy_two(data: bytes) -> Framing | None:
    """The current JPY layout's common case, ``[bstr header, bstr content]`` and nothing after,
    read with the JPY module's own CBOR head reader; anything else goes to :func:`jpy.decode`."""
    n = len(data)
    mt, count, p, err = jpy._read_head(data, 0, n)
    if err is not None or mt != jpy.MT_ARRAY or count != 2:
        return None
    mt, hlen, hp, err = jpy._read_head(data, p, n)
    if err is not None or mt != jpy.MT_BSTR or hlen is None or hlen > jpy.MAX_HEADER_LEN or hp + hlen > n:
        return None
    c0 = hp + hlen
    mt, clen, cp, err = jpy._read_head(data, c0, n)
    if err is not None or mt != jpy.MT_BSTR or clen is None or cp + clen != n:
        return None
    inner = data[cp:]
    f = Framing("jpy", clen, inner, pair=inner, state=("jpy", data[:c0]))
    f.detail = "jpy"
    f.state_bytes = hlen
    f.cbor_bytes = n - hlen - clen
    return f


__all__ = ["COMPONENTS", "SCHEMES", "Framing", "RelayedTable", "classify", "coap_pair_key", "decompose",
           "identify", "looks_like_dtls"]


# ---------------------------------------------------------------------------
# The relayed table


class RelayedTable:
    """Scan consumer: one row per relayed datagram, kept column by column.

    Rows hold the relay-hop copy (the framing) and, when captured, the pledge-hop copy; datagrams
    seen only on the pledge hop were not relayed and are only counted (``not_relayed``). Radio
    columns are added by :meth:`dataframe` under the profiles it is given.
    """

    wants_frames = False

    def __init__(self, capture: str = "") -> None:
        self.capture = capture
        self.cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        self.not_relayed = 0

    def frame(self, fi: Any) -> None:
        pass

    def datagram(self, dg: Any) -> None:
        r = dg.relay
        if r is None:
            self.not_relayed += 1
            return
        fr: Framing = dg.framing
        p = dg.pledge
        c = self.cols
        c["frame"].append(r.number)
        c["pledge_frame"].append(p.number if p is not None else None)
        c["time"].append(r.ts_ns)
        c["scheme"].append(dg.scheme)
        c["session"].append(dg.session)
        c["leg"].append(RELAY_LEG)
        c["direction"].append(dg.direction)
        c["detail"].append(fr.detail)
        c["pledge"].append(_addr(dg.pledge_addr))
        c["pledge_port"].append(dg.pledge_port or None)
        c["inner_bytes"].append(fr.inner_len)
        c["relay_payload_bytes"].append(len(r.payload or b""))
        c["overhead_bytes"].append(fr.overhead)
        for name, v in zip(COMPONENTS, fr.components(), strict=True):
            c[name].append(v)
        c["udp_ip_header_bytes"].append(r.hdr_bytes)
        c["pledge_udp_ip_header_bytes"].append(p.hdr_bytes if p is not None else None)
        c["relay_frame_bytes"].append(r.length)
        c["pledge_frame_bytes"].append(p.length if p is not None else None)
        c["forward_delay"].append(dg.forward_delay_ns)
        c["exact"].append(fr.exact)
        c["errors"].append("; ".join(fr.errors) or None)
        c["relay_sport"].append(r.sport)
        c["relay_dport"].append(r.dport)
        c["relay_hlim"].append(r.hlim)
        c["pledge_sport"].append(p.sport if p is not None else None)
        c["pledge_dport"].append(p.dport if p is not None else None)
        c["pledge_hlim"].append(p.hlim if p is not None else None)
        c["capture"].append(self.capture)

    def __len__(self) -> int:
        return len(self.cols["frame"])

    def dataframe(self, pledge_profile: Any = None, relay_profile: Any = None) -> Any:
        """The table; with profiles, 802.15.4 frames/PSDU bytes/air time for both hops."""
        from jpdissect.stats import _arrow as A
        from jpdissect.stats import radio

        cols = {k: (_COLUMNS[k], v) for k, v in self.cols.items()}
        if pledge_profile is not None or relay_profile is not None:
            pp = radio.profile(pledge_profile or radio.DEFAULT_PLEDGE_PROFILE)
            rp = radio.profile(relay_profile or radio.DEFAULT_RELAY_PROFILE)
            c = self.cols
            pf, pb, pa_, _pc = _radio_cols(pp, c["inner_bytes"], c["pledge_sport"], c["pledge_dport"],
                                           c["pledge_hlim"])
            rf, rb, ra, _rc = _radio_cols(rp, c["relay_payload_bytes"], c["relay_sport"], c["relay_dport"],
                                          c["relay_hlim"])
            cols.update({
                "pledge_radio_frames": (A.I32, pf), "pledge_psdu_bytes": (A.I32, pb),
                "pledge_airtime_us": (A.I64, pa_),
                "relay_radio_frames": (A.I32, rf), "relay_psdu_bytes": (A.I32, rb),
                "relay_airtime_us": (A.I64, ra),
            })
        return A.frame(cols)


def _radio_cols(prof: Any, lens: list[int], sports: list[Any], dports: list[Any],
                hlims: list[Any]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    from jpdissect.stats.radio import cost_or_none

    fr: list[Any] = []
    ps: list[Any] = []
    air: list[Any] = []
    ch: list[Any] = []
    for n, s, d, h in zip(lens, sports, dports, hlims, strict=True):
        c = None if s is None or d is None else cost_or_none(prof, n, s, d, h if h is not None else 64)
        fr.append(c.frames if c else None)
        ps.append(c.psdu_bytes if c else None)
        air.append(c.airtime_us if c else None)
        ch.append(c.channel_us if c else None)
    return fr, ps, air, ch


def _addr(a: bytes | None) -> str | None:
    if not a:
        return None
    from jpdissect.stats.scan import addr_str

    return addr_str(a)


def _columns() -> dict[str, Any]:
    from jpdissect.stats import _arrow as A

    cols: dict[str, Any] = {
        "frame": A.U32, "pledge_frame": A.U32, "time": A.TS, "scheme": A.STR, "session": A.I64,
        "leg": A.STR, "direction": A.STR, "detail": A.STR, "pledge": A.STR, "pledge_port": A.I32,
        "inner_bytes": A.I32, "relay_payload_bytes": A.I32, "overhead_bytes": A.I32,
    }
    cols.update({k: A.I32 for k in COMPONENTS})
    cols.update({
        "udp_ip_header_bytes": A.I32, "pledge_udp_ip_header_bytes": A.I32, "relay_frame_bytes": A.I32,
        "pledge_frame_bytes": A.I32, "forward_delay": A.DUR, "exact": A.BOOL, "errors": A.STR,
        "relay_sport": A.I32, "relay_dport": A.I32, "relay_hlim": A.I32, "pledge_sport": A.I32,
        "pledge_dport": A.I32, "pledge_hlim": A.I32, "capture": A.STR,
    })
    return cols


_COLUMNS = _columns()
