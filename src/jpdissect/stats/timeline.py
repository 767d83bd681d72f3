"""Per-session view for the report: a compact session table and the handshake timeline.

The authoritative session table is the join-proxy issue's (:func:`jpdissect.sessions.sessions`);
this module keeps what the statistics need in the same streaming pass -- per session totals of the
paired datagrams and, for the first :data:`MAX_TIMELINE_SESSIONS` sessions, every copy's time and
what it carried (DTLS handshake messages, CoAP requests/responses), which the report draws as a
handshake timeline. Labels come from a walk over DTLS record headers (RFC 6347 §4.1, §4.2.2), a
few bytes per record, not from the DTLS dissector, so they exist whatever fields a run primes.
``handshake_duration`` runs from the pledge's first ClientHello to the server's Finished (DTLS 1.2:
the first encrypted handshake record going down) as the pledge received it; for CoJP, from the
request to the first 2.xx answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jpdissect.coapmsg import code_name
from jpdissect.stats import _arrow as A
from jpdissect.stats.relayed import DOWN, PLEDGE_LEG, RELAY_LEG, UP

#: Sessions drawn in the timeline (a plot of hundreds of rows is unreadable, and it bounds memory).
MAX_TIMELINE_SESSIONS = 12
#: Events kept per drawn session (a runaway retransmitting pledge must not fill memory).
MAX_EVENTS_PER_SESSION = 10_000
#: Records walked per datagram.
MAX_RECORDS = 64
DTLS_RECORD_HEADER = 13
CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APP = 20, 21, 22, 23
HANDSHAKE_NAMES = {0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 3: "HelloVerifyRequest",
                   4: "NewSessionTicket", 11: "Certificate", 12: "ServerKeyExchange",
                   13: "CertificateRequest", 14: "ServerHelloDone", 15: "CertificateVerify",
                   16: "ClientKeyExchange", 20: "Finished"}


def dtls_labels(data: bytes | None) -> tuple[str, bool, bool, bool]:
    """(label, starts a handshake, has application data, ends a handshake) of a datagram.

    DTLS: a ClientHello starts, application data is application data, an encrypted handshake record
    (Finished) ends. CoAP (CoJP): a request starts, requests and 2.xx responses are the
    application's data, a 2.xx response ends.
    """
    if not data:
        return "", False, False, False
    names: list[str] = []
    p = 0
    n = 0
    ch = app = fin = False
    while p + DTLS_RECORD_HEADER <= len(data) and n < MAX_RECORDS:
        ct = data[p]
        if ct < CT_CCS or ct > 26 or data[p + 1] != 0xFE:
            break
        n += 1
        epoch = (data[p + 3] << 8) | data[p + 4]
        ln = (data[p + 11] << 8) | data[p + 12]
        if ct == CT_HANDSHAKE and epoch == 0 and p + DTLS_RECORD_HEADER < len(data):
            ht = data[p + DTLS_RECORD_HEADER]
            names.append(HANDSHAKE_NAMES.get(ht, f"HS{ht}"))
            ch |= ht == 1
        elif ct == CT_HANDSHAKE:
            names.append("Finished")
            fin = True
        elif ct == CT_CCS:
            names.append("CCS")
        elif ct == CT_APP:
            names.append("AppData")
            app = True
        elif ct == CT_ALERT:
            names.append("Alert")
        p += DTLS_RECORD_HEADER + ln
    if not names:
        if data[0] >> 6 == 1 and len(data) >= 4:
            code = data[1]
            resp = code >> 5 == 2
            req = code >> 5 == 0 and code != 0
            return f"CoAP {code_name(code)}", req, req or resp, resp
        return "data", False, False, False
    out: list[str] = []
    for x in names:
        if not out or out[-1] != x:
            out.append(x)
    return "+".join(out), ch, app, fin


@dataclass
class _Sess:
    scheme: str | None = None
    pledge: str | None = None
    pledge_port: int | None = None
    first_ns: int = 0
    last_ns: int = 0
    hs_start_ns: int | None = None
    hs_end_ns: int | None = None
    app_up_ns: int | None = None
    app_down_ns: int | None = None
    up: int = 0
    down: int = 0
    paired: int = 0
    inner: int = 0
    relay: int = 0
    overhead: int = 0
    events: list[tuple[int, str, str, str, int]] = field(default_factory=list)


class Timeline:
    """Scan consumer: per-session totals and the first sessions' event timelines."""

    def __init__(self, max_sessions: int = MAX_TIMELINE_SESSIONS, capture: str = "") -> None:
        self.max_sessions = max_sessions
        self.capture = capture
        self.sessions: dict[int, _Sess] = {}
        self.drawn: set[int] = set()
        self.first_ns: int | None = None

    def frame(self, fi: Any) -> None:
        if self.first_ns is None:
            self.first_ns = fi.ts_ns

    def datagram(self, dg: Any) -> None:
        if dg.session is None:
            return
        s = self.sessions.get(dg.session)
        copies = [c for c in (dg.pledge, dg.relay) if c is not None]
        t = min(c.ts_ns for c in copies)
        if s is None:
            s = self.sessions[dg.session] = _Sess(first_ns=t, last_ns=t)
            if len(self.drawn) < self.max_sessions:
                self.drawn.add(dg.session)
        s.first_ns = min(s.first_ns, t)
        s.last_ns = max(s.last_ns, max(c.ts_ns for c in copies))
        if dg.scheme:
            s.scheme = dg.scheme
        if dg.pledge_addr:
            from jpdissect.stats.scan import addr_str

            s.pledge, s.pledge_port = addr_str(dg.pledge_addr), dg.pledge_port
        s.up += dg.direction == UP
        s.down += dg.direction == DOWN
        s.paired += dg.paired
        if dg.relay is not None and dg.framing is not None:
            s.inner += dg.framing.inner_len
            s.relay += len(dg.relay.payload or b"")
            s.overhead += dg.framing.overhead
        label, ch, app, fin = dtls_labels(dg.inner)
        if ch and s.hs_start_ns is None:
            s.hs_start_ns = t
        if fin and dg.direction == DOWN and s.hs_end_ns is None:
            s.hs_end_ns = max(c.ts_ns for c in copies)
        if app:
            if dg.direction == UP and s.app_up_ns is None:
                s.app_up_ns = t
            if dg.direction == DOWN and s.app_down_ns is None:
                s.app_down_ns = t
        if dg.session in self.drawn and len(s.events) < MAX_EVENTS_PER_SESSION:
            for c, leg in ((dg.pledge, PLEDGE_LEG), (dg.relay, RELAY_LEG)):
                if c is not None:
                    s.events.append((c.ts_ns, leg, dg.direction or "", label, c.number))

    def sessions_frame(self) -> pd.DataFrame:
        ks = sorted(self.sessions)
        ss = [self.sessions[k] for k in ks]
        t0 = self.first_ns or 0

        def hs(s: _Sess) -> float | None:
            if s.hs_start_ns is None or s.hs_end_ns is None:
                return None
            return (s.hs_end_ns - s.hs_start_ns) / 1e9

        return A.frame({
            "capture": (A.STR, [self.capture] * len(ss)),
            "session": (A.I64, ks),
            "scheme": (A.STR, [s.scheme for s in ss]),
            "pledge": (A.STR, [s.pledge for s in ss]),
            "pledge_port": (A.I32, [s.pledge_port for s in ss]),
            "start": (A.F64, [(s.first_ns - t0) / 1e9 for s in ss]),
            "duration": (A.F64, [(s.last_ns - s.first_ns) / 1e9 for s in ss]),
            "datagrams_up": (A.I64, [s.up for s in ss]),
            "datagrams_down": (A.I64, [s.down for s in ss]),
            "paired": (A.I64, [s.paired for s in ss]),
            "inner_bytes": (A.I64, [s.inner for s in ss]),
            "relay_bytes": (A.I64, [s.relay for s in ss]),
            "overhead_bytes": (A.I64, [s.overhead for s in ss]),
            "handshake_duration": (A.F64, [hs(s) for s in ss]),
            "app_data_both_ways": (A.BOOL, [s.app_up_ns is not None and s.app_down_ns is not None for s in ss]),
        })

    def events_frame(self) -> pd.DataFrame:
        rows: list[tuple[int, int, str, str, str, int]] = []
        t0 = self.first_ns or 0
        for k in sorted(self.drawn):
            for ts, leg, d, label, num in self.sessions[k].events:
                rows.append((k, ts - t0, leg, d, label, num))
        rows.sort(key=lambda r: (r[0], r[1], r[5]))
        return A.frame({
            "session": (A.I64, [r[0] for r in rows]),
            "time": (A.F64, [r[1] / 1e9 for r in rows]),
            "leg": (A.STR, [r[2] for r in rows]),
            "direction": (A.STR, [r[3] for r in rows]),
            "label": (A.STR, [r[4] for r in rows]),
            "frame": (A.U32, [r[5] for r in rows]),
        })


__all__ = ["MAX_TIMELINE_SESSIONS", "Timeline", "dtls_labels"]
