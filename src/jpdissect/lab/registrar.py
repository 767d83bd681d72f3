"""The Registrar host: relay endpoints written here, in front of real DTLS servers (and the CoJP JRC).

:class:`Front` listens where the Join Proxy sends (5684 stateful, 7634 JPY, 5685 coap-dtls, 61631
Thread TMF), strips the scheme's framing, and hands each pledge's DTLS datagrams to a real DTLS server
of its own; what that server sends back is framed again and returned to the JP:

* ``stateful`` -- nothing to strip; the flow is the JP's source address and port.
* ``jpy`` / ``jpy-legacy`` -- the JPY endpoint accepts both layouts on one port (told apart by their
  element kinds); the flow is (JP address, port, header) -- draft §4.3: "packets with different
  header H belong to different Pledge's UDP connections"; replies copy the request array with only
  the content replaced.
* ``coap-dtls`` -- the flow is the extended token; each server datagram goes back as a NON 2.05 with
  that token.
* ``thread-relay`` -- the Border Agent/Commissioner side: ``c/rx`` in, ``c/tx`` out with the joiner's
  port, IID and Joiner Router locator; the Joiner Router KEK rides on the ``c/tx`` that carries the
  server's first application data (where a Thread commissioner's JOIN_FIN.rsp would be).

``openssl s_server`` serves one DTLS client at a time (it is iterative), so the front starts one
``s_server -naccept 1`` per pledge flow on ``::1`` inside the Registrar namespace (pre-started, one per
expected pledge, more on demand); each writes its own keylog. That demultiplexing stays inside the
Registrar host and never shows in the capture. With ``--registrar-stack mbedtls`` the servers are
python-mbedtls instead (``python -m jpdissect.lab.registrar mbedtls-server``).

Every server answers the pledge's voucher request with :func:`jpdissect.lab.pledges.brski_response`;
for ``cojp``, :func:`jrc` is an aiocoap OSCORE server answering the Join Request (RFC 9031 §8.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from jpdissect.coapmsg import POST, RFC7252_MAX_TOKEN_LEN, CoapMessage, MsgType, is_request
from jpdissect.framing import jpy
from jpdissect.framing.meshcop import Relay, decode_relay_message
from jpdissect.lab.config import RESULT_PREFIX, LabConfig, ready, report, udp6
from jpdissect.lab.pledges import (
    DEFAULT_LINK_MTU,
    HS_TIMEOUT_MAX,
    HS_TIMEOUT_MIN,
    IP_UDP_OVERHEAD,
    MBEDTLS_CERT_SUITE,
    MBEDTLS_PSK_SUITE,
    OPENSSL_CERT_SUITE,
    OPENSSL_PSK_SUITE,
    POLL,
    brski_response,
    split_records,
)

CODE_CONTENT = 69
CT_APPLICATION_DATA = 23
THREAD_TOKEN_LEN = 2
MID_SPACE = 0x10000
#: Seconds a DTLS server may take to bind its port.
BIND_TIMEOUT = 10.0
BIND_POLL = 0.05
#: Flows beyond this many are refused (each costs a server process).
MAX_FLOWS = 256
#: RFC 9031 §8.3: the Configuration's link-layer key is 16 bytes; short identifier 2 bytes.
LINK_KEY_LEN = 16


def _udp6_bound(port: int) -> bool:
    """Whether something in this namespace has bound UDP ``port`` (the server is ready)."""
    with contextlib.suppress(OSError), open("/proc/net/udp6") as f:
        for line in f.readlines()[1:]:
            local = line.split()[1]
            if int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


# ---------------------------------------------------------------------------
# The real DTLS servers


@dataclass
class Backend:
    """One DTLS server process serving one pledge flow."""

    port: int
    stack: str
    proc: asyncio.subprocess.Process | None = None
    handshake: bool = False
    cipher: str = ""
    requests: int = 0
    responses: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, cfg: LabConfig) -> None:
        kd = Path(cfg.keydir)
        if self.stack == "mbedtls":
            conf = {"port": self.port, "psk_hex": cfg.psk_hex, "identities": cfg.pledge_ids, "mtu": cfg.mtu,
                    "cert": str(kd / "registrar.pem"), "key": str(kd / "registrar.key"), "ca": str(kd / "ca.pem")}
            argv = [sys.executable, "-m", "jpdissect.lab.registrar", "mbedtls-server", json.dumps(conf)]
        else:
            argv = ["openssl", "s_server", "-dtls1_2", "-accept", f"[::1]:{self.port}", "-naccept", "1", "-brief",
                    "-keylogfile", str(Path(cfg.keylog_dir) / f"server-{self.port}.keylog"),
                    "-psk", cfg.psk_hex, "-psk_hint", cfg.psk_hint,
                    "-cert", str(kd / "registrar.pem"), "-key", str(kd / "registrar.key"),
                    "-verify", "1", "-CAfile", str(kd / "ca.pem"),
                    "-cipher", f"{OPENSSL_PSK_SUITE}:{OPENSSL_CERT_SUITE}"]
            # Without a configured MTU, s_server's unconnected socket falls back to a 256-byte guess and
            # fragments everything; the lab's default is the IPv6 minimum link MTU (RFC 8200 §5).
            argv += ["-mtu", str(cfg.mtu or DEFAULT_LINK_MTU)]  # s_server's -mtu also stops MTU queries
        self.proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._stdout()), loop.create_task(self._stderr())]

    async def bound(self) -> bool:
        deadline = time.monotonic() + BIND_TIMEOUT
        while time.monotonic() < deadline:
            if _udp6_bound(self.port):
                return True
            await asyncio.sleep(BIND_POLL)
        return False

    async def _stdout(self) -> None:
        """openssl: received application data is the request; answer through stdin."""
        assert self.proc and self.proc.stdout and self.proc.stdin
        while True:
            chunk = await self.proc.stdout.read(65536)
            if not chunk:
                return
            if self.stack == "mbedtls":
                for line in chunk.decode(errors="replace").splitlines():
                    if line.startswith(RESULT_PREFIX):
                        self.result = json.loads(line[len(RESULT_PREFIX):])
                        self.handshake = bool(self.result.get("handshake"))
                        self.cipher = self.result.get("cipher", "")
                        self.requests = self.result.get("requests", 0)
                        self.responses = self.result.get("responses", 0)
                continue
            self.requests += 1
            resp = brski_response(chunk)
            if resp is not None:
                with contextlib.suppress(ConnectionError):
                    self.proc.stdin.write(resp)
                    await self.proc.stdin.drain()
                    self.responses += 1

    async def _stderr(self) -> None:
        assert self.proc and self.proc.stderr
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line.startswith("Ciphersuite:"):
                self.handshake = True
                self.cipher = line.split(":", 1)[1].strip()

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(3):
                    await self.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await asyncio.gather(*self._tasks)

    def summary(self) -> dict[str, Any]:
        return {"stack": self.stack, "port": self.port, "handshake": self.handshake, "cipher": self.cipher,
                "requests": self.requests, "responses": self.responses, "exit": self.proc.returncode
                if self.proc else None}


# ---------------------------------------------------------------------------
# The relay endpoint


@dataclass
class Flow:
    key: tuple[Any, ...]
    peer: tuple[str, int]
    backend: Backend
    ctx: Any = None
    transport: asyncio.DatagramTransport | None = None
    queue: list[bytes] = field(default_factory=list)
    up: int = 0
    down: int = 0
    kek_sent: bool = False


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            self.handler(data, addr)
        except Exception as exc:  # noqa: BLE001 - one bad datagram must not stop the endpoint
            sys.stderr.write(f"registrar: {type(exc).__name__}: {exc}\n")


class Front:
    """The Registrar-side relay endpoint of one scheme, in front of the DTLS servers."""

    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.flows: dict[tuple[Any, ...], Flow] = {}
        self.pool: list[Backend] = []
        self.next_port = cfg.ports.backend_base
        self.transport: asyncio.DatagramTransport | None = None
        self.mid = int.from_bytes(os.urandom(2), "big")
        self.dropped: dict[str, int] = {}
        self.kek = bytes.fromhex(cfg.thread_kek_hex) if cfg.thread_kek_hex else os.urandom(16)

    def _drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1

    async def _backend(self) -> Backend:
        b = Backend(self.next_port, self.cfg.registrar_stack)
        self.next_port += 1
        await b.start(self.cfg)
        return b

    async def start(self) -> None:
        self.pool = [await self._backend() for _ in range(self.cfg.n_pledges)]
        if not all(await asyncio.gather(*(b.bound() for b in self.pool))):
            raise RuntimeError("a DTLS server did not bind its port")
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self.from_jp), sock=udp6((self.cfg.registrar_addr, self.cfg.ports.registrar, 0, 0)))
        self.transport = tr  # type: ignore[assignment]

    # -- framing per scheme -------------------------------------------------
    def unwrap(self, data: bytes, peer: tuple[str, int]) -> tuple[tuple[Any, ...], bytes, Any] | None:
        scheme = self.cfg.scheme
        if scheme == "stateful":
            return peer, data, None
        if scheme in ("jpy", "jpy-legacy"):
            m = jpy.decode(data)
            if m.layout is None or m.content is None or m.errors:
                self._drop(f"bad JPY message: {m.errors[0] if m.errors else 'no content'}")
                return None
            ident = tuple(s.value for s in m.spans if s.name != "content")
            return (*peer, m.layout.name, *ident), m.content, (m, data)
        if scheme == "coap-dtls":
            msg, errors = CoapMessage.decode(data)
            if msg is None or errors or not is_request(msg.code) or not msg.payload:
                self._drop("not a CoAP request with payload")
                return None
            return (*peer, msg.token), msg.payload, msg.token
        if scheme == "thread-relay":
            msg, relay, errors = decode_relay_message(data)
            if msg is None or relay is None or relay.uri != "c/rx" or msg.type != MsgType.NON or msg.code != POST:
                self._drop("not a NON POST c/rx")
                return None
            return ((*peer, relay.joiner_iid, relay.joiner_port, relay.router_locator), relay.dtls,
                    (relay.joiner_port, relay.joiner_iid, relay.router_locator))
        raise ValueError(scheme)

    def wrap(self, flow: Flow, dtls: bytes) -> bytes:
        scheme = self.cfg.scheme
        if scheme == "stateful":
            return dtls
        if scheme in ("jpy", "jpy-legacy"):
            m, raw = flow.ctx
            return m.reply(raw, dtls)
        self.mid = (self.mid + 1) % MID_SPACE
        if scheme == "coap-dtls":
            return CoapMessage(type=MsgType.NON, code=CODE_CONTENT, mid=self.mid, token=flow.ctx,
                               payload=dtls).encode()
        port, iid, rloc = flow.ctx
        kek = None
        if not flow.kek_sent and _has_app_data(dtls):
            kek, flow.kek_sent = self.kek, True
        return Relay("c/tx", port, iid, rloc, dtls, kek).encode(os.urandom(THREAD_TOKEN_LEN), self.mid)

    # -- relaying ------------------------------------------------------------
    def from_jp(self, data: bytes, addr: tuple[Any, ...]) -> None:
        peer = (addr[0], addr[1])
        got = self.unwrap(data, peer)
        if got is None:
            return
        key, dtls, ctx = got
        flow = self.flows.get(key)
        if flow is None:
            if len(self.flows) >= MAX_FLOWS:
                self._drop("too many flows")
                return
            backend = self.pool.pop(0) if self.pool else None
            flow = self.flows[key] = Flow(key, peer, backend or Backend(0, self.cfg.registrar_stack))
            asyncio.get_running_loop().create_task(self._connect(flow, backend is None))
        flow.ctx = ctx
        flow.peer = peer
        flow.up += 1
        if flow.transport is None:
            flow.queue.append(dtls)
        else:
            flow.transport.sendto(dtls)

    async def _connect(self, flow: Flow, fresh: bool) -> None:
        if fresh:
            flow.backend = await self._backend()
            await flow.backend.bound()
        loop = asyncio.get_running_loop()

        def back(dtls: bytes, _addr: tuple[Any, ...]) -> None:
            flow.down += 1
            if self.transport is not None:
                self.transport.sendto(self.wrap(flow, dtls), flow.peer)

        tr, _ = await loop.create_datagram_endpoint(lambda: _Proto(back),
                                                    sock=udp6(("::1", 0, 0, 0), ("::1", flow.backend.port)))
        flow.transport = tr  # type: ignore[assignment]
        for d in flow.queue:
            tr.sendto(d)  # type: ignore[attr-defined]
        flow.queue.clear()

    async def stop(self) -> dict[str, Any]:
        if self.transport is not None:
            self.transport.close()
        for f in self.flows.values():
            if f.transport is not None:
                f.transport.close()
        await asyncio.gather(*(b.stop() for b in [f.backend for f in self.flows.values()] + self.pool))
        flows = []
        for f in self.flows.values():
            d = {"key": _show_key(f.key), "datagrams_in": f.up, "datagrams_out": f.down, **f.backend.summary()}
            if self.cfg.scheme == "thread-relay":
                d["kek_sent"] = f.kek_sent
            flows.append(d)
        return {"scheme": self.cfg.scheme, "stack": self.cfg.registrar_stack, "flows": flows,
                "handshakes": sum(1 for f in self.flows.values() if f.backend.handshake),
                "exchanges": sum(1 for f in self.flows.values() if f.backend.responses),
                "dropped": self.dropped, "unused_servers": len(self.pool)}


def _has_app_data(dgram: bytes) -> bool:
    p = 0
    while p + 13 <= len(dgram):
        if dgram[p] == CT_APPLICATION_DATA:
            return True
        p += 13 + int.from_bytes(dgram[p + 11:p + 13], "big")
    return False


def _show_key(key: tuple[Any, ...]) -> list[Any]:
    return [v.hex() if isinstance(v, bytes) else v for v in key]


# ---------------------------------------------------------------------------
# CoJP: the JRC


class TokenShim:
    """RFC 8974 extended tokens on the wire, short tokens for aiocoap behind it.

    aiocoap 0.4.17's ``Message.decode`` reads the TKL nibble as a literal length (no RFC 8974 §2.1
    extension bytes), so it cannot be the JRC a stateless JP talks to. This endpoint -- like the DTLS
    demultiplexer, inside the Registrar host and invisible in the capture -- swaps each long token for
    a short one on the way in and back on the way out; OSCORE does not cover the token (RFC 8613 §5.4),
    so the end-to-end protection is untouched. One upstream socket per JP address keeps aiocoap's
    message deduplication (RFC 7252 §4.5, per endpoint and Message ID) as it would be.
    """

    def __init__(self, cfg: LabConfig, jrc_port: int) -> None:
        self.cfg = cfg
        self.jrc = ("::1", jrc_port)
        self.short: dict[bytes, bytes] = {}
        self.long: dict[bytes, bytes] = {}
        self.peers: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.relayed = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(
            lambda: _Proto(self.from_jp), sock=udp6((self.cfg.registrar_addr, self.cfg.ports.registrar, 0, 0)))
        self.transport = tr  # type: ignore[assignment]

    def from_jp(self, data: bytes, addr: tuple[Any, ...]) -> None:
        msg, errors = CoapMessage.decode(data)
        if msg is None or errors:
            return
        if len(msg.token) > RFC7252_MAX_TOKEN_LEN:
            short = self.short.get(msg.token)
            if short is None:
                short = self.short[msg.token] = os.urandom(RFC7252_MAX_TOKEN_LEN)
                self.long[short] = msg.token
            msg.token = short
        peer = (addr[0], addr[1])
        tr = self.peers.get(peer)
        if tr is None:
            asyncio.get_running_loop().create_task(self._open(peer, msg.encode()))
        else:
            tr.sendto(msg.encode())
        self.relayed += 1

    async def _open(self, peer: tuple[str, int], first: bytes) -> None:
        loop = asyncio.get_running_loop()

        def back(data: bytes, _addr: tuple[Any, ...]) -> None:
            msg, errors = CoapMessage.decode(data)
            if msg is not None and not errors and msg.token in self.long:
                msg.token = self.long[msg.token]
                data = msg.encode()
            if self.transport is not None:
                self.transport.sendto(data, peer)

        if peer not in self.peers:
            tr, _ = await loop.create_datagram_endpoint(lambda: _Proto(back),
                                                        sock=udp6(("::1", 0, 0, 0), self.jrc))
            self.peers[peer] = tr  # type: ignore[assignment]
        self.peers[peer].sendto(first)

    def close(self) -> None:
        for tr in [self.transport, *self.peers.values()]:
            if tr is not None:
                tr.close()


async def jrc(cfg: LabConfig, stop: asyncio.Event) -> dict[str, Any]:
    """An aiocoap OSCORE server answering RFC 9031 Join Requests on ``/j``, behind :class:`TokenShim`."""
    import aiocoap
    import aiocoap.resource as resource
    from aiocoap.credentials import CredentialsMap
    from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

    joins: list[dict[str, Any]] = []

    class Join(resource.Resource):
        async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
            claims = sorted(str(c) for c in request.remote.authenticated_claims)
            if not claims:
                return aiocoap.Message(code=aiocoap.UNAUTHORIZED)  # RFC 9031 §8.2: only over OSCORE
            # RFC 9031 §8.4.2 Configuration: 2 link-layer key set, 3 short identifier.
            config = {2: [os.urandom(LINK_KEY_LEN)], 3: [os.urandom(2)]}
            joins.append({"context": claims[0], "request": cbor2.loads(request.payload)
                          if request.payload else None})
            return aiocoap.Message(code=aiocoap.CHANGED, content_format=60, payload=cbor2.dumps(config))

    site = resource.Site()
    site.add_resource(["j"], Join())
    creds = CredentialsMap()
    kd = Path(cfg.keydir)
    creds.load_from_dict({f":pledge{i}": {"oscore": {"contextfile": str(kd / "oscore" / f"pledge{i}-jrc")}}
                          for i in range(1, cfg.n_pledges + 1)})
    ctx = await aiocoap.Context.create_server_context(OscoreSiteWrapper(site, creds),
                                                      bind=("::1", cfg.ports.backend_base))
    shim = TokenShim(cfg, cfg.ports.backend_base)
    await shim.start()
    ready()
    await stop.wait()
    shim.close()
    await ctx.shutdown()
    for j in joins:
        if j["request"] is not None:
            j["request"] = {str(k): v.hex() if isinstance(v, bytes) else v for k, v in j["request"].items()}
    return {"scheme": "cojp", "stack": "aiocoap", "exchanges": len(joins), "handshakes": len(joins),
            "joins": joins}


# ---------------------------------------------------------------------------
# python-mbedtls DTLS server (one client), run as its own process


def mbedtls_server(conf: dict[str, Any]) -> dict[str, Any]:
    from mbedtls import pk, tls, x509

    res: dict[str, Any] = {"handshake": False, "requests": 0, "responses": 0, "error": "", "cipher": ""}
    store = tls.TrustStore()
    store.add(x509.CRT.from_file(conf["ca"]))
    chain = ([x509.CRT.from_file(conf["cert"])], pk.ECC.from_file(conf["key"]))
    psk = bytes.fromhex(conf["psk_hex"])
    dconf = tls.DTLSConfiguration(
        ciphers=(MBEDTLS_PSK_SUITE, MBEDTLS_CERT_SUITE), certificate_chain=chain, trust_store=store,
        validate_certificates=False, pre_shared_key_store={i: psk for i in conf["identities"]},
        highest_supported_version=tls.DTLSVersion.DTLSv1_2, lowest_supported_version=tls.DTLSVersion.DTLSv1_2,
        handshake_timeout_min=HS_TIMEOUT_MIN, handshake_timeout_max=HS_TIMEOUT_MAX)
    limit = (conf["mtu"] or 1280) - IP_UDP_OVERHEAD
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::1", conf["port"]))
    sock.settimeout(POLL)
    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    peer: tuple[Any, ...] | None = None

    def fresh() -> Any:
        b = tls.ServerContext(dconf).wrap_buffers()
        b.setmtu(limit)
        if peer is not None:
            b.setcookieparam(repr(peer[:2]).encode())
        return b

    buf = None

    def flush() -> None:
        data = buf.peek_outgoing(1 << 16)
        if data and peer is not None:
            buf.consume_outgoing(len(data))
            for d in split_records(data, limit):
                sock.sendto(d, peer)

    def pump() -> None:
        nonlocal peer, buf
        with contextlib.suppress(TimeoutError, BlockingIOError):
            data, addr = sock.recvfrom(1 << 16)
            if peer is None:
                peer = addr
                buf = fresh()
            if addr == peer:
                buf.receive_from_network(data)

    try:
        while not stopping and (buf is None or buf._handshake_state is not tls.HandshakeStep.HANDSHAKE_OVER):
            if buf is None:
                pump()
                continue
            try:
                buf.do_handshake()
            except (tls.WantReadError, tls.WantWriteError):
                flush()
                pump()
            except tls.HelloVerifyRequest:
                flush()  # RFC 6347 §4.2.1: the cookie exchange; the next ClientHello starts anew
                buf = fresh()
                pump()
        if buf is not None and not stopping:
            flush()
            res["handshake"] = True
            with contextlib.suppress(Exception):
                c = buf.cipher()
                res["cipher"] = str(c[0] if isinstance(c, tuple) else c)
        while not stopping and res["handshake"]:
            pump()
            try:
                data = buf.read(1 << 16)
            except (tls.WantReadError, tls.WantWriteError):
                flush()
                continue
            if not data:
                break
            res["requests"] += 1
            resp = brski_response(data)
            if resp is not None:
                buf.write(resp)
                flush()
                res["responses"] += 1
    except Exception as exc:  # noqa: BLE001 - the close_notify or a failure ends the session
        res["error"] = f"{type(exc).__name__}: {exc}"
    sock.close()
    return res


# ---------------------------------------------------------------------------


async def serve(cfg: LabConfig) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if cfg.scheme == "cojp":
        return await jrc(cfg, stop)
    front = Front(cfg)
    await front.start()
    ready()
    await stop.wait()
    return await front.stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "mbedtls-server":
        out = mbedtls_server(json.loads(args[1]))
        sys.stdout.write(RESULT_PREFIX + json.dumps(out) + "\n")
        return 0
    if len(args) != 1:
        sys.stderr.write("usage: python -m jpdissect.lab.registrar CONFIG.json | mbedtls-server JSON\n")
        return 2
    report(asyncio.run(serve(LabConfig.load(args[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
