"""`jpdissect read` behaves like tshark at its edges: exit codes and one-line messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CAPTURE = Path(__file__).resolve().parent.parent / "captures" / "jpy.pcapng"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jpdissect.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_not_a_capture_is_one_line_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 8)
    r = _run("read", "-r", str(junk))
    assert r.returncode == 2
    assert r.stderr.count("jpdissect:") == 1 and "isn't a capture file" in r.stderr
    assert "Traceback" not in r.stderr


def test_cut_short_prints_every_complete_frame_then_exit_2(tmp_path: Path) -> None:
    data = CAPTURE.read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) // 2])
    whole = _run("read", "-r", str(CAPTURE), "-T", "fields", "-e", "frame.number").stdout.split()
    r = _run("read", "-r", str(cut), "-T", "fields", "-e", "frame.number")
    assert r.returncode == 2
    got = r.stdout.split()
    assert got and got == whole[: len(got)]
    assert r.stderr.count("jpdissect:") == 1 and "cut short" in r.stderr


def test_bad_filter_and_bad_field_exit_1_without_reading() -> None:
    r = _run("read", "-r", "/nonexistent.pcap", "-Y", "udp.port ==")
    assert r.returncode == 1 and "^" in r.stderr
    r = _run("read", "-r", str(CAPTURE), "-T", "fields", "-e", "no.such.field")
    assert r.returncode == 1 and "no.such.field" in r.stderr
    r = _run("read", "-r", str(CAPTURE), "-T", "fields")
    assert r.returncode == 1


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    # `jpdissect fields | head -1`: the pipe closes while the listing is still being written.
    proc = subprocess.Popen([sys.executable, "-m", "jpdissect.cli", "fields"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err
