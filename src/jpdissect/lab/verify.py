"""Check a lab capture with the project's own codecs: every relayed datagram must unwrap.

This is the lab's self-test, not a dissector: it only knows the shape of what the lab writes
(Ethernet, IPv6 without extension headers, UDP) and answers "does every Registrar-hop datagram
decode with :mod:`jpdissect.framing` / :mod:`jpdissect.coapmsg`, does what comes out look like the
pledge-hop payloads (DTLS records, or CoAP for CoJP), and are the handshakes there". The dissectors
of the other issues answer the rest.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jpdissect.capture import open_capture
from jpdissect.coapmsg import CoapMessage
from jpdissect.framing import jpy
from jpdissect.framing.jpy import JpyHeader
from jpdissect.framing.meshcop import decode_relay_message
from jpdissect.lab.joinproxy import Watch

ETH_HEADER, ETHERTYPE_IPV6 = 14, 0x86DD
IPV6_HEADER, UDP_HEADER = 40, 8
PROTO_UDP, PROTO_ICMPV6 = 17, 58
DTLS_VERSIONS = (b"\xfe\xfd", b"\xfe\xff")
HANDSHAKE_NAMES = {1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest", 4: "NewSessionTicket",
                   11: "Certificate", 12: "ServerKeyExchange", 13: "CertificateRequest",
                   14: "ServerHelloDone", 15: "CertificateVerify", 16: "ClientKeyExchange"}


@dataclass
class Report:
    frames: int = 0
    per_leg: Counter[int] = field(default_factory=Counter)
    relayed: int = 0
    unwrapped: int = 0
    failures: list[str] = field(default_factory=list)
    handshake: Counter[str] = field(default_factory=Counter)
    retransmissions: int = 0
    fragments: int = 0
    icmp: int = 0
    app_data: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and self.relayed == self.unwrapped


def _udp(frame: bytes) -> tuple[str, str, int, int, bytes] | None | int:
    if len(frame) < ETH_HEADER + IPV6_HEADER or int.from_bytes(frame[12:14], "big") != ETHERTYPE_IPV6:
        return None
    ip = frame[ETH_HEADER:]
    nh = ip[6]
    if nh == PROTO_ICMPV6:
        return PROTO_ICMPV6
    if nh != PROTO_UDP:
        return None
    src = str(ipaddress.IPv6Address(ip[8:24]))
    dst = str(ipaddress.IPv6Address(ip[24:40]))
    u = ip[IPV6_HEADER:]
    return src, dst, int.from_bytes(u[0:2], "big"), int.from_bytes(u[2:4], "big"), bytes(u[UDP_HEADER:])


def _dtls_ok(data: bytes) -> bool:
    return len(data) >= 13 and 20 <= data[0] <= 26 and data[1:3] in DTLS_VERSIONS


def _handshakes(data: bytes, rep: Report) -> None:
    p = 0
    while p + 13 <= len(data):
        ct, epoch, n = data[p], int.from_bytes(data[p + 3:p + 5], "big"), int.from_bytes(data[p + 11:p + 13], "big")
        if ct == 22 and epoch == 0 and n >= 12:
            rep.handshake[HANDSHAKE_NAMES.get(data[p + 13], str(data[p + 13]))] += 1
        elif ct == 23:
            rep.app_data += 1
        p += 13 + n


def verify(capture: str | Path, keys: str | Path | None = None) -> Report:
    """Walk ``capture`` (a lab pcapng) with the scheme and key from ``keys`` (``OUT.keys/keys.json``)."""
    capture = Path(capture)
    keys = Path(keys) if keys else Path(str(capture.with_suffix("")) + ".keys") / "keys.json"
    meta: dict[str, Any] = json.loads(keys.read_text())
    scheme = meta["scheme"]
    reg = (meta["registrar"], meta["ports"]["registrar"])
    key = bytes.fromhex(meta["jp_header_key"]["hex"]) if "jp_header_key" in meta else b""
    rep = Report()
    watch = Watch()
    with open_capture(str(capture)) as reader:
        for fr in reader:
            rep.frames += 1
            rep.per_leg[fr.interface_id] += 1
            got = _udp(fr.data)
            if got == PROTO_ICMPV6:
                rep.icmp += 1
                continue
            if not isinstance(got, tuple):
                rep.failures.append(f"frame {rep.frames}: not Ethernet/IPv6/UDP")
                continue
            src, dst, sport, dport, payload = got
            flow = f"{src}:{sport}>{dst}:{dport}"
            if reg in ((src, sport), (dst, dport)):
                rep.relayed += 1
                inner = _unwrap(scheme, payload, key, (dst, dport) == reg)
                if inner is None:
                    rep.failures.append(f"frame {rep.frames}: {scheme} framing did not decode")
                    continue
                rep.unwrapped += 1
                payload = inner
            if scheme == "cojp":
                msg, errors = CoapMessage.decode(payload)
                if msg is None or errors:
                    rep.failures.append(f"frame {rep.frames}: not CoAP")
                continue
            if not _dtls_ok(payload):
                rep.failures.append(f"frame {rep.frames}: not a DTLS record")
                continue
            _handshakes(payload, rep)
            if fr.interface_id == 0:
                # Counted on the pledge hop, where each flow is one pledge (relayed flows share ports).
                r, f = watch.dtls(flow, "x", payload)
                rep.retransmissions += r
                rep.fragments += f
    return rep


def _unwrap(scheme: str, data: bytes, key: bytes, to_registrar: bool) -> bytes | None:
    if scheme == "stateful":
        return data
    if scheme in ("jpy", "jpy-legacy"):
        m = jpy.decode(data)
        if not m.ok or m.layout is None or m.layout.name != scheme:
            return None
        if scheme == "jpy" and JpyHeader.decrypt(key, m.header or b"").header is None:
            return None
        return m.content
    if scheme in ("coap-dtls", "cojp"):
        msg, errors = CoapMessage.decode(data)
        if msg is None or errors:
            return None
        if len(msg.token) >= jpy.HEADER_LEN:
            r, inner = jpy.open_token(key, msg.token)
            if r.header is None:
                return None
            if scheme == "cojp":
                msg.token = inner
                return msg.encode()
        elif scheme == "coap-dtls" or msg.token:
            return None
        return msg.payload if scheme == "coap-dtls" else msg.encode()
    if scheme == "thread-relay":
        msg, relay, errors = decode_relay_message(data)
        want = "c/rx" if to_registrar else "c/tx"
        if relay is None or errors or relay.uri != want:
            return None
        return relay.dtls
    return None
