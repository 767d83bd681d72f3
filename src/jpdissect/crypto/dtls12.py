"""DTLS 1.2 record decryption: master secret, key block, AEAD records, then the plaintext dissected.

Where the keys come from, in order:

1. the key log (``CLIENT_RANDOM <client random> <master secret>``; a file or pcapng DSBs), indexed
   by the session's client random -- works for every key exchange;
2. for a resumed session, the master secret of the earlier session with the same session ID;
3. the ``dtls.psk`` preference for plain PSK suites: premaster secret per RFC 4279 §2, master
   secret per RFC 5246 §8.1, or RFC 7627 §4 (extended master secret) when the ServerHello
   negotiated it -- that needs the handshake transcript, which the DTLS dissector feeds to
   :func:`handshake_message`.

Record protection (AEAD only -- the suites constrained devices use): AES-GCM (RFC 5288), AES-CCM and
AES-CCM-8 (RFC 6655 / RFC 7251), ChaCha20-Poly1305 (RFC 7905). The DTLS AAD uses the 16-bit epoch
and 48-bit sequence number as TLS's 64-bit ``seq_num`` (RFC 6347 §4.1.2.1); RFC 9146 CID records use
their own AAD and inner plaintext.

Handshake hash. RFC 6347 §4.2.6 computes the transcript over each message *as if sent as one
fragment*: the 12-byte DTLS header with fragment_offset 0 and fragment_length = length, then the body.
The first ClientHello and the HelloVerifyRequest are left out (RFC 6347 §4.2.1). The tests check this
against OpenSSL by recomputing both Finished messages and the PSK sessions' master secrets.

The dissector hooks (one call each, see the module ``__all__``) never raise and never change what the
DTLS dissector already showed; they add the decrypted view beside it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from jpdissect.crypto.keylog import EngineSecrets, configured_secrets
from jpdissect.dissectors import dtls_handshake as HS
from jpdissect.dissectors import dtls_names as N
from jpdissect.dissectors.coap import looks_like_coap
from jpdissect.dissectors.dtls_fields import FD, P
from jpdissect.model import FT, F, Group, Node, Packet, Severity

# ---------------------------------------------------------------------------
# Constants

DTLS12 = 0xFEFD
RECORD_HEADER = 13           # RFC 6347 §4.1
HANDSHAKE_HEADER = 12        # RFC 6347 §4.2.2
MASTER_SECRET_LEN = 48       # RFC 5246 §8.1
VERIFY_DATA_LEN = 12         # RFC 5246 §7.4.9
EXPLICIT_NONCE_LEN = 8       # RFC 5288 §3 / RFC 6655 §3: record_iv_length
CHACHA_NONCE_LEN = 12        # RFC 7905 §2: the per-record nonce is as long as the 12-byte IV
CID_PLACEHOLDER = b"\xff" * 8  # RFC 9146 §5: seq_num_placeholder
CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APP, CT_CID = 20, 21, 22, 23, 25
HT_CLIENT_HELLO, HT_SERVER_HELLO, HT_HVR, HT_CKE, HT_FINISHED = 1, 2, 3, 16, 20
EXT_EXTENDED_MASTER_SECRET = 23  # RFC 7627 §5.1
#: Handshake messages kept per session for the transcript (a DTLS 1.2 handshake has ~12).
MAX_TRANSCRIPT_MESSAGES = 64
#: Largest plaintext handshake message re-parsed from a decrypted record.
MAX_DECRYPTED_HS = 1 << 16
#: Session IDs remembered for resumption.
MAX_RESUMABLE = 100_000
STATE_KEY = "crypto.dtls12"
COAPS_PORT = 5684            # RFC 7252 §12.7
SOURCE_NAME = "Decrypted DTLS"
_HDR = struct.Struct("!BHHHI")  # type, version, epoch, sequence number (16 + 32 bits)
#: The record AAD (RFC 5246 §6.2.3.3): epoch | seq (16 + 32 bits) | type | version | length.
_AAD = struct.Struct("!HHIBHH")
#: The middle of an RFC 9146 §5 CID record AAD: version | epoch | seq (16 + 32 bits).
_CID_AAD = struct.Struct("!HHHI")

C2S, S2C = 0, 1

# ---------------------------------------------------------------------------
# Fields added by decryption (on the DTLS protocol: they describe DTLS records)

FX = P.declare(
    F("dtls.decrypted", "Decrypted Record", FT.NONE, "jpdissect: the record's plaintext after AEAD "
      "verification"),
    F("dtls.decrypted.content_type", "Content Type", FT.UINT8, "Inner content type (RFC 9146 §4, "
      "RFC 9147 §4)"),
    F("dtls.decrypted.length", "Plaintext Length", FT.UINT32),
    F("dtls.decrypted.data", "Plaintext", FT.BYTES),
    F("dtls.decrypted.key_source", "Key Source", FT.STRING, "Where the session keys came from"),
    F("dtls.decrypted.epoch", "Epoch", FT.UINT64, "RFC 9147 §4.2.2: the reconstructed epoch"),
    F("dtls.decrypted.sequence_number", "Sequence Number", FT.UINT64,
      "RFC 9147 §4.2.3: the decrypted, reconstructed record sequence number"),
    F("dtls.decrypted.finished_verified", "Finished verify_data correct", FT.BOOLEAN,
      "verify_data recomputed from the master secret and the handshake transcript (RFC 5246 §7.4.9)"),
    F("dtls.decrypted.extended_master_secret", "Extended Master Secret", FT.BOOLEAN, "RFC 7627"),
)
FX.decrypted_content_type.strings = N.CONTENT_TYPES

# ---------------------------------------------------------------------------
# Cipher suites (AEAD only)


@dataclass(frozen=True, slots=True)
class Suite:
    """What record protection and key derivation need to know about a cipher suite."""

    name: str
    aead: str            # "gcm" | "ccm" | "chacha"
    key_len: int
    tag_len: int
    prf_hash: str        # "sha256" | "sha384"
    psk_only: bool = False  # plain PSK key exchange: premaster from the PSK alone (RFC 4279 §2)

    @property
    def fixed_iv_len(self) -> int:
        """RFC 5288 §3 / RFC 6655 §3: 4-byte salt; RFC 7905 §2: 12-byte IV."""
        return 12 if self.aead == "chacha" else 4

    @property
    def explicit_len(self) -> int:
        return 0 if self.aead == "chacha" else EXPLICIT_NONCE_LEN


def _s(name: str, aead: str, key: int, tag: int, h: str = "sha256", psk: bool = False) -> Suite:
    return Suite(name, aead, key, tag, h, psk)


SUITES: dict[int, Suite] = {
    # RFC 5288 / RFC 5289 / RFC 5487 GCM
    0x009C: _s("TLS_RSA_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0x009D: _s("TLS_RSA_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0x009E: _s("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0x009F: _s("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0x00A8: _s("TLS_PSK_WITH_AES_128_GCM_SHA256", "gcm", 16, 16, psk=True),
    0x00A9: _s("TLS_PSK_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384", psk=True),
    0x00AA: _s("TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0x00AB: _s("TLS_DHE_PSK_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0x00AC: _s("TLS_RSA_PSK_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0x00AD: _s("TLS_RSA_PSK_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0xC02B: _s("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0xC02C: _s("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0xC02D: _s("TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0xC02E: _s("TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0xC02F: _s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0xC030: _s("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0xC031: _s("TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0xC032: _s("TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    # RFC 6655 / RFC 7251 CCM and CCM_8
    0xC09C: _s("TLS_RSA_WITH_AES_128_CCM", "ccm", 16, 16),
    0xC09D: _s("TLS_RSA_WITH_AES_256_CCM", "ccm", 32, 16),
    0xC09E: _s("TLS_DHE_RSA_WITH_AES_128_CCM", "ccm", 16, 16),
    0xC09F: _s("TLS_DHE_RSA_WITH_AES_256_CCM", "ccm", 32, 16),
    0xC0A0: _s("TLS_RSA_WITH_AES_128_CCM_8", "ccm", 16, 8),
    0xC0A1: _s("TLS_RSA_WITH_AES_256_CCM_8", "ccm", 32, 8),
    0xC0A2: _s("TLS_DHE_RSA_WITH_AES_128_CCM_8", "ccm", 16, 8),
    0xC0A3: _s("TLS_DHE_RSA_WITH_AES_256_CCM_8", "ccm", 32, 8),
    0xC0A4: _s("TLS_PSK_WITH_AES_128_CCM", "ccm", 16, 16, psk=True),
    0xC0A5: _s("TLS_PSK_WITH_AES_256_CCM", "ccm", 32, 16, psk=True),
    0xC0A6: _s("TLS_DHE_PSK_WITH_AES_128_CCM", "ccm", 16, 16),
    0xC0A7: _s("TLS_DHE_PSK_WITH_AES_256_CCM", "ccm", 32, 16),
    0xC0A8: _s("TLS_PSK_WITH_AES_128_CCM_8", "ccm", 16, 8, psk=True),
    0xC0A9: _s("TLS_PSK_WITH_AES_256_CCM_8", "ccm", 32, 8, psk=True),
    0xC0AA: _s("TLS_PSK_DHE_WITH_AES_128_CCM_8", "ccm", 16, 8),
    0xC0AB: _s("TLS_PSK_DHE_WITH_AES_256_CCM_8", "ccm", 32, 8),
    0xC0AC: _s("TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ccm", 16, 16),
    0xC0AD: _s("TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "ccm", 32, 16),
    0xC0AE: _s("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", "ccm", 16, 8),
    0xC0AF: _s("TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8", "ccm", 32, 8),
    0xC0FF: _s("TLS_ECJPAKE_WITH_AES_128_CCM_8", "ccm", 16, 8),  # Thread; keys only from a key log
    # RFC 8442 ECDHE_PSK
    0xD001: _s("TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256", "gcm", 16, 16),
    0xD002: _s("TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384", "gcm", 32, 16, "sha384"),
    0xD003: _s("TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256", "ccm", 16, 8),
    0xD005: _s("TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256", "ccm", 16, 16),
    # RFC 7905 ChaCha20-Poly1305
    0xCCA8: _s("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16),
    0xCCA9: _s("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16),
    0xCCAA: _s("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16),
    0xCCAB: _s("TLS_PSK_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16, psk=True),
    0xCCAC: _s("TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16),
    0xCCAD: _s("TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16),
    0xCCAE: _s("TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, 16),
}

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}

# ---------------------------------------------------------------------------
# Key derivation (RFC 5246 §5, §6.3, §8.1; RFC 4279 §2; RFC 7627 §4)


def _hmac(h: str, key: bytes, data: bytes) -> bytes:
    m = hmac.HMAC(key, _HASHES[h]())
    m.update(data)
    return m.finalize()


def digest(h: str, data: bytes) -> bytes:
    d = hashes.Hash(_HASHES[h]())
    d.update(data)
    return d.finalize()


def prf(secret: bytes, label: bytes, seed: bytes, length: int, h: str = "sha256") -> bytes:
    """TLS 1.2 PRF = P_<hash>(secret, label + seed) (RFC 5246 §5)."""
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = _hmac(h, secret, a)
        out += _hmac(h, secret, a + seed)
    return bytes(out[:length])


def psk_premaster(psk: bytes) -> bytes:
    """RFC 4279 §2: uint16 N, N zero octets, uint16 N, the N-octet PSK."""
    n = len(psk).to_bytes(2, "big")
    return n + bytes(len(psk)) + n + psk


def master_secret(premaster: bytes, client_random: bytes, server_random: bytes, h: str = "sha256",
                  session_hash: bytes | None = None) -> bytes:
    """RFC 5246 §8.1, or RFC 7627 §4 ("extended master secret" over the session hash) when given."""
    if session_hash is not None:
        return prf(premaster, b"extended master secret", session_hash, MASTER_SECRET_LEN, h)
    return prf(premaster, b"master secret", client_random + server_random, MASTER_SECRET_LEN, h)


@dataclass(slots=True)
class KeyBlock:
    client_key: bytes
    server_key: bytes
    client_iv: bytes
    server_iv: bytes


def key_block(ms: bytes, client_random: bytes, server_random: bytes, suite: Suite) -> KeyBlock:
    """RFC 5246 §6.3: key_block = PRF(master, "key expansion", server_random + client_random).

    AEAD suites have no MAC keys (mac_key_length 0), so the block is client/server write keys then
    client/server write IVs (the fixed part of the nonce).
    """
    k, iv = suite.key_len, suite.fixed_iv_len
    kb = prf(ms, b"key expansion", server_random + client_random, 2 * k + 2 * iv, suite.prf_hash)
    return KeyBlock(kb[:k], kb[k:2 * k], kb[2 * k:2 * k + iv], kb[2 * k + iv:])


def finished_verify_data(ms: bytes, from_client: bool, transcript_hash: bytes, h: str = "sha256") -> bytes:
    """RFC 5246 §7.4.9: PRF(master, "client finished"/"server finished", Hash(handshake_messages))[:12]."""
    label = b"client finished" if from_client else b"server finished"
    return prf(ms, label, transcript_hash, VERIFY_DATA_LEN, h)


# ---------------------------------------------------------------------------
# Record protection


def _aead(suite: Suite, key: bytes) -> Any:
    if suite.aead == "gcm":
        return AESGCM(key)
    if suite.aead == "ccm":
        return AESCCM(key, tag_length=suite.tag_len)
    return ChaCha20Poly1305(key)


class DecryptError(Exception):
    """A record that cannot be opened: ``reason`` is the expert text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RecordKeys:
    """One direction's keys for one epoch: opens DTLSCiphertext records.

    Made once per (direction, epoch) by :func:`resolve_keys` and kept on the session, so everything
    that depends only on the key -- the AEAD object (its key schedule), the explicit-nonce and tag
    lengths, the ChaCha20 IV as an integer -- is computed here and not per record.
    """

    __slots__ = ("suite", "aead", "iv", "explicit", "tag_len", "_iv_int")

    def __init__(self, suite: Suite, key: bytes, iv: bytes) -> None:
        self.suite = suite
        self.aead = _aead(suite, key)
        self.iv = iv
        self.explicit = suite.explicit_len
        self.tag_len = suite.tag_len
        self._iv_int = int.from_bytes(iv, "big")

    def open(self, ct: int, version: int, epoch: int, seq: int, payload: bytes,
             cid: bytes | None = None) -> bytes:
        """Decrypt and verify one record's fragment; raises :class:`DecryptError`.

        AAD (RFC 5246 §6.2.3.3 with RFC 6347 §4.1.2.1's seq_num = epoch | sequence_number):
        ``seq_num | type | version | plaintext length``; for RFC 9146 CID records:
        ``seq_num_placeholder | tls12_cid | cid_length | tls12_cid | version | epoch | seq | cid |
        length_of_DTLSInnerPlaintext``.
        """
        ex = self.explicit
        plen = len(payload) - ex - self.tag_len
        if plen < 0:
            raise DecryptError(f"record of {len(payload)} bytes is shorter than the "
                               f"{ex}-byte explicit nonce and {self.tag_len}-byte tag")
        if ex:  # RFC 5288 §3 / RFC 6655 §3: nonce = salt(4) | explicit nonce(8)
            nonce = self.iv + payload[:ex]
            data = payload[ex:]
        else:   # RFC 7905 §2: nonce = IV xor (64-bit seq_num, left-padded)
            nonce = (self._iv_int ^ (epoch << 48 | seq)).to_bytes(CHACHA_NONCE_LEN, "big")
            data = payload
        if cid is None:
            aad = _AAD.pack(epoch, seq >> 32, seq & 0xFFFFFFFF, ct, version, plen)
        else:
            aad = (CID_PLACEHOLDER + bytes([CT_CID, len(cid), CT_CID])
                   + _CID_AAD.pack(version, epoch, seq >> 32, seq & 0xFFFFFFFF) + cid
                   + plen.to_bytes(2, "big"))
        try:
            return self.aead.decrypt(nonce, data, aad)
        except InvalidTag:
            raise DecryptError("authentication tag mismatch: wrong key for this session, or the "
                               "record was altered") from None


def inner_plaintext(pt: bytes) -> tuple[int, bytes] | None:
    """RFC 9146 §4 / RFC 8446 §5.4: content | real type | zero padding -> (type, content)."""
    i = len(pt) - 1
    while i >= 0 and pt[i] == 0:
        i -= 1
    if i < 0:
        return None
    return pt[i], pt[:i]


# ---------------------------------------------------------------------------
# Per-session state


@dataclass
class SessionState:
    """What decrypting one DTLS 1.2 session needs, kept on the engine."""

    transcript: list[tuple[int, int, int, bytes]] = field(default_factory=list)  # (dir, type, seq, body)
    cke_count: int | None = None  # messages in the transcript up to and including ClientKeyExchange
    master: bytes | None = None
    key_source: str = ""
    ems: bool = False
    keys: dict[tuple[int, int], RecordKeys] = field(default_factory=dict)
    overflow: bool = False


@dataclass
class Dtls12State:
    by_session_id: dict[bytes, tuple[bytes, str]] = field(default_factory=dict)


def _state(cap: Any) -> Dtls12State:
    st = cap.state.get(STATE_KEY)
    if st is None:
        st = cap.state[STATE_KEY] = Dtls12State()
    return st


def session_state(cap: Any, sess: Any) -> SessionState:
    """The decryption state of one DTLS session, kept on the session (``sess.attached``): it lives
    exactly as long as the session, which :mod:`jpdissect.dtls_sessions` forgets once it is over."""
    s: SessionState | None = sess.attached.get(STATE_KEY)
    if s is None:
        s = sess.attached[STATE_KEY] = SessionState()
    return s


def _hs_header(mt: int, mseq: int, body: bytes) -> bytes:
    """RFC 6347 §4.2.6: the message as one fragment (offset 0, fragment_length = length)."""
    n = len(body).to_bytes(3, "big")
    return bytes([mt]) + n + mseq.to_bytes(2, "big") + b"\0\0\0" + n


def transcript_bytes(msgs: list[tuple[int, int, int, bytes]]) -> bytes:
    return b"".join(_hs_header(mt, mseq, body) + body for _d, mt, mseq, body in msgs)


def _ordered(msgs: list[tuple[int, int, int, bytes]]) -> list[tuple[int, int, int, bytes]]:
    """Completion order, with each run of one sender's messages put back in message_seq order
    (a reordered flight completes out of order; RFC 6347 §4.2.2 numbers messages per sender)."""
    out: list[tuple[int, int, int, bytes]] = []
    run: list[tuple[int, int, int, bytes]] = []
    for m in msgs:
        if run and run[-1][0] != m[0]:
            out.extend(sorted(run, key=lambda x: x[2]))
            run = []
        run.append(m)
    out.extend(sorted(run, key=lambda x: x[2]))
    return out


def _server_hello_ems(body: bytes) -> bool:
    """Whether a ServerHello carries extended_master_secret (RFC 7627 §5.1)."""
    p = 34
    if len(body) < p + 1:
        return False
    p += 1 + body[p]            # session_id
    p += 3                      # cipher_suite, compression_method
    if p + 2 > len(body):
        return False
    end = min(len(body), p + 2 + ((body[p] << 8) | body[p + 1]))
    p += 2
    while p + 4 <= end:
        et = (body[p] << 8) | body[p + 1]
        ln = (body[p + 2] << 8) | body[p + 3]
        if et == EXT_EXTENDED_MASTER_SECRET:
            return True
        p += 4 + ln
    return False


def _ems_from_session(sess: Any) -> bool | None:
    """EMS negotiated? From the ServerHello the DTLS dissector reassembled (None: not seen)."""
    done = getattr(sess, "done", None) or {}
    sr = getattr(sess, "server_random", None)
    for (d, _mseq), (body, _frame) in list(done.items()):
        if d == S2C and sr is not None and len(body) >= 34 and body[2:34] == sr:
            return _server_hello_ems(body)
    return None


# ---------------------------------------------------------------------------
# Hook 1: the DTLS dissector reports every newly complete plaintext handshake message


def handshake_message(ctx: Any, mt: int, mseq: int, body: bytes) -> None:
    """Record one complete handshake message for the session's transcript (live, first copy only)."""
    sess = ctx.sess
    if sess is None or not ctx.live:
        return
    cap = ctx.pkt.cap
    if not (cap.secrets or cap.prefs.get("dtls.keylog_file") or cap.prefs.get("dtls.psk")):
        return  # no secret to decrypt with: keep no transcript (time and memory on big captures)
    s = session_state(cap, sess)
    _add_transcript(s, ctx.dir, mt, mseq, body)


def _add_transcript(s: SessionState, d: int, mt: int, mseq: int, body: bytes) -> None:
    if mt == HT_HVR:
        # RFC 6347 §4.2.1: the first ClientHello and the HelloVerifyRequest are not hashed.
        s.transcript.clear()
        s.cke_count = None
        return
    if mt == HT_CLIENT_HELLO and any(m[1] == HT_CLIENT_HELLO for m in s.transcript):
        s.transcript = [m for m in s.transcript if m[1] != HT_CLIENT_HELLO]  # a repeated hello
    if any(m[0] == d and m[2] == mseq and m[1] == mt for m in s.transcript):
        return  # a retransmitted message (RFC 6347 §4.2.4) is hashed once
    if len(s.transcript) >= MAX_TRANSCRIPT_MESSAGES:
        s.overflow = True
        return
    s.transcript.append((d, mt, mseq, bytes(body)))
    if mt == HT_SERVER_HELLO:
        s.ems = _server_hello_ems(body)
    elif mt == HT_CKE:
        s.cke_count = len(s.transcript)


# ---------------------------------------------------------------------------
# Keys for a session


def _short(b: bytes | None) -> str:
    return b.hex()[:16] + "…" if b else "?"


def resolve_keys(cap: Any, sess: Any, s: SessionState, sec: EngineSecrets, d: int,
                 epoch: int) -> RecordKeys | str:
    """The record keys for (direction, epoch), or the reason there are none."""
    k = s.keys.get((d, epoch))
    if k is not None:
        return k
    if epoch != 1:
        return (f"epoch {epoch}: keys of a renegotiated handshake are not derived (only epoch 1)"
                if epoch > 1 else "epoch 0 is not encrypted")
    version = getattr(sess, "version", None)
    if version is not None and version != DTLS12:
        return f"DTLS version 0x{version:04x} records are not decrypted (DTLS 1.2 AEAD suites only)"
    cs = getattr(sess, "cipher_suite", None)
    if cs is None:
        return "no ServerHello seen for this session: cipher suite unknown"
    suite = SUITES.get(cs)
    if suite is None:
        return f"cipher suite 0x{cs:04x} is not supported for decryption (AEAD suites only)"
    cr, sr = getattr(sess, "client_random", None), getattr(sess, "server_random", None)
    if cr is None or sr is None:
        return "client or server random not seen: no key for this session"
    if s.master is None:
        why = _master(cap, sess, s, sec, suite, cr, sr)
        if why:
            return why
    assert s.master is not None
    kb = key_block(s.master, cr, sr, suite)
    s.keys[(C2S, 1)] = RecordKeys(suite, kb.client_key, kb.client_iv)
    s.keys[(S2C, 1)] = RecordKeys(suite, kb.server_key, kb.server_iv)
    return s.keys[(d, 1)]


def _master(cap: Any, sess: Any, s: SessionState, sec: EngineSecrets, suite: Suite, cr: bytes,
            sr: bytes) -> str:
    ms = sec.keylog.master_secret(cr)
    st = _state(cap)
    sid = getattr(sess, "session_id", None)
    if ms is not None:
        s.master, s.key_source = ms, "key log (CLIENT_RANDOM)"
    elif getattr(sess, "resumed", False) and sid and sid in st.by_session_id:
        s.master, src = st.by_session_id[sid]
        s.key_source = f"resumed session ({src})"
    else:
        psk = cap.prefs.get("dtls.psk") or b""
        if psk and suite.psk_only:
            ems = s.ems or bool(_ems_from_session(sess))
            pre = psk_premaster(psk)
            if ems:
                if s.cke_count is None:
                    return ("extended master secret negotiated (RFC 7627): the PSK needs the handshake "
                            "transcript up to ClientKeyExchange, which was not seen")
                h = digest(suite.prf_hash, transcript_bytes(_ordered(s.transcript[:s.cke_count])))
                s.master = master_secret(pre, cr, sr, suite.prf_hash, h)
                s.ems = True
                s.key_source = "dtls.psk (extended master secret)"
            else:
                s.master = master_secret(pre, cr, sr, suite.prf_hash)
                s.key_source = "dtls.psk"
        else:
            parts = [f"no CLIENT_RANDOM in the key log for client random {_short(cr)}"]
            if suite.psk_only and not psk:
                parts.append("no dtls.psk")
            elif psk and not suite.psk_only:
                parts.append(f"dtls.psk does not apply to {suite.name}")
            if sec.file_error:
                parts.append(sec.file_error)
            return "no key for this session: " + "; ".join(parts)
    if sid:
        if len(st.by_session_id) >= MAX_RESUMABLE:
            st.by_session_id.pop(next(iter(st.by_session_id)))
        st.by_session_id[sid] = (s.master, s.key_source)
    return ""


# ---------------------------------------------------------------------------
# Hook 2: every protected record (epoch > 0, or CID) of a DTLS 1.0/1.2 session


ENCRYPTED_INFOS = frozenset({"Encrypted Handshake Message", "Application Data", "Encrypted Alert",
                             "Connection ID", "Encrypted Heartbeat", "Encrypted Ack", "Encrypted Record",
                             "Change Cipher Spec"})


def decrypt_record(ctx: Any, rec: Node, buf: bytes, off: int, p: int, rend: int, src: int,
                   copy: bool = False) -> bool:
    """Decrypt the protected record ``buf[off:rend]`` (header at ``off``, fragment at ``p``).

    Returns True when a plaintext was shown. Says nothing when no DTLS secret was configured at all
    (as tshark without keys), and adds a Decryption expert note otherwise.
    """
    pkt: Packet = ctx.pkt
    sess = ctx.sess
    cap = pkt.cap
    if sess is None or cap is None or not getattr(sess, "index", 0):
        return False
    sec = configured_secrets(cap)
    if sec is None:
        return False
    try:
        return _decrypt_record(ctx, pkt, sess, sec, rec, buf, off, p, rend, src, copy)
    except Exception as exc:  # noqa: BLE001 - a decryption bug must not lose the frame
        pkt.expert(rec, Severity.ERROR, Group.DECRYPTION,
                   f"Decryption failed unexpectedly: {type(exc).__name__}: {exc}", off)
        return False


def _decrypt_record(ctx: Any, pkt: Packet, sess: Any, sec: EngineSecrets, rec: Node, buf: bytes,
                    off: int, p: int, rend: int, src: int, copy: bool) -> bool:
    cap = pkt.cap
    ct, version, epoch, seq_hi, seq_lo = _HDR.unpack_from(buf, off)
    if ct == CT_CCS:
        return False  # RFC 6347 §4.1: a CCS is never encrypted at the epoch it announces
    seq = (seq_hi << 32) | seq_lo
    cid = bytes(buf[off + 11:p - 2]) if ct == CT_CID else None
    s = session_state(cap, sess)
    keys = s.keys.get((ctx.dir, epoch)) or resolve_keys(cap, sess, s, sec, ctx.dir, epoch)
    if isinstance(keys, str):
        pkt.expert(rec, Severity.NOTE, Group.DECRYPTION, f"Not decrypted: {keys}", off, rend - off)
        return False
    try:
        pt = keys.open(ct, version, epoch, seq, buf[p:rend], cid)
    except DecryptError as e:
        pkt.expert(rec, Severity.WARN, Group.DECRYPTION, f"Decryption failed: {e.reason}", off, rend - off)
        return False
    inner = ct
    if cid is not None:
        r = inner_plaintext(pt)
        if r is None:
            pkt.expert(rec, Severity.WARN, Group.DECRYPTION,
                       "RFC 9146 §4: DTLSInnerPlaintext is all zeros (no content type)", off)
            return False
        inner, pt = r
    # Only a handshake record can hold a Finished to verify: no closure for application data.
    verify = (lambda d, mseq, vd: _verify_finished(s, sess, d, mseq, vd)) if inner == CT_HANDSHAKE else None
    show_plaintext(ctx, rec, pt, inner, s.key_source, copy, src_off=p, src_len=rend - p, verify=verify)
    return True


def _verify_finished(s: SessionState, sess: Any, d: int, mseq: int, vd: bytes) -> bool | None:
    """Recompute a Finished from the transcript before it; None when the transcript is incomplete.

    A retransmitted Finished (same sender and message_seq) is checked against the transcript as it
    stood before the original.
    """
    if s.master is None or not s.transcript or s.overflow:
        return None
    suite = SUITES.get(getattr(sess, "cipher_suite", -1) or -1)
    if suite is None:
        return None
    msgs = _ordered(s.transcript)
    for i, m in enumerate(msgs):
        if m[0] == d and m[1] == HT_FINISHED and m[2] == mseq:
            msgs = msgs[:i]
            break
    h = digest(suite.prf_hash, transcript_bytes(msgs))
    return finished_verify_data(s.master, d == C2S, h, suite.prf_hash) == vd


# ---------------------------------------------------------------------------
# Showing a plaintext (shared with DTLS 1.3)


def show_plaintext(ctx: Any, rec: Node, pt: bytes, inner: int, key_source: str, copy: bool, *,
                   src_off: int, src_len: int,
                   verify: Callable[[int, int, bytes], bool | None] | None = None,
                   epoch: int | None = None, seq: int | None = None) -> None:
    """Add the decrypted record: a data source, the header of what is inside, then the content.

    Handshake messages are decoded with the DTLS dissector's own body decoder; alerts with its
    fields; application data goes to CoAP (the protocol over coaps, RFC 7252 §9) when it parses as
    CoAP, else to ``data``.
    """
    pkt: Packet = ctx.pkt
    s2 = pkt.add_source(SOURCE_NAME, pt)
    node = rec
    # P.primed (any dtls.* field asked for) covers the decryption fields, which are DTLS fields: one
    # attribute test per record; with another dtls field primed, the adds below are no-ops.
    if pkt.tree or P.primed:
        node = rec.add(FX.decrypted, None, src_off, src_len)
        if node is not rec:
            node.src = s2
            node.offset, node.length = 0, len(pt)
        node.add(FX.decrypted_content_type, inner, 0, 0, generated=True)
        node.add(FX.decrypted_length, len(pt), 0, len(pt), generated=True)
        if epoch is not None:
            node.add(FX.decrypted_epoch, epoch, 0, 0, generated=True)
        if seq is not None:
            node.add(FX.decrypted_sequence_number, seq, 0, 0, generated=True)
        if key_source:
            node.add(FX.decrypted_key_source, key_source, 0, 0, generated=True)
        if pkt.tree or FX.decrypted_data.primed:
            node.add(FX.decrypted_data, pt, 0, len(pt))
        if pkt.tree and node is not rec:
            node.label = f"Decrypted {N.CONTENT_TYPES.get(inner, f'content type {inner}')} ({len(pt)} bytes)"
    infos = ctx.infos
    if inner == CT_HANDSHAKE:
        info = _handshake(ctx, node, pt, s2, copy, verify)
    elif inner == CT_ALERT:
        info = _alert(ctx, node, pt)
    elif inner == CT_APP:
        info = _app(ctx, pt, s2)
    else:
        info = N.CONTENT_TYPES.get(inner, f"Content type {inner}")
    if infos and infos[-1] in ENCRYPTED_INFOS:
        infos[-1] = info
    else:
        infos.append(info)


def _handshake(ctx: Any, node: Node, pt: bytes, s2: int, copy: bool,
               verify: Callable[[int, int, bytes], bool | None] | None) -> str:
    pkt: Packet = ctx.pkt
    names: list[str] = []
    q, end = 0, len(pt)
    while q < end:
        if end - q < HANDSHAKE_HEADER:
            pkt.malformed(node, f"RFC 6347 §4.2.2: decrypted handshake header needs {HANDSHAKE_HEADER} "
                                f"bytes, {end - q} left", q, end - q)
            break
        mt = pt[q]
        mlen = int.from_bytes(pt[q + 1:q + 4], "big")
        mseq = (pt[q + 4] << 8) | pt[q + 5]
        foff = int.from_bytes(pt[q + 6:q + 9], "big")
        flen = int.from_bytes(pt[q + 9:q + 12], "big")
        b, bend = q + HANDSHAKE_HEADER, min(end, q + HANDSHAKE_HEADER + flen)
        hs = node.add(FD.handshake, None, q, bend - q)
        hs.add(FD.handshake_type, mt, q, 1)
        hs.add(FD.handshake_length, mlen, q + 1, 3)
        hs.add(FD.handshake_message_seq, mseq, q + 4, 2)
        hs.add(FD.handshake_fragment_offset, foff, q + 6, 3)
        hs.add(FD.handshake_fragment_length, flen, q + 9, 3)
        name = N.HANDSHAKE_TYPES.get(mt, f"Unknown Handshake Message ({mt})")
        whole = foff == 0 and flen == mlen and b + flen <= end
        if pkt.tree:
            hs.label = f"Handshake Protocol: {name}" + ("" if whole else " (Fragment)")
        if not whole:
            names.append(f"{name} (Fragment)")
            pkt.expert(hs, Severity.NOTE, Group.REASSEMBLE,
                       "Fragmented handshake message inside an encrypted record is not reassembled", q)
            q = bend
            continue
        body = pt[b:bend]
        names.append(name)
        if mt == HT_FINISHED:
            hs.add(FD.handshake_verify_data, bytes(body), b, len(body))
            ok = verify(ctx.dir, mseq, bytes(body)) if verify is not None and ctx.live and not copy else None
            if ok is not None:
                hs.add(FX.decrypted_finished_verified, ok, b, len(body), generated=True)
                if not ok:
                    pkt.expert(hs, Severity.WARN, Group.DECRYPTION,
                               "Finished verify_data does not match the handshake transcript "
                               "(RFC 5246 §7.4.9)", b, len(body))
        elif ctx.body and mlen <= MAX_DECRYPTED_HS:
            HS.dissect_body(ctx, hs, mt, pt, b, bend, s2, mlen)
        if ctx.live and not copy and ctx.sess is not None:
            s = session_state(pkt.cap, ctx.sess)
            _add_transcript(s, ctx.dir, mt, mseq, body)
        q = bend
    return ", ".join(names) if names else "Handshake"


def _alert(ctx: Any, node: Node, pt: bytes) -> str:
    pkt: Packet = ctx.pkt
    al = node.add(FD.alert_message, None, 0, len(pt))
    if len(pt) < 2:
        pkt.malformed(al, f"RFC 5246 §7.2: a decrypted alert is {len(pt)} bytes, not 2", 0, len(pt))
        return "Alert"
    level, desc = pt[0], pt[1]
    al.add(FD.alert_message_level, level, 0, 1)
    al.add(FD.alert_message_desc, desc, 1, 1)
    dname = N.ALERT_DESCRIPTIONS.get(desc, "Unknown")
    if pkt.tree and al is not node:
        al.label = "Alert Message"
    if level == 2:
        pkt.expert(al, Severity.WARN, Group.SEQUENCE, f"Fatal alert: {dname}", 0, 2)
    return f"Alert (Level: {N.ALERT_LEVELS.get(level, 'Unknown')}, Description: {dname})"


def _app(ctx: Any, pt: bytes, s2: int) -> str:
    """Application data: CoAP when it parses as CoAP, else data; the Info column follows it."""
    pkt: Packet = ctx.pkt
    cap = pkt.cap
    info_before, proto_before = pkt.info, pkt.protocol
    pkt.info = ""
    # RFC 7252 §9.1: coaps (DTLS on 5684) carries CoAP; on other ports, only what parses as CoAP.
    coaps = pkt.srcport == COAPS_PORT or pkt.dstport == COAPS_PORT
    if (coaps and pt[:1] and pt[0] >> 6 == 1) or looks_like_coap(pt, 0, len(pt), strict=False):
        cap.call("coap", pkt, pt, 0, len(pt), s2)
        inner = pkt.protocol
    else:
        cap.call_data(pkt, pt, 0, len(pt), s2)
        inner = ""
    info = pkt.info or "Application Data"
    pkt.info = info_before
    pkt.protocol = proto_before
    if inner:
        # What the Protocol column should say once the DTLS layer finishes (see the hook notes).
        pkt.scratch["dtls.inner_protocol"] = inner
    return info


__all__ = [
    "SUITES", "Suite", "RecordKeys", "DecryptError", "prf", "psk_premaster", "master_secret", "key_block",
    "finished_verify_data", "transcript_bytes", "handshake_message", "decrypt_record", "show_plaintext",
]
