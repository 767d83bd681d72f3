"""The engine's contracts: nothing escapes a dissector, decode-as and -o are validated up front."""

from __future__ import annotations

import pytest

from jpdissect.capture import Frame
from jpdissect.dissectors.registry import REGISTRY
from jpdissect.dissectors.udp import P_UDP
from jpdissect.engine import Engine, OptionError, parse_decode_as, parse_pref
from jpdissect.model import FIELDS, FT, Group, Packet


def _frame(data: bytes, linktype: int = 147) -> Frame:
    # LINKTYPE_USER0 (147): no dissector is registered for it, so bytes go to data.
    return Frame(ts_ns=1_700_000_000_123_456_789, caplen=len(data), wirelen=len(data), data=data, linktype=linktype)


def test_unclaimed_bytes_become_data_with_length() -> None:
    eng = Engine(tree=True)
    pkt = eng.dissect(_frame(b"\x01\x02\x03"))
    assert pkt.protocols == "data"
    assert pkt.values("data.data") == [b"\x01\x02\x03"]
    assert pkt.values("data.len") == [3]
    assert pkt.values("frame.number") == [1]
    assert pkt.values("frame.len") == [3]


def test_frame_times_are_relative_to_first_and_previous() -> None:
    eng = Engine(tree=True)
    a = eng.dissect(_frame(b"a"))
    b = eng.dissect(Frame(ts_ns=a.ts_ns + 1_500_000_000, caplen=1, wirelen=1, data=b"b", linktype=147))
    assert b.values("frame.time_relative") == [1_500_000_000]
    assert b.values("frame.time_delta") == [1_500_000_000]
    assert FIELDS["frame.time_relative"].fmt_value(b.get("frame.time_relative")) == "1.500000000"
    assert FIELDS["frame.time_epoch"].fmt_value(a.get("frame.time_epoch")) == "1700000000.123456789"
    assert FIELDS["frame.time"].fmt_value(a.get("frame.time")) == "Nov 14, 2023 22:13:20.123456789 UTC"


def test_dissector_exception_becomes_expert_info_and_frame_survives() -> None:
    def boom(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
        raise IndexError("synthetic bug")

    REGISTRY.named["_test_boom"] = boom
    REGISTRY.add("wtap_encap", 148, "_test_boom")
    try:
        pkt = Engine().dissect(_frame(b"xyz", linktype=148))
    finally:
        del REGISTRY.named["_test_boom"]
        del REGISTRY.tables["wtap_encap"][148]
    assert pkt.number == 1
    assert any(e.group is Group.MALFORMED and "synthetic bug" in e.message for e in pkt.experts)
    assert pkt.has("_ws.malformed")


def test_decode_as_is_validated() -> None:
    assert parse_decode_as("udp.port==5690,data") == ("udp.port", [5690], "data")
    assert parse_decode_as("udp.port==10-12,data")[1] == [10, 11, 12]
    with pytest.raises(OptionError):
        parse_decode_as("udp.port=5690,data")
    with pytest.raises(OptionError):
        parse_decode_as("udp.port==5690,nosuchproto")


def test_unknown_preference_is_refused() -> None:
    with pytest.raises(OptionError):
        parse_pref("no.such.pref:1")
    with pytest.raises(OptionError):
        parse_pref("missing-colon")


def test_field_formatting_follows_tshark() -> None:
    from jpdissect.model import Base, FieldDef

    assert FieldDef("x.a", "a", FT.UINT16, base=Base.HEX).fmt_value(0x32) == "0x0032"
    assert FieldDef("x.b", "b", FT.UINT8, base=Base.HEX).fmt_value(2) == "0x02"
    assert FieldDef("x.c", "c", FT.BYTES).fmt_value(b"\x16\xfe") == "16fe"
    assert FieldDef("x.d", "d", FT.BOOLEAN).fmt_value(True) == "1"
    assert FieldDef("x.e", "e", FT.IPv6).fmt_value(bytes(15) + b"\x01") == "::1"
    assert FieldDef("x.f", "f", FT.ETHER).fmt_value(bytes(6)) == "00:00:00:00:00:00"


def test_shallow_only_when_nothing_above_transport_is_asked_for() -> None:
    from jpdissect.model import prime, unprime_all

    try:
        unprime_all()
        prime(["udp.srcport", "frame.number"])
        assert Engine(cols=False, lazy=True).shallow
        assert not Engine(cols=False).shallow  # analyses never get a shallow engine
        assert not Engine(cols=True, lazy=True).shallow  # the Info column wants the top layer
        prime(["frame.protocols"])
        assert not Engine(cols=False, lazy=True).shallow  # the layer chain needs every layer
        unprime_all()
        prime(["udp.srcport", "data.data"])
        assert not Engine(cols=False, lazy=True).shallow
        unprime_all()
        assert not Engine(cols=False, lazy=True).shallow  # nothing asked: nothing to be lazy about
    finally:
        unprime_all()


def test_table_lookups_follow_registrations_and_learned_entries_made_mid_capture() -> None:
    # The engine memoises table lookups; a dissector registered after the capture started (a
    # module imported on first use) and entries learned or handed over (the TUI assigns
    # engine.learned) must still be found.
    def mine(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
        pkt.add_layer(P_UDP, off, end - off, src)  # any protocol but data will do
        return True

    eng = Engine(tree=True)
    assert eng.dissect(_frame(b"one", linktype=149)).protocols == "data"
    REGISTRY.named["_test_mine"] = mine
    REGISTRY.add("wtap_encap", 149, "_test_mine")
    try:
        assert eng.dissect(_frame(b"two", linktype=149)).protocols == "udp"
        eng.learned = {"wtap_encap": {150: "_test_mine"}}
        assert eng.dissect(_frame(b"three", linktype=150)).protocols == "udp"
        eng.learned = {}
        eng.learn("wtap_encap", 151, "_test_mine")
        assert eng.dissect(_frame(b"four", linktype=150)).protocols == "data"
        assert eng.dissect(_frame(b"five", linktype=151)).protocols == "udp"
    finally:
        del REGISTRY.named["_test_mine"]
        del REGISTRY.tables["wtap_encap"][149]

