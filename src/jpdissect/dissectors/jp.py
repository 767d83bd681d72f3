"""The ``jp`` layer: which Join Proxy scheme, pledge session, leg and direction a datagram belongs to.

Why a post-dissector: most frames of a join -- the pledge's plain DTLS on the link-local hop, a
stateful JP's re-addressed copy, the coap-dtls and CoJP messages -- are decoded by dissectors (DTLS,
CoAP) that know nothing about join proxies. The jp layer is therefore added *after* a frame's normal
dissection, from what those dissectors left behind (the UDP span, ``pkt.scratch["coap"]``,
``["coap.dtls_payload"]``, ``["coap.cojp"]``, the DTLS layer), the way Wireshark's post-dissectors
work. The relay dissectors that do know (JPY, MeshCoP) leave a :class:`RelayFacts` in
``pkt.scratch["jp.relay"]``.

The engine has no post-dissector hook yet, so :func:`install` wraps one engine's ``dissect``; it is
only installed where the jp view is wanted (``jpdissect sessions``, the two-pass ``read``), so no other
output changes. Fields needing look-ahead (``jp.peer_frame`` of an ingress copy, final session numbers)
come from a first pass (:func:`jpdissect.sessions.prepare_two_pass`), as with ``tshark -2``; in a
single pass they show what is known so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jpdissect import sessions as S
from jpdissect.model import FT, F, Group, Packet, Pref, Protocol, Severity, declare_prefs

P = Protocol("jp", "Join Proxy relay analysis", "JP")
FJ = P.declare(
    F("jp.scheme", "Relay scheme", FT.STRING,
      "stateful, jpy, jpy-legacy, coap-dtls, thread-relay or cojp (DESIGN.md §1)"),
    F("jp.session", "Pledge session", FT.UINT32, "One pledge's onboarding over both legs (jpdissect sessions)"),
    F("jp.leg", "Leg", FT.STRING, "pledge (pledge <-> JP, link-local) or registrar (JP <-> Registrar)"),
    F("jp.direction", "Direction", FT.STRING, "up (pledge to Registrar) or down"),
    F("jp.copy", "Copy", FT.STRING, "ingress (the JP received it) or egress (the JP sent it)"),
    F("jp.inner_len", "Relayed datagram length", FT.UINT32, "The pledge's datagram inside the framing",
      unit="bytes"),
    F("jp.overhead", "Relay framing overhead", FT.INT32, "UDP payload minus the relayed datagram",
      unit="bytes"),
    F("jp.peer_frame", "Twin on the other leg", FT.FRAMENUM,
      "The same datagram as received or sent by the JP on its other interface"),
    F("jp.forward_delay", "JP forwarding delay", FT.RELTIME, "Ingress copy to egress copy"),
    F("jp.state", "JP state", FT.BYTES,
      "What the JP gets echoed back to route the answer: JPY header, token, joiner IID+port+RLOC"),
    F("jp.pledge", "Pledge", FT.STRING, "The pledge's address and port"),
)

declare_prefs(
    Pref("jp.pair_window_ms", int, S.PAIR_WINDOW_NS // 1_000_000,
         "Most milliseconds between a relayed datagram's ingress and egress copies"),
    Pref("jp.abandon_timeout", int, S.ABANDON_NS // 1_000_000_000,
         "Seconds of silence before the capture end after which an unfinished session is abandoned"),
)

STATE_INSTALLED = "jp.installed"
STATE_COJP_REQUESTS = "jp.cojp_requests"
#: CoJP pledge-leg requests remembered to recognise their answers (oldest dropped first).
MAX_COJP_REQUESTS = 100_000
UDP_HEADER = 8
#: A DTLS record header is 13 bytes (RFC 6347 §4.1).
DTLS_RECORD_HEADER = 13
#: CoAP options and names of an RFC 9031 join request (§8.1).
OPT_URI_HOST, OPT_OSCORE = 3, 9
COJP_HOST = b"6tisch.arpa"
COJP_PATH = "/j"
#: RFC 7252 §5.3.1: a pledge's own token is at most 8 bytes; longer ones carry proxy state (RFC 8974).
MAX_PLEDGE_TOKEN = 8


@dataclass(slots=True)
class RelayFacts:
    """What a relay dissector (JPY, MeshCoP) found: the framing's inner datagram and JP state."""

    scheme: str
    direction: str | None      # "up"/"down" when the framing says (c/rx, c/tx)
    src: int                   # data source holding the inner datagram
    inner_off: int
    inner_end: int
    state: bytes | None = None
    state_off: int = 0
    state_len: int = 0
    pledge: tuple[bytes, int] | None = None
    kek: bytes | None = None


def starts_like_dtls(buf: bytes, off: int, end: int) -> bool:
    """A DTLS record header's first bytes: content type 20-26, version 0xfeXX (RFC 6347 §4.1)."""
    return end - off >= DTLS_RECORD_HEADER and 20 <= buf[off] <= 26 and buf[off + 1] == 0xFE and \
        buf[off + 2] in (0xFF, 0xFD, 0xFC)


def wanted() -> bool:
    """Whether any jp field is primed (-e, -Y): only then, or with a tree, is the jp layer shown."""
    primed = getattr(P, "primed", None)  # the model's per-protocol flag, where it exists
    if primed is not None:
        return bool(primed)
    return P.fd.primed or any(fd.primed for fd in P.fields.values())


# ---------------------------------------------------------------------------
# Installing


def install(engine: Any) -> None:
    """Run the jp post-dissector after every frame ``engine`` dissects (idempotent).

    Stopgap until the engine calls post-dissectors itself; the exception guard mirrors the engine's:
    a bug here becomes an expert entry on the frame, never a lost frame.
    """
    if engine.state.get(STATE_INSTALLED):
        return
    engine.state[STATE_INSTALLED] = True
    registered = getattr(engine.registry, "postdissectors", None)
    if registered is not None:
        if postdissect not in registered:
            registered.append(postdissect)
        return
    inner = engine.dissect

    def dissect(frame: Any) -> Packet:
        pkt = inner(frame)
        try:
            postdissect(pkt)
        except Exception as exc:  # noqa: BLE001 - the contract: nothing escapes a dissector
            where = pkt.layers[-1]
            pkt.expert(where, Severity.ERROR, Group.MALFORMED,
                       f"Dissector bug, protocol JP: {type(exc).__name__}: {exc}")
        return pkt

    engine.dissect = dissect


# ---------------------------------------------------------------------------
# The post-dissector


def postdissect(pkt: Packet) -> None:
    """Classify the frame's datagram, feed the session tracker, add the jp layer."""
    cap = pkt.cap
    if cap is None or not cap.state.get(STATE_INSTALLED):
        return
    st = cap.state
    table: S.SessionTable | None = st.get(S.STATE_TABLE)
    want = pkt.tree or wanted()
    if table is not None and not want:
        return  # the second pass only shows; the first one did the tracking
    found = observe(pkt)
    if found is None:
        return
    obs, usrc, start, end, inner_span, state_span = found
    if table is not None:
        info = table.frame(pkt.number)
        if info is None:
            return
    else:
        tracker = S.tracker_for(cap)
        kept = tracker.add(obs)
        if not want:
            return
        info = tracker.info(kept)
    _fields(pkt, info, usrc, start, end, inner_span, state_span)


def _udp_payload(pkt: Packet) -> tuple[int, int, int] | None:
    """(data source, start, end) of the frame's UDP payload; None inside an ICMP error's quote."""
    for lay in pkt.layers:
        a = lay.proto.abbrev
        if a == "icmp" or a == "icmpv6":
            return None
        if a == "udp":
            data = pkt.sources[lay.src].data
            off = lay.offset
            if off + UDP_HEADER > len(data):
                return None
            ulen = (data[off + 4] << 8) | data[off + 5]
            start = off + UDP_HEADER
            end = min(len(data), off + ulen) if ulen >= UDP_HEADER else len(data)
            return lay.src, start, end
    return None


def _endpoints(pkt: Packet) -> tuple[S.Endpoint, S.Endpoint]:
    src = pkt.net_src if isinstance(pkt.net_src, bytes | bytearray) else b""
    dst = pkt.net_dst if isinstance(pkt.net_dst, bytes | bytearray) else b""
    return (bytes(src), pkt.srcport), (bytes(dst), pkt.dstport)


def _layer_at(pkt: Packet, abbrev: str, src: int, off: int) -> Any:
    for lay in pkt.layers:
        if lay.proto.abbrev == abbrev and lay.src == src and lay.offset == off:
            return lay
    return None


Span = tuple[int, int, int]  # (src, offset, length)


def observe(pkt: Packet) -> tuple[S.Obs, int, int, int, Span, Span | None] | None:
    """The frame as a session observation, or None when it carries no relayed datagram."""
    u = _udp_payload(pkt)
    if u is None:
        return None
    usrc, start, end = u
    sc = pkt.scratch
    src_ep, dst_ep = _endpoints(pkt)
    relay: RelayFacts | None = sc.get("jp.relay")
    udp_len = end - start
    if relay is not None:
        buf = pkt.sources[relay.src].data
        inner = bytes(buf[relay.inner_off:relay.inner_end])
        obs = S.Obs(pkt.number, pkt.ts_ns, S.RELAY, src_ep, dst_ep, udp_len, len(inner), hash(inner),
                    scheme=relay.scheme, direction=relay.direction, state=relay.state, pledge=relay.pledge,
                    facts=S.dtls_facts(buf, relay.inner_off, relay.inner_end), kek=relay.kek)
        state_span = (relay.src, relay.state_off, relay.state_len) if relay.state is not None else None
        return obs, usrc, start, end, (relay.src, relay.inner_off, len(inner)), state_span
    event = sc.get("jp.event")
    if event is not None:
        what, scheme, d = event
        obs = S.Obs(pkt.number, pkt.ts_ns, S.EVENT, src_ep, dst_ep, udp_len, -1, 0, scheme=scheme,
                    direction=d, pledge=dst_ep if d == S.DOWN else src_ep, event=what)
        return obs, usrc, start, end, (usrc, start, 0), None
    data = pkt.sources[usrc].data
    info = sc.get("coap")
    if info is not None and _layer_at(pkt, "coap", usrc, start) is not None and \
            start <= info.payload_offset <= end and info.token_offset >= start:
        return _observe_coap(pkt, info, usrc, start, end, src_ep, dst_ep, data)
    if _layer_at(pkt, "dtls", usrc, start) is not None:
        inner = bytes(data[start:end])
        obs = S.Obs(pkt.number, pkt.ts_ns, S.PLAIN, src_ep, dst_ep, udp_len, udp_len, hash(inner),
                    facts=S.dtls_facts(data, start, end), joiner_leg=bool(sc.get("jp.joiner_leg")))
        return obs, usrc, start, end, (usrc, start, udp_len), None
    return None


def _observe_coap(pkt: Packet, info: Any, usrc: int, start: int, end: int, src_ep: S.Endpoint,
                  dst_ep: S.Endpoint, data: bytes) -> tuple[S.Obs, int, int, int, Span, Span | None] | None:
    sc = pkt.scratch
    udp_len = end - start
    poff, plen = info.payload_offset, info.payload_length
    token = info.token
    tspan = (usrc, info.token_offset, len(token))
    code = info.code
    up = 0 < code < 32
    if sc.get("coap.dtls_payload"):
        # coap-dtls (IOTOPS 2022-10): the payload is the pledge's datagram, the token the JP state.
        inner = bytes(data[poff:poff + plen])
        obs = S.Obs(pkt.number, pkt.ts_ns, S.RELAY, src_ep, dst_ep, udp_len, plen, hash(inner),
                    scheme="coap-dtls", direction=S.UP if up else S.DOWN, state=bytes(token),
                    pledge=_pledge_from_state(pkt, token), facts=S.dtls_facts(data, poff, poff + plen))
        return obs, usrc, start, end, (usrc, poff, plen), tspan
    role = sc.get("coap.cojp")
    reqs: dict[int, None] = pkt.cap.state.setdefault(STATE_COJP_REQUESTS, {})
    payload = bytes(data[poff:poff + plen])
    if role is None and up and _cojp_join_request(info, data):
        role = "proxy-request"
    if role == "proxy-request":
        reqs[pkt.number] = None
        if len(reqs) > MAX_COJP_REQUESTS:
            del reqs[next(iter(reqs))]
        kind, d, state = S.COJP_PLEDGE, S.UP, None
    elif role in ("relayed-request", "relayed-response"):
        kind, d, state = S.COJP_RELAY, S.UP if role == "relayed-request" else S.DOWN, S.cojp_state(bytes(token))
    elif code >= 64 and info.request_frame in reqs:
        kind, d, state = S.COJP_PLEDGE, S.DOWN, None
    else:
        return None
    obs = S.Obs(pkt.number, pkt.ts_ns, kind, src_ep, dst_ep, udp_len,
                udp_len if kind == S.COJP_PLEDGE else -1, hash(payload), scheme="cojp", direction=d,
                state=state, code=code,
                pledge=_pledge_from_state(pkt, token) if state is not None else None)
    inner_span = (usrc, start, udp_len) if kind == S.COJP_PLEDGE else (usrc, poff, plen)
    sspan = (usrc, info.token_offset, len(state)) if state is not None else None
    return obs, usrc, start, end, inner_span, sspan


def _cojp_join_request(info: Any, data: bytes) -> bool:
    """RFC 9031 §8.1: the pledge's Join Request is OSCORE-protected and names the JRC by Uri-Host
    "6tisch.arpa" (Proxy-Scheme is optional in practice: aiocoap's pledge does not send it)."""
    oscore = host = False
    for num, voff, ln in info.options:
        if num == OPT_OSCORE:
            oscore = True
        elif num == OPT_URI_HOST and bytes(data[voff:voff + ln]) == COJP_HOST:
            host = True
    return oscore and (host or info.path == COJP_PATH) and len(info.token) <= MAX_PLEDGE_TOKEN


def _pledge_from_state(pkt: Packet, token: bytes) -> S.Endpoint | None:
    """With ``-o jpy.header_key``, the pledge named by a token that carries the draft's header."""
    key = pkt.cap.prefs.get("jpy.header_key") if pkt.cap is not None else None
    if not key or len(token) < 16:
        return None
    from jpdissect.framing.jpy import open_token

    try:
        res, _inner = open_token(bytes(key), bytes(token))
    except ValueError:
        return None
    h = res.header
    if h is None:
        return None
    import ipaddress

    return ipaddress.ip_address(h.address).packed, h.srcport


# ---------------------------------------------------------------------------
# Fields


def _fields(pkt: Packet, info: S.FrameInfo, usrc: int, start: int, end: int, inner: Span,
            state: Span | None) -> None:
    proto, text = pkt.protocol, pkt.info
    lay = pkt.add_layer(P, start, end - start, usrc)
    pkt.protocol = proto  # an analysis layer: the Protocol column stays the decoded protocol's
    pkt.info = text
    add = lay.add
    if info.scheme:
        add(FJ.scheme, info.scheme, start, 0, generated=True)
    if info.session is not None:
        add(FJ.session, info.session, start, 0, generated=True)
    if info.leg:
        add(FJ.leg, info.leg, start, 0, generated=True)
    if info.direction:
        add(FJ.direction, info.direction, start, 0, generated=True)
    if info.copy:
        add(FJ.copy, info.copy, start, 0, generated=True)
    if info.inner_len is not None:
        if inner[0] == usrc:
            add(FJ.inner_len, info.inner_len, inner[1], inner[2], generated=True)
        else:
            add(FJ.inner_len, info.inner_len, start, 0, generated=True)
    if info.overhead is not None:
        add(FJ.overhead, info.overhead, start, 0, generated=True)
    if info.peer is not None:
        add(FJ.peer_frame, info.peer, start, 0, generated=True)
    if info.delay_ns is not None:
        add(FJ.forward_delay, info.delay_ns, start, 0, generated=True)
    if info.state is not None:
        if state is not None and state[0] == usrc:
            add(FJ.state, info.state, state[1], state[2])
        else:
            add(FJ.state, info.state, start, 0, generated=True)
    if info.pledge:
        add(FJ.pledge, info.pledge, start, 0, generated=True)
    if pkt.tree:
        parts = [info.scheme or "scheme unknown"]
        if info.session is not None:
            parts.append(f"session {info.session}")
        if info.leg:
            parts.append(f"{info.leg} leg")
        if info.direction:
            parts.append(info.direction)
        if info.peer is not None:
            parts.append(f"twin in frame {info.peer}")
        lay.label = "Join Proxy: " + ", ".join(parts) + ("" if info.final else " (single pass)")


__all__ = ["FJ", "P", "RelayFacts", "install", "observe", "postdissect", "starts_like_dtls"]
