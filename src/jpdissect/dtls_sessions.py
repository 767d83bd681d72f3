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

Lifetime (:mod:`jpdissect.lifetime`). A Join Proxy capture starts a session for every pledge, and
what a session keeps to recognise retransmissions and relayed copies -- every record number, every
handshake message -- is several kilobytes. So a session leaves the lookup table once it is over
by capture time: idle for :data:`CLOSED_IDLE_NS` after an alert (close_notify or fatal: RFC 6347
§4.2.4.1 caps the retransmission timer at 60 s, so no copy of its last flight can still be on its
way), or idle for :data:`IDLE_NS` otherwise (an abandoned handshake, or a connection silent longer
than a NAT keeps a UDP mapping, RFC 4787 REQ-5). A later datagram on the same endpoints starts a
new session, exactly as a fresh ClientHello does. The decision is taken when the key is next
looked up, not when a sweep happens to run, so it does not depend on how often sweeps run. A
forgotten session keeps its report row (:meth:`DtlsSession.as_dict`) but drops its bookkeeping;
under the single-pass promise (``Engine(single_pass=True)``) not even the row is kept.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jpdissect.lifetime import Clock, single_pass

#: Handshake messages larger than this are not reassembled (RFC 6347 allows 2^24 - 1 bytes; real
#: handshakes stay far below, so a bigger length is damage or an attack on the dissector).
MAX_REASSEMBLY = 1 << 18
#: Messages per session whose fragment coverage is tracked (for spotting repeated fragments).
MAX_PENDING = 32
#: Sessions looked up at once; beyond this the least recently active leave the lookup table
#: (a backstop: expiry by capture time keeps the table far smaller on real captures).
MAX_SESSIONS = 100_000
#: Record numbers remembered per session for duplicate / relayed-copy detection.
MAX_RECORD_KEYS = 4096
#: Capture time a session that saw an alert stays findable after its last datagram: the longest a
#: retransmission timer may run (RFC 6347 §4.2.4.1), so late copies of its last flight still match.
CLOSED_IDLE_NS = 60 * 1_000_000_000
#: Capture time any other session stays findable after its last datagram: far beyond the
#: handshake's retransmission limit, and beyond the 5 minutes RFC 4787 REQ-5 recommends a NAT keep
#: an idle UDP mapping (a connection silent for longer has lost its path through most NATs).
IDLE_NS = 600 * 1_000_000_000

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
    # (dir, epoch, seq) -> the leg it was first seen on (an interned leg: one tuple per leg, not per record)
    records: dict[tuple[int, int, int], Any] = field(default_factory=dict, repr=False)
    ccs_flight: dict[int, int] = field(default_factory=dict, repr=False)
    finished: dict[int, int] = field(default_factory=dict, repr=False)  # dir -> frame of Finished
    app_seen: set[int] = field(default_factory=set, repr=False)
    last_ns: int = field(default=0, repr=False)  # capture time of the latest datagram (for expiry)
    # State other modules keep per session (decryption keys and transcript, by module): it lives
    # exactly as long as the session object, so a forgotten session takes it along.
    attached: dict[str, Any] = field(default_factory=dict, repr=False)
    leg_ids: dict[tuple[Any, Any], tuple[Any, Any]] = field(default_factory=dict, repr=False)

    @property
    def handshake_duration_ns(self) -> int | None:
        if self.start_ns is None or self.finish_ns is None:
            return None
        return self.finish_ns - self.start_ns

    @property
    def complete(self) -> bool:
        return len(self.finished) == 2

    def intern_leg(self, leg: tuple[Any, Any]) -> tuple[Any, Any]:
        """The session's own tuple equal to ``leg``: what per-record bookkeeping points to.

        Each datagram builds a fresh ``(src, dst)`` pair; remembering it per record would keep
        one pair of tuples and address copies alive per record, ten times the record entry.
        """
        return self.leg_ids.setdefault(leg, leg)

    def release(self) -> None:
        """Drop the bookkeeping once no later datagram can reach this session; the report stays.

        Records, handshake message bodies and flight maps only serve to recognise later copies
        and retransmissions, which the table no longer routes here. Which leg went which way
        (``dirs``, two entries) stays with the report, and so does ``attached`` (decryption
        keys): a re-dissected frame of this session still decrypts.
        """
        self.records.clear()
        self.done.clear()
        self.msg_flight.clear()
        self.missing.clear()
        self.leg_ids.clear()

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
    """All DTLS sessions of one capture, in order of first appearance.

    ``by_key`` holds the sessions a datagram can still reach (see the module notes on lifetime);
    ``sessions`` every session's report, unless ``keep`` is False (the single-pass promise), when
    only the count is kept.
    """

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.sessions: list[DtlsSession] = []
        self.count = 0
        self.by_key: dict[Hashable, DtlsSession] = {}
        self.last_frame = 0
        # (frame number, DTLS call within the frame) -> what the first dissection decided, for
        # frames dissected again (only datagrams with handshake state are kept). Without ``keep``
        # only the current frame's entries are: nothing dissects an earlier frame again.
        self.memo: dict[tuple[int, int], list[Any]] = {}
        self._memo_frame = 0
        self.clock = Clock()
        self.expired = 0  # sessions that left the lookup table (by age or the size limit)

    def lookup(self, key: Hashable, ts_ns: int) -> DtlsSession | None:
        """The session a datagram at capture time ``ts_ns`` on ``key`` belongs to, if still open.

        An expired session is dropped here, on first contact after its lifetime, so the outcome
        is the same whenever the periodic sweep runs.
        """
        clock = self.clock
        if clock.tick(ts_ns):
            self.sweep()
        s = self.by_key.get(key)
        if s is not None and self._expired(s, clock.now or 0):
            self._drop(key, s)
            return None
        return s

    def get(self, key: Hashable, frame: int, ts_ns: int = 0) -> DtlsSession:
        s = self.lookup(key, ts_ns)
        if s is None:
            s = self.new(key, frame)
        return s

    def new(self, key: Hashable, frame: int) -> DtlsSession:
        self.count += 1
        s = DtlsSession(self.count, key, first_frame=frame, last_frame=frame, last_ns=self.clock.now or 0)
        if self.keep:
            self.sessions.append(s)
        old = self.by_key.pop(key, None)
        if old is not None:  # a new handshake on the same endpoints: the old one is unreachable now
            old.release()
        self.by_key[key] = s
        if len(self.by_key) > MAX_SESSIONS:
            self._evict_least_recent()
        return s

    def remember(self, key: tuple[int, int], memo: list[Any]) -> None:
        """Keep what a datagram's first dissection decided, for dissecting its frame again."""
        if not self.keep and key[0] != self._memo_frame:
            self.memo.clear()
            self._memo_frame = key[0]
        self.memo[key] = memo

    def sweep(self) -> None:
        """Drop every expired session from the lookup table (memory only: see :meth:`lookup`)."""
        now = self.clock.now or 0
        dead = [(k, s) for k, s in self.by_key.items() if self._expired(s, now)]
        for k, s in dead:
            self._drop(k, s)

    @staticmethod
    def _expired(s: DtlsSession, now: int) -> bool:
        return now - s.last_ns > (CLOSED_IDLE_NS if s.alerts else IDLE_NS)

    def _drop(self, key: Hashable, s: DtlsSession) -> None:
        del self.by_key[key]
        s.release()
        self.expired += 1

    def _evict_least_recent(self) -> None:
        """Over :data:`MAX_SESSIONS`: drop the least recently active eighth in one go (sorting once
        per batch, not once per new session)."""
        by_age = sorted(self.by_key.items(), key=lambda kv: kv[1].last_ns)
        for k, s in by_age[: len(by_age) - MAX_SESSIONS + MAX_SESSIONS // 8]:
            self._drop(k, s)

    def __iter__(self) -> Any:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)


def table(state: dict[str, Any]) -> SessionTable:
    """The engine's session table, created on first use (keeping reports unless single-pass)."""
    t = state.get("dtls.sessions")
    if t is None:
        t = state["dtls.sessions"] = SessionTable(keep=not single_pass(state))
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
