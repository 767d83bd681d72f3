"""Ports, limits and the run configuration shared by the lab's processes.

Every lab host is a separate process (in its own network namespace when there is one); they get one
JSON configuration file, written by the runner, and report back one ``RESULT {json}`` line when they
are told to stop. Port numbers and timing limits live here, named, once.
"""

from __future__ import annotations

import json
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jpdissect.framing.meshcop import JOINER_UDP_PORT_DEFAULT, TMF_PORT

#: RFC 7252 §6.2 default ports; the draft's default join-port is the CoAPS port.
COAP_PORT, COAPS_PORT = 5683, 5684
#: The JPY port is discovered (``rt=brski.rjp``), there is no default; the draft's example uses 7634.
JPY_PORT = 7634
#: coap-dtls has no port of its own yet (IOTOPS 2022-10: "a non-conflicting dedicated CoAP port").
COAP_DTLS_PORT = 5685
#: Where the Registrar's real DTLS servers listen, on ::1 inside the Registrar host (one per flow).
BACKEND_BASE_PORT = 30000

#: Draft §4.2: "The default timeout for clearing the state for a Pledge MUST be 30 seconds".
STATE_TIMEOUT = 30.0
#: Draft §4.2: at most 2 state tuples per pledge IP and 10 per network interface (SHOULD).
MAX_STATES_PER_PLEDGE = 2
MAX_STATES_PER_INTERFACE = 10
#: The Thread Joiner Router's RLOC16 (a router, child ID 0) and the Border Agent's.
JOINER_ROUTER_RLOC16 = 0x0400
#: Seconds a lab service may take to say READY.
READY_TIMEOUT = 15.0
#: Seconds a service may take to report after SIGTERM.
STOP_TIMEOUT = 10.0
#: Largest UDP datagram the lab's relays read.
MAX_DATAGRAM = 65535
#: Application-level retries of the pledge's CoAP request (RFC 7252 §4.8: MAX_RETRANSMIT 4).
REQUEST_RETRIES = 4
#: RFC 7252 §4.8 ACK_TIMEOUT, the first wait before the request is sent again.
REQUEST_TIMEOUT = 2.0

READY_LINE = "READY"
RESULT_PREFIX = "RESULT "


@dataclass(frozen=True)
class Ports:
    """The UDP ports of one scheme's run."""

    join: int
    registrar: int
    jp_upstream: int
    backend_base: int


_JOIN = {"thread-relay": JOINER_UDP_PORT_DEFAULT, "cojp": COAP_PORT}
_REGISTRAR = {"stateful": COAPS_PORT, "jpy": JPY_PORT, "jpy-legacy": JPY_PORT, "coap-dtls": COAP_DTLS_PORT,
              "thread-relay": TMF_PORT, "cojp": COAP_PORT}
#: Loopback mode puts all hosts on ::1, so each role needs its own port range.
LOOPBACK_JOIN, LOOPBACK_REGISTRAR, LOOPBACK_JP_UPSTREAM, LOOPBACK_BACKEND = 40000, 41000, 42000, 43000


def ports_for(scheme: str, loopback: bool) -> Ports:
    if loopback:
        idx = list(_REGISTRAR).index(scheme)
        return Ports(LOOPBACK_JOIN + idx, LOOPBACK_REGISTRAR + idx, LOOPBACK_JP_UPSTREAM + idx, LOOPBACK_BACKEND)
    # Thread TMF agents send from and listen on 61631; the other JPs use one ephemeral source port
    # (draft §4.3.2: the same source port for all pledges) or, stateful, one per pledge.
    upstream = TMF_PORT if scheme == "thread-relay" else 0
    return Ports(_JOIN.get(scheme, COAPS_PORT), _REGISTRAR[scheme], upstream, BACKEND_BASE_PORT)


@dataclass
class LabConfig:
    """Everything a lab process needs; written as JSON by the runner."""

    scheme: str
    ports: Ports
    jp_lln_addr: str
    jp_lln_ifindex: int
    jp_bb_addr: str
    registrar_addr: str
    n_pledges: int
    jp_key_hex: str
    psk_hex: str
    psk_hint: str
    keydir: str
    keylog_dir: str
    mtu: int = 0
    registrar_stack: str = "openssl"
    state_timeout: float = STATE_TIMEOUT
    max_states_per_pledge: int = MAX_STATES_PER_PLEDGE
    max_states_per_interface: int = MAX_STATES_PER_INTERFACE
    rloc16: int = JOINER_ROUTER_RLOC16
    thread_kek_hex: str = ""
    pledge_ids: list[str] = field(default_factory=list)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> LabConfig:
        d = json.loads(Path(path).read_text())
        d["ports"] = Ports(**d["ports"])
        return cls(**d)


def report(result: dict[str, object]) -> None:
    """The one line a lab process ends with; the runner parses it."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def ready() -> None:
    sys.stdout.write(READY_LINE + "\n")
    sys.stdout.flush()


def udp6(local: tuple[str, int, int, int] | None = None,
         remote: tuple[str, int] | None = None) -> socket.socket:
    """A bound (and optionally connected) IPv6 UDP socket for ``create_datagram_endpoint(sock=...)``.

    asyncio only takes 2-tuples for addresses, and a link-local bind needs the scope (4-tuple).
    """
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        s.bind(local or ("::", 0, 0, 0))
        if remote is not None:
            s.connect((remote[0], remote[1], 0, 0))
    except OSError:
        s.close()
        raise
    return s
