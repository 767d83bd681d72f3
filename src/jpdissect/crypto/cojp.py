"""RFC 9031 Constrained Join Protocol (CoJP) messages, once OSCORE has been removed.

The pledge POSTs a Join_Request to ``/j`` (RFC 9031 §8.1) and the JRC answers 2.04 with a
Configuration (§8.4.2). Both are CBOR maps keyed by the CoJP parameter labels of §8.4 / the IANA
"CoJP Parameters" registry (Table 4): role 1, link-layer key set 2, short identifier 3, JRC address 4,
network identifier 5, network prefix 6, join rate 7, unsupported configuration 8. Labels we do not
know are shown, not dropped.

The dissector hangs on the ``coap.uri_path`` table under ``/j``; it only ever sees plaintext (the
outer message of CoJP carries no Uri-Path, RFC 8613 §4.1.3.1 makes it a Class E option).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jpdissect import cbor
from jpdissect.dissectors.registry import REGISTRY, dissector
from jpdissect.model import FT, F, Group, Packet, Protocol, Severity

COJP_PATH = "/j"

P = Protocol("cojp", "Constrained Join Protocol (RFC 9031)", "CoJP")

LABELS = {1: "role", 2: "link-layer key set", 3: "short identifier", 4: "JRC address",
          5: "network identifier", 6: "network prefix", 7: "join rate", 8: "unsupported configuration"}
ROLES = {0: "6TiSCH Node", 1: "6LBR"}   # RFC 9031 §8.4.1 Table 5
#: IPv6 address length (the JRC address parameter, §8.4.2).
IPV6_LEN = 16

FJ = P.declare(
    F("cojp.message", "Message", FT.STRING, "Join Request or Configuration"),
    F("cojp.parameter", "Parameter", FT.STRING, "label: value in CBOR diagnostic notation"),
    F("cojp.role", "Role", FT.UINT8, strings=ROLES),
    F("cojp.network_identifier", "Network Identifier", FT.BYTES),
    F("cojp.link_layer_key", "Link-Layer Key", FT.BYTES, "A key value of the link-layer key set"),
    F("cojp.short_identifier", "Short Identifier", FT.BYTES),
    F("cojp.lease_time", "Lease Time", FT.UINT32, unit="hours"),
    F("cojp.jrc_address", "JRC Address", FT.IPv6),
    F("cojp.network_prefix", "Network Prefix", FT.BYTES),
    F("cojp.join_rate", "Join Rate", FT.DOUBLE),
    F("cojp.unsupported_configuration", "Unsupported Configuration", FT.STRING),
)


def _diag(v: Any) -> str:
    import cbor2

    try:
        return cbor.diag(cbor2.dumps(v))[0]
    except Exception:  # noqa: BLE001 - display only
        return repr(v)


@dissector("cojp", "RFC 9031 CoJP Join Request / Configuration (CBOR)")
def dissect_cojp(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    lay = pkt.add_layer(P, off, end - off, src)
    info = pkt.scratch.get("coap")
    code = pkt.scratch.pop("oscore.inner_code", None)
    if code is None:
        code = getattr(info, "code", 0)
    kind = "Join Request" if 0 < code < 32 else "Configuration"
    lay.add(FJ.message, kind, off, end - off)
    try:
        doc = cbor.loads(bytes(buf[off:end]))
    except cbor.CborError as exc:
        pkt.malformed(lay, f"RFC 9031 §8.4: {kind} is not well-formed CBOR: {exc.reason}",
                      off + exc.offset, 0)
        return True
    if not isinstance(doc, Mapping):
        pkt.malformed(lay, f"RFC 9031 §8.4: a {kind} is a CBOR map, not {type(doc).__name__}", off, end - off)
        return True
    names = []
    for k, v in doc.items():
        name = LABELS.get(k, f"unknown parameter {k}") if isinstance(k, int) else f"parameter {k!r}"
        names.append(name)
        lay.add(FJ.parameter, f"{name} ({k}): {_diag(v)}", off, end - off)
        _param(pkt, lay, k, v, off, end)
    if pkt.tree:
        lay.label = f"Constrained Join Protocol (RFC 9031), {kind}: {', '.join(names) or 'empty'}"
    return True


def _param(pkt: Packet, lay: Any, k: Any, v: Any, off: int, end: int) -> None:
    n = end - off
    if k == 1:
        if isinstance(v, int) and 0 <= v < 256:
            lay.add(FJ.role, v, off, n)
        else:
            pkt.expert(lay, Severity.WARN, Group.MALFORMED, "RFC 9031 §8.4.1: role is an unsigned integer", off)
    elif k == 5 and isinstance(v, bytes):
        lay.add(FJ.network_identifier, v, off, n)
    elif k == 2 and isinstance(v, Sequence) and not isinstance(v, bytes | str):
        for item in v:  # §8.4.3: key_id / key_usage / key_value / key_addinfo, flattened
            if isinstance(item, bytes):
                lay.add(FJ.link_layer_key, item, off, n)
    elif k == 3 and isinstance(v, Sequence) and not isinstance(v, bytes | str) and v:
        if isinstance(v[0], bytes):
            lay.add(FJ.short_identifier, v[0], off, n)
        if len(v) > 1 and isinstance(v[1], int) and v[1] >= 0:
            lay.add(FJ.lease_time, v[1], off, n)
    elif k == 4 and isinstance(v, bytes):
        if len(v) == IPV6_LEN:
            lay.add(FJ.jrc_address, v, off, n)
        else:
            pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                       f"RFC 9031 §8.4.2: JRC address of {len(v)} bytes (an IPv6 address has 16)", off)
    elif k == 6 and isinstance(v, bytes):
        lay.add(FJ.network_prefix, v, off, n)
    elif k == 7 and isinstance(v, int | float):
        lay.add(FJ.join_rate, float(v), off, n)
    elif k == 8:
        lay.add(FJ.unsupported_configuration, _diag(v), off, n)


REGISTRY.add("coap.uri_path", COJP_PATH, "cojp")
