"""Build the spec-derived join-proxy fixtures of this directory (run from anywhere; rewrites them).

* ``draft_appendix.pcap`` -- the two JPY messages of draft-ietf-anima-constrained-join-proxy's appendix
  (header, 427-byte DTLS 1.2 ClientHello, 60-byte HelloVerifyRequest: ``draft_appendix.txt``), written
  byte for byte as the appendix's ``cbor-pretty`` shows them (``82 50 <header> 59 01AB <content>``),
  between the draft's example Registrar (``2001:db8:0:abcd::52``, JPY port 7634), plus the pledge-leg
  copies the draft describes (to the JP's join-port 45965 at ``fe80::1234:5678``); the pledge's own
  address and port and the JP's routable address are not in the draft and are made up here.
* ``discovery_jpy.pcap`` -- a CoAP discovery answer naming the Registrar's JPY endpoint
  (``<jpy://[2001:db8:0:abcd::52]:7634>;rt=brski.rjp``), then the same two JPY messages: the port is
  found from the discovery, not a heuristic.
* ``openthread_relay.pcap`` -- Thread TMF relay messages assembled by hand in the layouts of OpenThread's
  Joiner Router (``joiner_router.cpp`` HandleUdpReceive: Joiner UDP Port, Joiner IID, Joiner Router
  Locator, then the DTLS Encapsulation as an ExtendedTlv), its Commissioner (``commissioner.cpp``
  SendRelayTransmit: the same, with the KEK before the DTLS Encapsulation when it carries
  JOIN_FIN.rsp) and ot-commissioner (``joiner_session.cpp`` SendRlyTx: port, locator, IID, DTLS
  Encapsulation in the short form, KEK last). The hex is written out here, not produced by
  ``jpdissect.framing``, so the dissector is checked against an independent encoding.

Raw IPv6 link type (229); UDP checksums are computed (RFC 8200 §8.1).
"""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINKTYPE_IPV6 = 229
T0 = 1_795_000_000_000_000_000  # 2026-11-18, nanoseconds

PLEDGE = "fe80::2"
PLEDGE_PORT = 49152
JP_LL, JOIN_PORT = "fe80::1234:5678", 45965
JP_BB, JP_BB_PORT = "2001:db8:0:abcd::1", 40000
REGISTRAR, JPY_PORT = "2001:db8:0:abcd::52", 7634

JR_RLOC, COMM_RLOC = "fd00::ff:fe00:5000", "fd00::ff:fe00:c00"
TMF_PORT = 61631
JOINER_IID = bytes.fromhex("90335c4b320830fb")
JOINER_PORT = 1000
KEK = bytes.fromhex("87ac110e301501083df59c95f390b840")


def draft_values() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for line in (HERE / "draft_appendix.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, v = line.split()
            out[k] = bytes.fromhex(v)
    return out


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp6(src: str, dst: str, sport: int, dport: int, payload: bytes, hlim: int = 64) -> bytes:
    """An IPv6 packet carrying one UDP datagram with a correct checksum."""
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    ulen = 8 + len(payload)
    udp = struct.pack(">HHHH", sport, dport, ulen, 0) + payload
    c = _csum(s + d + struct.pack(">I3xB", ulen, 17) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack(">H", c) + udp[8:]
    return struct.pack(">IHBB", 6 << 28, ulen, 17, hlim) + s + d + udp


def write_pcap(path: Path, frames: list[tuple[int, bytes]]) -> None:
    """Classic microsecond pcap (draft-ietf-opsawg-pcap §4), raw IPv6."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHIIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_IPV6))
        for ts, data in frames:
            sec, us = divmod(ts // 1000, 1_000_000)
            f.write(struct.pack("<IIII", sec, us, len(data), len(data)) + data)


def jpy_draft(header: bytes, content: bytes) -> bytes:
    """As the appendix's cbor-pretty: 82, 50 + 16 bytes, then 59 LLLL or 58 LL + content."""
    n = len(content)
    head = b"\x59" + n.to_bytes(2, "big") if n > 0xFF else b"\x58" + bytes((n,))
    return b"\x82\x50" + header + head + content


def draft_frames() -> list[tuple[int, bytes]]:
    v = draft_values()
    hdr, ch, hvr = v["header"], v["client_hello"], v["hello_verify_request"]
    ms = 1_000_000
    return [
        (T0, udp6(PLEDGE, JP_LL, PLEDGE_PORT, JOIN_PORT, ch)),
        (T0 + 1 * ms, udp6(JP_BB, REGISTRAR, JP_BB_PORT, JPY_PORT, jpy_draft(hdr, ch))),
        (T0 + 5 * ms, udp6(REGISTRAR, JP_BB, JPY_PORT, JP_BB_PORT, jpy_draft(hdr, hvr))),
        (T0 + 6 * ms, udp6(JP_LL, PLEDGE, JOIN_PORT, PLEDGE_PORT, hvr)),
    ]


def discovery_frames() -> list[tuple[int, bytes]]:
    # RFC 7252 ACK 2.05, MID 0x1234, token 0x7a, Content-Format 40 (option 12, 1 byte), payload marker.
    link = b"<jpy://[2001:db8:0:abcd::52]:7634>;rt=brski.rjp"
    coap = bytes.fromhex("61451234" "7a" "c128" "ff") + link
    d = draft_frames()
    return [(T0 - 1_000_000, udp6(REGISTRAR, JP_BB, 5683, 5683, coap)), d[1], d[2]]


# -- Thread TMF, by hand -------------------------------------------------------------------------
# CoAP NON POST (RFC 7252 §3): 0x52 = ver 1, NON, TKL 2; code 0.02; MID; 2-byte token
# (OT_COAP_DEFAULT_TOKEN_LENGTH); Uri-Path "c" (0xB1 63) and "rx"/"tx" (0x02 ...); payload marker.


def tmf(uri: str, mid: int, token: bytes, tlvs: bytes) -> bytes:
    seg = uri.split("/")[1].encode()
    return bytes((0x52, 0x02)) + mid.to_bytes(2, "big") + token + b"\xb1c" + bytes((len(seg),)) + seg + \
        b"\xff" + tlvs


def tlv(t: int, value: bytes, extended: bool = False) -> bytes:
    if extended:  # Thread: length 0xFF then a 2-byte length (OpenThread ExtendedTlv)
        return bytes((t, 0xFF)) + len(value).to_bytes(2, "big") + value
    return bytes((t, len(value))) + value


def flight_300() -> bytes:
    """A 300-byte DTLS 1.2 server flight: ServerHello, ServerKeyExchange (PSK hint), ServerHelloDone
    (RFC 6347 §4.1 records, §4.2.2 handshake headers; RFC 4279 §2 PSK ServerKeyExchange)."""
    def rec(seq: int, body: bytes) -> bytes:
        return b"\x16\xfe\xfd\x00\x00" + seq.to_bytes(6, "big") + len(body).to_bytes(2, "big") + body

    def hs(mt: int, mseq: int, body: bytes) -> bytes:
        n = len(body).to_bytes(3, "big")
        return bytes((mt,)) + n + mseq.to_bytes(2, "big") + b"\x00\x00\x00" + n + body

    sh = b"\xfe\xfd" + bytes(range(32)) + b"\x00" + b"\xc0\xa8" + b"\x00" + b"\x00\x00"
    hint = b"registrar-" + b"h" * 173
    ske = len(hint).to_bytes(2, "big") + hint
    out = rec(1, hs(2, 1, sh)) + rec(2, hs(12, 2, ske)) + rec(3, hs(14, 3, b""))
    assert len(out) == 300, len(out)
    return out


def app_data_record(n: int = 16) -> bytes:
    """An epoch-1 application_data record (ciphertext stand-in: 8-byte explicit nonce + data + 8-byte tag)."""
    body = bytes(range(8)) + bytes(n) + bytes(8)
    return b"\x17\xfe\xfd\x00\x01" + (7).to_bytes(6, "big") + len(body).to_bytes(2, "big") + body


def relay_frames() -> list[tuple[int, bytes]]:
    v = draft_values()
    port = JOINER_PORT.to_bytes(2, "big")
    rloc = bytes.fromhex("5000")
    ms = 1_000_000
    # 1. c/rx, joiner_router.cpp order, DTLS Encapsulation always extended.
    rx = tmf("c/rx", 0x1501, b"\xef\x10", tlv(18, port) + tlv(19, JOINER_IID) + tlv(20, rloc) +
             tlv(17, v["client_hello"], extended=True))
    # 2. c/tx without KEK, commissioner.cpp order.
    tx = tmf("c/tx", 0x29cd, b"\x27\xe5", tlv(18, port) + tlv(19, JOINER_IID) + tlv(20, rloc) +
             tlv(17, v["hello_verify_request"], extended=True))
    # 3. c/tx with KEK (it carries JOIN_FIN.rsp): KEK before the DTLS Encapsulation.
    tx_kek = tmf("c/tx", 0x29ce, b"\xe0\xd9", tlv(18, port) + tlv(19, JOINER_IID) + tlv(20, rloc) +
                 tlv(21, KEK) + tlv(17, app_data_record(), extended=True))
    # 4. c/rx with a 300-byte DTLS flight: the length needs the 0xFF escape in any encoder.
    rx_300 = tmf("c/rx", 0x1502, b"\x57\xa3", tlv(18, port) + tlv(19, JOINER_IID) + tlv(20, rloc) +
                 tlv(17, flight_300(), extended=True))
    # 5. c/tx as ot-commissioner writes it: port, locator, IID, short DTLS Encapsulation, KEK last.
    tx_otc = tmf("c/tx", 0x29cf, b"\x4c\x20", tlv(18, port) + tlv(20, rloc) + tlv(19, JOINER_IID) +
                 tlv(17, app_data_record(4)) + tlv(21, KEK))
    return [
        (T0, udp6(JR_RLOC, COMM_RLOC, TMF_PORT, TMF_PORT, rx)),
        (T0 + 10 * ms, udp6(COMM_RLOC, JR_RLOC, TMF_PORT, TMF_PORT, tx)),
        (T0 + 20 * ms, udp6(COMM_RLOC, JR_RLOC, TMF_PORT, TMF_PORT, tx_kek)),
        (T0 + 30 * ms, udp6(JR_RLOC, COMM_RLOC, TMF_PORT, TMF_PORT, rx_300)),
        (T0 + 40 * ms, udp6(COMM_RLOC, JR_RLOC, TMF_PORT, TMF_PORT, tx_otc)),
    ]


def main() -> None:
    write_pcap(HERE / "draft_appendix.pcap", draft_frames())
    write_pcap(HERE / "discovery_jpy.pcap", discovery_frames())
    write_pcap(HERE / "openthread_relay.pcap", relay_frames())


if __name__ == "__main__":
    main()
