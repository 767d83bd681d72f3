"""Display filters: Wireshark 4.0 semantics (``man wireshark-filter``), error spans, robustness.

Each semantic case names the rule of wireshark-filter(4) it checks; the
behaviours marked "tshark 4.0.17" were observed with ``tshark -Y`` on a
crafted capture while writing this module.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpdissect.filters import MAX_DEPTH, Filter, FilterError, compile_filter
from jpdissect.model import FIELDS, FT, PROTOCOLS, F, Packet, Protocol

# The registry is filled by importing every dissector module. These tests are
# about the filter language, so a sibling module that does not import yet (the
# tree is shared while protocols are being written) must not hide their
# results; load_all() marks itself done before importing, so one failed attempt
# here leaves compile_filter() with whatever did load.
try:
    from jpdissect.dissectors import load_all

    load_all()
except Exception as exc:  # noqa: BLE001 - reported, not hidden
    import warnings

    warnings.warn(f"some dissector modules failed to import: {exc!r}", stacklevel=1)

# ---------------------------------------------------------------------------
# A test protocol with one field of every type, so the tests do not depend on
# which dissectors exist yet.

def _declare() -> Protocol:
    proto = Protocol("fltest", "Filter test protocol", "FLTEST")
    proto.declare(
        F("fltest.u8", "u8", FT.UINT8),
        F("fltest.u16", "u16", FT.UINT16, strings={22: "Handshake", 23: "Application Data"}),
        F("fltest.u32", "u32", FT.UINT32),
        F("fltest.u64", "u64", FT.UINT64),
        F("fltest.i32", "i32", FT.INT32),
        F("fltest.fnum", "frame number", FT.FRAMENUM),
        F("fltest.flag", "flag", FT.BOOLEAN, strings={True: "Set", False: "Not set"}),
        F("fltest.dbl", "double", FT.DOUBLE),
        F("fltest.rel", "reltime", FT.RELTIME),
        F("fltest.abs", "abstime", FT.ABSTIME),
        F("fltest.str", "string", FT.STRING),
        F("fltest.bytes", "bytes", FT.BYTES),
        F("fltest.eth", "ether", FT.ETHER),
        F("fltest.eui", "eui64", FT.EUI64),
        F("fltest.ip4", "ipv4", FT.IPv4),
        F("fltest.ip6", "ipv6", FT.IPv6),
        F("fltest.none", "label", FT.NONE),
        F("fltest.sport", "src port", FT.UINT16),
        F("fltest.dport", "dst port", FT.UINT16),
    )
    return proto


P = PROTOCOLS["fltest"] if "fltest" in PROTOCOLS else _declare()
_OWN_FIELDS = {a: fd for a, fd in FIELDS.items() if a == "fltest" or a.startswith("fltest.")}


def _unregister() -> None:
    for a in _OWN_FIELDS:
        FIELDS.pop(a, None)
    PROTOCOLS.pop("fltest", None)


# Other test modules (``jpdissect fields`` listings…) must never see the test
# protocol: it is only in the registry while this module's tests run.
_unregister()


@pytest.fixture(autouse=True, scope="module")
def _fltest_registered() -> Any:
    FIELDS.update(_OWN_FIELDS)
    PROTOCOLS["fltest"] = P
    yield
    _unregister()


class Fake:
    """The smallest packet the filter needs: ``values`` and ``has`` (and spans for protocols)."""

    def __init__(self, data: bytes = b"", layers: dict[str, list[tuple[int, int]]] | None = None,
                 **values: list[Any]) -> None:
        self.d = {k.replace("__", "."): v for k, v in values.items()}
        self.sources = [_Src(data)]
        self.layers = layers or {}
        for proto in self.layers:
            self.d.setdefault(proto, [None] * len(self.layers[proto]))

    def values(self, abbrev: str) -> list[Any]:
        return list(self.d.get(abbrev, []))

    def has(self, abbrev: str) -> bool:
        return bool(self.d.get(abbrev))

    def nodes(self, abbrev: str) -> list[Any]:
        return [_Span(o, n) for o, n in self.layers.get(abbrev, [])]


class _Src:
    def __init__(self, data: bytes) -> None:
        self.data = data


class _Span:
    def __init__(self, offset: int, length: int) -> None:
        self.offset, self.length, self.src = offset, length, 0


IP_A = bytes([10, 0, 0, 1])
IP_B = bytes([10, 0, 0, 2])
IP_C = bytes([192, 168, 1, 1])
MAC = bytes.fromhex("001122334455")
V6 = bytes.fromhex("fe800000000000000000000000000001")

PKT = Fake(
    data=bytes.fromhex("ffff0011223316fefd0000") + b"Hello CoAP",
    layers={"fltest": [(5, 6)]},
    fltest__u8=[0x16],
    fltest__u16=[5683, 5684],
    fltest__u32=[52],
    fltest__u64=[2**63],
    fltest__i32=[-5],
    fltest__fnum=[7],
    fltest__flag=[True],
    fltest__dbl=[2.5],
    fltest__rel=[1_500_000_000],
    fltest__abs=[1_000_000_000 * 1_600_000_000 + 250_000_000],  # 2020-09-13T12:26:40.25Z
    fltest__str=["Hello CoAP"],
    fltest__bytes=[bytes.fromhex("16fefd0000")],
    fltest__eth=[MAC],
    fltest__eui=[bytes.fromhex("0011223344556677")],
    fltest__ip4=[IP_A, IP_B],
    fltest__ip6=[V6],
    fltest__none=[None],
    fltest__sport=[5683],
    fltest__dport=[5684],
)
EMPTY = Fake()


def match(text: str, pkt: Any = PKT) -> bool:
    return compile_filter(text)(pkt)


# ---------------------------------------------------------------------------
# Semantics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "Check whether a field or protocol exists"
        ("fltest", True),
        ("fltest.u8", True),
        ("fltest.none", True),
        ("fltest.bytes && fltest.str", True),
        # any_eq / all_ne / all_eq / any_ne on two occurrences (5683, 5684)
        ("fltest.u16 == 5684", True),
        ("fltest.u16 eq 5683", True),
        ("fltest.u16 any_eq 1", False),
        ("fltest.u16 != 5684", False),  # 4.0: != is all_ne == !(==)
        ("fltest.u16 ne 1", True),
        ("fltest.u16 all_ne 5683", False),
        ("fltest.u16 === 5684", False),
        ("fltest.u16 all_eq 5684", False),
        ("fltest.u16 !== 5684", True),
        ("fltest.u16 any_ne 5684", True),
        # "any"/"all" modifiers
        ("all fltest.u16 >= 5684", False),
        ("all fltest.u16 >= 5683", True),
        ("any fltest.u16 != 5684", True),
        ("all fltest.u16 != 1", True),
        # ordering, word forms
        ("fltest.u32 > 51", True), ("fltest.u32 gt 52", False), ("fltest.u32 >= 52", True),
        ("fltest.u32 ge 53", False), ("fltest.u32 < 53", True), ("fltest.u32 lt 52", False),
        ("fltest.u32 <= 52", True), ("fltest.u32 le 51", False),
        ("fltest.u16 > 5683", True), ("fltest.u16 < 5684", True),
        ("fltest.i32 < 0", True), ("fltest.i32 == -5", True),
        ("fltest.u64 == 9223372036854775808", True),
        # integer literal forms: decimal, octal, hex, binary, character constants
        ("fltest.u32 == 064", True), ("fltest.u32 == 0x34", True), ("fltest.u32 == 0b110100", True),
        ("fltest.u32 == '4'", True), ("fltest.u8 == '\\x16'", True), ("fltest.u8 == '\\026'", True),
        # value strings (tshark 4.0.17: ip.proto == UDP / "udp")
        ("fltest.u16 == Handshake", False), ("fltest.u8 == 0x16", True),
        # booleans
        ("fltest.flag == True", True), ("fltest.flag == TRUE", True), ("fltest.flag == 1", True),
        ("fltest.flag == 2", True), ("fltest.flag == 0", False), ("fltest.flag == False", False),
        ("fltest.flag == Set", True), ("fltest.flag == \"not set\"", False),
        # doubles
        ("fltest.dbl == 2.5", True), ("fltest.dbl > 2", True), ("fltest.dbl < 2.5e0", False),
        # relative time in seconds, stored as ns
        ("fltest.rel == 1.5", True), ("fltest.rel > 1", True), ("fltest.rel < 1.5000001", True),
        ("fltest.rel in {1 .. 2}", True), ("fltest.rel in {1.6 .. 2}", False),
        # absolute time: ISO 8601 and the tshark output format
        ('fltest.abs == "2020-09-13T12:26:40.25Z"', True),
        ('fltest.abs > "2020-09-13 12:26:40Z"', True),
        ('fltest.abs == "Sep 13, 2020 12:26:40.250000000 UTC"', True),
        ('fltest.abs < "2020-09-13T14:26:40+02:00"', False),
        ('fltest.abs == "2020-09-13T14:26:40.25+02:00"', True),
        ("fltest.abs > 1600000000", True),
        # strings: quoted, escapes, raw, unquoted (deprecated), ordering
        ('fltest.str == "Hello CoAP"', True), ('fltest.str == "Hello\\x20CoAP"', True),
        ('fltest.str == "Hello\\040CoAP"', True), ('fltest.str == "hello coap"', False),
        ('fltest.str contains "CoAP"', True), ('fltest.str contains "coap"', False),
        ('fltest.str > "Hello"', True), ("fltest.str contains CoAP", True),
        # matches: case-insensitive by default (wireshark-filter(4)), (?-i) opts out
        ('fltest.str matches "hello.coap"', True), ('fltest.str ~ "^HELLO"', True),
        ('fltest.str matches "(?-i)hello"', False), ('fltest.str matches "(?-i)Hello"', True),
        ('fltest.str matches r"\\w+ \\w+$"', True), ('fltest.str matches "\\\\d"', False),
        # bytes: separators, plain hex, one-byte hex integers, strings as bytes
        ("fltest.bytes == 16:fe:fd:00:00", True), ("fltest.bytes == 16-fe-fd-00-00", True),
        ("fltest.bytes == 16.fe.fd.00.00", True), ("fltest.bytes == 16fefd0000", True),
        ("fltest.bytes contains fe:fd", True), ("fltest.bytes contains 0xfd", True),
        ("fltest.bytes contains fd", True), ("fltest.bytes contains \"\\xfe\\xfd\"", True),
        ("fltest.bytes > 16:fe", True), ("fltest.bytes < 17", True),
        ('fltest.bytes matches "^\\x16\\xfe"', True),
        # slices (wireshark-filter(4) "The slice operator")
        ("fltest.bytes[0] == 16", True), ("fltest.bytes[0] == 0x16", True),
        ("fltest.bytes[1:2] == fe:fd", True), ("fltest.bytes[1-2] == fe:fd", True),
        ("fltest.bytes[:2] == 16:fe", True), ("fltest.bytes[3:] == 00:00", True),
        ("fltest.bytes[-1] == 00", True), ("fltest.bytes[-2:2] == 00:00", True),
        ("fltest.bytes[0,2-3] == 16:fd:00", True), ("fltest.bytes[4:2] == 00", False),
        ("fltest.bytes[10]", False), ("fltest.bytes[4]", True),
        ("fltest.str[0:5] == \"Hello\"", True), ("fltest.str[0] == 48", True),
        ("fltest.eth[0:3] == 00:11:22", True), ("fltest.ip4[3] == 2", True),
        ("fltest.bytes[0:2] & ff:00 == 16:00", True),
        # MAC / EUI-64
        ("fltest.eth == 00:11:22:33:44:55", True), ("fltest.eth == 00-11-22-33-44-55", True),
        ("fltest.eth == 0011.2233.4455", True), ("fltest.eth == 001122334455", True),
        ("fltest.eth contains 33:44", True), ("fltest.eth != ff:ff:ff:ff:ff:ff", True),
        ("fltest.eui == 00:11:22:33:44:55:66:77", True),
        # IPv4 / IPv6 with CIDR
        ("fltest.ip4 == 10.0.0.2", True), ("fltest.ip4 == 10.0.0.3", False),
        ("fltest.ip4 == 10.0.0.0/8", True), ("fltest.ip4 != 10.0.0.0/8", False),
        ("fltest.ip4 != 192.168.0.0/16", True), ("fltest.ip4 == 0.0.0.0/0", True),
        ("fltest.ip4 === 10.0.0.0/30", True), ("fltest.ip4 === 10.0.0.1/32", False),
        ("fltest.ip4 > 10.0.0.1", True), ("fltest.ip4 in {10.0.0.5 .. 10.0.0.9}", False),
        ("fltest.ip4 in {10.0.0.0..10.0.0.1}", True), ("fltest.ip4 in {192.168.0.0/16, 10.0.0.2}", True),
        ("fltest.ip6 == fe80::1", True), ("fltest.ip6 == fe80::/10", True), ("fltest.ip6 == ::1", False),
        ("fltest.ip6 != 2001:db8::/32", True),
        # membership, ranges, not in (4.2 meaning: not (a in b), so absent passes)
        ("fltest.u16 in {80, 443, 5684}", True), ("fltest.u16 in {80 443 5684}", True),
        ("fltest.u16 in {1..5683}", True), ("fltest.u16 in {1 .. 100, 6000}", False),
        ("fltest.u16 not in {5684}", False), ("fltest.u16 not in {1}", True),
        ("fltest.u32 in {fltest.u8, 52}", True), ("fltest.u32 in {1..fltest.u16}", True),
        ('fltest.str in {"a", "Hello CoAP"}', True), ("fltest.u16 in {Handshake, 5683}", True),
        ("all fltest.u16 in {5683, 5684}", True), ("all fltest.u16 in {5683}", False),
        # logic and precedence: not > and > xor > or
        ("fltest.u8 == 1 or fltest.u8 == 0x16 and fltest.u32 == 52", True),
        ("fltest.u8 == 0x16 or fltest.u8 == 1 and fltest.u32 == 1", True),
        ("(fltest.u8 == 0x16 or fltest.u8 == 1) and fltest.u32 == 1", False),
        ("not fltest.u8 == 1 and fltest", True), ("!fltest.u8", False), ("! ! fltest.u8", True),
        ("fltest.u8 && !fltest.u32 || fltest.dbl", True), ("fltest.u8 xor fltest.u32", False),
        ("fltest.u8 ^^ fltest.nothing_here_no", None),  # unknown field -> error (checked below)
        ("fltest.u8 xor not fltest.u32", True),
        ("fltest.u8 xor fltest.u32 or fltest.u8", True),
        # arithmetic and bitwise (wireshark-filter(4) "Arithmetic operators", tshark 4.0.17 precedence)
        ("fltest.u32 + 1 == 53", True), ("fltest.u32 - 2 == 50", True), ("fltest.u32 * 2 == 104", True),
        ("fltest.u32 / 5 == 10", True), ("fltest.u32 % 5 == 2", True), ("fltest.i32 / 2 == -2", True),
        ("fltest.i32 % 3 == -2", True), ("fltest.u32 / 0 == 1", False),
        ("fltest.u32 & 4", True), ("fltest.u32 & 1", False), ("fltest.u32 & 0x34 == 0x34", True),
        ("fltest.u32 & 1 + 1 == 0", True),  # & binds looser than +: 52 & 2 == 0
        ("fltest.u32 bitwise_and 16", True),
        ("fltest.sport + 1 == fltest.dport", True), ("fltest.dport - fltest.sport == 1", True),
        ("fltest.sport == {fltest.dport - 1}", True), ("-fltest.u32 == -52", True),
        ("fltest.u32 == {50 + 2}", True), ("fltest.u32 == 2 * 26", True),
        ("fltest.rel + 0.5 == 2", True), ("fltest.rel - fltest.rel == 0", True),
        ('fltest.abs + 1 > "2020-09-13T12:26:41Z"', True),
        ("fltest.dbl * 2 == 5", True), ("fltest.dbl / 0 == 1", False),
        # field against field: any pair for ==, none for !=
        ("fltest.sport == fltest.dport", False), ("fltest.sport != fltest.dport", True),
        ("fltest.sport < fltest.dport", True), ("fltest.u16 == fltest.sport", True),
        ("fltest.u16 != fltest.sport", False),
        # functions (wireshark-filter(4) "Functions", tshark 4.0.17 results)
        ("len(fltest.bytes) == 5", True), ("len(fltest.str) == 10", True), ("len(fltest.u16) == 2", True),
        ("len(fltest.ip4) == 4", True), ("len(fltest.eth) == 6", True), ("len(fltest) == 6", True),
        ("len(fltest.bytes[1:]) == 4", True),
        ("count(fltest.u16) == 2", True), ("count(fltest.ip4) == 2", True), ("count(fltest) == 1", True),
        ("count(fltest.nope_absent_u8) == 0", None),
        ('upper(fltest.str) == "HELLO COAP"', True), ('lower(fltest.str) contains "coap"', True),
        ('string(fltest.u32) == "52"', True), ('string(fltest.ip4) == "10.0.0.2"', True),
        ('string(fltest.eth) == "00:11:22:33:44:55"', True), ('string(fltest.u16) matches "^568[34]$"', True),
        ("max(fltest.sport, fltest.dport) == 5684", True), ("min(fltest.u16) == 5683", True),
        ("max(fltest.u8, 100) == 100", True), ("abs(fltest.i32) == 5", True),
        # protocols compare as the bytes they span (fltest spans data[5:11])
        ("fltest == 33:16:fe:fd:00:00", True), ("fltest[0] == 33", True), ("fltest contains fe:fd", True),
        ('fltest matches "\\xfe\\xfd"', True),
        # field references: no selected frame -> no value -> false
        ("fltest.u32 == ${fltest.u32}", False),
    ],
)
def test_semantics(text: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(FilterError):
            compile_filter(text)
        return
    assert match(text) is expected, text


def test_absent_fields() -> None:
    """Every comparison implies existence (wireshark-filter(4), "ip.dst ne 224.1.2.3")."""
    for text in ("fltest.u8 == 1", "fltest.u8 != 1", "fltest.u8 === 1", "fltest.u8 !== 1",
                 "fltest.u8 > 0", "fltest.u8 in {1}", "fltest.str contains \"a\"",
                 'fltest.str matches "."', "len(fltest.bytes) == 0", "fltest.bytes[0] == 0",
                 "count(fltest.u8) == 0",  # tshark 4.0.17: count() of an absent field has no value
                 "fltest.sport == fltest.dport", "fltest.sport != fltest.dport", "fltest.u8 & 1"):
        assert match(text, EMPTY) is False, text
    for text in ("not fltest.u8 == 1", "fltest.u8 not in {1}", "!fltest", "not fltest.u8 != 1"):
        assert match(text, EMPTY) is True, text


def test_empty_filter_matches_everything() -> None:
    for text in ("", "   "):
        f = compile_filter(text)
        assert f(PKT) and f(EMPTY)
        assert f.fields == set()


def test_fields_lists_everything_referenced() -> None:
    f = compile_filter(
        'fltest.u8 == 1 or len(fltest.bytes) > 2 and count(fltest.u16) == 1 '
        'or fltest[0] == 1 or upper(fltest.str) == "A" or fltest.sport == ${fltest.dport}'
    )
    assert f.fields == {"fltest.u8", "fltest.bytes", "fltest.u16", "fltest", "fltest.str",
                        "fltest.sport", "fltest.dport"}
    assert f.references == {"fltest.dport"}


def test_field_reference_bound_to_selected_packet() -> None:
    f = compile_filter("fltest.u16 == ${fltest.dport}")
    assert f(PKT) is False
    f.set_reference(Fake(fltest__dport=[5683]))
    assert f(PKT) is True
    f.set_reference(Fake(fltest__dport=[1]))
    assert f(PKT) is False
    f.set_reference(None)
    assert f(PKT) is False


def test_value_string_names_are_case_insensitive() -> None:
    pkt = Fake(fltest__u16=[22])
    for text in ("fltest.u16 == Handshake", 'fltest.u16 == "handshake"', "fltest.u16 == HANDSHAKE",
                 'fltest.u16 == "Application Data"'):
        assert compile_filter(text)(pkt) is ("Application" not in text), text


def test_ip_values_given_as_strings_or_ipaddress_objects() -> None:
    import ipaddress

    for v in ("10.0.0.1", ipaddress.IPv4Address("10.0.0.1")):
        pkt = Fake(fltest__ip4=[v])
        assert match("fltest.ip4 == 10.0.0.0/24", pkt)
        assert match("fltest.ip4 == 10.0.0.1", pkt)


def test_naive_absolute_time_is_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert match('fltest.abs == "2020-09-13 12:26:40.25"')
    finally:
        monkeypatch.undo()
        time.tzset()


def test_wrongly_typed_values_do_not_raise() -> None:
    """A dissector bug (a str where an int belongs) makes the test false, never a crash."""
    pkt = Fake(fltest__u32=["52"])
    assert compile_filter("fltest.u32 > 5")(pkt) is False


def test_filter_object_api() -> None:
    f = compile_filter("fltest.u8")
    assert isinstance(f, Filter)
    assert f.text == "fltest.u8"
    assert f.match(PKT) is True
    assert "fltest.u8" in repr(f)


# ---------------------------------------------------------------------------
# With the real model.Packet (index, layers, sources)


def test_real_packet_fields_and_protocol_bytes() -> None:
    data = b"\x00\x01" + b"\x16\x34" + b"payload"
    pkt = Packet(1, 0, data, 147, len(data), tree=True)
    lay = pkt.add_layer(P, 2, len(data) - 2)
    FT_ = P.fields
    lay.add(FT_["fltest.u16"], 0x1634, 2, 2)
    lay.add(FT_["fltest.str"], "payload", 4, 7)
    assert match("fltest.u16 == 5684", pkt)
    assert match("fltest[0:2] == 16:34", pkt)
    assert match('fltest contains "load"', pkt)
    assert match('fltest.str == "payload" && fltest.u16 != 1', pkt)
    assert not match("fltest.u8", pkt)
    assert match("len(fltest) == 9", pkt)


def test_real_frame_fields_from_the_engine() -> None:
    compile_filter("frame")  # loads the registry
    for name in ("frame.len", "frame.time_relative", "frame.number", "data.data", "frame.protocols"):
        assert name in FIELDS
    pkt = Packet(3, 0, b"\x01\x02\x03", 147, 3, tree=True)
    from jpdissect.engine import FF, P_FRAME

    lay = pkt.add_layer(P_FRAME, 0, 3)
    lay.add(FF.len, 3, 0, 0)
    lay.add(FF.time_relative, 250_000_000, 0, 0)
    pkt.add_layer(P, 1, 2)
    assert match("frame.len == 3 && frame.time_relative < 0.5 && frame[1:2] == 02:03", pkt)
    assert match('frame.protocols == "fltest" && fltest == 02:03', pkt)  # synthetic field
    assert compile_filter("frame.time_delta_displayed > 0").fields == {"frame.time_delta_displayed"}


# ---------------------------------------------------------------------------
# Errors: message, position and length of the offending token


@pytest.mark.parametrize(
    ("text", "fragment", "pos", "length"),
    [
        ("foo.bar", '"foo.bar" is neither a field nor a protocol name.', 0, 7),
        ("fltest.u8 == 1 && foo.bar", "neither a field nor a protocol", 18, 7),
        ("foo == 1", "neither a field nor a protocol", 0, 3),
        ("1 == fltest.u8", 'Left side of "==" expression must be a field or function, not 1.', 0, 1),
        ('"a" == fltest.str', "Left side", 0, 3),
        ("fltest.u16 == 70000", '"70000" too big for this field, maximum 65535.', 14, 5),
        ("fltest.u8 == 256", "maximum 255", 13, 3),
        ("fltest.i32 == -2147483649", "too small for this field, minimum -2147483648", 14, 11),
        ("fltest.u32 == 0x10000000000000000", "too big", 14, 19),
        ('fltest.u16 == "abc"', "cannot be converted from a string", 14, 5),
        ("fltest.u16 == 1.5", '"1.5" is not a valid number.', 14, 3),
        ("fltest.u16 == 09", "not a valid number", 14, 2),
        ("fltest.u16 == 0x", "not a valid number", 14, 2),
        ("fltest.u16 == foo", '"foo" is not a valid number.', 14, 3),
        ("fltest.flag == yes", '"yes" cannot be found among the possible values for fltest.flag.', 15, 3),
        ("fltest.ip4 == 1.2.3.4/33", "Netmask bits in a CIDR IPv4 address should be <= 32, not 33", 14, 10),
        ("fltest.ip4 == 1.2.3", "not a valid IPv4 address", 14, 5),
        ("fltest.ip4 == localhost", "not a valid IPv4 address", 14, 9),
        ('fltest.ip4 == "1.2.3.4"', "cannot be converted from a string", 14, 9),
        ("fltest.ip4 > 10.0.0.0/8", "netmask", 13, 10),
        ("fltest.ip6 == fe80::/129", "should be <= 128", 14, 10),
        ("fltest.ip6 == fe80:::1", "not a valid IPv6 address", 14, 8),
        ("fltest.eth == 00:11:22", "contains too few bytes to be a valid Ethernet address.", 14, 8),
        ("fltest.eth == 00:11:22:33:44:55:66", "too many bytes", 14, 20),
        ("fltest.eth == 1.2.3.4", "too few bytes", 14, 7),
        ("fltest.bytes == 0x0102", '"0x0102" is not a valid byte string.', 16, 6),
        ("fltest.bytes == xyz", "not a valid byte string", 16, 3),
        ("fltest.u16 contains 5", "fltest.u16 (type=Unsigned integer (2 bytes)) cannot participate in contains", 0, 10),
        ("fltest.ip4 contains 1", "cannot participate in contains", 0, 10),
        ('fltest.u16 matches "a"', "cannot participate in matches", 0, 10),
        ('fltest.u16 ~ "a"', "cannot participate in ~", 0, 10),
        ("fltest.str matches abc", "Matches requires a double quoted string on the right side.", 19, 3),
        ('fltest.str matches "("', "Regex compilation error", 19, 3),
        ('fltest.str matches "\\d"', "\\d is not a valid character escape sequence", 20, 2),
        ("fltest.none == 1", "cannot participate", 0, 11),
        ("fltest.u16 == fltest", "fltest.u16 and fltest are not of compatible types.", 14, 6),
        ("fltest.ip4 == fltest.u16", "not of compatible types", 14, 10),
        ("fltest.bytes == fltest.str", "not of compatible types", 16, 10),
        ("fltest.u32 == fltest.rel", "not of compatible types", 14, 10),
        ('fltest.u16 in {"a"}', "cannot be converted from a string", 15, 3),
        ("fltest.u16 in {1.5..3}", '"1.5" is not a valid number.', 15, 3),
        ("fltest.u16[0] == 1", "cannot be sliced into a sequence of bytes", 0, 10),
        ("fltest.bytes[1-0] == 01", "isn't valid", 13, 3),
        ("fltest.bytes[x] == 01", "not a valid slice range", 13, 1),
        ("fltest.bytes[0:0] == 01", "must be positive", 13, 3),
        ("fltest.bytes[0", "closing bracket", 12, 2),
        ("fltest.u16#1 == 1", "layer operator", 10, 1),
        ("foo(fltest.u16)", "Function 'foo' does not exist", 0, 3),
        ("upper(fltest.u16) == \"A\"", "Only string type fields can be used as parameter for upper()", 6, 10),
        ('upper("a") == "A"', "Only fields", 6, 3),
        ("count(fltest.u16)", "You cannot test whether a function is present.", 0, 5),
        ("len(fltest.u16, fltest.u8) == 1", "takes exactly one argument", 0, 3),
        ("count(1) == 1", "count() needs a field", 6, 1),
        ('string(fltest.rel) == "1"', 'String conversion for field "fltest.rel" is not supported', 7, 10),
        ("fltest.rel * 2 == 3", "Time offset values cannot be used with", 11, 1),
        ("fltest.u32 + fltest.rel == 3", "are not type compatible", 13, 10),
        # syntax
        ("fltest.u16 == ", "Unexpected end of filter expression.", 14, 0),
        ("(fltest.u16", "Unexpected end of filter expression.", 11, 0),
        ("fltest.u16)", '")" was unexpected in this context.', 10, 1),
        ("fltest.u16 && && fltest", '"&&" was unexpected in this context.', 14, 2),
        ("fltest.u16 == 1 == 2", '"==" was unexpected', 16, 2),
        ("fltest.u16 = 1", '"=" was unexpected in this context.', 11, 1),
        ("fltest.u16 ==== 1", '"=" was unexpected', 14, 1),
        ("fltest.u16 == @", '"@" was unexpected in this context.', 14, 1),
        ("fltest.u16 in {}", '"}" was unexpected', 15, 1),
        ("fltest.u16 in {1..}", '"}" was unexpected', 18, 1),
        ("fltest.u16 in {1,}", '"}" was unexpected', 17, 1),
        ("fltest.u16 eq1", '"eq1" was unexpected', 11, 3),
        ("fltest.u16 AND fltest", '"AND" was unexpected', 11, 3),
        ('fltest.str == "abc', "The final quote was missing from a quoted string.", 14, 4),
        ("fltest.u8 == 'ab'", "'ab' is too long to be a valid character constant.", 13, 4),
        ("not", "Unexpected end", 3, 0),
        ("any fltest.u16", '"any" needs a comparison', 0, 3),
        ("1", '"1" is neither a field nor a protocol name.', 0, 1),
        ("fltest.u16 == and", '"and" was unexpected', 14, 3),
        ("${nope.nope} == 1", "neither a field nor a protocol", 0, 12),
        ("fltest.u16 == ${fltest.u8", "closing brace", 14, 11),
        ("1 + 2", "needs a field", 0, 5),
    ],
)
def test_errors(text: str, fragment: str, pos: int, length: int) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(text)
    e = info.value
    assert fragment in e.message, e.message
    assert (e.position, e.length) == (pos, length), (e.message, e.position, e.length)
    assert e.text == text
    assert str(e) == e.message
    assert isinstance(e, ValueError)


def test_caret_points_at_the_token() -> None:
    with pytest.raises(FilterError) as info:
        compile_filter("fltest.u16 == 70000")
    assert info.value.caret() == "fltest.u16 == 70000\n              ^~~~~"
    with pytest.raises(FilterError) as info:
        compile_filter("fltest.u16 ==")
    assert info.value.caret() == "fltest.u16 ==\n             ^"


def test_caret_keeps_tabs_and_uses_the_right_line() -> None:
    with pytest.raises(FilterError) as info:
        compile_filter("fltest.u8\tand\n  foo.bar")
    e = info.value
    assert e.caret() == "  foo.bar\n  ^~~~~~~"
    with pytest.raises(FilterError) as info:
        compile_filter("\tfoo.bar")
    assert info.value.caret() == "\tfoo.bar\n\t^~~~~~~"


def test_deep_nesting_is_a_filter_error() -> None:
    for text in ("(" * (MAX_DEPTH + 5) + "fltest" + ")" * (MAX_DEPTH + 5),
                 "!" * 5000 + "fltest", "fltest.u8 == " + "-" * 5000 + "1",
                 "fltest.u8 == " + "{" * 3000 + "1" + "}" * 3000):
        with pytest.raises(FilterError, match="nested too deeply"):
            compile_filter(text)
    assert match("(" * 20 + "fltest" + ")" * 20)


# ---------------------------------------------------------------------------
# Robustness: random input never raises anything but FilterError


def _check_compile(text: str) -> Filter | None:
    try:
        f = compile_filter(text)
    except FilterError as e:
        assert 0 <= e.position <= len(text)
        assert e.length >= 0 and e.position + e.length <= len(text) + 1
        assert e.message and e.text == text
        e.caret()
        return None
    return f


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_random_text_only_raises_filter_error(text: str) -> None:
    _check_compile(text)


_VOCAB = [
    "fltest", "fltest.u8", "fltest.u16", "fltest.u64", "fltest.i32", "fltest.flag", "fltest.dbl",
    "fltest.rel", "fltest.abs", "fltest.str", "fltest.bytes", "fltest.eth", "fltest.eui", "fltest.ip4",
    "fltest.ip6", "fltest.none", "fltest.fnum", "frame", "frame.len", "nosuch.field",
    "==", "!=", "===", "!==", "<", "<=", ">", ">=", "eq", "ne", "gt", "lt", "ge", "le", "any_eq",
    "contains", "matches", "~", "in", "not", "!", "and", "&&", "or", "||", "xor", "^^", "any", "all",
    "(", ")", "{", "}", ",", "..", "&", "+", "-", "*", "/", "%", "#", "[0]", "[1:2]", "[-1]", "[:2]", "[2:]",
    "[0,2-3]", "len(", "count(", "upper(", "lower(", "string(", "max(", "min(", "abs(", "${fltest.u8}",
    "0", "1", "-1", "0x16", "0xffffffffffffffffffff", "052", "0b11", "1.5", "1e3", "'a'", "'\\n'",
    '"abc"', '"\\x16\\xfe"', 'r"a\\d"', '"(?-i)ab"', '"("', "aa:bb", "16fefd", "0011.2233.4455",
    "00:11:22:33:44:55", "10.0.0.1", "10.0.0.0/8", "fe80::1", "::/0", "True", "False", "Set",
    "Handshake", '"2020-09-13T12:26:40Z"',
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_VOCAB), max_size=9), st.sampled_from([" ", ""]))
def test_token_soup_compiles_or_fails_cleanly_and_evaluates(words: list[str], sep: str) -> None:
    text = sep.join(words)
    f = _check_compile(text)
    if f is not None:
        for pkt in (PKT, EMPTY):
            assert f(pkt) in (True, False)
            assert type(f.match(pkt)) is bool


# ---------------------------------------------------------------------------
# Speed: not a timed test (see bench/), just a guard against a 10x regression.


def test_simple_equality_is_cheap() -> None:
    pkt = Packet(1, 0, b"", 147, 0, tree=True)
    lay = pkt.add_layer(P, 0, 0)
    lay.add(P.fields["fltest.u16"], 5684, 0, 2)
    f = compile_filter("fltest.u16 == 5684")
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        f(pkt)
    per = (time.perf_counter() - t0) / n
    assert per < 5e-6, f"{per * 1e9:.0f} ns per packet"


# ---------------------------------------------------------------------------
# Cross-check with tshark on frame-level fields (the only ones both tools share
# without our protocol dissectors): the same frames must match.


def _write_pcap(path: Path) -> None:
    def udp_frame(src: bytes, dst: bytes, sp: int, dp: int, payload: bytes) -> bytes:
        udp = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
        return b"\xff" * 6 + MAC + b"\x08\x00" + ip + udp

    frames = [
        udp_frame(IP_A, IP_B, 5683, 5684, b"Hello CoAP"),
        udp_frame(IP_B, IP_A, 5684, 5684, b"abc"),
        udp_frame(IP_C, IP_A, 1000, 61631, bytes.fromhex("16fefd0000")),
    ]
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, d in enumerate(frames):
            fh.write(struct.pack("<IIII", 1000 + i, 250_000 * i, len(d), len(d)) + d)


TSHARK_FILTERS = [
    "frame.len > 46", "frame.len == 52 or frame.len == 45 and frame.len == 47", "frame.len in {45, 52}",
    "frame.len in {40..50}", "frame.len & 1", "frame.len & 1 + 1 == 2", "frame.len * 2 + 1 == 105",
    'frame contains "Hello"', 'frame contains "hello"', 'frame matches "hello"',
    'frame matches "(?-i)hello"', "frame[0:2] == ff:ff", "frame[-1] == 00", "frame[-5:5] == 16:fe:fd:00:00",
    "frame[6:3] == 00:11:22", "frame[30-33] == 0a.00.00.01", "frame.time_relative > 1.2",
    "frame.time_relative in {0.5 .. 1.1}", "frame.time_delta == 1.25", "frame.number != 2",
    "count(frame.len) == 1", "len(frame) == 45", "!frame.len == 45", "frame.len != 45",
    'frame.time >= "1970-01-01T00:16:41Z"', "frame.len >= frame.cap_len",
    "string(frame.number) matches \"[13]$\"", "max(frame.len, frame.number) == 52",
]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_same_frames_as_tshark(tmp_path: Path) -> None:
    from jpdissect import api

    cap = tmp_path / "x.pcap"
    _write_pcap(cap)
    for text in TSHARK_FILTERS:
        out = subprocess.run(
            ["tshark", "-r", str(cap), "-Y", text, "-T", "fields", "-e", "frame.number"],
            capture_output=True, text=True, check=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
        ).stdout.split()
        ours = [str(p.number) for p in api.packets(cap, filter=text)]
        assert ours == out, text
