"""Make discovery_aiocoap.pcap: join-proxy discovery answered by an aiocoap server, then traffic on
the discovered ports. Run by make_fixtures.sh (as root, for tcpdump).

The server's /.well-known/core answers in RFC 6690 link format with the three forms of
draft-ietf-anima-constrained-join-proxy discovery: a Registrar's JPY endpoint
(``<jpy://[::1]:7634>;rt=brski.rjp``), a Join Proxy's DTLS join port (``<coaps://[::1]:5686>;rt=brski.jp``)
and the cBRSKI resource with a ``brski-jp`` port attribute. After the answer, one datagram goes to
each discovered port, so a dissector can show that those ports decode without decode-as.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time

import aiocoap
import aiocoap.resource as resource

HERE = os.path.dirname(os.path.abspath(__file__))
PCAP = os.path.join(HERE, "discovery_aiocoap.pcap")
LINKS = (b'<jpy://[::1]:7634>;rt=brski.rjp,<coaps://[::1]:5686>;rt=brski.jp,'
         b'</.well-known/brski>;rt=brski;brski-jp=8485')
# A JPY message as in the draft's appendix: [bstr 16-byte header, bstr DTLS record] (made up content).
JPY = bytes.fromhex("8250") + bytes(range(16)) + bytes.fromhex("4d") + bytes.fromhex(
    "16fefd000000000000000000000000")[:13]
DTLS = bytes.fromhex("16fefd0000000000000000000c") + bytes(12)


class Core(resource.Resource):
    async def render_get(self, request):  # type: ignore[no-untyped-def]
        return aiocoap.Message(payload=LINKS, content_format=40)


async def run() -> None:
    site = resource.Site()
    site.add_resource([".well-known", "core"], Core())
    server = await aiocoap.Context.create_server_context(site, bind=("::1", 5683))
    client = await aiocoap.Context.create_client_context()
    r = await client.request(aiocoap.Message(code=aiocoap.GET,
                                             uri="coap://[::1]/.well-known/core?rt=brski*")).response
    assert r.payload == LINKS, r
    await client.shutdown()
    await server.shutdown()
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    for port, data in ((7634, JPY), (5686, DTLS), (8485, DTLS)):
        s.sendto(data, ("::1", port))
        time.sleep(0.05)
    s.close()


def main() -> None:
    td = subprocess.Popen(["timeout", "30", "tcpdump", "-U", "-i", "lo", "-s", "0", "-w", PCAP,
                           "udp port 5683 or udp port 7634 or udp port 5686 or udp port 8485"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)  # tcpdump needs a moment before it captures
        asyncio.run(run())
        time.sleep(0.5)
    finally:
        td.send_signal(signal.SIGTERM)
        td.wait(10)


if __name__ == "__main__":
    main()
