#!/usr/bin/env python3
"""Deterministic generator of a large, mixed Join-Proxy capture for the benchmarks.

Why a generator and not a recorded capture: the benchmark needs hundreds of thousands to millions
of frames of *every* relay framing jpdissect decodes, reproducibly (same seed -> byte-identical
file), without shipping a gigabyte in the repository. Real stacks produced the small sample
captures in ``captures/``; this file only has to be realistic at the byte level so that every tool
in the comparison walks the same protocol layers it would on real traffic.

Speed and memory: one onboarding *session* (a pledge's whole exchange over one relay scheme) is
built at a time from pre-built templates with ``struct`` packing and slices of a seeded random
pool, a few dozen sessions are interleaved, and frames are streamed to the file in ~1 MiB
batches. Nothing grows with the file size, so ``--size-gb 1`` works like ``--frames 1000``.

Traffic mix, per session (weights in :data:`SCHEME_WEIGHTS`), with the spec each template follows:

``stateful``  pledge link-local <-> JP on UDP 5684, plain DTLS 1.2; the JP relays each datagram
              unchanged to the Registrar on 5684 from a per-pledge port
              (draft-ietf-anima-constrained-join-proxy §4.2). ~20 % of sessions use IPv4 on the
              JP<->Registrar leg.
``jpy``       same pledge leg; JP<->Registrar UDP payload is the CBOR array
              ``82 50 <16-byte header> 58 LL | 59 LLLL <DTLS datagram>`` on port 5685
              (draft-ietf-anima-constrained-join-proxy §4.3-4.4; CBOR heads RFC 8949 §3,
              preferred = shortest serialization §4.1).
``coap-dtls`` same pledge leg; JP<->Registrar leg is CoAP (RFC 7252) CON POST with Uri-Path
              options and an RFC 8974 §2.1 extended token (TKL 13: one extra byte, length-13;
              TKL 14: two extra bytes, length-269; placed after the Message ID) carrying the JP
              state; payload = the DTLS datagram; the Registrar answers with a piggybacked ACK
              2.04 echoing the token (IOTOPS Oct 2022 proposal; not standardised).
``thread``    joiner link-local <-> Joiner Router on the joiner port (OpenThread default 1000),
              DTLS 1.2 with TLS_ECJPAKE_WITH_AES_128_CCM_8 (0xC0FF) and the ecjpake_kkpp
              extension (0x0100); the relay leg is TMF CoAP NON POST on UDP 61631 with
              Uri-Path "c"/"rx" (JR -> Border Agent) or "c"/"tx" (reverse) and MeshCoP TLVs
              18 Joiner UDP Port, 19 Joiner IID, 20 Joiner Router Locator, [21 KEK on the c/tx that
              carries JOIN_FIN.rsp], 17 Joiner DTLS Encapsulation (extended length 0xFF + 2 bytes
              when the value exceeds 254 bytes) -- Thread 1.1 spec §8.10.x, OpenThread
              ``src/core/meshcop/joiner_router.cpp`` / ``commissioner.cpp``.
``cojp``      RFC 9031 join: pledge -> JP CON POST with Uri-Host "6tisch.arpa", OSCORE option
              and Proxy-Scheme "coap" (§8.1); the stateless JP forwards to the JRC with its state
              in an RFC 8974 extended token; JRC answers ACK 2.04 with an empty OSCORE option
              (legal for responses, RFC 8613 §6.1). The OSCORE option value is
              ``0 0 0 h k n n n`` + Partial IV + [s + kid context] + kid (RFC 8613 §6.1); the
              join request has h=1 (ID context = pledge identifier), k=1 with the pledge's empty
              Sender ID (RFC 9031 §8.3); a follow-up request uses h=0, k=1, n=2.

DTLS 1.2 records (RFC 6347 §4.1, 13-byte header), handshake header (§4.2.2, 12 bytes),
ClientHello with cookie and HelloVerifyRequest (§4.2.1), ServerHello/Certificate/
ServerKeyExchange(ECDHE, RFC 8422 §5.4)/CertificateRequest/ServerHelloDone, client
Certificate/ClientKeyExchange/CertificateVerify, ChangeCipherSpec, then epoch-1 records encrypted
with AES-128-CCM-8 (RFC 6655 §3: 8-byte explicit nonce + ciphertext + 8-byte tag) for Finished,
application data (content type 23) and the close_notify alert. Certificates are real X.509 DER
built once with ``cryptography`` from seed-derived keys (Ed25519 CA signature, so the bytes are
deterministic); without ``cryptography`` a DER-shaped stand-in of the same size is used.

Addresses come from documentation ranges: 2001:db8::/32 (RFC 3849), 192.0.2.0/24 and
198.51.100.0/24 (RFC 5737), fe80::/64 link-local IIDs from modified EUI-64 (RFC 4291 App. A),
Thread mesh-local RLOCs ``<ML prefix>:0:ff:fe00:RLOC16``.

Output: classic pcap (draft-ietf-opsawg-pcap), little-endian, microsecond timestamps,
LinkType 1 (Ethernet). Every UDP and IPv4 checksum is correct.

Usage::

    python bench/gen_capture.py --out /tmp/bench.pcap                 # 200 000 frames
    python bench/gen_capture.py --out /tmp/big.pcap --size-gb 1       # >= 1 GiB
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FRAMES = 200_000
DEFAULT_SEED = 8974
DEFAULT_OUT = "/tmp/jpdissect-bench/bench.pcap"

#: Share of sessions per relay scheme (frames per session differ, see the summary printed).
SCHEME_WEIGHTS: dict[str, float] = {
    "stateful": 0.25,
    "jpy": 0.25,
    "coap-dtls": 0.20,
    "thread": 0.20,
    "cojp": 0.10,
}
#: Sessions in flight at once; interleaving is what a real JP capture looks like.
CONCURRENT_SESSIONS = 48
#: Fraction of stateful/jpy/coap-dtls sessions whose JP<->Registrar leg runs over IPv4.
IPV4_SHARE = 0.2
#: Fraction of coap-dtls sessions that use the 2-byte extended TKL form (TKL 14, token >= 269 B).
TKL14_SHARE = 0.15

PORT_DTLS = 5684          # RFC 7252 §12.7 coaps
PORT_COAP = 5683          # RFC 7252 §12.7 coap
PORT_JPY = 5685           # example Registrar JPY port (discovered in practice, no default)
PORT_TMF = 61631          # Thread TMF
PORT_JOINER = 1000        # OpenThread joiner router default joiner UDP port

START_EPOCH = 1_714_521_600   # 2024-05-01T00:00:00Z
BATCH_BYTES = 1 << 20
POOL_BYTES = 1 << 20

# ---------------------------------------------------------------------------------------------
# Byte-level helpers (struct templates, checksums)

_PCAP_HDR = struct.Struct("<IHHiIII")
_REC = struct.Struct("<IIII")
_ETH = struct.Struct("!6s6sH")
_IP6 = struct.Struct("!IHBB16s16s")
_IP4 = struct.Struct("!BBHHHBB")
_UDP = struct.Struct("!HHHH")
_PSEUDO6 = struct.Struct("!IxxxB")
_PSEUDO4 = struct.Struct("!xBH")


def _fold(data: bytes) -> int:
    """One's complement sum of 16-bit words (RFC 1071), via ``int % 0xFFFF``.

    Because 2**16 == 1 (mod 0xFFFF), the big-endian integer of the buffer is congruent to the sum
    of its words; one big-int modulo in C is far cheaper than a Python loop over words. A result
    of 0 means the folded sum is 0xFFFF (the input is never all zero here).
    """
    s = int.from_bytes(data, "big") % 0xFFFF
    return s if s else 0xFFFF


def udp6(eth_src: bytes, eth_dst: bytes, src: bytes, dst: bytes, sport: int, dport: int,
         payload: bytes, flow: int = 0) -> bytes:
    """Ethernet + IPv6 (RFC 8200) + UDP (RFC 768) with the mandatory IPv6 UDP checksum."""
    ulen = 8 + len(payload)
    pad = b"\0" if ulen & 1 else b""
    s = _fold(src + dst + _PSEUDO6.pack(ulen, 17) + _UDP.pack(sport, dport, ulen, 0) + payload + pad)
    ck = (~s) & 0xFFFF or 0xFFFF
    return (_ETH.pack(eth_dst, eth_src, 0x86DD)
            + _IP6.pack(0x60000000 | flow, ulen, 17, 64, src, dst)
            + _UDP.pack(sport, dport, ulen, ck) + payload)


def udp4(eth_src: bytes, eth_dst: bytes, src: bytes, dst: bytes, sport: int, dport: int,
         payload: bytes, ident: int) -> bytes:
    """Ethernet + IPv4 (RFC 791, DF set, header checksum) + UDP with checksum (RFC 768)."""
    ulen = 8 + len(payload)
    pad = b"\0" if ulen & 1 else b""
    s = _fold(src + dst + _PSEUDO4.pack(17, ulen) + _UDP.pack(sport, dport, ulen, 0) + payload + pad)
    ck = (~s) & 0xFFFF or 0xFFFF
    hdr = _IP4.pack(0x45, 0, 20 + ulen, ident & 0xFFFF, 0x4000, 64, 17)
    hck = (~_fold(hdr + b"\0\0" + src + dst)) & 0xFFFF
    return (_ETH.pack(eth_dst, eth_src, 0x0800) + hdr + hck.to_bytes(2, "big") + src + dst
            + _UDP.pack(sport, dport, ulen, ck) + payload)


def cbor_bstr_head(n: int) -> bytes:
    """RFC 8949 §3: major type 2 head in preferred (shortest) serialization (§4.1)."""
    if n < 24:
        return bytes([0x40 | n])
    if n < 0x100:
        return bytes([0x58, n])
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    return b"\x5a" + n.to_bytes(4, "big")


def coap_msg(mtype: int, code: int, mid: int, token: bytes, options: list[tuple[int, bytes]],
             payload: bytes = b"") -> bytes:
    """A CoAP message (RFC 7252 §3) with RFC 8974 §2.1 extended token lengths.

    TKL 0-12 literal; 13 -> one extra byte (length - 13); 14 -> two extra bytes (length - 269);
    the extension sits between Message ID and Token. Options are delta-encoded in number order
    with the 13/14 nibble extensions of RFC 7252 §3.1.
    """
    n = len(token)
    if n <= 12:
        first, ext = n, b""
    elif n <= 268:
        first, ext = 13, bytes([n - 13])
    else:
        first, ext = 14, (n - 269).to_bytes(2, "big")
    out = [bytes([0x40 | (mtype << 4) | first, code]), mid.to_bytes(2, "big"), ext, token]
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):
        delta, ln = num - last, len(val)
        last = num
        dn, dx = _nibble(delta)
        ln_n, lx = _nibble(ln)
        out.append(bytes([(dn << 4) | ln_n]))
        out.append(dx)
        out.append(lx)
        out.append(val)
    if payload:
        out.append(b"\xff")
        out.append(payload)
    return b"".join(out)


def _nibble(v: int) -> tuple[int, bytes]:
    if v < 13:
        return v, b""
    if v < 269:
        return 13, bytes([v - 13])
    return 14, (v - 269).to_bytes(2, "big")


def oscore_option(piv: bytes, kid: bytes | None, kid_context: bytes | None = None) -> bytes:
    """RFC 8613 §6.1 OSCORE option value: flags ``0 0 0 h k n n n``, PIV, [s, kid ctx], [kid]."""
    flags = len(piv) & 0x07
    if kid is not None:
        flags |= 0x08
    if kid_context is not None:
        flags |= 0x10
    out = bytes([flags]) + piv
    if kid_context is not None:
        out += bytes([len(kid_context)]) + kid_context
    if kid is not None:
        out += kid
    return out


def meshcop_tlv(t: int, value: bytes) -> bytes:
    """MeshCoP TLV: type, length, value; length 0xFF + 2-byte length for values > 254 bytes."""
    n = len(value)
    if n > 254:
        return bytes([t, 0xFF]) + n.to_bytes(2, "big") + value
    return bytes([t, n]) + value


def eui64_iid(mac: bytes) -> bytes:
    """Modified EUI-64 interface identifier from a MAC (RFC 4291 Appendix A)."""
    return bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]


# ---------------------------------------------------------------------------------------------
# DTLS 1.2 templates

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APPDATA = 20, 21, 22, 23
V_DTLS12 = 0xFEFD
_REC_HDR = struct.Struct("!BHHHIH")
_HS_HDR = struct.Struct("!B3sH3s3s")


class Rand:
    """Seeded randomness; bulk bytes are slices of one seeded pool (cheaper than randbytes)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.pool = self.r.randbytes(POOL_BYTES)
        self.random = self.r.random
        self.getrandbits = self.r.getrandbits

    def bytes(self, n: int) -> bytes:
        if n <= 0:
            return b""
        if n > POOL_BYTES // 2:
            return self.r.randbytes(n)
        o = self.getrandbits(19)
        return self.pool[o:o + n]

    def rng(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive), without randrange's overhead."""
        return lo + int(self.random() * (hi - lo + 1))


def dtls_record(ctype: int, epoch: int, seq: int, body: bytes) -> bytes:
    """RFC 6347 §4.1: type, version, epoch, 48-bit sequence number, length, fragment."""
    return _REC_HDR.pack(ctype, V_DTLS12, epoch, seq >> 32, seq & 0xFFFFFFFF, len(body)) + body


def hs(msg_type: int, msg_seq: int, body: bytes) -> bytes:
    """RFC 6347 §4.2.2 handshake header, unfragmented (offset 0, fragment length = length)."""
    n = len(body).to_bytes(3, "big")
    return _HS_HDR.pack(msg_type, n, msg_seq, b"\0\0\0", n) + body


def _ext(t: int, body: bytes) -> bytes:
    return t.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _vec8(b: bytes) -> bytes:
    return bytes([len(b)]) + b


def _vec16(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _vec24(b: bytes) -> bytes:
    return len(b).to_bytes(3, "big") + b


# Cipher suites (IANA TLS registry): ECDHE-ECDSA AES-128-CCM-8 (RFC 7251), AES-128-CCM,
# AES-128-GCM-SHA256 (RFC 5289); TLS_ECJPAKE_WITH_AES_128_CCM_8 0xC0FF (Thread).
_SUITES_CERT = bytes.fromhex("c0aec0acc02b")
_SUITES_JPAKE = bytes.fromhex("c0ff")
# Extensions: supported_groups secp256r1 (RFC 8422 §5.1.1), ec_point_formats uncompressed
# (§5.1.2), signature_algorithms ecdsa_secp256r1_sha256 + ed25519 (RFC 5246 §7.4.1.4.1, RFC 8422),
# extended_master_secret (RFC 7627), renegotiation_info empty (RFC 5746).
_EXT_GROUPS = _ext(0x000A, _vec16(b"\x00\x17"))
_EXT_POINTS = _ext(0x000B, _vec8(b"\x00"))
_EXT_SIGALGS = _ext(0x000D, _vec16(b"\x04\x03\x08\x07"))
_EXT_EMS = _ext(0x0017, b"")
_EXT_RENEG = _ext(0xFF01, b"\x00")


def _ecjpake_kp(r: Rand) -> bytes:
    """ECJPAKEKeyKP: ECPoint X, ECSchnorrZKP {ECPoint V, opaque r<1..2^8-1>} (Thread / mbedTLS)."""
    return (_vec8(b"\x04" + r.bytes(64)) + _vec8(b"\x04" + r.bytes(64)) + _vec8(r.bytes(32)))


def client_hello(r: Rand, rnd: bytes, cookie: bytes, jpake: bool) -> bytes:
    """ClientHello body (RFC 6347 §4.2.1: cookie field after session_id)."""
    if jpake:
        exts = _EXT_GROUPS + _EXT_POINTS + _ext(0x0100, _ecjpake_kp(r) + _ecjpake_kp(r))
        suites = _SUITES_JPAKE
    else:
        exts = _EXT_GROUPS + _EXT_POINTS + _EXT_SIGALGS + _EXT_EMS + _EXT_RENEG
        suites = _SUITES_CERT
    return (V_DTLS12.to_bytes(2, "big") + rnd + b"\x00" + _vec8(cookie) + _vec16(suites)
            + b"\x01\x00" + _vec16(exts))


def server_hello(r: Rand, jpake: bool) -> bytes:
    suite = _SUITES_JPAKE if jpake else _SUITES_CERT[:2]
    if jpake:
        exts = _EXT_POINTS + _ext(0x0100, _ecjpake_kp(r) + _ecjpake_kp(r))
    else:
        exts = _EXT_POINTS + _EXT_EMS + _EXT_RENEG
    return (V_DTLS12.to_bytes(2, "big") + r.bytes(32) + _vec8(r.bytes(32)) + suite + b"\x00"
            + _vec16(exts))


def _ecdsa_sig(r: Rand) -> bytes:
    """A DER ECDSA-P256 signature shape: SEQUENCE { INTEGER r, INTEGER s } (RFC 3279 §2.2.3)."""
    a, b = r.bytes(32), r.bytes(32)
    body = b"\x02\x20" + bytes([a[0] & 0x7F]) + a[1:] + b"\x02\x20" + bytes([b[0] & 0x7F]) + b[1:]
    return b"\x30" + bytes([len(body)]) + body


def _certificates(seed: int) -> tuple[bytes, bytes]:
    """DER Registrar and pledge (IDevID-like) certificates, deterministic for a seed."""
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        from cryptography.hazmat.primitives.serialization import Encoding
        from cryptography.x509.oid import NameOID
    except ImportError:
        # A DER-shaped stand-in: SEQUENCE of the same length as a P-256 leaf certificate.
        r = random.Random(seed ^ 0x5EED)
        body = r.randbytes(420)
        blob = b"\x30\x82" + len(body).to_bytes(2, "big") + body
        return blob, blob

    ca_key = ed25519.Ed25519PrivateKey.from_private_bytes(
        random.Random(seed ^ 0xCA).randbytes(32))
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jpdissect bench CA")])
    t0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    t1 = datetime.datetime(2034, 1, 1, tzinfo=datetime.UTC)
    out = []
    for i, cn in enumerate(("registrar.example", "pledge 00-11-22-33-44-55-66-77")):
        key = ec.derive_private_key(random.Random(seed + i).getrandbits(200) + 1, ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(1000 + i)
                .not_valid_before(t0)
                .not_valid_after(t1)
                .sign(ca_key, None))
        out.append(cert.public_bytes(Encoding.DER))
    return out[0], out[1]


@dataclass
class DtlsSide:
    """Per-direction DTLS sequence state: record sequence per epoch and handshake message_seq."""

    epoch: int = 0
    seq: int = 0
    msg_seq: int = 0
    seq1: int = 0

    def rec(self, ctype: int, body: bytes) -> bytes:
        s = self.seq
        self.seq += 1
        return dtls_record(ctype, 0, s, body)

    def hsrec(self, msg_type: int, body: bytes) -> bytes:
        m = self.msg_seq
        self.msg_seq += 1
        return self.rec(CT_HANDSHAKE, hs(msg_type, m, body))

    def enc(self, r: Rand, ctype: int, plain_len: int) -> bytes:
        """An epoch-1 AES-128-CCM-8 record: explicit nonce (epoch|seq) + ciphertext + tag."""
        s = self.seq1
        self.seq1 += 1
        nonce = (1 << 48 | s).to_bytes(8, "big")
        return dtls_record(ctype, 1, s, nonce + r.bytes(plain_len + 8))


#: (client plaintext bytes, server plaintext bytes) of the cBRSKI exchanges inside DTLS:
#: voucher request/voucher, CA certificates, status telemetry, enrollment (RFC 9148 / cBRSKI).
_APP_EXCHANGES_CERT = [(560, 430), (30, 620), (60, 10), (340, 480), (50, 10)]
#: Thread: JOIN_FIN.req (vendor TLVs) / JOIN_FIN.rsp (state accept).
_APP_EXCHANGES_JPAKE = [(120, 20)]


def dtls_conversation(r: Rand, certs: tuple[bytes, bytes], jpake: bool) -> list[tuple[bool, bytes]]:
    """One full DTLS 1.2 handshake + application data + close, as (from_client, datagram).

    Flights follow RFC 6347 §4.2.4: CH / HVR / CH+cookie / server flight / client flight /
    CCS+Finished, then epoch-1 application data and a close_notify alert (RFC 5246 §7.2.1).
    """
    c, s = DtlsSide(), DtlsSide()
    out: list[tuple[bool, bytes]] = []
    crnd = r.bytes(32)
    cookie = r.bytes(32)
    out.append((True, c.hsrec(1, client_hello(r, crnd, b"", jpake))))
    # HelloVerifyRequest (type 3): server_version + cookie; message_seq echoes the CH's (0).
    s.msg_seq = 0
    out.append((False, s.hsrec(3, V_DTLS12.to_bytes(2, "big") + _vec8(cookie))))
    out.append((True, c.hsrec(1, client_hello(r, crnd, cookie, jpake))))
    if jpake:
        ske = b"\x03\x00\x17" + _ecjpake_kp(r)       # ECParameters + ECJPAKEKeyKP
        out.append((False, s.hsrec(2, server_hello(r, True)) + s.hsrec(12, ske) + s.hsrec(14, b"")))
        cke = _ecjpake_kp(r)
        out.append((True, c.hsrec(16, cke) + c.rec(CT_CCS, b"\x01") + c.enc(r, CT_HANDSHAKE, 24)))
    else:
        srv, cli = certs
        ske = b"\x03\x00\x17" + _vec8(b"\x04" + r.bytes(64)) + b"\x04\x03" + _vec16(_ecdsa_sig(r))
        creq = _vec8(b"\x40") + _vec16(b"\x04\x03\x08\x07") + _vec16(b"")
        out.append((False, s.hsrec(2, server_hello(r, False)) + s.hsrec(11, _vec24(_vec24(srv)))
                    + s.hsrec(12, ske) + s.hsrec(13, creq) + s.hsrec(14, b"")))
        cke = _vec8(b"\x04" + r.bytes(64))
        cv = b"\x04\x03" + _vec16(_ecdsa_sig(r))
        out.append((True, c.hsrec(11, _vec24(_vec24(cli))) + c.hsrec(16, cke) + c.hsrec(15, cv)
                    + c.rec(CT_CCS, b"\x01") + c.enc(r, CT_HANDSHAKE, 24)))
    out.append((False, s.rec(CT_CCS, b"\x01") + s.enc(r, CT_HANDSHAKE, 24)))
    exchanges = _APP_EXCHANGES_JPAKE if jpake else _APP_EXCHANGES_CERT
    for cl, sl in exchanges:
        out.append((True, c.enc(r, CT_APPDATA, cl + r.rng(0, 40))))
        out.append((False, s.enc(r, CT_APPDATA, sl + r.rng(0, 40))))
    out.append((True, c.enc(r, CT_ALERT, 2)))  # close_notify
    return out


# ---------------------------------------------------------------------------------------------
# Topology


@dataclass
class Node:
    mac: bytes
    ll: bytes = b""
    g6: bytes = b""
    v4: bytes = b""


@dataclass
class Topology:
    jps: list[Node] = field(default_factory=list)
    registrar: Node = field(default_factory=lambda: Node(b""))
    router_mac: bytes = b""
    jp_ports: list[int] = field(default_factory=list)
    # Thread: Joiner Routers (RLOC16, mesh-local RLOC, MAC) and the Border Agent.
    jrs: list[tuple[int, Node]] = field(default_factory=list)
    ba: Node = field(default_factory=lambda: Node(b""))


def _ll(iid: bytes) -> bytes:
    return b"\xfe\x80" + b"\0" * 6 + iid


def build_topology(r: Rand) -> Topology:
    t = Topology()
    for j in range(4):
        mac = bytes([0x02, 0x00, 0x5E, 0x10, 0x00, j + 1])
        t.jps.append(Node(mac, _ll(eui64_iid(mac)),
                          bytes.fromhex("20010db8000100000000000000000000")[:15] + bytes([j + 1]),
                          bytes([192, 0, 2, 10 + j])))
        t.jp_ports.append(40000 + r.rng(0, 20000))
    t.router_mac = bytes.fromhex("02005e0000fe")
    t.registrar = Node(bytes.fromhex("02005e000001"), b"",
                       bytes.fromhex("20010db8000000000000000000000010"), bytes([198, 51, 100, 10]))
    ml = bytes.fromhex("fd0d07fcfbb8be74")  # Thread mesh-local prefix (ULA, RFC 4193)
    for j in range(3):
        rloc16 = 0x0400 * (j + 1)
        mac = bytes([0x02, 0x00, 0x5E, 0x20, 0x00, j + 1])
        n = Node(mac, _ll(eui64_iid(mac)), ml + bytes.fromhex("000000fffe00") + rloc16.to_bytes(2, "big"))
        t.jrs.append((rloc16, n))
    t.ba = Node(bytes.fromhex("02005e200099"), b"", ml + bytes.fromhex("000000fffe00fc00"))
    return t


# ---------------------------------------------------------------------------------------------
# Sessions: each returns its frames (full Ethernet bytes) in order


class Generator:
    """Builds sessions of every scheme and interleaves their frames deterministically."""

    def __init__(self, seed: int) -> None:
        self.r = Rand(seed)
        self.topo = build_topology(self.r)
        self.certs = _certificates(seed)
        self.ip_id = 1
        self.tmf_mid = 0x1000
        self.counts: dict[str, int] = dict.fromkeys(SCHEME_WEIGHTS, 0)
        self.sessions = 0
        cum = 0.0
        self._cum: list[tuple[float, str, Callable[[], list[bytes]]]] = []
        builders: dict[str, Callable[[], list[bytes]]] = {
            "stateful": self.session_stateful, "jpy": self.session_jpy,
            "coap-dtls": self.session_coap_dtls, "thread": self.session_thread,
            "cojp": self.session_cojp,
        }
        for name, w in SCHEME_WEIGHTS.items():
            cum += w
            self._cum.append((cum, name, builders[name]))

    # -- pieces -------------------------------------------------------------------------------
    def _pledge(self) -> tuple[bytes, bytes, int]:
        """A new pledge: locally administered MAC, link-local address, ephemeral port."""
        mac = b"\x02" + self.r.bytes(5)
        return mac, _ll(eui64_iid(mac)), self.r.rng(49152, 65535)

    def _registrar_leg(self, jp: Node, v4: bool, from_jp: bool, sport: int, dport: int,
                       payload: bytes, flow: int) -> bytes:
        reg, rmac = self.topo.registrar, self.topo.router_mac
        if v4:
            self.ip_id += 1
            if from_jp:
                return udp4(jp.mac, rmac, jp.v4, reg.v4, sport, dport, payload, self.ip_id)
            return udp4(rmac, jp.mac, reg.v4, jp.v4, sport, dport, payload, self.ip_id)
        if from_jp:
            return udp6(jp.mac, rmac, jp.g6, reg.g6, sport, dport, payload, flow)
        return udp6(rmac, jp.mac, reg.g6, jp.g6, sport, dport, payload, flow)

    def _dtls_relayed(self, wrap: Callable[[bool, bytes], tuple[int, int, bytes]]) -> list[bytes]:
        """Pledge-leg DTLS on 5684 plus the JP<->Registrar leg produced by ``wrap``.

        ``wrap(from_pledge, datagram)`` returns (JP port, Registrar port, UDP payload).
        """
        r = self.r
        jpi = r.rng(0, len(self.topo.jps) - 1)
        jp = self.topo.jps[jpi]
        pmac, pll, pport = self._pledge()
        v4 = r.random() < IPV4_SHARE
        f1, f2 = r.getrandbits(20), r.getrandbits(20)
        frames: list[bytes] = []
        for from_c, dgram in dtls_conversation(r, self.certs, jpake=False):
            jport, rport, pay = wrap(from_c, dgram)
            if from_c:
                frames.append(udp6(pmac, jp.mac, pll, jp.ll, pport, PORT_DTLS, dgram, f1))
                frames.append(self._registrar_leg(jp, v4, True, jport, rport, pay, f2))
            else:
                frames.append(self._registrar_leg(jp, v4, False, rport, jport, pay, f2))
                frames.append(udp6(jp.mac, pmac, jp.ll, pll, PORT_DTLS, pport, dgram, f1))
        return frames

    # -- schemes ------------------------------------------------------------------------------
    def session_stateful(self) -> list[bytes]:
        jport = self.r.rng(32768, 60999)  # one JP port per pledge: the JP's only state key
        return self._dtls_relayed(lambda fc, d: (jport, PORT_DTLS, d))

    def session_jpy(self) -> list[bytes]:
        header = self.r.bytes(16)        # opaque, e.g. AES-encrypted pledge address + port
        jport = self.topo.jp_ports[self.r.rng(0, 3)]
        pre = b"\x82" + cbor_bstr_head(16) + header

        def wrap(fc: bool, d: bytes) -> tuple[int, int, bytes]:
            return jport, PORT_JPY, pre + cbor_bstr_head(len(d)) + d

        return self._dtls_relayed(wrap)

    def session_coap_dtls(self) -> list[bytes]:
        r = self.r
        big = r.random() < TKL14_SHARE
        token = r.bytes(r.rng(269, 320) if big else r.rng(17, 40))
        paths = [b"jp"] if r.random() < 0.5 else [b".well-known", b"brski", b"jp"]
        opts = [(11, p) for p in paths]
        jport = self.topo.jp_ports[r.rng(0, 3)]
        state = {"mid": r.getrandbits(16), "last": 0}

        def wrap(fc: bool, d: bytes) -> tuple[int, int, bytes]:
            if fc:
                state["mid"] = (state["mid"] + 1) & 0xFFFF
                state["last"] = state["mid"]
                close = d[0] == CT_ALERT
                # CON POST (0.02); the final close_notify goes NON: nothing will answer it.
                return jport, PORT_COAP, coap_msg(1 if close else 0, 0x02, state["mid"], token, opts, d)
            return jport, PORT_COAP, coap_msg(2, 0x44, state["last"], token, [], d)  # ACK 2.04

        return self._dtls_relayed(wrap)

    def session_thread(self) -> list[bytes]:
        r = self.r
        rloc16, jr = self.topo.jrs[r.rng(0, len(self.topo.jrs) - 1)]
        ba = self.topo.ba
        jmac = b"\x02" + r.bytes(5)
        jiid = eui64_iid(jmac)
        jll = _ll(jiid)
        jport = r.rng(49152, 65535)
        conv = dtls_conversation(r, self.certs, jpake=True)
        fin_rsp = max(i for i, (fc, _) in enumerate(conv) if not fc)
        tlv_head = (meshcop_tlv(18, jport.to_bytes(2, "big")) + meshcop_tlv(19, jiid)
                    + meshcop_tlv(20, rloc16.to_bytes(2, "big")))
        kek = meshcop_tlv(21, r.bytes(16))
        frames: list[bytes] = []
        for i, (fc, d) in enumerate(conv):
            self.tmf_mid = (self.tmf_mid + 1) & 0xFFFF
            tok = r.bytes(2)
            if fc:
                frames.append(udp6(jmac, jr.mac, jll, jr.ll, jport, PORT_JOINER, d))
                pay = tlv_head + meshcop_tlv(17, d)
                msg = coap_msg(1, 0x02, self.tmf_mid, tok, [(11, b"c"), (11, b"rx")], pay)
                frames.append(udp6(jr.mac, ba.mac, jr.g6, ba.g6, PORT_TMF, PORT_TMF, msg))
            else:
                pay = tlv_head + (kek if i == fin_rsp else b"") + meshcop_tlv(17, d)
                msg = coap_msg(1, 0x02, self.tmf_mid, tok, [(11, b"c"), (11, b"tx")], pay)
                frames.append(udp6(ba.mac, jr.mac, ba.g6, jr.g6, PORT_TMF, PORT_TMF, msg))
                frames.append(udp6(jr.mac, jmac, jr.ll, jll, PORT_JOINER, jport, d))
        return frames

    def session_cojp(self) -> list[bytes]:
        r = self.r
        jp = self.topo.jps[r.rng(0, len(self.topo.jps) - 1)]
        reg, rmac = self.topo.registrar, self.topo.router_mac
        pmac, pll, pport = self._pledge()
        pledge_id = r.bytes(8)            # RFC 9031 §8.3: ID Context = pledge identifier
        jport = self.topo.jp_ports[r.rng(0, 3)]
        frames: list[bytes] = []
        exchanges = [(oscore_option(b"\x00", b"", pledge_id), 24, 62)]
        if r.random() < 0.3:              # a later request in the same context: h=0, k=1, n=2
            exchanges.append((oscore_option(r.bytes(2), b""), 40, 20))
        for opt, req_len, rsp_len in exchanges:
            mid, mid2 = r.getrandbits(16), r.getrandbits(16)
            tok = r.bytes(2)
            # JP state in an RFC 8974 extended token: pledge address, port, token, MAC tag.
            etok = r.bytes(r.rng(20, 36))
            req_ct = r.bytes(req_len + 8)      # AES-CCM-16-64-128 ciphertext + 8-byte tag
            rsp_ct = r.bytes(rsp_len + 8)
            frames.append(udp6(pmac, jp.mac, pll, jp.ll, pport, PORT_COAP, coap_msg(
                0, 0x02, mid, tok, [(3, b"6tisch.arpa"), (9, opt), (39, b"coap")], req_ct)))
            frames.append(udp6(jp.mac, rmac, jp.g6, reg.g6, jport, PORT_COAP, coap_msg(
                0, 0x02, mid2, etok, [(9, opt)], req_ct)))
            frames.append(udp6(rmac, jp.mac, reg.g6, jp.g6, PORT_COAP, jport, coap_msg(
                2, 0x44, mid2, etok, [(9, b"")], rsp_ct)))
            frames.append(udp6(jp.mac, pmac, jp.ll, pll, PORT_COAP, pport, coap_msg(
                2, 0x44, mid, tok, [(9, b"")], rsp_ct)))
        return frames

    # -- interleaving -------------------------------------------------------------------------
    def new_session(self) -> list[bytes]:
        x = self.r.random()
        name, fn = self._cum[-1][1], self._cum[-1][2]
        for cum, nm, build in self._cum:
            if x < cum:
                name, fn = nm, build
                break
        frames = fn()
        self.counts[name] += len(frames)
        self.sessions += 1
        return frames

    def frames(self) -> Iterator[bytes]:
        """Endless interleaved frames: pick a random in-flight session, emit its next frame."""
        active: list[list[bytes]] = [self.new_session()[::-1] for _ in range(CONCURRENT_SESSIONS)]
        random_ = self.r.random
        n = CONCURRENT_SESSIONS
        while True:
            k = int(random_() * n)
            sess = active[k]
            yield sess.pop()
            if not sess:
                active[k] = self.new_session()[::-1]


def write_capture(path: str | Path, frames: int | None = DEFAULT_FRAMES, size_bytes: int | None = None,
                  seed: int = DEFAULT_SEED) -> dict[str, object]:
    """Stream a pcap of ``frames`` frames (or at least ``size_bytes`` bytes); returns a summary."""
    t0 = time.perf_counter()
    gen = Generator(seed)
    rnd = gen.r.getrandbits
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ts_us = START_EPOCH * 1_000_000
    written = _PCAP_HDR.size
    count = 0
    limit_frames = frames if frames is not None else 1 << 62
    limit_bytes = size_bytes if size_bytes is not None else 1 << 62
    rec = _REC.pack
    with open(path, "wb") as f:
        # draft-ietf-opsawg-pcap §4: magic, 2.4, reserved, SnapLen 262144, LinkType 1 (Ethernet).
        f.write(_PCAP_HDR.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        batch: list[bytes] = []
        bsize = 0
        for fr in gen.frames():
            ts_us += 50 + rnd(12)          # 50 us .. 4.1 ms between frames
            n = len(fr)
            batch.append(rec(ts_us // 1_000_000, ts_us % 1_000_000, n, n))
            batch.append(fr)
            bsize += 16 + n
            count += 1
            if bsize >= BATCH_BYTES:
                f.write(b"".join(batch))
                written += bsize
                batch.clear()
                bsize = 0
            if count >= limit_frames or written + bsize >= limit_bytes:
                break
        f.write(b"".join(batch))
        written += bsize
    secs = time.perf_counter() - t0
    return {
        "path": str(path), "frames": count, "bytes": written, "seed": seed,
        "sessions_started": gen.sessions, "frames_per_scheme_built": gen.counts,
        "seconds": round(secs, 2), "frames_per_s": round(count / secs) if secs else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", "-o", default=DEFAULT_OUT, help=f"output pcap (default {DEFAULT_OUT})")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--frames", "-n", type=int, default=None,
                   help=f"number of frames (default {DEFAULT_FRAMES})")
    g.add_argument("--size-gb", type=float, default=None,
                   help="write until the file is at least this many GiB (2**30 bytes)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="RNG seed (same seed, same bytes)")
    a = ap.parse_args(argv)
    if a.size_gb is not None:
        summary = write_capture(a.out, None, int(a.size_gb * (1 << 30)), a.seed)
    else:
        summary = write_capture(a.out, a.frames if a.frames is not None else DEFAULT_FRAMES, None, a.seed)
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
