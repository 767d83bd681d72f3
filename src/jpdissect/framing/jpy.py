"""JPY messages (draft-ietf-anima-constrained-join-proxy) and the draft's example encrypted header.

Two layouts share one mechanism: each is a tuple of :class:`Element` descriptions, and both
:meth:`Layout.encode` and :meth:`Layout.decode` walk that tuple, so the lab that builds JPY messages
and the dissector that reads them cannot drift apart.

* :data:`JPY` -- drafts -11 and later, §4.3: ``[bstr jpy_header, bstr jpy_content]``. The Registrar
  "MUST verify that the number of CBOR array elements is 2 or more" and uses only the first two.
* :data:`JPY_LEGACY` -- drafts -03 … -10, §5.3: ``[bstr ip, int port, int family, int ifindex,
  bstr content]``, family 1 = IPv4, 2 = IPv6 (the "address family numbers" registry); a Registrar
  "MUST verify that the number of array elements is larger than or equal to 5" and returns the array
  with only the content replaced.

The header inside ``jpy_header`` is not standardised; :class:`JpyHeader` is the draft's illustrative
``struct jpy_header_plaintext`` (family, ifindex, srcport, 8-byte IID, zero word = 16 bytes),
described field by field in :data:`HEADER_FIELDS` and encrypted as one AES-128 block. The draft
mentions CBC; a single block with a zero IV is exactly ECB, which is what is used here. The zero word
is the integrity check: after decryption with the wrong key it is almost never zero, and
:meth:`JpyHeader.decrypt` reports that instead of guessing.

The same encrypted header is the JP state the lab puts in RFC 8974 extended tokens (``coap-dtls``
and ``cojp``): :func:`seal_token` / :func:`open_token`.

CBOR here is only what the layouts need (definite-length arrays, byte strings, unsigned integers);
extra trailing elements of any CBOR type are skipped with :func:`jpdissect.cbor.item_end`.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from jpdissect.framing import FramingError, Span

# ---------------------------------------------------------------------------
# Limits (named, per the project's rules)

#: Draft §4.3.1: "The state data SHOULD be at most 32 bytes."
MAX_HEADER_LEN = 32
#: Draft §4.3.3: CBOR framing plus a 32-byte header adds at most 38 bytes.
MAX_OVERHEAD = 38
#: A JPY message is one UDP payload.
MAX_CONTENT_LEN = 0xFFFF
#: Most array elements walked (elements past the layout are skipped, but not without bound).
MAX_ELEMENTS = 64
#: The draft's example header: one AES-128 block.
HEADER_LEN = 16
AES128_KEY_LEN = 16

# CBOR major types (RFC 8949 §3.1) that the layouts use.
MT_UINT, MT_NINT, MT_BSTR, MT_TSTR, MT_ARRAY = 0, 1, 2, 3, 4
_AI_1, _AI_2, _AI_4, _AI_8, _AI_INDEF = 24, 25, 26, 27, 31

#: Legacy drafts §5.3: address family numbers.
LEGACY_FAMILIES: Mapping[int, str] = {1: "IPv4", 2: "IPv6"}
#: The example header's family byte: "Only valid in the range 0...1" -- 0 IPv4, 1 IPv6 (our reading).
HEADER_FAMILIES: Mapping[int, str] = {0: "IPv4", 1: "IPv6"}
HEADER_FAMILY_IPV4, HEADER_FAMILY_IPV6 = 0, 1
LEGACY_FAMILY_IPV4, LEGACY_FAMILY_IPV6 = 1, 2
_LINK_LOCAL_PREFIX = bytes.fromhex("fe80000000000000")


# ---------------------------------------------------------------------------
# Minimal CBOR heads


def _head(mt: int, arg: int) -> bytes:
    """RFC 8949 §3: the shortest head for major type ``mt`` and argument ``arg``."""
    if arg < 24:
        return bytes((mt << 5 | arg,))
    if arg <= 0xFF:
        return bytes((mt << 5 | _AI_1, arg))
    if arg <= 0xFFFF:
        return bytes((mt << 5 | _AI_2,)) + arg.to_bytes(2, "big")
    if arg <= 0xFFFFFFFF:
        return bytes((mt << 5 | _AI_4,)) + arg.to_bytes(4, "big")
    return bytes((mt << 5 | _AI_8,)) + arg.to_bytes(8, "big")


#: RFC 8949 §3: additional information 24-27 -> that many argument bytes follow the initial byte.
_ARG_BYTES = {_AI_1: 1, _AI_2: 2, _AI_4: 4, _AI_8: 8}


def _read_head(buf: bytes, p: int, end: int) -> tuple[int, int | None, int, str | None]:
    """``(major type, argument, offset after the head, error)``; argument None = indefinite."""
    if p >= end:
        return -1, None, p, "RFC 8949 §3: data item cut short"
    ib = buf[p]
    mt, ai = ib >> 5, ib & 0x1F
    if ai < 24:
        return mt, ai, p + 1, None
    if ai == _AI_INDEF:
        return mt, None, p + 1, None
    n = _ARG_BYTES.get(ai)
    if n is None:
        return mt, None, p + 1, f"RFC 8949 §3: reserved additional information {ai}"
    if p + 1 + n > end:
        return mt, None, p + 1, "RFC 8949 §3: argument cut short"
    return mt, int.from_bytes(buf[p + 1:p + 1 + n], "big"), p + 1 + n, None


# ---------------------------------------------------------------------------
# The description


class Kind(enum.Enum):
    BSTR = "bstr"
    UINT = "uint"


@dataclass(frozen=True, slots=True)
class Element:
    """One array element: its name (the dissector's field suffix), CBOR kind and bounds."""

    name: str
    kind: Kind
    desc: str
    lengths: frozenset[int] | None = None
    max_len: int | None = None
    max_value: int | None = None
    values: Mapping[int, str] | None = None

    def check(self, value: bytes | int) -> str | None:
        """The rule a value breaks, or None."""
        if self.kind is Kind.BSTR:
            assert isinstance(value, bytes)
            if self.lengths is not None and len(value) not in self.lengths:
                want = " or ".join(str(n) for n in sorted(self.lengths))
                return f"{self.name}: {len(value)} bytes, expected {want}"
            if self.max_len is not None and len(value) > self.max_len:
                return f"{self.name}: {len(value)} bytes, more than {self.max_len}"
            return None
        assert isinstance(value, int)
        if self.max_value is not None and value > self.max_value:
            return f"{self.name}: {value} exceeds {self.max_value}"
        if self.values is not None and value not in self.values:
            return f"{self.name}: {value} is not one of {sorted(self.values)}"
        return None

    def encode(self, value: bytes | int) -> bytes:
        if self.kind is Kind.BSTR:
            if not isinstance(value, bytes | bytearray):
                raise TypeError(f"{self.name} is a byte string")
            return _head(MT_BSTR, len(value)) + bytes(value)
        if not isinstance(value, int) or value < 0:
            raise TypeError(f"{self.name} is an unsigned integer")
        return _head(MT_UINT, value)


@dataclass(frozen=True, slots=True)
class Layout:
    """An array layout: the elements a receiver needs, in order; more may follow and are ignored."""

    name: str
    elements: tuple[Element, ...]
    ref: str
    #: Which element carries the relayed datagram (replaced in a reply, kept elsewhere).
    content: str = "content"

    @property
    def min_items(self) -> int:
        return len(self.elements)

    def encode(self, **values: bytes | int) -> bytes:
        """Build the array from keyword values, one per element (bounds checked: bad input raises)."""
        missing = [e.name for e in self.elements if e.name not in values]
        extra = set(values) - {e.name for e in self.elements}
        if missing or extra:
            raise ValueError(f"{self.name}: missing {missing}, unknown {sorted(extra)}")
        out = bytearray(_head(MT_ARRAY, len(self.elements)))
        for e in self.elements:
            v = values[e.name]
            err = e.check(bytes(v) if isinstance(v, bytearray) else v)
            if err is not None:
                raise ValueError(f"{self.name}: {err}")
            out += e.encode(v)
        return bytes(out)

    def decode(self, buf: bytes, off: int = 0, end: int | None = None) -> JpyMessage:
        """Read ``buf[off:end]`` as this layout (never raises; errors are reported)."""
        return _decode(buf, off, len(buf) if end is None else end, self)


#: Draft -11 and later §4.3.1 (CDDL ``jpy_message = [jpy_header: bstr, jpy_content: bstr]``).
JPY = Layout("jpy", (
    Element("header", Kind.BSTR, "Join Proxy state, opaque to the Registrar and reflected unchanged",
            max_len=MAX_HEADER_LEN),
    Element("content", Kind.BSTR, "the relayed UDP payload (a DTLS datagram)", max_len=MAX_CONTENT_LEN),
), "draft-ietf-anima-constrained-join-proxy-11+ §4.3")

#: Drafts -03 … -10 §5.3 (CDDL ``[ip: bstr, port: int, family: int, index: int, content: bstr]``).
JPY_LEGACY = Layout("jpy-legacy", (
    Element("ip", Kind.BSTR, "the pledge's (link-local) IP address", lengths=frozenset({4, 16})),
    Element("port", Kind.UINT, "the pledge's UDP source port", max_value=0xFFFF),
    Element("family", Kind.UINT, "address family: 1 IPv4, 2 IPv6", values=LEGACY_FAMILIES),
    Element("ifindex", Kind.UINT, "the Join Proxy's interface index or other port identifier"),
    Element("content", Kind.BSTR, "the relayed UDP payload (a DTLS datagram)", max_len=MAX_CONTENT_LEN),
), "draft-ietf-anima-constrained-join-proxy-03…10 §5.3")

LAYOUTS: tuple[Layout, ...] = (JPY, JPY_LEGACY)


# ---------------------------------------------------------------------------
# The decoded form


@dataclass(slots=True)
class JpyMessage:
    """A decoded JPY array: element spans, the errors met, and how many extra elements were skipped."""

    layout: Layout | None
    offset: int
    length: int = 0
    count: int = 0
    spans: list[Span] = field(default_factory=list)
    extra: int = 0
    errors: list[FramingError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.layout is not None and not self.errors

    def span(self, name: str) -> Span | None:
        for s in self.spans:
            if s.name == name:
                return s
        return None

    def get(self, name: str, default: object = None) -> object:
        s = self.span(name)
        return default if s is None else s.value

    @property
    def header(self) -> bytes | None:
        v = self.get("header")
        return v if isinstance(v, bytes) else None

    @property
    def content(self) -> bytes | None:
        v = self.get("content")
        return v if isinstance(v, bytes) else None

    def reply(self, buf: bytes, content: bytes) -> bytes:
        """The return message: this array's bytes with only the content replaced (legacy §5.3, §4.3).

        Every other element -- including extra ones this code does not know -- is copied byte for
        byte, as the drafts require of the Registrar.
        """
        s = self.span(self.layout.content if self.layout else "content")
        if s is None or not self.length:
            raise ValueError("no content element to replace")
        item = _head(MT_BSTR, len(content)) + content
        return bytes(buf[self.offset:s.offset]) + item + bytes(buf[s.offset + s.length:self.offset + self.length])


def _decode(buf: bytes, off: int, end: int, layout: Layout | None) -> JpyMessage:
    msg = JpyMessage(layout, off)
    mt, count, p, err = _read_head(buf, off, end)
    if err is not None or mt != MT_ARRAY:
        msg.errors.append(FramingError(off, err or "JPY: the message is not a CBOR array"))
        msg.layout = None
        return msg
    if count is None:
        msg.errors.append(FramingError(off, "JPY: indefinite-length array (the drafts send definite arrays)"))
        msg.layout = None
        return msg
    msg.count = count
    if layout is None:
        layout = _classify(buf, p, end, count)
        msg.layout = layout
        if layout is None:
            msg.errors.append(FramingError(off, f"JPY: array of {count} elements matches neither "
                                                "[bstr, bstr] (§4.3) nor [bstr, int, int, int, bstr] (legacy §5.3)"))
            return msg
    if count < layout.min_items:
        msg.errors.append(FramingError(off, f"{layout.ref}: the Registrar MUST verify at least "
                                            f"{layout.min_items} elements, found {count}"))
    for i in range(min(count, MAX_ELEMENTS)):
        start = p
        if i >= len(layout.elements):
            try:
                from jpdissect.cbor import CborError, item_end

                p = item_end(buf, p, end)
            except CborError as exc:
                msg.errors.append(FramingError(exc.offset, f"JPY: extra element {i}: {exc.reason}"))
                return msg
            msg.extra += 1
            continue
        e = layout.elements[i]
        emt, arg, vp, err = _read_head(buf, p, end)
        if err is not None or arg is None:
            msg.errors.append(FramingError(p, f"JPY {e.name}: {err or 'indefinite length not supported'}"))
            return msg
        if e.kind is Kind.BSTR:
            if emt != MT_BSTR:
                msg.errors.append(FramingError(p, f"{layout.ref}: {e.name} must be a byte string"))
                return msg
            if vp + arg > end:
                msg.errors.append(FramingError(p, f"JPY {e.name}: byte string of {arg} bytes runs past "
                                                  "the datagram end", end - p))
                return msg
            value: bytes | int = bytes(buf[vp:vp + arg])
            p = vp + arg
            msg.spans.append(Span(e.name, start, p - start, vp, arg, value))
        else:
            if emt != MT_UINT:
                msg.errors.append(FramingError(p, f"{layout.ref}: {e.name} must be an unsigned integer"))
                return msg
            value = arg
            p = vp
            msg.spans.append(Span(e.name, start, p - start, start, p - start, value))
        rule = e.check(value)
        if rule is not None:
            msg.errors.append(FramingError(start, f"{layout.ref}: {rule}", p - start))
    if count > MAX_ELEMENTS:
        msg.errors.append(FramingError(off, f"JPY: more than {MAX_ELEMENTS} elements, rest not walked"))
        return msg
    msg.length = p - off
    if p < end:
        msg.errors.append(FramingError(p, f"JPY: {end - p} bytes after the CBOR array", end - p))
    return msg


def _classify(buf: bytes, p: int, end: int, count: int) -> Layout | None:
    """Pick the layout from the element kinds (a legacy array also starts with a byte string)."""
    kinds: list[int] = []
    q = p
    for _ in range(min(count, 5)):
        mt, arg, vp, err = _read_head(buf, q, end)
        if err is not None or arg is None:
            break
        kinds.append(mt)
        q = vp + arg if mt in (MT_BSTR, MT_TSTR) else vp
        if mt not in (MT_BSTR, MT_UINT, MT_NINT):
            break
    if count >= 5 and kinds[:5] == [MT_BSTR, MT_UINT, MT_UINT, MT_UINT, MT_BSTR]:
        return JPY_LEGACY
    if count >= 2 and kinds[:2] == [MT_BSTR, MT_BSTR]:
        return JPY
    if count < 2 and kinds[:1] in ([], [MT_BSTR]):
        return JPY  # too short for either: report it against the current layout's "2 or more"
    return None


def decode(buf: bytes, off: int = 0, end: int | None = None) -> JpyMessage:
    """Decode either layout, chosen by the element kinds; never raises."""
    return _decode(buf, off, len(buf) if end is None else end, None)


def encode(header: bytes, content: bytes) -> bytes:
    """``[bstr header, bstr content]`` (§4.3)."""
    return JPY.encode(header=header, content=content)


def encode_legacy(ip: bytes, port: int, family: int, ifindex: int, content: bytes) -> bytes:
    """``[bstr ip, port, family, ifindex, bstr content]`` (legacy §5.3)."""
    return JPY_LEGACY.encode(ip=ip, port=port, family=family, ifindex=ifindex, content=content)


def overhead(header_len: int, content_len: int) -> int:
    """Bytes a 2-element JPY message adds to a datagram of ``content_len`` bytes."""
    return len(_head(MT_ARRAY, 2)) + len(_head(MT_BSTR, header_len)) + header_len + len(
        _head(MT_BSTR, content_len))


# ---------------------------------------------------------------------------
# The draft's example header


@dataclass(frozen=True, slots=True)
class HeaderField:
    name: str
    fmt: str
    desc: str


#: ``struct jpy_header_plaintext`` of the draft (§4.3.4 "Example Format for JPY Header Data").
HEADER_FIELDS: tuple[HeaderField, ...] = (
    HeaderField("family", "B", "IPv4/IPv6 family, 0 or 1 (only 0…1 valid)"),
    HeaderField("ifindex", "B", "the Join Proxy interface the pledge is on"),
    HeaderField("srcport", "H", "the pledge's UDP source port (only > 0 valid)"),
    HeaderField("iid", "8s", "the IID (lower 64 bits) of the pledge's link-local address"),
    HeaderField("zero", "I", "integrity check and padding: 0 before encryption, MUST be 0 after decryption"),
)
_HEADER = struct.Struct(">" + "".join(f.fmt for f in HEADER_FIELDS))
assert _HEADER.size == HEADER_LEN


def _aes(key: bytes) -> Cipher[modes.ECB]:
    if len(key) != AES128_KEY_LEN:
        raise ValueError(f"the header key is AES-128: {AES128_KEY_LEN} bytes, got {len(key)}")
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 - one block, as the draft's example


@dataclass(frozen=True, slots=True)
class HeaderResult:
    """What decrypting a header gave: the header, or why not (and the plaintext when there was one)."""

    header: JpyHeader | None
    error: str | None
    plaintext: bytes | None = None


@dataclass(frozen=True, slots=True)
class JpyHeader:
    """The pledge the JP relays for: enough to rebuild ``fe80::IID%ifindex`` port ``srcport``."""

    family: int
    ifindex: int
    srcport: int
    iid: bytes

    def pack(self) -> bytes:
        if len(self.iid) != 8:
            raise ValueError("iid is 8 bytes")
        return _HEADER.pack(self.family, self.ifindex, self.srcport, self.iid, 0)

    @classmethod
    def unpack(cls, data: bytes) -> HeaderResult:
        if len(data) != HEADER_LEN:
            return HeaderResult(None, f"JPY example header is {HEADER_LEN} bytes, got {len(data)}")
        family, ifindex, srcport, iid, zero = _HEADER.unpack(data)
        if zero != 0:
            return HeaderResult(None, f"zero word is 0x{zero:08x} after decryption, MUST be 0: "
                                      "wrong key or a tampered header", data)
        if family not in HEADER_FAMILIES:
            return HeaderResult(None, f"family {family} outside 0…1: wrong key or a tampered header", data)
        if srcport == 0:
            return HeaderResult(None, "srcport 0 is not valid (only > 0)", data)
        return HeaderResult(cls(family, ifindex, srcport, iid), None, data)

    def encrypt(self, key: bytes) -> bytes:
        enc = _aes(key).encryptor()
        return enc.update(self.pack()) + enc.finalize()

    @classmethod
    def decrypt(cls, key: bytes, ciphertext: bytes) -> HeaderResult:
        """Decrypt and check; a wrong key shows as a non-zero zero word, reported, never guessed past."""
        if len(ciphertext) != HEADER_LEN:
            return HeaderResult(None, f"encrypted header is {len(ciphertext)} bytes, not one "
                                      f"{HEADER_LEN}-byte AES block")
        dec = _aes(key).decryptor()
        return cls.unpack(dec.update(ciphertext) + dec.finalize())

    @classmethod
    def for_address(cls, address: str, port: int, ifindex: int) -> JpyHeader:
        """From a pledge's source address (``fe80::…``, a ``%scope`` suffix ignored) and port."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.version == 6:
            return cls(HEADER_FAMILY_IPV6, ifindex, port, ip.packed[8:])
        # An IPv4 link-local address (RFC 3927) fits the 8-byte field, right-aligned.
        return cls(HEADER_FAMILY_IPV4, ifindex, port, bytes(4) + ip.packed)

    @property
    def address(self) -> str:
        """The pledge address the header names (IPv6 link-local ``fe80::/64`` + IID)."""
        if self.family == HEADER_FAMILY_IPV6:
            return str(ipaddress.IPv6Address(_LINK_LOCAL_PREFIX + self.iid))
        return str(ipaddress.IPv4Address(self.iid[4:]))


def seal_token(key: bytes, header: JpyHeader, inner_token: bytes = b"") -> bytes:
    """An RFC 8974 extended token carrying JP state: the encrypted header, then the pledge's own token.

    RFC 8974 §3 (stateless clients) and RFC 9031 §7: the proxy puts its state into the token and must
    give the origin's token back on the way out, so it rides behind the state.
    """
    return header.encrypt(key) + inner_token


def open_token(key: bytes, token: bytes) -> tuple[HeaderResult, bytes]:
    """Split a sealed token into the decrypted state and the pledge's own token."""
    if len(token) < HEADER_LEN:
        return HeaderResult(None, f"token of {len(token)} bytes cannot hold a {HEADER_LEN}-byte state"), b""
    return JpyHeader.decrypt(key, token[:HEADER_LEN]), token[HEADER_LEN:]


def legacy_for_address(address: str, port: int, ifindex: int, content: bytes) -> bytes:
    """The legacy 5-element message for a pledge address (``%scope`` ignored)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    family = LEGACY_FAMILY_IPV6 if ip.version == 6 else LEGACY_FAMILY_IPV4
    return encode_legacy(ip.packed, port, family, ifindex, content)


__all__ = [
    "HEADER_FIELDS", "HEADER_LEN", "JPY", "JPY_LEGACY", "LAYOUTS", "MAX_HEADER_LEN", "Element",
    "HeaderResult", "JpyHeader", "JpyMessage", "Kind", "Layout", "decode", "encode", "encode_legacy",
    "legacy_for_address", "open_token", "overhead", "seal_token",
]
