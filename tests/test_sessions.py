"""Pledge sessions across both Join Proxy legs: twins, sessions, handshake timing, outcomes, the
two-pass jp fields, the DataFrame and ``jpdissect sessions``.

The ground truth is independent of this code: the lab's Join Proxy counts what it relays per pledge
(``SCHEME.lab.json``: datagrams and bytes per leg and direction) and each pledge reports whether its
handshake finished; handshake times are recomputed here from the DTLS dissector's record fields.
Captures: ``captures/*.pcapng`` (3 concurrent pledges, 15 % loss) and ``tests/data/jp/concurrent``
(5 concurrent pledges, 10 % loss; commands in ``tests/data/jp/README.md``), the draft's appendix
example, and the OpenThread radio capture.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from jpdissect import sessions_cli
from jpdissect.capture import Frame, open_capture
from jpdissect.dissectors import load_all
from jpdissect.dissectors.registry import REGISTRY
from jpdissect.engine import Engine
from jpdissect.model import Packet, prime, unprime_all
from jpdissect.sessions import (
    COLUMNS,
    TwoPassError,
    first_pass,
    needs_two_pass,
    prepare_two_pass,
    session_table,
    sessions,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "jp"
CAPTURES = ROOT / "captures"
SCHEMES = ("stateful", "jpy", "jpy-legacy", "coap-dtls", "thread-relay", "cojp")
NETWORK_KEY = "17c627a33d5927bf887ae312092611b7"
THREAD_CAPTURE_CANDIDATES = (
    ROOT / "tests" / "data" / "thread" / "thread_two_joiners.pcapng",
    Path("/work/shared/captures/thread/thread_two_joiners.pcapng"),
)

_spec = importlib.util.spec_from_file_location("jp_fixtures", DATA / "make_fixtures.py")
assert _spec is not None and _spec.loader is not None
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

CASES = [pytest.param(CAPTURES / f"{s}.pcapng", CAPTURES / f"{s}.lab.json", s, id=f"bundled-{s}")
         for s in SCHEMES] + \
        [pytest.param(DATA / "concurrent" / f"{s}.pcapng.gz", DATA / "concurrent" / f"{s}.lab.json", s,
                      id=f"concurrent-{s}") for s in SCHEMES]

JP_FIELDS = ["jp.scheme", "jp.session", "jp.leg", "jp.direction", "jp.copy", "jp.inner_len", "jp.overhead",
             "jp.peer_frame", "jp.forward_delay", "jp.state", "jp.pledge"]
HS_FIELDS = ["dtls.handshake.type", "dtls.record.content_type", "dtls.record.epoch", "coap.code"]


def _two_pass(path: Path, prefs: Iterable[str] = (), fields: Iterable[str] = ()) -> list[Packet]:
    """The second pass of ``read`` with jp fields asked for (what the CLI will do)."""
    load_all()
    unprime_all()
    prime([*JP_FIELDS, *fields])
    eng = prepare_two_pass(lambda: Engine(prefs=list(prefs), tree=False, cols=True), str(path))
    with open_capture(str(path)) as rd:
        return [eng.dissect(f) for f in rd]


def _lab(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _key(addr: str, port: int) -> str:
    return f"[{addr}]:{port}"


# ---------------------------------------------------------------------------
# Sessions against the Join Proxy's own counters


@pytest.mark.parametrize("cap, labfile, scheme", CASES)
def test_one_session_per_pledge_with_the_jp_counters(cap: Path, labfile: Path, scheme: str) -> None:
    lab = _lab(labfile)
    rows = session_table(str(cap)).rows()
    jp = lab["join_proxy"]["pledges"]
    assert len(rows) == len(jp) == len(lab["pledges"])
    by = {_key(r["pledge"], r["pledge_port"]): r for r in rows}
    assert set(by) == set(jp)
    for k, c in jp.items():
        r = by[k]
        assert r["scheme"] == scheme
        assert (r["pledge_leg"], r["registrar_leg"]) == ("captured", "captured")
        assert r["up_pledge_datagrams"] == c["datagrams_from_pledge"]
        assert r["up_pledge_bytes"] == c["bytes_from_pledge"]
        assert r["up_registrar_datagrams"] == c["datagrams_to_registrar"]
        assert r["up_registrar_bytes"] == c["bytes_to_registrar"]
        assert r["down_registrar_datagrams"] == c["datagrams_from_registrar"]
        assert r["down_registrar_bytes"] == c["bytes_from_registrar"]
        assert r["down_pledge_datagrams"] == c["datagrams_to_pledge"]
        assert r["down_pledge_bytes"] == c["bytes_to_pledge"]
        assert r["forwarded"] == c["datagrams_from_pledge"] + c["datagrams_to_pledge"]
        assert r["unforwarded"] == 0
        assert r["jp_pledge_side"].startswith("[fe80::1]:")
        assert r["jp_registrar_side"].startswith("[2001:db8:1::1]:")
        assert r["registrar"].startswith("[2001:db8:1::2]:")
    # The outcome agrees with what each pledge itself reported.
    for p in lab["pledges"]:
        r = next(r for r in rows if r["pledge"] == p["address"])
        done = p["exchange"] if scheme == "cojp" else p["handshake"]
        assert (r["outcome"] == "completed") == bool(done), (p, r["outcome"])


# ---------------------------------------------------------------------------
# Per-frame twins and handshake timing, from the two-pass jp fields


@pytest.mark.parametrize("cap, labfile, scheme", CASES)
def test_every_relayed_frame_has_its_twin(cap: Path, labfile: Path, scheme: str) -> None:
    pk = _two_pass(cap, fields=["frame.protocols"])
    by = {p.number: p for p in pk}
    relayed = [p for p in pk if p.layer("icmpv6") is None]
    assert relayed
    for p in pk:
        # Nothing is left as undecoded data (ICMPv6 errors quote a DTLS datagram; they decode too).
        assert "data" not in p.protocols.split(":"), (p.number, p.protocols)
    for p in relayed:
        assert p.get("jp.scheme") == scheme
        peer = p.get("jp.peer_frame")
        assert peer is not None, p.number
        q = by[peer]
        assert q.get("jp.peer_frame") == p.number
        assert q.get("jp.session") == p.get("jp.session")
        assert {p.get("jp.leg"), q.get("jp.leg")} == {"pledge", "registrar"}
        assert q.get("jp.direction") == p.get("jp.direction")
        assert {p.get("jp.copy"), q.get("jp.copy")} == {"ingress", "egress"}
        ingress, egress = (p, q) if p.get("jp.copy") == "ingress" else (q, p)
        assert ingress.ts_ns < egress.ts_ns
        assert p.get("jp.forward_delay") == egress.ts_ns - ingress.ts_ns
        assert p.get("jp.inner_len") == q.get("jp.inner_len")
        if p.get("jp.leg") == "pledge":
            assert p.get("jp.overhead") == 0 and p.get("jp.state") is None
        else:
            assert p.get("jp.overhead") > 0 or scheme == "stateful"
            assert (p.get("jp.state") is None) == (scheme == "stateful")
        # The JP state is echoed: the up and down copies of a session on the registrar leg carry one.
    states: dict[int, set[bytes]] = {}
    for p in relayed:
        if p.get("jp.leg") == "registrar" and p.get("jp.state") is not None:
            states.setdefault(p.get("jp.session"), set()).add(p.get("jp.state"))
    assert all(len(v) == 1 for v in states.values())
    assert len({p.get("jp.session") for p in relayed}) == len(_lab(labfile)["pledges"])


def _records(p: Packet) -> list[tuple[int, int]]:
    return list(zip(p.values("dtls.record.content_type"), p.values("dtls.record.epoch"), strict=True))


@pytest.mark.parametrize("cap, labfile, scheme", CASES)
def test_handshake_duration_first_clienthello_to_last_finished(cap: Path, labfile: Path, scheme: str) -> None:
    """DTLS 1.2: from the first ClientHello (either leg) to the last handshake record of epoch 1 sent by
    the server (its Finished); CoJP: from the first join request to the last 2.xx answer."""
    pk = _two_pass(cap, fields=HS_FIELDS)
    table = session_table(str(cap))
    for s in table.rows():
        frames = [p for p in pk if p.get("jp.session") == s["session"]]
        if scheme == "cojp":
            starts = [p for p in frames if 0 < (p.get("coap.code") or 0) < 32]
            ends = [p for p in frames if p.get("jp.direction") == "down" and 64 <= (p.get("coap.code") or 0) < 96]
        else:
            starts = [p for p in frames if 1 in p.values("dtls.handshake.type")]
            ends = [p for p in frames if p.get("jp.direction") == "down"
                    and any(ct == 22 and ep >= 1 for ct, ep in _records(p))]
        first, last = min(starts, key=lambda p: p.ts_ns), max(ends, key=lambda p: p.ts_ns)
        assert (s["handshake_start_frame"], s["handshake_end_frame"]) == (first.number, last.number)
        assert s["handshake_duration_ns"] == last.ts_ns - first.ts_ns
        assert s["handshake_duration"] == pytest.approx((last.ts_ns - first.ts_ns) / 1e9)


# ---------------------------------------------------------------------------
# One leg only


@pytest.mark.parametrize("cap, labfile, scheme", CASES)
@pytest.mark.parametrize("leg, interface", [("pledge", 0), ("registrar", 1)])
def test_one_leg_only_still_gives_the_sessions(cap: Path, labfile: Path, scheme: str, leg: str,
                                               interface: int) -> None:
    """The lab writes the pledge hop as interface 0 and the Registrar hop as interface 1."""
    with open_capture(str(cap)) as rd:
        frames = [f for f in rd if f.interface_id == interface]
    lab = _lab(labfile)
    prefs = [f"jpy.header_key:{lab['jp_header_key']}"] if "jp_header_key" in lab else []
    eng = Engine(prefs=prefs, tree=False, cols=False)
    rows = first_pass(eng, None, frames).rows()  # type: ignore[arg-type]
    assert len(rows) == len(lab["pledges"])
    other = "registrar" if leg == "pledge" else "pledge"
    for r in rows:
        assert r[f"{leg}_leg"] == "captured" and r[f"{other}_leg"] == "not captured"
        assert r["forwarded"] == 0
    pledges = {p["address"] for p in lab["pledges"]}
    named = {r["pledge"] for r in rows}
    if leg == "pledge" or scheme in ("jpy-legacy", "thread-relay") or prefs:
        assert named == pledges  # the pledge leg shows it, and so do these framings (or the key)
    if leg == "registrar" and scheme != "stateful":
        assert {r["scheme"] for r in rows} == {scheme}
    if leg == "pledge" and scheme in ("thread-relay", "cojp"):
        assert {r["scheme"] for r in rows} == {scheme}  # the joiner port / the CoJP request say so


# ---------------------------------------------------------------------------
# The draft's example, and the real OpenThread radio capture


def test_draft_appendix_example_as_one_session() -> None:
    pk = _two_pass(DATA / "draft_appendix.pcap")
    assert [p.get("jp.peer_frame") for p in pk] == [2, 1, 4, 3]
    assert [p.get("jp.leg") for p in pk] == ["pledge", "registrar", "registrar", "pledge"]
    assert [p.get("jp.direction") for p in pk] == ["up", "up", "down", "down"]
    assert [p.get("jp.overhead") for p in pk] == [0, 21, 20, 0]
    assert [p.get("jp.inner_len") for p in pk] == [427, 427, 60, 60]
    assert [p.get("jp.forward_delay") for p in pk] == [1_000_000, 1_000_000, 1_000_000, 1_000_000]
    assert pk[1].get("jp.state") == fx.draft_values()["header"]
    # The jp layer is analysis: it changes neither the Protocol nor the Info column.
    assert pk[1].protocol == "DTLS" and "Client Hello" in pk[1].info
    (row,) = session_table(str(DATA / "draft_appendix.pcap")).rows()
    assert row["scheme"] == "jpy" and (row["pledge"], row["pledge_port"]) == (fx.PLEDGE, fx.PLEDGE_PORT)
    assert row["registrar"] == "[2001:db8:0:abcd::52]:7634"
    assert row["jp_pledge_side"] == "[fe80::1234:5678]:45965"
    assert row["state"] == fx.draft_values()["header"].hex()
    assert row["registrar_overhead_bytes"] == 41
    assert row["outcome"] == "in progress"  # the example stops at the HelloVerifyRequest


def _thread_capture() -> Path | None:
    return next((p for p in THREAD_CAPTURE_CANDIDATES if p.exists()), None)


def test_openthread_radio_capture_two_thread_relay_sessions() -> None:
    path = _thread_capture()
    if path is None:
        pytest.skip("thread_two_joiners.pcapng not available")
    load_all()
    if not {"wpan", "6lowpan"} <= set(REGISTRY.named):
        pytest.skip("the 802.15.4 / 6LoWPAN dissectors have not landed")
    prefs = [f"thread.network_key:{NETWORK_KEY}"]
    rows = session_table(str(path), prefs=prefs).rows()
    assert len(rows) == 2
    j3, j4 = rows
    # README: joiners use their Joiner ID with U/L flipped as IID, port 1000 -> 1000; both joined.
    assert (j3["pledge"], j3["pledge_port"]) == ("fe80::9033:5c4b:3208:30fb", 1000)
    assert (j4["pledge"], j4["pledge_port"]) == ("fe80::1a3:821e:5594:8f6", 1000)
    for r in rows:
        assert r["scheme"] == "thread-relay" and r["outcome"] == "completed"
        assert (r["pledge_leg"], r["registrar_leg"]) == ("captured", "captured")
        assert r["jp_pledge_side"] == "[fe80::f0cd:bbb9:4825:e880]:1000"  # node 2, the Joiner Router
        assert r["unforwarded"] == 0 and r["kek"] is not None
    # "joiner 4 retransmitted its first ClientHello"
    assert (j3["retransmissions_up"], j4["retransmissions_up"]) == (0, 1)
    # Each join ends with JOIN_ENT to the joiner, MAC-secured with the KEK of that join's c/tx.
    assert j3["events"].startswith("JOIN_ENT@") and j4["events"].startswith("JOIN_ENT@")
    assert j3["kek"] != j4["kek"]
    pk = _two_pass(path, prefs=prefs, fields=HS_FIELDS + ["meshcop.tlv.kek"])
    keks = {p.get("jp.session"): p.get("meshcop.tlv.kek").hex() for p in pk if p.get("meshcop.tlv.kek")}
    assert keks == {1: j3["kek"], 2: j4["kek"]}
    relayed = [p for p in pk if p.get("jp.copy") is not None]
    assert len(relayed) == 2 * (j3["forwarded"] + j4["forwarded"])  # "forwarded" counts pairs
    # Every relayed frame has its twin -- joiner 4's first ClientHello too: it reached the Commissioner
    # in a c/rx that was never answered.
    assert [p.number for p in relayed if p.get("jp.peer_frame") is None] == []
    for s, r in ((1, j3), (2, j4)):
        frames = [p for p in pk if p.get("jp.session") == s]
        first = min((p for p in frames if 1 in p.values("dtls.handshake.type")), key=lambda p: p.ts_ns)
        last = max((p for p in frames if p.get("jp.direction") == "down" and
                    any(ct == 22 and ep >= 1 for ct, ep in _records(p))), key=lambda p: p.ts_ns)
        assert r["handshake_duration_ns"] == last.ts_ns - first.ts_ns


# ---------------------------------------------------------------------------
# Outcomes other than "completed"


def _frames(items: list[tuple[int, bytes]]) -> list[Frame]:
    return [Frame(ts, len(d), len(d), d, fx.LINKTYPE_IPV6) for ts, d in items]


def _alert() -> bytes:
    """A plaintext fatal handshake_failure alert (RFC 6347 §4.1, RFC 5246 §7.2)."""
    return b"\x15\xfe\xfd\x00\x00" + (1).to_bytes(6, "big") + b"\x00\x02\x02\x28"


def test_alert_abandoned_and_in_progress() -> None:
    v = fx.draft_values()
    ms, s = 1_000_000, 1_000_000_000
    ch = (fx.T0, fx.udp6(fx.PLEDGE, fx.JP_LL, fx.PLEDGE_PORT, fx.JOIN_PORT, v["client_hello"]))
    alert = (fx.T0 + ms, fx.udp6(fx.JP_LL, fx.PLEDGE, fx.JOIN_PORT, fx.PLEDGE_PORT, _alert()))
    later = (fx.T0 + 100 * s, fx.udp6("fe80::9", "fe80::8", 5683, 5683, bytes.fromhex("50010001")))
    (r,) = first_pass(Engine(), None, _frames([ch, alert])).rows()  # type: ignore[arg-type]
    assert (r["outcome"], r["alerts"], r["alert"]) == ("alert", 1, "2/40")
    (r,) = first_pass(Engine(), None, _frames([ch, later])).rows()  # type: ignore[arg-type]
    assert r["outcome"] == "abandoned"  # silent for 100 s > jp.abandon_timeout (60 s)
    (r,) = first_pass(Engine(prefs=["jp.abandon_timeout:200"]), None,  # type: ignore[arg-type]
                      _frames([ch, later])).rows()
    assert r["outcome"] == "in progress"


# ---------------------------------------------------------------------------
# API surface


def test_needs_two_pass() -> None:
    assert needs_two_pass(["jp.peer_frame"])
    assert needs_two_pass([], ["jp.scheme"])
    assert needs_two_pass(["frame.number"], ["jp"])
    assert not needs_two_pass(["frame.number", "jpy.header", "dtls.record.epoch"], ["udp.port"])


def test_two_pass_needs_a_file() -> None:
    with pytest.raises(TwoPassError, match="stdin"):
        prepare_two_pass(Engine, "-")
    with pytest.raises(TwoPassError):
        prepare_two_pass(Engine, io.BytesIO(b""))


def test_single_pass_knows_the_egress_twins_only() -> None:
    """Without the first pass an ingress copy cannot know the frame that comes after it."""
    from jpdissect.dissectors import jp

    load_all()
    unprime_all()
    prime(JP_FIELDS)
    eng = Engine(tree=False, cols=True)
    jp.install(eng)
    with open_capture(str(DATA / "draft_appendix.pcap")) as rd:
        pk = [eng.dissect(f) for f in rd]
    assert [p.get("jp.peer_frame") for p in pk] == [None, 1, None, 3]
    assert [p.get("jp.copy") for p in pk] == ["ingress", "egress", "ingress", "egress"]


def test_dataframe() -> None:
    import pandas as pd

    path = str(DATA / "concurrent" / "jpy.pcapng.gz")
    df = sessions(path)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 5 and df["session"].tolist() == [1, 2, 3, 4, 5]
    assert (df["outcome"] == "completed").all()
    rows = session_table(path).rows()
    assert df.to_dict("records")[0]["handshake_duration_ns"] == rows[0]["handshake_duration_ns"]
    assert df["handshake_duration"].dtype.kind == "f"
    empty = session_table(str(DATA / "openthread_relay.pcap")).dataframe()
    assert list(empty.columns) == list(COLUMNS)


# ---------------------------------------------------------------------------
# jpdissect sessions


def test_cli_formats(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(CAPTURES / "jpy.pcapng")
    rows = session_table(path).rows()
    assert sessions_cli.main(["-r", path]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["#", "scheme", "pledge"] and len(out) == 1 + len(rows)
    assert all("completed" in line for line in out[1:])
    assert sessions_cli.main(["-r", path, "--format", "csv"]) == 0
    got = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [g["pledge"] for g in got] == [r["pledge"] for r in rows]
    assert list(got[0]) == list(COLUMNS)
    assert sessions_cli.main(["-r", path, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == rows


def test_cli_errors_and_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert sessions_cli.main(["-r", str(CAPTURES / "jpy.pcapng"), "-o", "nope:1"]) == 1
    assert "unknown preference" in capsys.readouterr().err
    assert sessions_cli.main(["-r", str(ROOT / "no-such-file.pcapng")]) == 2
    capsys.readouterr()

    class _Stdin:
        buffer = io.BytesIO((CAPTURES / "cojp.pcapng").read_bytes())

    monkeypatch.setattr(sys, "stdin", _Stdin())
    assert sessions_cli.main(["-r", "-", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_cli_decode_as_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    """-d and -o work as for read: JPY on its port without the heuristic, the header decrypted."""
    key = json.loads((CAPTURES / "jpy.keys" / "keys.json").read_text())["jp_header_key"]["hex"]
    path = str(CAPTURES / "jpy.pcapng")
    # Registrar leg only would need the key to name the pledges; with both legs the names agree.
    assert sessions_cli.main(["-r", path, "--format", "json", "-o", "jpy.heuristic:false",
                              "-d", "udp.port==7634,jpy", "-o", f"jpy.header_key:{key}"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and {r["scheme"] for r in rows} == {"jpy"}
    lab = _lab(CAPTURES / "jpy.lab.json")
    assert {_key(r["pledge"], r["pledge_port"]) for r in rows} == set(lab["join_proxy"]["pledges"])

