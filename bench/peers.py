#!/usr/bin/env python3
"""The Python-side benchmark workloads, one per tool, each meant to run as its own process.

Why separate processes: ``run.py`` measures wall time and peak RSS per tool with ``os.wait4``, so
each workload must be a child process whose memory is its own (importing scapy and jpdissect
into one interpreter would blur both numbers).

Every workload prints the requested fields of every frame as tab-separated rows, the way
``tshark -T fields -e ...`` does (occurrences joined by ","), to ``--out`` (``/dev/null`` by
default), and finally ``frames=N`` on stderr so the harness knows how much was processed.

    python bench/peers.py jpdissect-api CAPTURE -e frame.number -e udp.srcport
    python bench/peers.py scapy CAPTURE -e ... [--limit N]
    python bench/peers.py pyshark CAPTURE -e ... [--limit N]
"""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

# DTLS content types a record header may carry (RFC 6347 §4.1, RFC 9146 tls12_cid, RFC 9147 ACK).
_DTLS_TYPES = frozenset(range(20, 27))


def dtls_records(payload: bytes) -> list[tuple[int, int]]:
    """(content_type, length) of each DTLS 1.x record in a datagram (RFC 6347 §4.1).

    scapy has no DTLS layer, so the scapy workload walks record headers by hand, with the same
    sanity test tshark's DTLS heuristic applies (known content type, major version 0xFE).
    """
    out: list[tuple[int, int]] = []
    off, n = 0, len(payload)
    while off + 13 <= n:
        ct = payload[off]
        if ct not in _DTLS_TYPES or payload[off + 1] != 0xFE:
            break
        ln = struct.unpack_from("!H", payload, off + 11)[0]
        out.append((ct, ln))
        off += 13 + ln
    return out


# ---------------------------------------------------------------------------------------------
# jpdissect through its Python API (the path `jpdissect read` takes)


def run_jpdissect_api(path: str, fields: list[str], out: TextIO, limit: int, decode_as: list[str]) -> int:
    """Stream rows like ``jpdissect read -T fields``; never holds the capture's rows in memory.

    ``api.field_rows`` would build the whole list first, which makes peak RSS grow with the file
    -- not what the CLI does -- so the rows are formatted and written one packet at a time.
    """
    from jpdissect.api import field_strings, packets

    n = 0
    w = out.write
    for pkt in packets(path, fields=fields, decode_as=decode_as):
        w("\t".join([field_strings(pkt, f) for f in fields]))
        w("\n")
        n += 1
        if n == limit:
            break
    return n


# ---------------------------------------------------------------------------------------------
# scapy


def run_scapy(path: str, fields: list[str], out: TextIO, limit: int, decode_as: list[str]) -> int:
    """Full scapy dissection per packet (PcapReader); CoAP on 5683 plus ``-d udp.port==P,coap``."""
    from scapy.contrib.coap import CoAP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether  # noqa: F401 - registers DLT 1 -> Ether
    from scapy.packet import Raw, bind_layers
    from scapy.utils import PcapReader

    # scapy.contrib.coap binds 5683 itself; decode-as entries (e.g. Thread TMF 61631) add ports.
    for port in coap_ports(decode_as):
        bind_layers(UDP, CoAP, sport=port)
        bind_layers(UDP, CoAP, dport=port)

    want_coap = any(f.startswith("coap.") for f in fields)
    want_dtls = any(f.startswith("dtls.") for f in fields)

    def ctx(pkt: Any, number: int) -> dict[str, str]:
        d: dict[str, str] = {"frame.number": str(number)}
        d["frame.len"] = str(pkt.wirelen if pkt.wirelen is not None else len(pkt.original))
        ip = pkt.getlayer(IP)
        if ip is not None:
            d["ip.src"] = ip.src
            d["ip.dst"] = ip.dst
        ip6 = pkt.getlayer(IPv6)
        if ip6 is not None:
            d["ipv6.src"] = ip6.src
            d["ipv6.dst"] = ip6.dst
        udp = pkt.getlayer(UDP)
        if udp is not None:
            d["udp.srcport"] = str(udp.sport)
            d["udp.dstport"] = str(udp.dport)
            d["udp.length"] = str(udp.len)
            if want_coap:
                co = udp.getlayer(CoAP)
                if co is not None:
                    d["coap.type"] = str(co.type)
                    d["coap.code"] = str(co.code)
                    d["coap.mid"] = str(co.msg_id)
                    d["coap.token"] = bytes(co.token).hex()
            if want_dtls:
                raw = udp.getlayer(Raw)
                if raw is not None and not isinstance(udp.payload, CoAP):
                    recs = dtls_records(raw.load)
                    if recs:
                        d["dtls.record.content_type"] = ",".join(str(t) for t, _ in recs)
                        d["dtls.record.length"] = ",".join(str(n) for _, n in recs)
        return d

    n = 0
    w = out.write
    with PcapReader(path) as rd:
        for pkt in rd:
            n += 1
            d = ctx(pkt, n)
            w("\t".join([d.get(f, "") for f in fields]))
            w("\n")
            if n == limit:
                break
    return n


# ---------------------------------------------------------------------------------------------
# pyshark

_BYTES_FIELDS = frozenset({"coap.token", "data.data", "jpy.header", "dtls.handshake.cookie"})


def run_pyshark(path: str, fields: list[str], out: TextIO, limit: int, decode_as: list[str]) -> int:
    """pyshark FileCapture (tshark -T pdml underneath), reading each field from its layers."""
    import pyshark

    split = [(f, f.split(".", 1)[0]) for f in fields]
    da = {spec.rsplit(",", 1)[0]: spec.rsplit(",", 1)[1] for spec in decode_as}
    cap = pyshark.FileCapture(path, only_summaries=False, keep_packets=False, decode_as=da or None)
    n = 0
    w = out.write
    try:
        for pkt in cap:
            n += 1
            row = []
            for f, proto in split:
                layers: Iterable[Any] = ([pkt.frame_info] if proto == "frame"
                                         else [ly for ly in pkt.layers if ly.layer_name == proto])
                vals: list[str] = []
                for ly in layers:
                    c = ly.get_field(f)
                    if c is not None:
                        # pdml shows bytes as aa:bb; tshark -T fields prints aabb.
                        vals.extend(x.show.replace(":", "") if f in _BYTES_FIELDS else x.show
                                    for x in c.all_fields)
                row.append(",".join(vals))
            w("\t".join(row))
            w("\n")
            if n == limit:
                break
    finally:
        cap.close()
    return n


def coap_ports(decode_as: list[str]) -> list[int]:
    """UDP ports that ``-d udp.port==P,coap`` specs (tshark syntax) send to CoAP."""
    ports: list[int] = []
    for spec in decode_as:
        sel, _, proto = spec.rpartition(",")
        if proto.strip().lower() == "coap" and sel.replace(" ", "").startswith("udp.port=="):
            ports += [int(p) for p in sel.split("==", 1)[1].split(",") if p.strip().isdigit()]
    return ports


WORKLOADS: dict[str, Callable[[str, list[str], TextIO, int, list[str]], int]] = {
    "jpdissect-api": run_jpdissect_api,
    "scapy": run_scapy,
    "pyshark": run_pyshark,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tool", choices=sorted(WORKLOADS))
    ap.add_argument("capture")
    ap.add_argument("-e", dest="fields", action="append", required=True, help="field (repeatable)")
    ap.add_argument("--out", default="/dev/null", help="where rows go (default /dev/null)")
    ap.add_argument("--limit", type=int, default=0, help="stop after N frames (0 = all)")
    ap.add_argument("-d", dest="decode_as", action="append", default=[],
                    help="decode-as in tshark syntax, e.g. udp.port==61631,coap (repeatable)")
    a = ap.parse_args(argv)
    with open(a.out, "w", buffering=1 << 16) as out:
        n = WORKLOADS[a.tool](a.capture, a.fields, out, a.limit, a.decode_as)
    print(f"frames={n}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
