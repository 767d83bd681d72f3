"""OSCORE option (RFC 8613 §6.1) decoding, checked against RFC 8613 §6.3 and against aiocoap's own values."""

from __future__ import annotations

import json

import pytest

from coap_support import dissect_bytes, fixture, packets
from jpdissect.coapmsg import OSCORE, POST, CoapMessage, MsgType
from jpdissect.dissectors import oscore as osc
from jpdissect.engine import Engine


def _parse(hexval: str) -> osc.OscoreOption:
    raw = bytes.fromhex(hexval)
    return osc.parse_option(raw, 0, len(raw))


# RFC 8613 §6.3 "Examples of OSCORE Option" (option values given there in hex).
def test_rfc8613_6_3_request_kid_25_piv_05() -> None:
    o = _parse("090525")
    assert (o.piv, o.kid, o.kid_context, o.error) == (b"\x05", b"\x25", None, None)


def test_rfc8613_6_3_request_empty_kid_piv_00() -> None:
    o = _parse("0900")
    assert (o.piv, o.kid, o.kid_context, o.error) == (b"\x00", b"", None, None)


def test_rfc8613_6_3_request_with_kid_context() -> None:
    o = _parse("19050544616c656b00")
    assert o.piv == b"\x05" and o.kid_context == b"Dalek" and o.kid == b"\x00" and o.error is None
    assert o.kid_context_off == 3 and o.kid_off == 8


def test_rfc8613_6_3_response_without_piv_is_empty() -> None:
    o = _parse("")
    assert (o.flags, o.piv, o.kid, o.error) == (0, None, None, None)


def test_rfc8613_6_3_response_with_piv() -> None:
    o = _parse("0107")
    assert (o.piv, o.kid, o.error) == (b"\x07", None, None)


@pytest.mark.parametrize(("hexval", "rule"), [
    ("06" + "00" * 6, "Partial IV length 6 is reserved"),
    ("07" + "00" * 7, "Partial IV length 7 is reserved"),
    ("0301", "runs past the option"),
    ("10", "no kid context length byte"),
    ("1005aabb", "kid context of 5 bytes runs past"),
    ("0105aa", "left over"),
    ("80", "no second flag byte"),
])
def test_rfc8613_6_1_format_errors(hexval: str, rule: str) -> None:
    o = _parse(hexval)
    assert o.error is not None and rule in o.error


def test_extension_flag_byte_and_all_zero_flags() -> None:
    o = _parse("8900" + "05" + "25")  # bit 0 set: a second flag byte follows, then the fields
    assert o.flags2 == 0 and o.piv == b"\x05" and o.kid == b"\x25" and o.error is None
    assert _parse("00").warning is not None  # RFC 8613 §6.1: should have been an empty value


def test_malformed_option_is_expert_info_and_frame_still_shown() -> None:
    # RFC 8613 §6.1: n = 7 is reserved. Built with the project's CoAP encoder.
    msg = CoapMessage(MsgType.CON, POST, 1, b"\x01").add(OSCORE, b"\x07\x00").encode() + b"\xff" + b"x" * 9
    pkt = dissect_bytes(msg)
    assert pkt.layer("coap") is not None and pkt.layer("coap").malformed
    assert any("Partial IV length 7 is reserved" in e.message for e in pkt.experts)
    assert not any("Dissector bug" in e.message for e in pkt.experts)


def test_short_protected_payload_is_malformed() -> None:
    msg = CoapMessage(MsgType.CON, POST, 2, b"\x02").add(OSCORE, bytes.fromhex("090525"))
    msg.payload = b"abc"  # RFC 8613 §5: ciphertext includes the 8-byte tag, so at least 8 bytes
    pkt = dissect_bytes(msg.encode())
    assert any("shorter than the 8-byte authentication tag" in e.message for e in pkt.experts)
    assert pkt.get("oscore.kid") == b"\x25"


def _oscore_packets(tree: bool = True, fields: tuple[str, ...] = ()) -> list:
    return [p for p in packets(fixture("oscore_aiocoap.pcap"), tree=tree, fields=fields)
            if p.has("coap.opt.oscore")]


@pytest.mark.parametrize("tree", [True, False])
def test_aiocoap_values_match_every_message(tree: bool) -> None:
    """Every OSCORE message aiocoap protected, in sending order, against what aiocoap itself used."""
    with open(fixture("oscore_values.json")) as f:
        log = json.load(f)["protected"]
    fields = ("coap.opt.oscore", "oscore.piv", "oscore.kid", "oscore.kid_context", "oscore.ciphertext",
              "oscore.tag", "coap.code", "oscore.request_piv", "oscore.request_kid")
    pkts = _oscore_packets(tree, fields)
    assert len(pkts) == len(log) >= 10
    last_req: dict[str, object] = {}
    for pkt, rec in zip(pkts, log, strict=True):
        assert pkt.get("coap.opt.oscore").hex() == rec["option"]
        piv, kid, kidctx = pkt.get("oscore.piv"), pkt.get("oscore.kid"), pkt.get("oscore.kid_context")
        assert (piv.hex() if piv is not None else None) == rec["piv"]
        assert (kid.hex() if kid is not None else None) == rec["kid"]
        assert (kidctx.hex() if kidctx is not None else None) == rec["kid_context"]
        assert rec["request"] == (pkt.get("coap.code") < 32)
        ct, tag = pkt.get("oscore.ciphertext"), pkt.get("oscore.tag")
        assert len(tag) == osc.DEFAULT_TAG_LEN and len(ct) + len(tag) == rec["payload_len"]
        if rec["request"]:
            last_req = rec
        else:  # a response is linked to its request's nonce material
            assert pkt.get("oscore.request_piv").hex() == last_req["piv"]
            assert pkt.get("oscore.request_kid").hex() == last_req["kid"]


def test_exchange_state_kept_for_decryption() -> None:
    pkts = _oscore_packets()
    responses = [p for p in pkts if p.get("coap.code") >= 64]
    assert responses and all("oscore.request" in p.scratch for p in responses)
    first = responses[0].scratch["oscore.request"]
    assert first["kid"] == b"\x01" and first["kid_context"] == bytes.fromhex("37cbf3210017a2d3")
    assert isinstance(first["frame"], int)


def test_context_saved_next_to_fixture() -> None:
    with open(fixture("oscore_ctx/a_client/secret.json")) as f:
        sec = json.load(f)
    assert sec["sender-id_hex"] == "01" and sec["recipient-id_hex"] == "02"
    assert sec["id-context_hex"] == "37cbf3210017a2d3"


def test_state_lives_on_the_engine() -> None:
    eng = Engine(tree=True)
    msg = CoapMessage(MsgType.CON, POST, 7, b"\x07").add(OSCORE, bytes.fromhex("090525"))
    msg.payload = bytes(12)
    dissect_bytes(msg.encode(), eng=eng)
    assert list(eng.state[osc.STATE_KEY].values())[0]["piv"] == b"\x05"
