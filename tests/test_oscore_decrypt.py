"""OSCORE decryption (RFC 8613) with user-supplied contexts: spec vectors and real aiocoap traffic.

RFC 8613 Appendix C values (C.1-C.3 key derivation, C.4-C.8 protected messages) are copied from
the RFC text; the captures were made by aiocoap 0.4.17 on loopback (tests/data/coap, see its
README) and by the lab's aiocoap CoJP pledges and JRC (captures/cojp.pcapng, captures/README.md).
"""

from __future__ import annotations

import inspect
import json
import os
import struct
from pathlib import Path

import pytest

import jpdissect.crypto  # noqa: F401 - declares the preferences and fields
from jpdissect import api
from jpdissect.capture import Frame
from jpdissect.crypto import oscore as O
from jpdissect.dissectors import oscore as dissector_oscore
from jpdissect.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
COAP = ROOT / "tests" / "data" / "coap"
CAPS = ROOT / "captures"
HOOKED = "decrypt_protected" in inspect.getsource(dissector_oscore)
needs_hook = pytest.mark.skipif(
    not HOOKED, reason="dissectors/oscore.py does not call jpdissect.crypto.oscore.decrypt_protected yet "
                       "(hook described in the issue 9 report)")

H = bytes.fromhex
SECRET = H("0102030405060708090a0b0c0d0e0f10")
SALT = H("9e7ca92223786340")
IDC = H("37cbf3210017a2d3")


# ---------------------------------------------------------------------------
# RFC 8613 Appendix C.1-C.3: key derivation


@pytest.mark.parametrize("salt,sid,rid,idc,skey,rkey,civ,snonce,rnonce", [
    # C.1.1 / C.1.2: with Master Salt
    (SALT, b"", H("01"), None, "f0910ed7295e6ad4b54fc793154302ff", "ffb14e093c94c9cac9471648b4f98710",
     "4622d4dd6d944168eefb54987c", "4622d4dd6d944168eefb54987c", "4722d4dd6d944169eefb54987c"),
    (SALT, H("01"), b"", None, "ffb14e093c94c9cac9471648b4f98710", "f0910ed7295e6ad4b54fc793154302ff",
     "4622d4dd6d944168eefb54987c", "4722d4dd6d944169eefb54987c", "4622d4dd6d944168eefb54987c"),
    # C.2.1 / C.2.2: without Master Salt
    (b"", H("00"), H("01"), None, "321b26943253c7ffb6003b0b64d74041", "e57b5635815177cd679ab4bcec9d7dda",
     "be35ae297d2dace910c52e99f9", "bf35ae297d2dace910c52e99f9", "bf35ae297d2dace810c52e99f9"),
    (b"", H("01"), H("00"), None, "e57b5635815177cd679ab4bcec9d7dda", "321b26943253c7ffb6003b0b64d74041",
     "be35ae297d2dace910c52e99f9", "bf35ae297d2dace810c52e99f9", "bf35ae297d2dace910c52e99f9"),
    # C.3.1 / C.3.2: with ID Context
    (SALT, b"", H("01"), IDC, "af2a1300a5e95788b356336eeecd2b92", "e39a0c7c77b43f03b4b39ab9a268699f",
     "2ca58fb85ff1b81c0b7181b85e", "2ca58fb85ff1b81c0b7181b85e", "2da58fb85ff1b81d0b7181b85e"),
    (SALT, H("01"), b"", IDC, "e39a0c7c77b43f03b4b39ab9a268699f", "af2a1300a5e95788b356336eeecd2b92",
     "2ca58fb85ff1b81c0b7181b85e", "2da58fb85ff1b81d0b7181b85e", "2ca58fb85ff1b81c0b7181b85e"),
], ids=["C.1.1", "C.1.2", "C.2.1", "C.2.2", "C.3.1", "C.3.2"])
def test_rfc8613_appendix_c_key_derivation(salt, sid, rid, idc, skey, rkey, civ, snonce, rnonce):
    """RFC 8613 §3.2.1 HKDF-SHA256 with AES-CCM-16-64-128; nonces (§5.2) for Partial IV 0."""
    c = O.SecurityContext(SECRET, salt, sid, rid, idc)
    assert c.sender_key.hex() == skey
    assert c.recipient_key.hex() == rkey
    assert c.common_iv.hex() == civ
    assert O.nonce(sid, b"\x00", c.common_iv).hex() == snonce
    assert O.nonce(rid, b"\x00", c.common_iv).hex() == rnonce


def test_rfc8613_c4_aad_and_nonce():
    """C.4: aad_array 0x8501810a40411440, AAD 0x8368456e6372797074304048..., nonce with PIV 0x14."""
    c = O.SecurityContext(SECRET, SALT, b"", H("01"))
    assert O.aad(c.alg, b"", H("14")).hex() == "8368456e63727970743040488501810a40411440"
    assert O.nonce(b"", H("14"), c.common_iv).hex() == "4622d4dd6d944168eefb549868"


# C.4-C.8 protected messages: (name, client context (salt, sender, recipient, id context), request
# message (the one whose kid/PIV the AAD uses), protected message, is request, plaintext).
C4_REQ = "44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e"
VECTORS = [
    ("C.4", (SALT, b"", H("01"), None), C4_REQ, C4_REQ, True, "01b3747631"),
    ("C.5", (b"", H("00"), H("01"), None),
     "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0",
     "440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0", True, "01b3747631"),
    ("C.6", (SALT, b"", H("01"), IDC),
     "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3",
     "44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe55c3",
     True, "01b3747631"),
    ("C.7", (SALT, b"", H("01"), None), C4_REQ,
     "64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106", False,
     "45ff48656c6c6f20576f726c6421"),
    ("C.8", (SALT, b"", H("01"), None), C4_REQ,
     "64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e", False,
     "45ff48656c6c6f20576f726c6421"),
]


def _split(msg: bytes) -> tuple[bytes, bytes]:
    """(OSCORE option value, payload) of a protected CoAP message (options before the OSCORE one
    are Uri-Host in these vectors)."""
    from jpdissect.coapmsg import CoapMessage

    m, errors = CoapMessage.decode(msg)
    assert m is not None and not errors
    opt = next(v for n, v in m.options if n == 9)
    return opt, m.payload


@pytest.mark.parametrize("name,ctx,req,msg,is_req,plain", VECTORS, ids=[v[0] for v in VECTORS])
def test_rfc8613_protected_messages_decrypt(name, ctx, req, msg, is_req, plain):
    """C.4-C.8 decrypt to the RFC's plaintext (GET /tv1; 2.05 "Hello World!") with the pair's context."""
    salt, sid, rid, idc = ctx
    st = O.OscoreState([O.SecurityContext(SECRET, salt, sid, rid, idc)], [])
    ropt = dissector_oscore.parse_option(*(lambda v: (v, 0, len(v)))(_split(H(req))[0]))
    mopt_v, payload = _split(H(msg))
    mopt = dissector_oscore.parse_option(mopt_v, 0, len(mopt_v))
    cands = O.candidates(st, ropt.kid, ropt.kid_context)
    res = O.open_message(cands, is_req, ropt.kid, ropt.piv, None if is_req else mopt.piv, payload)
    assert res is not None
    assert res[4].hex() == plain
    assert res[1] == (sid if is_req else rid)   # who protected it


def _raw_ipv4_udp(payload: bytes, sport: int, dport: int) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    return ip + udp


@needs_hook
def test_rfc8613_vectors_through_the_dissector(tmp_path):
    """C.4 and its C.7 response as two UDP frames: the inner GET /tv1 and "Hello World!" appear as a
    CoAP layer on a decrypted data source, with the contexts given as a JSON list file."""
    ctx_file = tmp_path / "ctx.json"
    ctx_file.write_text(json.dumps([{"master_secret": SECRET.hex(), "master_salt": SALT.hex(),
                                     "sender_id": "", "recipient_id": "01"}]))
    eng = Engine(prefs={"oscore.contexts_file": str(ctx_file)}, tree=True)
    f1, f2 = _raw_ipv4_udp(H(C4_REQ), 40000, 5683), _raw_ipv4_udp(H(VECTORS[3][3]), 5683, 40000)
    p1 = eng.dissect(Frame(0, len(f1), len(f1), f1, 101))
    p2 = eng.dissect(Frame(1, len(f2), len(f2), f2, 101))
    assert p1.protocols.endswith("coap:oscore:coap")
    assert p1.values("coap.code") == [2, 1]                # outer POST, inner GET
    assert "/tv1" in p1.values("coap.opt.uri_path_recon")
    assert p1.info.startswith("CON, MID:23839, GET")
    assert p2.values("coap.code") == [68, 69]              # outer 2.04, inner 2.05
    assert p2.values("data.data") == [b"Hello World!"]   # no Content-Format: shown as data
    assert any(s.name.startswith("Decrypted OSCORE") for s in p2.sources)


# ---------------------------------------------------------------------------
# Loading contexts


def test_aiocoap_context_directories_are_deduplicated():
    """The a_client/a_server and b_client/b_server directories are mirrored pairs: two contexts."""
    ctxs, errors = O.load_contexts(COAP / "oscore_ctx")
    assert errors == []
    assert len(ctxs) == 2
    a = next(c for c in ctxs if c.id_context is not None)
    assert a.id_context == H("37cbf3210017a2d3") and a.master_salt == H("9e7ca92223786340")
    assert {a.sender_id, a.recipient_id} == {H("01"), H("02")}


def test_contexts_json_and_bad_entries(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([
        {"master_secret": "0102030405060708090a0b0c0d0e0f10", "sender_id": "00", "recipient_id": "01",
         "algorithm": "AES-CCM-16-64-128"},
        {"master_secret": "zz", "sender_id": "", "recipient_id": "01"},
        {"master_secret": "00", "sender_id": "01", "recipient_id": "02", "algorithm": 9999},
    ]))
    ctxs, errors = O.load_contexts(f)
    assert len(ctxs) == 1 and ctxs[0].sender_key.hex() == "321b26943253c7ffb6003b0b64d74041"  # C.2.1
    assert len(errors) == 2 and "not hex" in errors[0] and "unsupported" in errors[1]


# ---------------------------------------------------------------------------
# Real traffic


def _protected_messages(path: Path) -> list[tuple[int, bool, bytes, bytes, bytes | None, bytes | None, bytes]]:
    """(frame, is request, request kid, request piv, request kid context, own piv, protected payload)
    for every OSCORE message, read from the dissector's own fields."""
    out = []
    fields = ["coap.code", "oscore.kid", "oscore.piv", "oscore.kid_context", "oscore.request_kid",
              "oscore.request_piv", "oscore.request_kid_context", "coap.payload.data"]
    for p in api.packets(path, "oscore", fields=fields):
        code = p.values("coap.code")[0]
        data = p.values("coap.payload.data")[0]
        if 0 < code < 32:
            out.append((p.number, True, p.get("oscore.kid"), p.get("oscore.piv"), p.get("oscore.kid_context"),
                        None, data))
        else:
            out.append((p.number, False, p.get("oscore.request_kid"), p.get("oscore.request_piv"),
                        p.get("oscore.request_kid_context"), p.get("oscore.piv"), data))
    return out


def _inner(pt: bytes) -> tuple[int, bytes]:
    """(inner code, payload) of an RFC 8613 §5.3 plaintext."""
    from jpdissect.coapmsg import PAYLOAD_MARKER, read_option_header

    p = 1
    while p < len(pt) and pt[p] != PAYLOAD_MARKER:
        _d, ln, hl, err = read_option_header(pt, p, len(pt))
        assert err is None
        p += hl + ln
    return pt[0], pt[p + 1:] if p < len(pt) else b""


def test_aiocoap_capture_decrypts_to_what_aiocoap_sent():
    """Every protected message of oscore_aiocoap.pcap opens with the shipped aiocoap contexts: GET
    answers "hello over oscore", PUT answers its request payload reversed (the fixture server's
    resources), the Observe notifications (own Partial IV) carry "tick N"."""
    ctxs, _ = O.load_contexts(COAP / "oscore_ctx")
    st = O.OscoreState(ctxs, [])
    msgs = _protected_messages(COAP / "oscore_aiocoap.pcap")
    sent = json.loads((COAP / "oscore_values.json").read_text())["protected"]
    assert len(msgs) == len(sent)
    last_put = None
    ticks = []
    for frame, is_req, kid, piv, kidc, own, data in msgs:
        res = O.open_message(O.candidates(st, kid, kidc), is_req, kid, piv, own, data)
        assert res is not None, f"frame {frame} did not decrypt"
        code, payload = _inner(res[4])
        if is_req and code == 3:      # PUT
            last_put = payload
        elif not is_req and code == 68:
            assert payload == last_put[::-1]
        elif not is_req and payload.startswith(b"tick"):
            ticks.append(payload)
        elif not is_req:
            assert payload == b"hello over oscore"
    assert ticks == [b"tick 0", b"tick 1", b"tick 2", b"tick 3"]


def test_cojp_capture_join_request_and_configuration():
    """captures/cojp.pcapng: each pledge's Join Request (role 0, network identifier) and the JRC's
    Configuration (link-layer key set 2, short identifier 3) open on both hops of the proxy."""
    ctxs, errors = O.load_contexts(CAPS / "cojp.keys" / "oscore")
    assert not errors and len(ctxs) == 3
    st = O.OscoreState(ctxs, [])
    lab = json.loads((CAPS / "cojp.lab.json").read_text())
    import cbor2

    n = 0
    for frame, is_req, kid, piv, kidc, own, data in _protected_messages(CAPS / "cojp.pcapng"):
        res = O.open_message(O.candidates(st, kid, kidc), is_req, kid, piv, own, data)
        assert res is not None, f"frame {frame}"
        code, payload = _inner(res[4])
        doc = cbor2.loads(payload)
        if is_req:
            assert code == 2 and doc[1] == 0 and isinstance(doc[5], bytes)
        else:
            assert code == 68 and sorted(doc) == [2, 3]
        n += 1
    assert n == 16
    assert all(p.get("configuration_keys") in (None, [2, 3]) for p in lab["pledges"])


@needs_hook
def test_cojp_dissected_with_context_directory():
    """The whole capture dissects: inner POST /j, CoJP Join Request / Configuration fields."""
    prefs = {"oscore.contexts_file": str(CAPS / "cojp.keys" / "oscore")}
    pkts = list(api.packets(CAPS / "cojp.pcapng", prefs=prefs, tree=True))
    assert len(pkts) == 16
    for p in pkts:
        assert p.has("oscore.decrypted"), p.number
        assert not [e for e in p.experts if e.group.value == "Decryption"]
        kinds = p.values("cojp.message")
        assert kinds == (["Join Request"] if p.values("coap.code")[0] == 2 else ["Configuration"])
    req = pkts[0]
    assert req.values("cojp.role") == [0]
    assert req.values("cojp.network_identifier") == [b"jplab"]
    assert "/j" in req.info
    assert len(pkts[3].values("cojp.link_layer_key")) == 1


@needs_hook
def test_wrong_or_missing_context_is_reported_not_guessed(tmp_path):
    """A wrong master secret: "authentication tag mismatch", no inner message. An unknown kid context:
    "no security context" (as Decryption-group notes)."""
    f = tmp_path / "wrong.json"
    f.write_text(json.dumps([{"master_secret": "00" * 16, "master_salt": "9e7ca92223786340",
                              "sender_id": "01", "recipient_id": "02", "id_context": "37cbf3210017a2d3"}]))
    for p in api.packets(COAP / "oscore_aiocoap.pcap", "oscore", prefs={"oscore.contexts_file": str(f)},
                         tree=True):
        msgs = [e.message for e in p.experts]
        assert not p.has("oscore.decrypted")
        assert p.protocols.count("coap") == 1
        if p.get("oscore.kid_context") == H("37cbf3210017a2d3") or p.get("oscore.request_kid_context"):
            assert any("authentication tag mismatch" in m for m in msgs), (p.number, msgs)
        else:
            assert any(m.startswith("OSCORE not decrypted: no security context") for m in msgs), msgs


def test_no_contexts_configured_changes_nothing():
    """Without the preference the OSCORE layer stays as before (no decryption, no new notes)."""
    for p in api.packets(COAP / "oscore_aiocoap.pcap", "oscore", tree=True):
        assert not p.has("oscore.decrypted")
        assert not [e for e in p.experts if e.group.value == "Decryption"]


def test_preferences_are_declared():
    from jpdissect.model import PREFS

    assert PREFS["oscore.contexts_file"].kind is str
    assert os.path.isdir(COAP / "oscore_ctx")
