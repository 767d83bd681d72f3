"""One streaming pass over a capture that feeds every statistic at once.

Why one pass: a million-frame capture costs minutes to dissect and almost nothing to count, so the
summary, the relayed table, the I/O graph, the conversations and the what-if all ride on the same
dissection (:class:`Scanner`) instead of reading the file once each. Nothing here keeps per-frame
state beyond a bounded window: consumers aggregate as frames go by.

Relayed datagrams come out *paired*: one :class:`Datagram` per datagram the Join Proxy relayed,
carrying both copies -- the pledge-hop frame (the inner datagram as the pledge sent or received it)
and the Registrar-hop frame (inside the relay framing) -- so overhead, forward delay and session
are properties of one row. Pairing uses the inner bytes themselves (a DTLS datagram is relayed
unchanged in every DTLS scheme; for CoJP the CoAP Message ID, code and OSCORE payload, since the JP
rewrites the token). The pledge is the endpoint that spoke first on its hop (it always opens the
handshake); sessions are numbered by the pledge's first appearance, so the numbering is the same
for every run on the same file.

When a ``jp`` dissector (the join-proxy issue) is registered, its per-frame ``jp.*`` fields say
the same things; :func:`jp_fields_available` tells whether they exist, and the tests compare the
two. This module's own pairing is what the statistics use either way, so their numbers do not
depend on which of the two landed first.
"""

from __future__ import annotations

import os
import socket
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jpdissect.coapmsg import CoapMessage
from jpdissect.stats.relayed import (
    DOWN,
    PLEDGE_LEG,
    RELAY_LEG,
    UP,
    Framing,
    coap_pair_key,
    decompose,
    identify,
    looks_like_dtls,
)

#: A datagram waits this long (capture time) for its other copy, then is reported unpaired.
#: The draft's stateful JP drops a pledge's state after 30 s (§4.2); nothing relays later than that.
PAIR_WINDOW_NS = 30 * 1_000_000_000
#: Most datagrams waiting for their other copy at once (the oldest is reported unpaired beyond it):
#: bounds memory on a capture where one leg is missing.
MAX_PENDING = 8192
#: Per-pledge state is forgotten after this long without traffic: longer than DTLS's largest
#: retransmission timeout (60 s, RFC 6347 §4.2.4.1) plus the stateful JP's 30 s state timeout
#: (draft §4.2). A pledge heard from again later starts a new session.
SESSION_IDLE_NS = 120 * 1_000_000_000
#: Pending datagrams are swept for expiry every this many frames.
SWEEP_EVERY = 4096
IPV6_LEN, IPV4_LEN = 16, 4
UDP_HEADER = 8
IPV6_HLIM_OFFSET, IPV4_TTL_OFFSET = 7, 8
DEFAULT_HOP_LIMIT = 64
#: Sessions are numbered from 1, as ``jp.session`` and ``jpdissect sessions`` number them.
FIRST_SESSION = 1

Endpoint = tuple[bytes, int]


def is_link_local(addr: bytes | None) -> bool:
    """fe80::/10 (RFC 4291 §2.5.6) or 169.254.0.0/16 (RFC 3927): the pledge's hop."""
    if addr is None:
        return False
    if len(addr) == IPV6_LEN:
        return addr[0] == 0xFE and addr[1] & 0xC0 == 0x80
    return len(addr) == IPV4_LEN and addr[0] == 169 and addr[1] == 254


def is_multicast(addr: bytes | None) -> bool:
    if addr is None:
        return False
    if len(addr) == IPV6_LEN:
        return addr[0] == 0xFF
    return len(addr) == IPV4_LEN and 224 <= addr[0] <= 239


def addr_str(addr: bytes | None) -> str:
    if addr is None:
        return ""
    try:
        return socket.inet_ntop(socket.AF_INET6 if len(addr) == IPV6_LEN else socket.AF_INET, addr)
    except (ValueError, OSError):
        return addr.hex()


@dataclass(slots=True)
class FrameInfo:
    """What the statistics read from one dissected frame (cheap: no field priming needed)."""

    number: int
    ts_ns: int
    length: int
    iface: int
    protocol: str
    src: bytes | None = None
    dst: bytes | None = None
    sport: int = 0
    dport: int = 0
    #: UDP only: the payload, IP+UDP header bytes, hop limit / TTL, which hop, relay scheme.
    payload: bytes | None = None
    hdr_bytes: int = 0
    hlim: int = DEFAULT_HOP_LIMIT
    leg: str | None = None
    scheme: str | None = None


@dataclass(slots=True)
class Datagram:
    """One datagram the Join Proxy relayed, with both of its copies when both were captured."""

    scheme: str | None
    direction: str | None
    session: int | None = None
    inner: bytes | None = None
    inner_len: int = 0
    pledge: FrameInfo | None = None
    relay: FrameInfo | None = None
    framing: Framing | None = None
    pledge_addr: bytes | None = None
    pledge_port: int = 0
    #: The first relayed datagram of its session (counts sessions without a growing set).
    new_session: bool = False
    #: The pairing's record of the session (internal).
    rec: Any = None

    @property
    def paired(self) -> bool:
        return self.pledge is not None and self.relay is not None

    @property
    def forward_delay_ns(self) -> int | None:
        """Time the JP took: pledge copy to relay copy going up, relay to pledge going down."""
        if self.pledge is None or self.relay is None:
            return None
        if self.direction == UP:
            return self.relay.ts_ns - self.pledge.ts_ns
        return self.pledge.ts_ns - self.relay.ts_ns


class Consumer(Protocol):
    """A statistic fed by the scan: every frame, then every relayed datagram once it is complete."""

    def frame(self, fi: FrameInfo) -> None: ...

    def datagram(self, dg: Datagram) -> None: ...


def _pair_key(payload: bytes) -> Any:
    """What both copies of a relayed datagram share (see the module docstring)."""
    if looks_like_dtls(payload):
        return payload
    if payload and payload[0] >> 6 == 1:
        msg, errs = CoapMessage.decode(payload)
        if msg is not None and not errs:
            return coap_pair_key(msg)
    return payload


class _Sess:
    """A pledge session as the pairing knows it: its number, scheme, and when it was last heard.

    The number is given when the session's first relayed datagram is reported, so link-local
    traffic that is never relayed (MLE between routers, discovery) does not use up numbers, and
    sessions are numbered in the order their relaying starts, as ``jp.session`` numbers them.
    """

    __slots__ = ("id", "scheme", "counted", "last")

    def __init__(self, now: int) -> None:
        self.id: int | None = None
        self.scheme: str | None = None
        self.counted = False
        self.last = now


class _Conv:
    """A pledge-hop conversation: who spoke first (the pledge) and its session."""

    __slots__ = ("first", "sess", "last")

    def __init__(self, first: Endpoint, sess: _Sess, now: int) -> None:
        self.first = first
        self.sess = sess
        self.last = now


class Pairer:
    """Pairs the two copies of each relayed datagram and numbers the pledges' sessions.

    Per-pledge state (who spoke first, the session, the relay flow that names the pledge) is
    forgotten after :data:`SESSION_IDLE_NS` without traffic, and datagrams wait for their twin at
    most :data:`PAIR_WINDOW_NS` / :data:`MAX_PENDING`: memory depends on how many pledges are
    active at once, not on the length of the capture. This runs once per frame, so it is written
    for few dictionary lookups rather than for elegance.
    """

    def __init__(self, emit: Callable[[Datagram], None]) -> None:
        self.emit = emit
        self.convs: dict[tuple[Endpoint, Endpoint], _Conv] = {}
        self.relay_first: dict[tuple[Endpoint, Endpoint], list[Any]] = {}
        self.flows: dict[Any, _Sess] = {}
        # key -> FIFO of datagrams waiting for the other copy (retransmissions share a key).
        self.wait_up: OrderedDict[Any, list[Datagram]] = OrderedDict()
        self.wait_down: OrderedDict[Any, list[Datagram]] = OrderedDict()
        self.pending = 0
        self.unpaired = 0
        self.next_session = FIRST_SESSION

    def _new(self, now: int) -> _Sess:
        return _Sess(now)

    def _emit(self, dg: Datagram) -> None:
        rec = dg.rec
        if rec is not None:
            if dg.relay is not None and not rec.counted:
                rec.counted = True
                dg.new_session = True
                rec.id = self.next_session
                self.next_session += 1
            dg.session = rec.id
        self.emit(dg)

    def _wait(self, table: OrderedDict[Any, list[Datagram]], key: Any, dg: Datagram) -> None:
        lst = table.get(key)
        if lst is None:
            table[key] = [dg]
        else:
            lst.append(dg)
        self.pending += 1
        if self.pending > MAX_PENDING:
            self._evict_oldest()

    def _take(self, table: OrderedDict[Any, list[Datagram]], key: Any) -> Datagram | None:
        lst = table.get(key)
        if not lst:
            return None
        dg = lst.pop(0)
        if not lst:
            del table[key]
        self.pending -= 1
        return dg

    def _evict_oldest(self) -> None:
        best: tuple[int, OrderedDict[Any, list[Datagram]], Any] | None = None
        for table in (self.wait_up, self.wait_down):
            if table:
                k = next(iter(table))
                t = _ts(table[k][0])
                if best is None or t < best[0]:
                    best = (t, table, k)
        if best is not None:
            dg = self._take(best[1], best[2])
            if dg is not None:
                self._flush(dg)

    def _flush(self, dg: Datagram) -> None:
        self.unpaired += 1
        if dg.scheme is None and dg.rec is not None:
            dg.scheme = dg.rec.scheme
        self._emit(dg)

    def sweep(self, now_ns: int) -> None:
        for table in (self.wait_up, self.wait_down):
            while table:
                k = next(iter(table))
                lst = table[k]
                if now_ns - _ts(lst[0]) <= PAIR_WINDOW_NS:
                    break
                dg = self._take(table, k)
                if dg is not None:
                    self._flush(dg)
        limit = now_ns - SESSION_IDLE_NS
        for k in [k for k, c in self.convs.items() if c.last < limit and c.sess.last < limit]:
            del self.convs[k]
        for k in [k for k, s in self.flows.items() if s.last < limit]:
            del self.flows[k]
        for k in [k for k, e in self.relay_first.items() if e[1] < limit]:
            del self.relay_first[k]

    def finish(self) -> None:
        for table in (self.wait_up, self.wait_down):
            while table:
                k = next(iter(table))
                dg = self._take(table, k)
                if dg is not None:
                    self._flush(dg)

    # -- frames ----------------------------------------------------------------
    def pledge_frame(self, fi: FrameInfo) -> None:
        """A UDP datagram on the pledge's (link-local) hop."""
        payload = fi.payload
        if not payload or is_multicast(fi.dst):
            return
        now = fi.ts_ns
        src: Endpoint = (fi.src or b"", fi.sport)
        dst: Endpoint = (fi.dst or b"", fi.dport)
        ck = (src, dst) if src <= dst else (dst, src)
        c = self.convs.get(ck)
        if c is None:
            c = self.convs[ck] = _Conv(src, self._new(now), now)
        c.last = now
        sess = c.sess
        sess.last = now
        up = c.first == src
        pledge = src if up else dst
        scheme = sess.scheme
        fi.scheme = scheme
        key = _pair_key(payload)
        if up:
            dg = Datagram(scheme, UP, None, payload, len(payload), pledge=fi,
                          pledge_addr=pledge[0], pledge_port=pledge[1], rec=sess)
            self._wait(self.wait_up, key, dg)
            return
        dg_relay = self._take(self.wait_down, key)
        if dg_relay is None:
            self.unpaired += 1
            self._emit(Datagram(scheme, DOWN, None, payload, len(payload), pledge=fi,
                                pledge_addr=pledge[0], pledge_port=pledge[1], rec=sess))
            return
        dg_relay.pledge = fi
        dg_relay.pledge_addr, dg_relay.pledge_port = pledge
        if dg_relay.rec is None:
            dg_relay.rec = sess
        if sess.scheme is None:
            sess.scheme = dg_relay.scheme
        if dg_relay.scheme == "cojp" and dg_relay.relay is not None and dg_relay.relay.payload is not None:
            dg_relay.framing = decompose("cojp", dg_relay.relay.payload, payload)
            dg_relay.inner, dg_relay.inner_len = payload, len(payload)
        self._emit(dg_relay)

    def relay_frame(self, fi: FrameInfo, fr: Framing) -> None:
        """A UDP datagram on the Registrar hop that carries a relay framing (already taken apart)."""
        now = fi.ts_ns
        scheme = fr.scheme
        direction = fr.direction
        if direction is None:
            src: Endpoint = (fi.src or b"", fi.sport)
            dst: Endpoint = (fi.dst or b"", fi.dport)
            ck = (src, dst) if src <= dst else (dst, src)
            e = self.relay_first.get(ck)
            if e is None:
                e = self.relay_first[ck] = [src, now]
            e[1] = now
            direction = fr.direction = UP if e[0] == src else DOWN
        if scheme == "stateful":
            # §4.2: one JP port per pledge; the JP end is the source going up, the destination down.
            flow: Any = (fi.src, fi.sport) if direction == UP else (fi.dst, fi.dport)
        else:
            flow = fr.state
        dg = Datagram(scheme, direction, None, fr.inner, fr.inner_len, relay=fi, framing=fr)
        key = fr.pair
        if direction == UP:
            peer = self._take(self.wait_up, key) if key is not None else None
            if peer is not None:
                rec = peer.rec
                dg.pledge, dg.rec = peer.pledge, rec
                dg.pledge_addr, dg.pledge_port = peer.pledge_addr, peer.pledge_port
                if scheme == "cojp":
                    dg.framing = decompose("cojp", fi.payload or b"", peer.inner)
                    dg.inner, dg.inner_len = peer.inner, peer.inner_len
                if rec is not None:
                    rec.last = now
                    if rec.scheme is None:
                        rec.scheme = scheme
                    if flow is not None and flow not in self.flows:
                        self.flows[flow] = rec
            else:
                self.unpaired += 1
                if flow is not None:
                    rec = self.flows.get(flow)
                    if rec is None:
                        rec = self.flows[flow] = self._new(now)  # pledge hop not captured
                        rec.scheme = scheme
                    rec.last = now
                    dg.rec = rec
            self._emit(dg)
            return
        if flow is not None:
            rec = self.flows.get(flow)
            if rec is not None:
                rec.last = now
                dg.rec = rec
        if key is None:
            self.unpaired += 1
            self._emit(dg)
            return
        self._wait(self.wait_down, key, dg)


def _ts(dg: Datagram) -> int:
    fi = dg.pledge or dg.relay
    return fi.ts_ns if fi is not None else 0


# ---------------------------------------------------------------------------
# Reading frames


def jp_fields_available() -> bool:
    """Whether the join-proxy dissector's per-frame ``jp.*`` fields are registered."""
    from jpdissect.dissectors import load_all
    from jpdissect.model import FIELDS

    load_all()
    return "jp.scheme" in FIELDS


def frame_info(pkt: Any) -> FrameInfo:
    """The :class:`FrameInfo` of a dissected packet, read from its layers and buffers."""
    fi = FrameInfo(pkt.number, pkt.ts_ns, pkt.wirelen, pkt.interface_id, pkt.protocol,
                   pkt.net_src, pkt.net_dst)
    if pkt.ptype != "udp":
        return fi
    ip = None
    udp = None
    for lay in pkt.layers:
        a = lay.proto.abbrev
        if a in ("icmpv6", "icmp"):
            return fi  # a UDP header quoted in an ICMP error is not a datagram
        if a in ("ipv6", "ip") and udp is None:
            ip = lay
        elif a == "udp":
            udp = lay
            break
    if udp is None:
        return fi
    buf = pkt.sources[udp.src].data
    off = udp.offset
    if off + UDP_HEADER > len(buf):
        return fi
    ulen = (buf[off + 4] << 8) | buf[off + 5]
    end = min(off + ulen, len(buf)) if ulen >= UDP_HEADER else len(buf)
    fi.sport, fi.dport = pkt.srcport, pkt.dstport
    fi.payload = bytes(buf[off + UDP_HEADER:end])
    if ip is not None and ip.src == udp.src:
        fi.hdr_bytes = off - ip.offset + UDP_HEADER
        ibuf = buf
        if ip.proto.abbrev == "ipv6" and ip.offset + IPV6_HLIM_OFFSET < len(ibuf):
            fi.hlim = ibuf[ip.offset + IPV6_HLIM_OFFSET]
        elif ip.offset + IPV4_TTL_OFFSET < len(ibuf):
            fi.hlim = ibuf[ip.offset + IPV4_TTL_OFFSET]
    else:
        fi.hdr_bytes = (40 if fi.src is not None and len(fi.src) == IPV6_LEN else 20) + UDP_HEADER
    return fi


@dataclass
class ScanResult:
    """Counts the scan itself keeps (the consumers hold the statistics)."""

    path: str
    frames: int = 0
    udp: int = 0
    relayed: int = 0
    unpaired: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    error: str | None = None
    sessions: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


#: Dissectors above UDP a scan of an IEEE 802.15.4 capture still runs: they teach the lower layers
#: what they need to decode later frames (Thread MLE: 6LoWPAN contexts, the MAC key sequence; TMF
#: ``c/tx``: the Joiner Router KEK) -- the engine's own rule for when it may stop at UDP.
STATE_DISSECTORS = frozenset({"mle", "tmf"})
#: Link types of IEEE 802.15.4 (with/without FCS, TAP): there, layers below UDP depend on state
#: learned above it.
WPAN_LINKTYPES = frozenset({195, 215, 230, 283})


def udp_floor_registry() -> Any:
    """The dissector registry minus everything above UDP that the statistics do not read.

    The statistics take the UDP payload and decode the relay framings themselves (with the same
    codecs the dissectors use), so DTLS, CoAP, OSCORE... dissection is work nobody looks at: the
    scan skips it. Lower layers (Ethernet, IP reassembly, 802.15.4 security, 6LoWPAN) run as
    always, and a ``-d`` decode-as still reaches any dissector by name.
    """
    from jpdissect.dissectors import load_all
    from jpdissect.dissectors.registry import REGISTRY, Registry

    load_all()
    r = Registry()
    r.named = REGISTRY.named
    r.descriptions = REGISTRY.descriptions
    r.tables = {k: dict(v) for k, v in REGISTRY.tables.items()}
    r.tables["udp.port"] = {p: n for p, n in r.tables.get("udp.port", {}).items() if n in STATE_DISSECTORS}
    r.heuristics = {k: v for k, v in REGISTRY.heuristics.items() if k != "udp"}
    return r


class Scanner:
    """Dissects a capture once and hands every frame and relayed datagram to the consumers.

    ``full`` dissects every layer (as ``jpdissect read`` does). By default the scan stops at the UDP
    payload -- the engine's shallow mode, or on 802.15.4 captures :func:`udp_floor_registry`, which
    keeps the dissectors that feed lower-layer state -- and gives the same statistics faster; the
    tests check both ways agree.
    """

    def __init__(self, consumers: Iterable[Consumer], prefs: Iterable[str] | dict[str, Any] = (),
                 decode_as: Iterable[str] = (), limit: int = 0, full: bool = False) -> None:
        self.consumers = list(consumers)
        self.prefs = prefs
        self.decode_as = list(decode_as)
        self.limit = limit
        self.full = full

    def run(self, source: str | os.PathLike[str]) -> ScanResult:
        from jpdissect.capture import open_capture
        from jpdissect.engine import Engine
        from jpdissect.model import unprime_all

        unprime_all()
        rd = open_capture(source)
        # One in-order pass reading only the packets: the single-pass promise (jpdissect.lifetime).
        if self.full:
            eng = Engine(prefs=self.prefs, decode_as=self.decode_as, tree=False, cols=False, single_pass=True)
        elif any(i.linktype in WPAN_LINKTYPES for i in rd.interfaces):
            eng = Engine(prefs=self.prefs, decode_as=self.decode_as, tree=False, cols=False,
                         registry=udp_floor_registry(), single_pass=True)
        else:
            eng = Engine(prefs=self.prefs, decode_as=self.decode_as, tree=False, cols=False, single_pass=True)
            # Nothing above UDP changes a lower layer off 802.15.4, and the statistics read the
            # UDP payload themselves: stop there (a -d decode-as entry still needs the dissectors).
            eng.shallow = not self.decode_as
        res = ScanResult(str(source))
        # Consumers that only look at relayed datagrams say so (``wants_frames = False``).
        frame_cbs = [c.frame for c in self.consumers if getattr(c, "wants_frames", True)]
        dg_cbs = [c.datagram for c in self.consumers]

        def emit(dg: Datagram) -> None:
            res.relayed += 1
            for cb in dg_cbs:
                cb(dg)

        pairer = Pairer(emit)
        with rd:
            n = 0
            for frame in rd:
                pkt = eng.dissect(frame)
                fi = frame_info(pkt)
                pkt.release()  # break the packet/node cycles now: no cyclic GC churn on long captures
                n += 1
                if fi.payload is not None:
                    res.udp += 1
                    if is_link_local(fi.src) or is_link_local(fi.dst):
                        fi.leg = PLEDGE_LEG
                        pairer.pledge_frame(fi)
                    else:
                        fi.leg = RELAY_LEG
                        fr = identify(fi.payload, fi.sport, fi.dport)
                        if fr is not None:
                            fi.scheme = fr.scheme
                            pairer.relay_frame(fi, fr)
                elif fi.src is not None:
                    # ICMP and other IP traffic: counted on its hop in the I/O statistics.
                    fi.leg = PLEDGE_LEG if is_link_local(fi.src) or is_link_local(fi.dst) else RELAY_LEG
                for cb in frame_cbs:
                    cb(fi)
                if res.first_ns is None:
                    res.first_ns = fi.ts_ns
                res.last_ns = fi.ts_ns
                if n % SWEEP_EVERY == 0:
                    pairer.sweep(fi.ts_ns)
                if self.limit and n >= self.limit:
                    break
            if rd.error is not None:
                res.error = str(rd.error)
        pairer.finish()
        res.frames = n
        res.unpaired = pairer.unpaired
        res.sessions = pairer.next_session - FIRST_SESSION
        for c in self.consumers:
            fin = getattr(c, "finish", None)
            if fin is not None:
                fin()
        return res


__all__ = [
    "Consumer", "Datagram", "FrameInfo", "Pairer", "ScanResult", "Scanner", "addr_str", "frame_info",
    "is_link_local",
]
