"""What if the same traffic had gone through another Join Proxy scheme?

Every observed inner datagram -- what the pledge sent, or what the Registrar's server answered --
is framed again under every scheme, and the bytes, 802.15.4 frames and air time are compared side
by side. This is the table for the working-group meeting, so two rules hold:

* **The framings are built by the lab's own code, not by formulas.** :class:`LabFramer` drives the
  lab's :class:`~jpdissect.lab.joinproxy.JoinProxy` subclasses (upstream: ``from_pledge``) and the
  Registrar's :class:`~jpdissect.lab.registrar.Front` (downstream: ``unwrap`` then ``wrap``) in
  process, with their sockets replaced by a list. What comes out is byte for byte what the lab puts
  on the wire, which the tests check against the bundled captures: re-encoding a capture's own
  traffic under its own scheme reproduces every relayed datagram's length.
* **Every assumption is stated** (:func:`assumptions`): header and token lengths, the TLV set, the
  ports that decide UDP header compression, and the radio profile.

CoJP is a CoAP proxy: it cannot carry a DTLS datagram, and the DTLS schemes carry a CoJP message as
opaque bytes. Cells that a scheme cannot carry are counted as ``not_applicable``, never guessed.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jpdissect.coapmsg import CoapMessage
from jpdissect.framing import jpy
from jpdissect.stats import _arrow as A
from jpdissect.stats import radio
from jpdissect.stats.relayed import DOWN, SCHEMES, UP

#: A fixed JP key: only lengths matter here, and a fixed key makes runs byte-identical.
WHATIF_KEY = bytes(range(16))
#: The lab's addresses (captures/README.md): JP link-local and routable, Registrar.
JP_LL, JP_BB, REGISTRAR = "fe80::1", "2001:db8:1::1", "2001:db8:1::2"
JP_IFINDEX = 2
#: Where the pledge is unknown (a datagram seen only on the Registrar hop inside an encrypted
#: header): a link-local pledge on a dynamic port (RFC 6335 §6), so legacy JPY's port integer
#: takes its usual 3 bytes.
PLACEHOLDER_PLEDGE = ("fe80::50:4cff:fe00:ff", 49152)
#: The JP's Registrar-side source port when the scheme does not fix one: dynamic, not
#: compressible by RFC 6282 §4.3.3.
EPHEMERAL_PORT = 49152


def _lab() -> tuple[Any, Any, Any, Any, Any, Any]:
    from jpdissect.lab.config import LabConfig, ports_for
    from jpdissect.lab.joinproxy import JOIN_PROXIES, _Mapping
    from jpdissect.lab.registrar import Backend, Flow, Front

    return LabConfig, ports_for, JOIN_PROXIES, _Mapping, (Backend, Flow), Front


class _Sink:
    """Stands in for a socket: whatever the lab sends is appended to a list."""

    def __init__(self, out: list[bytes]) -> None:
        self.out = out

    def sendto(self, data: bytes, *_addr: Any) -> None:
        self.out.append(bytes(data))


class LabFramer:
    """One scheme's framing, built by the lab's Join Proxy and Registrar front, without sockets."""

    def __init__(self, scheme: str, key: bytes = WHATIF_KEY) -> None:
        LabConfig, ports_for, join_proxies, self._mapping, (self._backend, self._flow), front = _lab()
        self.scheme = scheme
        self.ports = ports_for(scheme, False)
        cfg = LabConfig(scheme=scheme, ports=self.ports, jp_lln_addr=JP_LL, jp_lln_ifindex=JP_IFINDEX,
                        jp_bb_addr=JP_BB, registrar_addr=REGISTRAR, n_pledges=0, jp_key_hex=key.hex(),
                        psk_hex="", psk_hint="", keydir="", keylog_dir="", thread_kek_hex=bytes(16).hex())
        self.out: list[bytes] = []
        self.jp = join_proxies[scheme](cfg)
        self.jp.to_registrar = self.out.append  # type: ignore[method-assign]  # the JP's only way out
        self.front = front(cfg) if scheme != "cojp" else None
        self.flows: dict[Any, Any] = {}

    # -- the relay-leg ports (they decide RFC 6282 UDP port compression) ------------------------
    def relay_ports(self, direction: str) -> tuple[int, int]:
        jp_port = self.ports.jp_upstream or EPHEMERAL_PORT
        reg = self.ports.registrar
        return (jp_port, reg) if direction == UP else (reg, jp_port)

    # -- building ----------------------------------------------------------------------------------
    def up(self, inner: bytes, host: str, port: int, flow_key: Any = None) -> bytes | None:
        """The JP's relay message for a datagram from the pledge (None: the scheme cannot carry it)."""
        self.out.clear()
        if self.scheme == "stateful":
            key = (host, port)
            if key not in self.jp.maps:
                self.jp.maps[key] = self._mapping(host, port, transport=_Sink(self.out))
        self.jp.from_pledge(inner, host, port)
        if not self.out:
            return None
        msg = self.out[-1]
        fk = flow_key if flow_key is not None else (host, port)
        if self.front is not None and fk not in self.flows:
            # The Registrar learns the flow from the first request; what it echoes (JPY header,
            # token, joiner IID/port/RLOC) is the same in every request of the pledge.
            got = self.front.unwrap(msg, (JP_BB, self.relay_ports(UP)[0]))
            if got is not None:
                flow = self.flows[fk] = self._flow(got[0], (JP_BB, 0), self._backend(0, "openssl"))
                flow.ctx = got[2]
        return msg

    def down(self, inner: bytes, host: str, port: int, flow_key: Any = None) -> bytes | None:
        """The Registrar's relay message carrying ``inner`` back to the pledge."""
        fk = flow_key if flow_key is not None else (host, port)
        if self.scheme == "cojp":
            msg, errs = CoapMessage.decode(inner)
            if msg is None or errs:
                return None
            # The JRC answers with the token it got: the JP's sealed state, then the pledge's token
            # (RFC 8974 §3; lab.joinproxy.CojpJoinProxy and the Registrar's TokenShim).
            msg.token = jpy.seal_token(self.jp.key, self.jp.header_for(host, port), msg.token)
            return msg.encode()
        flow = self.flows.get(fk)
        if flow is None:
            # A reply before any request of this pledge was seen: learn the flow from a request the
            # JP would have sent (its content does not matter, its framing state does).
            saved = list(self.out)
            self.up(b"\x16\xfe\xfd" + bytes(10), host, port, fk)
            self.out[:] = saved
            flow = self.flows.get(fk)
            if flow is None:
                return None
        return bytes(self.front.wrap(flow, inner)) if self.front is not None else None


def _host(addr: bytes | None, port: int) -> tuple[str, int]:
    if not addr:
        return PLACEHOLDER_PLEDGE
    return str(ipaddress.ip_address(addr)), port or PLACEHOLDER_PLEDGE[1]


@dataclass
class _Agg:
    datagrams: int = 0
    not_applicable: int = 0
    inner_bytes: int = 0
    relay_bytes: int = 0
    overhead: Counter[int] = field(default_factory=Counter)
    frames: Counter[int] = field(default_factory=Counter)
    airtime_us: int = 0
    channel_us: int = 0
    psdu_bytes: int = 0
    unfragmentable: int = 0
    matches_observed: int = 0
    differs_observed: int = 0

    def merge(self, o: _Agg) -> None:
        for k in ("datagrams", "not_applicable", "inner_bytes", "relay_bytes", "airtime_us", "channel_us",
                  "psdu_bytes", "unfragmentable", "matches_observed", "differs_observed"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.overhead.update(o.overhead)
        self.frames.update(o.frames)


class WhatIf:
    """Scan consumer: re-encode every relayed datagram's inner bytes under every scheme.

    Aggregates are kept per scheme (bounded); with ``keep_rows`` also one row per datagram and
    scheme, for the per-datagram table (memory then grows with the capture).
    """

    wants_frames = False

    def __init__(self, schemes: Iterable[str] = SCHEMES,
                 relay_profile: str | radio.LinkProfile = radio.DEFAULT_RELAY_PROFILE,
                 pledge_profile: str | radio.LinkProfile = radio.DEFAULT_PLEDGE_PROFILE,
                 keep_rows: bool = False, capture: str = "") -> None:
        self.schemes = tuple(schemes)
        self.relay_profile = radio.profile(relay_profile)
        self.pledge_profile = radio.profile(pledge_profile)
        self.framers = {s: LabFramer(s) for s in self.schemes}
        self.aggs: dict[str, _Agg] = {s: _Agg() for s in self.schemes}
        self.pledge = _Agg()
        self.observed: Counter[str] = Counter()
        self.keep_rows = keep_rows
        self.capture = capture
        self.rows: dict[str, list[Any]] = {k: [] for k in ROW_TYPES}
        self.skipped = 0
        self.refused: Counter[str] = Counter()

    def frame(self, fi: Any) -> None:
        pass

    def datagram(self, dg: Any) -> None:
        if dg.relay is None or dg.direction not in (UP, DOWN):
            return
        inner = dg.pledge.payload if dg.pledge is not None else dg.inner
        if inner is None:
            self.skipped += 1  # cojp seen on the Registrar hop only: the pledge's copy is unknown
            return
        host, port = _host(dg.pledge_addr, dg.pledge_port)
        flow = (dg.session, host, port)
        if dg.scheme:
            self.observed[dg.scheme] += 1
        p = dg.pledge
        if p is not None:
            c = radio.cost_or_none(self.pledge_profile, len(inner), p.sport, p.dport, p.hlim)
            self._count(self.pledge, len(inner), len(inner), c)
        observed_len = len(dg.relay.payload or b"")
        for s in self.schemes:
            fr = self.framers[s]
            a = self.aggs[s]
            try:
                msg = fr.up(inner, host, port, flow) if dg.direction == UP else fr.down(inner, host, port, flow)
            except (ValueError, TypeError, KeyError) as exc:
                # The lab's code refuses what it cannot frame (an IPv4 pledge for Thread's IID, ...).
                msg = None
                self.refused[f"{s}: {type(exc).__name__}: {exc}"] += 1
            if msg is None:
                a.not_applicable += 1
                if self.keep_rows:
                    self._row(dg, s, len(inner), None, None)
                continue
            sport, dport = fr.relay_ports(dg.direction)
            c = radio.cost_or_none(self.relay_profile, len(msg), sport, dport)
            self._count(a, len(inner), len(msg), c)
            if s == dg.scheme:
                if len(msg) == observed_len:
                    a.matches_observed += 1
                else:
                    a.differs_observed += 1
            if self.keep_rows:
                self._row(dg, s, len(inner), len(msg), c)

    @staticmethod
    def _count(a: _Agg, n_inner: int, n_relay: int, c: radio.RadioCost | None) -> None:
        a.datagrams += 1
        a.inner_bytes += n_inner
        a.relay_bytes += n_relay
        a.overhead[n_relay - n_inner] += 1
        if c is None:
            a.unfragmentable += 1
            return
        a.frames[c.frames] += 1
        a.airtime_us += c.airtime_us
        a.channel_us += c.channel_us
        a.psdu_bytes += c.psdu_bytes

    def _row(self, dg: Any, scheme: str, n_inner: int, n_relay: int | None, c: radio.RadioCost | None) -> None:
        r = self.rows
        r["capture"].append(self.capture)
        r["frame"].append(dg.relay.number)
        r["session"].append(dg.session)
        r["direction"].append(dg.direction)
        r["observed_scheme"].append(dg.scheme)
        r["scheme"].append(scheme)
        r["inner_bytes"].append(n_inner)
        r["relay_bytes"].append(n_relay)
        r["overhead_bytes"].append(None if n_relay is None else n_relay - n_inner)
        r["radio_frames"].append(c.frames if c else None)
        r["airtime_us"].append(c.airtime_us if c else None)

    def merge(self, other: WhatIf) -> None:
        for s, a in other.aggs.items():
            self.aggs.setdefault(s, _Agg()).merge(a)
        self.pledge.merge(other.pledge)
        self.observed.update(other.observed)
        self.skipped += other.skipped
        self.refused.update(other.refused)
        for k, v in other.rows.items():
            self.rows[k].extend(v)

    # -- tables ----------------------------------------------------------------------------------
    def dataframe(self) -> pd.DataFrame:
        """Side by side, one row per scheme, plus the pledge hop (identical for every scheme)."""
        return whatif_frame(self.aggs, self.pledge, self.observed)

    def rows_frame(self) -> pd.DataFrame:
        return A.frame({k: (ROW_TYPES[k], v) for k, v in self.rows.items()})

    def frames_histogram(self) -> pd.DataFrame:
        """Radio frames per datagram, counted per scheme (for the report's plot)."""
        recs = [(s, f, n) for s in self.schemes for f, n in sorted(self.aggs[s].frames.items())]
        recs += [("pledge hop", f, n) for f, n in sorted(self.pledge.frames.items())]
        return A.frame({"scheme": (A.STR, [r[0] for r in recs]), "radio_frames": (A.I32, [r[1] for r in recs]),
                        "datagrams": (A.I64, [r[2] for r in recs])})

    def assumptions(self) -> list[str]:
        return assumptions(self.relay_profile, self.pledge_profile, self.schemes)


ROW_TYPES: dict[str, Any] = {
    "capture": A.STR, "frame": A.U32, "session": A.I64, "direction": A.STR, "observed_scheme": A.STR,
    "scheme": A.STR, "inner_bytes": A.I32, "relay_bytes": A.I32, "overhead_bytes": A.I32,
    "radio_frames": A.I32, "airtime_us": A.I64,
}

WHATIF_TYPES: dict[str, Any] = {
    "scheme": A.STR, "observed_datagrams": A.I64, "datagrams": A.I64, "not_applicable": A.I64,
    "inner_bytes": A.I64, "relay_bytes": A.I64, "overhead_bytes": A.I64, "overhead_mean": A.F64,
    "overhead_min": A.I64, "overhead_max": A.I64, "bytes_vs_stateful_pct": A.F64,
    "radio_frames": A.I64, "frames_per_datagram": A.F64, "extra_frames_vs_stateful": A.I64,
    "fragmented_pct": A.F64, "airtime_ms": A.F64, "airtime_vs_stateful_pct": A.F64,
    "channel_ms": A.F64, "unfragmentable": A.I64, "reencoded_equals_observed": A.STR,
}


def whatif_frame(aggs: dict[str, _Agg], pledge: _Agg, observed: Counter[str]) -> pd.DataFrame:
    base = aggs.get("stateful")
    rows: list[dict[str, Any]] = []
    order = [s for s in SCHEMES if s in aggs] + sorted(s for s in aggs if s not in SCHEMES)
    for name, a in [*((s, aggs[s]) for s in order), ("pledge hop", pledge)]:
        n = a.datagrams
        frames = sum(k * v for k, v in a.frames.items())
        costed = sum(a.frames.values())
        over = sum(k * v for k, v in a.overhead.items())
        comparable = base is not None and base.datagrams == n and name != "pledge hop"
        base_frames = sum(k * v for k, v in base.frames.items()) if base is not None else 0
        check = None
        if a.matches_observed or a.differs_observed:
            check = f"{a.matches_observed}/{a.matches_observed + a.differs_observed}"
        rows.append({
            "scheme": name, "observed_datagrams": observed.get(name, 0) if name != "pledge hop" else None,
            "datagrams": n, "not_applicable": a.not_applicable if name != "pledge hop" else None,
            "inner_bytes": a.inner_bytes, "relay_bytes": a.relay_bytes, "overhead_bytes": over,
            "overhead_mean": over / n if n else None,
            "overhead_min": min(a.overhead) if a.overhead else None,
            "overhead_max": max(a.overhead) if a.overhead else None,
            "bytes_vs_stateful_pct": (100.0 * (a.relay_bytes - base.relay_bytes) / base.relay_bytes
                                      if comparable and base is not None and base.relay_bytes else None),
            "radio_frames": frames, "frames_per_datagram": frames / costed if costed else None,
            "extra_frames_vs_stateful": frames - base_frames if comparable else None,
            "fragmented_pct": (100.0 * sum(v for k, v in a.frames.items() if k > 1) / costed
                               if costed else None),
            "airtime_ms": a.airtime_us / 1000.0,
            "airtime_vs_stateful_pct": (100.0 * (a.airtime_us - base.airtime_us) / base.airtime_us
                                        if comparable and base is not None and base.airtime_us else None),
            "channel_ms": a.channel_us / 1000.0, "unfragmentable": a.unfragmentable,
            "reencoded_equals_observed": check,
        })
    return A.from_records(rows, WHATIF_TYPES)


#: What each scheme's re-encoding assumes, in the words the table prints.
SCHEME_ASSUMPTIONS: dict[str, str] = {
    "stateful": "datagram unchanged (draft §4.2); JP per-pledge dynamic port -> Registrar 5684",
    "jpy": "[bstr header, bstr content] (draft §4.3); header = the draft's example: 16 bytes "
           "(family, ifindex, port, IID, zero word) AES-128 encrypted; JP dynamic port -> Registrar 7634 "
           "(discovered; the draft's example port)",
    "jpy-legacy": "[bstr ip(16), uint port, uint family=2, uint ifindex, bstr content] (drafts -03..-10 §5.3); "
                  "-> 7634",
    "coap-dtls": "CoAP NON POST (up) / NON 2.05 (down), no Uri-Path, JP state = 16-byte extended token "
                 "(RFC 8974 TKL 13 + 1 extension byte), payload marker; -> 5685",
    "thread-relay": "TMF CoAP NON POST c/rx (up) / c/tx (down), 2-byte token, Uri-Path c + rx|tx; TLVs "
                    "Joiner UDP Port (2), Joiner IID (8), Joiner Router Locator (2), Joiner DTLS "
                    "Encapsulation (always extended: 4-byte TLV header), + Joiner Router KEK (16) on the first "
                    "c/tx carrying application data; 61631 -> 61631 (RFC 6282 compresses both ports to 4 bits)",
    "cojp": "RFC 9031 stateless CoAP proxy: the pledge's request re-sent with token = 16-byte sealed state "
            "|| pledge token (RFC 8974), a Proxy-Scheme option removed; -> 5683. Carries CoAP only: a DTLS datagram "
            "is not applicable",
}


def assumptions(relay_profile: radio.LinkProfile, pledge_profile: radio.LinkProfile,
                schemes: Iterable[str] = SCHEMES) -> list[str]:
    lines = [f"{s}: {SCHEME_ASSUMPTIONS.get(s, '')}" for s in schemes]
    lines.append("Framings are built by the lab's Join Proxy / Registrar code (jpdissect.lab), not by "
                 "formulas; a pledge address the capture does not reveal is taken as "
                 f"{PLACEHOLDER_PLEDGE[0]} port {PLACEHOLDER_PLEDGE[1]}.")
    lines.append(f"Registrar hop, per hop: {relay_profile.describe()}")
    lines.append(f"Pledge hop: {pledge_profile.describe()}")
    lines.append("Radio: 2.4 GHz O-QPSK 250 kbit/s (32 µs/byte), 6-byte SHR+PHR per frame, 5-byte Imm-Ack "
                 "after aTurnaroundTime (192 µs), SIFS/LIFS 192/640 µs in channel time; CSMA-CA backoff not "
                 "counted; hop limit 64 (elided).")
    return lines


__all__ = ["LabFramer", "SCHEME_ASSUMPTIONS", "WhatIf", "assumptions", "whatif_frame"]
