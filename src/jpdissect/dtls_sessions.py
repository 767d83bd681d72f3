"""The DTLS session table: who talks DTLS with whom, how the handshake went, what it cost.

One :class:`DtlsSession` per handshake, kept on the engine (``pkt.cap.state["dtls.sessions"]``) so a
second capture read in the same process starts clean. The dissector updates it on *every* frame,
tree or not: flights, retransmissions and handshake timing are what the onboarding analysis is
about, and they are cheap next to decoding message bodies.

Keys. By default a session is keyed by its UDP endpoint pair, as Wireshark keys conversations.
A join proxy changes the addresses on the relay leg, so an outer relay dissector may name the
session itself: it sets ``pkt.scratch["dtls.session_key"]`` (any hashable, e.g. the pledge's
address and port as carried in a JPY header) before calling the ``dtls`` dissector, and may name
the two endpoints of the inner datagram with ``pkt.scratch["dtls.src"]``/``["dtls.dst"]`` when
the outer addresses do not (Thread ``c/rx``: the joiner IID and port). A record seen a second time
on a *different* leg (the same datagram before and after the proxy) is a relayed copy: shown, but
not counted again in bytes, retransmissions or flights.

Flights (RFC 6347 §4.2.4) are numbered per session from 1 in the order they appear in the capture;
a new flight starts whenever the handshake sender changes. A handshake message already seen from
the same sender on the same leg is a retransmission and keeps the number of its original flight.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: Handshake messages larger than this are not reassembled (RFC 6347 allows 2^24 - 1 bytes; real
#: handshakes stay far below, so a bigger length is damage or an attack on the dissector).
MAX_REASSEMBLY = 1 << 18
#: Messages per session whose fragment coverage is tracked (for spotting repeated fragments).
MAX_PENDING = 32
#: Sessions kept per capture before the oldest finished ones stop being tracked for lookups.
MAX_SESSIONS = 100_000
#: Record numbers remembered per session for duplicate / relayed-copy detection.
MAX_RECORD_KEYS = 4096

C2S, S2C = 0, 1  # direction: client to server, server to client

Endpoint = tuple[Any, int]


@dataclass(slots=True)
class Alert:
    frame: int
    ts_ns: int
    direction: int | None
    level: int | None          # None: the alert was encrypted
    description: int | None


@dataclass(slots=True)
class DtlsSession:
    """One DTLS handshake and the traffic protected by it."""

    index: int
    key: Hashable
    client: Endpoint | None = None
    server: Endpoint | None = None
    version: int | None = None            # negotiated (ServerHello / supported_versions)
    record_version: int | None = None     # first authoritative record version seen
    cipher_suite: int | None = None
    client_random: bytes | None = None
    server_random: bytes | None = None
    session_id: bytes | None = None
    cookie: bytes | None = None
    client_cid: bytes | None = None       # CID the client wants to receive (RFC 9146 §3)
    server_cid: bytes | None = None
    resumed: bool = False
    first_frame: int = 0
    last_frame: int = 0
    start_ns: int | None = None           # first ClientHello
    finish_ns: int | None = None          # second Finished (both sides done)
    finish_frame: int | None = None
    retransmissions: int = 0              # datagrams that only repeated earlier handshake data
    retransmitted_messages: int = 0
    alerts: list[Alert] = field(default_factory=list)
    bytes_c2s: int = 0                    # DTLS bytes (record headers included), first copies only
    bytes_s2c: int = 0
    datagrams_c2s: int = 0
    datagrams_s2c: int = 0
    flights: int = 0
    handshake_messages: int = 0
    app_records: int = 0
    legs: set[tuple[Any, Any]] = field(default_factory=set)
    # -- bookkeeping (not part of the report) --
    dirs: dict[tuple[Any, Any], int] = field(default_factory=dict, repr=False)
    flight_dir: int | None = field(default=None, repr=False)
    msg_flight: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict, repr=False)
    missing: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)  # bytes still missing
    done: dict[tuple[int, int], tuple[bytes, int]] = field(default_factory=dict, repr=False)
    records: OrderedDict[tuple[int, int, int], tuple[Any, int]] = field(default_factory=OrderedDict, repr=False)
    ccs_flight: dict[int, int] = field(default_factory=dict, repr=False)
    finished: dict[int, int] = field(default_factory=dict, repr=False)  # dir -> frame of Finished
    app_seen: set[int] = field(default_factory=set, repr=False)

    @property
    def handshake_duration_ns(self) -> int | None:
        if self.start_ns is None or self.finish_ns is None:
            return None
        return self.finish_ns - self.start_ns

    @property
    def complete(self) -> bool:
        return len(self.finished) == 2

    def as_dict(self) -> dict[str, Any]:
        """A flat row for pandas / JSON: what the session report shows."""
        from jpdissect.dissectors.dtls_names import CIPHER_SUITES, VERSIONS

        return {
            "session": self.index,
            "client": _ep_str(self.client),
            "server": _ep_str(self.server),
            "version": VERSIONS.get(self.version or -1, None) if self.version else None,
            "cipher_suite": CIPHER_SUITES.get(self.cipher_suite, f"0x{self.cipher_suite:04x}")
            if self.cipher_suite is not None else None,
            "client_random": self.client_random.hex() if self.client_random else None,
            "server_random": self.server_random.hex() if self.server_random else None,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "start_ns": self.start_ns,
            "finish_ns": self.finish_ns,
            "handshake_duration_ns": self.handshake_duration_ns,
            "complete": self.complete,
            "resumed": self.resumed,
            "flights": self.flights,
            "retransmissions": self.retransmissions,
            "retransmitted_messages": self.retransmitted_messages,
            "alerts": len(self.alerts),
            "bytes_c2s": self.bytes_c2s,
            "bytes_s2c": self.bytes_s2c,
            "datagrams_c2s": self.datagrams_c2s,
            "datagrams_s2c": self.datagrams_s2c,
        }


def _ep_str(ep: Endpoint | None) -> str | None:
    if ep is None:
        return None
    addr, port = ep
    if isinstance(addr, bytes | bytearray) and len(addr) in (4, 16):
        import ipaddress

        a = ipaddress.ip_address(bytes(addr))
        return f"[{a}]:{port}" if a.version == 6 else f"{a}:{port}"
    return f"{addr}:{port}"


# ---------------------------------------------------------------------------
# The table


class SessionTable:
    """All DTLS sessions of one capture, in order of first appearance."""

    def __init__(self) -> None:
        self.sessions: list[DtlsSession] = []
        self.by_key: dict[Hashable, DtlsSession] = {}
        self.last_frame = 0
        # (frame number, DTLS call within the frame) -> what the first dissection decided, for
        # frames dissected again (only datagrams with handshake state are kept).
        self.memo: dict[tuple[int, int], list[Any]] = {}

    def get(self, key: Hashable, frame: int) -> DtlsSession:
        s = self.by_key.get(key)
        if s is None:
            s = self.new(key, frame)
        return s

    def new(self, key: Hashable, frame: int) -> DtlsSession:
        s = DtlsSession(len(self.sessions) + 1, key, first_frame=frame, last_frame=frame)
        self.sessions.append(s)
        self.by_key[key] = s
        if len(self.by_key) > MAX_SESSIONS:  # forget the oldest keys, keep their report rows
            # in batches: popping one key per new session would rescan the dict's dead prefix
            for k in list(itertools.islice(self.by_key, len(self.by_key) - MAX_SESSIONS + MAX_SESSIONS // 8)):
                del self.by_key[k]
        return s

    def __iter__(self) -> Any:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)


def table(state: dict[str, Any]) -> SessionTable:
    """The engine's session table, created on first use."""
    t = state.get("dtls.sessions")
    if t is None:
        t = state["dtls.sessions"] = SessionTable()
    return t


def list_sessions(source: Any) -> list[DtlsSession]:
    """Sessions of an engine (or its ``state`` dict, or a capture path, dissected here)."""
    state: dict[str, Any] | None = None
    if isinstance(source, dict):
        state = source
    elif hasattr(source, "state"):
        state = source.state
    if state is not None:
        t = state.get("dtls.sessions")
        return list(t.sessions) if t is not None else []
    from jpdissect.capture import open_capture
    from jpdissect.engine import Engine

    eng = Engine(tree=False, cols=False)
    with open_capture(source) as rd:
        for fr in rd:
            eng.dissect(fr)
    return list_sessions(eng)


def session_rows(sessions: Iterable[DtlsSession]) -> list[dict[str, Any]]:
    return [s.as_dict() for s in sessions]
