"""CoAP messages over UDP (RFC 7252 §3) with RFC 8974 extended tokens: one description, both directions.

The project both parses CoAP (the dissector) and builds it (the lab, the scheme what-if analysis), so
the layout lives here once: the option table (:data:`OPTIONS`, IANA "CoAP Option Numbers" with each
option's format and length bounds), the token-length and option-header primitives, and
:class:`CoapMessage` whose :meth:`~CoapMessage.encode` and :meth:`~CoapMessage.decode` both use them.
The dissector (:mod:`jpdissect.dissectors.coap`) calls the same primitives so that it can record byte
spans; it never re-implements the nibble rules.

Nothing here raises on bad bytes: :meth:`CoapMessage.decode` returns what it could read plus a list of
:class:`FormatError` naming the rule and the offset, as the dissector's expert info does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------
# Limits and constants (named, per the project's rules)

HEADER_LEN = 4
VERSION = 1
#: RFC 8974 §2.1: TKL 13 -> one extra byte, length = byte + 13.
TKL_EXT8 = 13
#: RFC 8974 §2.1: TKL 14 -> two extra bytes, length = value + 269.
TKL_EXT16 = 14
#: RFC 8974 §2.1: TKL 15 is a message format error.
TKL_RESERVED = 15
TKL_EXT8_BIAS = 13
TKL_EXT16_BIAS = 269
#: Largest token RFC 8974 can express: 65535 + 269.
MAX_TOKEN_LEN = 0xFFFF + TKL_EXT16_BIAS
#: Largest token an RFC 7252 peer accepts (§3: TKL 9-15 are reserved there).
RFC7252_MAX_TOKEN_LEN = 8
#: RFC 7252 §3.1: option delta/length nibble 13 -> +1 byte (+13), 14 -> +2 bytes (+269), 15 reserved.
OPT_EXT8 = 13
OPT_EXT16 = 14
OPT_RESERVED = 15
OPT_EXT8_BIAS = 13
OPT_EXT16_BIAS = 269
#: The largest option number a delta chain can reach (16-bit extended delta on top of 65535 is an error).
MAX_OPTION_NUMBER = 0xFFFF
PAYLOAD_MARKER = 0xFF


class MsgType(enum.IntEnum):
    CON = 0
    NON = 1
    ACK = 2
    RST = 3


TYPE_NAMES = {0: "Confirmable", 1: "Non-Confirmable", 2: "Acknowledgement", 3: "Reset"}
TYPE_SHORT = ("CON", "NON", "ACK", "RST")


def code_str(code: int) -> str:
    """``c.dd`` notation of RFC 7252 §12.1."""
    return f"{code >> 5}.{code & 0x1F:02d}"


#: RFC 7252 §12.1, RFC 8132 (FETCH/PATCH/iPATCH), RFC 7959 (2.31, 4.08, 4.13), RFC 8516 (4.29),
#: RFC 8768 (5.08 Hop Limit Reached), RFC 8323 §5 signaling codes (7.xx, not valid over UDP).
CODE_NAMES: dict[int, str] = {
    0: "Empty Message",
    1: "GET", 2: "POST", 3: "PUT", 4: "DELETE", 5: "FETCH", 6: "PATCH", 7: "iPATCH",
    65: "2.01 Created", 66: "2.02 Deleted", 67: "2.03 Valid", 68: "2.04 Changed", 69: "2.05 Content",
    95: "2.31 Continue",
    128: "4.00 Bad Request", 129: "4.01 Unauthorized", 130: "4.02 Bad Option", 131: "4.03 Forbidden",
    132: "4.04 Not Found", 133: "4.05 Method Not Allowed", 134: "4.06 Not Acceptable",
    136: "4.08 Request Entity Incomplete", 137: "4.09 Conflict", 140: "4.12 Precondition Failed",
    141: "4.13 Request Entity Too Large", 143: "4.15 Unsupported Content-Format",
    150: "4.22 Unprocessable Entity", 157: "4.29 Too Many Requests",
    160: "5.00 Internal Server Error", 161: "5.01 Not Implemented", 162: "5.02 Bad Gateway",
    163: "5.03 Service Unavailable", 164: "5.04 Gateway Timeout", 165: "5.05 Proxying Not Supported",
    168: "5.08 Hop Limit Reached",
    225: "7.01 CSM", 226: "7.02 Ping", 227: "7.03 Pong", 228: "7.04 Release", 229: "7.05 Abort",
}

GET, POST, PUT, DELETE, FETCH, PATCH, IPATCH = 1, 2, 3, 4, 5, 6, 7


def code_name(code: int) -> str:
    name = CODE_NAMES.get(code)
    if name is not None:
        return name
    return f"Unknown {code_str(code)}"


def is_request(code: int) -> bool:
    """Class 0 with a non-zero detail (RFC 7252 §5.8)."""
    return 0 < code < 32


def is_response(code: int) -> bool:
    return 64 <= code < 192


# ---------------------------------------------------------------------------
# The option table


class OptFormat(enum.Enum):
    """RFC 7252 §3.2 option value formats."""

    EMPTY = "empty"
    OPAQUE = "opaque"
    UINT = "uint"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class OptionDef:
    """One registered option: the format and the length bounds both directions enforce.

    ``field`` is the suffix of the dissector's field (``coap.opt.<field>``), Wireshark's name where
    Wireshark has one.
    """

    number: int
    name: str
    fmt: OptFormat
    min_len: int
    max_len: int
    repeatable: bool
    field: str
    ref: str

    # RFC 7252 §5.4.6: the option number's low bits say how an unaware node must treat it.
    @property
    def critical(self) -> bool:
        return option_critical(self.number)

    @property
    def unsafe(self) -> bool:
        return option_unsafe(self.number)

    @property
    def no_cache_key(self) -> bool:
        return option_no_cache_key(self.number)


def option_critical(number: int) -> bool:
    """RFC 7252 §5.4.6: odd option numbers are critical."""
    return bool(number & 1)


def option_unsafe(number: int) -> bool:
    """RFC 7252 §5.4.6: bit 1 set means unsafe to forward."""
    return bool(number & 2)


def option_no_cache_key(number: int) -> bool:
    """RFC 7252 §5.4.6: bits 1-4 equal to 1110 (0x1c) means NoCacheKey (only for safe options)."""
    return (number & 0x1E) == 0x1C


_E, _O, _U, _S = OptFormat.EMPTY, OptFormat.OPAQUE, OptFormat.UINT, OptFormat.STRING

#: IANA "CoAP Option Numbers" (core-parameters), with RFC 7252 §5.10 / each RFC's length bounds.
OPTIONS: dict[int, OptionDef] = {o.number: o for o in (
    OptionDef(1, "If-Match", _O, 0, 8, True, "if_match", "RFC 7252"),
    OptionDef(3, "Uri-Host", _S, 1, 255, False, "uri_host", "RFC 7252"),
    OptionDef(4, "ETag", _O, 1, 8, True, "etag", "RFC 7252"),
    OptionDef(5, "If-None-Match", _E, 0, 0, False, "if_none_match", "RFC 7252"),
    OptionDef(6, "Observe", _U, 0, 3, False, "observe", "RFC 7641"),
    OptionDef(7, "Uri-Port", _U, 0, 2, False, "uri_port", "RFC 7252"),
    OptionDef(8, "Location-Path", _S, 0, 255, True, "location_path", "RFC 7252"),
    OptionDef(9, "OSCORE", _O, 0, 255, False, "oscore", "RFC 8613"),
    OptionDef(11, "Uri-Path", _S, 0, 255, True, "uri_path", "RFC 7252"),
    OptionDef(12, "Content-Format", _U, 0, 2, False, "ctype", "RFC 7252"),
    OptionDef(14, "Max-Age", _U, 0, 4, False, "max_age", "RFC 7252"),
    OptionDef(15, "Uri-Query", _S, 0, 255, True, "uri_query", "RFC 7252"),
    OptionDef(16, "Hop-Limit", _U, 1, 1, False, "hop_limit", "RFC 8768"),
    OptionDef(17, "Accept", _U, 0, 2, False, "accept", "RFC 7252"),
    OptionDef(19, "Q-Block1", _U, 0, 3, False, "q_block1", "RFC 9177"),
    OptionDef(20, "Location-Query", _S, 0, 255, True, "location_query", "RFC 7252"),
    OptionDef(21, "EDHOC", _E, 0, 0, False, "edhoc", "RFC 9668"),
    OptionDef(23, "Block2", _U, 0, 3, False, "block2", "RFC 7959"),
    OptionDef(27, "Block1", _U, 0, 3, False, "block1", "RFC 7959"),
    OptionDef(28, "Size2", _U, 0, 4, False, "size2", "RFC 7959"),
    OptionDef(31, "Q-Block2", _U, 0, 3, False, "q_block2", "RFC 9177"),
    OptionDef(35, "Proxy-Uri", _S, 1, 1034, False, "proxy_uri", "RFC 7252"),
    OptionDef(39, "Proxy-Scheme", _S, 1, 255, False, "proxy_scheme", "RFC 7252"),
    OptionDef(60, "Size1", _U, 0, 4, False, "size1", "RFC 7252"),
    OptionDef(252, "Echo", _O, 1, 40, False, "echo", "RFC 9175"),
    OptionDef(258, "No-Response", _U, 0, 1, False, "no_response", "RFC 7967"),
    OptionDef(292, "Request-Tag", _O, 0, 8, True, "request_tag", "RFC 9175"),
    OptionDef(2048, "OCF-Accept-Content-Format-Version", _U, 2, 2, False, "ocf_accept_version", "OCF"),
    OptionDef(2049, "OCF-Content-Format-Version", _U, 2, 2, False, "ocf_version", "OCF"),
)}

#: Not IANA-registered: the "Stateless-Proxy" option of early RFC 9031 drafts, number 40 in OpenWSN,
#: carrying the join proxy's state. Decoded by name when present (a registry entry would win).
STATELESS_PROXY = OptionDef(40, "Stateless-Proxy", _O, 0, 255, False, "stateless_proxy",
                            "draft-ietf-6tisch-minimal-security (OpenWSN)")
EXPERIMENTAL_OPTIONS: dict[int, OptionDef] = {STATELESS_PROXY.number: STATELESS_PROXY}

OPTIONS_BY_NAME: dict[str, OptionDef] = {o.name.lower(): o for o in OPTIONS.values()}

IF_MATCH, URI_HOST, ETAG, IF_NONE_MATCH, OBSERVE, URI_PORT, LOCATION_PATH, OSCORE = 1, 3, 4, 5, 6, 7, 8, 9
URI_PATH, CONTENT_FORMAT, MAX_AGE, URI_QUERY, HOP_LIMIT, ACCEPT = 11, 12, 14, 15, 16, 17
LOCATION_QUERY, BLOCK2, BLOCK1, SIZE2, PROXY_URI, PROXY_SCHEME, SIZE1 = 20, 23, 27, 28, 35, 39, 60
ECHO, NO_RESPONSE, REQUEST_TAG = 252, 258, 292


def option_def(number: int) -> OptionDef | None:
    d = OPTIONS.get(number)
    if d is None:
        d = EXPERIMENTAL_OPTIONS.get(number)
    return d


def option_name(number: int) -> str:
    d = option_def(number)
    return d.name if d is not None else f"Unknown Option {number}"


#: IANA "CoAP Content-Formats" (core-parameters). 836 is the cBRSKI constrained voucher
#: (draft-ietf-anima-constrained-voucher), 280-287 the EST-coaps types (RFC 9148).
CONTENT_FORMATS: dict[int, str] = {
    0: "text/plain; charset=utf-8",
    16: 'application/cose; cose-type="cose-encrypt0"',
    17: 'application/cose; cose-type="cose-mac0"',
    18: 'application/cose; cose-type="cose-sign1"',
    19: "application/ace+cbor",
    21: "image/gif", 22: "image/jpeg", 23: "image/png",
    40: "application/link-format",
    41: "application/xml",
    42: "application/octet-stream",
    47: "application/exi",
    50: "application/json",
    51: "application/json-patch+json",
    52: "application/merge-patch+json",
    60: "application/cbor",
    61: "application/cwt",
    62: "application/multipart-core",
    63: "application/cbor-seq",
    64: "application/edhoc+cbor-seq",
    65: "application/cid-edhoc+cbor-seq",
    96: 'application/cose; cose-type="cose-encrypt"',
    97: 'application/cose; cose-type="cose-mac"',
    98: 'application/cose; cose-type="cose-sign"',
    101: "application/cose-key",
    102: "application/cose-key-set",
    110: "application/senml+json", 111: "application/sensml+json",
    112: "application/senml+cbor", 113: "application/sensml+cbor",
    114: "application/senml-exi", 115: "application/sensml-exi",
    140: "application/yang-data+cbor; id=sid",
    256: "application/coap-group+json",
    257: "application/concise-problem-details+cbor",
    258: "application/swid+cbor",
    271: "application/dots+cbor",
    272: "application/missing-blocks+cbor-seq",
    280: "application/pkcs7-mime; smime-type=server-generated-key",
    281: "application/pkcs7-mime; smime-type=certs-only",
    284: "application/pkcs8",
    285: "application/csrattrs",
    286: "application/pkcs10",
    287: "application/pkix-cert",
    290: "application/aif+cbor", 291: "application/aif+json",
    310: "application/senml+xml", 311: "application/sensml+xml",
    320: "application/senml-etch+json", 322: "application/senml-etch+cbor",
    340: "application/yang-data+cbor", 341: "application/yang-data+cbor; id=name",
    432: "application/td+json", 433: "application/tm+json",
    836: "application/voucher+cose",
    10000: "application/vnd.ocf+cbor",
    10001: "application/oscore",
    10002: "application/javascript",
    11050: "application/json (deflate)",
    11060: "application/cbor (deflate)",
    11542: "application/vnd.oma.lwm2m+tlv",
    11543: "application/vnd.oma.lwm2m+json",
    11544: "application/vnd.oma.lwm2m+cbor",
    20000: "text/css",
    30000: "image/svg+xml",
}

#: Content-Formats whose body is one CBOR data item (RFC 8949) -- shown in diagnostic notation.
CBOR_FORMATS = frozenset({16, 17, 18, 19, 60, 61, 62, 96, 97, 98, 101, 102, 112, 113, 140, 257, 258, 271,
                          290, 322, 340, 341, 836, 10000, 11544})
#: Content-Formats that are CBOR sequences (RFC 8742): zero or more items back to back.
CBOR_SEQ_FORMATS = frozenset({63, 64, 65, 272})
TEXT_FORMATS = frozenset({0, 41, 50, 51, 52, 110, 111, 256, 291, 310, 311, 320, 432, 433, 10002, 20000, 30000})
LINK_FORMAT = 40


def content_format_name(cf: int) -> str:
    name = CONTENT_FORMATS.get(cf)
    if name is not None:
        return name
    if 65000 <= cf <= 65535:
        return f"Experimental Use {cf}"
    return f"Unknown Type {cf}"


# ---------------------------------------------------------------------------
# Value formats (RFC 7252 §3.2)


def encode_uint(v: int) -> bytes:
    """Shortest big-endian form; 0 is the empty string (RFC 7252 §3.2)."""
    if v < 0:
        raise ValueError("uint option values are non-negative")
    return v.to_bytes((v.bit_length() + 7) // 8, "big")


def decode_uint(b: bytes) -> int:
    return int.from_bytes(b, "big")


def encode_value(number: int, value: int | str | bytes | None) -> bytes:
    """A typed value to option bytes according to the table; unknown options take bytes."""
    d = option_def(number)
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, int):
        if d is not None and d.fmt is not OptFormat.UINT:
            raise TypeError(f"{d.name} is {d.fmt.value}, not uint")
        return encode_uint(value)
    if isinstance(value, str):
        if d is not None and d.fmt is not OptFormat.STRING:
            raise TypeError(f"{d.name} is {d.fmt.value}, not string")
        return value.encode("utf-8")
    raise TypeError(f"cannot encode {type(value).__name__} as an option value")


def decode_value(number: int, raw: bytes) -> int | str | bytes | None:
    """Option bytes to the typed value the table says (unknown options stay bytes)."""
    d = option_def(number)
    if d is None:
        return bytes(raw)
    fmt = d.fmt
    if fmt is OptFormat.UINT:
        return int.from_bytes(raw, "big")
    if fmt is OptFormat.STRING:
        return bytes(raw).decode("utf-8", "replace")
    if fmt is OptFormat.EMPTY:
        return None
    return bytes(raw)


def block_fields(v: int) -> tuple[int, bool, int]:
    """RFC 7959 §2.2: (NUM, M, SZX); the block size is ``1 << (SZX + 4)``."""
    return v >> 4, bool(v & 0x08), v & 0x07


def encode_block(num: int, more: bool, szx: int) -> int:
    return (num << 4) | (0x08 if more else 0) | (szx & 0x07)


# ---------------------------------------------------------------------------
# Primitives shared with the dissector


@dataclass(slots=True, frozen=True)
class FormatError:
    """A message-format error: the rule broken and where (an absolute offset into the buffer)."""

    offset: int
    message: str
    length: int = 1


def read_token_length(buf: bytes, off: int, end: int) -> tuple[int, int, str | None]:
    """RFC 8974 §2.1 token length from the first header byte at ``off``.

    Returns ``(token_len, ext_len, error)``: ``ext_len`` extension bytes follow the 4-byte
    header. TKL 15 and a missing extension are errors (token_len then -1).
    """
    tkl = buf[off] & 0x0F
    if tkl < TKL_EXT8:
        return tkl, 0, None
    ext = off + HEADER_LEN
    if tkl == TKL_EXT8:
        if ext + 1 > end:
            return -1, 1, "RFC 8974 §2.1: TKL 13 needs one extension byte, message ends"
        return buf[ext] + TKL_EXT8_BIAS, 1, None
    if tkl == TKL_EXT16:
        if ext + 2 > end:
            return -1, 2, "RFC 8974 §2.1: TKL 14 needs two extension bytes, message ends"
        return ((buf[ext] << 8) | buf[ext + 1]) + TKL_EXT16_BIAS, 2, None
    return -1, 0, "RFC 8974 §2.1: TKL 15 is reserved (message format error)"


def token_length_encoding(n: int) -> tuple[int, bytes]:
    """The TKL nibble and extension bytes for a token of ``n`` bytes (RFC 8974 §2.1)."""
    if n < 0 or n > MAX_TOKEN_LEN:
        raise ValueError(f"token length {n} outside 0..{MAX_TOKEN_LEN} (RFC 8974 §2.1)")
    if n < TKL_EXT8:
        return n, b""
    if n < TKL_EXT16_BIAS:
        return TKL_EXT8, bytes((n - TKL_EXT8_BIAS,))
    return TKL_EXT16, (n - TKL_EXT16_BIAS).to_bytes(2, "big")


def read_option_header(buf: bytes, off: int, end: int) -> tuple[int, int, int, str | None]:
    """RFC 7252 §3.1 option header at ``off`` (the byte is not 0xFF).

    Returns ``(delta, length, header_len, error)``. Nibble 15 in either field is an error
    (the 0xFF payload marker is the caller's business), as is a cut-short extension.
    """
    b = buf[off]
    delta = b >> 4
    length = b & 0x0F
    p = off + 1
    if delta == OPT_RESERVED:
        return delta, length, 1, "RFC 7252 §3.1: option delta 15 is reserved"
    if delta == OPT_EXT8:
        if p + 1 > end:
            return delta, length, 1, "RFC 7252 §3.1: option delta extension (1 byte) cut short"
        delta = buf[p] + OPT_EXT8_BIAS
        p += 1
    elif delta == OPT_EXT16:
        if p + 2 > end:
            return delta, length, 1, "RFC 7252 §3.1: option delta extension (2 bytes) cut short"
        delta = ((buf[p] << 8) | buf[p + 1]) + OPT_EXT16_BIAS
        p += 2
    if length == OPT_RESERVED:
        return delta, length, p - off, "RFC 7252 §3.1: option length 15 is reserved"
    if length == OPT_EXT8:
        if p + 1 > end:
            return delta, length, p - off, "RFC 7252 §3.1: option length extension (1 byte) cut short"
        length = buf[p] + OPT_EXT8_BIAS
        p += 1
    elif length == OPT_EXT16:
        if p + 2 > end:
            return delta, length, p - off, "RFC 7252 §3.1: option length extension (2 bytes) cut short"
        length = ((buf[p] << 8) | buf[p + 1]) + OPT_EXT16_BIAS
        p += 2
    return delta, length, p - off, None


def _nibble(v: int) -> tuple[int, bytes]:
    if v < OPT_EXT8_BIAS:
        return v, b""
    if v < OPT_EXT16_BIAS:
        return OPT_EXT8, bytes((v - OPT_EXT8_BIAS,))
    if v - OPT_EXT16_BIAS > 0xFFFF:
        raise ValueError(f"option delta/length {v} too large (RFC 7252 §3.1)")
    return OPT_EXT16, (v - OPT_EXT16_BIAS).to_bytes(2, "big")


def option_header(delta: int, length: int) -> bytes:
    """Encode one option header (RFC 7252 §3.1)."""
    dn, dx = _nibble(delta)
    ln, lx = _nibble(length)
    return bytes(((dn << 4) | ln,)) + dx + lx


def check_option_length(number: int, length: int) -> str | None:
    """RFC 7252 §5.4.3 / §5.10: a length outside the option's bounds (None when fine or unknown)."""
    d = option_def(number)
    if d is None or d.min_len <= length <= d.max_len:
        return None
    return (f"RFC 7252 §5.4.3: {d.name} (option {number}) length {length} outside "
            f"{d.min_len}..{d.max_len} ({d.ref})")


# ---------------------------------------------------------------------------
# The message


@dataclass
class CoapMessage:
    """A CoAP-over-UDP message; options are ``(number, raw bytes)`` in any order (encode sorts them)."""

    type: int = MsgType.CON
    code: int = GET
    mid: int = 0
    token: bytes = b""
    options: list[tuple[int, bytes]] = field(default_factory=list)
    payload: bytes = b""
    version: int = VERSION

    # -- building --------------------------------------------------------
    def add(self, number: int, value: int | str | bytes | None = None) -> CoapMessage:
        """Append an option, the value typed per :data:`OPTIONS` (chainable)."""
        self.options.append((number, encode_value(number, value)))
        return self

    def set_path(self, path: str) -> CoapMessage:
        """Uri-Path options from ``/a/b`` (RFC 7252 §6.4 step 8, without percent-decoding)."""
        for seg in path.strip("/").split("/"):
            if seg:
                self.add(URI_PATH, seg)
        return self

    def encode(self) -> bytes:
        """Wire bytes (RFC 7252 §3, RFC 8974 §2.1). Options are sorted stably by number."""
        if not 0 <= self.mid <= 0xFFFF:
            raise ValueError("MID is 16 bits")
        tkl, text = token_length_encoding(len(self.token))
        out = bytearray((((self.version & 3) << 6) | ((self.type & 3) << 4) | tkl,
                         self.code & 0xFF, self.mid >> 8, self.mid & 0xFF))
        out += text
        out += self.token
        prev = 0
        for num, raw in sorted(self.options, key=lambda o: o[0]):
            if num > MAX_OPTION_NUMBER:
                raise ValueError(f"option number {num} too large")
            out += option_header(num - prev, len(raw))
            out += raw
            prev = num
        if self.payload:
            out.append(PAYLOAD_MARKER)
            out += self.payload
        return bytes(out)

    # -- parsing ---------------------------------------------------------
    @classmethod
    def decode(cls, buf: bytes, off: int = 0, end: int | None = None) -> tuple[CoapMessage | None, list[FormatError]]:
        """Parse ``buf[off:end]``; returns the message (None if not even a header) and the errors.

        Decoding stops at the first format error; what was read before it is kept.
        """
        if end is None:
            end = len(buf)
        errors: list[FormatError] = []
        if end - off < HEADER_LEN:
            errors.append(FormatError(off, "RFC 7252 §3: message shorter than the 4-byte header", end - off))
            return None, errors
        b0 = buf[off]
        msg = cls(type=(b0 >> 4) & 3, code=buf[off + 1], mid=(buf[off + 2] << 8) | buf[off + 3],
                  version=b0 >> 6)
        if msg.version != VERSION:
            errors.append(FormatError(off, f"RFC 7252 §3: version {msg.version} (must be 1)"))
        tlen, xlen, err = read_token_length(buf, off, end)
        if err is not None:
            errors.append(FormatError(off, err))
            return msg, errors
        p = off + HEADER_LEN + xlen
        if p + tlen > end:
            errors.append(FormatError(p, f"RFC 8974 §2.1: token of {tlen} bytes runs past the message end",
                                      end - p))
            return msg, errors
        msg.token = bytes(buf[p:p + tlen])
        p += tlen
        if msg.code == 0 and (tlen or p < end):
            # RFC 7252 §4.1: an Empty message has TKL 0 and nothing after the MID.
            errors.append(FormatError(off, "RFC 7252 §4.1: Empty message (code 0.00) with token, options or payload"))
        number = 0
        while p < end:
            if buf[p] == PAYLOAD_MARKER:
                if p + 1 >= end:
                    errors.append(FormatError(p, "RFC 7252 §3: payload marker followed by a zero-length payload"))
                    return msg, errors
                msg.payload = bytes(buf[p + 1:end])
                return msg, errors
            delta, length, hlen, err = read_option_header(buf, p, end)
            if err is not None:
                errors.append(FormatError(p, err, hlen))
                return msg, errors
            number += delta
            if number > MAX_OPTION_NUMBER:
                errors.append(FormatError(p, f"RFC 7252 §3.1: option number {number} exceeds 65535", hlen))
                return msg, errors
            v = p + hlen
            if v + length > end:
                errors.append(FormatError(p, f"RFC 7252 §3.1: option {number} value of {length} bytes runs "
                                             "past the message end", end - p))
                return msg, errors
            msg.options.append((number, bytes(buf[v:v + length])))
            lerr = check_option_length(number, length)
            if lerr is not None:
                errors.append(FormatError(v, lerr, length))
            p = v + length
        return msg, errors

    # -- reading ---------------------------------------------------------
    def opts(self, number: int) -> list[bytes]:
        return [raw for n, raw in self.options if n == number]

    def opt(self, number: int) -> int | str | bytes | None:
        """The first occurrence of an option, typed; None when absent."""
        for n, raw in self.options:
            if n == number:
                return decode_value(n, raw)
        return None

    def has(self, number: int) -> bool:
        return any(n == number for n, _ in self.options)

    @property
    def uri_path(self) -> str:
        return "/" + "/".join(raw.decode("utf-8", "replace") for raw in self.opts(URI_PATH))

    @property
    def content_format(self) -> int | None:
        v = self.opt(CONTENT_FORMAT)
        return v if isinstance(v, int) else None

    def __str__(self) -> str:
        return (f"{TYPE_SHORT[self.type & 3]} MID:{self.mid} {code_name(self.code)} "
                f"TKN:{self.token.hex()} {self.uri_path if self.has(URI_PATH) else ''}").rstrip()
