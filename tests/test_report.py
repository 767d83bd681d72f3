"""Batch reports: inputs, tables, plots, and a parallel run equal to a serial one."""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest

from jpdissect.stats.analysis import Options
from jpdissect.stats.cli import main as stats_main
from jpdissect.stats.report import ReportError, build_report, expand_inputs

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Smallest plot we consider readable (pixels): the figures are drawn ~9 inches wide at 110 dpi.
MIN_WIDTH, MIN_HEIGHT = 600, 250


def _need_captures() -> list[str]:
    caps = sorted(str(p) for p in CAPTURES.glob("*.pcapng"))
    if len(caps) < 6:
        pytest.skip("bundled captures missing")
    return caps


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk (PNG spec §11.2.2)."""
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_expand_inputs(tmp_path: Path) -> None:
    caps = _need_captures()
    assert expand_inputs([str(CAPTURES)]) == caps
    assert expand_inputs([str(CAPTURES / "jpy*.pcapng")]) == [c for c in caps if Path(c).name.startswith("jpy")]
    assert expand_inputs([caps[0], str(CAPTURES)]) == caps  # duplicates dropped, first order kept
    with pytest.raises(ReportError):
        expand_inputs([str(tmp_path / "nothing")])
    with pytest.raises(ReportError):
        expand_inputs([str(tmp_path)])  # a directory without captures
    with pytest.raises(ReportError):
        expand_inputs([str(tmp_path / "*.pcap")])


def test_html_report_of_the_lab_captures(tmp_path: Path) -> None:
    caps = _need_captures()
    out = tmp_path / "r.html"
    rep = build_report(caps, str(out), Options(), jobs=2, progress=False)
    html = out.read_text()
    assert rep.failed == 0 and rep.frames == 516 and rep.workers == 2
    for title in ("The same traffic under every scheme (what-if)", "Relayed traffic per scheme (observed)",
                  "Overhead claims, every scheme", "Captures", "Sessions: jpy.pcapng"):
        assert title in html
    assert "JPY CBOR framing adds 3-6 bytes (draft §4.3.3) -- jpy: holds (observed 3-5 bytes" in html
    assert "relay overhead &lt;= 38 bytes (draft §4.3.3) -- jpy: holds (observed 19-21 bytes" in html
    assert html.count("<img ") == 2 + 2 * 6  # two batch plots, timeline and I/O per capture
    files = sorted((tmp_path / "r_files").glob("*.png"))
    assert {f.name for f in files} >= {"overhead.png", "radio_frames.png", "jpy.pcapng-timeline.png",
                                       "jpy.pcapng-io.png"}
    for f in files:
        w, h = png_size(f.read_bytes())
        assert w >= MIN_WIDTH and h >= MIN_HEIGHT, f
    wi = rep.whatif.set_index("scheme")
    assert wi.loc["stateful", "datagrams"] == 256 and wi.loc["stateful", "reencoded_equals_observed"] == "49/49"


def test_parallel_batch_equals_serial(tmp_path: Path) -> None:
    caps = _need_captures()
    one = build_report(caps, str(tmp_path / "one.md"), Options(), jobs=1, progress=False)
    two = build_report(caps, str(tmp_path / "two.md"), Options(), jobs=2, progress=False)
    for a, b in ((one.summary, two.summary), (one.whatif, two.whatif), (one.claims, two.claims),
                 (one.frames_hist, two.frames_hist), (one.inventory, two.inventory)):
        pd.testing.assert_frame_equal(a, b)
    for d1, d2 in zip(one.captures, two.captures, strict=True):
        assert d1.path == d2.path
        pd.testing.assert_frame_equal(d1.stats.sessions_df, d2.stats.sessions_df)
        pd.testing.assert_frame_equal(d1.stats.events_df, d2.stats.events_df)
        assert d1.plots == d2.plots  # byte-identical PNGs
    assert one.plots == two.plots
    tables = [[ln for ln in (tmp_path / n).read_text().splitlines() if ln.startswith("|")] for n in ("one.md", "two.md")]
    assert tables[0] == tables[1]
    md = (tmp_path / "one.md").read_text()
    assert "![Overhead per scheme](one_files/overhead.png)" in md


def test_report_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    caps = _need_captures()
    out = tmp_path / "x.md"
    assert stats_main(["report", caps[0], caps[1], "-o", str(out), "-j", "1", "--no-progress"]) == 0
    assert "report written to" in capsys.readouterr().err and out.exists()
    assert stats_main(["report", caps[0], "-o", str(tmp_path / "x.pdf"), "--no-progress"]) == 1
    assert stats_main(["report", str(tmp_path / "none.pcap"), "-o", str(out), "--no-progress"]) == 1
    # A file that is not a capture is reported in the inventory and makes the exit status 2.
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    assert stats_main(["report", caps[0], str(bad), "-o", str(out), "-j", "2", "--no-progress"]) == 2
    assert "bad.pcap" in out.read_text()
