"""IEEE 802.15.4 security (CCM*) and the Thread key schedule.

Crypto is checked three ways: against IEEE 802.15.4-2006 Annex C (the vectors OpenThread's own unit
test uses, verified by tshark too), against frames OpenThread itself encrypted (the capture), and
by tshark decrypting the capture with the same key. Frames re-encrypted under another key sequence
are built here from capture frames (IEEE 802.15.4-2015 §9.3: nonce = EUI-64 || frame counter || level).
"""

from __future__ import annotations

import struct

import pytest

from jpdissect import thread_keys as tk
from jpdissect.dissectors.wpan import crc16_itu
from jpdissect.engine import Engine
from jpdissect.model import Group
from test_wpan_helpers import (
    KEK_FRAMES_3,
    KEK_FRAMES_4,
    KEK_JOINER3,
    KEK_JOINER4,
    KEY_PREF,
    NETWORK_KEY,
    THREAD_PCAP,
    WPAN,
    bugs,
    comparable_fields,
    diff_with_tshark,
    dissect_all,
    dissect_bytes,
    experts,
    kek_is_learned,
    needs_network_layer,
    needs_tshark,
    read_frames,
)

NK = bytes.fromhex(NETWORK_KEY)
ANNEXC_KEY = bytes(range(0xC0, 0xD0))
F2CD = bytes.fromhex("f2cdbbb94825e880")  # node 2 (README.txt)


# ---------------------------------------------------------------------------
# thread_keys


def test_key_derivation_decrypts_what_openthread_encrypted() -> None:
    """HMAC-SHA256(network key, seq || "Thread"): last 16 bytes = MAC key (Thread §7.1.2)."""
    mle_k, mac_k = tk.derive_keys(NK, 0)
    assert (mle_k, mac_k) == (tk.mle_key(NK, 0), tk.mac_key(NK, 0)) and mle_k != mac_k
    fr = read_frames(THREAD_PCAP)[16].data[:-2]  # frame 17: 0x0c01 -> 0x0c00, key id mode 1, level 5
    hdr, payload = fr[:15], fr[15:]
    pt, status = tk.ccm_star_decrypt(mac_k, tk.ccm_nonce(F2CD, 0, 5), 5, hdr, payload)
    assert status == tk.OK
    assert pt[:2] == bytes.fromhex("7677")  # an IPHC header (RFC 6282 §3.1)
    _, status = tk.ccm_star_decrypt(mle_k, tk.ccm_nonce(F2CD, 0, 5), 5, hdr, payload)
    assert status == tk.MIC_FAILED


def test_annex_c_vectors() -> None:
    """IEEE 802.15.4-2006 Annex C.2.1-C.2.3 (key C0..CF, source ACDE480000000001, counter 5)."""
    src = bytes.fromhex("acde480000000001")
    frames = [f.data for f in read_frames(WPAN / "annexc.pcap")]
    beacon, data, cmd = frames
    pt, st = tk.ccm_star_decrypt(ANNEXC_KEY, tk.ccm_nonce(src, 5, 2), 2, beacon[:-12], beacon[-12:])
    assert st == tk.OK and pt == b"QRST"
    pt, st = tk.ccm_star_decrypt(ANNEXC_KEY, tk.ccm_nonce(src, 5, 4), 4, data[:-4], data[-4:])
    assert st == tk.UNVERIFIED and pt == b"abcd"
    pt, st = tk.ccm_star_decrypt(ANNEXC_KEY, tk.ccm_nonce(src, 5, 6), 6, cmd[:29], cmd[29:])
    assert st == tk.OK and pt == b"\xce"


def test_annex_c_frames_dissected_with_a_plain_key() -> None:
    pkts = dissect_all(WPAN / "annexc.pcap", prefs=["wpan.key:C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF"])
    assert [p.get("wpan.key_number") for p in pkts] == [0, 0, 0]
    assert pkts[0].values("data.data") == [b"QRST"]
    assert pkts[1].sources[-1].data == b"abcd"
    assert any("cannot be verified" in m for m in experts(pkts[1], Group.DECRYPTION))
    assert pkts[2].get("wpan.cmd") == 1 and pkts[2].get("wpan.cinfo.alloc_addr") is True


@needs_tshark
def test_annex_c_matches_tshark() -> None:
    bad = diff_with_tshark(WPAN / "annexc.pcap", comparable_fields("wpan."),
                           ["wpan.key:C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF"],
                           ["-o", 'uat:ieee802154_keys:"C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF","0","No hash"'])
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("level", range(1, 8))
def test_ccm_star_round_trip_and_tamper_detection(level: int) -> None:
    key, nonce, aad, msg = bytes(range(16)), tk.ccm_nonce(F2CD, 7, level), b"header", b"payload bytes"
    ct = tk.ccm_star_encrypt(key, nonce, level, aad, msg)
    assert len(ct) == len(msg) + tk.mic_length(level)
    assert (ct[: len(msg)] == msg) == (not tk.is_encrypted(level))
    pt, st = tk.ccm_star_decrypt(key, nonce, level, aad, ct)
    assert pt == msg and st == (tk.UNVERIFIED if level == 4 else tk.OK)
    if level != 4:
        _, st = tk.ccm_star_decrypt(key, nonce, level, aad + b"x", ct)
        assert st == tk.MIC_FAILED
    assert tk.ccm_star_decrypt(key, nonce, level, aad, ct[:1])[1] in (tk.TOO_SMALL, tk.MIC_FAILED, tk.UNVERIFIED)


def test_key_index_and_sequence() -> None:
    """Thread §7.2.2.2.1: key index = (key sequence mod 128) + 1."""
    assert tk.key_index_for_sequence(0) == 1 and tk.key_index_for_sequence(127) == 128
    assert tk.key_index_for_sequence(128) == 1
    assert tk.sequences_for_key_index(1, 0) == [0, 128]
    assert tk.sequences_for_key_index(2, 130) == [129, 257, 1]
    assert tk.sequences_for_key_index(128, 129)[0] == 127
    assert tk.ccm_nonce(F2CD, 0x01020304, 5) == F2CD + b"\x01\x02\x03\x04\x05"


# ---------------------------------------------------------------------------
# The capture


def _secured(pkts: list) -> list:  # type: ignore[type-arg]
    return [p for p in pkts if p.get("wpan.security")]


def test_without_key_every_secured_frame_is_shown_encrypted() -> None:
    pkts = dissect_all(THREAD_PCAP)
    assert len(pkts) == 341 and not any(bugs(p) for p in pkts)
    sec = _secured(pkts)
    assert len(sec) == 78  # tshark -Y wpan.security==1 agrees
    for p in sec:
        assert "No encryption key set - can't decrypt" in experts(p, Group.UNDECODED), p.number
        assert p.protocols == "wpan:data" and p.get("wpan.mic") is not None
        assert p.get("wpan.key_number") is None


def test_wrong_key_notes_mic_failure_and_keeps_the_frame() -> None:
    pkts = dissect_all(THREAD_PCAP, prefs=["thread.network_key:00112233445566778899aabbccddeeff"])
    assert len(pkts) == 341 and not any(bugs(p) for p in pkts)
    reasons = {"MIC check failed", "No extended source address - can't decrypt",
               "No encryption key set - can't decrypt"}
    for p in _secured(pkts):
        why = set(experts(p, Group.UNDECODED)) & reasons
        assert len(why) == 1, (p.number, experts(p))
        assert p.protocols == "wpan:data"
    # MLE (Thread §4.4) fails the same way, one layer up.
    mle = [p for p in pkts if p.get("mle.sec_suite") == 0]
    assert len(mle) == 30  # tshark -Y mle.sec_suite==0 agrees
    for p in mle:
        assert "MIC check failed" in experts(p, Group.UNDECODED) and p.get("mle.cmd") is None


def test_with_key_every_mac_secured_frame_decrypts() -> None:
    """Key ID Mode 1 frames with the network key; the Key ID Mode 0 JOIN_ENT frames with the KEK the
    MeshCoP dissector finds in the preceding c/tx (when it is loaded), else they say why not."""
    pkts = dissect_all(THREAD_PCAP, prefs=[KEY_PREF])
    learned = kek_is_learned()
    for p in _secured(pkts):
        if p.number in KEK_FRAMES_3 + KEK_FRAMES_4:
            assert p.get("wpan.aux_sec.key_id_mode") == 0
            if learned:
                # rows: 0 thread.network_key, then the KEKs in the order learned
                assert p.get("wpan.key_number") == (1 if p.number in KEK_FRAMES_3 else 2), p.number
                assert "6lowpan" in p.protocols
            else:
                assert "No encryption key set - can't decrypt" in experts(p)
        else:
            assert p.get("wpan.key_number") == 0, p.number
            assert "6lowpan" in p.protocols
            assert p.sources[1].name == "Decrypted IEEE 802.15.4 payload"


def test_short_address_sender_resolved_from_mle() -> None:
    """Frame 17 comes from 0x0c01; frame 14's Address16 TLV gave 0x0c01 to f2:cd:..:80."""
    p = dissect_all(THREAD_PCAP, prefs=[KEY_PREF])[16]
    assert p.get("wpan.src16") == 0x0C01
    assert p.get("wpan.src64") == F2CD and p.get("wpan.src64.origin") == 14
    assert p.get("wpan.key_number") == 0


def test_kek_from_preference_decrypts_join_ent_frames() -> None:
    pkts = dissect_all(THREAD_PCAP, prefs=[KEY_PREF, f"thread.kek:{KEK_JOINER3}"])
    for n in KEK_FRAMES_3:
        p = pkts[n - 1]
        assert p.get("wpan.key_number") == 1, n  # row after thread.network_key
        assert "6lowpan" in p.protocols
    assert "c/je" in "/".join(str(v) for v in pkts[182].values("coap.opt.uri_path")) or not pkts[182].has("coap")
    for n in KEK_FRAMES_4:  # the other joiner's KEK is different: only a learned one can open these
        p = pkts[n - 1]
        if kek_is_learned():
            assert p.get("wpan.key_number") == 3, n  # after network key, -o KEK, learned KEK of joiner 3
        else:
            assert "MIC check failed" in experts(p), n


def test_kek_learned_through_engine_state() -> None:
    """The join-proxy dissector sets state["thread.kek"] when a c/tx carries the KEK TLV."""
    eng = Engine(prefs=[KEY_PREF], tree=True)
    got = {}
    for fr in read_frames(THREAD_PCAP):
        p = eng.dissect(fr)
        if p.number == 169:
            eng.state[tk.STATE_KEK] = bytes.fromhex(KEK_JOINER3)
        if p.number == 311:
            tk.set_kek(eng.state, bytes.fromhex(KEK_JOINER4))
        if p.number in KEK_FRAMES_3 + KEK_FRAMES_4:
            got[p.number] = (p.get("wpan.key_number"), "6lowpan" in p.protocols)
    assert got == {181: (1, True), 183: (1, True), 185: (1, True), 323: (2, True), 325: (2, True), 327: (2, True)}


def _reencrypt_frame17(seq: int, key_index: int) -> bytes:
    """Frame 17 again, secured under key sequence ``seq`` and announcing ``key_index``."""
    fr = read_frames(THREAD_PCAP)[16].data[:-2]
    hdr, payload = bytearray(fr[:15]), fr[15:]
    pt, st = tk.ccm_star_decrypt(tk.mac_key(NK, 0), tk.ccm_nonce(F2CD, 0, 5), 5, bytes(hdr), payload)
    assert st == tk.OK
    hdr[14] = key_index  # aux header: 0x0d, frame counter (4), key index
    body = bytes(hdr) + tk.ccm_star_encrypt(tk.mac_key(NK, seq), tk.ccm_nonce(F2CD, 0, 5), 5, bytes(hdr), pt)
    return body + struct.pack("<H", crc16_itu(body))


def _with_mapping(frame: bytes) -> list[bytes]:
    """The frames that teach 0x0c01 -> f2:cd:... (up to frame 14), then ``frame``."""
    return [f.data for f in read_frames(THREAD_PCAP)[:14]] + [frame]


@pytest.mark.parametrize(("seq", "prefs", "ok"), [
    (1, [], True),                              # index 2: the same 128-block as the default 0
    (129, [], True),                            # index 2 again: the neighbouring block is tried too
    (300, [], False),                           # index 45: two blocks away from 0
    (300, ["thread.key_sequence:256"], True),   # ... found once the sequence is known
])
def test_key_sequence_is_expanded_from_the_key_index(seq: int, prefs: list[str], ok: bool) -> None:
    p = dissect_bytes(_with_mapping(_reencrypt_frame17(seq, tk.key_index_for_sequence(seq))), 195,
                      prefs=[KEY_PREF, *prefs])[-1]
    assert (p.get("wpan.key_number") == 0) is ok
    assert ("MIC check failed" in experts(p)) is (not ok)


def test_key_sequence_learned_from_mle_key_source() -> None:
    """MLE Key ID Mode 2 carries the full key sequence (Thread §4.4); MAC frames use it after."""
    needs_network_layer()
    seq = 300
    # Frames 2-14 (MLE under key sequence 0) teach 0x0c01's EUI-64 and the sequence 0; then frame 1
    # redone under sequence 300 moves the learned sequence on; frame 17 redone under 300 follows.
    frames = ([f.data for f in read_frames(THREAD_PCAP)[1:14]] + [_reencrypt_mle_frame1(seq)]
              + [_reencrypt_frame17(seq, tk.key_index_for_sequence(seq))])
    pkts = dissect_bytes(frames, 195, prefs=[KEY_PREF])
    assert pkts[-2].get("mle.cmd") == 9  # Parent Request, decrypted with the MLE key of sequence 300
    assert pkts[-1].get("wpan.key_number") == 0


def _reencrypt_mle_frame1(seq: int) -> bytes:
    """Capture frame 1 (an MLE Parent Request) with its MLE security redone under ``seq``.

    Thread §4.4: AAD = IPv6 source || IPv6 destination || auxiliary header; nonce from the sender's
    EUI-64. The 6LoWPAN header of frame 1 is IPHC (10 bytes) + UDP NHC; MLE starts at byte 25.
    """
    fr = bytearray(read_frames(THREAD_PCAP)[0].data[:-2])
    mle_at = 15 + 10  # MAC header 15 bytes (no MAC security), IPHC 3 + UDP NHC 7 bytes
    assert fr[mle_at] == 0  # security suite 0
    aux = bytearray(fr[mle_at + 1 : mle_at + 11])  # 0x15, counter (4), key source (4), key index
    src = bytes.fromhex("fe80000000000000" "50e339ea96b254ca")
    dst = bytes.fromhex("ff020000000000000000000000000002")
    sender = bytes.fromhex("52e339ea96b254ca")
    nonce = tk.ccm_nonce(sender, 0, 5)
    pt, st = tk.ccm_star_decrypt(tk.mle_key(NK, 0), nonce, 5, src + dst + bytes(aux), bytes(fr[mle_at + 11 :]))
    assert st == tk.OK
    aux[5:9] = seq.to_bytes(4, "big")
    aux[9] = tk.key_index_for_sequence(seq)
    enc = tk.ccm_star_encrypt(tk.mle_key(NK, seq), nonce, 5, src + dst + bytes(aux), pt)
    body = bytes(fr[: mle_at + 1]) + bytes(aux) + enc
    return body + struct.pack("<H", crc16_itu(body))


def test_decryption_does_not_depend_on_which_fields_are_asked_for() -> None:
    """`read -T fields -e wpan.src64` (no tree, no columns) must still run MLE above UDP: it is MLE
    that maps 0x0c01 to its EUI-64 so frame 17 can be decrypted (the engine's shallow mode)."""
    from jpdissect.model import prime, unprime_all

    unprime_all()
    prime(["wpan.src64", "wpan.key_number"])
    try:
        eng = Engine(prefs=[KEY_PREF], tree=False, cols=False)
        pkts = [eng.dissect(fr) for fr in read_frames(THREAD_PCAP)[:20]]
    finally:
        unprime_all()
    assert pkts[16].get("wpan.src64") == F2CD and pkts[16].get("wpan.key_number") == 0
