"""Differential tests: CoAP fields from jpdissect equal tshark 4.0's on captures of real CoAP stacks.

Fields where Wireshark 4.0 is known to be wrong are left out of the comparison and tested against
the RFCs instead (test_coap.py): ``coap.opt.name`` (Wireshark spells some options "Max-age"/"Etag"
and lacks Request-Tag, Echo, Hop-Limit names), ``coap.opt.accept`` for a zero-length value (Wireshark
prints "(null)"), ``coap.opt.unknown`` for options Wireshark 4.0 does not know (292 Request-Tag,
40 Stateless-Proxy), ``coap.opt.block_size`` on Size2 (Wireshark decodes Size2 as a block option)
and ``coap.oscore_kid`` when the kid is present but empty (Wireshark prints "<MISSING>").
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from coap_support import fixture, packets
from jpdissect.api import field_strings

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

#: The issue's required set first, then the rest Wireshark shares with us.
FIELDS = [
    "coap.type", "coap.code", "coap.mid", "coap.token", "coap.opt.uri_path", "coap.opt.ctype",
    "coap.payload_length",
    "coap.token_len", "coap.version", "coap.opt.uri_query", "coap.opt.uri_host", "coap.opt.uri_port",
    "coap.opt.proxy_uri", "coap.opt.proxy_scheme", "coap.opt.observe", "coap.opt.max_age", "coap.opt.etag",
    "coap.opt.size1", "coap.opt.block_number", "coap.opt.block_mflag", "coap.opt.hop_limit",
    "coap.opt.location_path", "coap.opt.uri_path_recon", "coap.response_to", "coap.response_time",
    "coap.request_first_in", "coap.response_first_in", "coap.block_length",
    "coap.opt.object_security_piv", "coap.opt.object_security_kid_context",
    "coap.opt.object_security_kid_present", "coap.opt.object_security_kid_context_present",
    "coap.opt.object_security_piv_len", "coap.oscore_piv", "coap.oscore_kid_context",
]
#: Compared only on their first occurrence (see the module docstring).
FIRST_ONLY = ["coap.opt.block_size"]


def _tshark(path: str, fields: list[str], occurrence: str, decode_as: list[str]) -> list[list[str]]:
    args = ["tshark", "-n", "-r", path, "-T", "fields", "-E", f"occurrence={occurrence}"]
    for d in decode_as:
        args += ["-d", d]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines()]


def _ours(path: str, fields: list[str], occurrence: str, decode_as: list[str], tree: bool) -> list[list[str]]:
    return [[field_strings(p, f, occurrence=occurrence) for f in fields]
            for p in packets(path, tree=tree, fields=fields + FIRST_ONLY, decode_as=decode_as)]


def _compare(path: str, decode_as: list[str], tree: bool) -> int:
    want = _tshark(path, FIELDS, "a", decode_as)
    got = _ours(path, FIELDS, "a", decode_as, tree)
    assert len(got) == len(want)
    diffs = []
    for i, (w, g) in enumerate(zip(want, got, strict=True), 1):
        for name, a, b in zip(FIELDS, w, g, strict=True):
            if a != b and a != "<MISSING>":
                diffs.append(f"frame {i} {name}: tshark {a!r} jpdissect {b!r}")
    want1 = _tshark(path, FIRST_ONLY, "f", decode_as)
    got1 = _ours(path, FIRST_ONLY, "1", decode_as, tree)
    for i, (w, g) in enumerate(zip(want1, got1, strict=True), 1):
        for name, a, b in zip(FIRST_ONLY, w, g, strict=True):
            if a != b:
                diffs.append(f"frame {i} {name}: tshark {a!r} jpdissect {b!r}")
    assert not diffs, "\n".join(diffs)
    return sum(1 for row in want if row[2])  # messages with a MID: CoAP frames compared


@pytest.mark.parametrize("tree", [False, True])
def test_libcoap_session_matches_tshark(tree: bool) -> None:
    """GET/PUT/POST/DELETE, discovery, Block1/Block2, Observe, NON, 4.04, proxy options, IPv6."""
    assert _compare(fixture("libcoap.pcap"), [], tree) >= 70


def test_libcoap_other_port_with_decode_as_matches_tshark() -> None:
    assert _compare(fixture("libcoap_5685.pcap"), ["udp.port==5685,coap"], False) == 4


@pytest.mark.parametrize("tree", [False, True])
def test_aiocoap_oscore_matches_tshark(tree: bool) -> None:
    assert _compare(fixture("oscore_aiocoap.pcap"), [], tree) >= 18


def test_other_port_found_by_heuristic_without_decode_as() -> None:
    """tshark needs -d for port 5685; our heuristic finds it and decodes it the same way."""
    want = _tshark(fixture("libcoap_5685.pcap"), FIELDS, "a", ["udp.port==5685,coap"])
    got = _ours(fixture("libcoap_5685.pcap"), FIELDS, "a", [], False)
    assert got == want
