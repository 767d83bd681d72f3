"""Wireshark's dissection of bytes jpdissect leaves as ``data``, fetched on demand.

For one frame only, when the user opens the slot under a ``data`` layer: the frame is
written to a one-frame pcapng, ``tshark -T pdml`` dissects it, and the protocols that start
inside the data bytes are shown, clearly labelled as Wireshark's. jpdissect's own layers
always come first and are never replaced; PDML gives each field's ``pos``/``size``, so the
hex pane highlights Wireshark's fields the same way as ours.

tshark is called directly rather than through pyshark: pyshark drives tshark through an
asyncio event loop of its own, which cannot run inside Textual's loop, and for one frame it
would add nothing but start-up time (pyshark also parses PDML from ``tshark -T pdml``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from jpdissect.capture import Frame, Interface
from jpdissect.capture.writer import PcapngWriter
from jpdissect.tui.widgets import Span

#: Seconds tshark gets for one frame before we give up.
TSHARK_TIMEOUT = 30.0
#: PDML protocols that describe the capture, not the bytes.
_META = {"geninfo", "frame", "fake-field-wrapper"}

INSTALL_HINT = ("tshark is not installed, so Wireshark's dissection cannot be shown. Install it with "
                "'sudo apt install tshark' (Debian/Ubuntu), 'sudo dnf install wireshark-cli' (Fedora) "
                "or 'brew install wireshark' (macOS), or set JPDISSECT_TSHARK to its path.")


@dataclass
class WsNode:
    """One line of Wireshark's tree."""

    text: str
    span: Span | None
    children: list[WsNode] = field(default_factory=list)


def tshark_path() -> str | None:
    env = os.environ.get("JPDISSECT_TSHARK")
    if env is not None:
        return env if env and os.access(env, os.X_OK) else None
    return shutil.which("tshark")


def tshark_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "tshark"
    first = out.splitlines()[0] if out else "tshark"
    return first.split(" (")[0]


def dissect_with_tshark(frame: Frame, interfaces: list[Interface], start: int, end: int) -> list[WsNode] | str:
    """Wireshark's protocols starting in frame bytes ``[start, end)``, or a one-line reason why not."""
    exe = tshark_path()
    if exe is None:
        return INSTALL_HINT
    with tempfile.TemporaryDirectory(prefix="jpdissect-ws-") as tmp:
        path = os.path.join(tmp, "frame.pcapng")
        with PcapngWriter(path, interfaces) as w:
            w.write(frame)
        try:
            proc = subprocess.run([exe, "-n", "-r", path, "-T", "pdml"], capture_output=True,
                                  timeout=TSHARK_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"tshark took longer than {TSHARK_TIMEOUT:.0f} s on this frame"
        except OSError as exc:
            return f"tshark could not be run: {exc.strerror or exc}"
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        err = [e for e in err if not e.startswith("Running as user")]
        return f"tshark failed: {err[-1] if err else f'exit status {proc.returncode}'}"
    try:
        root = ET.fromstring(proc.stdout)
    except ET.ParseError as exc:
        return f"tshark's PDML could not be parsed: {exc}"
    pkt = root.find("packet")
    if pkt is None:
        return "tshark returned no packet"
    out: list[WsNode] = []
    for proto in pkt.findall("proto"):
        name = proto.get("name", "")
        if name in _META:
            continue
        pos = _int(proto.get("pos"))
        if pos is None or not start <= pos < max(end, start + 1):
            continue
        out.append(_node(proto))
    if not out:
        return "Wireshark does not dissect these bytes either (it shows them as data too)"
    return out


def _int(s: str | None) -> int | None:
    try:
        return int(s) if s is not None else None
    except ValueError:
        return None


def _node(el: ET.Element) -> WsNode:
    text = el.get("showname") or el.get("show") or el.get("name") or "?"
    pos, size = _int(el.get("pos")), _int(el.get("size"))
    span = Span(0, pos, size) if pos is not None and size is not None else None
    node = WsNode(text, span)
    for ch in el:
        if ch.tag in ("field", "proto") and ch.get("hide") != "yes":
            node.children.append(_node(ch))
    return node
