"""JPY messages: a stateless Join Proxy's framing on the Registrar leg (draft-ietf-anima-constrained-join-proxy).

Two forms, both read by the one codec in :mod:`jpdissect.framing.jpy` (this module only turns its
element spans and errors into fields and expert info):

* ``[bstr jpy_header, bstr jpy_content]`` (drafts -11 and later, §4.3). The Registrar "MUST verify
  that the number of CBOR array elements is 2 or more" and uses the first two, so more elements are
  accepted and flagged. The header is opaque JP state, shown with its length; with
  ``-o jpy.header_key:HEX`` it is decrypted as the draft's example (§4.3.4: one AES-128 block of
  family, ifindex, srcport, 8-byte IID and a zero word). The zero word is the check: a wrong key is
  reported, never guessed past.
* ``[bstr ip, int port, int family, int ifindex, bstr content]`` (drafts -03 … -10, §5.3).

The content is the pledge's DTLS datagram and goes to the DTLS dissector, under a DTLS session key
naming the pledge (the header, or the legacy address and port): every pledge shares the one JP <->
Registrar UDP flow, so the flow alone cannot tell their handshakes apart.

Found by a port learned from CoAP discovery (``coaps+jpy://`` / ``jpy://`` links, the CoAP dissector
calls ``pkt.cap.learn``), by decode-as (``-d udp.port==7634,jpy``; the draft registers no port), or by
a heuristic: a CBOR array whose content element starts like a DTLS record.
"""

from __future__ import annotations

import ipaddress

from jpdissect import cbor
from jpdissect.dissectors.jp import RelayFacts, starts_like_dtls
from jpdissect.dissectors.registry import dissector, heuristic
from jpdissect.framing import jpy as codec
from jpdissect.framing.jpy import HEADER_FAMILIES, JPY, JPY_LEGACY, LEGACY_FAMILIES, JpyHeader
from jpdissect.model import FT, Base, F, FieldDef, Group, Packet, Pref, Protocol, Severity, declare_prefs

P = Protocol("jpy", "Join Proxy JPY message", "JPY")
FJ = P.declare(
    F("jpy.form", "Form", FT.STRING, "jpy (2 elements, §4.3) or jpy-legacy (5 elements, drafts -03…-10 §5.3)"),
    F("jpy.elements", "Array elements", FT.UINT32),
    F("jpy.extra_elements", "Extra elements (ignored by the Registrar)", FT.UINT32,
      "§4.3: '2 or more' elements; only the first two are used"),
    F("jpy.header", "Header", FT.BYTES, "jpy_header: the JP's state, opaque to the Registrar"),
    F("jpy.header.len", "Header length", FT.UINT32, unit="bytes"),
    F("jpy.header.plaintext", "Decrypted header", FT.BYTES, "With jpy.header_key (draft §4.3.4 example)"),
    F("jpy.header.family", "Family", FT.UINT8, strings=HEADER_FAMILIES),
    F("jpy.header.ifindex", "Interface index", FT.UINT8),
    F("jpy.header.srcport", "Pledge source port", FT.UINT16),
    F("jpy.header.iid", "Pledge IID", FT.BYTES),
    F("jpy.header.zero", "Zero word", FT.UINT32, base=Base.HEX, desc="MUST be 0 after decryption"),
    F("jpy.header.pledge", "Pledge address", FT.STRING, "fe80::IID (or the IPv4 link-local address)"),
    F("jpy.ip", "Pledge IP address", FT.IPv6, "Legacy form: the pledge's (link-local) IPv6 address"),
    F("jpy.ipv4", "Pledge IPv4 address", FT.IPv4, "Legacy form, family 1"),
    F("jpy.port", "Pledge port", FT.UINT16),
    F("jpy.family", "Address family", FT.UINT32, strings=LEGACY_FAMILIES),
    F("jpy.ifindex", "Interface index", FT.UINT32),
    F("jpy.content", "Content", FT.BYTES, "jpy_content: the pledge's DTLS datagram"),
    F("jpy.content.len", "Content length", FT.UINT32, unit="bytes"),
    F("jpy.overhead", "Framing overhead", FT.UINT32,
      "CBOR framing plus header (§4.3.3 claims at most 38 bytes)", unit="bytes"),
)

declare_prefs(
    Pref("jpy.header_key", bytes, b"",
         "AES-128 key (16 bytes hex) of the Join Proxy, to decrypt the draft's example JPY header "
         "(also the JP state in coap-dtls and CoJP tokens)"),
    Pref("jpy.heuristic", bool, True,
         "Look for JPY messages on any UDP port (a CBOR array whose content starts like a DTLS record)"),
)

#: Smallest JPY message the heuristic considers: array head, two byte-string heads, a DTLS record header.
DTLS_RECORD_HEADER = 13
MIN_HEURISTIC_LEN = 3 + DTLS_RECORD_HEADER
#: CBOR definite-length array heads of 2…23 elements (RFC 8949 §3.1, major type 4).
ARRAY_HEAD_MIN, ARRAY_HEAD_MAX = 0x82, 0x97
CBOR_MT_BSTR = 2

# One field per layout element, by the element's name -- the layout itself stays in the codec.
_ELEMENT_FIELDS: dict[str, FieldDef] = {
    "header": FJ.header, "content": FJ.content, "ip": FJ.ip, "port": FJ.port, "family": FJ.family,
    "ifindex": FJ.ifindex,
}
assert {e.name for lay in codec.LAYOUTS for e in lay.elements} <= set(_ELEMENT_FIELDS)
_HEADER_FIELD: dict[str, FieldDef] = {"family": FJ.header_family, "ifindex": FJ.header_ifindex,
                                      "srcport": FJ.header_srcport, "iid": FJ.header_iid,
                                      "zero": FJ.header_zero}
assert {f.name for f in codec.HEADER_FIELDS} == set(_HEADER_FIELD)


@heuristic("udp", "jpy_udp", "jpy")
def heur_jpy(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """A definite array starting with a byte string, decoding to a known form, whose content starts
    like a DTLS record (the draft's relayed datagram)."""
    if end - off < MIN_HEURISTIC_LEN:
        return False
    b0 = buf[off]
    if not ARRAY_HEAD_MIN <= b0 <= ARRAY_HEAD_MAX or buf[off + 1] >> 5 != CBOR_MT_BSTR:
        return False
    if pkt.cap is not None and not pkt.cap.pref("jpy.heuristic"):
        return False
    msg = codec.decode(buf, off, end)
    if msg.layout is None:
        return False
    s = msg.span(msg.layout.content)
    if s is None or not starts_like_dtls(buf, s.value_offset, s.value_offset + s.value_length):
        return False
    return _dissect(pkt, buf, off, end, src, msg)  # decoded once: the heuristic's reading is the message


@dissector("jpy", "JPY message of a stateless Join Proxy (draft-ietf-anima-constrained-join-proxy)")
def dissect_jpy(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    return _dissect(pkt, buf, off, end, src, codec.decode(buf, off, end))


def _dissect(pkt: Packet, buf: bytes, off: int, end: int, src: int, msg: codec.JpyMessage) -> bool:
    lay = pkt.add_layer(P, off, end - off, src)
    tree = pkt.tree
    # Field bookkeeping only for a tree or a primed jpy field; state, experts and the DTLS
    # hand-off below run in every mode.
    fields = tree or P.primed
    add = lay.add
    form = msg.layout.name if msg.layout is not None else None
    if fields:
        if form is not None:
            add(FJ.form, form, off, max(1, msg.length), generated=True)
        if msg.count:
            add(FJ.elements, msg.count, off, 1)
    if msg.extra:
        node = add(FJ.extra_elements, msg.extra, off, 1, generated=True)
        if msg.layout is JPY:
            pkt.expert(node, Severity.NOTE, Group.PROTOCOL,
                       f"Draft §4.3: {msg.count} elements; a Registrar verifies '2 or more' and uses only "
                       f"the first two ({msg.extra} ignored)", off, max(1, msg.length))
        else:
            pkt.expert(node, Severity.NOTE, Group.PROTOCOL,
                       f"Legacy §5.3: {msg.count} elements; a Registrar accepts 5 or more ({msg.extra} "
                       "ignored, returned unchanged)", off, max(1, msg.length))
    header: bytes | None = None
    pledge: tuple[bytes, int] | None = None
    hdr_span = None
    for s in msg.spans:
        name = s.name
        if name == "header" and isinstance(s.value, bytes):
            header = s.value
            hdr_span = s
        if not fields:
            continue
        fd = _ELEMENT_FIELDS[name]
        if name == "ip" and isinstance(s.value, bytes) and len(s.value) == 4:
            fd = FJ.ipv4
        if name == "ip" and isinstance(s.value, bytes) and len(s.value) not in (4, 16):
            continue  # reported by the codec; no address field for it
        node = add(fd, s.value, s.value_offset, s.value_length)  # a uint's value span is its item
        if name == "header" and isinstance(s.value, bytes):
            node.add(FJ.header_len, len(s.value), s.offset, s.value_offset - s.offset, generated=True)
            if tree:
                node.label = f"Header: {s.value.hex()} ({len(s.value)} bytes, opaque JP state)"
        elif name == "content" and isinstance(s.value, bytes):
            node.add(FJ.content_len, len(s.value), s.offset, s.value_offset - s.offset, generated=True)
            if tree:  # the DTLS layer below shows the bytes
                node.label = f"Content: {len(s.value)} bytes (the relayed datagram)"
    if msg.layout is JPY_LEGACY:
        ip, port = msg.get("ip"), msg.get("port")
        if isinstance(ip, bytes) and len(ip) in (4, 16) and isinstance(port, int):
            pledge = (ip, port)
    for e in msg.errors:
        pkt.malformed(lay, e.message, e.offset, e.length)
    if msg.layout is None and msg.count:
        # Neither form: say where the CBOR itself breaks, if it does (RFC 8949 well-formedness).
        try:
            cbor.item_end(buf, off, end)
        except cbor.CborError as exc:
            pkt.malformed(lay, f"JPY: malformed CBOR: {exc.reason}", exc.offset)
    if header is not None and hdr_span is not None and msg.layout is JPY:
        pledge = _decrypt(pkt, lay, header, hdr_span.value_offset) or pledge
    content = msg.span(msg.layout.content) if msg.layout is not None else None
    if content is not None and msg.length and fields:
        add(FJ.overhead, msg.length - content.value_length, off, msg.length, generated=True)
    dtls_info = ""
    if content is not None:
        c0, c1 = content.value_offset, content.value_offset + content.value_length
        state: bytes | None
        if msg.layout is JPY_LEGACY:  # ip, port, family, ifindex: everything before the content
            state_off = msg.spans[0].offset
            state = bytes(buf[state_off:content.offset])
        else:
            state = header
            state_off = hdr_span.value_offset if hdr_span is not None else off
        pkt.scratch["jp.relay"] = RelayFacts(
            form or "jpy", None, src, c0, c1, state, state_off, len(state) if state else 0, pledge)
        dtls_info = _call_dtls(pkt, buf, c0, c1, src, ("jpy", pledge or header))
    if pkt.cols:
        who = _pledge_text(pledge) if pledge else (f"hdr {header.hex()[:8]}…" if header else "")
        pkt.info = f"JPY{' legacy' if msg.layout is JPY_LEGACY else ''} [{who}] {dtls_info}".strip()
        if not msg.ok and "[Malformed" not in pkt.info:
            pkt.info += " [Malformed Packet]"
    if tree:
        lay.label = (f"Join Proxy JPY message ({form or 'unrecognised'}), {msg.count} elements"
                     + (f", header {len(header)} bytes" if header is not None else ""))
    return True


def _decrypt(pkt: Packet, lay: object, header: bytes, hoff: int) -> tuple[bytes, int] | None:
    """Draft §4.3.4 example header, with the configured key; a wrong key is reported, not guessed."""
    key = pkt.cap.pref("jpy.header_key") if pkt.cap is not None else b""
    if not key:
        return None
    n = len(header)
    try:
        res = JpyHeader.decrypt(bytes(key), header)
    except ValueError as exc:  # a key of the wrong length
        pkt.expert(lay, Severity.WARN, Group.DECRYPTION, f"jpy.header_key: {exc}", hoff, n)  # type: ignore[arg-type]
        return None
    if res.header is None:
        pkt.expert(lay, Severity.WARN, Group.DECRYPTION,  # type: ignore[arg-type]
                   f"JPY header not decrypted with jpy.header_key: {res.error}", hoff, n)
        return None
    h = res.header
    node = lay.add(FJ.header_plaintext, res.plaintext, hoff, n, generated=True)  # type: ignore[attr-defined]
    node.add(FJ.header_family, h.family, hoff, n, generated=True)
    node.add(FJ.header_ifindex, h.ifindex, hoff, n, generated=True)
    node.add(FJ.header_srcport, h.srcport, hoff, n, generated=True)
    node.add(FJ.header_iid, h.iid, hoff, n, generated=True)
    node.add(FJ.header_zero, 0, hoff, n, generated=True)
    node.add(FJ.header_pledge, h.address, hoff, n, generated=True)
    return ipaddress.ip_address(h.address).packed, h.srcport


def _pledge_text(pledge: tuple[bytes, int]) -> str:
    ip, port = pledge
    a = ipaddress.ip_address(ip)
    return f"[{a}]:{port}" if a.version == 6 else f"{a}:{port}"


def _call_dtls(pkt: Packet, buf: bytes, off: int, end: int, src: int, key: object) -> str:
    """Hand the relayed datagram to DTLS under a per-pledge session key; returns DTLS's Info text."""
    if end <= off:
        return ""
    sc = pkt.scratch
    saved = sc.get("dtls.session_key")
    sc["dtls.session_key"] = key
    info_before = pkt.info
    try:
        pkt.cap.call("dtls", pkt, buf, off, end, src)
    finally:
        if saved is None:
            sc.pop("dtls.session_key", None)
        else:
            sc["dtls.session_key"] = saved
    text = pkt.info if pkt.info != info_before else ""
    return text


__all__ = ["FJ", "P", "dissect_jpy", "heur_jpy"]
