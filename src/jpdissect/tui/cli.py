"""``jpdissect tui`` and ``jpdissect live``: argument parsing only.

Wired into the main CLI with ``tui.cli.add_parser(subparsers)`` (which registers both
subcommands and their ``func``); also runs stand-alone as ``python -m jpdissect.tui.cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jpdissect.tui.detail import DEFAULT_WARMUP
from jpdissect.tui.live import DEFAULT_RING


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", metavar="TABLE==SEL,PROTO", action="append", default=[],
                   help="decode as, e.g. udp.port==5685,coap")
    p.add_argument("-o", metavar="NAME:VALUE", action="append", default=[],
                   help="set a preference (see 'jpdissect prefs')")
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, metavar="N",
                   help=f"frames re-dissected before the selected one for its tree (default {DEFAULT_WARMUP})")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``tui`` and ``live``; returns the ``tui`` parser. Both set ``func``."""
    t = subparsers.add_parser(
        "tui", help="browse a capture in a terminal UI (packet list, details, hex, filters, statistics)",
        description="Wireshark's three panes in the terminal. Opens a million-frame file in under two "
                    "seconds: frames are indexed once and dissected on demand. Press ? for every key.")
    t.add_argument("file", nargs="?", metavar="FILE", help="capture file (pcap/pcapng, gzip allowed; '-' = stdin)")
    t.add_argument("-r", dest="r", metavar="FILE", help="same as FILE (tshark spelling)")
    t.add_argument("-Y", metavar="FILTER", help="display filter to apply on opening")
    _engine_args(t)
    t.set_defaults(func=run_tui)

    lv = subparsers.add_parser(
        "live", help="capture from an interface and dissect as frames arrive (dumpcap or scapy)",
        description="Live capture with dumpcap (or scapy): one line per frame, or the terminal UI with --tui.")
    lv.add_argument("-i", metavar="IFACE", required=True, help="interface to capture on (e.g. lo, eth0, any)")
    lv.add_argument("-f", metavar="BPF", help="capture filter (pcap-filter syntax), e.g. 'udp port 5684'")
    lv.add_argument("-w", metavar="OUT.pcapng", help="also write every captured frame to this pcapng file")
    lv.add_argument("--ring", type=int, default=DEFAULT_RING, metavar="N",
                    help=f"keep only the newest N frames in memory (default {DEFAULT_RING:,})")
    lv.add_argument("--tui", action="store_true", help="show the terminal UI instead of one line per frame")
    lv.add_argument("-Y", metavar="FILTER", help="display filter")
    lv.add_argument("-c", type=int, metavar="N", help="stop after N frames")
    lv.add_argument("--duration", "-a", type=_duration, metavar="SECONDS",
                    help="stop after this many seconds (also tshark's -a duration:N)")
    lv.add_argument("-q", action="store_true", help="no per-frame lines, only the statistics")
    lv.add_argument("--stats-every", type=float, default=0.0, metavar="S",
                    help="print a statistics line to stderr every S seconds")
    lv.add_argument("--backend", choices=("auto", "dumpcap", "scapy"), default="auto",
                    help="capture with dumpcap (default when installed) or scapy")
    _engine_args(lv)
    lv.set_defaults(func=run_live)
    return t


def _duration(text: str) -> float:
    return float(text.removeprefix("duration:"))


def _opts(args: argparse.Namespace) -> object:
    from jpdissect.engine import OptionError
    from jpdissect.tui.detail import EngineOptions

    opts = EngineOptions(tuple(args.o), tuple(args.d), max(0, args.warmup))
    try:
        opts.engine()  # validates -o/-d once, before any window opens
    except OptionError as exc:
        sys.stderr.write(f"jpdissect: {exc}\n")
        return None
    return opts


def run_tui(args: argparse.Namespace) -> int:
    from jpdissect.capture import CaptureFormatError
    from jpdissect.tui.app import run_app
    from jpdissect.tui.index import FileIndex

    path = args.file or args.r
    if not path:
        sys.stderr.write("jpdissect: tui needs a capture file (for a live capture: jpdissect live -i IFACE --tui)\n")
        return 1
    opts = _opts(args)
    if opts is None:
        return 1
    if path == "-" and not _split_stdin():
        sys.stderr.write("jpdissect: reading the capture from stdin needs a terminal (/dev/tty) for the UI\n")
        return 1
    try:
        src = FileIndex(path, opts)  # type: ignore[arg-type]
    except CaptureFormatError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    return run_app(src, initial_filter=args.Y)


def _split_stdin() -> bool:
    """``cat x.pcapng | jpdissect tui -``: the capture keeps the pipe, the UI gets the terminal.

    Textual reads keys from file descriptor 0, so the pipe is moved to a new descriptor (which
    becomes ``sys.stdin`` for the reader) and the controlling terminal is put on descriptor 0.
    """
    import io
    import os

    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        return False
    data = os.dup(0)
    os.dup2(tty, 0)
    os.close(tty)
    sys.stdin = io.TextIOWrapper(os.fdopen(data, "rb"))
    return True


def run_live(args: argparse.Namespace) -> int:
    from jpdissect.tui.live import LiveError, LiveStore, run_plain

    opts = _opts(args)
    if opts is None:
        return 1
    store = LiveStore(opts, args.i, ring=args.ring)  # type: ignore[arg-type]
    if not args.tui:
        return run_plain(store, args)
    from jpdissect.tui.app import run_app

    try:
        store.start(args.i, args.f, args.w, backend=args.backend)
    except LiveError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    return run_app(store, initial_filter=args.Y)


def run(args: argparse.Namespace) -> int:
    """Dispatch for callers that set one ``func`` for both subcommands."""
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jpdissect")
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
