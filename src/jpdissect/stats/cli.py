"""``jpdissect stats`` and ``jpdissect report``: argument parsing only.

The main CLI wires both in with :func:`add_parser`; ``python -m jpdissect.stats.cli`` runs them on
their own meanwhile.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from jpdissect.cli import PROG
from jpdissect.cli import err as _err

STATS_COMMANDS = ("summary", "overhead", "schemes", "sessions", "conv", "io")
#: Output formats of ``stats`` (:mod:`jpdissect.stats.formats` writes them; defined here so that
#: building the parser imports neither pandas nor pyarrow).
FORMATS = ("table", "csv", "json", "markdown", "parquet")




def _common(p: argparse.ArgumentParser) -> None:
    from jpdissect.stats import radio

    p.add_argument("--pledge-link", metavar="PROFILE", default=radio.DEFAULT_PLEDGE_PROFILE,
                   help="802.15.4 profile of the pledge's hop: NAME[,key=value...] "
                        f"(profiles: {', '.join(radio.PROFILES)}; default %(default)s)")
    p.add_argument("--relay-link", metavar="PROFILE", default=radio.DEFAULT_RELAY_PROFILE,
                   help="802.15.4 profile of one JP<->Registrar hop (default %(default)s), e.g. "
                        "'mesh,hops=3,mesh=1'; keys: src, dst, panc, sec, kid, fcsupp, src_iid, dst_iid, "
                        "cid, ack, hops, tf, mesh")
    p.add_argument("--pref", metavar="NAME:VALUE", action="append", default=[],
                   help="dissector preference, as tshark -o (see 'jpdissect prefs')")
    p.add_argument("-d", metavar="TABLE==SEL,PROTO", action="append", default=[], dest="decode_as",
                   help="decode as, e.g. udp.port==5685,coap")
    p.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                   help="I/O interval in seconds (default %(default)s)")


def add_parser(subparsers: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Add ``stats`` and ``report`` to the main CLI's subparsers (both dispatch to :func:`run`)."""
    st = subparsers.add_parser(
        "stats", help="overhead, radio cost, scheme what-if, sessions, conversations, I/O (pandas)",
        description="Statistics of one capture. summary: per relay scheme, with the draft's overhead "
                    "claims checked; overhead: one row per relayed datagram, framing split into its "
                    "parts, 802.15.4 cost of both hops; schemes: the same inner datagrams re-encoded "
                    "under every scheme; sessions: one row per pledge; conv: UDP conversations; io: "
                    "frames and bytes per interval.")
    st.add_argument("what", choices=STATS_COMMANDS, help="which statistic")
    st.add_argument("-r", metavar="FILE", required=True, help="capture file (pcap/pcapng, gzip allowed)")
    st.add_argument("--format", choices=FORMATS, default="table", help="output format (default %(default)s)")
    st.add_argument("-o", metavar="OUT", help="write to OUT instead of stdout (required for parquet)")
    st.add_argument("-c", metavar="N", type=int, default=0, help="stop after N frames")
    st.add_argument("--per-datagram", action="store_true",
                    help="schemes: one row per datagram and scheme instead of the side-by-side totals")
    _common(st)
    st.set_defaults(func=run, stats_command="stats")

    rp = subparsers.add_parser(
        "report", help="HTML/Markdown report with plots for one capture or many (parallel)",
        description="Tables and matplotlib plots (overhead per scheme, radio frames per datagram, "
                    "handshake timeline per session, I/O over time) for captures given as files, "
                    "directories or globs, analysed in parallel worker processes.")
    rp.add_argument("inputs", nargs="+", metavar="INPUT", help="capture file, directory or glob")
    rp.add_argument("-o", metavar="OUT", required=True, help="report.html or report.md")
    rp.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                    help="worker processes (default: one per CPU; 1 = no worker processes)")
    rp.add_argument("--no-progress", action="store_true", help="no progress bar")
    rp.add_argument("--title", default="Join Proxy overhead report")
    _common(rp)
    rp.set_defaults(func=run, stats_command="report")
    return st, rp


def _options(args: argparse.Namespace) -> Any:
    from jpdissect.stats.analysis import Options

    if args.interval <= 0:
        raise ValueError("--interval must be positive")
    opts = Options(pledge_profile=args.pledge_link, relay_profile=args.relay_link,
                   interval_ns=int(args.interval * 1e9), prefs=tuple(args.pref), decode_as=tuple(args.decode_as),
                   per_datagram=getattr(args, "per_datagram", False), limit=getattr(args, "c", 0) or 0)
    opts.check()
    return opts


def _validate_engine(opts: Any) -> None:
    from jpdissect.engine import Engine

    Engine(prefs=opts.prefs, decode_as=opts.decode_as)


def run(args: argparse.Namespace) -> int:
    from jpdissect.engine import OptionError

    try:
        opts = _options(args)
        _validate_engine(opts)
    except (ValueError, OptionError) as exc:
        _err(str(exc))
        return 1
    if args.stats_command == "report":
        return _run_report(args, opts)
    return _run_stats(args, opts)


def _run_stats(args: argparse.Namespace, opts: Any) -> int:
    from jpdissect.capture import CaptureFormatError
    from jpdissect.stats import formats as F
    from jpdissect.stats import radio
    from jpdissect.stats.analysis import analyse
    from jpdissect.stats.summary import claims
    from jpdissect.stats.whatif import assumptions

    what = args.what
    parts = {"summary": ("summary",), "overhead": ("relayed",), "schemes": ("whatif",), "conv": ("conv",),
             "io": ("io",), "sessions": ()}[what]
    profiles = [f"Pledge hop: {radio.profile(opts.pledge_profile).describe()}",
                f"Registrar hop: {radio.profile(opts.relay_profile).describe()}"]
    try:
        if what == "sessions":
            tables = [_sessions_table(args.r, opts)]
            err = None
        else:
            st = analyse(args.r, opts, parts)
            err = st.error
            tables = _stats_tables(what, st, opts, profiles, claims, assumptions, F.Table)
        F.write(tables, args.format, args.o, sys.stdout)
    except CaptureFormatError as exc:
        _err(str(exc))
        return 2
    except (OSError, ValueError) as exc:
        _err(str(exc))
        return 1
    except BrokenPipeError:  # pragma: no cover - `| head`
        return 0
    if err:
        _err(str(err))
        return 2
    return 0


def _stats_tables(what: str, st: Any, opts: Any, profiles: list[str], claims: Any, assumptions: Any,
                  table: Any) -> list[Any]:
    from jpdissect.stats import radio

    name = st.path
    if what == "summary":
        s = st.summary()
        notes = [f"{st.frames} frames, {st.relayed} relayed datagrams "
                 f"({st.not_relayed} pledge-hop datagrams not relayed), {st.sessions_seen} pledges"] + profiles
        return [table(f"Relayed traffic per scheme: {name}", s, notes, "summary"),
                table("The draft's overhead claims on this traffic", claims(s),
                      ["JPY CBOR framing = array head + byte-string heads (header value excluded); "
                       "overhead = relay UDP payload minus the relayed datagram"], "claims")]
    if what == "overhead":
        return [table(f"Relayed datagrams: {name}", st.relayed_df,
                      ["overhead_bytes = sum of the component columns = relay_payload_bytes - inner_bytes",
                       *profiles], "overhead")]
    if what == "schemes":
        notes = assumptions(radio.profile(opts.relay_profile), radio.profile(opts.pledge_profile))
        if opts.per_datagram:
            return [table(f"Every relayed datagram under every scheme: {name}", st.whatif_rows, notes, "schemes")]
        return [table(f"The same traffic under every scheme: {name}", st.whatif(), notes, "schemes")]
    if what == "conv":
        return [table(f"UDP conversations: {name}", st.conv_df, [], "conv")]
    return [table(f"I/O per {opts.interval_ns / 1e9:g} s: {name}", st.io_df, [], "io")]


def _sessions_table(path: str, opts: Any) -> Any:
    from jpdissect.stats.formats import Table

    try:
        from jpdissect.sessions import sessions
    except ImportError:  # pragma: no cover - before the join-proxy issue lands
        from jpdissect.stats.analysis import analyse

        df = analyse(path, opts, ("timeline",)).sessions_df
        return Table(f"Pledge sessions: {path}", df, ["jpdissect.stats fallback session table"], "sessions")
    return Table(f"Pledge sessions: {path}", sessions(path, opts.prefs, opts.decode_as), [], "sessions")


def _run_report(args: argparse.Namespace, opts: Any) -> int:
    from jpdissect.stats.report import ReportError, build_report, expand_inputs

    try:
        paths = expand_inputs(args.inputs)
    except ReportError as exc:
        _err(str(exc))
        return 1
    try:
        rep = build_report(paths, args.o, opts, jobs=args.jobs, progress=not args.no_progress, title=args.title)
    except ReportError as exc:
        _err(str(exc))
        return 1
    sys.stderr.write(f"{PROG}: report written to {args.o} ({len(paths)} captures, {rep.frames} frames, "
                     f"{rep.workers} worker(s), {rep.seconds:.1f} s)\n")
    return 2 if rep.failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jpdissect.stats.cli stats ...`` / ``... report ...`` until the main CLI wires us in."""
    p = argparse.ArgumentParser(prog=PROG)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_parser(sub)
    args = p.parse_args(argv)
    if not getattr(args, "func", None):
        p.print_help()
        return 0
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
