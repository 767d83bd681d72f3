"""``jpdissect lab``: argument parsing and printing only; :mod:`jpdissect.lab.runner` does the work.

The lead wires it in with ``lab.cli.add_parser(subparsers)`` and dispatches to :func:`run`; it also
runs stand-alone as ``python -m jpdissect.lab.cli``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from jpdissect.lab import SCHEMES

#: Bounds on what one invocation may ask for.
MAX_PLEDGES = 64
MAX_DURATION = 600.0
MIN_MTU = 256


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "lab", help="record real onboarding traffic through a Join Proxy (needs root for namespaces)",
        description="Run real pledges (openssl s_client, python-mbedtls, aiocoap+OSCORE), this project's "
                    "Join Proxy and Registrar-side relay, and real DTLS servers (openssl s_server) in "
                    "network namespaces; capture both Join Proxy interfaces into one pcapng. Without root, "
                    "falls back to loopback with distinct ports and says so.")
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", required=True, choices=(*SCHEMES, "all"),
                   help="relay scheme; 'all' writes one capture per scheme (OUT-<scheme>.pcapng)")
    p.add_argument("--pledges", type=int, default=3, help="number of pledges (default 3)")
    p.add_argument("--concurrency", type=int, default=0,
                   help="pledges onboarding at the same time (default: all)")
    p.add_argument("--loss", type=float, default=0.0, metavar="P",
                   help="netem loss in percent on the pledge hop, both directions")
    p.add_argument("--delay", type=float, default=0.0, metavar="MS", help="netem delay on the pledge hop")
    p.add_argument("--mtu", type=int, default=0, metavar="M",
                   help="link MTU the DTLS stacks assume (small values fragment the handshake)")
    p.add_argument("--duration", type=float, default=60.0, metavar="T",
                   help="seconds the pledges get in total before they are stopped (default 60)")
    p.add_argument("--stack", choices=("mixed", "openssl", "mbedtls"), default="mixed",
                   help="pledge DTLS stack (default: alternate openssl and python-mbedtls)")
    p.add_argument("--auth", choices=("mixed", "psk", "cert"), default="mixed",
                   help="pledge credentials (default: alternate PSK and certificates)")
    p.add_argument("--registrar-stack", choices=("openssl", "mbedtls"), default="openssl",
                   help="DTLS servers behind the Registrar relay (default openssl s_server)")
    p.add_argument("--loopback", action="store_true", help="use the loopback fallback even as root")
    p.add_argument("--cleanup", action="store_true",
                   help="only remove network namespaces left by killed lab runs, then exit")
    p.add_argument("-w", dest="out", metavar="OUT.pcapng", help="capture file to write")


def _check(args: argparse.Namespace) -> str | None:
    if not args.out:
        return "-w OUT.pcapng is required"
    if not 1 <= args.pledges <= MAX_PLEDGES:
        return f"--pledges must be 1..{MAX_PLEDGES}"
    if args.concurrency < 0:
        return "--concurrency must be positive"
    if not 0 <= args.loss < 100:
        return "--loss is a percentage below 100"
    if args.mtu and args.mtu < MIN_MTU:
        return f"--mtu below {MIN_MTU} is refused by the DTLS stacks"
    if not 0 < args.duration <= MAX_DURATION:
        return f"--duration must be in (0, {MAX_DURATION:g}]"
    return None


def run(args: argparse.Namespace) -> int:
    """0 when every pledge onboarded, 1 when some did not, 2 when the lab could not run."""
    from jpdissect.lab import runner, topology

    if args.cleanup:
        gone = topology.remove_stale()
        print(f"removed {len(gone)} stale lab namespace(s)" + (f": {' '.join(gone)}" if gone else ""))
        return 0
    err = _check(args)
    if err:
        sys.stderr.write(f"jpdissect lab: {err}\n")
        return 2
    out = Path(args.out)
    schemes = SCHEMES if args.scheme == "all" else (args.scheme,)
    status = 0
    for scheme in schemes:
        target = out if len(schemes) == 1 else out.with_name(f"{out.stem}-{scheme}{out.suffix or '.pcapng'}")
        opts = runner.RunOptions(
            scheme=scheme, out=target, pledges=args.pledges, concurrency=args.concurrency, loss=args.loss,
            delay_ms=args.delay, mtu=args.mtu, duration=args.duration, stack=args.stack, auth=args.auth,
            registrar_stack=args.registrar_stack, loopback=args.loopback,
            command=runner.command_line(getattr(args, "argv", None) or sys.argv[2:]))
        try:
            res = asyncio.run(runner.run(opts))
        except runner.LabError as exc:
            sys.stderr.write(f"jpdissect lab: {exc}\n")
            return 2
        except KeyboardInterrupt:
            sys.stderr.write("jpdissect lab: interrupted; namespaces removed\n")
            return 2
        print(runner.describe(res))
        sys.stdout.flush()
        if not res.ok:
            status = 1
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jpdissect lab")
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
