"""Overhead analysis on the lab captures: every relayed datagram against its byte-level truth.

The truth here is computed from the raw frames (offsets into the Ethernet/IPv6/UDP frames the lab
wrote, the CBOR/CoAP/TLV layouts spelled out by hand from the drafts and RFCs), never from
:mod:`jpdissect.stats`' own decomposition, so a bug there cannot confirm itself.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from jpdissect.capture import open_capture
from jpdissect.stats import analyse, claims, packets, relayed, summary
from jpdissect.stats.analysis import Options
from jpdissect.stats.cli import main as stats_main
from jpdissect.stats.relayed import COMPONENTS, decompose, identify
from jpdissect.stats.scan import SESSION_IDLE_NS, FrameInfo, Pairer, Scanner
from jpdissect.stats.summary import SchemeSummary

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
SCHEMES = ("stateful", "jpy", "jpy-legacy", "coap-dtls", "thread-relay", "cojp")
#: README of captures/: relayed datagrams per capture.
RELAYED = {"stateful": 49, "jpy": 37, "jpy-legacy": 64, "coap-dtls": 61, "thread-relay": 37, "cojp": 8}
ETH_IP6_UDP = 14 + 40 + 8


def cap(scheme: str) -> Path:
    p = CAPTURES / f"{scheme}.pcapng"
    if not p.exists():
        pytest.skip(f"{p} not bundled")
    return p


def udp_payloads(path: Path) -> dict[int, bytes]:
    """Frame number -> UDP payload, straight from the bytes (Ethernet, IPv6 without extension
    headers, UDP: what the lab captures hold)."""
    out = {}
    with open_capture(str(path)) as rd:
        for n, fr in enumerate(rd, 1):
            d = fr.data
            if len(d) >= ETH_IP6_UDP and d[12:14] == b"\x86\xdd" and d[20] == 17:
                ulen = int.from_bytes(d[58:60], "big")
                out[n] = bytes(d[ETH_IP6_UDP:14 + 40 + ulen])
    return out


def cbor_head_len(n: int) -> int:
    """RFC 8949 §3: argument < 24 in the initial byte, then 1, 2, 4 extra bytes."""
    return 1 if n < 24 else 2 if n < 256 else 3 if n < 65536 else 5


def cbor_uint_len(v: int) -> int:
    return cbor_head_len(v)


# ---------------------------------------------------------------------------
# Per-datagram overhead = byte-level truth, every scheme


@pytest.fixture(scope="module")
def tables() -> dict[str, tuple[pd.DataFrame, dict[int, bytes]]]:
    out = {}
    for s in SCHEMES:
        p = CAPTURES / f"{s}.pcapng"
        if p.exists():
            out[s] = (relayed(p), udp_payloads(p))
    return out


def _rows(tables: dict, scheme: str) -> tuple[pd.DataFrame, dict[int, bytes]]:
    if scheme not in tables:
        pytest.skip(f"{scheme} capture not bundled")
    return tables[scheme]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_relayed_datagram_found_and_paired(tables: dict, scheme: str) -> None:
    df, _ = _rows(tables, scheme)
    assert len(df) == RELAYED[scheme]
    assert set(df["scheme"]) == {scheme}
    assert df["pledge_frame"].notna().all()  # both copies captured for every relayed datagram
    assert sorted(set(df["session"])) == [1, 2, 3]  # three pledges
    assert Counter(df["direction"]).keys() == {"up", "down"}
    assert (df["overhead_bytes"] == df["relay_payload_bytes"] - df["inner_bytes"]).all()
    assert (df[list(COMPONENTS)].sum(axis=1) == df["overhead_bytes"]).all()
    assert df["errors"].isna().all() and df["exact"].all()


def test_stateful_overhead_is_zero(tables: dict) -> None:
    """Draft §4.2: the datagram is relayed unchanged."""
    df, raw = _rows(tables, "stateful")
    for r in df.itertuples():
        assert raw[r.frame] == raw[r.pledge_frame]
        assert r.overhead_bytes == 0 and r.inner_bytes == len(raw[r.frame])


def test_jpy_overhead_is_array_head_header_and_content_head(tables: dict) -> None:
    """Draft §4.3: 0x82, then 0x50 + the 16-byte header, then the content's bstr head and the
    datagram: exactly 1 + 17 + the CBOR length prefix of the content."""
    df, raw = _rows(tables, "jpy")
    for r in df.itertuples():
        relay, inner = raw[r.frame], raw[r.pledge_frame]
        h = cbor_head_len(len(inner))
        assert relay[0] == 0x82 and relay[1] == 0x40 | 16
        assert relay[18 + h:] == inner
        assert r.overhead_bytes == 1 + 17 + h == len(relay) - len(inner)
        assert (r.cbor_bytes, r.state_bytes) == (1 + 1 + h, 16)


def test_jpy_legacy_overhead_is_the_five_element_array(tables: dict) -> None:
    """Drafts -03..-10 §5.3: [bstr ip(16), uint port, uint family 2, uint ifindex, bstr content]."""
    df, raw = _rows(tables, "jpy-legacy")
    for r in df.itertuples():
        relay, inner = raw[r.frame], raw[r.pledge_frame]
        assert relay[0] == 0x85 and relay[1] == 0x50  # array(5), bstr(16)
        p = 18
        port_len = cbor_uint_len(r.pledge_port)
        assert int.from_bytes(relay[p + 1:p + port_len], "big") == r.pledge_port
        p += port_len
        assert relay[p] == 0x02  # family 2 = IPv6
        ifindex_len = cbor_uint_len(relay[p + 1] & 0x1F) if relay[p + 1] < 24 else 2
        p += 1 + ifindex_len
        h = cbor_head_len(len(inner))
        assert relay[p + h:] == inner
        assert r.overhead_bytes == 1 + 17 + port_len + 1 + ifindex_len + h
        assert r.state_bytes == 16 + port_len + 1 + ifindex_len and r.cbor_bytes == 1 + 1 + h


def test_coap_dtls_overhead_is_header_extended_token_and_marker(tables: dict) -> None:
    """RFC 7252 §3 header (4) + RFC 8974 TKL 13 extension byte (1) + 16-byte token + 0xFF (1)."""
    df, raw = _rows(tables, "coap-dtls")
    for r in df.itertuples():
        relay, inner = raw[r.frame], raw[r.pledge_frame]
        assert relay[0] & 0x0F == 13 and relay[4] == 16 - 13
        assert relay[21] == 0xFF and relay[22:] == inner
        assert r.overhead_bytes == 22
        assert (r.coap_header_bytes, r.token_bytes, r.options_bytes) == (6, 16, 0)


def test_thread_relay_overhead_is_coap_uri_and_tlvs(tables: dict) -> None:
    """TMF NON POST c/rx|c/tx: header 4 + token 2 + Uri-Path "c" (2) and "rx"/"tx" (3) + 0xFF, then
    TLVs 18 (2+2), 19 (2+8), 20 (2+2), [21 (2+16) on the c/tx that carries the KEK], 17 extended
    (4-byte header) around the datagram: 34 bytes, 52 with the KEK."""
    df, raw = _rows(tables, "thread-relay")
    keks = 0
    for r in df.itertuples():
        relay, inner = raw[r.frame], raw[r.pledge_frame]
        assert relay[4:6] != b"" and relay[6:8] == b"\xb1c" and relay[8:11] in (b"\x02rx", b"\x02tx")
        assert relay[11] == 0xFF
        p = 12
        seen = []
        while p < len(relay):
            t, n = relay[p], relay[p + 1]
            hl = 2
            if n == 0xFF:
                n, hl = int.from_bytes(relay[p + 2:p + 4], "big"), 4
            seen.append(t)
            if t == 17:
                assert relay[p + hl:p + hl + n] == inner
            p += hl + n
        kek = 21 in seen
        keks += kek
        truth = 4 + 2 + 2 + 3 + 1 + (2 + 2) + (2 + 8) + (2 + 2) + (2 + 16 if kek else 0) + 4
        assert r.overhead_bytes == truth == len(relay) - len(inner)
        assert r.tlv_header_bytes == (12 if kek else 10) and r.tlv_value_bytes == (28 if kek else 12)
    assert keks == 3  # one c/tx per pledge carries the Joiner Router KEK


def test_cojp_overhead_is_the_state_in_the_token(tables: dict) -> None:
    """RFC 9031 + RFC 8974: the pledge's 2-byte token becomes 16 bytes of state + that token,
    which needs TKL 13 and one extension byte: 17 bytes, the rest of the message unchanged."""
    df, raw = _rows(tables, "cojp")
    for r in df.itertuples():
        relay, inner = raw[r.frame], raw[r.pledge_frame]
        tkl = inner[0] & 0x0F
        assert tkl == 2 and relay[0] & 0x0F == 13 and relay[4] == 16 + tkl - 13
        assert relay[5 + 16:5 + 16 + tkl] == inner[4:4 + tkl]  # the pledge's token rides behind
        assert relay[5 + 16 + tkl:] == inner[4 + tkl:]
        assert r.overhead_bytes == 17 and (r.token_bytes, r.coap_header_bytes, r.options_bytes) == (16, 1, 0)


def test_identify_agrees_with_decompose_on_every_relay_datagram(tables: dict) -> None:
    """The scan's fast path and the reference decomposition give the same split."""
    for scheme, (df, raw) in tables.items():
        for r in df.itertuples():
            data = raw[r.frame]
            fast = identify(data, r.relay_sport, r.relay_dport)
            ref = decompose(scheme, data)
            assert fast is not None and fast.scheme == scheme
            assert (fast.components(), fast.inner_len, fast.direction) == (ref.components(), ref.inner_len,
                                                                          ref.direction)


def test_jp_dissector_agrees_on_every_relayed_frame(tables: dict) -> None:
    """The join-proxy issue's jp.* fields and this module's pairing are independent; they agree."""
    from jpdissect.model import FIELDS
    from jpdissect.stats.frames import _declare_all

    _declare_all()
    if "jp.overhead" not in FIELDS:
        pytest.skip("jp dissector not registered")
    for scheme, (df, _raw) in tables.items():
        jp = packets(cap(scheme), ["frame.number", "jp.scheme", "jp.session", "jp.direction", "jp.inner_len",
                                   "jp.overhead", "jp.peer_frame"])
        m = df.merge(jp, left_on="frame", right_on="frame.number", how="left")
        for a, b in (("scheme", "jp.scheme"), ("session", "jp.session"), ("direction", "jp.direction"),
                     ("inner_bytes", "jp.inner_len"), ("overhead_bytes", "jp.overhead"),
                     ("pledge_frame", "jp.peer_frame")):
            assert list(m[a].astype(str)) == list(m[b].astype(str)), (scheme, a)


def test_shallow_scan_equals_full_dissection() -> None:
    """Stopping at the UDP payload changes no number."""
    for scheme in SCHEMES:
        p = cap(scheme)
        a, b = SchemeSummary(), SchemeSummary()
        Scanner([a]).run(p)
        Scanner([b], full=True).run(p)
        pd.testing.assert_frame_equal(a.dataframe(), b.dataframe())


# ---------------------------------------------------------------------------
# Summary and claims


def test_summary_and_draft_claims_on_the_lab_traffic() -> None:
    frames = []
    for s in SCHEMES:
        frames.append(summary(cap(s)))
    df = pd.concat(frames, ignore_index=True)
    assert list(df["scheme"]) == list(SCHEMES)
    assert list(df["datagrams"]) == [RELAYED[s] for s in SCHEMES]
    assert list(df["sessions"]) == [3] * 6
    jpy = df[df["scheme"] == "jpy"].iloc[0]
    # 16-byte header: 1 + 17 + (1 | 2 | 3) -> 19..21, CBOR framing 3..5 bytes.
    assert (jpy["overhead_min"], jpy["overhead_max"], jpy["cbor_min"], jpy["cbor_max"]) == (19, 21, 3, 5)
    cl = claims(df)
    jc = cl[cl["scheme"] == "jpy"]
    assert list(jc["holds"]) == [True, True]  # "3-6 bytes" and "<= 38 bytes" hold on this traffic
    th = cl[(cl["scheme"] == "thread-relay")].iloc[0]
    assert not th["holds"] and th["observed"] == "34-52 bytes"  # the KEK c/tx exceeds 38


# ---------------------------------------------------------------------------
# What-if: the lab's own encoders reproduce every observed datagram


@pytest.mark.parametrize("scheme", SCHEMES)
def test_whatif_reencoding_reproduces_the_observed_relay_bytes(scheme: str) -> None:
    st = analyse(cap(scheme), Options(), ("whatif",))
    w = st.whatif().set_index("scheme")
    n = RELAYED[scheme]
    assert w.loc[scheme, "reencoded_equals_observed"] == f"{n}/{n}"
    assert w.loc[scheme, "observed_datagrams"] == n
    assert w.loc["stateful", "overhead_bytes"] == 0
    if scheme == "cojp":
        # CoJP messages are opaque bytes to the DTLS schemes: all carry them.
        assert (w.loc[list(SCHEMES), "datagrams"] == n).all()
    else:
        # A stateless CoAP proxy cannot carry a DTLS record.
        assert w.loc["cojp", "not_applicable"] == n and w.loc["cojp", "datagrams"] == 0
        jpy = w.loc["jpy"]
        assert 19 <= jpy["overhead_min"] <= jpy["overhead_max"] <= 21


def test_whatif_per_datagram_rows() -> None:
    st = analyse(cap("jpy"), Options(per_datagram=True), ("whatif",))
    rows = st.whatif_rows
    assert rows is not None and len(rows) == RELAYED["jpy"] * len(SCHEMES)
    jpy = rows[rows["scheme"] == "jpy"]
    assert (jpy["overhead_bytes"] == 1 + 17 + jpy["inner_bytes"].map(cbor_head_len)).all()


# ---------------------------------------------------------------------------
# The packets frame


def test_packets_frame_is_typed_and_complete() -> None:
    p = cap("coap-dtls")
    df = packets(p, ["frame.number", "frame.time", "frame.time_relative", "frame.len", "ipv6.src",
                     "udp.srcport", "coap.token", "dtls.handshake.type", "dtls", "eth.src"])
    assert len(df) == 123 and list(df["frame.number"]) == list(range(1, 124))
    assert str(df["frame.number"].dtype) == "uint32[pyarrow]"
    assert str(df["frame.time"].dtype).startswith("timestamp[ns, tz=UTC]")
    assert str(df["frame.time_relative"].dtype) == "duration[ns][pyarrow]"
    assert str(df["coap.token"].dtype) == "binary[pyarrow]"
    assert df.loc[0, "ipv6.src"] == "fe80::50:4cff:fe00:3" and df.loc[0, "eth.src"] == "02:50:4c:00:00:03"
    assert df.loc[1, "coap.token"] is not pd.NA and len(df.loc[1, "coap.token"]) == 16
    assert pd.isna(df.loc[0, "coap.token"])  # the pledge hop carries no CoAP
    assert df["dtls"].all()


def test_packets_filter_and_occurrences() -> None:
    p = cap("thread-relay")
    df = packets(p, ["frame.number", "coap.opt.uri_path"], "coap.opt.uri_path == \"rx\"", occurrence="all")
    assert len(df) == 18 and all(v == ["c", "rx"] for v in df["coap.opt.uri_path"])
    n = packets(p, ["coap.opt.uri_path"], occurrence="count")
    assert set(n["coap.opt.uri_path"]) == {0, 2}


# ---------------------------------------------------------------------------
# Streaming: per-pledge state is bounded


def test_pairing_forgets_idle_pledges() -> None:
    """200 pledges one after another, each relayed by a stateful JP: sessions 1..200 in order, and
    only the pledges heard within the idle window are remembered."""
    out = []
    pr = Pairer(out.append)
    jp_ll = bytes.fromhex("fe800000000000000000000000000001")
    jp_bb, reg = bytes.fromhex("20010db8000000010000000000000001"), bytes.fromhex("20010db8000000010000000000000002")
    for i in range(200):
        pledge = bytes.fromhex("fe80000000000000") + i.to_bytes(8, "big")
        t = i * (SESSION_IDLE_NS // 10)
        dtls = b"\x16\xfe\xfd" + bytes(10) + i.to_bytes(4, "big")
        pr.pledge_frame(FrameInfo(2 * i + 1, t, 100, 0, "UDP", pledge, jp_ll, 50000, 5684, dtls, 48))
        relay = FrameInfo(2 * i + 2, t + 1000, 100, 1, "UDP", jp_bb, reg, 40000 + i, 5684, dtls, 48)
        fr = identify(dtls, relay.sport, relay.dport)
        assert fr is not None
        pr.relay_frame(relay, fr)
        pr.sweep(t)
    pr.finish()
    assert len(pr.convs) <= 12 and len(pr.flows) <= 12 and len(pr.relay_first) <= 12
    assert [d.session for d in out] == list(range(1, 201)) and all(d.paired for d in out)


# ---------------------------------------------------------------------------
# CLI


def run_cli(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = stats_main(list(argv))
    return rc, buf.getvalue()


def test_cli_summary_formats(tmp_path: Path) -> None:
    p = str(cap("jpy"))
    rc, text = run_cli("stats", "summary", "-r", p)
    assert rc == 0 and "Relayed traffic per scheme" in text and "JPY CBOR framing adds 3-6 bytes" in text
    rc, js = run_cli("stats", "summary", "-r", p, "--format", "json")
    doc = json.loads(js)
    assert rc == 0 and doc["summary"]["rows"][0]["scheme"] == "jpy"
    assert doc["claims"]["rows"][0]["holds"] is True
    rc, md = run_cli("stats", "summary", "-r", p, "--format", "markdown")
    assert rc == 0 and md.startswith("## Relayed traffic per scheme") and "|---|" in md
    out = tmp_path / "s.parquet"
    rc, _ = run_cli("stats", "summary", "-r", p, "--format", "parquet", "-o", str(out))
    assert rc == 0 and pd.read_parquet(out)["datagrams"].tolist() == [37]
    assert (tmp_path / "s.claims.parquet").exists()
    out = tmp_path / "o.csv"
    rc, _ = run_cli("stats", "overhead", "-r", p, "--format", "csv", "-o", str(out))
    df = pd.read_csv(out)
    assert rc == 0 and len(df) == 37 and (df["overhead_bytes"] == df["relay_payload_bytes"] - df["inner_bytes"]).all()


def test_cli_other_statistics() -> None:
    p = str(cap("thread-relay"))
    rc, js = run_cli("stats", "schemes", "-r", p, "--format", "json", "--relay-link", "mesh,hops=2")
    doc = json.loads(js)
    assert rc == 0 and any("Registrar hop, per hop: mesh,hops=2" in n for n in doc["notes"])
    assert {r["scheme"] for r in doc["rows"]} == {*SCHEMES, "pledge hop"}
    rc, js = run_cli("stats", "conv", "-r", p, "--format", "json")
    rows = json.loads(js)["rows"]
    assert rc == 0 and len(rows) == 4 and sum(r["frames"] for r in rows) == 74  # + 1 ICMPv6 frame
    rc, js = run_cli("stats", "io", "-r", p, "--format", "json", "--interval", "0.5")
    rows = json.loads(js)["rows"]
    assert rc == 0 and sum(r["frames"] for r in rows) == 75
    assert all(r["interval_start"] * 2 == int(r["interval_start"] * 2) for r in rows)
    assert sum(r["pledge_frames"] for r in rows) == 38 and sum(r["registrar_frames"] for r in rows) == 37
    rc, js = run_cli("stats", "sessions", "-r", p, "--format", "json")
    assert rc == 0 and len(json.loads(js)["rows"]) == 3


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = str(cap("jpy"))
    assert stats_main(["stats", "summary", "-r", p, "--relay-link", "mesh,sec=9"]) == 1
    assert "security level" in capsys.readouterr().err
    assert stats_main(["stats", "summary", "-r", p, "--pledge-link", "nosuch"]) == 1
    assert "unknown link profile" in capsys.readouterr().err
    assert stats_main(["stats", "summary", "-r", str(tmp_path / "missing.pcap")]) == 2
    assert stats_main(["stats", "summary", "-r", p, "--format", "parquet"]) == 1
    assert "parquet is binary" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# Over the air: OpenThread's own capture (IEEE 802.15.4, MAC-secured mesh)

THREAD = ROOT / "tests" / "data" / "thread" / "thread_two_joiners.pcap"
THREAD_KEY = "thread.network_key:17c627a33d5927bf887ae312092611b7"  # tests/data/thread/README.txt


def test_relayed_table_on_openthread_radio_frames() -> None:
    """Two joiners through a real Joiner Router: every c/rx / c/tx paired with the joiner's own
    datagram, and the table's radio columns equal the frames OpenThread sent for each copy."""
    if not THREAD.exists():
        pytest.skip("OpenThread capture not bundled")
    df = relayed(THREAD, prefs=[THREAD_KEY])
    assert len(df) == 21 and set(df["scheme"]) == {"thread-relay"} and df["pledge_frame"].notna().all()
    assert sorted(set(df["session"])) == [1, 2]
    assert set(df["overhead_bytes"]) == {34, 52}  # c/rx, c/tx; the c/tx with the KEK
    air = packets(THREAD, ["frame.number", "frame.len", "6lowpan.fragment.count", "6lowpan.reassembled.psdu_bytes"],
                  prefs=[THREAD_KEY]).set_index("frame.number")
    for leg in ("relay", "pledge"):
        frames = df["frame" if leg == "relay" else "pledge_frame"]
        count = air.loc[list(frames), "6lowpan.fragment.count"].fillna(1).astype(int).tolist()
        psdu = air.loc[list(frames), "6lowpan.reassembled.psdu_bytes"].fillna(
            air.loc[list(frames), "frame.len"]).astype(int).tolist()
        assert df[f"{leg}_radio_frames"].tolist() == count, leg
        assert df[f"{leg}_psdu_bytes"].tolist() == psdu, leg
