"""JPY (draft-ietf-anima-constrained-join-proxy) and MeshCoP TLV codecs: one description, both ways."""

from __future__ import annotations

import os

import pytest

from jpdissect.coapmsg import CoapMessage, MsgType
from jpdissect.framing import jpy, meshcop
from jpdissect.framing.jpy import JPY, JPY_LEGACY, JpyHeader

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")

# The draft's appendix example: a 16-byte header and a 427-byte DTLS 1.2 ClientHello.
DRAFT_HEADER = bytes.fromhex("d01914bcc376a88ffecc50ca6017b0c1")
DRAFT_CH_START = bytes.fromhex("16fefd0000000000000000019e")


def test_draft_appendix_example_bytes() -> None:
    """Appendix A: 82 50 <16 bytes> 59 01AB 16FEFD… (427-byte content)."""
    content = DRAFT_CH_START + bytes(427 - len(DRAFT_CH_START))
    msg = jpy.encode(DRAFT_HEADER, content)
    assert msg[:2] == b"\x82\x50"
    assert msg[2:18] == DRAFT_HEADER
    assert msg[18:21] == b"\x59\x01\xab"
    assert msg[21:34] == DRAFT_CH_START
    d = jpy.decode(msg)
    assert d.layout is JPY and d.ok
    assert d.header == DRAFT_HEADER and d.content == content
    h, c = d.span("header"), d.span("content")
    assert (h.offset, h.length, h.value_offset, h.value_length) == (1, 17, 2, 16)
    assert (c.offset, c.value_offset, c.value_length) == (18, 21, 427)
    # §4.3.3: 3-6 bytes of CBOR framing on top of header and content.
    assert len(msg) - 16 - 427 == jpy.overhead(16, 427) - 16 == 5


def test_hvr_reply_example() -> None:
    """The Registrar's HelloVerifyRequest reply: 58 3C (60 bytes) with the same header."""
    hvr = bytes.fromhex("16fefd0000000000000000002f") + bytes(47)
    m = jpy.decode(jpy.encode(DRAFT_HEADER, hvr))
    assert m.header == DRAFT_HEADER and len(m.content or b"") == 60
    assert jpy.encode(DRAFT_HEADER, hvr)[18:20] == b"\x58\x3c"


def test_registrar_accepts_and_ignores_extra_elements() -> None:
    """§4.3.5: 'number of CBOR array elements is 2 or more … only the first two elements are used'."""
    msg = b"\x84\x42ab\x43xyz\x01\x63abc"
    d = jpy.decode(msg)
    assert d.layout is JPY and d.ok and d.extra == 2
    assert d.header == b"ab" and d.content == b"xyz"
    # The reply replaces only the content and keeps the extras byte for byte.
    assert d.reply(msg, b"Q") == b"\x84\x42ab\x41Q\x01\x63abc"


def test_legacy_five_elements() -> None:
    """Legacy §5.3: [ip, port, family, ifindex, content], family 2 = IPv6; reply keeps the rest."""
    raw = jpy.legacy_for_address("fe80::50:4cff:fe00:1%eth0", 49152, 3, b"\x16\xfe\xfd")
    d = jpy.decode(raw)
    assert d.layout is JPY_LEGACY and d.ok
    assert d.get("ip") == bytes.fromhex("fe800000000000000050" "4cfffe000001")
    assert (d.get("port"), d.get("family"), d.get("ifindex")) == (49152, 2, 3)
    assert d.content == b"\x16\xfe\xfd"
    back = jpy.decode(d.reply(raw, b"HVR"))
    assert back.content == b"HVR" and back.get("port") == 49152
    assert JPY_LEGACY.encode(ip=d.get("ip"), port=49152, family=2, ifindex=3, content=b"\x16\xfe\xfd") == raw


@pytest.mark.parametrize("raw, rule", [
    (b"\x81\x41a", "at least 2"),
    (b"\x82\x41a\x01", "matches neither"),
    (b"\x82\x41a\x45abc", "runs past"),
    (b"\xa1\x01\x02", "not a CBOR array"),
    (b"\x9f\x41a\x41b\xff", "indefinite"),
    (b"\x82\x41a\x41bzz", "bytes after"),
    (b"\x85\x50" + bytes(16) + b"\x01\x09\x01\x41x", "family"),
    (b"\x82\x58\x21" + bytes(33) + b"\x40", "more than 32"),
])
def test_malformed_reports_not_raises(raw: bytes, rule: str) -> None:
    d = jpy.decode(raw)
    assert d.errors, raw
    assert any(rule in e.message for e in d.errors), [e.message for e in d.errors]
    for e in d.errors:
        assert 0 <= e.offset <= len(raw)


def test_every_prefix_decodes_without_raising() -> None:
    msg = jpy.encode(DRAFT_HEADER, bytes(300))
    for n in range(len(msg)):
        d = jpy.decode(msg[:n])
        assert not d.ok


def test_encode_checks_the_description() -> None:
    with pytest.raises(ValueError):
        jpy.encode(bytes(33), b"x")  # header SHOULD be at most 32 bytes: we do not build more
    with pytest.raises(ValueError):
        jpy.encode_legacy(bytes(5), 1, 2, 3, b"x")  # ip must be 4 or 16 bytes
    with pytest.raises(ValueError):
        JPY.encode(header=b"a")


def test_header_roundtrip_and_layout() -> None:
    """The example struct: family(1) ifindex(1) srcport(2) iid(8) zero(4), AES-128 single block."""
    h = JpyHeader.for_address("fe80::50:4cff:fe00:1%lln0", 49152, 7)
    assert h.pack() == bytes.fromhex("0107c000" "00504cfffe000001" "00000000")
    ct = h.encrypt(KEY)
    assert len(ct) == 16 and ct != h.pack()
    r = JpyHeader.decrypt(KEY, ct)
    assert r.header == h and r.error is None
    assert r.header.address == "fe80::50:4cff:fe00:1"


def test_header_matches_an_independent_aes() -> None:
    """Cross-check the ECB block with python-mbedtls' AES when it is installed."""
    cipher = pytest.importorskip("mbedtls.cipher")
    h = JpyHeader(1, 2, 5684, bytes(range(8)))
    ref = cipher.AES.new(KEY, cipher.Mode.ECB, b"").encrypt(h.pack())
    assert h.encrypt(KEY) == ref


def test_wrong_key_is_reported_by_the_zero_word() -> None:
    ct = JpyHeader(1, 2, 5684, bytes(8)).encrypt(KEY)
    r = JpyHeader.decrypt(os.urandom(16), ct)
    assert r.header is None
    assert "zero word" in (r.error or "") or "family" in (r.error or "")
    assert JpyHeader.decrypt(KEY, ct[:15]).error


def test_state_token_carries_the_pledge_token() -> None:
    """RFC 8974 §3 stateless proxy: encrypted state, then the origin's token; 18 bytes -> TKL 13."""
    h = JpyHeader(1, 2, 5683, bytes(range(8)))
    tok = jpy.seal_token(KEY, h, b"\xaa\xbb")
    assert len(tok) == 18
    wire = CoapMessage(type=MsgType.CON, code=2, mid=1, token=tok).encode()
    assert wire[0] & 0x0F == 13 and wire[4] == 18 - 13
    r, inner = jpy.open_token(KEY, CoapMessage.decode(wire)[0].token)
    assert r.header == h and inner == b"\xaa\xbb"


# ---------------------------------------------------------------------------
# MeshCoP


def test_tlv_short_and_extended_forms() -> None:
    assert meshcop.encode_tlv(meshcop.JOINER_UDP_PORT, 1000) == b"\x12\x02\x03\xe8"
    # OpenThread writes the DTLS Encapsulation as an ExtendedTlv even when short.
    assert meshcop.encode_tlv(meshcop.JOINER_DTLS_ENCAPSULATION, b"ab") == b"\x11\xff\x00\x02ab"
    assert meshcop.encode_tlv(meshcop.JOINER_DTLS_ENCAPSULATION, b"ab", extended=False) == b"\x11\x02ab"
    big = bytes(300)
    enc = meshcop.encode_tlv(8, big)
    assert enc[:4] == b"\x08\xff\x01\x2c"
    tlvs, errors = meshcop.decode_tlvs(enc + b"\x12\x02\x03\xe8")
    assert not errors
    assert [(t.type, t.extended, t.length, t.header_len) for t in tlvs] == [(8, True, 300, 4), (18, False, 2, 2)]
    assert tlvs[1].typed == 1000 and tlvs[1].offset == 304


def test_tlv_errors_without_raising() -> None:
    for raw, rule in ((b"\x12", "header cut short"), (b"\x11\xff\x00", "extended length"),
                      (b"\x11\x05ab", "runs past"), (b"\x13\x02ab", "fixes 8")):
        _tlvs, errors = meshcop.decode_tlvs(raw)
        assert any(rule in e.message for e in errors), (raw, errors)


def test_relay_rx_as_openthread_builds_it() -> None:
    """joiner_router.cpp HandleUdpReceive: NON POST c/rx; port, IID, RLOC, then extended DTLS TLV."""
    dtls = bytes.fromhex("16fefd") + bytes(10)
    relay = meshcop.Relay("c/rx", 49153, bytes.fromhex("1122334455667788"), 0x0400, dtls)
    wire = relay.encode(b"\x01\x02", 0x1234)
    msg, back, errors = meshcop.decode_relay_message(wire)
    assert not errors and msg is not None and back is not None
    assert (msg.type, msg.code, msg.token, msg.uri_path) == (MsgType.NON, 2, b"\x01\x02", "/c/rx")
    assert [t.type for t in back.tlvs] == [18, 19, 20, 17]
    assert back.tlvs[-1].extended and back.dtls == dtls
    assert (back.joiner_port, back.joiner_iid, back.router_locator) == (49153, relay.joiner_iid, 0x0400)
    # Offsets are absolute in the datagram: the DTLS value is the datagram's tail.
    assert wire[back.tlvs[-1].value_offset:] == dtls


def test_relay_tx_kek_before_dtls_only_when_present() -> None:
    """commissioner.cpp SendRelayTransmit: KEK (21) only on the JOIN_FIN.rsp one, before TLV 17."""
    base = meshcop.Relay("c/tx", 1000, bytes(8), 0x0400, b"\x17\xfe\xfd")
    assert [t.type for t in meshcop.decode_tlvs(base.encode_tlvs())[0]] == [18, 19, 20, 17]
    base.kek = bytes(range(16))
    assert [t.type for t in meshcop.decode_tlvs(base.encode_tlvs())[0]] == [18, 19, 20, 21, 17]
    _msg, relay, errors = meshcop.decode_relay_message(base.encode(b"\x00\x01", 1))
    assert not errors and relay is not None and relay.kek == bytes(range(16))


def test_relay_missing_tlv_is_an_error() -> None:
    payload = meshcop.encode_tlv(18, 1000) + meshcop.encode_tlv(17, b"x")
    relay, _tlvs, errors = meshcop.decode_relay("c/rx", payload)
    assert relay is None and any("Joiner IID" in e.message for e in errors)
