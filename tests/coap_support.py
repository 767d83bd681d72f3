"""Helpers for the CoAP tests: dissect a capture's CoAP datagrams with or without the IP/UDP stack.

When the Ethernet/IP/UDP dissectors are registered the real pipeline (:func:`jpdissect.api.packets`)
is used. Until then (they are written in parallel) the UDP payload is located here -- Ethernet,
IPv4 without options or IPv6 without extension headers, as tcpdump on ``lo`` writes them -- and the
CoAP dissector is called directly with the addresses and ports a UDP dissector would have set.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator

from jpdissect.capture import open_capture
from jpdissect.dissectors import load_all
from jpdissect.dissectors.registry import REGISTRY
from jpdissect.engine import Engine
from jpdissect.model import Packet, prime, unprime_all

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "coap")


def fixture(name: str) -> str:
    return os.path.join(DATA, name)


def have_stack() -> bool:
    load_all()
    return all(n in REGISTRY.named for n in ("eth", "udp")) and any(
        n in REGISTRY.named for n in ("ip", "ipv4"))


def _udp(data: bytes) -> tuple[bytes, bytes, int, int, int, int] | None:
    """(src, dst, sport, dport, payload offset, payload end) of an Ethernet/IP/UDP frame."""
    if len(data) < 14:
        return None
    et = struct.unpack_from(">H", data, 12)[0]
    p = 14
    if et == 0x0800:
        ihl = (data[p] & 0x0F) * 4
        if data[p + 9] != 17:
            return None
        src, dst = data[p + 12:p + 16], data[p + 16:p + 20]
        total = struct.unpack_from(">H", data, p + 2)[0]
        end = p + total
        p += ihl
    elif et == 0x86DD:
        if data[p + 6] != 17:
            return None
        src, dst = data[p + 8:p + 24], data[p + 24:p + 40]
        end = p + 40 + struct.unpack_from(">H", data, p + 4)[0]
        p += 40
    else:
        return None
    sport, dport, ulen = struct.unpack_from(">HHH", data, p)
    return src, dst, sport, dport, p + 8, min(end, p + ulen, len(data))


def packets(path: str, *, tree: bool = True, fields: Iterable[str] = (),
            decode_as: Iterable[str] = (), force_direct: bool = False) -> Iterator[Packet]:
    """Dissected packets of a capture (every frame, in order)."""
    if have_stack() and not force_direct:
        from jpdissect import api

        yield from api.packets(path, tree=tree, fields=list(fields), decode_as=list(decode_as))
        return
    unprime_all()
    prime(fields)
    eng = Engine(tree=tree, decode_as=list(decode_as))
    forced = {k for spec in decode_as for k in _ports(spec)}
    with open_capture(path) as rd:
        for n, fr in enumerate(rd, 1):
            pkt = Packet(n, fr.ts_ns, fr.data, fr.linktype, fr.wirelen, tree=tree)
            pkt.cap = eng
            eng.count = n
            u = _udp(fr.data)
            if u is None:
                yield pkt
                continue
            src, dst, sport, dport, off, end = u
            pkt.net_src, pkt.net_dst, pkt.srcport, pkt.dstport = src, dst, sport, dport
            if forced & {sport, dport}:
                eng.call("coap", pkt, fr.data, off, end, 0)
            else:
                eng.call_ports("udp.port", "udp", pkt, fr.data, off, end, 0)
            yield pkt


def _ports(spec: str) -> list[int]:
    from jpdissect.engine import parse_decode_as

    _t, keys, _p = parse_decode_as(spec)
    return keys


def dissect_bytes(data: bytes, *, tree: bool = True, eng: Engine | None = None, number: int = 1,
                  ts_ns: int = 0) -> Packet:
    """Dissect one CoAP message given as bytes (no lower layers)."""
    if eng is None:
        eng = Engine(tree=tree)
    pkt = Packet(number, ts_ns, data, 0, len(data), tree=tree)
    pkt.cap = eng
    pkt.net_src, pkt.net_dst, pkt.srcport, pkt.dstport = b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x01", 40000, 5683
    eng.call("coap", pkt, data, 0, len(data), 0)
    return pkt
