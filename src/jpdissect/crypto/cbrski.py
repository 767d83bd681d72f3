"""cBRSKI and EST-coaps payloads, as seen after DTLS decryption.

A pledge onboarding with constrained BRSKI (draft-ietf-anima-constrained-voucher) talks CoAP over
DTLS to the Registrar: ``/.well-known/brski/rv`` (voucher request; the response is the voucher),
``/vs`` (voucher status), ``/es`` (enrollment status), then EST-coaps (RFC 9148 §5) ``/.well-known/est/
crts``, ``sen``, ``sren``, ``att``, ``skg``, ``skc``. Voucher requests and vouchers are COSE-signed
(COSE_Sign1, RFC 9052 §4.2, CBOR tag 18): shown as the COSE structure with its protected header,
unprotected header, payload (the voucher, as CBOR diagnostic notation) and signature. Unsigned CBOR
(as the lab sends) is shown as diagnostic notation; DER certificates and CSRs by their subject.

The dissector hangs on ``coap.uri_path`` (responses use their request's path), so it sees only what
the CoAP dissector hands it -- here, decrypted application data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jpdissect import cbor
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, F, Group, Packet, Protocol, Severity

P = Protocol("cbrski", "Constrained BRSKI / EST-coaps", "cBRSKI")

RESOURCES = {
    "/.well-known/brski/rv": "Voucher Request",
    "/.well-known/brski/vs": "Voucher Status",
    "/.well-known/brski/es": "Enrollment Status",
    "/.well-known/est/crts": "CA Certificates",
    "/.well-known/est/sen": "Simple Enroll",
    "/.well-known/est/sren": "Simple Re-enroll",
    "/.well-known/est/att": "CSR Attributes",
    "/.well-known/est/skg": "Server-side Key Generation",
    "/.well-known/est/skc": "Server-side Key Generation (certificate)",
}
COSE_SIGN1_TAG = 18        # RFC 9052 §4.2
COSE_HEADER_ALG = 1        # RFC 9052 §3.1
COSE_SIGN1_ITEMS = 4       # [protected, unprotected, payload, signature]
DER_SEQUENCE = 0x30

FB = P.declare(
    F("cbrski.resource", "Resource", FT.STRING),
    F("cbrski.message", "Message", FT.STRING, "request or response"),
    F("cbrski.cose", "COSE structure", FT.STRING, "COSE_Sign1 (tag 18) or untagged"),
    F("cbrski.cose.protected", "Protected header", FT.STRING, "CBOR diagnostic notation of the bstr content"),
    F("cbrski.cose.alg", "Algorithm", FT.INT32, "COSE alg (RFC 9053), e.g. -7 = ES256"),
    F("cbrski.cose.unprotected", "Unprotected header", FT.STRING),
    F("cbrski.cose.payload", "Payload", FT.STRING, "The signed voucher (request), CBOR diagnostic notation"),
    F("cbrski.cose.signature", "Signature", FT.BYTES),
    F("cbrski.cbor", "CBOR (diagnostic notation)", FT.STRING),
    F("cbrski.x509.subject", "Certificate subject", FT.STRING),
    F("cbrski.csr.subject", "CSR subject", FT.STRING),
)


@dissector("cbrski", "cBRSKI / EST-coaps payloads (COSE-signed vouchers, certificates)")
def dissect_cbrski(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P, off, end - off, src)
    if not (pkt.tree or P.primed):
        # Every summary line: the layer is all the columns and a `cbrski` filter need, and no
        # cbrski field is asked for -- one attribute test instead of field calls and a table scan.
        return True
    info = pkt.scratch.get("coap")
    path = getattr(info, "path", "") or ""
    code = getattr(info, "code", 0)
    name = RESOURCES.get(path, path)
    kind = "request" if 0 < code < 32 else "response"
    lay.add(FB.resource, name, off, 0, generated=True)
    lay.add(FB.message, kind, off, 0, generated=True)
    if not (pkt.tree or any(fd.primed for fd in P.fields.values())):
        return True  # the layer and its resource name are enough for columns and `cbrski` filters
    data = bytes(buf[off:end])
    what = ""
    if data[:1] == b"\xd2" or (data and data[0] == 0x84):
        what = _cose(pkt, lay, data, off)
    if not what and data and data[0] != DER_SEQUENCE:
        items, err = cbor.diag_all(data)
        if err is None:
            lay.add(FB.cbor, items[0], off, end - off)
            what = "CBOR"
    if not what and data[:1] == bytes([DER_SEQUENCE]):
        what = _der(pkt, lay, data, off)
    if not what:
        pkt.expert(lay, Severity.NOTE, Group.UNDECODED, f"{name} {kind}: payload not decoded", off, end - off)
    if pkt.tree:
        lay.label = f"Constrained BRSKI / EST-coaps, {name} {kind}" + (f" ({what})" if what else "")
    return True


def _cose(pkt: Packet, lay: Any, data: bytes, off: int) -> str:
    """COSE_Sign1 = [protected: bstr .cbor header_map, unprotected: map, payload: bstr / nil, signature: bstr]."""
    try:
        obj = cbor.loads(data)
    except cbor.CborError:
        return ""
    tagged = getattr(obj, "tag", None) == COSE_SIGN1_TAG
    arr = obj.value if tagged else obj
    # cbor2 hands tag content back immutable (tuple, frozendict): test for the abstract types.
    if not (isinstance(arr, Sequence) and not isinstance(arr, bytes | str) and len(arr) == COSE_SIGN1_ITEMS
            and isinstance(arr[0], bytes) and isinstance(arr[1], Mapping) and isinstance(arr[3], bytes)):
        if tagged:
            pkt.malformed(lay, "RFC 9052 §4.2: COSE_Sign1 (tag 18) must be [protected, unprotected, payload, "
                               "signature]", off, len(data))
            return "COSE_Sign1 (malformed)"
        return ""
    n = len(data)
    lay.add(FB.cose, "COSE_Sign1 (tag 18)" if tagged else "COSE_Sign1 (untagged)", off, n)
    prot, unprot, payload, sig = arr
    if prot:
        txt, err = cbor.diag_all(prot)
        lay.add(FB.cose_protected, txt[0] if txt and err is None else prot.hex(), off, n)
        try:
            hdr = cbor.loads(prot)
            if isinstance(hdr, Mapping) and isinstance(hdr.get(COSE_HEADER_ALG), int):
                lay.add(FB.cose_alg, hdr[COSE_HEADER_ALG], off, n)
        except cbor.CborError:
            pkt.expert(lay, Severity.WARN, Group.MALFORMED, "COSE protected header is not CBOR", off)
    else:
        lay.add(FB.cose_protected, "{}", off, n)
    try:
        import cbor2

        lay.add(FB.cose_unprotected, cbor.diag(cbor2.dumps(dict(unprot)))[0], off, n)
    except Exception:  # noqa: BLE001 - display only
        lay.add(FB.cose_unprotected, repr(unprot), off, n)
    if isinstance(payload, bytes):
        txt, err = cbor.diag_all(payload)
        lay.add(FB.cose_payload, txt[0] if txt and err is None else payload.hex(), off, n)
    elif payload is None:
        lay.add(FB.cose_payload, "nil (detached payload)", off, n)
    lay.add(FB.cose_signature, sig, off, n)
    return "COSE_Sign1"


def _der(pkt: Packet, lay: Any, data: bytes, off: int) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import pkcs7

    n = len(data)
    try:
        cert = x509.load_der_x509_certificate(data)
        lay.add(FB.x509_subject, cert.subject.rfc4514_string(), off, n)
        return "X.509 certificate"
    except ValueError:
        pass
    try:
        csr = x509.load_der_x509_csr(data)
        lay.add(FB.csr_subject, csr.subject.rfc4514_string(), off, n)
        return "PKCS#10 CSR"
    except ValueError:
        pass
    try:
        for c in pkcs7.load_der_pkcs7_certificates(data):
            lay.add(FB.x509_subject, c.subject.rfc4514_string(), off, n)
        return "PKCS#7 certificates"
    except ValueError:
        return ""


for _path in RESOURCES:
    REGISTRY.add("coap.uri_path", _path, "cbrski")
