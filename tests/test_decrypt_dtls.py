"""DTLS decryption with user-supplied secrets (key log, pcapng DSB, PSK) on real OpenSSL sessions.

Fixtures: tests/data/decrypt (``make.sh``: OpenSSL 3.0 ``s_server``/``s_client -dtls1_2 -keylogfile``
on loopback; the two lines of application data each side sent are in ``expected.json``) and the lab
captures (captures/README.md: three pledges through a join proxy in every relay scheme).

Tests marked ``needs_hook`` drive the whole dissector and need the one-line calls into
:mod:`jpdissect.crypto.dtls12` in ``dissectors/dtls.py``; the others check the cryptography itself
against what OpenSSL logged and sent, reading records straight from the captures.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import jpdissect.crypto  # noqa: F401 - declares the preferences and fields
from jpdissect import api
from jpdissect.capture import open_capture
from jpdissect.crypto import dtls12 as D
from jpdissect.crypto import dtls13 as D13
from jpdissect.crypto import keylog as K
from jpdissect.dissectors import dtls as dissector_dtls
from jpdissect.dtls_sessions import list_sessions
from jpdissect.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
DEC = ROOT / "tests" / "data" / "decrypt"
CAPS = ROOT / "captures"
EXPECTED = json.loads((DEC / "expected.json").read_text())
PSK = bytes.fromhex((DEC / "psk.hex").read_text().strip())
HOOKED = "decrypt_record" in inspect.getsource(dissector_dtls)
needs_hook = pytest.mark.skipif(
    not HOOKED, reason="dissectors/dtls.py does not call jpdissect.crypto.dtls12.decrypt_record yet "
                       "(hook described in the issue 9 report)")
SERVER_PORT = 5684


# ---------------------------------------------------------------------------
# Reading records straight from a capture (independent of the decryption hooks)


def _records(path: Path) -> list[tuple[int, int, int, int, int, int, bytes]]:
    """(frame, direction, content type, version, epoch, seq, fragment) of every DTLS record, the
    direction from the UDP ports (the server listens on 5684)."""
    out = []
    for p in api.packets(path, "dtls", fields=["udp.srcport"]):
        lay = p.layer("dtls")
        assert lay is not None
        buf, q, end = p.data, lay.offset, lay.offset + lay.length
        d = D.S2C if p.srcport == SERVER_PORT else D.C2S
        while q + 13 <= end:
            ln = int.from_bytes(buf[q + 11:q + 13], "big")
            out.append((p.number, d, buf[q], int.from_bytes(buf[q + 1:q + 3], "big"),
                        int.from_bytes(buf[q + 3:q + 5], "big"), int.from_bytes(buf[q + 5:q + 11], "big"),
                        bytes(buf[q + 13:q + 13 + ln])))
            q += 13 + ln
    return out


def _transcript(recs) -> D.SessionState:
    """The handshake transcript as the DTLS dissector would report it (whole, unfragmented messages)."""
    s = D.SessionState()
    for _f, d, ct, _v, epoch, _seq, frag in recs:
        q = 0
        while ct == 22 and epoch == 0 and q + 12 <= len(frag):
            mt, mlen = frag[q], int.from_bytes(frag[q + 1:q + 4], "big")
            mseq = int.from_bytes(frag[q + 4:q + 6], "big")
            assert int.from_bytes(frag[q + 6:q + 9], "big") == 0 and int.from_bytes(frag[q + 9:q + 12], "big") == mlen
            D._add_transcript(s, d, mt, mseq, frag[q + 12:q + 12 + mlen])
            q += 12 + mlen
    return s


def _session(path: Path):
    eng = Engine()
    with open_capture(path) as rd:
        for fr in rd:
            eng.dissect(fr)
    [sess] = list_sessions(eng)
    return sess


# ---------------------------------------------------------------------------
# Key log


def test_keylog_parsing_and_bad_lines():
    text = ("# comment\n\nCLIENT_RANDOM " + "aa" * 32 + " " + "bb" * 48 + "\n"
            "CLIENT_TRAFFIC_SECRET_0 " + "aa" * 32 + " " + "cc" * 32 + "\n"
            "CLIENT_RANDOM abcd " + "bb" * 48 + "\n"
            "garbage\n")
    kl = K.parse(text, "t")
    assert kl.master_secret(bytes.fromhex("aa" * 32)) == bytes.fromhex("bb" * 48)
    assert kl.get(K.CLIENT_TRAFFIC_0, bytes.fromhex("aa" * 32)) == bytes.fromhex("cc" * 32)
    assert kl.bad_lines == 2 and "t:5" in kl.errors[0] and "t:6" in kl.errors[1]


def test_keylog_from_pcapng_decryption_secrets_block():
    """editcap --inject-secrets wrote the key log as a DSB of type TLSK (pcapng §4.7)."""
    with open_capture(DEC / "cert_gcm_dsb.pcapng") as rd:
        for _ in rd:
            pass
        kl = K.KeyLog()
        assert K.add_dsbs(kl, rd.secrets) >= 1
    file_kl = K.load_file(DEC / "cert_gcm.keylog")
    assert kl.secrets[K.CLIENT_RANDOM] == file_kl.secrets[K.CLIENT_RANDOM]


# ---------------------------------------------------------------------------
# The cryptography against OpenSSL, without the dissector hooks


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_records_decrypt_to_what_was_sent(name):
    """Key log -> key block (RFC 5246 §6.3) -> AEAD records (RFC 5288/6655/7905 with the DTLS
    epoch+seq): the application data equals the lines piped into s_client and s_server."""
    sess = _session(DEC / f"{name}.pcap")
    suite = D.SUITES[sess.cipher_suite]
    ms = K.load_file(DEC / f"{name}.keylog").master_secret(sess.client_random)
    kb = D.key_block(ms, sess.client_random, sess.server_random, suite)
    keys = {D.C2S: D.RecordKeys(suite, kb.client_key, kb.client_iv),
            D.S2C: D.RecordKeys(suite, kb.server_key, kb.server_iv)}
    app = {D.C2S: b"", D.S2C: b""}
    opened = 0
    for _f, d, ct, v, epoch, seq, frag in _records(DEC / f"{name}.pcap"):
        if epoch == 1:
            pt = keys[d].open(ct, v, epoch, seq, frag)
            opened += 1
            if ct == 23:
                app[d] += pt
    assert app[D.C2S] == EXPECTED[name]["client"].encode()
    assert app[D.S2C] == EXPECTED[name]["server"].encode()
    assert opened >= 4  # both Finished, both data lines (+ close_notify alerts)


@pytest.mark.parametrize("name", ["psk_ccm8", "psk_gcm256"])
def test_psk_master_secret_matches_openssl(name):
    """RFC 4279 §2 premaster + RFC 7627 extended master secret over the RFC 6347 §4.2.6 transcript
    (DTLS headers, first ClientHello and HelloVerifyRequest left out) == the master OpenSSL logged."""
    sess = _session(DEC / f"{name}.pcap")
    suite = D.SUITES[sess.cipher_suite]
    assert suite.psk_only
    s = _transcript(_records(DEC / f"{name}.pcap"))
    assert s.ems and s.cke_count is not None
    h = D.digest(suite.prf_hash, D.transcript_bytes(D._ordered(s.transcript[:s.cke_count])))
    ms = D.master_secret(D.psk_premaster(PSK), sess.client_random, sess.server_random, suite.prf_hash, h)
    assert ms == K.load_file(DEC / f"{name}.keylog").master_secret(sess.client_random)


def test_wrong_key_is_an_authentication_failure():
    sess = _session(DEC / "cert_ccm8.pcap")
    suite = D.SUITES[sess.cipher_suite]
    ms = bytearray(K.load_file(DEC / "cert_ccm8.keylog").master_secret(sess.client_random))
    ms[0] ^= 1
    kb = D.key_block(bytes(ms), sess.client_random, sess.server_random, suite)
    k = D.RecordKeys(suite, kb.client_key, kb.client_iv)
    rec = next(r for r in _records(DEC / "cert_ccm8.pcap") if r[4] == 1 and r[1] == D.C2S)
    with pytest.raises(D.DecryptError, match="authentication tag mismatch"):
        k.open(rec[2], rec[3], rec[4], rec[5], rec[6])



@pytest.mark.parametrize("suite_id", [0xC0AE, 0xC02B, 0xCCA9])   # CCM-8, GCM, ChaCha20-Poly1305
def test_cid_record_aad_and_inner_plaintext_rfc9146(suite_id):
    """An RFC 9146 record sealed here with the AAD spelled out from §5 opens with RecordKeys, and
    its DTLSInnerPlaintext (§4) yields the real content type; a wrong CID fails the tag."""
    suite = D.SUITES[suite_id]
    key, iv = bytes(range(suite.key_len)), bytes(range(100, 100 + suite.fixed_iv_len))
    epoch, seq, version, cid = 1, 0x0102030405, 0xFEFD, bytes.fromhex("c1d2e3")
    inner = b"hello coaps" + bytes([23]) + bytes(3)          # content | real type | zero padding
    aad = (b"\xff" * 8 + bytes([25, len(cid), 25]) + version.to_bytes(2, "big") + epoch.to_bytes(2, "big")
           + seq.to_bytes(6, "big") + cid + len(inner).to_bytes(2, "big"))
    seq_num = epoch.to_bytes(2, "big") + seq.to_bytes(6, "big")
    if suite.aead == "chacha":
        explicit, nonce = b"", bytes(a ^ b for a, b in zip(iv, bytes(4) + seq_num, strict=True))
    else:
        explicit = bytes.fromhex("0011223344556677")
        nonce = iv + explicit
    fragment = explicit + D._aead(suite, key).encrypt(nonce, inner, aad)
    k = D.RecordKeys(suite, key, iv)
    pt = k.open(25, version, epoch, seq, fragment, cid)
    assert pt == inner and D.inner_plaintext(pt) == (23, b"hello coaps")
    with pytest.raises(D.DecryptError, match="authentication tag mismatch"):
        k.open(25, version, epoch, seq, fragment, cid[:-1] + b"\0")


# ---------------------------------------------------------------------------
# DTLS 1.3 building blocks (no DTLS 1.3 stack is available here to record a real session)


def test_hkdf_expand_label_rfc8448():
    """RFC 8448 §3 server handshake traffic key/iv, with TLS 1.3's "tls13 " label prefix."""
    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    assert D13.hkdf_expand_label(secret, b"key", b"", 16, prefix=b"tls13 ").hex() == \
        "3fce516009c21727d0f2e4e86ee403bc"
    assert D13.hkdf_expand_label(secret, b"iv", b"", 12, prefix=b"tls13 ").hex() == "5d313eb2671276ee13000b30"


def test_dtls13_record_number_encryption_round_trip():
    """A record protected step by step from RFC 9147 §4 / §4.2.3 with the primitives directly: the
    decryptor recovers the 16-bit-encrypted sequence number (past a wrap of the low bits) and content."""
    secret = bytes(range(32))
    suite = D13.SUITES[0x1301]
    tk = D13.TrafficKeys(suite, secret)
    key = D13.hkdf_expand_label(secret, b"key", b"", 16)
    iv = D13.hkdf_expand_label(secret, b"iv", b"", 12)
    sn_key = D13.hkdf_expand_label(secret, b"sn", b"", 16)
    seq = 0x1_0003  # the low 16 bits wrapped once
    hdr = bytearray([0x2E, (seq >> 8) & 0xFF, seq & 0xFF, 0, 0])  # 001 C=0 S=1 L=1 EE=2, seq, length
    inner = b"GET /hello" + bytes([23]) + b"\0\0"
    hdr[3:5] = (len(inner) + 16).to_bytes(2, "big")
    nonce = bytes(a ^ b for a, b in zip(iv, seq.to_bytes(12, "big"), strict=True))
    ct = AESGCM(key).encrypt(nonce, inner, bytes(hdr))
    enc = Cipher(algorithms.AES(sn_key), modes.ECB()).encryptor()
    mask = enc.update(ct[:16]) + enc.finalize()
    wire_seq = bytes([hdr[1] ^ mask[0], hdr[2] ^ mask[1]])
    assert tk.mask(ct)[:2] == mask[:2]
    low = int.from_bytes(wire_seq, "big") ^ int.from_bytes(tk.mask(ct)[:2], "big")
    full = D13.reconstruct(0xFFF0, low, 16)
    assert full == seq
    pt = tk.open(full, bytes(hdr), ct)
    assert D.inner_plaintext(pt) == (23, b"GET /hello")



@pytest.mark.parametrize("suite_id", [0x1301, 0x1304, 0x1303])   # AES-GCM, AES-CCM, ChaCha20
def test_dtls13_masks_from_one_key_match_a_fresh_cipher_per_record(suite_id):
    """TrafficKeys keeps one AES-ECB encryptor for the record-number masks of its whole epoch: the
    mask of each record in a long run equals RFC 9147 §4.2.3 computed with a new cipher context."""
    secret = bytes(range(1, 33))
    suite = D13.SUITES[suite_id]
    tk = D13.TrafficKeys(suite, secret)
    sn_key = D13.hkdf_expand_label(secret, b"sn", b"", suite.key_len)
    for i in range(40):
        sample = bytes((i * 7 + j) & 0xFF for j in range(16))
        if suite.aead == "chacha":
            want = Cipher(algorithms.ChaCha20(sn_key, sample), mode=None).encryptor().update(bytes(16))
        else:
            enc = Cipher(algorithms.AES(sn_key), modes.ECB()).encryptor()
            want = enc.update(sample) + enc.finalize()
        assert tk.mask(sample + b"tail of the record") == want, i

def test_dtls13_sequence_reconstruction_rfc9147():
    assert D13.reconstruct(0, 5, 8) == 5
    assert D13.reconstruct(0x1FE, 0x02, 8) == 0x202       # closest to the expected value
    assert D13.reconstruct(0x201, 0xFF, 8) == 0x1FF


# ---------------------------------------------------------------------------
# Through the dissector


def _decrypted(path: Path, prefs: dict, secrets_from_reader: bool = False):
    eng = Engine(prefs=prefs, tree=True)
    out = []
    with open_capture(path) as rd:
        if secrets_from_reader:
            eng.secrets = rd.secrets
        for fr in rd:
            out.append(eng.dissect(fr))
    return out


def _app_data(pkts) -> dict[int, bytes]:
    app = {D.C2S: b"", D.S2C: b""}
    for p in pkts:
        for ct, data in zip(p.values("dtls.decrypted.content_type"), p.values("dtls.decrypted.data"),
                            strict=True):
            if ct == 23:
                app[D.S2C if p.srcport == SERVER_PORT else D.C2S] += data
    return app


@needs_hook
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dissector_keylog(name):
    pkts = _decrypted(DEC / f"{name}.pcap", {"dtls.keylog_file": str(DEC / f"{name}.keylog")})
    app = _app_data(pkts)
    assert app == {D.C2S: EXPECTED[name]["client"].encode(), D.S2C: EXPECTED[name]["server"].encode()}
    verified = [v for p in pkts for v in p.values("dtls.decrypted.finished_verified")]
    assert verified == [True, True]
    assert not [e for p in pkts for e in p.experts if e.group.value == "Decryption"]
    assert any("Alert (Level: Warning, Description: Close Notify)" in p.info for p in pkts)


@needs_hook
@pytest.mark.parametrize("name", ["psk_ccm8", "psk_gcm256"])
def test_dissector_psk(name):
    pkts = _decrypted(DEC / f"{name}.pcap", {"dtls.psk": PSK})
    assert _app_data(pkts) == {D.C2S: EXPECTED[name]["client"].encode(),
                               D.S2C: EXPECTED[name]["server"].encode()}
    assert {v for p in pkts for v in p.values("dtls.decrypted.key_source")} == \
        {"dtls.psk (extended master secret)"}


@needs_hook
def test_dissector_dsb():
    """No key log option: the secrets come from the capture's own Decryption Secrets Block, as the
    CLI hands ``reader.secrets`` to the engine."""
    pkts = _decrypted(DEC / "cert_gcm_dsb.pcapng", {}, secrets_from_reader=True)
    assert _app_data(pkts)[D.C2S] == EXPECTED["cert_gcm"]["client"].encode()


@needs_hook
def test_wrong_and_missing_secrets_are_reported(tmp_path):
    """Wrong master secret: "authentication tag mismatch" on every protected record and no plaintext;
    a key log without this session: "no key for this session"; no secret at all: nothing new."""
    [cr] = K.load_file(DEC / "cert_ccm8.keylog").secrets[K.CLIENT_RANDOM]
    bad = tmp_path / "bad.keylog"
    bad.write_text(f"CLIENT_RANDOM {cr.hex()} {'00' * 48}\n")
    other = tmp_path / "other.keylog"
    other.write_text(f"CLIENT_RANDOM {'11' * 32} {'00' * 48}\n")
    for keylog, text in ((bad, "authentication tag mismatch"), (other, "no key for this session")):
        pkts = _decrypted(DEC / "cert_ccm8.pcap", {"dtls.keylog_file": str(keylog)})
        protected = [p for p in pkts if any(e > 0 for e in p.values("dtls.record.epoch"))]
        assert protected
        for p in protected:
            assert not p.has("dtls.decrypted")
            assert any(text in e.message for e in p.experts if e.group.value == "Decryption"), p.number
    pkts = _decrypted(DEC / "cert_ccm8.pcap", {})
    assert not [e for p in pkts for e in p.experts if e.group.value == "Decryption"]
    assert not any(p.has("dtls.decrypted") for p in pkts)


def _udp_ports(data: bytes) -> tuple[int, int]:
    """Source and destination port of a loopback fixture frame (Ethernet, 20-byte IPv4, UDP)."""
    return int.from_bytes(data[34:36], "big"), int.from_bytes(data[36:38], "big")


def _one_five_tuple(path: Path, first: str, second: str) -> None:
    """``first``'s frames, then ``second``'s with its client port rewritten to ``first``'s: two DTLS
    sessions, with different keys and cipher suites, on one 5-tuple (a pledge reconnecting from the
    same port). The UDP checksum is zeroed ("none", RFC 768) rather than recomputed."""
    from jpdissect.capture import Frame
    from jpdissect.capture.writer import PcapWriter

    def frames(name: str) -> list:
        with open_capture(DEC / f"{name}.pcap") as rd:
            return list(rd)

    a, b = frames(first), frames(second)
    port_a = next(sp if dp == SERVER_PORT else dp for sp, dp in map(_udp_ports, (f.data for f in a)))
    ts = a[-1].ts_ns
    with PcapWriter(str(path), a[0].linktype) as w:
        for f in a:
            w.write(f)
        for f in b:
            d = bytearray(f.data)
            sp, dp = _udp_ports(d)
            d[34:38] = (port_a if sp != SERVER_PORT else sp).to_bytes(2, "big") + \
                (port_a if dp != SERVER_PORT else dp).to_bytes(2, "big")
            d[40:42] = b"\0\0"
            ts += 1_000_000
            w.write(Frame(ts, len(d), len(d), bytes(d), f.linktype))


@needs_hook
def test_new_session_on_same_five_tuple_gets_its_own_keys(tmp_path):
    """Record keys (and their AEAD objects) are cached per session and epoch: a second handshake on
    the same 5-tuple must decrypt with its own keys, never the first session's cached cipher (which
    would fail the tag, or worse for an equal suite, never be asked)."""
    cap = tmp_path / "two_sessions.pcap"
    _one_five_tuple(cap, "cert_ccm8", "cert_gcm")
    keylog = tmp_path / "both.keylog"
    keylog.write_text((DEC / "cert_ccm8.keylog").read_text() + (DEC / "cert_gcm.keylog").read_text())
    eng = Engine(prefs={"dtls.keylog_file": str(keylog)}, tree=True)
    pkts = []
    with open_capture(cap) as rd:
        for fr in rd:
            pkts.append(eng.dissect(fr))
    sessions = list_sessions(eng)
    assert len(sessions) == 2 and sessions[0].key == sessions[1].key
    n_first = sum(1 for _ in open_capture(DEC / "cert_ccm8.pcap"))
    for part, name in ((pkts[:n_first], "cert_ccm8"), (pkts[n_first:], "cert_gcm")):
        assert _app_data(part) == {D.C2S: EXPECTED[name]["client"].encode(),
                                   D.S2C: EXPECTED[name]["server"].encode()}
    assert not [e for p in pkts for e in p.experts if e.group.value == "Decryption"]
    states = [D.session_state(eng, s) for s in sessions]
    k1, k2 = (st.keys[(D.C2S, 1)] for st in states)
    assert k1 is not k2 and k1.aead is not k2.aead
    assert (k1.suite.name, k2.suite.name) == ("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
                                              "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")


@needs_hook
def test_new_epoch_does_not_reuse_epoch_1_keys(tmp_path):
    """A record of epoch 2 (after a renegotiation, whose keys are not derived) is reported as not
    decrypted: the epoch-1 cipher cached for that direction is not tried on it."""
    from jpdissect.capture import Frame
    from jpdissect.capture.writer import PcapWriter

    with open_capture(DEC / "cert_ccm8.pcap") as rd:
        frames = list(rd)
    recs = [r for r in _records(DEC / "cert_ccm8.pcap") if r[2] == 23 and r[1] == D.C2S]
    f = frames[recs[0][0] - 1]
    d = bytearray(f.data)
    assert d[42] == 23 and int.from_bytes(d[45:47], "big") == 1   # first record: application data, epoch 1
    d[45:47] = (2).to_bytes(2, "big")
    cap = tmp_path / "epoch2.pcap"
    with PcapWriter(str(cap), f.linktype) as w:
        for fr in frames:
            w.write(fr)
        w.write(Frame(frames[-1].ts_ns + 1000, len(d), len(d), bytes(d), f.linktype))
    pkts = _decrypted(cap, {"dtls.keylog_file": str(DEC / "cert_ccm8.keylog")})
    last = pkts[-1]
    assert not last.has("dtls.decrypted")
    assert [e.message for e in last.experts if e.group.value == "Decryption"] == \
        ["Not decrypted: epoch 2: keys of a renegotiated handshake are not derived (only epoch 1)"]
    assert pkts[recs[0][0] - 1].has("dtls.decrypted")   # the same bytes at epoch 1 do decrypt


def _lab(scheme: str):
    keys = json.loads((CAPS / f"{scheme}.keys" / "keys.json").read_text())
    pkts = _decrypted(CAPS / f"{scheme}.pcapng", {"dtls.keylog_file": str(CAPS / f"{scheme}.keylog")})
    return keys, pkts


def _voucher_exchanges(pkts, interface: int) -> set[tuple[str, bytes, bytes]]:
    """(serial, request nonce, response nonce) of every decrypted voucher request/response pair."""
    import cbor2

    reqs: dict[bytes, tuple[str, bytes]] = {}
    out = set()
    for p in pkts:
        if p.interface_id != interface:
            continue
        for data, ct in zip(p.values("dtls.decrypted.data"), p.values("dtls.decrypted.content_type"),
                            strict=True):
            if ct != 23:
                continue
            from jpdissect.coapmsg import CoapMessage

            m, _ = CoapMessage.decode(data)
            assert m is not None
            body = cbor2.loads(m.payload)
            if m.code == 2:
                vr = body["ietf-voucher-request:voucher"]
                reqs[m.token] = (vr["serial-number"], vr["nonce"])
            elif m.token in reqs:
                v = body["ietf-voucher:voucher"]
                assert v["serial-number"] == reqs[m.token][0]
                out.add((reqs[m.token][0], reqs[m.token][1], v["nonce"]))
    return out


@needs_hook
@pytest.mark.parametrize("scheme", ["stateful", "jpy", "jpy-legacy", "coap-dtls", "thread-relay"])
def test_lab_sessions_decrypt_on_every_hop(scheme):
    """Every pledge's voucher request and the Registrar's answer decrypt (serial number = the pledge's,
    nonce echoed); where the scheme's relay framing is dissected, the Registrar hop decrypts to the
    same exchanges as the pledge hop."""
    keys, pkts = _lab(scheme)
    serials = {p["serial"] for p in keys["pledges"]}
    pledge_hop = _voucher_exchanges(pkts, 0)
    assert {s for s, _n, _r in pledge_hop} == serials
    assert all(n == r for _s, n, r in pledge_hop)
    verified = [v for p in pkts for v in p.values("dtls.decrypted.finished_verified")]
    assert verified and all(verified)
    registrar_hop = _voucher_exchanges(pkts, 1)
    assert registrar_hop <= pledge_hop  # whatever decrypts there is what the pledge sent
    if registrar_hop != pledge_hop:
        pytest.skip(f"{scheme}: {len(registrar_hop)} of {len(pledge_hop)} exchanges decrypt on the Registrar "
                    "hop; its relay framing is not (fully) dissected yet -- relay dissectors in progress")


@needs_hook
def test_cbrski_voucher_request_shown():
    _keys, pkts = _lab("stateful")
    reqs = [p for p in pkts if "Voucher Request" in p.values("cbrski.resource")]
    assert reqs
    p = reqs[0]
    assert p.protocol == "CoAP" or p.protocol == "cBRSKI"
    assert "/.well-known/brski/rv" in p.info
    assert any('"serial-number": "PLEDGE-000' in t for t in p.values("cbrski.cbor"))


def test_preferences_declared():
    from jpdissect.model import PREFS

    assert PREFS["dtls.keylog_file"].kind is str and PREFS["dtls.psk"].kind is bytes
    assert os.path.exists(DEC / "make.sh")


def test_cbrski_cose_sign1_voucher_request():
    """A COSE_Sign1 (RFC 9052 §4.2, tag 18) voucher request signed with ES256 shows its structure:
    protected header with alg -7, the voucher request payload as CBOR diagnostic notation, the signature."""
    import cbor2
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from jpdissect.crypto.cbrski import dissect_cbrski
    from jpdissect.dissectors.coap import CoapInfo
    from jpdissect.model import Packet

    payload = cbor2.dumps({2501: {1: "PLEDGE-0001", 2: b"\x01\x02"}})
    protected = cbor2.dumps({1: -7})
    key = ec.generate_private_key(ec.SECP256R1())
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])   # RFC 9052 §4.4
    sig = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
    data = cbor2.dumps(cbor2.CBORTag(18, [protected, {4: b"kid"}, payload, sig]))
    pkt = Packet(1, 0, data, 1, len(data), tree=True)
    pkt.cap = Engine(tree=True)
    pkt.scratch["coap"] = CoapInfo(0, 2, 1, b"", "/.well-known/brski/rv", 836, 0, len(data), 0)
    assert dissect_cbrski(pkt, data, 0, len(data), 0)
    assert pkt.values("cbrski.cose") == ["COSE_Sign1 (tag 18)"]
    assert pkt.values("cbrski.cose.alg") == [-7]
    assert pkt.values("cbrski.cose.payload") == ['{2501: {1: "PLEDGE-0001", 2: h\'0102\'}}']
    assert pkt.values("cbrski.cose.signature") == [sig]
    assert pkt.values("cbrski.resource") == ["Voucher Request"]
