"""The lazy frame index and the UI's pure helpers, without a running app."""

from __future__ import annotations

import gzip
import shutil
import time
from array import array
from pathlib import Path

import pytest

pytest.importorskip("textual")

from jpdissect.api import packets  # noqa: E402
from jpdissect.capture import open_capture  # noqa: E402
from jpdissect.output import summary_columns  # noqa: E402
from jpdissect.tui.detail import EngineOptions, dissect_one  # noqa: E402
from jpdissect.tui.index import FileIndex  # noqa: E402
from jpdissect.tui.live import explain_dumpcap  # noqa: E402
from jpdissect.tui.rows import BLOCK, BlockPacker, ExpertTally, RowStore, read_msg, write_msg  # noqa: E402
from jpdissect.tui.screens import align_twins  # noqa: E402
from jpdissect.tui.widgets import COLUMNS, fit_columns, hex_text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def wait(cond, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


class _P:
    """The few Packet attributes the packer reads."""

    def __init__(self, i: int) -> None:
        self.protocol = ("DTLS", "CoAP", "UDP")[i % 3]
        self.src = f"fe80::{i % 7}"
        self.dst = "fe80::1"
        self.info = f"info {i}\x00with nul" if i == 5 else f"info {i}"
        self.number = i + 1
        self.experts: list[object] = []

    def get(self, name: str, default: object = None) -> object:
        return default


def test_rowstore_packs_and_unpacks_blocks() -> None:
    packer = BlockPacker()
    store = RowStore()
    n = 2 * BLOCK + 17
    start = 0
    for i in range(n):
        blk = packer.add(_P(i))  # type: ignore[arg-type]
        if blk is not None:
            store.extend_block(blk)
            start += blk.count
    last = packer.flush()
    assert last is not None
    store.extend_block(last)
    assert len(store) == n
    for i in (0, 5, BLOCK - 1, BLOCK, n - 1):
        p = _P(i)
        proto, src, dst, scheme, info = store.cells(i)
        assert (proto, src, dst, scheme) == (p.protocol, p.src, p.dst, "")
        assert info == p.info.replace("\x00", " ")
    # Packed: well under the size of the strings themselves.
    assert store.nbytes() < n * 40


def test_rowstore_append_path_and_final_sessions() -> None:
    store = RowStore()
    for i in range(BLOCK + 3):
        store.append("DTLS", "a", "b", "", 0, f"x{i}")
    assert store.cells(BLOCK + 2)[4] == f"x{BLOCK + 2}"
    sess = array("I", [7] * (BLOCK + 3))
    sch = array("I", [1] * (BLOCK + 3))
    store.set_sessions(sess, sch, ["", "jpy"])
    assert store.cells(0)[3] == "jpy #7"


def test_messages_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "m"
    with open(p, "wb") as f:
        write_msg(f, ("match", array("I", [1, 2, 3]), 9))
        write_msg(f, ("done", 9, None))
    with open(p, "rb") as f:
        assert read_msg(f) == ("match", array("I", [1, 2, 3]), 9)
        assert read_msg(f) == ("done", 9, None)
        assert read_msg(f) is None


@pytest.mark.parametrize("name", ["jpy", "stateful", "thread-relay", "cojp"])
def test_index_rows_match_in_order_dissection(name: str) -> None:
    """Exact rows from the child pass equal what `jpdissect read` prints for every frame."""
    path = str(CAPTURES / f"{name}.pcapng")
    src = FileIndex(path)
    try:
        wait(lambda: not src.rowpass.running and src.scan_done)
        assert src.rowpass.error is None
        want = [summary_columns(p) for p in packets(path)]
        assert src.count() == len(want) == len(src.rows)
        for i, w in enumerate(want):
            row = src.row(i)
            assert row is not None and row.exact
            assert (str(row.number), row.src, row.dst, row.protocol, str(row.length), row.info) == (
                w[0], w[2], w[3], w[4], w[5], w[6])
        # The Scheme/Session column is filled from the jp layer.
        assert any(src.row(i).scheme.startswith(name.split("-")[0]) for i in range(src.count()))
    finally:
        src.close()


def test_provisional_rows_and_trees_inside_the_window() -> None:
    """Out-of-order dissection with a warm-up window covering the start equals the in-order one."""
    path = str(CAPTURES / "stateful.pcapng")
    src = FileIndex(path, use_worker=False)
    wait(lambda: src.scan_done)
    # The in-thread pass made exact rows; a provisional chunk must agree with them.
    prov = src._provisional(0)
    for r in prov:
        ex = src.row(r.number - 1)
        assert ex is not None and ex.exact and not r.exact
        assert (r.src, r.dst, r.protocol, r.info) == (ex.src, ex.dst, ex.protocol, ex.info)
    # Full trees: frame 40 after a 256-frame window (whole prefix) equals the CLI's -V tree.
    from io import StringIO

    from jpdissect.output import write_tree

    eng = EngineOptions().engine(tree=True)  # in order from frame 1, jp layer included
    for f in open_capture(path):
        full = eng.dissect(f)
        eng.displayed(full)
        if full.number == 40:
            break
    mine = src.dissect(39)
    # The jp layer differs on purpose: the finished in-order pass gave the detail pane the final
    # session table (as `read -2`), the single-pass reference only knows what came before.
    jp_mine = mine.layer("jp")
    assert jp_mine is not None and "single pass" not in jp_mine.text()
    for p in (full, mine):
        p.layers = [lay for lay in p.layers if lay.proto.abbrev != "jp"]
    a, b = StringIO(), StringIO()
    write_tree(a, full)
    write_tree(b, mine)
    assert a.getvalue() == b.getvalue()
    src.close()


def test_gzip_input_keeps_frames_in_memory(tmp_path: Path) -> None:
    gz = tmp_path / "jpy.pcapng.gz"
    with open(CAPTURES / "jpy.pcapng", "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    src = FileIndex(str(gz))
    try:
        wait(lambda: src.scan_done and not src.rowpass.running)
        assert src.memory is not None and src.count() == 75
        assert src.frame(74).data == list(open_capture(str(CAPTURES / "jpy.pcapng")))[74].data
        assert src.row(74) is not None and src.row(74).exact
    finally:
        src.close()


def test_dissect_one_numbers_and_times() -> None:
    frames = list(open_capture(str(CAPTURES / "jpy.pcapng")))
    pkt = dissect_one(lambda i: frames[i], 10, 0, frames[0].ts_ns, EngineOptions(warmup=3))
    assert pkt.number == 11 and pkt.rel_ns == frames[10].ts_ns - frames[0].ts_ns
    assert pkt.delta_ns == frames[10].ts_ns - frames[9].ts_ns
    assert pkt.tree and pkt.layers[0].children


def test_columns_fit_80_and_wide() -> None:
    assert len(COLUMNS) == 8
    w80 = fit_columns(78, 2, 8)  # a bundled capture: 2-digit numbers, 8-character times
    assert all(w >= c.minimum for w, c in zip(w80, COLUMNS, strict=True))
    assert sum(w80) + len(w80) - 1 <= 80
    w200 = fit_columns(200)
    assert sum(w200) + len(w200) - 1 == 200


def test_hex_text_highlights_exact_bytes() -> None:
    data = bytes(range(40))
    t = hex_text(data, 14, 4)
    hl = [t.plain[s.start:s.end] for s in t.spans if getattr(s.style, "reverse", False)]
    assert [x for x in hl if len(x) == 2] == ["0e", "0f", "10", "11"]  # hex half
    assert [x for x in hl if len(x) == 1 and x != " "] == ["."] * 4  # ASCII half
    zero = hex_text(data, 3, 0)  # a generated field has no bytes: nothing is highlighted
    assert not [s for s in zero.spans if getattr(s.style, "reverse", False)]


def test_align_twins_pairs_by_peer_frame() -> None:
    def r(n: int, leg: str, peer: int | None, ifid: int) -> dict:  # type: ignore[type-arg]
        vals = {"jp.leg": [leg]}
        shown: dict[str, list[str]] = {}
        if peer is not None:
            vals["jp.peer_frame"] = [peer]  # type: ignore[list-item]
            shown["jp.forward_delay"] = ["0.001000000 seconds"]
        return {"number": n, "index": n - 1, "ts_ns": n, "rel_ns": n, "interface_id": ifid,
                "src": "fe80::2" if leg == "pledge" else "2001:db8::1", "dst": "x", "protocol": "DTLS",
                "info": "", "values": vals, "shown": shown}

    rows = [r(1, "pledge", 2, 0), r(2, "registrar", 1, 1), r(3, "registrar", 4, 1), r(4, "pledge", 3, 0),
            r(5, "pledge", None, 0)]
    lines = align_twins(rows)
    assert [(a and a["number"], b and b["number"]) for a, _, b in lines] == [(1, 2), (4, 3), (5, None)]
    assert lines[0][1] == "0.001000000 seconds"


def test_expert_tally_counts_and_keeps_first_frames() -> None:
    from jpdissect.model import Group, Packet, Severity

    t = ExpertTally()
    for n in range(1, 60):
        p = Packet(n, 0, b"", 1, 0)
        p.experts.append(__import__("jpdissect.model", fromlist=["Expert"]).Expert(
            Severity.WARN, Group.MALFORMED, "bad", "dtls", 0))
        t.add(p)
    (e,) = t.sorted()
    assert e.count == 59 and e.frames[:3] == [1, 2, 3] and len(e.frames) == 50


def test_dumpcap_messages_are_one_line_and_say_what_to_do() -> None:
    m = explain_dumpcap('dumpcap: There is no device named "nosuch".\n(No such device exists)\n', "nosuch", None)
    assert "\n" not in m and "no interface 'nosuch'" in m and "-i" in m
    m = explain_dumpcap('dumpcap: You do not have permission to capture on device "eth0".\n', "eth0", None)
    assert "\n" not in m and "run as root" in m and "wireshark" in m
    m = explain_dumpcap("dumpcap: Invalid capture filter \"udp prt 5\" for interface 'lo'.\n", "lo", "udp prt 5")
    assert "not valid BPF" in m
