"""Command-line parsing only; the work happens in the modules it calls.

Flags follow tshark's where the meaning is the same, so ``jpdissect read``
can stand in for ``tshark -r`` in a user's scripts.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from jpdissect import __version__

PROG = "jpdissect"


def err(msg: str) -> None:
    """One-line error on stderr, prefixed once (library messages may carry the prefix already)."""
    sys.stderr.write(f"{PROG}: {msg.removeprefix(f'{PROG}: ')}\n")


_err = err


# ---------------------------------------------------------------------------
# read


def cmd_read(args: argparse.Namespace) -> int:
    from jpdissect.capture import CaptureFormatError, open_capture
    from jpdissect.dissectors import load_all
    from jpdissect.engine import Engine, OptionError
    from jpdissect.model import FIELDS, prime, unprime_all
    from jpdissect.output import (
        EkWriter,
        FieldOptions,
        FieldsWriter,
        JsonWriter,
        summary_line,
        write_hex,
        write_tree,
    )

    load_all()
    fields: list[str] = args.fields or []
    bad = [f for f in fields if f not in FIELDS]
    if bad:
        _err("Some fields aren't valid:\n" + "".join(f"\t{b}\n" for b in bad).rstrip("\n"))
        return 1
    if args.T == "fields" and not fields:
        _err('"-T fields" was specified, but no fields were specified with "-e".')
        return 1
    fopts = FieldOptions()
    for spec in args.E or []:
        try:
            fopts.set(spec)
        except ValueError as exc:
            _err(str(exc))
            return 1

    flt = None
    if args.Y:
        from jpdissect.filters import FilterError, compile_filter

        try:
            flt = compile_filter(args.Y)
        except FilterError as exc:
            sys.stderr.write(f"{PROG}: {exc.message}\n{exc.caret()}\n")
            return 1

    json_like = args.T in ("json", "ek")
    tree = bool(args.V) or (json_like and not fields)
    cols = args.T in (None, "text") and not args.q
    unprime_all()
    prime(fields)
    if flt is not None:
        prime(flt.fields)
    if _bad_secrets(args):
        return 1
    prefs = list(args.o or [])
    if args.keylog:
        prefs.append(f"dtls.keylog_file:{args.keylog}")
    if args.oscore_contexts:
        prefs.append(f"oscore.contexts_file:{args.oscore_contexts}")
    def make_engine() -> Engine:
        # read dissects each frame once, in order, and reads only the packets: finished
        # conversations need not be remembered (jpdissect.lifetime). In two-pass mode each pass is
        # its own engine; the first pass's product, the jp session tracker, is kept whole.
        return Engine(prefs=prefs, decode_as=args.d or [], tree=tree, cols=cols or tree,
                      lazy=args.T == "fields", single_pass=True)

    try:
        engine = make_engine()
    except OptionError as exc:
        _err(str(exc))
        return 1

    try:
        reader = open_capture(args.r)
    except CaptureFormatError as exc:
        _err(str(exc))
        return 2

    from jpdissect import sessions as jps
    from jpdissect.dissectors import jp

    if jps.needs_two_pass(fields, flt.fields if flt is not None else ()):
        # jp.peer_frame of an ingress copy names a later frame: like tshark -2, read twice.
        try:
            engine = jps.prepare_two_pass(make_engine, args.r)
        except jps.TwoPassError as exc:
            _err(str(exc))
            reader.close()
            return 1
    elif tree or jp.wanted():
        # The jp layer in the tree, or for jp.* fields and filters in one pass. The summary lines
        # never show it: tracking every pledge session for them cost a fifth of the time and
        # memory that grew with the capture (the tracker keeps every observation).
        jp.install(engine)

    out: TextIO = sys.stdout
    writer = None
    if args.w:
        from jpdissect.capture.writer import PcapngWriter

        try:
            writer = PcapngWriter(sys.stdout.buffer if args.w == "-" else args.w, reader.interfaces)
        except OSError as exc:
            _err(f'The file "{args.w}" could not be opened for writing: {exc.strerror or exc}')
            reader.close()
            return 2
    quiet = args.q or (args.w is not None and not args.P)
    emit = None
    closer = None
    fw = None
    if not quiet:
        if args.T == "fields":
            fw = FieldsWriter(out, fields, fopts)
            if args.r == "-":
                fw.BATCH = 1  # a pipe may be slow (a live capture): print each frame as it comes
            emit, closer = fw.write, fw.flush
        elif args.T == "json":
            jw = JsonWriter(out, fields or None)
            emit, closer = jw.write, jw.close
        elif args.T == "ek":
            emit = EkWriter(out, fields or None).write
        else:
            def emit(pkt: object) -> None:  # type: ignore[misc]
                if args.V:
                    write_tree(out, pkt)  # type: ignore[arg-type]
                elif not args.x or args.P:
                    out.write(summary_line(pkt) + "\n")  # type: ignore[arg-type]
                if args.x:
                    write_hex(out, pkt)  # type: ignore[arg-type]

    limit = args.c
    status = 0
    # Packets are released as soon as printed (no cycles left); what the dissectors
    # keep is long-lived state, so collect young objects less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        with reader:
            n = 0
            engine.secrets = reader.secrets
            for frame in reader:
                pkt = engine.dissect(frame)
                if flt is None or flt(pkt):
                    engine.displayed(pkt)
                    if emit is not None:
                        emit(pkt)
                    if writer is not None:
                        writer.write(frame)
                pkt.release()
                n += 1
                if limit and n >= limit:
                    break
            if closer is not None:
                closer()
                closer = None
            out.flush()
            if reader.error is not None:
                _err(str(reader.error))
                status = 2
    except BrokenPipeError:
        # `| head` closed the pipe: not an error for a filter-style tool.
        fw = None  # nobody is left to read batched lines
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - silence the final flush
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        if fw is not None:
            fw.flush()  # the lines of every frame dissected so far
            fw = None
        out.flush()
        return 130
    finally:
        if fw is not None:
            fw.flush()  # an unexpected error: the frames already read are still printed
        if writer is not None:
            writer.close()
    return status


def _bad_secrets(args: argparse.Namespace) -> bool:
    """Refuse unreadable secret files before reading the capture, like a bad filter."""
    if args.keylog:
        from jpdissect.crypto.keylog import load_file

        try:
            load_file(args.keylog)
        except (OSError, ValueError) as exc:
            _err(f'The key log "{args.keylog}" could not be read: {getattr(exc, "strerror", None) or exc}')
            return True
    if args.oscore_contexts:
        from jpdissect.crypto.oscore import load_contexts

        if not os.path.exists(args.oscore_contexts):
            _err(f'The OSCORE contexts file "{args.oscore_contexts}" does not exist')
            return True
        ctxs, errors = load_contexts(args.oscore_contexts)
        for e in errors:
            _err(f"OSCORE contexts: {e}")
        if not ctxs:
            _err(f'No usable OSCORE security context in "{args.oscore_contexts}"')
            return True
    return False


# ---------------------------------------------------------------------------
# fields / prefs / dissectors listings


def cmd_fields(args: argparse.Namespace) -> int:
    """Like ``tshark -G fields``: P lines for protocols, F lines for fields."""
    import jpdissect.engine  # noqa: F401 - declares frame.*, data.*, _ws.*
    from jpdissect.dissectors import load_all
    from jpdissect.model import PROTOCOLS

    load_all()
    prefix = args.prefix
    out = sys.stdout
    for abbrev in sorted(PROTOCOLS):
        p = PROTOCOLS[abbrev]
        rows = [fd for fd in p.fields.values() if not prefix or fd.abbrev.startswith(prefix)]
        if prefix and not rows and not abbrev.startswith(prefix):
            continue
        out.write(f"P\t{p.name}\t{abbrev}\n")
        for fd in rows:
            base = fd.base.value if fd.base else ""
            strings = ""
            if fd.strings and args.values:
                strings = "\t" + "; ".join(f"{k}={v}" for k, v in list(fd.strings.items())[:64])
            out.write(
                f"F\t{fd.name}\t{fd.abbrev}\t{fd.ftype.value}\t{abbrev}\t{base}\t0x{fd.bitmask:x}\t{fd.desc}{strings}\n"
            )
    return 0


def cmd_prefs(args: argparse.Namespace) -> int:
    """Every ``-o`` preference with its type, default and meaning."""
    import jpdissect.engine  # noqa: F401
    from jpdissect.dissectors import load_all
    from jpdissect.model import PREFS

    load_all()
    for name in sorted(PREFS):
        p = PREFS[name]
        default = p.default.hex() if isinstance(p.default, bytes) else p.default
        sys.stdout.write(f"{name}\t{p.kind.__name__}\t{default!s}\t{p.desc}\n")
    return 0


def cmd_dissectors(args: argparse.Namespace) -> int:
    """Dissector tables and heuristics: what ``-d`` can name and where."""
    from jpdissect.dissectors import load_all
    from jpdissect.dissectors.registry import REGISTRY

    load_all()
    out = sys.stdout
    out.write("Dissectors (for -d TABLE==SELECTOR,PROTO):\n")
    for name in sorted(REGISTRY.named):
        out.write(f"  {name:<16} {REGISTRY.descriptions.get(name, '')}\n")
    out.write("Tables:\n")
    for table in sorted(REGISTRY.tables):
        entries = ", ".join(f"{k}→{v}" for k, v in sorted(REGISTRY.tables[table].items(), key=lambda kv: str(kv[0])))
        out.write(f"  {table}: {entries}\n")
    out.write("Heuristics:\n")
    for table in sorted(REGISTRY.heuristics):
        for h in REGISTRY.heuristics[table]:
            out.write(f"  {table}: {h.name} ({h.proto})\n")
    return 0


# ---------------------------------------------------------------------------


# Commands whose parser needs nothing heavy: `jpdissect read` starts as fast as tshark does.
LIGHT_COMMANDS = frozenset({"read", "fields", "prefs", "dissectors"})


def build_parser(full: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Dissect and analyse join-proxy onboarding traffic (DTLS, JPY, CoAP, OSCORE, Thread relay).",
        epilog="Run 'jpdissect COMMAND -h' for a command's options. "
        "'jpdissect -r FILE …' is short for 'jpdissect read -r FILE …'.",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "read",
        help="dissect a capture file and print it (tshark -r)",
        description="Dissect a pcap/pcapng file (gzip allowed, '-' for stdin) with tshark's flags.",
    )
    r.add_argument("-r", metavar="FILE", required=True, help="capture file to read ('-' = stdin)")
    r.add_argument("-c", metavar="N", type=int, help="stop after reading N frames")
    r.add_argument("-Y", metavar="FILTER", help="display filter (Wireshark syntax)")
    r.add_argument("-V", action="store_true", help="print the full protocol tree of each packet")
    r.add_argument("-x", action="store_true", help="print a hex/ASCII dump of each packet's bytes")
    r.add_argument("-P", action="store_true", help="print the summary line even with -w or -x")
    r.add_argument("-T", choices=["text", "fields", "json", "ek"], help="output format")
    r.add_argument("-e", metavar="FIELD", action="append", dest="fields", help="field to print (repeatable; see 'jpdissect fields')")
    r.add_argument(
        "-E", metavar="OPT=VAL", action="append",
        help="-T fields options: header=y|n, separator=/t|/s|C, occurrence=f|l|a|N, aggregator=C, quote=d|s|n",
    )
    r.add_argument("-q", action="store_true", help="print no per-packet output")
    r.add_argument("-d", metavar="TABLE==SEL,PROTO", action="append", help="decode as, e.g. udp.port==5685,coap")
    r.add_argument("-o", metavar="NAME:VALUE", action="append", help="set a preference (see 'jpdissect prefs')")
    r.add_argument("-w", metavar="OUT", help="write the frames that pass the filter to OUT (pcapng)")
    r.add_argument("--keylog", metavar="FILE", help="SSLKEYLOGFILE key log for DTLS decryption (dtls.keylog_file)")
    r.add_argument("--oscore-contexts", metavar="FILE",
                   help="OSCORE security contexts: JSON list or aiocoap context directory (oscore.contexts_file)")
    r.set_defaults(func=cmd_read)

    f = sub.add_parser("fields", help="list every field (tshark -G fields)")
    f.add_argument("prefix", nargs="?", default="", help="only fields starting with this, e.g. coap")
    f.add_argument("--values", action="store_true", help="also list value strings")
    f.set_defaults(func=cmd_fields)

    pr = sub.add_parser("prefs", help="list every -o preference")
    pr.set_defaults(func=cmd_prefs)

    ds = sub.add_parser("dissectors", help="list dissectors, tables and heuristics (for -d)")
    ds.set_defaults(func=cmd_dissectors)

    if not full:
        return p  # `read` & co. need none of the analysis commands (and their pandas/Textual imports)
    from jpdissect import sessions_cli
    from jpdissect.lab import cli as lab_cli

    sessions_cli.add_parser(sub).set_defaults(func=sessions_cli.run)

    lab_cli.add_parser(sub).set_defaults(func=lab_cli.run)

    from jpdissect.stats import cli as stats_cli
    from jpdissect.tui import cli as tui_cli

    stats_cli.add_parser(sub)  # registers `stats` and `report`

    tui_cli.add_parser(sub)  # registers `tui` and `live`, each with its own func
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version"):
        args_list.insert(0, "read")
    parser = build_parser(full=not args_list or args_list[0] not in LIGHT_COMMANDS)
    args = parser.parse_args(args_list)
    args.argv = args_list[1:]
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # `jpdissect fields | head`: the reader went away, which is not an error for a listing.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
