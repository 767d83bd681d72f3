"""The terminal UI driven headlessly with Textual's pilot (``App.run_test``).

Each test opens a bundled capture the way ``jpdissect tui FILE`` does and works the UI with
keys and clicks: filter, select, expand, follow a session, statistics, save and re-read.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")
pytest.importorskip("textual_plotext")

from jpdissect.api import packets  # noqa: E402
from jpdissect.capture import open_capture  # noqa: E402
from jpdissect.model import Node  # noqa: E402
from jpdissect.tui.app import JpApp  # noqa: E402
from jpdissect.tui.index import FileIndex  # noqa: E402
from jpdissect.tui.screens import FollowScreen, HelpScreen, StatsScreen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
JPY = str(CAPTURES / "jpy.pcapng")


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filter history goes to a temporary directory, never the user's."""
    monkeypatch.setenv("JPDISSECT_STATE_DIR", str(tmp_path / "state"))


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


async def type_text(pilot: Any, text: str) -> None:
    for ch in text:
        await pilot.press({" ": "space", "=": "equals_sign", ".": "full_stop"}.get(ch, ch))


def open_app(path: str = JPY, **kw: Any) -> tuple[FileIndex, JpApp]:
    src = FileIndex(path)
    return src, JpApp(src, **kw)


def test_filter_select_expand_highlights_bytes() -> None:
    """RFC 768: udp.srcport is the first 2 bytes of the UDP header -> highlighted in the hex pane."""

    async def go() -> None:
        src, app = open_app()
        async with app.run_test(size=(100, 32)) as pilot:
            await until(pilot, lambda: not src.rowpass.running)
            await pilot.press("slash")
            await type_text(pilot, "dtls.handshake.type == 1")
            assert "-filter-ok" in app.filter_input.classes
            await pilot.press("enter")
            run_ = app.view.run
            assert run_ is not None
            await until(pilot, lambda: run_.done)
            want = [p.number for p in packets(JPY, "dtls.handshake.type == 1")]
            got = [app.view.index_at(r) + 1 for r in range(len(app.view))]
            assert got == want and len(want) == 12
            # Select the second displayed frame (a JPY-wrapped ClientHello on the relay leg).
            app.packet_list.focus()
            await pilot.press("down")
            await until(pilot, lambda: app.packet_index == want[1] - 1)
            pkt = app.packet
            assert pkt is not None and "jpy" in pkt.protocols
            tree = app.detail
            tree.focus()
            tree.cursor_line = 0  # the first layer line, as after a click on it
            await pilot.pause(0.05)
            udp_line = [tn.data.proto.abbrev for tn in tree.root.children].index("udp")
            for _ in range(udp_line):
                await pilot.press("down")
            await pilot.press("space")  # expand the UDP layer
            await pilot.press("down")  # its first field: Source Port
            await pilot.pause(0.1)
            node = tree.cursor_node.data
            assert isinstance(node, Node) and node.fd.abbrev == "udp.srcport"
            assert app.hexview.highlight == (0, node.offset, 2)
            data = pkt.sources[0].data
            assert data[node.offset:node.offset + 2] == struct.pack("!H", pkt.srcport)
            # The rendered dump marks exactly those two bytes (hex and ASCII halves).
            from jpdissect.tui.widgets import hex_text

            txt = hex_text(data, node.offset, node.length)
            marked = "".join(txt.plain[s.start:s.end] for s in txt.spans
                             if getattr(s.style, "reverse", False)).replace(" ", "")
            assert marked.startswith(data[node.offset:node.offset + 2].hex())

    run(go())


def test_filter_bar_live_validation_and_history() -> None:
    async def go() -> None:
        src, app = open_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("slash")
            await type_text(pilot, "udp.port == ")
            fi = app.filter_input
            assert "-filter-bad" in fi.classes
            assert fi.error is not None and fi.error.position >= 9
            err = app.screen.query_one("#filter-error")
            assert err.has_class("-shown") and "col" in str(err.render())
            await type_text(pilot, "5684")
            assert "-filter-ok" in fi.classes
            await pilot.press("enter")
            await until(pilot, lambda: app.view.run is not None and app.view.run.done)
            assert len(app.view) == sum(1 for _ in packets(JPY, "udp.port == 5684"))
            # History: the applied filter comes back with ↑ in an empty bar.
            await pilot.press("slash")
            fi.value = ""
            await pilot.press("up")
            assert fi.value == "udp.port == 5684"
            hist = Path(os.environ["JPDISSECT_STATE_DIR"]) / "filter_history"
            assert "udp.port == 5684" in hist.read_text()

    run(go())


def test_follow_session_aligns_twins_with_delays() -> None:
    async def go() -> None:
        src, app = open_app()
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: not src.rowpass.running)
            await until(pilot, lambda: app.packet_index == 0)
            await pilot.press("s")
            scr = app.screen
            assert isinstance(scr, FollowScreen)
            await until(pilot, lambda: not scr.run.progress.running)
            await pilot.pause(0.5)
            assert "jp.session == 1" in scr.title_text
            paired = [(a, d, b) for a, d, b in scr.lines if a is not None and b is not None]
            assert len(paired) >= 10
            for a, delay, b in paired:
                # Twins: the relay-leg copy names the pledge-leg frame and vice versa.
                assert b["values"]["jp.peer_frame"][0] == a["number"]
                assert a["values"]["jp.leg"][0] == "pledge" and b["values"]["jp.leg"][0] == "registrar"
                assert delay.endswith("seconds")
            # Enter jumps to the frame in the main list.
            await pilot.press("down", "enter")
            await until(pilot, lambda: not isinstance(app.screen, FollowScreen))
            await until(pilot, lambda: app.packet_index == scr.lines[1][0]["index"])

    run(go())


def test_statistics_screen() -> None:
    async def go() -> None:
        src, app = open_app(str(CAPTURES / "jpy-legacy.pcapng"))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("t")
            scr = app.screen
            assert isinstance(scr, StatsScreen)
            await until(pilot, lambda: not scr.run.progress.running and not src.rowpass.running)
            await pilot.pause(0.8)
            snap = scr.run.snapshot
            assert snap is not None and snap["final"]
            assert set(snap["schemes"]) == {"jpy-legacy"}
            assert snap["overhead"]["jpy-legacy"][1] > 0
            assert len(snap["pledge_sessions"]) == 3
            sessions = scr.query_one("#sessions-table")
            assert sessions.row_count == 3
            experts = scr.query_one("#experts-table")
            assert experts.row_count == len(src.experts.entries) > 0
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, StatsScreen))

    run(go())


def test_save_filtered_frames_and_reread(tmp_path: Path) -> None:
    async def go() -> None:
        src, app = open_app(save_dir=str(tmp_path))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("slash")
            await type_text(pilot, "jpy")
            await pilot.press("enter")
            await until(pilot, lambda: app.view.run is not None and app.view.run.done)
            shown = [app.view.index_at(r) for r in range(len(app.view))]
            await pilot.press("w")
            await pilot.pause(0.2)
            path_in = app.screen.query_one("#save-path")
            out = tmp_path / "jpy-only.pcapng"
            path_in.value = str(out)
            path_in.focus()
            await pilot.press("enter")
            await until(pilot, lambda: out.exists() and not any(p.label.startswith("Saving") for p in src.busy()))
            with open_capture(str(CAPTURES / "jpy.pcapng")) as rd:
                orig = list(rd)
            with open_capture(str(out)) as rd:
                saved = list(rd)
            assert [f.data for f in saved] == [orig[i].data for i in shown]
            assert [f.ts_ns for f in saved] == [orig[i].ts_ns for i in shown]
            assert all(p.has("jpy") for p in packets(str(out)))

    run(go())


def test_goto_mark_help_mouse_at_80x24() -> None:
    async def go() -> None:
        src, app = open_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("g")
            await type_text(pilot, "40")
            await pilot.press("enter")
            await until(pilot, lambda: app.packet_index == 39)
            await pilot.press("m")
            assert app.marks == {39}
            await pilot.press("g")
            await type_text(pilot, "1")
            await pilot.press("enter")
            await pilot.press("right_square_bracket")
            await until(pilot, lambda: app.packet_index == 39)
            # Mouse: clicking the third list line (header is line 0) selects its frame.
            pl = app.packet_list
            await pilot.click("#packets", offset=(5, 3))
            await until(pilot, lambda: app.packet_index == pl.view.index_at(int(pl.scroll_y) + 2))
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            table = app.screen.query_one("#help-table")
            keys = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
            for b in JpApp.BINDINGS:
                assert b.key.replace("question_mark", "?").replace("slash", "/").replace(
                    "left_square_bracket", "[").replace("right_square_bracket", "]") in keys
            await pilot.press("escape")

    run(go())


def test_escape_cancels_a_long_filter(tmp_path: Path) -> None:
    gen = ROOT / "bench" / "gen_capture.py"
    if not gen.exists():
        pytest.skip("bench/gen_capture.py not present")
    big = tmp_path / "big.pcap"
    import subprocess
    import sys

    subprocess.run([sys.executable, str(gen), "--frames", "30000", "--out", str(big)], check=True,
                   capture_output=True)

    async def go() -> None:
        src, app = open_app(str(big))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("slash")
            await type_text(pilot, "coap")
            await pilot.press("enter")
            run_ = app.view.run
            assert run_ is not None
            await pilot.pause(0.5)
            assert run_.progress.running
            await pilot.press("escape")
            await until(pilot, lambda: run_.done, timeout=10)
            assert run_.progress.error == "cancelled"
            src.close()

    run(go())


def test_wireshark_fallback_for_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A DNS query (which jpdissect leaves as data) shows tshark's dissection, labelled as such."""
    from jpdissect.capture import Frame
    from jpdissect.capture.writer import PcapngWriter

    dns = bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001")
    udp = struct.pack("!HHHH", 40000, 53, 8 + len(dns), 0) + dns
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    eth = b"\x00" * 12 + b"\x08\x00"
    path = tmp_path / "dns.pcapng"
    with PcapngWriter(str(path)) as w:
        data = eth + ip + udp
        w.write(Frame(1_700_000_000_000_000_000, len(data), len(data), data, 1))

    async def expand_slot(app: JpApp, pilot: Any) -> Any:
        await until(pilot, lambda: app.packet is not None)
        await pilot.press("W")
        tree = app.detail
        slot = next(ch for tn in tree.root.children for ch in tn.children
                    if type(ch.data).__name__ == "WiresharkSlot")
        await until(pilot, lambda: slot.children and "fetching" not in str(slot.children[0].label), 60)
        return slot

    async def with_tshark() -> None:
        src, app = open_app(str(path))
        async with app.run_test(size=(100, 30)) as pilot:
            slot = await expand_slot(app, pilot)
            labels = [str(c.label) for c in slot.children]
            assert any("[Wireshark] Domain Name System" in lbl for lbl in labels), labels
            assert "not jpdissect" in str(slot.label)
            # jpdissect's own layers stay first and untouched.
            assert [tn.data.proto.abbrev for tn in app.detail.root.children][-1] == "data"

    async def without_tshark() -> None:
        src, app = open_app(str(path))
        async with app.run_test(size=(100, 30)) as pilot:
            slot = await expand_slot(app, pilot)
            assert "apt install tshark" in str(slot.children[0].label)

    import shutil

    if shutil.which("tshark"):
        run(with_tshark())
    monkeypatch.setenv("JPDISSECT_TSHARK", "")
    run(without_tshark())
