"""Thread key schedule and IEEE 802.15.4 CCM* -- the crypto the radio dissectors share.

Thread (spec 1.3 §7.1.2 "Key Hierarchy", OpenThread ``KeyManager::ComputeKeys``) derives both
the MAC key and the MLE key from the network key and a 32-bit *key sequence*::

    HMAC-SHA256(key = network key, msg = key_sequence (4 bytes, big endian) || "Thread")
    first 16 bytes -> MLE key, last 16 bytes -> MAC key

A secured MAC frame names its key only by a 7-bit key index (Key ID Mode 1, index =
(key_sequence mod 128) + 1), so the full sequence has to be rebuilt from a base value (a
preference, or the sequence learned from an MLE frame that carries it in its 4-byte key source,
Key ID Mode 2). MLE itself uses Key ID Mode 2.

IEEE 802.15.4-2015 §9.3 CCM* differs from plain CCM in two ways that matter here: security
levels 1-3 authenticate without encrypting (then the payload goes into the authenticated data),
and level 4 encrypts without a MIC (plain CTR mode with CCM's counter blocks). The nonce is
source extended address (8 bytes, the big-endian EUI-64 as printed) || frame counter (4 bytes,
big endian) || security level (1 byte) (§9.3.2.2).

Everything here is a pure function of its arguments: capture-wide state (learned key
sequences, KEKs, the short->extended address map) lives on the engine, in the dissectors.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

#: The label hashed after the key sequence (Thread 1.3 §7.1.2.1).
THREAD_KEY_LABEL = b"Thread"
#: Length of an AES-128 key and of each derived key.
KEY_LEN = 16
#: Key ID Mode 1 carries only the low 7 bits of the key sequence (plus one).
KEY_INDEX_MODULUS = 128
#: Thread's well-known key for Key ID Mode 2 frames with key source 0xffffffff and key index
#: 0xff (Thread 1.2 §4.9: MLE Discovery / Wake-up frames of joiners); Wireshark knows it too.
THREAD_WELL_KNOWN_KEY = bytes.fromhex("78581686fdb4580fb092546aecbd1566")
THREAD_WELL_KNOWN_KEY_SOURCE = 0xFFFFFFFF
THREAD_WELL_KNOWN_KEY_INDEX = 0xFF
#: Capture-state key the join-proxy dissector sets when it decodes a Joiner Router KEK
#: (MeshCoP TLV 21 in a ``c/tx``): bytes, or an iterable of bytes (newest last).
STATE_KEK = "thread.kek"

#: MIC length M (bytes) per security level, IEEE 802.15.4-2015 Table 9-6.
MIC_LEN = (0, 4, 8, 16, 0, 4, 8, 16)
SECURITY_LEVEL_NAMES = {
    0: "No Security",
    1: "32-bit Message Integrity Code",
    2: "64-bit Message Integrity Code",
    3: "128-bit Message Integrity Code",
    4: "Encryption",
    5: "Encryption with 32-bit Message Integrity Code",
    6: "Encryption with 64-bit Message Integrity Code",
    7: "Encryption with 128-bit Message Integrity Code",
}

# Decryption outcomes (mirroring Wireshark's ws_decrypt_status where it has one).
OK = "ok"                    # MIC verified (or nothing to verify at level 0)
UNVERIFIED = "unverified"    # level 4: encrypted, no MIC -- plaintext cannot be checked
MIC_FAILED = "mic_failed"    # wrong key, wrong nonce or damaged frame
TOO_SMALL = "too_small"      # shorter than its MIC


def is_encrypted(level: int) -> bool:
    return level >= 4


def mic_length(level: int) -> int:
    return MIC_LEN[level & 7]


@lru_cache(maxsize=256)
def derive_keys(network_key: bytes, key_sequence: int) -> tuple[bytes, bytes]:
    """(MLE key, MAC key) for one key sequence; memoised because every frame asks again."""
    msg = (key_sequence & 0xFFFFFFFF).to_bytes(4, "big") + THREAD_KEY_LABEL
    digest = hmac.new(network_key, msg, hashlib.sha256).digest()
    return digest[:KEY_LEN], digest[KEY_LEN:]


def mac_key(network_key: bytes, key_sequence: int) -> bytes:
    return derive_keys(network_key, key_sequence)[1]


def mle_key(network_key: bytes, key_sequence: int) -> bytes:
    return derive_keys(network_key, key_sequence)[0]


def key_index_for_sequence(key_sequence: int) -> int:
    """Key ID Mode 1 key index a sender uses for a key sequence (Thread 1.3 §7.2.2.2.1)."""
    return (key_sequence % KEY_INDEX_MODULUS) + 1


def sequences_for_key_index(key_index: int, base_sequence: int) -> list[int]:
    """Key sequences a key index may stand for, nearest to ``base_sequence`` first.

    The index keeps only 7 bits, so the candidate in the same 128-block as the base comes first,
    then its neighbours one block up and down (a key rotation across a block boundary; Wireshark
    tries the same "wraparound" alternative by flipping bit 7).
    """
    low = (key_index - 1) % KEY_INDEX_MODULUS
    base = max(0, base_sequence)
    same = (base - base % KEY_INDEX_MODULUS) + low
    cands = [same, same + KEY_INDEX_MODULUS, same - KEY_INDEX_MODULUS]
    cands = [c for c in cands if 0 <= c <= 0xFFFFFFFF]
    cands.sort(key=lambda c: abs(c - base))
    return cands


def ccm_nonce(ext_addr: bytes, frame_counter: int, level: int) -> bytes:
    """CCM* nonce (IEEE 802.15.4-2015 §9.3.2.2): EUI-64 (big endian) || counter || level."""
    return bytes(ext_addr) + (frame_counter & 0xFFFFFFFF).to_bytes(4, "big") + bytes([level & 7])


@lru_cache(maxsize=64)
def _aesccm(key: bytes, tag_len: int) -> AESCCM:
    return AESCCM(key, tag_length=tag_len)


def ccm_star_decrypt(
    key: bytes, nonce: bytes, level: int, aad: bytes, payload: bytes
) -> tuple[bytes, str]:
    """Undo CCM* on ``payload`` (which ends with the MIC).

    Returns ``(plaintext without MIC, status)``. On a MIC failure of an encrypted frame the
    plaintext returned is still the CTR decryption, so a caller can choose to show it; callers
    following Wireshark show the ciphertext instead.
    """
    level &= 7
    m = MIC_LEN[level]
    if len(payload) < m:
        return payload, TOO_SMALL
    if level == 0:
        return payload, OK
    body = payload[: len(payload) - m]
    if not is_encrypted(level):
        # Levels 1-3: a = header || payload, m = empty (§9.3.4.1, "authentication only").
        try:
            _aesccm(key, m).decrypt(nonce, payload[len(payload) - m :], aad + body)
            return body, OK
        except InvalidTag:
            return body, MIC_FAILED
    if m == 0:
        return _ctr(key, nonce, body, 1), UNVERIFIED
    try:
        return _aesccm(key, m).decrypt(nonce, payload, aad), OK
    except InvalidTag:
        return _ctr(key, nonce, body, 1), MIC_FAILED


def ccm_star_encrypt(key: bytes, nonce: bytes, level: int, aad: bytes, plaintext: bytes) -> bytes:
    """The inverse of :func:`ccm_star_decrypt` (payload || MIC); tests build frames with it."""
    level &= 7
    m = MIC_LEN[level]
    if level == 0:
        return plaintext
    if not is_encrypted(level):
        tag = _aesccm(key, m).encrypt(nonce, b"", aad + plaintext)
        return plaintext + tag
    if m == 0:
        return _ctr(key, nonce, plaintext, 1)
    return _aesccm(key, m).encrypt(nonce, plaintext, aad)


def _ctr(key: bytes, nonce: bytes, data: bytes, first_counter: int) -> bytes:
    """CCM counter-mode keystream: A_i = flags(L-1 = 1) || nonce || i (RFC 3610 §2.3)."""
    iv = b"\x01" + nonce + first_counter.to_bytes(2, "big")
    dec = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def kek_candidates(state: dict[str, Any], pref_kek: bytes | None) -> list[bytes]:
    """Every KEK known so far, newest first: the ``-o thread.kek`` value and those learned.

    The join-proxy dissector sets ``state["thread.kek"]`` (bytes, or several) when a ``c/tx``
    carries a Joiner Router KEK TLV; a later join overwrites it, so the history is kept here.
    """
    hist: list[bytes] = state.setdefault("thread.kek_history", [])
    cur = state.get(STATE_KEK)
    if cur:
        items: Iterable[Any] = [cur] if isinstance(cur, bytes | bytearray) else cur
        for k in items:
            k = bytes(k)
            if len(k) == KEY_LEN and k not in hist:
                hist.append(k)
    out = list(reversed(hist))
    if pref_kek and len(pref_kek) == KEY_LEN and pref_kek not in out:
        out.insert(0, bytes(pref_kek))
    return out


def set_kek(state: dict[str, Any], kek: bytes) -> None:
    """Record a Joiner Router KEK (for the join-proxy dissector): later KEK frames try it."""
    if len(kek) != KEY_LEN:
        return
    hist: list[bytes] = state.setdefault("thread.kek_history", [])
    if kek not in hist:
        hist.append(bytes(kek))
    state[STATE_KEK] = bytes(kek)
