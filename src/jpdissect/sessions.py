"""Pledge sessions across both hops of a Join Proxy: pairing, reconstruction, the session table.

A Join Proxy (JP) turns one pledge's onboarding into two conversations: the pledge's own datagrams on
the link-local hop (the *pledge leg*) and the relayed copies on the JP <-> Registrar hop (the
*registrar leg*), re-addressed (``stateful``) or wrapped (``jpy``, ``jpy-legacy``, ``coap-dtls``,
``thread-relay``, ``cojp``). Nothing on the wire links the two legs directly, so this module does
what an analyst does by eye:

* **Twins.** Every relayed datagram is seen twice: the copy the JP received (*ingress*) and the one
  it sent (*egress*). The inner bytes are identical (the JPY content, the TLV 17 value, the CoAP
  payload), so a copy is paired with the latest unpaired earlier copy of the same bytes on another
  conversation within :data:`PAIR_WINDOW_NS` (the JP forwards in milliseconds, a DTLS retransmission
  comes a second later: the latest copy is the right one even when the JP dropped an earlier one).
* **Conversations.** The copies of one pledge on one leg belong together: a plain UDP flow (pledge
  leg, or a stateful JP's per-pledge port towards the Registrar), or relay messages carrying the same
  JP state (the JPY header, the token, the joiner IID and port) -- the state the JP gets echoed back.
  A ClientHello with a new random starts a new attempt.
* **Sessions** are the connected components of twins and conversations (union-find), numbered in
  order of their first frame.

:class:`Tracker` does this online, frame by frame (the jp dissector feeds it one :class:`Obs` per
relevant frame). Because ``jp.peer_frame`` of an ingress copy needs look-ahead, :func:`prepare_two_pass`
runs a first pass over the file, like ``tshark -2``, and gives the second (normal) pass the final
:class:`SessionTable` through the engine state.

The handshake facts come from a walk over DTLS record headers (:func:`dtls_facts`): content type,
epoch, handshake type -- the few bytes the statistics need in every mode, whatever fields are primed.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from jpdissect.capture import CaptureReader
    from jpdissect.engine import Engine

# ---------------------------------------------------------------------------
# Limits and defaults (named, per the project's rules)

#: Most time between the two copies of one relayed datagram (JP forwarding delay). The JP's delay is
#: milliseconds even over a fragmenting 6LoWPAN mesh; DTLS retransmits after >= 1 s (RFC 6347 §4.2.4.1).
PAIR_WINDOW_NS = 2_000_000_000
#: A session without a completed handshake whose last datagram is older than this at the end of the
#: capture is "abandoned"; younger ones are "in progress". RFC 6347 §4.2.4.1 lets the retransmission
#: timer grow to 60 s, so a quieter pledge may still be waiting.
ABANDON_NS = 60_000_000_000
#: DTLS records walked per datagram (RFC 6347 §4.1.1: a datagram may carry several).
MAX_DTLS_RECORDS = 64
#: Handshake messages walked per record.
MAX_HS_PER_RECORD = 64
#: Unpaired copies remembered per inner-datagram digest.
MAX_UNPAIRED_PER_DIGEST = 64
#: How often (in observations) stale unpaired copies are swept out.
SWEEP_EVERY = 4096
#: RFC 6347 §4.1 record header and §4.2.2 handshake header.
DTLS_RECORD_HEADER = 13
DTLS_HS_HEADER = 12
#: ClientHello body: client_version(2) + random(32) (RFC 6347 §4.2.1).
CH_RANDOM_OFFSET, CH_RANDOM_LEN = 2, 32

# Observation kinds
PLAIN = 0          # a DTLS datagram directly on UDP (pledge leg; or a stateful JP's Registrar leg)
RELAY = 1          # a relay framing around a DTLS datagram (jpy, jpy-legacy, coap-dtls, thread-relay)
COJP_PLEDGE = 2    # RFC 9031 CoJP on the pledge leg (the pledge's proxy request / its answer)
COJP_RELAY = 3     # RFC 9031 CoJP relayed by a stateless proxy (JP state in the token)
EVENT = 4          # a join step outside the relayed handshake (Thread JOIN_ENT to the joiner)

LEG_PLEDGE, LEG_REGISTRAR = "pledge", "registrar"
UP, DOWN = "up", "down"
INGRESS, EGRESS = "ingress", "egress"
SCHEMES = ("stateful", "jpy", "jpy-legacy", "coap-dtls", "thread-relay", "cojp")

# DTLS facts (bits)
F_CH = 1 << 0        # ClientHello
F_HVR = 1 << 1       # HelloVerifyRequest
F_SH = 1 << 2        # ServerHello
F_FIN = 1 << 3       # a handshake record in epoch >= 1: Finished in DTLS 1.2
F_CCS = 1 << 4
F_ALERT = 1 << 5
F_APP = 1 << 6
F_ENC13 = 1 << 7     # a DTLS 1.3 unified-header record (RFC 9147 §4)
F_FATAL = 1 << 8     # a plaintext fatal alert
F_DTLS = 1 << 9      # at least one record header parsed

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APP, CT_CID = 20, 21, 22, 23, 25
HT_CLIENT_HELLO, HT_SERVER_HELLO, HT_HVR = 1, 2, 3
ALERT_FATAL = 2

STATE_TRACKER = "jp.tracker"
STATE_TABLE = "jp.table"

Endpoint = tuple[bytes, int]
FlowKey = tuple[Endpoint, Endpoint]


# ---------------------------------------------------------------------------
# DTLS record facts


@dataclass(frozen=True, slots=True)
class DtlsFacts:
    """What the session statistics need from one DTLS datagram."""

    flags: int = 0
    random: bytes | None = None            # the ClientHello random (first fragment only)
    keys: tuple[tuple[int, ...], ...] = ()  # handshake pieces, for retransmission detection
    alert: tuple[int, int] | None = None   # (level, description) of a plaintext alert


def dtls_facts(buf: bytes, off: int, end: int) -> DtlsFacts:
    """Walk the record headers of one datagram (RFC 6347 §4.1, §4.2.2); never raises.

    Only types, epochs, lengths and handshake headers are read: the DTLS dissector shows the
    records, this only feeds the session statistics (handshake start and end, retransmissions,
    alerts) so that they do not depend on which fields a run happens to prime.
    """
    flags = 0
    rnd: bytes | None = None
    keys: list[tuple[int, ...]] = []
    alert: tuple[int, int] | None = None
    p = off
    n = 0
    while p + DTLS_RECORD_HEADER <= end and n < MAX_DTLS_RECORDS:
        ct = buf[p]
        n += 1
        if ct & 0xE0 == 0x20:  # RFC 9147 §4: unified header, encrypted; stop walking
            flags |= F_ENC13 | F_DTLS
            break
        if ct < CT_CCS or ct > 26 or buf[p + 1] != 0xFE or ct == CT_CID:
            break  # not a plaintext record header (CID lengths are unknown here)
        flags |= F_DTLS
        epoch = (buf[p + 3] << 8) | buf[p + 4]
        ln = (buf[p + 11] << 8) | buf[p + 12]
        body = p + DTLS_RECORD_HEADER
        rend = min(end, body + ln)
        if ct == CT_HANDSHAKE:
            if epoch == 0:
                q = body
                m = 0
                while q + DTLS_HS_HEADER <= rend and m < MAX_HS_PER_RECORD:
                    mt = buf[q]
                    mseq = (buf[q + 4] << 8) | buf[q + 5]
                    foff = int.from_bytes(buf[q + 6:q + 9], "big")
                    flen = int.from_bytes(buf[q + 9:q + 12], "big")
                    keys.append((0, mt, mseq, foff))
                    if mt == HT_CLIENT_HELLO:
                        flags |= F_CH
                        r0 = q + DTLS_HS_HEADER + CH_RANDOM_OFFSET
                        if foff == 0 and r0 + CH_RANDOM_LEN <= rend:
                            rnd = bytes(buf[r0:r0 + CH_RANDOM_LEN])
                    elif mt == HT_HVR:
                        flags |= F_HVR
                    elif mt == HT_SERVER_HELLO:
                        flags |= F_SH
                    q += DTLS_HS_HEADER + flen
                    m += 1
            else:
                flags |= F_FIN
                keys.append((1, epoch))
        elif ct == CT_CCS:
            flags |= F_CCS
            keys.append((2, epoch))
        elif ct == CT_ALERT:
            flags |= F_ALERT
            if epoch == 0 and ln == 2 and body + 2 <= end:
                alert = (buf[body], buf[body + 1])
                if buf[body] == ALERT_FATAL:
                    flags |= F_FATAL
        elif ct == CT_APP:
            flags |= F_APP
        p = body + ln
    return DtlsFacts(flags, rnd, tuple(keys), alert)


# ---------------------------------------------------------------------------
# Observations: what the jp dissector tells the tracker about one frame


@dataclass(slots=True)
class Obs:
    """One frame that carries (a copy of) a relayed datagram."""

    frame: int
    ts: int
    kind: int
    src: Endpoint
    dst: Endpoint
    udp_len: int
    inner_len: int
    digest: int
    scheme: str | None = None       # known from the framing (relay kinds)
    direction: str | None = None    # known from the framing (c/rx, request/response)
    state: bytes | None = None      # the JP state carried on the registrar leg
    pledge: Endpoint | None = None  # the pledge named by the framing (legacy JPY, Thread, key)
    facts: DtlsFacts = field(default_factory=DtlsFacts)
    code: int = 0                   # CoAP code (CoJP)
    joiner_leg: bool = False        # plain DTLS on a Thread Joiner Router's joiner port
    kek: bytes | None = None        # Thread: Joiner Router KEK in this c/tx
    event: str | None = None        # EVENT: what happened (e.g. "JOIN_ENT")
    conv: Any = None                # the conversation (per leg) the tracker put it in
    idx: int = -1
    peer: int = -1                  # index of the twin observation


def flow_key(src: Endpoint, dst: Endpoint) -> FlowKey:
    return (src, dst) if src <= dst else (dst, src)


def ep_str(ep: Endpoint | None) -> str | None:
    """``[fe80::1]:5684`` / ``192.0.2.1:5683``; other address forms as hex."""
    if ep is None:
        return None
    addr, port = ep
    if len(addr) == 16:
        return f"[{ipaddress.IPv6Address(addr)}]:{port}"
    if len(addr) == 4:
        return f"{ipaddress.IPv4Address(addr)}:{port}"
    return f"{addr.hex() or '?'}:{port}"


def addr_str(ep: Endpoint | None) -> str | None:
    if ep is None:
        return None
    addr = ep[0]
    if len(addr) == 16:
        return str(ipaddress.IPv6Address(addr))
    if len(addr) == 4:
        return str(ipaddress.IPv4Address(addr))
    return addr.hex() or None


def _link_local(addr: bytes) -> bool:
    return (len(addr) == 16 and addr[0] == 0xFE and addr[1] & 0xC0 == 0x80) or (
        len(addr) == 4 and addr[0] == 169 and addr[1] == 254)


def _compatible(a: int, b: int) -> bool:
    """Which kinds can be the two copies of one datagram."""
    if a == PLAIN:
        return b in (PLAIN, RELAY)
    if a == RELAY:
        return b == PLAIN
    return {a, b} == {COJP_PLEDGE, COJP_RELAY}


# ---------------------------------------------------------------------------
# Per-frame result


@dataclass(slots=True)
class FrameInfo:
    """What the jp layer shows on one frame."""

    session: int | None
    scheme: str | None
    leg: str | None
    direction: str | None
    copy: str | None
    peer: int | None
    delay_ns: int | None
    inner_len: int | None
    overhead: int | None
    state: bytes | None
    pledge: str | None
    final: bool = False


# ---------------------------------------------------------------------------
# The online tracker


@dataclass(slots=True)
class _Flow:
    client: Endpoint | None = None
    votes: Counter[str] = field(default_factory=Counter)       # leg votes from pairs
    schemes: Counter[str] = field(default_factory=Counter)     # scheme votes from pairs
    joiner: bool = False


@dataclass(slots=True)
class _Conv:
    anchor: int
    random: bytes | None = None


class Tracker:
    """Pairs copies and groups conversations as frames arrive; :meth:`finish` makes the table."""

    def __init__(self, window_ns: int = PAIR_WINDOW_NS, abandon_ns: int = ABANDON_NS) -> None:
        self.window = window_ns
        self.abandon = abandon_ns
        self.obs: list[Obs] = []
        self.parent: list[int] = []
        self.flows: dict[FlowKey, _Flow] = {}
        self.convs: dict[Any, _Conv] = {}
        self.unpaired: dict[int, list[int]] = {}
        self.by_frame: dict[int, int] = {}
        self.events: list[Obs] = []
        self.assoc: dict[Any, Any] = {}   # conversation -> its twin conversation on the other leg
        self.first_ts: int | None = None
        self.last_ts = 0
        self._numbers: dict[int, int] = {}
        self._eps: dict[Endpoint, Endpoint] = {}

    # -- union-find ------------------------------------------------------------
    def _find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            # The earlier observation stays the root: session numbers follow first frames.
            if ra < rb:
                self.parent[rb] = ra
            else:
                self.parent[ra] = rb

    # -- feeding ---------------------------------------------------------------
    def add(self, o: Obs) -> Obs:
        """Record one observation; returns the one kept for its frame (for :meth:`info`)."""
        if o.kind == EVENT:
            self._event(o)
            return o
        prev = self.by_frame.get(o.frame)
        if prev is not None:  # the same frame dissected again: nothing new to learn
            return self.obs[prev]
        idx = len(self.obs)
        o.idx = idx
        # One tuple per endpoint, not per frame: the tracker keeps every observation until finish().
        eps = self._eps
        o.src = eps.setdefault(o.src, o.src)
        o.dst = eps.setdefault(o.dst, o.dst)
        self.obs.append(o)
        self.parent.append(idx)
        self.by_frame[o.frame] = idx
        if self.first_ts is None:
            self.first_ts = o.ts
        self.last_ts = max(self.last_ts, o.ts)
        fk = flow_key(o.src, o.dst)
        fl = self.flows.get(fk)
        if fl is None:
            fl = self.flows[fk] = _Flow()
        if o.joiner_leg:
            fl.joiner = True
        if fl.client is None:
            f = o.facts.flags
            if f & F_CH:
                fl.client = o.src
            elif f & (F_HVR | F_SH):
                fl.client = o.dst
            elif o.direction is not None:
                fl.client = o.src if o.direction == UP else o.dst
        self._group(o, fk)
        twin = self._pair(o, fk)
        if twin is not None:
            o.peer, twin.peer = twin.idx, idx
            self._union(idx, twin.idx)
            self._vote(twin, o)
        if idx % SWEEP_EVERY == SWEEP_EVERY - 1:
            self._sweep(o.ts)
        return o

    def _event(self, o: Obs) -> None:
        """Events join the latest session of the pledge they are addressed to (at :meth:`finish`)."""
        if not any(e.frame == o.frame for e in self.events[-4:]):
            self.events.append(o)
        self.last_ts = max(self.last_ts, o.ts)

    def _conv_key(self, o: Obs, fk: FlowKey) -> Any:
        if o.kind == RELAY:
            return ("relay", o.scheme, o.state if o.state is not None else ("frame", o.idx))
        if o.kind == COJP_RELAY:
            return ("cojp", cojp_state(o.state))
        return ("flow", fk)

    def _group(self, o: Obs, fk: FlowKey) -> None:
        key = o.conv = self._conv_key(o, fk)
        conv = self.convs.get(key)
        rnd = o.facts.random
        if conv is None or (rnd is not None and conv.random is not None and rnd != conv.random):
            # RFC 6347 §4.2.1: a ClientHello with a new random is a new handshake (a retransmission
            # or the post-HelloVerifyRequest ClientHello repeats the random).
            self.convs[key] = _Conv(o.idx, rnd)
            return
        if conv.random is None:
            conv.random = rnd
        self._union(o.idx, conv.anchor)

    def _pair(self, o: Obs, fk: FlowKey) -> Obs | None:
        lst = self.unpaired.get(o.digest)
        best: Obs | None = None
        if lst:
            keep: list[int] = []
            for i in lst:
                c = self.obs[i]
                if c.peer < 0 and o.ts - c.ts <= self.window:
                    keep.append(i)
            for j in range(len(keep) - 1, -1, -1):
                c = self.obs[keep[j]]
                if _compatible(c.kind, o.kind) and flow_key(c.src, c.dst) != fk and self._consistent(c, o):
                    best = c
                    del keep[j]
                    break
            if keep:
                self.unpaired[o.digest] = keep
            else:
                del self.unpaired[o.digest]
        if best is not None:
            self.assoc.setdefault(o.conv, best.conv)
            self.assoc.setdefault(best.conv, o.conv)
        else:
            lst = self.unpaired.setdefault(o.digest, [])
            lst.append(o.idx)
            if len(lst) > MAX_UNPAIRED_PER_DIGEST:
                del lst[0]
        return best

    def _consistent(self, a: Obs, b: Obs) -> bool:
        """Whether two copies can be twins given what is known of their pledges.

        Identical bytes do reach two pledges at once (two Registrar processes sending the same
        alert, a deterministic cookie): the pledge a relay framing names must be an endpoint of the
        plain flow, and conversations already paired stay paired with each other.
        """
        # The two copies travel on the JP's two interfaces: no endpoint in common (two pledges talking
        # to the same join-port can receive the same bytes at once, e.g. a deterministic cookie).
        if a.src in (b.src, b.dst) or a.dst in (b.src, b.dst):
            return False
        for r, p in ((a, b), (b, a)):
            if r.pledge is not None and p.kind in (PLAIN, COJP_PLEDGE) and r.pledge not in (p.src, p.dst):
                return False
        # Both directions can carry the same bytes (a lone ChangeCipherSpec record, epoch 0 and the
        # same sequence number from each side): twins travel the same way.
        da, db = self._direction(a), self._direction(b)
        if da is not None and db is not None and da != db:
            return False
        pa, pb = self.assoc.get(a.conv), self.assoc.get(b.conv)
        return (pa is None or pa == b.conv) and (pb is None or pb == a.conv)

    def _sweep(self, now: int) -> None:
        stale = [d for d, lst in self.unpaired.items() if now - self.obs[lst[-1]].ts > self.window]
        for d in stale:
            del self.unpaired[d]

    def _direction(self, o: Obs) -> str | None:
        if o.direction is not None:
            return o.direction
        fl = self.flows.get(flow_key(o.src, o.dst))
        if fl is not None and fl.client is not None:
            return UP if o.src == fl.client else DOWN
        # Without a ClientHello: the CoAPS port is the server side (RFC 7252 §12.8).
        if o.dst[1] == 5684 and o.src[1] != 5684:
            return UP
        if o.src[1] == 5684 and o.dst[1] != 5684:
            return DOWN
        return None

    def _vote(self, x: Obs, y: Obs) -> None:
        """A pair teaches which leg a plain flow is and which scheme it belongs to."""
        fx = self.flows[flow_key(x.src, x.dst)]
        fy = self.flows[flow_key(y.src, y.dst)]
        if x.kind == PLAIN and y.kind == RELAY and y.scheme:
            fx.votes[LEG_PLEDGE] += 1
            fx.schemes[y.scheme] += 1
        elif y.kind == PLAIN and x.kind == RELAY and x.scheme:
            fy.votes[LEG_PLEDGE] += 1
            fy.schemes[x.scheme] += 1
        elif x.kind == PLAIN and y.kind == PLAIN:
            # x is the earlier copy, the one the JP received: up on the pledge leg, down on the other.
            d = self._direction(x)
            if d is None:
                return
            first, second = (LEG_PLEDGE, LEG_REGISTRAR) if d == UP else (LEG_REGISTRAR, LEG_PLEDGE)
            fx.votes[first] += 1
            fy.votes[second] += 1
            fx.schemes["stateful"] += 1
            fy.schemes["stateful"] += 1

    # -- reading ---------------------------------------------------------------
    def _leg(self, o: Obs, relay_in_component: bool | None = None) -> str | None:
        if o.kind in (RELAY, COJP_RELAY):
            return LEG_REGISTRAR
        if o.kind == COJP_PLEDGE:
            return LEG_PLEDGE
        fl = self.flows[flow_key(o.src, o.dst)]
        if fl.votes:
            return fl.votes.most_common(1)[0][0]
        if relay_in_component or fl.joiner:
            return LEG_PLEDGE
        if relay_in_component is None:
            return None
        client = fl.client or o.src
        return LEG_PLEDGE if _link_local(client[0]) else LEG_REGISTRAR

    def _scheme(self, o: Obs) -> str | None:
        if o.scheme:
            return o.scheme
        if o.kind in (COJP_PLEDGE, COJP_RELAY):
            return "cojp"
        fl = self.flows[flow_key(o.src, o.dst)]
        if fl.schemes:
            return fl.schemes.most_common(1)[0][0]
        if fl.joiner:
            return "thread-relay"
        return None

    def info(self, o: Obs) -> FrameInfo:
        """The provisional view of a frame during a single pass."""
        if o.kind == EVENT:
            return FrameInfo(None, o.scheme, LEG_PLEDGE, o.direction, None, None, None, None, None, None,
                             ep_str(o.pledge))
        root = self._find(o.idx)
        num = self._numbers.setdefault(root, len(self._numbers) + 1)
        leg = self._leg(o, False)  # a plain flow not yet paired: link-local client = the pledge leg
        d = self._direction(o)
        peer = self.obs[o.peer] if o.peer >= 0 else None
        inner = o.inner_len
        if o.kind == COJP_RELAY:
            inner = peer.udp_len if peer is not None else -1
        return FrameInfo(
            session=num, scheme=self._scheme(o), leg=leg, direction=d, copy=_copy(leg, d),
            peer=peer.frame if peer is not None else None,
            delay_ns=abs(o.ts - peer.ts) if peer is not None else None,
            inner_len=inner if inner >= 0 else None,
            overhead=o.udp_len - inner if inner >= 0 else None,
            state=o.state, pledge=ep_str(o.pledge),
        )

    # -- the end ---------------------------------------------------------------
    def finish(self, capture_end_ns: int | None = None) -> SessionTable:
        """Build the final sessions (numbered by first frame) and the per-frame map."""
        end = self.last_ts if capture_end_ns is None else capture_end_ns
        comps: dict[int, list[int]] = {}
        for i in range(len(self.obs)):
            comps.setdefault(self._find(i), []).append(i)
        order = sorted(comps.values(), key=lambda m: self.obs[m[0]].frame)
        table = SessionTable(capture_end_ns=end)
        for num, members in enumerate(order, 1):
            sess = self._build(num, [self.obs[i] for i in members], end)
            table.sessions.append(sess)
        for ev in self.events:
            self._attach(table, ev)
        return table

    def _attach(self, table: SessionTable, ev: Obs) -> None:
        """An event belongs to the latest session of its pledge address that began before it."""
        best: Session | None = None
        for s in table.sessions:
            if s.pledge is not None and ev.pledge is not None and s.pledge[0] == ev.pledge[0] \
                    and s.first_ns <= ev.ts and (best is None or s.first_ns >= best.first_ns):
                best = s
        if best is None:
            return
        best.events.append((ev.event or "event", ev.frame))
        best.frames[ev.frame] = FrameInfo(best.index, best.scheme, LEG_PLEDGE, ev.direction, None, None, None,
                                          None, None, None, ep_str(best.pledge), final=True)

    def _build(self, num: int, obs: list[Obs], end: int) -> Session:
        relayed = any(o.kind in (RELAY, COJP_RELAY) for o in obs)
        s = Session(num)
        s.first_frame, s.last_frame = obs[0].frame, obs[-1].frame
        s.first_ns, s.last_ns = obs[0].ts, obs[-1].ts
        schemes = Counter(sc for sc in (self._scheme(o) for o in obs) if sc)
        s.scheme = schemes.most_common(1)[0][0] if schemes else None
        seen_keys: dict[tuple[str, str], set[tuple[int, ...]]] = {}
        seen_digests: dict[tuple[str, str], set[int]] = {}
        retrans: Counter[tuple[str, str]] = Counter()
        ch_first: Obs | None = None
        fin: dict[str, list[Obs]] = {UP: [], DOWN: []}
        ok_resp: list[Obs] = []
        app: dict[str, list[int]] = {UP: [], DOWN: []}
        err_resp = 0
        delays: dict[str, list[int]] = {UP: [], DOWN: []}
        infos: list[tuple[Obs, str | None, str | None]] = []
        for o in obs:
            leg = self._leg(o, relayed)
            d = self._direction(o)
            infos.append((o, leg, d))
            if leg is None or d is None:
                continue
            c = s.counts.setdefault(f"{d}_{leg}", [0, 0, 0])
            c[0] += 1
            c[1] += o.udp_len
            inner = o.inner_len
            if o.kind == COJP_RELAY:
                inner = self.obs[o.peer].udp_len if o.peer >= 0 else -1
            if inner >= 0:
                c[2] += inner
            if leg == LEG_PLEDGE and s.pledge is None:
                fl = self.flows[flow_key(o.src, o.dst)]
                cl = fl.client or (o.src if d == UP else o.dst)
                s.pledge = cl
                s.jp_pledge_side = o.dst if cl == o.src else o.src
            if leg == LEG_REGISTRAR and s.registrar is None:
                s.registrar = o.dst if d == UP else o.src
                s.jp_registrar_side = o.src if d == UP else o.dst
            if o.state is not None and s.state is None:
                s.state = o.state
            if o.pledge is not None and s.named_pledge is None:
                s.named_pledge = o.pledge
            if o.kek is not None:
                s.kek = o.kek
            f = o.facts
            if f.flags & F_CH and (ch_first is None or o.ts < ch_first.ts):
                ch_first = o
            if f.flags & F_FIN:
                fin[d].append(o)
            if f.flags & F_APP:
                app[d].append(o.ts)
            if f.flags & F_ALERT:
                s.alerts += 1
                if s.alert is None and f.alert is not None:
                    s.alert = f.alert
                if s.first_alert_ns is None:
                    s.first_alert_ns = o.ts
            if f.random is not None and s.client_random is None:
                s.client_random = f.random
            if o.kind in (COJP_PLEDGE, COJP_RELAY):
                if ch_first is None and 0 < o.code < 32:
                    ch_first = o
                if d == DOWN and 64 <= o.code < 96:
                    ok_resp.append(o)
                elif d == DOWN and o.code >= 128:
                    err_resp += 1
            # Retransmissions: per leg and direction, a datagram that repeats handshake pieces (DTLS
            # retransmits whole flights with new record numbers) or bytes (a CoAP CON) already sent.
            k = (leg, d)
            keys = seen_keys.setdefault(k, set())
            digs = seen_digests.setdefault(k, set())
            if o.digest in digs or (f.keys and all(x in keys for x in f.keys)):
                retrans[k] += 1
            keys.update(f.keys)
            digs.add(o.digest)
            if o.peer >= 0:
                p = self.obs[o.peer]
                if o.ts <= p.ts and o.idx < p.idx:
                    delays[d].append(p.ts - o.ts)
                    s.pairs += 1
        s.legs = {leg for _o, leg, _d in infos if leg}
        # Unforwarded: ingress copies without a twin although the other leg was captured.
        if len(s.legs) == 2:
            s.unpaired = sum(1 for o, leg, d in infos if o.peer < 0 and _copy(leg, d) == INGRESS)
        # Retransmissions counted where the JP received them: up on the pledge leg, down on the
        # registrar leg (the egress copies repeat them); the other leg when that one is missing.
        for d, ingress_leg, other in ((UP, LEG_PLEDGE, LEG_REGISTRAR), (DOWN, LEG_REGISTRAR, LEG_PLEDGE)):
            n = retrans[(ingress_leg, d)] if ingress_leg in s.legs else retrans[(other, d)]
            setattr(s, f"retransmissions_{d}", n)
        for d in (UP, DOWN):
            if delays[d]:
                setattr(s, f"delay_{d}", delays[d])
        # Handshake: the first ClientHello (any leg) to the last Finished (RFC 6347 §4.2.4 flights:
        # in a full handshake the server's Finished ends it, in an abbreviated one the client's).
        if ch_first is not None:
            s.hs_start_ns, s.hs_start_frame = ch_first.ts, ch_first.frame
        if s.scheme == "cojp":
            s.completed = bool(ok_resp)
            last = max(ok_resp, key=lambda o: o.ts) if ok_resp else None
            s.errors = err_resp
        else:
            s.finished_seen = bool(fin[UP]) and bool(fin[DOWN])
            s.completed = s.finished_seen
            last = None
            if s.finished_seen:
                srv_first = min(o.ts for o in fin[DOWN])
                cli_first = min(o.ts for o in fin[UP])
                full = srv_first >= cli_first  # full handshake: the server's Finished comes last
                closing, opening = (fin[DOWN], fin[UP]) if full else (fin[UP], fin[DOWN])
                last = max(closing, key=lambda o: (o.ts, o.frame))
                # RFC 6347 §4.2.4: a peer that retransmits its Finished flight after the other's
                # Finished went out did not receive it. Seen on the JP's egress, the copy may still have
                # been lost on the radio hop; then only that peer's application data proves it arrived.
                first_close = min(o.ts for o in closing)
                late = [o.ts for o in opening if o.ts > first_close]
                if late:
                    waiting = UP if full else DOWN
                    s.completed = any(t > max(late) for t in app[waiting])
        if last is not None:
            s.hs_end_ns, s.hs_end_frame = last.ts, last.frame
        if s.completed:
            s.outcome = "completed"
        elif s.alerts:
            s.outcome = "alert"
        elif err_resp:
            s.outcome = "error"
        elif end - s.last_ns > self.abandon:
            s.outcome = "abandoned"
        else:
            s.outcome = "in progress"
        if s.pledge is None and s.named_pledge is not None:
            s.pledge = s.named_pledge
        # The per-frame view, final.
        pledge_s = ep_str(s.pledge)
        for o, leg, d in infos:
            peer = self.obs[o.peer] if o.peer >= 0 else None
            inner = o.inner_len
            if o.kind == COJP_RELAY:
                inner = peer.udp_len if peer is not None else -1
            s.frames[o.frame] = FrameInfo(
                session=s.index, scheme=s.scheme, leg=leg, direction=d, copy=_copy(leg, d),
                peer=peer.frame if peer is not None else None,
                delay_ns=abs(o.ts - peer.ts) if peer is not None else None,
                inner_len=inner if inner >= 0 else None,
                overhead=o.udp_len - inner if inner >= 0 else None,
                state=o.state, pledge=pledge_s, final=True,
            )
        return s


def _copy(leg: str | None, d: str | None) -> str | None:
    """Which copy a frame is, from the JP's point of view."""
    if leg is None or d is None:
        return None
    return INGRESS if (leg == LEG_PLEDGE) == (d == UP) else EGRESS


def cojp_state(token: bytes | None) -> bytes | None:
    """The JP's part of a relayed CoJP token: RFC 8974 §3 puts the proxy state first and the
    origin's token after it; the origin token is at most 8 bytes (RFC 7252), and the draft's example
    state is one 16-byte block, so a token of >= 16 bytes is split there."""
    if token is None:
        return None
    return token[:16] if len(token) >= 16 else token


# ---------------------------------------------------------------------------
# The result


@dataclass(slots=True)
class Session:
    """One pledge's onboarding through a JP, over both legs."""

    index: int
    scheme: str | None = None
    pledge: Endpoint | None = None
    named_pledge: Endpoint | None = None   # as the relay framing names it (legacy JPY, Thread, key)
    jp_pledge_side: Endpoint | None = None
    jp_registrar_side: Endpoint | None = None
    registrar: Endpoint | None = None
    state: bytes | None = None
    legs: set[str] = field(default_factory=set)
    first_frame: int = 0
    last_frame: int = 0
    first_ns: int = 0
    last_ns: int = 0
    hs_start_ns: int | None = None
    hs_start_frame: int | None = None
    hs_end_ns: int | None = None
    hs_end_frame: int | None = None
    completed: bool = False
    finished_seen: bool = False     # both Finished messages went over the wire (maybe not arrived)
    outcome: str = "in progress"
    counts: dict[str, list[int]] = field(default_factory=dict)   # "up_pledge" -> [datagrams, bytes, inner]
    pairs: int = 0
    unpaired: int = 0
    delay_up: list[int] = field(default_factory=list)
    delay_down: list[int] = field(default_factory=list)
    retransmissions_up: int = 0
    retransmissions_down: int = 0
    alerts: int = 0
    alert: tuple[int, int] | None = None
    first_alert_ns: int | None = None
    errors: int = 0
    client_random: bytes | None = None
    kek: bytes | None = None
    events: list[tuple[str, int]] = field(default_factory=list)   # (what, frame), e.g. JOIN_ENT
    frames: dict[int, FrameInfo] = field(default_factory=dict)

    @property
    def handshake_duration_ns(self) -> int | None:
        if self.hs_start_ns is None or self.hs_end_ns is None:
            return None
        return self.hs_end_ns - self.hs_start_ns

    def _count(self, key: str, i: int) -> int:
        c = self.counts.get(key)
        return c[i] if c is not None else 0

    def as_dict(self) -> dict[str, Any]:
        """One flat row: what the session table, CSV, JSON and the DataFrame show."""
        dur = self.handshake_duration_ns
        row: dict[str, Any] = {
            "session": self.index,
            "scheme": self.scheme,
            "pledge": addr_str(self.pledge),
            "pledge_port": self.pledge[1] if self.pledge else None,
            "jp_pledge_side": ep_str(self.jp_pledge_side),
            "jp_registrar_side": ep_str(self.jp_registrar_side),
            "registrar": ep_str(self.registrar),
            "state": self.state.hex() if self.state else None,
            "pledge_leg": "captured" if LEG_PLEDGE in self.legs else "not captured",
            "registrar_leg": "captured" if LEG_REGISTRAR in self.legs else "not captured",
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "handshake_start_frame": self.hs_start_frame,
            "handshake_end_frame": self.hs_end_frame,
            "handshake_start_ns": self.hs_start_ns,
            "handshake_end_ns": self.hs_end_ns,
            "handshake_duration_ns": dur,
            "handshake_duration": dur / 1e9 if dur is not None else None,
            "finished_seen": self.finished_seen if self.scheme != "cojp" else None,
            "outcome": self.outcome,
        }
        for d, legs in ((UP, (LEG_PLEDGE, LEG_REGISTRAR)), (DOWN, (LEG_REGISTRAR, LEG_PLEDGE))):
            for leg in legs:
                k = f"{d}_{leg}"
                row[f"{k}_datagrams"] = self._count(k, 0)
                row[f"{k}_bytes"] = self._count(k, 1)
        reg_bytes = self._count("up_registrar", 1) + self._count("down_registrar", 1)
        reg_inner = self._count("up_registrar", 2) + self._count("down_registrar", 2)
        row["registrar_overhead_bytes"] = reg_bytes - reg_inner if LEG_REGISTRAR in self.legs else None
        row["forwarded"] = self.pairs
        row["unforwarded"] = self.unpaired
        for d in (UP, DOWN):
            lst: list[int] = getattr(self, f"delay_{d}")
            row[f"forward_delay_{d}_mean"] = sum(lst) / len(lst) / 1e9 if lst else None
            row[f"forward_delay_{d}_max"] = max(lst) / 1e9 if lst else None
        row["retransmissions_up"] = self.retransmissions_up
        row["retransmissions_down"] = self.retransmissions_down
        row["alerts"] = self.alerts
        row["alert"] = f"{self.alert[0]}/{self.alert[1]}" if self.alert else None
        row["client_random"] = self.client_random.hex() if self.client_random else None
        row["kek"] = self.kek.hex() if self.kek else None
        row["events"] = " ".join(f"{what}@{frame}" for what, frame in self.events) or None
        return row


#: Column order of :meth:`Session.as_dict` (for an empty table too).
COLUMNS: tuple[str, ...] = tuple(Session(0).as_dict())


@dataclass(slots=True)
class SessionTable:
    """Every pledge session of a capture, and the jp view of each frame in them."""

    sessions: list[Session] = field(default_factory=list)
    capture_end_ns: int = 0
    _frames: dict[int, FrameInfo] | None = None

    def frame(self, number: int) -> FrameInfo | None:
        if self._frames is None:
            self._frames = {}
            for s in self.sessions:
                self._frames.update(s.frames)
        return self._frames.get(number)

    def rows(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.sessions]

    def dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(COLUMNS))

    def __len__(self) -> int:
        return len(self.sessions)

    def __iter__(self) -> Any:
        return iter(self.sessions)


# ---------------------------------------------------------------------------
# Passes


class TwoPassError(ValueError):
    """The jp look-ahead fields need a second read of the input, which stdin cannot give."""


def needs_two_pass(fields: Iterable[str], filter_fields: Iterable[str] = ()) -> bool:
    """Whether ``-e`` fields or a display filter name a ``jp`` field (all of them depend on the
    pairing of copies, which for an ingress copy needs frames that come later)."""
    for f in (*fields, *filter_fields):
        if f == "jp" or f.startswith("jp."):
            return True
    return False


def tracker_for(engine: Engine) -> Tracker:
    """The engine's tracker, created with the engine's preferences."""
    st = engine.state
    t = st.get(STATE_TRACKER)
    if t is None:
        window = int(engine.prefs.get("jp.pair_window_ms", PAIR_WINDOW_NS // 1_000_000)) * 1_000_000
        abandon = int(engine.prefs.get("jp.abandon_timeout", ABANDON_NS // 1_000_000_000)) * 1_000_000_000
        t = st[STATE_TRACKER] = Tracker(window, abandon)
    return t


def first_pass(engine: Engine, source: Any, reader: CaptureReader | None = None) -> SessionTable:
    """Dissect every frame of ``source`` (or of an open ``reader``, left open for its ``error``) with
    ``engine`` -- no tree, no columns -- and build the table."""
    from jpdissect.capture import open_capture
    from jpdissect.dissectors import jp

    engine.tree = False
    engine.cols = False
    # The sessions depend on what the relay and DTLS dissectors find above UDP: the engine must not
    # stop at the transport payload (its "shallow" mode when no field above it is asked for).
    engine.shallow = False
    jp.install(engine)
    tracker = tracker_for(engine)
    last = None
    rd = reader if reader is not None else open_capture(source)
    try:
        for fr in rd:
            engine.dissect(fr)
            last = fr.ts_ns
    finally:
        if reader is None:
            rd.close()
    return tracker.finish(last)


def prepare_two_pass(engine_factory: Callable[[], Engine], path: Any) -> Engine:
    """Run the first pass over ``path`` and return a fresh engine for the second, normal, pass.

    The returned engine carries the finished :class:`SessionTable` (``state["jp.table"]``), so its
    jp layer shows final session numbers and the twin of every copy, ingress copies included.
    Raises :class:`TwoPassError` for stdin or a stream: the input must be read twice.
    """
    if not isinstance(path, str | bytes) and not hasattr(path, "__fspath__"):
        raise TwoPassError("jp.* fields need two passes over the input: read from a file, not a stream")
    if str(path) == "-":
        raise TwoPassError("jp.* fields (jp.peer_frame needs look-ahead) need a capture file, not stdin")
    from jpdissect.dissectors import jp

    table = first_pass(engine_factory(), path)
    second = engine_factory()
    second.state[STATE_TABLE] = table
    jp.install(second)
    return second


def session_table(source: Any, prefs: Iterable[str] | dict[str, Any] = (),
                  decode_as: Iterable[str] = ()) -> SessionTable:
    """The sessions of a capture (path, ``-`` for stdin, or a binary stream): one pass."""
    from jpdissect.engine import Engine

    # One in-order pass whose only product is the tracker: the dissectors need not keep
    # re-dissection memos or finished DTLS sessions' rows (jpdissect.lifetime).
    return first_pass(Engine(prefs=prefs, decode_as=decode_as, tree=False, cols=False, single_pass=True),
                      source)


def sessions(path: Any, prefs: Iterable[str] | dict[str, Any] = (),
             decode_as: Iterable[str] = ()) -> pd.DataFrame:
    """``jpdissect.api.sessions``: one row per pledge session, columns as :data:`COLUMNS`."""
    return session_table(path, prefs, decode_as).dataframe()


__all__ = [
    "COLUMNS", "DtlsFacts", "FrameInfo", "Obs", "Session", "SessionTable", "Tracker", "TwoPassError",
    "dtls_facts", "first_pass", "needs_two_pass", "prepare_two_pass", "session_table", "sessions",
]
