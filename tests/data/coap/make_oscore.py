"""Make oscore_aiocoap.pcap: aiocoap OSCORE client and server on loopback, captured by tcpdump.

Run by make_fixtures.sh (as root, for tcpdump). Two pairwise contexts are used: "ctx_a" has an
ID Context (so requests carry kid context, RFC 8613 §6.1 flag h) and "ctx_b" has none. The
secrets are written to oscore_ctx/ next to the capture: the OSCORE decryption issue reuses them.

oscore_values.json records, in sending order, what aiocoap put into the OSCORE option of every
message it protected -- taken from aiocoap itself (the COSE unprotected header it compressed and
the context's sender sequence number), not from the capture -- so the tests can check the
dissector against the stack that made the bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time

import aiocoap
import aiocoap.resource as resource
from aiocoap import oscore
from aiocoap.credentials import CredentialsMap
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

HERE = os.path.dirname(os.path.abspath(__file__))
CTX = os.path.join(HERE, "oscore_ctx")
PCAP = os.path.join(HERE, "oscore_aiocoap.pcap")
PORT = 5683

# RFC 8613 Appendix C.1-style test material (fixed, so the fixture is reproducible in kind).
CONTEXTS = {
    "a": {"secret_hex": "0102030405060708090a0b0c0d0e0f10", "salt_hex": "9e7ca92223786340",
          "id-context_hex": "37cbf3210017a2d3", "client": "01", "server": "02"},
    "b": {"secret_hex": "1112131415161718191a1b1c1d1e1f20", "salt_hex": "",
          "client": "", "server": "0b"},
}

LOG: list[dict[str, str | int | None]] = []


def _write_contexts() -> None:
    shutil.rmtree(CTX, ignore_errors=True)
    for name, c in CONTEXTS.items():
        for role, sender, recipient in (("client", c["client"], c["server"]),
                                        ("server", c["server"], c["client"])):
            d = os.path.join(CTX, f"{name}_{role}")
            os.makedirs(d)
            sec = {"secret_hex": c["secret_hex"], "sender-id_hex": sender, "recipient-id_hex": recipient}
            if c["salt_hex"]:
                sec["salt_hex"] = c["salt_hex"]
            if "id-context_hex" in c:
                sec["id-context_hex"] = c["id-context_hex"]
            with open(os.path.join(d, "secret.json"), "w") as f:
                json.dump(sec, f, indent=1)


def _hook() -> None:
    """Record, for every message aiocoap protects, the values it took from its own context.

    The sender sequence number before and after protect() tells whether a fresh Partial IV was
    used (requests, Observe notifications) and which; kid and kid context are the context's
    Sender ID and ID Context (RFC 8613 §6.1). The option bytes are kept for cross-checking.
    """
    orig = oscore.CanProtect.protect

    def protect(self, message, request_id=None, *, kid_context=True):  # type: ignore[no-untyped-def]
        before = self.sender_sequence_number
        outer, rid = orig(self, message, request_id, kid_context=kid_context)
        fresh = self.sender_sequence_number != before
        is_req = message.code.is_request()
        LOG.append({
            "request": is_req,
            "seqno": before if fresh else None,
            "piv": before.to_bytes(max(1, (before.bit_length() + 7) // 8), "big").hex() if fresh else None,
            "kid": self.sender_id.hex() if is_req else None,
            "kid_context": self.id_context.hex() if is_req and self.id_context is not None else None,
            "payload_len": len(outer.payload),
            "option": (outer.opt.oscore or b"").hex(),
        })
        return outer, rid

    oscore.CanProtect.protect = protect  # type: ignore[method-assign]


class Hello(resource.Resource):
    async def render_get(self, request):  # type: ignore[no-untyped-def]
        return aiocoap.Message(payload=b"hello over oscore", content_format=0)

    async def render_put(self, request):  # type: ignore[no-untyped-def]
        return aiocoap.Message(code=aiocoap.CHANGED, payload=request.payload[::-1])


class Clock(resource.ObservableResource):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    async def tick(self) -> None:
        for _ in range(3):
            await asyncio.sleep(0.3)
            self.n += 1
            self.updated_state()

    async def render_get(self, request):  # type: ignore[no-untyped-def]
        return aiocoap.Message(payload=b"tick %d" % self.n, content_format=0)


async def run() -> None:
    _hook()
    site = resource.Site()
    site.add_resource(["hello"], Hello())
    clock = Clock()
    site.add_resource(["clock"], clock)
    server_creds = CredentialsMap()
    server_creds.load_from_dict({
        ":a": {"oscore": {"contextfile": os.path.join(CTX, "a_server")}},
        ":b": {"oscore": {"contextfile": os.path.join(CTX, "b_server")}},
    })
    server = await aiocoap.Context.create_server_context(
        OscoreSiteWrapper(site, server_creds), bind=("127.0.0.1", PORT))
    client = await aiocoap.Context.create_client_context()
    client.client_credentials.load_from_dict({
        f"coap://127.0.0.1:{PORT}/*": {"oscore": {"contextfile": os.path.join(CTX, "a_client")}},
        f"coap://localhost:{PORT}/*": {"oscore": {"contextfile": os.path.join(CTX, "b_client")}},
    })
    for uri in (f"coap://127.0.0.1:{PORT}/hello", f"coap://localhost:{PORT}/hello"):
        for _ in range(2):
            r = await client.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response
            assert r.code.is_successful(), r
        r = await client.request(aiocoap.Message(code=aiocoap.PUT, uri=uri, payload=b"abcdef")).response
        assert r.payload == b"fedcba", r
    # Observe: notifications carry their own Partial IV (RFC 8613 §8.3).
    req = aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{PORT}/clock", observe=0)
    obs = client.request(req)
    await obs.response
    ticker = asyncio.ensure_future(clock.tick())

    async def consume() -> None:
        async for _ in obs.observation:
            pass

    consumer = asyncio.ensure_future(consume())
    await ticker
    await asyncio.sleep(0.5)  # let the last notification (and its ACK) reach the wire
    obs.observation.cancel()
    consumer.cancel()
    await asyncio.sleep(0.2)
    await client.shutdown()
    await server.shutdown()


def main() -> None:
    _write_contexts()
    td = subprocess.Popen(["timeout", "60", "tcpdump", "-U", "-i", "lo", "-s", "0", "-w", PCAP,
                           f"udp port {PORT}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)  # tcpdump needs a moment before it captures
        asyncio.run(run())
        time.sleep(0.5)
    finally:
        td.send_signal(signal.SIGTERM)
        td.wait(10)
    for d in os.listdir(CTX):  # run-time state, not part of the context
        for junk in ("sequence.json",):
            p = os.path.join(CTX, d, junk)
            if os.path.exists(p):
                os.remove(p)
    with open(os.path.join(HERE, "oscore_values.json"), "w") as f:
        json.dump({"port": PORT, "contexts": CONTEXTS, "protected": LOG}, f, indent=1)


if __name__ == "__main__":
    main()
