"""``jpdissect sessions``: one line per pledge onboarding, across both legs of the Join Proxy.

Argument parsing and formatting only; the reconstruction is :mod:`jpdissect.sessions`. The table
format is for reading, CSV and JSON carry every column (the same as ``jpdissect.api.sessions``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any, TextIO

from jpdissect.cli import PROG
from jpdissect.cli import err as _err

#: Columns of the human-readable table: (header, width, how to get the text from a row).
_TABLE: tuple[tuple[str, int, str], ...] = (
    ("#", 3, "session"),
    ("scheme", 12, "scheme"),
    ("pledge", 32, "pledge"),
    ("registrar", 26, "registrar"),
    ("legs", 5, "legs"),
    ("up p/r", 9, "up"),
    ("down r/p", 9, "down"),
    ("bytes up/down", 15, "bytes"),
    ("handshake", 10, "handshake"),
    ("fwd ms up/down", 15, "fwd"),
    ("retr", 5, "retr"),
    ("outcome", 11, "outcome"),
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sessions",
        help="reconstruct each pledge's onboarding across both Join Proxy legs",
        description="Pair every relayed datagram with its twin on the other leg and list one session per "
                    "pledge: scheme, pledge, JP, Registrar, datagrams and bytes per leg and direction, "
                    "handshake duration, JP forwarding delay, retransmissions, outcome.",
    )
    _arguments(p)
    return p


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-r", metavar="FILE", required=True, help="capture file to read ('-' = stdin)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table",
                   help="table (default, for reading), csv or json (every column)")
    p.add_argument("-d", metavar="TABLE==SEL,PROTO", action="append",
                   help="decode as, e.g. udp.port==7634,jpy")
    p.add_argument("-o", metavar="NAME:VALUE", action="append",
                   help="set a preference, e.g. jpy.header_key:HEX (see 'jpdissect prefs')")




def run(args: argparse.Namespace) -> int:
    from jpdissect.capture import CaptureFormatError, open_capture
    from jpdissect.engine import Engine, OptionError
    from jpdissect.sessions import first_pass

    try:
        engine = Engine(prefs=args.o or [], decode_as=args.d or [], tree=False, cols=False, single_pass=True)
    except OptionError as exc:
        _err(str(exc))
        return 1
    try:
        reader = open_capture(args.r)
    except CaptureFormatError as exc:
        _err(str(exc))
        return 2
    status = 0
    try:
        with reader:
            table = first_pass(engine, None, reader)
            if reader.error is not None:
                _err(str(reader.error))
                status = 2
        rows = table.rows()
        out = sys.stdout
        if args.format == "csv":
            write_csv(out, rows)
        elif args.format == "json":
            json.dump(rows, out, indent=1)
            out.write("\n")
        else:
            write_table(out, rows)
        out.flush()
    except BrokenPipeError:
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - silence the final flush
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        return 130
    return status


def write_csv(out: TextIO, rows: list[dict[str, Any]]) -> None:
    from jpdissect.sessions import COLUMNS

    w = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})


def _cell(r: dict[str, Any], what: str) -> str:
    if what == "pledge":
        return f"[{r['pledge']}]:{r['pledge_port']}" if r["pledge"] and r["pledge_port"] is not None \
            else (r["pledge"] or (f"state {r['state'][:12]}…" if r["state"] else "?"))
    if what == "legs":
        p, g = r["pledge_leg"] == "captured", r["registrar_leg"] == "captured"
        return "both" if p and g else ("P" if p else "R")
    if what == "up":
        return f"{r['up_pledge_datagrams']}/{r['up_registrar_datagrams']}"
    if what == "down":
        return f"{r['down_registrar_datagrams']}/{r['down_pledge_datagrams']}"
    if what == "bytes":
        up = r["up_registrar_bytes"] or r["up_pledge_bytes"]
        down = r["down_registrar_bytes"] or r["down_pledge_bytes"]
        return f"{up}/{down}"
    if what == "handshake":
        d = r["handshake_duration"]
        return f"{d:.3f} s" if d is not None else "-"
    if what == "fwd":
        u, d = r["forward_delay_up_mean"], r["forward_delay_down_mean"]
        return f"{_ms(u)}/{_ms(d)}"
    if what == "retr":
        return f"{r['retransmissions_up']}/{r['retransmissions_down']}"
    v = r.get(what)
    return "-" if v is None else str(v)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f}"


def write_table(out: TextIO, rows: list[dict[str, Any]]) -> None:
    """Fixed-width columns; a cell longer than its column widens that row rather than being cut."""
    out.write("  ".join(h.ljust(w) for h, w, _ in _TABLE).rstrip() + "\n")
    for r in rows:
        out.write("  ".join(_cell(r, what).ljust(w) for _h, w, what in _TABLE).rstrip() + "\n")
    if not rows:
        out.write("(no join-proxy sessions found)\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m jpdissect.sessions_cli -r FILE``: the command without the main CLI."""
    p = argparse.ArgumentParser(prog=f"{PROG} sessions")
    _arguments(p)
    return run(p.parse_args(argv))


__all__ = ["add_parser", "main", "run", "write_csv", "write_table"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
