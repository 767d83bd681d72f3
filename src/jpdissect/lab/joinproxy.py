"""The Join Proxy, asyncio, in every relay mode the project decodes.

One class per scheme, all on the same skeleton: a socket on the JP's link-local join-port for the
pledges (:meth:`JoinProxy.from_pledge`) and the Registrar-side socket(s) (:meth:`JoinProxy.from_registrar`).
The framings come from :mod:`jpdissect.framing` and :mod:`jpdissect.coapmsg`, the same code the
dissectors read them with.

* ``stateful`` -- draft-ietf-anima-constrained-join-proxy §4.2: the datagram unchanged, one Registrar-side
  port per pledge, state dropped 30 s after the last relayed packet, at most 2 states per pledge
  address and 10 per interface; a refused pledge gets ICMPv6 Destination Unreachable code 1
  ("administratively prohibited"), as the draft says it SHOULD.
* ``jpy`` -- §4.3: ``[H, C]`` from one source port; H is the draft's example header encrypted with the
  JP's AES-128 key; a reply whose header does not decrypt (zero word) is silently discarded (MUST).
* ``jpy-legacy`` -- drafts -03…-10: ``[ip, port, family, ifindex, content]``.
* ``coap-dtls`` -- the IOTOPS 2022-10 proposal: an outer NON POST without Uri-Path whose payload is
  the DTLS datagram, the JP state (the encrypted header) in an RFC 8974 extended token (16 bytes,
  TKL 13); the Registrar answers with NON 2.05 responses carrying that token, one per datagram.
* ``thread-relay`` -- OpenThread's Joiner Router: TMF ``c/rx`` NON POST to the Border Agent/Commissioner
  on 61631 with Joiner UDP Port, Joiner IID, Joiner Router Locator, Joiner DTLS Encapsulation; the
  ``c/tx`` coming back names the joiner the same way (plus the KEK on the last one).
* ``cojp`` -- RFC 9031 §8.1 with an RFC 8974 stateless proxy: the pledge's request goes on with its
  Proxy-Scheme removed and its token replaced by ``encrypted state || original token``; the response's
  token is opened and restored. Type and Message ID are kept, so the pledge's CON gets its ACK
  (a stateless JP cannot remember MIDs; the price is that two pledges choosing the same MID at the
  same time look like duplicates to the JRC -- 1 in 65536 per overlapping pair).

The JP also counts what passes (datagrams and bytes per leg, so overhead; DTLS handshake records
seen again -- retransmissions -- and handshake fragments; CoAP CON/ACK duplicates). That walk over
DTLS record headers is statistics only; decoding DTLS is the dissector's job.

Run as ``python -m jpdissect.lab.joinproxy CONFIG.json``: prints ``READY`` once listening and one
``RESULT {...}`` line after SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from jpdissect.coapmsg import PROXY_SCHEME, CoapMessage, MsgType, is_request, is_response
from jpdissect.framing import jpy
from jpdissect.framing.jpy import JpyHeader
from jpdissect.framing.meshcop import Relay, decode_relay_message
from jpdissect.lab.config import LabConfig, ready, report, udp6

# DTLS (RFC 6347 §4.1, §4.2.2) header sizes and content types, for the statistics walk only.
DTLS_RECORD_HEADER = 13
DTLS_HS_HEADER = 12
CT_CHANGE_CIPHER_SPEC, CT_HANDSHAKE = 20, 22
#: ICMPv6 (RFC 4443 §3.1) Destination Unreachable, code 1 "administratively prohibited".
ICMP6_DST_UNREACH, ICMP6_ADMIN_PROHIBITED = 1, 1
#: RFC 4443 §2.4(c): an error message carries as much of the invoking packet as fits in 1280 bytes.
ICMP6_MAX_LEN = 1280
IPV6_HEADER_LEN, UDP_HEADER_LEN, ICMP6_HEADER_LEN = 40, 8, 8
#: Hop limit assumed for the invoking packet we quote (a UDP socket does not hand it over).
QUOTED_HOP_LIMIT = 64
SWEEP_INTERVAL = 1.0
MID_SPACE = 0x10000
THREAD_TOKEN_LEN = 2


# ---------------------------------------------------------------------------
# Statistics


@dataclass
class LegStats:
    datagrams_from_pledge: int = 0
    datagrams_to_pledge: int = 0
    bytes_from_pledge: int = 0
    bytes_to_pledge: int = 0
    datagrams_to_registrar: int = 0
    datagrams_from_registrar: int = 0
    bytes_to_registrar: int = 0
    bytes_from_registrar: int = 0
    retransmissions_from_pledge: int = 0
    retransmissions_to_pledge: int = 0
    fragments_from_pledge: int = 0
    fragments_to_pledge: int = 0
    kek_received: bool = False


class Watch:
    """Spots repeated DTLS handshake records / CoAP messages and handshake fragments per direction."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], set[tuple[Any, ...]]] = {}
        self.counts: Counter[tuple[str, str, int]] = Counter()

    def dtls(self, pledge: str, direction: str, data: bytes) -> tuple[int, int]:
        """(repeated records, fragment records) in one datagram."""
        seen = self.seen.setdefault((pledge, direction), set())
        rep = frag = 0
        p = 0
        while p + DTLS_RECORD_HEADER <= len(data):
            ct = data[p]
            epoch = int.from_bytes(data[p + 3:p + 5], "big")
            n = int.from_bytes(data[p + 11:p + 13], "big")
            body = data[p + DTLS_RECORD_HEADER:p + DTLS_RECORD_HEADER + n]
            key: tuple[Any, ...] | None = None
            if ct == CT_HANDSHAKE and epoch == 0 and len(body) >= DTLS_HS_HEADER:
                mlen = int.from_bytes(body[1:4], "big")
                foff = int.from_bytes(body[6:9], "big")
                flen = int.from_bytes(body[9:12], "big")
                key = ("hs", body[0], body[4:6], foff, flen)
                if flen < mlen:
                    frag += 1
            elif ct == CT_CHANGE_CIPHER_SPEC:
                key = ("ccs", epoch)
            elif ct == CT_HANDSHAKE:
                # An encrypted Finished: a second one in the same epoch is a retransmission.
                self.counts[(pledge, direction, epoch)] += 1
                rep += self.counts[(pledge, direction, epoch)] > 1
            if key is not None:
                if key in seen:
                    rep += 1
                seen.add(key)
            p += DTLS_RECORD_HEADER + n
        return rep, frag

    def coap(self, pledge: str, direction: str, msg: CoapMessage) -> int:
        """1 when a CON or ACK with this Message ID was already relayed in this direction."""
        if msg.type not in (MsgType.CON, MsgType.ACK):
            return 0
        seen = self.seen.setdefault((pledge, direction), set())
        key = (msg.type, msg.mid)
        rep = int(key in seen)
        seen.add(key)
        return rep


def _plain(host: str) -> str:
    return host.split("%", 1)[0]


# ---------------------------------------------------------------------------
# The skeleton


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.handler(data, addr)
        except Exception as exc:  # noqa: BLE001 - a relay must outlive one bad datagram
            sys.stderr.write(f"joinproxy: {type(exc).__name__}: {exc}\n")

    def error_received(self, exc: Exception) -> None:
        sys.stderr.write(f"joinproxy: socket error: {exc}\n")


class JoinProxy:
    """Common parts: the pledge-side socket, sending to pledges, the counters."""

    scheme = ""

    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.key = bytes.fromhex(cfg.jp_key_hex)
        self.ifindex = cfg.jp_lln_ifindex
        self.registrar = (cfg.registrar_addr, cfg.ports.registrar)
        self.stats: dict[str, LegStats] = {}
        self.watch = Watch()
        self.dropped: Counter[str] = Counter()
        self.pledge_tr: asyncio.DatagramTransport | None = None
        self.up_tr: asyncio.DatagramTransport | None = None
        self.mid = int.from_bytes(os.urandom(2), "big")
        # The pledges' /64: link-local normally, ::/64 on the loopback fallback.
        self.prefix = ipaddress.IPv6Address(_plain(cfg.jp_lln_addr)).packed[:8]

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self._from_pledge),
            sock=udp6((_plain(self.cfg.jp_lln_addr), self.cfg.ports.join, 0, self.ifindex)))
        self.pledge_tr = tr  # type: ignore[assignment]
        await self.start_upstream()

    async def start_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self._from_registrar), sock=udp6((self.cfg.jp_bb_addr, self.cfg.ports.jp_upstream, 0, 0)))
        self.up_tr = tr  # type: ignore[assignment]

    def close(self) -> None:
        for tr in (self.pledge_tr, self.up_tr):
            if tr is not None:
                tr.close()

    def result(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "pledges": {k: vars(v) for k, v in self.stats.items()},
            "dropped": dict(self.dropped),
            "retransmissions": sum(s.retransmissions_from_pledge + s.retransmissions_to_pledge
                                   for s in self.stats.values()),
            "fragments": sum(s.fragments_from_pledge + s.fragments_to_pledge for s in self.stats.values()),
        }

    # -- helpers -------------------------------------------------------------
    def next_mid(self) -> int:
        self.mid = (self.mid + 1) % MID_SPACE
        return self.mid

    def pledge_key(self, host: str, port: int) -> str:
        return f"[{_plain(host)}]:{port}"

    def pledge_addr(self, iid: bytes) -> str:
        return str(ipaddress.IPv6Address(self.prefix + iid))

    def iid_of(self, host: str) -> bytes:
        return ipaddress.IPv6Address(_plain(host)).packed[8:]

    def header_for(self, host: str, port: int) -> JpyHeader:
        return JpyHeader.for_address(host, port, self.ifindex)

    def count_up(self, key: str, data: bytes, relayed: int, dtls: bool = True) -> None:
        st = self.stats.setdefault(key, LegStats())
        st.datagrams_from_pledge += 1
        st.bytes_from_pledge += len(data)
        st.datagrams_to_registrar += 1
        st.bytes_to_registrar += relayed
        if dtls:
            rep, frag = self.watch.dtls(key, "up", data)
            st.retransmissions_from_pledge += rep
            st.fragments_from_pledge += frag

    def count_down(self, key: str, data: bytes, received: int, dtls: bool = True) -> LegStats:
        st = self.stats.setdefault(key, LegStats())
        st.datagrams_from_registrar += 1
        st.bytes_from_registrar += received
        st.datagrams_to_pledge += 1
        st.bytes_to_pledge += len(data)
        if dtls:
            rep, frag = self.watch.dtls(key, "down", data)
            st.retransmissions_to_pledge += rep
            st.fragments_to_pledge += frag
        return st

    def to_pledge(self, data: bytes, host: str, port: int) -> None:
        if self.pledge_tr is not None:
            self.pledge_tr.sendto(data, (_plain(host), port, 0, self.ifindex))

    def to_registrar(self, data: bytes) -> None:
        if self.up_tr is not None:
            self.up_tr.sendto(data, self.registrar)

    # -- per scheme ----------------------------------------------------------
    def _from_pledge(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.from_pledge(data, addr[0], addr[1])

    def _from_registrar(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if (_plain(addr[0]), addr[1]) != (_plain(self.registrar[0]), self.registrar[1]):
            # Draft §4.3.4: only accept relayed messages from the Registrar's address and port.
            self.dropped["not from the registrar"] += 1
            return
        self.from_registrar(data)

    def from_pledge(self, data: bytes, host: str, port: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def from_registrar(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------
# stateful


@dataclass
class _Mapping:
    host: str
    port: int
    transport: asyncio.DatagramTransport | None = None
    last: float = field(default_factory=time.monotonic)
    queue: list[bytes] = field(default_factory=list)


class StatefulJoinProxy(JoinProxy):
    """Draft §4.2: a UDP circuit proxy with one Registrar-side port per pledge."""

    scheme = "stateful"

    def __init__(self, cfg: LabConfig) -> None:
        super().__init__(cfg)
        self.maps: dict[tuple[str, int], _Mapping] = {}
        self.refused: list[str] = []
        self.expired = 0
        self.icmp: socket.socket | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start_upstream(self) -> None:
        try:
            self.icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            self.icmp.bind((_plain(self.cfg.jp_lln_addr), 0, 0, self.ifindex))
        except OSError:
            self.icmp = None  # not root: refusals are then silent
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def close(self) -> None:
        super().close()
        for m in self.maps.values():
            if m.transport is not None:
                m.transport.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.icmp is not None:
            self.icmp.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = time.monotonic()
            for key, m in list(self.maps.items()):
                if now - m.last > self.cfg.state_timeout:
                    if m.transport is not None:
                        m.transport.close()
                    del self.maps[key]
                    self.expired += 1

    def from_pledge(self, data: bytes, host: str, port: int) -> None:
        key = (_plain(host), port)
        m = self.maps.get(key)
        if m is None:
            same_pledge = sum(1 for (h, _p) in self.maps if h == key[0])
            if same_pledge >= self.cfg.max_states_per_pledge or len(self.maps) >= self.cfg.max_states_per_interface:
                self.refused.append(self.pledge_key(*key))
                self.send_prohibited(key[0], port, data)
                return
            m = self.maps[key] = _Mapping(key[0], port)
            asyncio.get_running_loop().create_task(self._open(key, m))
        m.last = time.monotonic()
        self.count_up(self.pledge_key(*key), data, len(data))
        if m.transport is None:
            m.queue.append(data)
        else:
            m.transport.sendto(data)

    async def _open(self, key: tuple[str, int], m: _Mapping) -> None:
        loop = asyncio.get_running_loop()

        def back(data: bytes, _addr: tuple[Any, ...]) -> None:
            m.last = time.monotonic()
            self.count_down(self.pledge_key(*key), data, len(data))
            self.to_pledge(data, m.host, m.port)

        tr, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(back), sock=udp6((self.cfg.jp_bb_addr, 0, 0, 0), self.registrar))
        m.transport = tr  # type: ignore[assignment]
        for d in m.queue:
            tr.sendto(d)  # type: ignore[attr-defined]
        m.queue.clear()

    def send_prohibited(self, host: str, port: int, data: bytes) -> None:
        """RFC 4443 §3.1 Destination Unreachable code 1, quoting the refused datagram (rebuilt)."""
        if self.icmp is None:
            return
        src = ipaddress.IPv6Address(host).packed
        dst = ipaddress.IPv6Address(_plain(self.cfg.jp_lln_addr)).packed
        ulen = UDP_HEADER_LEN + len(data)
        udp = struct.pack(">HHHH", port, self.cfg.ports.join, ulen, 0) + data
        csum = _checksum(src + dst + struct.pack(">I3xB", ulen, socket.IPPROTO_UDP) + udp) or 0xFFFF
        udp = udp[:6] + struct.pack(">H", csum) + udp[8:]
        ip6 = struct.pack(">IHBB", 6 << 28, ulen, socket.IPPROTO_UDP, QUOTED_HOP_LIMIT) + src + dst
        quoted = (ip6 + udp)[:ICMP6_MAX_LEN - IPV6_HEADER_LEN - ICMP6_HEADER_LEN]
        msg = struct.pack(">BBHI", ICMP6_DST_UNREACH, ICMP6_ADMIN_PROHIBITED, 0, 0) + quoted
        with contextlib.suppress(OSError):
            self.icmp.sendto(msg, (host, 0, 0, self.ifindex))  # the kernel fills the checksum

    def result(self) -> dict[str, Any]:
        r = super().result()
        r.update(refused=self.refused, states=len(self.maps), expired=self.expired,
                 limits={"per_pledge": self.cfg.max_states_per_pledge,
                         "per_interface": self.cfg.max_states_per_interface,
                         "timeout_s": self.cfg.state_timeout})
        return r


def _checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


# ---------------------------------------------------------------------------
# jpy, jpy-legacy


class JpyJoinProxy(JoinProxy):
    """Draft §4.3: stateless, the pledge in an encrypted 16-byte header."""

    scheme = "jpy"

    def from_pledge(self, data: bytes, host: str, port: int) -> None:
        msg = jpy.encode(self.header_for(host, port).encrypt(self.key), data)
        self.count_up(self.pledge_key(host, port), data, len(msg))
        self.to_registrar(msg)

    def from_registrar(self, data: bytes) -> None:
        m = jpy.decode(data)
        if m.layout is not jpy.JPY or m.header is None or m.content is None:
            self.dropped["not a JPY message"] += 1
            return
        r = JpyHeader.decrypt(self.key, m.header)
        if r.header is None or r.header.ifindex != self.ifindex:
            self.dropped["header did not decrypt (discarded silently, draft §4.3.4)"] += 1
            return
        host = self.pledge_addr(r.header.iid)
        self.count_down(self.pledge_key(host, r.header.srcport), m.content, len(data))
        self.to_pledge(m.content, host, r.header.srcport)


class JpyLegacyJoinProxy(JoinProxy):
    """Drafts -03…-10 §5.3: the pledge's address, port, family and ifindex in the clear."""

    scheme = "jpy-legacy"

    def from_pledge(self, data: bytes, host: str, port: int) -> None:
        msg = jpy.legacy_for_address(host, port, self.ifindex, data)
        self.count_up(self.pledge_key(host, port), data, len(msg))
        self.to_registrar(msg)

    def from_registrar(self, data: bytes) -> None:
        m = jpy.decode(data)
        if m.layout is not jpy.JPY_LEGACY or m.errors or m.content is None:
            self.dropped["not a legacy JPY message"] += 1
            return
        ip = m.get("ip")
        port = m.get("port")
        if m.get("ifindex") != self.ifindex or not isinstance(ip, bytes) or not isinstance(port, int):
            self.dropped["unknown interface"] += 1
            return
        host = str(ipaddress.ip_address(ip))
        self.count_down(self.pledge_key(host, port), m.content, len(data))
        self.to_pledge(m.content, host, port)


# ---------------------------------------------------------------------------
# coap-dtls


class CoapDtlsJoinProxy(JoinProxy):
    """DTLS in an outer CoAP message; the JP state in an RFC 8974 extended token."""

    scheme = "coap-dtls"

    def from_pledge(self, data: bytes, host: str, port: int) -> None:
        token = jpy.seal_token(self.key, self.header_for(host, port))
        msg = CoapMessage(type=MsgType.NON, code=2, mid=self.next_mid(), token=token, payload=data).encode()
        self.count_up(self.pledge_key(host, port), data, len(msg))
        self.to_registrar(msg)

    def from_registrar(self, data: bytes) -> None:
        msg, errors = CoapMessage.decode(data)
        if msg is None or errors or not is_response(msg.code) or not msg.payload:
            self.dropped["not a CoAP response with payload"] += 1
            return
        r, _inner = jpy.open_token(self.key, msg.token)
        if r.header is None or r.header.ifindex != self.ifindex:
            self.dropped["token state did not decrypt"] += 1
            return
        host = self.pledge_addr(r.header.iid)
        self.count_down(self.pledge_key(host, r.header.srcport), msg.payload, len(data))
        self.to_pledge(msg.payload, host, r.header.srcport)


# ---------------------------------------------------------------------------
# thread-relay


class ThreadJoinProxy(JoinProxy):
    """OpenThread's Joiner Router: ``c/rx`` out, ``c/tx`` in (joiner_router.cpp)."""

    scheme = "thread-relay"

    def __init__(self, cfg: LabConfig) -> None:
        super().__init__(cfg)
        self.kek: list[str] = []

    def from_pledge(self, data: bytes, host: str, port: int) -> None:
        relay = Relay("c/rx", port, self.iid_of(host), self.cfg.rloc16, data)
        msg = relay.encode(os.urandom(THREAD_TOKEN_LEN), self.next_mid())
        self.count_up(self.pledge_key(host, port), data, len(msg))
        self.to_registrar(msg)

    def from_registrar(self, data: bytes) -> None:
        msg, relay, _errors = decode_relay_message(data)
        if msg is None or relay is None or relay.uri != "c/tx" or msg.type != MsgType.NON or msg.code != 2:
            # joiner_router.cpp HandleRelayTransmit: only a NON POST c/tx is relayed.
            self.dropped["not a NON POST c/tx"] += 1
            return
        host = self.pledge_addr(relay.joiner_iid)
        st = self.count_down(self.pledge_key(host, relay.joiner_port), relay.dtls, len(data))
        self.to_pledge(relay.dtls, host, relay.joiner_port)
        if relay.kek is not None:
            st.kek_received = True
            self.kek.append(relay.kek.hex())

    def result(self) -> dict[str, Any]:
        r = super().result()
        r["kek_received"] = self.kek
        return r


# ---------------------------------------------------------------------------
# cojp


class CojpJoinProxy(JoinProxy):
    """RFC 9031 with an RFC 8974 stateless CoAP proxy."""

    scheme = "cojp"

    def from_pledge(self, data: bytes, host: str, port: int) -> None:
        msg, errors = CoapMessage.decode(data)
        key = self.pledge_key(host, port)
        if msg is None or errors or not is_request(msg.code):
            self.dropped["from pledge: not a CoAP request"] += 1
            return
        msg.token = jpy.seal_token(self.key, self.header_for(host, port), msg.token)
        # RFC 7252 §5.7.2: the proxy consumes Proxy-Scheme; Uri-Host names the JRC ("6tisch.arpa").
        msg.options = [(n, v) for n, v in msg.options if n != PROXY_SCHEME]
        out = msg.encode()
        self.count_up(key, data, len(out), dtls=False)
        self.stats[key].retransmissions_from_pledge += self.watch.coap(key, "up", msg)
        self.to_registrar(out)

    def from_registrar(self, data: bytes) -> None:
        msg, errors = CoapMessage.decode(data)
        if msg is None or errors:
            self.dropped["not CoAP"] += 1
            return
        if not msg.token:
            # An empty ACK or RST carries no token, so no state: a stateless proxy cannot route it.
            self.dropped["no token (empty ACK/RST)"] += 1
            return
        r, inner = jpy.open_token(self.key, msg.token)
        if r.header is None or r.header.ifindex != self.ifindex:
            self.dropped["token state did not decrypt"] += 1
            return
        msg.token = inner
        out = msg.encode()
        host = self.pledge_addr(r.header.iid)
        key = self.pledge_key(host, r.header.srcport)
        st = self.count_down(key, out, len(data), dtls=False)
        st.retransmissions_to_pledge += self.watch.coap(key, "down", msg)
        self.to_pledge(out, host, r.header.srcport)


JOIN_PROXIES: dict[str, type[JoinProxy]] = {c.scheme: c for c in (
    StatefulJoinProxy, JpyJoinProxy, JpyLegacyJoinProxy, CoapDtlsJoinProxy, ThreadJoinProxy, CojpJoinProxy)}


async def serve(cfg: LabConfig) -> dict[str, Any]:
    """Run until SIGTERM/SIGINT, then return the counters."""
    jp = JOIN_PROXIES[cfg.scheme](cfg)
    await jp.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ready()
    await stop.wait()
    jp.close()
    return jp.result()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m jpdissect.lab.joinproxy CONFIG.json\n")
        return 2
    report(asyncio.run(serve(LabConfig.load(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
