"""``jpdissect live`` on the loopback interface with a bounded UDP sender of real datagrams.

The datagrams are the UDP payloads of the bundled ``captures/jpy.pcapng`` (DTLS 1.2 records
on the pledge hop, JPY-framed ones on the relay hop), replayed to [::1] only: a fixed, small
number of datagrams, then the capture stops by itself (-c / --duration).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from jpdissect.api import packets
from jpdissect.capture import open_capture

ROOT = Path(__file__).resolve().parent.parent
JPY = str(ROOT / "captures" / "jpy.pcapng")
DTLS_PORT, JPY_PORT = 5684, 7634
BPF = f"udp and (port {DTLS_PORT} or port {JPY_PORT})"

needs_capture = pytest.mark.skipif(
    shutil.which("dumpcap") is None or os.geteuid() != 0,
    reason="needs dumpcap and the right to capture on lo (root here)")


def datagrams(n_each: int = 4) -> list[tuple[int, bytes]]:
    """(destination port, payload): the first DTLS and JPY datagrams of the bundled capture."""
    out: list[tuple[int, bytes]] = []
    dtls = jpy = 0
    for p in packets(JPY, fields=["udp.dstport", "udp.srcport"]):
        lay = p.layer("udp")
        if lay is None:
            continue
        off = lay.offset
        ulen = int.from_bytes(p.data[off + 4 : off + 6], "big")  # RFC 768: length incl. header
        payload = p.data[off + 8 : off + ulen]
        if p.has("jpy") and jpy < n_each:
            out.append((JPY_PORT, payload))
            jpy += 1
        elif not p.has("jpy") and p.has("dtls") and p.dstport == DTLS_PORT and dtls < n_each:
            out.append((DTLS_PORT, payload))
            dtls += 1
    return out


def send(dgrams: list[tuple[int, bytes]], gap: float = 0.02) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        for port, payload in dgrams:
            s.sendto(payload, ("::1", port))
            time.sleep(gap)


def live_cmd() -> list[str]:
    """`jpdissect live` once the main CLI wires it in; the module's own entry point until then."""
    exe = shutil.which("jpdissect")
    if exe is not None:
        helptext = subprocess.run([exe, "-h"], capture_output=True, text=True).stdout
        if " live" in helptext:
            return [exe, "live"]
    return [sys.executable, "-m", "jpdissect.tui.cli", "live"]


@needs_capture
def test_live_plain_lines_decode_dtls_and_jpy(tmp_path: Path) -> None:
    dg = datagrams()
    out = tmp_path / "live.pcapng"
    proc = subprocess.Popen([*live_cmd(), "-i", "lo", "-f", BPF, "-c", str(len(dg)), "--duration", "30",
                             "-w", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("Capturing on 'lo'"), line
    time.sleep(0.3)
    send(dg)
    stdout, stderr = proc.communicate(timeout=40)
    assert proc.returncode == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == len(dg), stdout
    assert sum("Client Hello" in ln for ln in lines) >= 2
    assert sum("JPY [hdr" in ln for ln in lines) == sum(1 for p, _ in dg if p == JPY_PORT)
    assert f"{len(dg)} packets captured" in stderr and "[stats]" in stderr
    # -w kept dumpcap's bytes: the same datagrams, readable again.
    with open_capture(str(out)) as rd:
        frames = list(rd)
    assert len(frames) >= len(dg)
    assert sum(p.has("jpy") for p in packets(str(out))) == sum(1 for p, _ in dg if p == JPY_PORT)


@needs_capture
def test_live_tui_rows_and_incremental_statistics() -> None:
    pytest.importorskip("textual")
    from jpdissect.tui.app import JpApp
    from jpdissect.tui.detail import EngineOptions
    from jpdissect.tui.live import LiveStore
    from jpdissect.tui.screens import StatsScreen

    dg = datagrams()
    half = len(dg) // 2
    store = LiveStore(EngineOptions(), "lo", ring=1000)
    store.start("lo", BPF, None)

    async def go() -> None:
        app = JpApp(store)
        async with app.run_test(size=(100, 30)) as pilot:
            loop = asyncio.get_running_loop()

            async def until(cond: Any, timeout: float = 30.0) -> None:
                end = loop.time() + timeout
                while not cond():
                    assert loop.time() < end, "timed out"
                    await pilot.pause(0.05)

            t = threading.Thread(target=send, args=(dg[:half],))
            t.start()
            await until(lambda: store.total >= half)
            t.join()
            await pilot.pause(0.4)
            assert len(app.view) == store.total
            assert app.packet_index == store.total - 1  # autoscroll follows the newest frame
            rows = [store.row(i) for i in range(store.total)]
            assert all(r is not None and r.exact for r in rows)
            assert any("Client Hello" in r.info for r in rows if r)
            await pilot.press("t")
            scr = app.screen
            assert isinstance(scr, StatsScreen)
            await until(lambda: scr.run.snapshot is not None and scr.run.snapshot["frames"] >= half)
            first = scr.run.snapshot["frames"]
            send(dg[half:])
            await until(lambda: store.total >= len(dg))
            await until(lambda: scr.run.snapshot["frames"] >= len(dg), timeout=20)
            assert first < scr.run.snapshot["frames"]
            assert "jpy" in scr.run.snapshot["protocols"] or any(
                "JPY" in (store.row(i).info if store.row(i) else "") for i in range(store.total))
            await pilot.press("escape")
            await pilot.pause(0.2)

    try:
        asyncio.run(go())
    finally:
        store.close()


def test_live_missing_interface_is_one_line() -> None:
    if shutil.which("dumpcap") is None:
        pytest.skip("dumpcap not installed")
    r = subprocess.run([*live_cmd(), "-i", "no-such-if0", "-c", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "no interface 'no-such-if0'" in err[0] and "-i" in err[0]


@pytest.mark.skipif(shutil.which("dumpcap") is None or shutil.which("setpriv") is None or os.geteuid() != 0,
                    reason="needs dumpcap, setpriv and root to drop privileges")
def test_live_permission_denied_is_one_line(tmp_path: Path) -> None:
    """dumpcap run as an unprivileged user: the explanation says how to get the right."""
    wrapper = tmp_path / "dumpcap-nobody"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
                       f"{shutil.which('dumpcap')} \"$@\"\n")
    wrapper.chmod(0o755)
    env = dict(os.environ, JPDISSECT_DUMPCAP=str(wrapper))
    r = subprocess.run([*live_cmd(), "-i", "lo", "-c", "1"], capture_output=True, text=True,
                       timeout=30, env=env)
    assert r.returncode == 2
    err = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "not allowed to capture on 'lo'" in err[0] and "wireshark" in err[0]
