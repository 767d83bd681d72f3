"""A stateful join proxy stand-in for make.sh: relays one pledge's DTLS datagrams unchanged.

draft-ietf-anima-constrained-join-proxy §4.2 (stateful mode): the proxy listens on LISTEN for the
pledge and forwards each datagram from its own socket to the Registrar at UPSTREAM, and back. It
drops the server datagram number DROP (1-based, 0 = none) once, so the recording also shows real
DTLS retransmission timers at work. Stops after IDLE seconds without traffic.
Usage: python3 relay.py LISTEN_PORT UPSTREAM_PORT [DROP] [IDLE]
"""

from __future__ import annotations

import select
import socket
import sys


def main() -> None:
    listen, upstream = int(sys.argv[1]), int(sys.argv[2])
    drop = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    idle = float(sys.argv[4]) if len(sys.argv) > 4 else 4.0
    down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    down.bind(("127.0.0.1", listen))
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.bind(("127.0.0.1", 0))
    pledge = None
    from_server = 0
    while True:
        r, _, _ = select.select([down, up], [], [], idle)
        if not r:
            return
        for s in r:
            data, addr = s.recvfrom(65535)
            if s is down:
                pledge = addr
                up.sendto(data, ("127.0.0.1", upstream))
            elif pledge is not None:
                from_server += 1
                if from_server == drop:
                    continue  # lost on the constrained link: the Registrar must retransmit
                down.sendto(data, pledge)


if __name__ == "__main__":
    main()
