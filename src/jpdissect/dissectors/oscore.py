"""OSCORE (RFC 8613): the OSCORE option value and the protected payload, without decryption (yet).

The CoAP dissector calls :func:`parse_option` on the option value and :func:`dissect_protected` on the
payload of a message that carries the option. What a later decryption step needs is kept, not
recomputed: :func:`parse_option` returns every piece with its offset, and the CoAP dissector stores
each request's kid / Partial IV / kid context per exchange in ``pkt.cap.state[STATE_KEY]`` so that a
response (which usually has no Partial IV of its own, RFC 8613 §8.3) can be linked to the nonce
material of its request.

Fields: Wireshark names the option's pieces ``coap.opt.object_security_*`` (declared by the CoAP
dissector); the ``oscore.*`` names here are the ones the project's filters and the decryption issue use.
"""

from __future__ import annotations

from dataclasses import dataclass

from jpdissect.model import FT, Base, F, Group, Packet, Pref, Protocol, Severity, declare_prefs

P = Protocol("oscore", "Object Security for Constrained RESTful Environments", "OSCORE")

#: RFC 8613 §6.1 flag byte.
FLAG_EXTENSION = 0x80   # bit 0: a second flag byte follows (OSCORE Flag Bits registry)
FLAG_GROUP = 0x40       # bit 1: Group Flag (RFC 9594 / Group OSCORE)
FLAG_RESERVED = 0x20    # bit 2: reserved
FLAG_H = 0x10           # kid context present
FLAG_K = 0x08           # kid present
FLAG_N = 0x07           # Partial IV length
MAX_PIV_LEN = 5         # RFC 8613 §6.1: n = 6 and 7 are reserved
#: AES-CCM-16-64-128, the mandatory default algorithm (RFC 8613 §3.2.1), has an 8-byte tag.
DEFAULT_TAG_LEN = 8
STATE_KEY = "oscore.exchanges"

FLAG_NAMES = {FLAG_EXTENSION: "Extension", FLAG_GROUP: "Group", FLAG_RESERVED: "Reserved",
              FLAG_H: "Key ID Context (h)", FLAG_K: "Key ID (k)"}

FO = P.declare(
    F("oscore.flags", "OSCORE Flags", FT.UINT8, "First byte of the OSCORE option (RFC 8613 §6.1)",
      base=Base.HEX),
    F("oscore.flags.extension", "Extension Flag", FT.BOOLEAN, "A second flag byte follows", bitmask=0x80),
    F("oscore.flags.group", "Group Flag", FT.BOOLEAN, "Group OSCORE", bitmask=0x40),
    F("oscore.flags.reserved", "Reserved", FT.BOOLEAN, bitmask=0x20),
    F("oscore.flags.h", "Key ID Context Present", FT.BOOLEAN, bitmask=0x10),
    F("oscore.flags.k", "Key ID Present", FT.BOOLEAN, bitmask=0x08),
    F("oscore.flags.n", "Partial IV Length", FT.UINT8, bitmask=0x07),
    F("oscore.flags2", "OSCORE Extension Flags", FT.UINT8, "Second flag byte (flag bits 8-15)", base=Base.HEX),
    F("oscore.piv", "Partial IV", FT.BYTES),
    F("oscore.kid_context_len", "Key ID Context Length", FT.UINT8),
    F("oscore.kid_context", "Key ID Context", FT.BYTES),
    F("oscore.kid", "Key ID", FT.BYTES),
    F("oscore.ciphertext", "Ciphertext", FT.BYTES, "Encrypted inner message without the tag"),
    F("oscore.tag", "Authentication Tag", FT.BYTES, "Last bytes of the protected payload (AEAD tag)"),
    F("oscore.protected_length", "Protected payload length", FT.UINT32),
    F("oscore.request_in", "Request In", FT.FRAMENUM, "The request whose nonce material this response uses"),
    F("oscore.request_piv", "Request Partial IV", FT.BYTES),
    F("oscore.request_kid", "Request Key ID", FT.BYTES),
    F("oscore.request_kid_context", "Request Key ID Context", FT.BYTES),
)

declare_prefs(Pref("oscore.tag_length", int, DEFAULT_TAG_LEN,
                   "AEAD tag length of the OSCORE algorithm in use (8 for AES-CCM-16-64-128)"))


@dataclass(slots=True)
class OscoreOption:
    """The pieces of one OSCORE option value, with absolute offsets (for spans and for decryption)."""

    offset: int
    length: int
    flags: int = 0
    flags2: int | None = None
    piv: bytes | None = None
    piv_off: int = 0
    kid_context: bytes | None = None
    kid_context_off: int = 0
    kid: bytes | None = None
    kid_off: int = 0
    error: str | None = None
    error_off: int = 0
    warning: str | None = None


def parse_option(buf: bytes, off: int, length: int) -> OscoreOption:
    """RFC 8613 §6.1: ``flags | [flags2] | Partial IV (n) | [s | kid context (s)] | [kid (rest)]``.

    An empty value is legal (all flags zero, typical of responses). Never raises; ``error`` names
    the rule broken.
    """
    o = OscoreOption(off, length)
    end = off + length
    if length == 0:
        return o
    f = buf[off]
    o.flags = f
    p = off + 1
    if f == 0:
        o.warning = "RFC 8613 §6.1: all flag bits zero, the option value should have been empty"
    if f & FLAG_EXTENSION:
        if p >= end:
            o.error, o.error_off = "RFC 8613 §6.1: extension flag set but no second flag byte", off
            return o
        o.flags2 = buf[p]
        p += 1
    if f & FLAG_RESERVED:
        o.warning = "RFC 8613 §6.1: reserved flag bit 2 is set"
    n = f & FLAG_N
    if n > MAX_PIV_LEN:
        o.error, o.error_off = f"RFC 8613 §6.1: Partial IV length {n} is reserved (6 and 7)", off
        return o
    if n:
        if p + n > end:
            o.error, o.error_off = f"RFC 8613 §6.1: Partial IV of {n} bytes runs past the option", p
            return o
        o.piv, o.piv_off = bytes(buf[p:p + n]), p
        p += n
    if f & FLAG_H:
        if p >= end:
            o.error, o.error_off = "RFC 8613 §6.1: h flag set but no kid context length byte", p
            return o
        s = buf[p]
        if p + 1 + s > end:
            o.error, o.error_off = f"RFC 8613 §6.1: kid context of {s} bytes runs past the option", p
            return o
        o.kid_context, o.kid_context_off = bytes(buf[p + 1:p + 1 + s]), p + 1
        p += 1 + s
    if f & FLAG_K:
        o.kid, o.kid_off = bytes(buf[p:end]), p
        p = end
    if p < end:
        o.error, o.error_off = f"RFC 8613 §6.1: {end - p} bytes left over after the flagged fields", p
    return o


def add_option_fields(pkt: Packet, lay: object, o: OscoreOption) -> None:
    """The ``oscore.*`` fields of the option, on the OSCORE layer (spans point into the option)."""
    add = lay.add  # type: ignore[attr-defined]
    if o.length == 0:
        return
    off = o.offset
    f = o.flags
    if pkt.tree or FO.flags.primed:
        n = add(FO.flags, f, off, 1)
        if pkt.tree:
            n.add(FO.flags_extension, bool(f & FLAG_EXTENSION), off, 1)
            n.add(FO.flags_group, bool(f & FLAG_GROUP), off, 1)
            n.add(FO.flags_reserved, bool(f & FLAG_RESERVED), off, 1)
            n.add(FO.flags_h, bool(f & FLAG_H), off, 1)
            n.add(FO.flags_k, bool(f & FLAG_K), off, 1)
            n.add(FO.flags_n, f & FLAG_N, off, 1)
    if o.flags2 is not None:
        add(FO.flags2, o.flags2, off + 1, 1)
    if o.piv is not None:
        add(FO.piv, o.piv, o.piv_off, len(o.piv))
    if o.kid_context is not None:
        add(FO.kid_context_len, len(o.kid_context), o.kid_context_off - 1, 1)
        add(FO.kid_context, o.kid_context, o.kid_context_off, len(o.kid_context))
    if o.kid is not None:
        add(FO.kid, o.kid, o.kid_off, len(o.kid))


def dissect_protected(pkt: Packet, buf: bytes, off: int, end: int, src: int,
                      opt: OscoreOption, request: dict[str, object] | None) -> None:
    """The OSCORE layer: option pieces, then the payload as ciphertext + tag (RFC 8613 §5)."""
    lay = pkt.add_layer(P, off, end - off, src)
    fields = pkt.tree or P.primed  # field bookkeeping only when a tree or an oscore field wants it
    if fields:
        add_option_fields(pkt, lay, opt)
    if request is not None and fields:
        rf = request.get("frame")
        if isinstance(rf, int) and rf != pkt.number:
            lay.add(FO.request_in, rf, 0, 0, generated=True)
            for fd, key in ((FO.request_piv, "piv"), (FO.request_kid, "kid"),
                            (FO.request_kid_context, "kid_context")):
                v = request.get(key)
                if isinstance(v, bytes):
                    lay.add(fd, v, 0, 0, generated=True)
    n = end - off
    if fields:
        lay.add(FO.protected_length, n, off, n, generated=True)
    tag_len = pkt.cap.pref("oscore.tag_length") if pkt.cap is not None else DEFAULT_TAG_LEN
    if n < tag_len:
        pkt.malformed(lay, f"RFC 8613 §5: protected payload of {n} bytes is shorter than the "
                           f"{tag_len}-byte authentication tag", off, n)
        return
    if pkt.tree or FO.ciphertext.primed:
        lay.add(FO.ciphertext, buf[off:end - tag_len], off, n - tag_len)
    if pkt.tree or FO.tag.primed:
        lay.add(FO.tag, buf[end - tag_len:end], end - tag_len, tag_len)
    from jpdissect.crypto import oscore as _osc_dec
    if _osc_dec.decrypt_protected(pkt, lay, buf, off, end, src, opt, request):
        return
    if pkt.tree:
        lay.label = (f"Object Security for Constrained RESTful Environments, "
                     f"{n - tag_len} bytes ciphertext + {tag_len}-byte tag")
        pkt.expert(lay, Severity.NOTE, Group.UNDECODED, "OSCORE payload not decrypted (no security context)")
