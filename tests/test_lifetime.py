"""State lifetimes (jpdissect.lifetime): per-conversation tables stay bounded however long the capture,
and forgetting a conversation never changes how a capture dissects.

The long captures here are real ones replayed: a DTLS 1.2 handshake with a fragmented Certificate,
two application records and a close_notify (OpenSSL, tests/data/dtls/cert_mtu256.pcap), and 37
libcoap exchanges (tests/data/coap/libcoap.pcap), each copy shifted in capture time and, where a new
pledge is meant, onto a new client port -- what a Join Proxy capture with a pledge every few
seconds looks like to the stateful dissectors. Assertions are on table sizes, never on time or RSS.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from jpdissect.dissectors import load_all

load_all()

from jpdissect import dtls_sessions  # noqa: E402
from jpdissect.capture import Frame, open_capture  # noqa: E402
from jpdissect.crypto import dtls12  # noqa: E402
from jpdissect.dissectors import coap  # noqa: E402
from jpdissect.dissectors.udp import STREAM_STATE  # noqa: E402
from jpdissect.dtls_sessions import CLOSED_IDLE_NS, list_sessions  # noqa: E402
from jpdissect.engine import Engine  # noqa: E402
from jpdissect.model import FIELDS, FT, Packet, prime, unprime_all  # noqa: E402
from jpdissect.output import summary_line, write_tree  # noqa: E402
from jpdissect.reassembly import ReassemblyTable, Status  # noqa: E402

TESTS = Path(__file__).parent
DTLS_CAPTURE = TESTS / "data" / "dtls" / "cert_mtu256.pcap"
COAP_CAPTURE = TESTS / "data" / "coap" / "libcoap.pcap"
SERVER_PORTS = (5683, 5684)
S = 1_000_000_000
# Ethernet + IPv4 without options, as tcpdump wrote these loopback captures.
SPORT_AT, DPORT_AT = 14 + 20, 14 + 22
# What may differ between two copies of the same traffic: numbers that count through the capture.
COUNTING = ("frame.number", "dtls.session", "udp.stream")
COMPARED = ("dtls.record.content_type", "dtls.record.length", "dtls.record.sequence_number",
            "dtls.handshake.type", "dtls.flight", "dtls.retransmission", "dtls.retransmission.of",
            "dtls.relayed_copy", "dtls.reassembled.length", "coap.type", "coap.code", "coap.mid",
            "coap.retransmitted", "coap.duplicate_of", "coap.ack_to", "coap.response_to",
            "coap.response_in")


def _frames(path: Path) -> list[Frame]:
    with open_capture(path) as rd:
        return list(rd)


def _replay(path: Path, copies: int, every_ns: int, new_client_port: bool) -> Iterator[Frame]:
    """``copies`` copies of a capture, copy ``i`` starting ``i * every_ns`` after the first; with
    ``new_client_port`` each copy's client side moves to its own UDP port (a new pledge)."""
    frames = _frames(path)
    t0 = frames[0].ts_ns
    for i in range(copies):
        for fr in frames:
            data = bytearray(fr.data)
            if new_client_port:
                for at in (SPORT_AT, DPORT_AT):
                    port = struct.unpack_from("!H", data, at)[0]
                    if port not in SERVER_PORTS:
                        struct.pack_into("!H", data, at, 20000 + (port + i) % 40000)
            yield dataclasses.replace(fr, ts_ns=t0 + i * every_ns + (fr.ts_ns - t0), data=bytes(data))


def _view(pkt: Packet) -> tuple[object, ...]:
    """What a frame shows, minus the numbers that count through the capture (frame references are
    made relative to the frame itself)."""
    def rel(f: str) -> tuple[object, ...]:
        vals = pkt.values(f)
        if FIELDS[f].ftype is FT.FRAMENUM:
            return tuple(v - pkt.number for v in vals)
        return tuple(vals)

    return (pkt.info, pkt.protocols, *(rel(f) for f in COMPARED))


@pytest.fixture(autouse=True)
def _primed() -> Iterator[None]:
    unprime_all()
    prime([*COMPARED, *COUNTING])
    yield
    unprime_all()


# ---------------------------------------------------------------------------
# DTLS: many short sessions


@pytest.mark.parametrize("single_pass", [True, False])
def test_many_short_dtls_sessions_keep_the_session_table_bounded(single_pass: bool) -> None:
    """300 pledges, one every 20 s, each closing with an alert: at most the sessions of the last
    CLOSED_IDLE_NS stay findable; every copy dissects exactly as the first one did."""
    copies, every = 300, 20 * S
    eng = Engine(cols=True, single_pass=single_pass)
    per_copy = len(_frames(DTLS_CAPTURE))
    views: list[list[tuple[object, ...]]] = []
    most_open = most_memo = 0
    for k, fr in enumerate(_replay(DTLS_CAPTURE, copies, every, new_client_port=True)):
        pkt = eng.dissect(fr)
        if k % per_copy == 0:
            views.append([])
        views[-1].append(_view(pkt))
        tbl = dtls_sessions.table(eng.state)
        most_open = max(most_open, len(tbl.by_key))
        most_memo = max(most_memo, len(tbl.memo))
    tbl = dtls_sessions.table(eng.state)
    assert tbl.count == copies
    assert most_open <= CLOSED_IDLE_NS // every + 2
    assert all(v == views[0] for v in views), "a later pledge dissected differently from the first"
    assert views[0][5][0].startswith("Certificate (Reassembled)")
    reasm = eng.state["dtls.reassembly"]
    assert len(reasm) == 0  # no handshake message left half-reassembled
    if single_pass:
        # Nothing kept for after the pass: no report rows, memos of the current frame only.
        assert tbl.sessions == [] and list_sessions(eng) == []
        assert most_memo <= 2
        assert len(reasm._seen) <= 2
    else:
        assert len(tbl.sessions) == copies
        forgotten = [s for s in tbl.sessions if s.key not in tbl.by_key]
        assert len(forgotten) >= copies - most_open
        assert all(not s.records and not s.done and not s.msg_flight for s in forgotten)
        # the report of a forgotten session is whole
        row = forgotten[0].as_dict()
        assert row["complete"] and row["flights"] == list_sessions(eng)[-1].as_dict()["flights"]
    # udp.stream numbers are tshark's for the whole capture: one per pledge, none forgotten.
    assert len(eng.state[STREAM_STATE]) == copies


def test_lazy_engine_keeps_no_stream_table_unless_a_stream_field_is_asked() -> None:
    """udp.stream numbers must be tshark's, so their table keeps every conversation; ``read -T
    fields`` (a lazy engine) keeps it only when udp.stream or the stream times are asked for."""
    frames = list(_replay(DTLS_CAPTURE, 20, 20 * S, new_client_port=True))
    unprime_all()
    prime(["dtls.record.length"])
    eng = Engine(cols=False, lazy=True, single_pass=True)
    for fr in frames:
        eng.dissect(fr)
    assert STREAM_STATE not in eng.state
    for field in ("udp.stream", "udp.time_delta"):
        unprime_all()
        prime([field])
        lazy = Engine(cols=False, lazy=True, single_pass=True)
        eager = Engine(cols=False)
        got = [(lazy.dissect(fr).values(field), eager.dissect(fr).values(field)) for fr in frames]
        assert all(a == b for a, b in got) and got[-1][0]
        assert len(lazy.state[STREAM_STATE]) == 20


def test_same_endpoints_after_the_lifetime_start_a_fresh_session() -> None:
    """The same pledge port again after a closed session's lifetime: a new session that dissects
    like the first; the same bytes again within it: retransmissions of the open session."""
    frames = _frames(DTLS_CAPTURE)
    span = frames[-1].ts_ns - frames[0].ts_ns
    eng = Engine(cols=True, single_pass=True)
    late = list(_replay(DTLS_CAPTURE, 2, span + CLOSED_IDLE_NS + S, new_client_port=False))
    first = [eng.dissect(fr) for fr in late[:len(frames)]]
    again = [eng.dissect(fr) for fr in late[len(frames):]]
    assert [_view(p) for p in again] == [_view(p) for p in first]
    assert again[0].get("dtls.session") == first[0].get("dtls.session") + 1
    assert again[0].get("udp.stream") == first[0].get("udp.stream")  # tshark keeps the number

    eng = Engine(cols=True, single_pass=True)
    soon = list(_replay(DTLS_CAPTURE, 2, span + CLOSED_IDLE_NS // 2, new_client_port=False))
    first = [eng.dissect(fr) for fr in soon[:len(frames)]]
    again = [eng.dissect(fr) for fr in soon[len(frames):]]
    assert again[0].get("dtls.session") == first[0].get("dtls.session")
    assert any(p.get("dtls.retransmission") for p in again)


def test_sessions_over_the_size_limit_leave_least_recently_active_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_SESSIONS is a backstop for sessions that never close: the quiet ones go, not the old ones."""
    monkeypatch.setattr(dtls_sessions, "MAX_SESSIONS", 16)
    tbl = dtls_sessions.SessionTable(keep=False)
    busy = tbl.new("busy", 1)
    for i in range(40):
        assert tbl.lookup("busy", i * S) is busy
        busy.last_ns = i * S
        tbl.new(("quiet", i), i + 2)
    assert len(tbl.by_key) <= 16 and tbl.by_key["busy"] is busy
    assert ("quiet", 39) in tbl.by_key and ("quiet", 0) not in tbl.by_key


def test_decryption_state_goes_with_its_session() -> None:
    """With a key log, each copy of an OpenSSL session decrypts (and its Finished verifies) like the
    first; the keys and transcript live on the session, so forgotten sessions take them along."""
    path = TESTS / "data" / "decrypt" / "cert_ccm8.pcap"
    keylog = TESTS / "data" / "decrypt" / "cert_ccm8.keylog"
    prime(["dtls.decrypted.content_type", "dtls.decrypted.finished_verified"])
    eng = Engine(prefs=[f"dtls.keylog_file:{keylog}"], single_pass=True)
    per_copy = len(_frames(path))
    copies = 40
    pkts = [eng.dissect(fr) for fr in _replay(path, copies, 90 * S, new_client_port=True)]
    shown = [[(p.values("dtls.decrypted.content_type"), p.values("dtls.decrypted.finished_verified"))
              for p in pkts[i * per_copy:(i + 1) * per_copy]] for i in range(copies)]
    assert any(ct == [23] for ct, _ in shown[0]) and any(v == [True] for _, v in shown[0])
    assert all(c == shown[0] for c in shown)
    tbl = dtls_sessions.table(eng.state)
    assert len(tbl.by_key) <= 2 and tbl.sessions == []
    del pkts  # packets point to their session; what the engine alone keeps alive is bounded:
    gc.collect()
    assert sum(isinstance(o, dtls12.SessionState) for o in gc.get_objects()) <= 2


# ---------------------------------------------------------------------------
# CoAP: exchanges and Message IDs


def test_coap_tracking_forgets_after_exchange_lifetime() -> None:
    """RFC 7252 §4.5: a Message ID may come back after EXCHANGE_LIFETIME as a new message. The same
    libcoap session replayed EXCHANGE_LIFETIME + 10 s after the first copy ended dissects like the
    first copy; 10 s after, its messages are duplicates."""
    frames = _frames(COAP_CAPTURE)
    span = frames[-1].ts_ns - frames[0].ts_ns
    n = len(frames)

    eng = Engine(cols=True, single_pass=True)
    pkts = [eng.dissect(fr) for fr in _replay(COAP_CAPTURE, 4, span + coap.EXCHANGE_LIFETIME_NS + 10 * S,
                                               new_client_port=False)]
    views = [[_view(p) for p in pkts[i * n:(i + 1) * n]] for i in range(4)]
    assert all(v == views[0] for v in views)
    assert not any(p.has("coap.duplicate_of") for p in pkts)
    st = eng.state["coap"]
    assert len(st.msgs) <= n and len(st.exchanges) <= n

    eng = Engine(cols=True, single_pass=True)
    pkts = [eng.dissect(fr) for fr in _replay(COAP_CAPTURE, 2, span + 10 * S, new_client_port=False)]
    assert pkts[n].get("coap.duplicate_of") == pkts[0].number


def test_coap_tables_stay_bounded_over_many_clients() -> None:
    """A new client port every 30 s for 200 copies (100 minutes): only the last lifetime's worth."""
    n = len(_frames(COAP_CAPTURE))
    eng = Engine(cols=False, single_pass=True)
    most = 0
    for fr in _replay(COAP_CAPTURE, 200, 30 * S, new_client_port=True):
        eng.dissect(fr)
        st = eng.state["coap"]
        most = max(most, len(st.msgs), len(st.exchanges))
    lifetime_copies = coap.EXCHANGE_LIFETIME_NS // (30 * S) + 2
    assert most <= lifetime_copies * n


# ---------------------------------------------------------------------------
# Reassembly memo under the single-pass promise


def test_reassembly_memo_keeps_only_the_current_frame_without_replay() -> None:
    t = ReassemblyTable(replay=False)
    for frame in range(1, 1001):
        r1 = t.add(("dgram", frame), frame, 0, b"x" * 8, more=True, ts_ns=frame)
        again = t.add(("dgram", frame), frame, 0, b"x" * 8, more=True, ts_ns=frame)
        assert again.issues == r1.issues and again.status is Status.PENDING  # same call, same answer
        done = t.add(("dgram", frame), frame, 8, b"y" * 8, more=False, ts_ns=frame)
        assert done.complete and done.data == b"x" * 8 + b"y" * 8
    assert len(t._seen) <= 2 and len(t) == 0
    keep = ReassemblyTable()
    for frame in range(1, 11):
        keep.add(("dgram", frame), frame, 0, b"x" * 8, more=False, ts_ns=frame)
    assert len(keep._seen) == 10  # re-dissectable engines keep every fragment's outcome


# ---------------------------------------------------------------------------
# Real captures: the same dissection with or without expiry, with or without the promise


def _real_captures() -> list[Path]:
    found = sorted(TESTS.glob("data/**/*.pcap")) + sorted(TESTS.glob("data/**/*.pcapng"))
    found += sorted((TESTS.parent / "captures").glob("*.pcapng"))
    return [p for p in found if p.stat().st_size < 1 << 20]


def _dissect_text(path: Path, **engine: bool) -> list[str]:
    eng = Engine(tree=True, **engine)
    out = []
    with open_capture(path) as rd:
        for fr in rd:
            pkt = eng.dissect(fr)
            buf = io.StringIO()
            write_tree(buf, pkt)
            out.append(summary_line(pkt) + "\n" + buf.getvalue())
    return out


@pytest.mark.parametrize("path", _real_captures(), ids=lambda p: str(p.relative_to(TESTS.parent)))
def test_expiry_and_single_pass_do_not_change_real_captures(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unprime_all()
    with_expiry = _dissect_text(path)
    promised = _dissect_text(path, single_pass=True)
    monkeypatch.setattr(dtls_sessions, "CLOSED_IDLE_NS", 1 << 62)
    monkeypatch.setattr(dtls_sessions, "IDLE_NS", 1 << 62)
    monkeypatch.setattr(coap, "EXCHANGE_LIFETIME_NS", 1 << 62)
    forever = _dissect_text(path)
    assert with_expiry == forever
    assert promised == with_expiry
