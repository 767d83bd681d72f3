"""The lab: real stacks through this project's Join Proxy, checked with the project's own codecs.

Tests that build network namespaces need root, iproute2, openssl and dumpcap and skip, saying which is
missing, otherwise. The bundled captures in ``captures/`` are checked on every run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from jpdissect.lab import SCHEMES
from jpdissect.lab.config import LabConfig, Ports
from jpdissect.lab.joinproxy import StatefulJoinProxy, Watch
from jpdissect.lab.verify import verify

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def _lab_missing() -> str | None:
    if os.geteuid() != 0:
        return "lab smoke test needs root (network namespaces)"
    for tool in ("ip", "openssl", "dumpcap"):
        if shutil.which(tool) is None:
            return f"lab smoke test needs '{tool}'"
    from jpdissect.lab.topology import can_use_netns

    ok, why = can_use_netns()
    return None if ok else f"network namespaces unavailable: {why}"


needs_lab = pytest.mark.skipif(_lab_missing() is not None, reason=_lab_missing() or "")


def _run(tmp_path: Path, scheme: str, **kw: object):  # type: ignore[no-untyped-def]
    from jpdissect.lab import runner

    opts = runner.RunOptions(scheme=scheme, out=tmp_path / f"{scheme}.pcapng", command=f"test {scheme}",
                             **kw)  # type: ignore[arg-type]
    return asyncio.run(runner.run(opts))


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("jplab")}


# ---------------------------------------------------------------------------
# No root needed


def test_watch_counts_a_repeated_flight_and_fragments() -> None:
    """RFC 6347 §4.2.4: a retransmitted flight repeats message_seq/fragment; §4.2.3 fragments."""
    hs = bytes([1]) + (100).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00" + (50).to_bytes(3, "big")
    rec = b"\x16\xfe\xfd" + b"\x00\x00" + bytes(6) + (len(hs) + 50).to_bytes(2, "big") + hs + bytes(50)
    w = Watch()
    assert w.dtls("p", "up", rec) == (0, 1)
    assert w.dtls("p", "up", rec) == (1, 1)
    assert w.dtls("q", "up", rec) == (0, 1)  # another pledge's is not a repeat


def test_stateful_limit_refuses_the_extra_pledge() -> None:
    """Draft §4.2: past the per-interface limit a new pledge gets no state (and, as root, ICMPv6)."""

    async def go() -> tuple[list[str], list[bytes]]:
        reg = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        reg.bind(("::1", 0))
        reg.settimeout(0.2)
        join = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        join.bind(("::1", 0))
        jport = join.getsockname()[1]
        join.close()
        cfg = LabConfig(scheme="stateful", ports=Ports(jport, reg.getsockname()[1], 0, 0), jp_lln_addr="::1",
                        jp_lln_ifindex=socket.if_nametoindex("lo"), jp_bb_addr="::1", registrar_addr="::1",
                        n_pledges=2, jp_key_hex="00" * 16, psk_hex="00" * 16, psk_hint="", keydir="",
                        keylog_dir="", max_states_per_interface=1)
        jp = StatefulJoinProxy(cfg)
        await jp.start()
        pledges = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2)]
        got: list[bytes] = []
        for i, s in enumerate(pledges):
            s.sendto(b"\x16\xfe\xfd hello %d" % i, ("::1", jport))
            await asyncio.sleep(0.2)
            try:
                got.append(reg.recv(100))
            except TimeoutError:
                pass
        refused = jp.result()["refused"]
        jp.close()
        for s in [*pledges, reg]:
            s.close()
        return refused, got

    refused, got = asyncio.run(go())
    assert got == [b"\x16\xfe\xfd hello 0"]
    assert len(refused) == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_loopback_fallback_runs_a_pledge(tmp_path: Path) -> None:
    """Without namespaces everything runs on ::1 with distinct ports, and says so."""
    res = _run(tmp_path, "jpy", pledges=1, stack="openssl", auth="psk", loopback=True, duration=20)
    assert res.topology == "loopback"
    assert any("loopback fallback" in n for n in res.notes)
    assert res.ok, res.pledges
    assert res.registrar["handshakes"] == 1 and res.registrar["exchanges"] == 1
    if res.capture:
        rep = verify(res.capture)
        assert rep.ok and rep.relayed > 0, rep.failures


# ---------------------------------------------------------------------------
# Root: the real topology (the CI smoke test)


@needs_lab
def test_smoke_netns_one_pledge(tmp_path: Path) -> None:
    """One scheme, one pledge, namespaces: both legs captured, every relayed datagram decodes."""
    before = _namespaces()
    res = _run(tmp_path, "jpy", pledges=1, stack="openssl", auth="psk", duration=20)
    assert res.topology == "netns"
    assert res.ok, res.pledges
    assert res.registrar["handshakes"] == 1
    assert res.capture and res.keylog
    rep = verify(res.capture)
    assert rep.ok, rep.failures
    assert set(rep.per_leg) == {0, 1}  # lln0 and bb0
    assert rep.relayed == rep.per_leg[1] and rep.relayed > 0
    assert rep.handshake["ClientHello"] == 4  # (without, with cookie) x (pledge hop, Registrar hop)
    assert rep.handshake["HelloVerifyRequest"] == 2
    assert rep.app_data >= 4
    assert "CLIENT_RANDOM" in Path(res.keylog).read_text()
    keys = json.loads(Path(res.keys).read_text())
    assert len(bytes.fromhex(keys["jp_header_key"]["hex"])) == 16
    assert _namespaces() == before  # cleaned up


@needs_lab
def test_small_mtu_fragments_the_handshake(tmp_path: Path) -> None:
    res = _run(tmp_path, "stateful", pledges=1, stack="openssl", auth="cert", mtu=300, duration=20)
    assert res.ok, res.pledges
    assert res.join_proxy["fragments"] > 0
    rep = verify(res.capture)
    assert rep.ok and rep.fragments > 0


@needs_lab
@pytest.mark.skipif(not os.environ.get("JPDISSECT_LAB_SLOW"), reason="slow (~20 s): set JPDISSECT_LAB_SLOW=1")
def test_loss_provokes_counted_retransmissions(tmp_path: Path) -> None:
    res = _run(tmp_path, "jpy", pledges=2, stack="openssl", auth="psk", loss=30, duration=60)
    assert res.join_proxy["retransmissions"] > 0
    assert verify(res.capture).retransmissions > 0


# ---------------------------------------------------------------------------
# The bundled captures


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bundled_capture(scheme: str) -> None:
    cap = CAPTURES / f"{scheme}.pcapng"
    if not cap.exists():
        pytest.skip(f"{cap} not bundled")
    assert cap.stat().st_size < 100_000  # small: tens of KB
    rep = verify(cap)
    assert rep.ok, rep.failures[:5]
    assert set(rep.per_leg) == {0, 1}
    keys = json.loads((CAPTURES / f"{scheme}.keys" / "keys.json").read_text())
    assert keys["scheme"] == scheme
    if scheme == "cojp":
        assert rep.relayed >= 6  # 3 requests and 3 responses relayed
    else:
        assert rep.handshake["ClientHello"] >= 12  # 3 pledges, cookie exchange, both hops
        assert "CLIENT_RANDOM" in (CAPTURES / f"{scheme}.keylog").read_text()
