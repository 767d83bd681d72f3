"""The pledges: ``openssl s_client -dtls1_2``, python-mbedtls DTLS clients, aiocoap OSCORE (CoJP) clients.

Each pledge does what an onboarding pledge does first, with a real stack: the DTLS handshake (PSK or
certificate), then one cBRSKI-ish request over the session -- a CoAP CON ``POST
/.well-known/brski/rv`` with a small CBOR voucher request -- which the Registrar answers with a
piggy-backed 2.04 (:func:`brski_request`, :func:`brski_response`, built with
:mod:`jpdissect.coapmsg`). The decryption features thus have application data to check. Like a
CoAP client, a pledge sends its CON request again (same Message ID) when no answer comes
(RFC 7252 §4.2), so a lost application record does not end the run.

The CoJP pledge (RFC 9031 §8.1) sends its Join Request to the JP's link-local address with
Proxy-Scheme ``coap`` and Uri-Host ``6tisch.arpa``, OSCORE-protected with its pre-shared context.

``openssl`` pledges are driven from the runner (:func:`run_openssl`); the python ones run as
``python -m jpdissect.lab.pledges mbedtls|cojp CONFIG-JSON`` in the pledge's namespace and print one
``RESULT`` line (:func:`run_module`).
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
from dataclasses import asdict, dataclass
from typing import Any

import cbor2

from jpdissect.coapmsg import CONTENT_FORMAT, POST, CoapMessage, MsgType
from jpdissect.lab.config import REQUEST_RETRIES, REQUEST_TIMEOUT, RESULT_PREFIX

#: cBRSKI (draft-ietf-anima-constrained-voucher): the voucher request resource and its media type.
BRSKI_RV_PATH = "/.well-known/brski/rv"
CF_VOUCHER_COSE = 836
CF_CBOR = 60
CODE_CHANGED = 68
TOKEN_LEN = 4
NONCE_LEN = 8
#: IPv6 (40) + UDP (8): what a link MTU loses before the DTLS datagram.
IP_UDP_OVERHEAD = 48
#: The IPv6 minimum link MTU (RFC 8200 §5) -- the datagram budget when no --mtu is given.
DEFAULT_LINK_MTU = 1280
OPENSSL_PSK_SUITE, OPENSSL_CERT_SUITE = "PSK-AES128-CCM8", "ECDHE-ECDSA-AES128-CCM8"
MBEDTLS_PSK_SUITE, MBEDTLS_CERT_SUITE = "TLS-PSK-WITH-AES-128-CCM-8", "TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"
#: RFC 9031 §8.1: the JRC's name and the join resource.
COJP_HOST, COJP_PATH = "6tisch.arpa", "j"
#: Seconds a finished client may take to exit after closing its input (close_notify goes out).
EXIT_GRACE = 3.0
#: The DTLS handshake poll interval of the python-mbedtls pledge (its retransmission timer runs
#: inside Mbed TLS; this only bounds how late we notice it).
POLL = 0.1
#: Mbed TLS DTLS retransmission timer bounds (RFC 6347 §4.2.4.1 suggests 1 s initial).
HS_TIMEOUT_MIN, HS_TIMEOUT_MAX = 1.0, 16.0


def brski_request(serial: str, mid: int, token: bytes, nonce: bytes) -> bytes:
    """A CON POST voucher request: small, CBOR, recognisable after decryption."""
    body = cbor2.dumps({"ietf-voucher-request:voucher": {
        "serial-number": serial, "nonce": nonce, "assertion": "proximity"}})
    msg = CoapMessage(type=MsgType.CON, code=POST, mid=mid, token=token, payload=body)
    msg.set_path(BRSKI_RV_PATH)
    msg.add(CONTENT_FORMAT, CF_VOUCHER_COSE)
    return msg.encode()


def brski_response(request: bytes) -> bytes | None:
    """The Registrar's piggy-backed 2.04 to a voucher request, or None when ``request`` is not one."""
    req, errors = CoapMessage.decode(request)
    if req is None or errors or req.code != POST or req.uri_path != BRSKI_RV_PATH:
        return None
    serial, nonce = "?", b""
    with contextlib.suppress(Exception):
        vr = cbor2.loads(req.payload)["ietf-voucher-request:voucher"]
        serial, nonce = vr["serial-number"], vr["nonce"]
    body = cbor2.dumps({"ietf-voucher:voucher": {
        "serial-number": serial, "nonce": nonce, "assertion": "logged", "pinned-domain-cert": b"lab-ca"}})
    msg = CoapMessage(type=MsgType.ACK, code=CODE_CHANGED, mid=req.mid, token=req.token, payload=body)
    msg.add(CONTENT_FORMAT, CF_VOUCHER_COSE)
    return msg.encode()


def answers(response: bytes, token: bytes) -> bool:
    msg, errors = CoapMessage.decode(response)
    return msg is not None and not errors and msg.code == CODE_CHANGED and msg.token == token


@dataclass
class PledgeSpec:
    index: int
    stack: str  # openssl | mbedtls | aiocoap
    auth: str  # psk | cert | oscore

    @property
    def name(self) -> str:
        return f"pledge{self.index}"


@dataclass
class PledgeResult:
    index: int
    stack: str
    auth: str
    address: str = ""
    handshake: bool = False
    cipher: str = ""
    exchange: bool = False
    request_sends: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.handshake and self.exchange


def pledge_specs(n: int, scheme: str, stack: str = "mixed", auth: str = "mixed") -> list[PledgeSpec]:
    """Which stack and credentials each pledge uses; ``mixed`` cycles so a small run has each kind."""
    if scheme == "cojp":
        return [PledgeSpec(i, "aiocoap", "oscore") for i in range(1, n + 1)]
    cycle = [("openssl", "psk"), ("mbedtls", "cert"), ("openssl", "cert"), ("mbedtls", "psk")]
    specs = []
    for i in range(1, n + 1):
        s, a = cycle[(i - 1) % len(cycle)]
        if stack != "mixed":
            s = stack
        if auth != "mixed":
            a = auth
        if scheme == "thread-relay":
            a = "psk"  # Thread joiners use a PSKd (EC-JPAKE, which neither stack offers: see README)
        specs.append(PledgeSpec(i, s, a))
    return specs


# ---------------------------------------------------------------------------
# openssl s_client, driven from the runner


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_openssl(spec: PledgeSpec, wrap: list[str], target: str, port: int, opts: dict[str, Any],
                      timeout: float) -> PledgeResult:
    """One ``openssl s_client -dtls1_2`` pledge: handshake, request (repeated as CoAP would), close."""
    res = PledgeResult(spec.index, spec.stack, spec.auth)
    argv = ["openssl", "s_client", "-dtls1_2", "-brief", "-nocommands", "-connect", f"[{target}]:{port}",
            "-keylogfile", opts["keylog"]]
    if spec.auth == "psk":
        argv += ["-psk", opts["psk_hex"], "-psk_identity", opts["identity"], "-cipher", OPENSSL_PSK_SUITE]
    else:
        argv += ["-cipher", OPENSSL_CERT_SUITE, "-cert", opts["cert"], "-key", opts["key"],
                 "-CAfile", opts["ca"], "-verify_return_error"]
    argv += ["-mtu", str(opts.get("mtu") or DEFAULT_LINK_MTU)]  # -mtu also stops MTU queries
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *wrap, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert proc.stdin and proc.stdout and proc.stderr
    err = b""
    try:
        async with asyncio.timeout(timeout):
            while b"CONNECTION ESTABLISHED" not in err:
                line = await proc.stderr.readline()
                if not line:
                    break
                err += line
            if b"CONNECTION ESTABLISHED" not in err:
                res.error = "handshake failed: " + err.decode(errors="replace").strip()[-200:]
                return res
            res.handshake = True
            token, mid = os.urandom(TOKEN_LEN), int.from_bytes(os.urandom(2), "big")
            req = brski_request(opts["serial"], mid, token, os.urandom(NONCE_LEN))
            out = b""
            wait = REQUEST_TIMEOUT
            for _ in range(REQUEST_RETRIES + 1):
                proc.stdin.write(req)
                await proc.stdin.drain()
                res.request_sends += 1
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        while not answers(out, token):
                            chunk = await proc.stdout.read(4096)
                            if not chunk:
                                break
                            out += chunk
                if answers(out, token):
                    res.exchange = True
                    break
                wait *= 2
            if not res.exchange:
                res.error = "no answer to the voucher request"
            proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EXIT_GRACE):
                    rest = await proc.stderr.read()
                    err += rest
                    await proc.wait()
    except TimeoutError:
        res.error = res.error or f"timed out after {timeout:.0f} s"
    finally:
        res.seconds = round(time.monotonic() - t0, 3)
        for line in err.decode(errors="replace").splitlines():
            if line.startswith("Ciphersuite:"):
                res.cipher = line.split(":", 1)[1].strip()
        if proc.returncode is None:
            _kill(proc)
            with contextlib.suppress(Exception):
                await proc.wait()
    return res


async def run_module(spec: PledgeSpec, wrap: list[str], config: dict[str, Any], timeout: float) -> PledgeResult:
    """A python pledge (``mbedtls`` or ``cojp``) as a subprocess; its RESULT line is the outcome."""
    mode = "cojp" if spec.stack == "aiocoap" else "mbedtls"
    proc = await asyncio.create_subprocess_exec(
        *wrap, sys.executable, "-m", "jpdissect.lab.pledges", mode, json.dumps(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True)
    res = PledgeResult(spec.index, spec.stack, spec.auth)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        res.error = f"timed out after {timeout:.0f} s"
        return res
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(RESULT_PREFIX):
            d = json.loads(line[len(RESULT_PREFIX):])
            return PledgeResult(**{**asdict(res), **{k: v for k, v in d.items() if k in asdict(res)}})
    res.error = f"exit {proc.returncode}: " + err.decode(errors="replace").strip()[-300:]
    return res


# ---------------------------------------------------------------------------
# python-mbedtls pledge (blocking, in its own process)


def split_records(data: bytes, limit: int) -> list[bytes]:
    """DTLS records back into datagrams of at most ``limit`` bytes.

    python-mbedtls hands its output over as one byte stream, so the datagram boundaries Mbed TLS
    chose are lost; records are packed again in order, as Mbed TLS packs a flight (RFC 6347 §4.1.1
    allows several records per datagram).
    """
    out: list[bytes] = []
    cur = b""
    p = 0
    while p < len(data):
        n = 13 + int.from_bytes(data[p + 11:p + 13], "big") if p + 13 <= len(data) else len(data) - p
        rec = data[p:p + n]
        if cur and len(cur) + len(rec) > limit:
            out.append(cur)
            cur = b""
        cur += rec
        p += n
    if cur:
        out.append(cur)
    return out


def mbedtls_client(cfg: dict[str, Any]) -> dict[str, Any]:
    from mbedtls import pk, tls, x509

    t0 = time.monotonic()
    res: dict[str, Any] = {"handshake": False, "exchange": False, "request_sends": 0, "error": ""}
    common: dict[str, Any] = {
        "highest_supported_version": tls.DTLSVersion.DTLSv1_2,
        "lowest_supported_version": tls.DTLSVersion.DTLSv1_2,
        "handshake_timeout_min": HS_TIMEOUT_MIN, "handshake_timeout_max": HS_TIMEOUT_MAX,
    }
    if cfg["auth"] == "psk":
        conf = tls.DTLSConfiguration(ciphers=(MBEDTLS_PSK_SUITE,), validate_certificates=False,
                                     pre_shared_key=(cfg["identity"], bytes.fromhex(cfg["psk_hex"])), **common)
    else:
        store = tls.TrustStore()
        store.add(x509.CRT.from_file(cfg["ca"]))
        chain = ([x509.CRT.from_file(cfg["cert"])], pk.ECC.from_file(cfg["key"]))
        conf = tls.DTLSConfiguration(ciphers=(MBEDTLS_CERT_SUITE,), trust_store=store, validate_certificates=True,
                                     certificate_chain=chain, **common)
    link_mtu = cfg.get("mtu") or DEFAULT_LINK_MTU
    limit = link_mtu - IP_UDP_OVERHEAD
    buf = tls.ClientContext(conf).wrap_buffers("registrar.example")
    buf.setmtu(limit)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.connect((cfg["target"], cfg["port"], 0, cfg["scope"]))
    sock.settimeout(POLL)
    deadline = t0 + cfg["timeout"]

    def flush() -> None:
        data = buf.peek_outgoing(1 << 16)
        if data:
            buf.consume_outgoing(len(data))
            for dgram in split_records(data, limit):
                sock.send(dgram)

    def pump() -> None:
        with contextlib.suppress(TimeoutError, BlockingIOError):
            buf.receive_from_network(sock.recv(1 << 16))

    try:
        while buf._handshake_state is not tls.HandshakeStep.HANDSHAKE_OVER:
            if time.monotonic() > deadline:
                raise TimeoutError("handshake timed out")
            try:
                buf.do_handshake()
            except (tls.WantReadError, tls.WantWriteError):
                flush()
                pump()
        flush()
        res["handshake"] = True
        with contextlib.suppress(Exception):
            c = buf.cipher()
            res["cipher"] = str(c[0] if isinstance(c, tuple) else c)
        token, mid = os.urandom(TOKEN_LEN), int.from_bytes(os.urandom(2), "big")
        req = brski_request(cfg["serial"], mid, token, os.urandom(NONCE_LEN))
        wait = REQUEST_TIMEOUT
        for _ in range(REQUEST_RETRIES + 1):
            buf.write(req)
            flush()
            res["request_sends"] += 1
            until = min(time.monotonic() + wait, deadline)
            got = b""
            while time.monotonic() < until and not answers(got, token):
                pump()
                with contextlib.suppress(tls.WantReadError, tls.WantWriteError):
                    got = buf.read(1 << 16)
                flush()
            if answers(got, token):
                res["exchange"] = True
                break
            wait *= 2
        if not res["exchange"]:
            res["error"] = "no answer to the voucher request"
        with contextlib.suppress(Exception):
            buf.shutdown()  # close_notify
            flush()
    except Exception as exc:  # noqa: BLE001 - reported as the pledge's outcome
        res["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sock.close()
    res["seconds"] = round(time.monotonic() - t0, 3)
    return res


# ---------------------------------------------------------------------------
# aiocoap CoJP pledge


async def cojp_client(cfg: dict[str, Any]) -> dict[str, Any]:
    import aiocoap

    t0 = time.monotonic()
    res: dict[str, Any] = {"handshake": False, "exchange": False, "request_sends": 1, "error": "",
                           "cipher": "OSCORE AES-CCM-16-64-128"}
    ctx = await aiocoap.Context.create_client_context()
    try:
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"coap://{COJP_HOST}/{COJP_PATH}",
                              content_format=CF_CBOR,
                              payload=cbor2.dumps({1: 0, 5: bytes.fromhex(cfg["network_id"])}))
        msg.opt.proxy_scheme = "coap"
        msg.unresolved_remote = f"[{cfg['target']}]:{cfg['port']}"
        uri = msg.get_request_uri()
        base = uri[:uri.rindex("/")]
        ctx.client_credentials.load_from_dict({f"{base}/*": {"oscore": {"contextfile": cfg["context"]}}})
        async with asyncio.timeout(cfg["timeout"]):
            resp = await ctx.request(msg).response
        if resp.code == aiocoap.CHANGED:
            conf = cbor2.loads(resp.payload)
            res["handshake"] = res["exchange"] = True
            res["configuration_keys"] = sorted(conf) if isinstance(conf, dict) else []
        else:
            res["error"] = f"JRC answered {resp.code}"
    except Exception as exc:  # noqa: BLE001 - reported as the pledge's outcome
        res["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await ctx.shutdown()
    res["seconds"] = round(time.monotonic() - t0, 3)
    return res


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("mbedtls", "cojp"):
        sys.stderr.write("usage: python -m jpdissect.lab.pledges mbedtls|cojp CONFIG-JSON\n")
        return 2
    cfg = json.loads(args[1])
    out = mbedtls_client(cfg) if args[0] == "mbedtls" else asyncio.run(cojp_client(cfg))
    sys.stdout.write(RESULT_PREFIX + json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["PledgeResult", "PledgeSpec", "brski_request", "brski_response", "pledge_specs", "run_module",
           "run_openssl", "split_records"]
