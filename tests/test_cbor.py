"""CBOR diagnostic notation and bounded decoding (jpdissect.cbor) against RFC 8949."""

from __future__ import annotations

import math

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jpdissect import cbor

# RFC 8949 Appendix A: (hex encoding, diagnostic notation) pairs, copied from the table.
APPENDIX_A = [
    ("00", "0"), ("01", "1"), ("0a", "10"), ("17", "23"), ("1818", "24"), ("1819", "25"),
    ("1864", "100"), ("1903e8", "1000"), ("1a000f4240", "1000000"),
    ("1b000000e8d4a51000", "1000000000000"), ("1bffffffffffffffff", "18446744073709551615"),
    ("c249010000000000000000", "2(h'010000000000000000')"),
    ("3bffffffffffffffff", "-18446744073709551616"), ("20", "-1"), ("29", "-10"), ("3863", "-100"),
    ("3903e7", "-1000"), ("f90000", "0.0"), ("f98000", "-0.0"), ("f93c00", "1.0"),
    ("fb3ff199999999999a", "1.1"), ("f93e00", "1.5"), ("f97bff", "65504.0"), ("fa47c35000", "100000.0"),
    ("fa7f7fffff", "3.4028234663852886e+38"), ("fb7e37e43c8800759c", "1.0e+300"),
    ("f90001", "5.960464477539063e-8"), ("f9c400", "-4.0"), ("fbc010666666666666", "-4.1"),
    ("f97c00", "Infinity"), ("f97e00", "NaN"), ("f9fc00", "-Infinity"), ("fa7f800000", "Infinity"),
    ("fb7ff0000000000000", "Infinity"), ("f4", "false"), ("f5", "true"), ("f6", "null"),
    ("f7", "undefined"), ("f0", "simple(16)"), ("f8ff", "simple(255)"),
    ("c074323031332d30332d32315432303a30343a30305a", '0("2013-03-21T20:04:00Z")'),
    ("c11a514b67b0", "1(1363896240)"), ("c1fb41d452d9ec200000", "1(1363896240.5)"),
    ("d74401020304", "23(h'01020304')"), ("d818456449455446", "24(h'6449455446')"),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", '32("http://www.example.com")'),
    ("40", "h''"), ("4401020304", "h'01020304'"), ("60", '""'), ("6161", '"a"'),
    ("6449455446", '"IETF"'), ("62225c", '"\\"\\\\"'), ("62c3bc", '"\u00fc"'), ("63e6b0b4", '"\u6c34"'),
    ("80", "[]"), ("83010203", "[1, 2, 3]"), ("8301820203820405", "[1, [2, 3], [4, 5]]"),
    ("a0", "{}"), ("a201020304", "{1: 2, 3: 4}"), ("a26161016162820203", '{"a": 1, "b": [2, 3]}'),
    ("826161a161626163", '["a", {"b": "c"}]'),
    ("5f42010243030405ff", "(_ h'0102', h'030405')"),
    ("7f657374726561646d696e67ff", '(_ "strea", "ming")'), ("9fff", "[_ ]"),
    ("9f018202039f0405ffff", "[_ 1, [2, 3], [_ 4, 5]]"), ("9f01820203820405ff", "[_ 1, [2, 3], [4, 5]]"),
    ("83018202039f0405ff", "[1, [2, 3], [_ 4, 5]]"), ("83019f0203ff820405", "[1, [_ 2, 3], [4, 5]]"),
    ("bf61610161629f0203ffff", '{_ "a": 1, "b": [_ 2, 3]}'), ("826161bf61626163ff", '["a", {_ "b": "c"}]'),
    ("bf6346756ef563416d7421ff", '{_ "Fun": true, "Amt": -2}'),
]


@pytest.mark.parametrize(("hexenc", "expected"), APPENDIX_A)
def test_rfc8949_appendix_a(hexenc: str, expected: str) -> None:
    data = bytes.fromhex(hexenc)
    text, after = cbor.diag(data)
    assert text == expected
    assert after == len(data)
    assert cbor.item_end(data) == len(data)


# RFC 8949 Appendix F.1 examples of not-well-formed encodings (one per kind).
NOT_WELL_FORMED = [
    "18", "19 01", "1a 01 02 03", "1b 01 02 03 04 05 06 07",  # end of input in a head
    "38", "58", "78", "98", "9a 01 ff 00", "b8", "d8", "f8",
    "5a ff ff ff ff 00", "7b 7f ff ff ff ff ff ff ff 01 02 03",  # string longer than the input
    "41", "61", "81", "818181818181818181", "8200", "a1", "a20102", "a100", "a2000000",  # items missing
    "c0", "5f 41 00", "7f 61 00", "9f", "9f 01 02", "bf", "bf 01 02 01 02",  # no break
    "1c", "1d", "1e", "3c", "5c", "7c", "9c", "bc", "dc", "fc",  # reserved additional information
    "1f", "3f", "df",  # indefinite length on major types 0, 1, 6
    "f8 00", "f8 18", "f8 1f",  # two-byte simple values below 32
    "5f 00 ff", "5f 21 ff", "5f 61 00 ff", "5f 80 ff", "5f a0 ff", "5f c0 00 ff", "5f e0 ff",
    "7f 41 00 ff", "5f 5f 41 00 ff ff", "7f 7f 61 00 ff ff",  # wrong chunk types
    "ff", "81 ff", "82 00 ff", "a1 ff", "a1 ff 00", "a1 00 ff", "a2 00 00 ff",  # break out of place
    "9f 81 ff", "9f 82 9f 81 9f 9f ff ff ff ff",
]


@pytest.mark.parametrize("hexenc", NOT_WELL_FORMED)
def test_rfc8949_appendix_f_not_well_formed(hexenc: str) -> None:
    data = bytes.fromhex(hexenc.replace(" ", ""))
    with pytest.raises(cbor.CborError):
        cbor.item_end(data)
    items, err = cbor.diag_all(data)
    assert err is not None
    assert 0 <= err.offset <= len(data)


def test_depth_is_bounded_without_recursion_error() -> None:
    deep = b"\x81" * 10_000 + b"\x00"  # 10,000 nested one-element arrays
    with pytest.raises(cbor.CborError, match="nesting deeper"):
        cbor.diag(deep)
    with pytest.raises(cbor.CborError):
        cbor.loads(deep)
    ok = b"\x81" * cbor.MAX_DEPTH + b"\x00"
    assert cbor.diag(ok)[0] == "[" * cbor.MAX_DEPTH + "0" + "]" * cbor.MAX_DEPTH


def test_huge_length_claims_are_refused_before_allocating() -> None:
    for data in (bytes.fromhex("5bffffffffffffffff"), bytes.fromhex("9bffffffffffffffff00"),
                 bytes.fromhex("bbffffffffffffffff0000")):
        with pytest.raises(cbor.CborError):
            cbor.diag(data)


def test_long_output_is_cut() -> None:
    data = cbor2.dumps(list(range(10_000)))
    text, after = cbor.diag(data, max_chars=100)
    assert after == len(data)
    assert text.endswith("…") and len(text) <= 101
    assert text.startswith("[0, 1, 2, 3")


def test_invalid_utf8_text_is_an_error() -> None:
    with pytest.raises(cbor.CborError, match="UTF-8"):
        cbor.diag(bytes.fromhex("62c328"))


def test_sequence_and_trailing_bytes() -> None:
    # RFC 8742: a CBOR sequence is items back to back; one item with trailing bytes is an error.
    assert cbor.diag_all(bytes.fromhex("0102"), sequence=True) == (["1", "2"], None)
    items, err = cbor.diag_all(bytes.fromhex("0102"))
    assert items == ["1"] and err is not None and err.offset == 1
    assert cbor.diag_all(b"", sequence=True) == ([], None)


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)


@given(_values)
@settings(max_examples=300, deadline=None)
def test_cbor2_encodings_are_well_formed_and_decode_alike(value: object) -> None:
    data = cbor2.dumps(value)
    assert cbor.item_end(data) == len(data)
    text, after = cbor.diag(data)
    assert after == len(data) and text
    got = cbor.loads(data)
    if isinstance(value, float) and math.isnan(value):
        return
    assert got == value


@given(st.binary(max_size=64))
@settings(max_examples=500, deadline=None)
def test_random_bytes_never_raise_anything_but_cbor_error(data: bytes) -> None:
    cbor.diag_all(data)
    cbor.diag_all(data, sequence=True)
    try:
        cbor.loads(data)
    except cbor.CborError:
        pass
