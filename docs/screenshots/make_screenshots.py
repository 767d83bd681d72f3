#!/usr/bin/env python3
"""Regenerate the README screenshots of ``jpdissect tui`` from the bundled captures.

Drives the UI headlessly with Textual's pilot and saves SVGs next to this file; with cairosvg
installed, ``main.svg`` is also rendered to ``main.png`` (fonts swapped to DejaVu Sans Mono,
which cairo finds on Debian; the SVGs name Fira Code, which browsers fall back from).

    python docs/screenshots/make_screenshots.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CAPTURES = ROOT / "captures"


async def _until(pilot: Any, cond: Any, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise TimeoutError("UI did not get there")
        await pilot.pause(0.05)


async def _type(pilot: Any, text: str) -> None:
    for ch in text:
        await pilot.press({" ": "space", "=": "equals_sign", ".": "full_stop"}.get(ch, ch))


async def _select_field(app: Any, pilot: Any, layer: str, field: str) -> None:
    tree = app.detail
    tree.focus()
    tree.cursor_line = 0
    await pilot.pause(0.05)
    line = [tn.data.proto.abbrev for tn in tree.root.children].index(layer)
    for _ in range(line):
        await pilot.press("down")
    await pilot.press("space")
    lay = tree.root.children[line]
    k = [getattr(ch.data, "fd", None) and ch.data.fd.abbrev for ch in lay.children].index(field)
    for _ in range(k + 1):
        await pilot.press("down")
    await pilot.pause(0.2)


async def shoot() -> list[Path]:
    from jpdissect.tui.app import JpApp
    from jpdissect.tui.index import FileIndex

    out: list[Path] = []

    def save(app: Any, name: str) -> None:
        app.save_screenshot(f"{name}.svg", str(HERE))
        out.append(HERE / f"{name}.svg")

    # Main window: a JPY-wrapped ClientHello, the JPY header selected and highlighted in hex.
    src = FileIndex(str(CAPTURES / "jpy.pcapng"))
    app = JpApp(src)
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: not src.rowpass.running)
        app.packet_list.focus()
        await pilot.press("down")
        await _until(pilot, lambda: app.packet_index == 1)
        await _select_field(app, pilot, "jpy", "jpy.header")
        save(app, "main")
        # Filter bar with a positioned error.
        await pilot.press("slash")
        await _type(pilot, "jpy.header == 82 50 ")
        await pilot.pause(0.2)
        save(app, "filter-error")
        app.filter_input.value = ""
        await pilot.press("escape")
        # Follow the pledge session of frame 2.
        await pilot.press("s")
        scr = app.screen
        await _until(pilot, lambda: not scr.run.progress.running)
        await pilot.pause(0.5)
        save(app, "follow")
        await pilot.press("escape")
        await pilot.pause(0.2)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        save(app, "help")
        await pilot.press("escape")
    src.close()

    # Statistics of the Thread relay capture, at 100x30; then the expert-info tab.
    src = FileIndex(str(CAPTURES / "coap-dtls.pcapng"))
    app = JpApp(src)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t")
        scr = app.screen
        await _until(pilot, lambda: not scr.run.progress.running and not src.rowpass.running)
        await pilot.pause(1.0)
        save(app, "stats-overhead")
        scr.query_one("#stats-tabs").active = "tab-sessions"
        await pilot.pause(0.5)
        save(app, "stats-sessions")
        scr.query_one("#stats-tabs").active = "tab-experts"
        await pilot.pause(0.5)
        save(app, "stats-experts")
    src.close()

    # The smallest supported terminal.
    src = FileIndex(str(CAPTURES / "thread-relay.pcapng"))
    app = JpApp(src)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(pilot, lambda: not src.rowpass.running)
        await pilot.press("down", "down")
        await _until(pilot, lambda: app.packet_index == 2)
        await _select_field(app, pilot, "udp", "udp.dstport")
        save(app, "main-80x24")
    src.close()
    return out


def to_png(svg: Path, width: int = 1400) -> Path | None:
    try:
        import cairosvg
    except ImportError:
        return None
    text = svg.read_text(encoding="utf-8")
    text = text.replace('font-family: "Fira Code"', 'font-family: "DejaVu Sans Mono"')
    text = text.replace("font-family: Fira Code, monospace", 'font-family: "DejaVu Sans Mono", monospace')
    png = svg.with_suffix(".png")
    cairosvg.svg2png(bytestring=text.encode(), write_to=str(png), output_width=width)
    return png


def main() -> int:
    import tempfile

    os.environ["JPDISSECT_STATE_DIR"] = tempfile.mkdtemp(prefix="jpdissect-shots-")  # no history kept
    shots = asyncio.run(shoot())
    for s in shots:
        print(s.relative_to(ROOT))
    png = to_png(HERE / "main.svg")
    print(png.relative_to(ROOT) if png else "cairosvg not installed: no PNG")
    return 0


if __name__ == "__main__":
    sys.exit(main())
