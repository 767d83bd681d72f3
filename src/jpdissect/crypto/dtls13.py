"""DTLS 1.3 record decryption (RFC 9147) from key-log traffic secrets.

Keys: the key log's ``CLIENT/SERVER_HANDSHAKE_TRAFFIC_SECRET`` (epoch 2), ``CLIENT/SERVER_TRAFFIC_SECRET_0``
(epoch 3) and ``CLIENT_EARLY_TRAFFIC_SECRET`` (epoch 1), by client random; epoch 3+N uses the N-th
``"traffic upd"`` successor of secret 0 (RFC 8446 §7.2). Per RFC 9147 §5.9 every HKDF-Expand-Label
uses the label prefix ``"dtls13"`` instead of TLS's ``"tls13 "``.

A DTLSCiphertext (RFC 9147 §4) shows only the low 2 bits of its epoch and 8 or 16 bits of its
sequence number, and those bits are encrypted (§4.2.3): ``mask = AES-ECB(sn_key, ciphertext[0:16])``
or ``ChaCha20(sn_key, counter = ciphertext[0:4], nonce = ciphertext[4:16])``. The full record number is
reconstructed (§4.2.2) as the value closest to the next expected one with those low bits; candidate
epochs are tried until the AEAD tag verifies, so a wrong guess can never show a wrong plaintext.
The AEAD nonce is the IV xor the 64-bit sequence number -- "unlike DTLS 1.2, the epoch is not
included" (§4) -- and the AAD is the record header as sent, with the sequence number in the clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from jpdissect.crypto import keylog as K
from jpdissect.crypto.dtls12 import inner_plaintext, show_plaintext
from jpdissect.crypto.keylog import configured_secrets
from jpdissect.model import Group, Node, Packet, Severity

LABEL_PREFIX = b"dtls13"     # RFC 9147 §5.9
NONCE_LEN = 12               # RFC 8446 §5.3: iv_length
MASK_INPUT = 16              # RFC 9147 §4.2.3: the mask is computed over the first 16 ciphertext bytes
EPOCH_EARLY, EPOCH_HANDSHAKE, EPOCH_APP0 = 1, 2, 3   # RFC 9147 §6.1
#: Key updates followed beyond the last epoch that decrypted.
MAX_EPOCH_LOOKAHEAD = 4
#: Highest epoch derived at all (each step is one HKDF call; real connections rarely update keys).
MAX_EPOCH = 1 << 16
STATE_KEY = "crypto.dtls13"
C2S, S2C = 0, 1


@dataclass(frozen=True, slots=True)
class Suite13:
    name: str
    aead: str     # "gcm" | "ccm" | "ccm8" | "chacha"
    key_len: int
    hash: str     # "sha256" | "sha384"

    @property
    def tag_len(self) -> int:
        return 8 if self.aead == "ccm8" else 16


SUITES: dict[int, Suite13] = {  # RFC 8446 §B.4
    0x1301: Suite13("TLS_AES_128_GCM_SHA256", "gcm", 16, "sha256"),
    0x1302: Suite13("TLS_AES_256_GCM_SHA384", "gcm", 32, "sha384"),
    0x1303: Suite13("TLS_CHACHA20_POLY1305_SHA256", "chacha", 32, "sha256"),
    0x1304: Suite13("TLS_AES_128_CCM_SHA256", "ccm", 16, "sha256"),
    0x1305: Suite13("TLS_AES_128_CCM_8_SHA256", "ccm8", 16, "sha256"),
}
_HASH = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, h: str = "sha256",
                      prefix: bytes = LABEL_PREFIX) -> bytes:
    """RFC 8446 §7.1 HKDF-Expand-Label with the DTLS 1.3 prefix (RFC 9147 §5.9)."""
    full = prefix + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(_HASH[h](), length, info).derive(secret)


def next_traffic_secret(secret: bytes, h: str = "sha256") -> bytes:
    """RFC 8446 §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)."""
    return hkdf_expand_label(secret, b"traffic upd", b"", _HASH[h].digest_size, h)


class TrafficKeys:
    """key, iv and sn_key of one traffic secret (RFC 8446 §7.3, RFC 9147 §4.2.3).

    Made once per (direction, epoch) and kept on the session: the AEAD object, the IV as an integer
    and, for the AES suites, one AES-ECB encryptor for the record-number masks live as long as the key.
    ECB has no chaining, so one encryptor fed exactly one block per record gives each record's mask
    without a new cipher context per record (it is never finalised).
    """

    __slots__ = ("suite", "aead", "iv", "sn_key", "_ecb", "_iv_int")

    def __init__(self, suite: Suite13, secret: bytes) -> None:
        self.suite = suite
        h, kl = suite.hash, suite.key_len
        key = hkdf_expand_label(secret, b"key", b"", kl, h)
        self.iv = hkdf_expand_label(secret, b"iv", b"", NONCE_LEN, h)
        self._iv_int = int.from_bytes(self.iv, "big")
        self.sn_key = hkdf_expand_label(secret, b"sn", b"", kl, h)
        if suite.aead == "gcm":
            self.aead: Any = AESGCM(key)
        elif suite.aead == "chacha":
            self.aead = ChaCha20Poly1305(key)
        else:
            self.aead = AESCCM(key, tag_length=suite.tag_len)
        self._ecb = (None if suite.aead == "chacha"
                     else Cipher(algorithms.AES(self.sn_key), modes.ECB()).encryptor())

    def mask(self, ciphertext: bytes) -> bytes | None:
        """RFC 9147 §4.2.3; None when the record is too short to compute one."""
        if len(ciphertext) < MASK_INPUT:
            return None
        sample = bytes(ciphertext[:MASK_INPUT])
        if self._ecb is not None:
            return self._ecb.update(sample)
        # ChaCha20: the sample is the counter and nonce, so each record needs its own context.
        enc = Cipher(algorithms.ChaCha20(self.sn_key, sample), mode=None).encryptor()
        return enc.update(bytes(MASK_INPUT))

    def open(self, seq: int, aad: bytes, ciphertext: bytes) -> bytes:
        """RFC 8446 §5.3: nonce = IV xor the 64-bit record sequence number, left-padded."""
        nonce = (self._iv_int ^ seq).to_bytes(NONCE_LEN, "big")
        return self.aead.decrypt(nonce, bytes(ciphertext), aad)


def reconstruct(expected: int, low: int, bits: int) -> int:
    """RFC 9147 §4.2.2: the value with these low bits closest to ``expected`` (never negative)."""
    win = 1 << bits
    base = (expected & ~(win - 1)) | low
    return min((c for c in (base - win, base, base + win) if c >= 0), key=lambda c: abs(c - expected))


# ---------------------------------------------------------------------------
# Per-session state


@dataclass
class Session13:
    secrets: dict[tuple[int, int], bytes] = field(default_factory=dict)   # (dir, epoch) -> secret
    keys: dict[tuple[int, int], TrafficKeys] = field(default_factory=dict)
    next_seq: dict[tuple[int, int], int] = field(default_factory=dict)    # (dir, epoch) -> expected
    last_epoch: dict[int, int] = field(default_factory=dict)               # dir -> newest epoch opened
    memo: dict[tuple[int, int], tuple[int, int] | None] = field(default_factory=dict)


def _session(cap: Any, sess: Any) -> Session13:
    """Kept on the DTLS session (``sess.attached``), so it goes when the session is forgotten."""
    s: Session13 | None = sess.attached.get(STATE_KEY)
    if s is None:
        s = sess.attached[STATE_KEY] = Session13()
    return s


_LABELS = {
    (C2S, EPOCH_EARLY): K.CLIENT_EARLY,
    (C2S, EPOCH_HANDSHAKE): K.CLIENT_HANDSHAKE, (S2C, EPOCH_HANDSHAKE): K.SERVER_HANDSHAKE,
    (C2S, EPOCH_APP0): K.CLIENT_TRAFFIC_0, (S2C, EPOCH_APP0): K.SERVER_TRAFFIC_0,
}


def _keys(s: Session13, kl: K.KeyLog, cr: bytes, suite: Suite13, d: int, epoch: int) -> TrafficKeys | None:
    k = s.keys.get((d, epoch))
    if k is not None:
        return k
    secret = s.secrets.get((d, epoch))
    if secret is None:
        label = _LABELS.get((d, epoch))
        if label is not None:
            secret = kl.get(label, cr)
        elif epoch > EPOCH_APP0 and epoch <= MAX_EPOCH:
            prev = s.secrets.get((d, epoch - 1))
            if prev is None and _keys(s, kl, cr, suite, d, epoch - 1) is not None:
                prev = s.secrets.get((d, epoch - 1))
            if prev is not None:
                secret = next_traffic_secret(prev, suite.hash)
    if secret is None:
        return None
    s.secrets[(d, epoch)] = secret
    k = s.keys[(d, epoch)] = TrafficKeys(suite, secret)
    return k


def _candidate_epochs(s: Session13, d: int, low: int) -> list[int]:
    newest = s.last_epoch.get(d, EPOCH_HANDSHAKE)
    out = [e for e in range(max(1, newest - 3), newest + MAX_EPOCH_LOOKAHEAD + 1) if e & 3 == low]
    out.sort(key=lambda e: (e < newest, abs(e - newest)))
    return out


# ---------------------------------------------------------------------------
# Hook: every unified-header record


def decrypt_record(ctx: Any, rec: Node, buf: bytes, off: int, q: int, rend: int, src: int) -> bool:
    """Decrypt the RFC 9147 DTLSCiphertext ``buf[off:rend]`` whose encrypted record starts at ``q``."""
    pkt: Packet = ctx.pkt
    sess = ctx.sess
    cap = pkt.cap
    if sess is None or cap is None or not getattr(sess, "index", 0):
        return False
    sec = configured_secrets(cap)
    if sec is None:
        return False
    try:
        return _decrypt(ctx, pkt, sess, sec, rec, buf, off, q, rend)
    except Exception as exc:  # noqa: BLE001 - a decryption bug must not lose the frame
        pkt.expert(rec, Severity.ERROR, Group.DECRYPTION,
                   f"Decryption failed unexpectedly: {type(exc).__name__}: {exc}", off)
        return False


def _decrypt(ctx: Any, pkt: Packet, sess: Any, sec: K.EngineSecrets, rec: Node, buf: bytes, off: int,
             q: int, rend: int) -> bool:
    b0 = buf[off]
    s16, lbit, low = bool(b0 & 0x08), bool(b0 & 0x04), b0 & 0x03
    sl = 2 if s16 else 1
    seq_off = q - (2 if lbit else 0) - sl
    ciphertext = bytes(buf[q:rend])
    cr = getattr(sess, "client_random", None)
    suite = SUITES.get(getattr(sess, "cipher_suite", None) or -1)
    if suite is None:
        cs = getattr(sess, "cipher_suite", None)
        why = ("no ServerHello seen: cipher suite unknown" if cs is None
               else f"cipher suite 0x{cs:04x} is not a DTLS 1.3 suite")
        pkt.expert(rec, Severity.NOTE, Group.DECRYPTION, f"Not decrypted: {why}", off, rend - off)
        return False
    s = _session(pkt.cap, sess)
    d = ctx.dir
    key = (pkt.number, off)
    memo = s.memo.get(key)
    cands = [memo] if memo is not None else [(e, -1) for e in _candidate_epochs(s, d, low)]
    enc_bits = int.from_bytes(buf[seq_off:seq_off + sl], "big")
    tried = False
    for epoch, known_seq in cands:
        k = _keys(s, sec.keylog, cr or b"", suite, d, epoch) if cr is not None else None
        if k is None:
            continue
        m = k.mask(ciphertext)
        if m is None:
            pkt.malformed(rec, f"RFC 9147 §4.2.3: record of {len(ciphertext)} bytes is shorter than the "
                               f"{MASK_INPUT}-byte sample for record number decryption", q, rend - q)
            return False
        low_seq = enc_bits ^ int.from_bytes(m[:sl], "big")
        seq = known_seq if known_seq >= 0 else reconstruct(s.next_seq.get((d, epoch), 0), low_seq, 8 * sl)
        header = bytearray(buf[off:q])
        header[seq_off - off:seq_off - off + sl] = low_seq.to_bytes(sl, "big")
        tried = True
        try:
            pt = k.open(seq, bytes(header), ciphertext)
        except InvalidTag:
            continue
        if ctx.live or memo is None:
            if len(s.memo) > (1 << 16):
                s.memo.clear()
            s.memo[key] = (epoch, seq)
            nxt = s.next_seq.get((d, epoch), 0)
            if seq + 1 > nxt:
                s.next_seq[(d, epoch)] = seq + 1
            if epoch >= s.last_epoch.get(d, 0):
                s.last_epoch[d] = epoch
        r = inner_plaintext(pt)
        if r is None:
            pkt.expert(rec, Severity.WARN, Group.DECRYPTION,
                       "RFC 9147 §4: DTLSInnerPlaintext is all zeros (no content type)", off)
            return False
        inner, content = r
        show_plaintext(ctx, rec, content, inner, "key log (DTLS 1.3 traffic secret)", False,
                       src_off=q, src_len=rend - q, epoch=epoch, seq=seq)
        return True
    if not tried:
        what = ("no client random seen" if cr is None else
                f"no DTLS 1.3 traffic secret in the key log for client random {cr.hex()[:16]}… "
                f"(epoch bits {low})")
        pkt.expert(rec, Severity.NOTE, Group.DECRYPTION, f"Not decrypted: no key for this session: {what}",
                   off, rend - off)
    else:
        pkt.expert(rec, Severity.WARN, Group.DECRYPTION,
                   "Decryption failed: authentication tag mismatch for every candidate epoch "
                   "(wrong traffic secret, or the record was altered)", off, rend - off)
    return False


__all__ = ["SUITES", "TrafficKeys", "hkdf_expand_label", "next_traffic_secret", "reconstruct",
           "decrypt_record"]
