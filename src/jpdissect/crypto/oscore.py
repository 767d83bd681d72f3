"""OSCORE (RFC 8613) decryption with user-supplied security contexts, and the inner CoAP message.

A context names two parties (Sender ID, Recipient ID) sharing a Master Secret; a passive observer with
one context can read both directions. Derivation (§3.2.1): ``HKDF(salt = Master Salt, IKM = Master
Secret, info = [id, id_context, alg_aead, type, L], L)`` for each party's key and the Common IV.
Nonce (§5.2): the sender's ID and the Partial IV, left-padded, xor the Common IV. AAD (§5.4):
``Enc_structure = ["Encrypt0", h'', bstr(aad_array)]`` with ``aad_array = [1, [alg_aead],
request_kid, request_piv, options]`` -- a response reuses its request's kid and Partial IV, and its
request's nonce unless it carries a Partial IV of its own (§8.3, Observe notifications).

Contexts come from ``--oscore-contexts FILE`` (preference ``oscore.contexts_file``): a JSON list of
``{master_secret, master_salt, sender_id, recipient_id, id_context, algorithm}`` (hex strings;
algorithm a COSE number or aiocoap name, default AES-CCM-16-64-128), an aiocoap context directory
(``settings.json`` and/or ``secret.json`` with ``_hex``/``_ascii`` keys), or a directory holding such
directories. A plaintext is shown only when the AEAD tag verified.

The decrypted inner message (§4: code, inner options, payload) is dissected as CoAP on its own data
source -- a second ``coap`` layer with the inner code, options and payload, as Wireshark shows it.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jpdissect import cbor
from jpdissect.coapmsg import (
    CBOR_FORMATS,
    CBOR_SEQ_FORMATS,
    PAYLOAD_MARKER,
    TEXT_FORMATS,
    TYPE_SHORT,
    OptFormat,
    code_name,
    content_format_name,
    option_def,
    read_option_header,
)
from jpdissect.dissectors import coap as C
from jpdissect.dissectors.oscore import P as PO
from jpdissect.model import FT, F, Group, Packet, Severity

OSCORE_VERSION = 1           # RFC 8613 §5.4 aad_array oscore_version
PIV_PAD = 5                  # §5.2: Partial IV left-padded to 5 bytes
#: Contexts read from one file or directory tree (each costs three HKDF calls).
MAX_CONTEXTS = 10_000
#: Largest contexts file read.
MAX_CONTEXTS_FILE = 16 << 20
#: How deep a directory of aiocoap context directories is searched.
MAX_DIR_DEPTH = 4
#: Request frames whose matching context / inner path are remembered for their responses.
MAX_REMEMBERED = 200_000
STATE_KEY = "crypto.oscore"


@dataclass(frozen=True, slots=True)
class Alg:
    """A COSE AEAD algorithm (RFC 9053 §4) as OSCORE uses it."""

    cose: int
    name: str
    kind: str      # "ccm" | "gcm" | "chacha"
    key_len: int
    nonce_len: int
    tag_len: int

    def aead(self, key: bytes) -> Any:
        if self.kind == "ccm":
            return AESCCM(key, tag_length=self.tag_len)
        if self.kind == "gcm":
            return AESGCM(key)
        return ChaCha20Poly1305(key)


ALGORITHMS: dict[int, Alg] = {a.cose: a for a in (
    Alg(10, "AES-CCM-16-64-128", "ccm", 16, 13, 8),
    Alg(11, "AES-CCM-16-64-256", "ccm", 32, 13, 8),
    Alg(12, "AES-CCM-64-64-128", "ccm", 16, 7, 8),
    Alg(13, "AES-CCM-64-64-256", "ccm", 32, 7, 8),
    Alg(30, "AES-CCM-16-128-128", "ccm", 16, 13, 16),
    Alg(31, "AES-CCM-16-128-256", "ccm", 32, 13, 16),
    Alg(32, "AES-CCM-64-128-128", "ccm", 16, 7, 16),
    Alg(33, "AES-CCM-64-128-256", "ccm", 32, 7, 16),
    Alg(1, "A128GCM", "gcm", 16, 12, 16),
    Alg(2, "A192GCM", "gcm", 24, 12, 16),
    Alg(3, "A256GCM", "gcm", 32, 12, 16),
    Alg(24, "ChaCha20/Poly1305", "chacha", 32, 12, 16),
)}
ALG_BY_NAME = {a.name.lower(): a for a in ALGORITHMS.values()}
DEFAULT_ALG = ALGORITHMS[10]   # RFC 8613 §3.2.1: AES-CCM-16-64-128 is mandatory to implement
_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def find_alg(value: Any) -> Alg:
    """A COSE algorithm by number, numeric string or aiocoap name; ValueError when unknown."""
    if value is None or value == "":
        return DEFAULT_ALG
    if isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        a = ALGORITHMS.get(int(value))
    else:
        a = ALG_BY_NAME.get(str(value).lower())
    if a is None:
        raise ValueError(f"unsupported OSCORE AEAD algorithm {value!r}")
    return a


# ---------------------------------------------------------------------------
# Key derivation, nonce, AAD (RFC 8613 §3.2, §5.2, §5.4)


def derive(master_secret: bytes, master_salt: bytes, ident: bytes, id_context: bytes | None, alg: Alg,
           kind: str, length: int, hashfun: str = "sha256") -> bytes:
    """§3.2.1: HKDF output for one Sender/Recipient Key (``kind`` "Key") or the Common IV ("IV")."""
    info = cbor2.dumps([ident, id_context, alg.cose, kind, length])
    return HKDF(_HASHES[hashfun](), length, master_salt or None, info).derive(master_secret)


def nonce(sender_id: bytes, piv: bytes, common_iv: bytes) -> bytes:
    """§5.2: ``len(ID) | ID left-padded to nonce_len-6 | PIV left-padded to 5``, xor Common IV."""
    n = len(common_iv)
    raw = (len(sender_id) << (8 * (n - 1))) | (int.from_bytes(sender_id, "big") << (8 * PIV_PAD)) \
        | int.from_bytes(piv, "big")
    return (raw ^ int.from_bytes(common_iv, "big")).to_bytes(n, "big")


def _head(major: int, n: int) -> bytes:
    """A CBOR initial byte and argument (RFC 8949 §3) -- the AAD is built per message, so by hand."""
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + n.to_bytes(4, "big")


def _bstr(b: bytes) -> bytes:
    return _head(2, len(b)) + b


def _int(v: int) -> bytes:
    return _head(0, v) if v >= 0 else _head(1, -1 - v)


_ENCRYPT0_HEAD = b"\x83" + _head(3, 8) + b"Encrypt0" + b"\x40"   # ["Encrypt0", h'', ...


@functools.lru_cache(maxsize=4096)
def _aad_head(cose: int, request_kid: bytes) -> bytes:
    """``[oscore_version, [alg_aead], request_kid`` -- the same for every message of one sender."""
    return b"\x85" + _int(OSCORE_VERSION) + b"\x81" + _int(cose) + _bstr(request_kid)


def aad(alg: Alg, request_kid: bytes, request_piv: bytes, options: bytes = b"") -> bytes:
    """§5.4: the COSE Enc_structure over the external AAD (no Class I options are defined).

    ``[ "Encrypt0", h'', bstr .cbor [oscore_version, [alg_aead], request_kid, request_piv, options] ]``
    Only the Partial IV changes from one message of a sender to the next: the head before it is
    memoised (a pure function of the algorithm and kid, so it cannot go stale).
    """
    arr = _aad_head(alg.cose, request_kid) + _bstr(request_piv) + _bstr(options)
    return _ENCRYPT0_HEAD + _bstr(arr)


@dataclass
class SecurityContext:
    """One OSCORE context with both parties' keys derived."""

    master_secret: bytes
    master_salt: bytes
    sender_id: bytes
    recipient_id: bytes
    id_context: bytes | None = None
    alg: Alg = DEFAULT_ALG
    hashfun: str = "sha256"
    source: str = ""
    sender_key: bytes = b""
    recipient_key: bytes = b""
    common_iv: bytes = b""
    _aeads: dict[bytes, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if max(len(self.sender_id), len(self.recipient_id)) > self.alg.nonce_len - 6:
            raise ValueError(f"Sender/Recipient ID longer than {self.alg.nonce_len - 6} bytes "
                             f"(RFC 8613 §3.3) for {self.alg.name}")
        if self.sender_id == self.recipient_id:
            raise ValueError("Sender ID equals Recipient ID (RFC 8613 §3.3)")
        d = derive
        self.sender_key = d(self.master_secret, self.master_salt, self.sender_id, self.id_context,
                            self.alg, "Key", self.alg.key_len, self.hashfun)
        self.recipient_key = d(self.master_secret, self.master_salt, self.recipient_id, self.id_context,
                               self.alg, "Key", self.alg.key_len, self.hashfun)
        self.common_iv = d(self.master_secret, self.master_salt, b"", self.id_context, self.alg, "IV",
                           self.alg.nonce_len, self.hashfun)

    def key_of(self, party: bytes) -> bytes:
        return self.sender_key if party == self.sender_id else self.recipient_key

    def other(self, party: bytes) -> bytes:
        return self.recipient_id if party == self.sender_id else self.sender_id

    def has(self, party: bytes) -> bool:
        return party == self.sender_id or party == self.recipient_id

    def identity(self) -> tuple[Any, ...]:
        """Both ends' files describe the same context mirrored: one identity for both."""
        pair = tuple(sorted((self.sender_id, self.recipient_id)))
        return (self.master_secret, self.master_salt, self.id_context, self.alg.cose, self.hashfun, pair)

    def open(self, party: bytes, nonce_: bytes, aad_: bytes, protected: bytes) -> bytes:
        """Decrypt a payload protected by ``party``; raises InvalidTag."""
        a = self._aeads.get(party)
        if a is None:
            a = self._aeads[party] = self.alg.aead(self.key_of(party))
        return a.decrypt(nonce_, protected, aad_)


# ---------------------------------------------------------------------------
# Loading contexts


def _hex(v: Any, what: str, optional: bool = False) -> bytes | None:
    if v is None:
        if optional:
            return None
        raise ValueError(f"{what} missing")
    if isinstance(v, bytes):
        return v
    if not isinstance(v, str):
        raise ValueError(f"{what}: expected a hex string, got {type(v).__name__}")
    try:
        return bytes.fromhex(v.replace(":", "").replace(" ", ""))
    except ValueError:
        raise ValueError(f"{what}: {v!r} is not hex") from None


def context_from_dict(d: dict[str, Any], source: str = "") -> SecurityContext:
    """One entry of the JSON list (also accepts the lab's ``keys.json`` pledge entries)."""
    ms = _hex(d.get("master_secret"), "master_secret")
    salt = _hex(d.get("master_salt"), "master_salt", optional=True) or b""
    sid = d.get("sender_id", d.get("pledge_sender_id"))
    rid = d.get("recipient_id", d.get("jrc_sender_id"))
    idc = d.get("id_context")
    ctx = SecurityContext(
        master_secret=ms or b"", master_salt=salt,
        sender_id=_hex(sid, "sender_id") or b"", recipient_id=_hex(rid, "recipient_id") or b"",
        id_context=_hex(idc, "id_context", optional=True) if idc not in ("", None) else None,
        alg=find_alg(d.get("algorithm")), hashfun=str(d.get("kdf", d.get("hkdf", "sha256"))).lower(),
        source=source)
    return ctx


def context_from_aiocoap_dir(path: str) -> SecurityContext:
    """aiocoap's FilesystemSecurityContext files: keys ending ``_hex``/``_ascii``, split over
    settings.json and secret.json (a key may appear in only one of them)."""
    data: dict[str, Any] = {}
    for name in ("secret.json", "settings.json"):
        fp = os.path.join(path, name)
        if not os.path.exists(fp):
            continue
        with open(fp, encoding="utf-8") as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise ValueError(f"{fp}: not a JSON object")
        for k, v in raw.items():
            if k.endswith("_hex"):
                k, v = k[:-4], _hex(v, k)
            elif k.endswith("_ascii"):
                k, v = k[:-6], str(v).encode("ascii")
            if k in data:
                raise ValueError(f"{path}: {k!r} given in both settings.json and secret.json")
            data[k] = v
    if "secret" not in data:
        raise ValueError(f"{path}: no master secret (secret_hex / secret_ascii)")
    return SecurityContext(
        master_secret=data["secret"], master_salt=data.get("salt", b"") or b"",
        sender_id=data.get("sender-id", b""), recipient_id=data.get("recipient-id", b""),
        id_context=data.get("id-context"), alg=find_alg(data.get("algorithm")),
        hashfun=str(data.get("kdf-hashfun", "sha256")).lower(), source=path)


def load_contexts(path: str | os.PathLike[str]) -> tuple[list[SecurityContext], list[str]]:
    """Every context under ``path`` (deduplicated: both ends' mirrored files count once) and the
    problems met (bad entries are skipped, not fatal)."""
    p = os.fspath(path)
    out: list[SecurityContext] = []
    errors: list[str] = []
    if os.path.isdir(p):
        _walk_dirs(p, 0, out, errors)
    else:
        try:
            if os.path.getsize(p) > MAX_CONTEXTS_FILE:
                raise ValueError(f"larger than {MAX_CONTEXTS_FILE} bytes")
            with open(p, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            return [], [f"{p}: {exc}"]
        entries: Iterable[Any]
        if isinstance(doc, dict):
            entries = doc.get("contexts", doc.get("oscore", [doc]))
        elif isinstance(doc, list):
            entries = doc
        else:
            return [], [f"{p}: expected a JSON list of contexts"]
        for i, e in enumerate(entries):
            if len(out) >= MAX_CONTEXTS:
                errors.append(f"{p}: more than {MAX_CONTEXTS} contexts; the rest ignored")
                break
            try:
                if not isinstance(e, dict):
                    raise ValueError("not an object")
                out.append(context_from_dict(e, f"{p}[{i}]"))
            except ValueError as exc:
                errors.append(f"{p}[{i}]: {exc}")
    seen: set[tuple[Any, ...]] = set()
    uniq = []
    for c in out:
        ident = c.identity()
        if ident not in seen:
            seen.add(ident)
            uniq.append(c)
    return uniq, errors


def _walk_dirs(p: str, depth: int, out: list[SecurityContext], errors: list[str]) -> None:
    if any(os.path.exists(os.path.join(p, n)) for n in ("secret.json", "settings.json")):
        try:
            out.append(context_from_aiocoap_dir(p))
        except (OSError, ValueError, KeyError) as exc:
            errors.append(f"{p}: {exc}")
        return
    if depth >= MAX_DIR_DEPTH:
        return
    try:
        names = sorted(os.listdir(p))
    except OSError as exc:
        errors.append(f"{p}: {exc}")
        return
    for n in names:
        q = os.path.join(p, n)
        if os.path.isdir(q) and len(out) < MAX_CONTEXTS:
            _walk_dirs(q, depth + 1, out, errors)


# ---------------------------------------------------------------------------
# Per-capture state


@dataclass
class OscoreState:
    contexts: list[SecurityContext]
    errors: list[str]
    by_party: dict[bytes, list[SecurityContext]] = field(default_factory=dict)
    request_ctx: dict[int, SecurityContext] = field(default_factory=dict)   # request frame -> context
    inner_path: dict[int, str] = field(default_factory=dict)                # request frame -> inner path
    reported: bool = False

    def __post_init__(self) -> None:
        for c in self.contexts:
            for party in {c.sender_id, c.recipient_id}:
                self.by_party.setdefault(party, []).append(c)

    def remember(self, frame: int, ctx: SecurityContext, path: str) -> None:
        if len(self.request_ctx) >= MAX_REMEMBERED:
            self.request_ctx.pop(next(iter(self.request_ctx)))
            self.inner_path.pop(next(iter(self.inner_path)), None)
        self.request_ctx[frame] = ctx
        self.inner_path[frame] = path


def state(cap: Any) -> OscoreState | None:
    """The engine's contexts (loaded once from the preference); None when none are configured."""
    st = cap.state.get(STATE_KEY, False)
    if st is False:
        path = cap.prefs.get("oscore.contexts_file") or ""
        if not path:
            st = None
        else:
            ctxs, errs = load_contexts(path)
            st = OscoreState(ctxs, errs)
        cap.state[STATE_KEY] = st
    return st


# ---------------------------------------------------------------------------
# Fields (on the OSCORE protocol)


FX = PO.declare(
    F("oscore.decrypted", "Decrypted inner message", FT.NONE,
      "jpdissect: the plaintext after AEAD verification (RFC 8613 §5.3)"),
    F("oscore.plaintext", "Plaintext", FT.BYTES),
    F("oscore.context", "Security context", FT.STRING, "Where the matching context came from"),
    F("oscore.sender_id", "Sender ID", FT.BYTES, "The party that protected this message"),
    F("oscore.nonce", "AEAD Nonce", FT.BYTES, "RFC 8613 §5.2"),
    F("oscore.aad", "AAD (Enc_structure)", FT.BYTES, "RFC 8613 §5.4"),
)


def candidates(st: OscoreState, kid: bytes, kid_context: bytes | None,
               first: SecurityContext | None = None) -> list[SecurityContext]:
    """Contexts in which ``kid`` names a party (and whose ID Context matches, when the message has one)."""
    cands = [c for c in st.by_party.get(kid, ()) if kid_context is None or c.id_context == kid_context]
    if first is not None:
        cands = [first] + [c for c in cands if c is not first]
    return cands


def open_message(cands: Iterable[SecurityContext], is_request: bool, request_kid: bytes, request_piv: bytes,
                 own_piv: bytes | None, protected: bytes
                 ) -> tuple[SecurityContext, bytes, bytes, bytes, bytes] | None:
    """Try each context; (context, sender party, nonce, AAD, plaintext) of the first whose tag verifies.

    A request is protected by the party ``request_kid`` names; a response by the other party of the
    same context, with the request's nonce unless it carries its own Partial IV (RFC 8613 §8.3).
    """
    for c in cands:
        if is_request:
            party, n = request_kid, nonce(request_kid, request_piv, c.common_iv)
        else:
            party = c.other(request_kid)
            n = (nonce(party, own_piv, c.common_iv) if own_piv is not None
                 else nonce(request_kid, request_piv, c.common_iv))
        a = aad(c.alg, request_kid, request_piv)
        try:
            return c, party, n, a, c.open(party, n, a, protected)
        except (InvalidTag, ValueError):
            continue  # ValueError: e.g. a payload shorter than this algorithm's tag
    return None


def _primed(pkt: Packet) -> bool:
    st = pkt.cap.state
    v = st.get("crypto.oscore.primed")
    if v is None:
        v = st["crypto.oscore.primed"] = any(fd.primed for fd in vars(FX).values())
    return v


# ---------------------------------------------------------------------------
# The hook


def decrypt_protected(pkt: Packet, lay: Any, buf: bytes, off: int, end: int, src: int, opt: Any,
                      request: dict[str, Any] | None) -> bool:
    """Decrypt the OSCORE payload ``buf[off:end]``; True when contexts are configured (the outcome,
    plaintext or expert note, has then been reported here).

    ``opt`` is the message's parsed OSCORE option; ``request`` the nonce material the CoAP
    dissector remembered from the request this message answers (None for requests).
    """
    cap = pkt.cap
    if cap is None:
        return False
    st = state(cap)
    if st is None:
        return False
    try:
        _decrypt(pkt, st, lay, buf, off, end, src, opt, request)
    except Exception as exc:  # noqa: BLE001 - a decryption bug must not lose the frame
        pkt.expert(lay, Severity.ERROR, Group.DECRYPTION,
                   f"OSCORE decryption failed unexpectedly: {type(exc).__name__}: {exc}", off)
    return True


def _decrypt(pkt: Packet, st: OscoreState, lay: Any, buf: bytes, off: int, end: int, src: int, opt: Any,
             request: dict[str, Any] | None) -> None:
    info = pkt.scratch.get("coap")
    code = getattr(info, "code", 0)
    is_req = 0 < code < 32
    protected = bytes(buf[off:end])
    if not st.contexts:
        why = "; ".join(st.errors[:3]) or "the contexts file holds no context"
        pkt.expert(lay, Severity.NOTE, Group.DECRYPTION, f"OSCORE not decrypted: no usable context ({why})",
                   off, end - off)
        return
    if getattr(opt, "error", None) is not None:
        return  # the option was malformed (already reported): no nonce material to trust
    if getattr(opt, "flags", 0) & 0x40:
        pkt.expert(lay, Severity.NOTE, Group.DECRYPTION,
                   "OSCORE not decrypted: Group OSCORE (group flag set) is not supported", off)
        return
    if is_req:
        kid, piv, kidc = opt.kid, opt.piv, opt.kid_context
        req_frame = pkt.number
        if kid is None or piv is None:
            pkt.expert(lay, Severity.NOTE, Group.DECRYPTION,
                       "OSCORE not decrypted: request without kid or Partial IV (RFC 8613 §6.1)", off)
            return
    else:
        if request is None:
            pkt.expert(lay, Severity.NOTE, Group.DECRYPTION,
                       "OSCORE not decrypted: the request of this response was not seen (its kid and "
                       "Partial IV are needed, RFC 8613 §8.3)", off)
            return
        kid, piv, kidc = request.get("kid"), request.get("piv"), request.get("kid_context")
        req_frame = request.get("frame") if isinstance(request.get("frame"), int) else -1
        if not isinstance(kid, bytes) or not isinstance(piv, bytes):
            pkt.expert(lay, Severity.NOTE, Group.DECRYPTION,
                       "OSCORE not decrypted: the request carried no kid/Partial IV", off)
            return
    cands = candidates(st, kid, kidc, st.request_ctx.get(req_frame) if not is_req else None)
    if not cands:
        what = f"kid {kid.hex() or '(empty)'}" + (f", kid context {kidc.hex()}" if kidc is not None else "")
        pkt.expert(lay, Severity.NOTE, Group.DECRYPTION,
                   f"OSCORE not decrypted: no security context for {what}", off, end - off)
        return
    res = open_message(cands, is_req, kid, piv, None if is_req else opt.piv, protected)
    if res is not None:
        c, party, n, a, pt = res
        s2 = pkt.add_source(f"Decrypted OSCORE ({len(pt)} bytes)", pt)
        if pkt.tree or _primed(pkt):
            node = lay.add(FX.decrypted, None, off, end - off)
            node.add(FX.context, c.source or "contexts file", off, 0, generated=True)
            node.add(FX.sender_id, party, off, 0, generated=True)
            node.add(FX.nonce, n, off, 0, generated=True)
            node.add(FX.aad, a, off, 0, generated=True)
            pn = node.add(FX.plaintext, pt, 0, len(pt))
            if pn is not node:
                pn.src = s2
        if pkt.tree:
            lay.label = (f"Object Security for Constrained RESTful Environments, decrypted "
                         f"({c.alg.name}, {len(pt)} bytes plaintext)")
        req_path = st.inner_path.get(req_frame, "") if not is_req else ""
        path = dissect_inner(pkt, pt, s2, info, req_path)
        if is_req:
            st.remember(pkt.number, c, path)
        return
    pkt.expert(lay, Severity.WARN, Group.DECRYPTION,
               f"OSCORE decryption failed: authentication tag mismatch with {len(cands)} matching "
               f"context(s) (wrong key, or the message was altered)", off, end - off)


# ---------------------------------------------------------------------------
# The inner CoAP message (RFC 8613 §4: Code | Class E options | 0xFF | payload)


def _tok_str(tok: bytes) -> str:
    return tok[:16].hex(" ") + (" …" if len(tok) > 16 else "")


def dissect_inner(pkt: Packet, pt: bytes, s2: int, outer: Any, req_path: str = "") -> str:
    """Dissect the inner message as CoAP on source ``s2``; returns its Uri-Path ("" for responses)."""
    n = len(pt)
    proto_before = pkt.protocol
    lay = pkt.add_layer(C.P, 0, n, s2)
    FC = C.FC
    tree = pkt.tree
    if n < 1:
        pkt.malformed(lay, "RFC 8613 §5.3: empty plaintext (no inner code)", 0, 0)
        return ""
    code = pt[0]
    lay.add(FC.code, code, 0, 1)
    number, p = 0, 1
    parts: list[str] = []
    cf: int | None = None
    payload_off = n
    idx = 0
    while p < n:
        if pt[p] == PAYLOAD_MARKER:
            if tree or FC.opt_end_marker.primed:
                lay.add(FC.opt_end_marker, PAYLOAD_MARKER, p, 1)
            if p + 1 >= n:
                pkt.malformed(lay, "RFC 7252 §3: payload marker followed by a zero-length payload", p, 1)
            payload_off = p + 1
            break
        delta, length, hlen, err = read_option_header(pt, p, n)
        if err is not None:
            pkt.malformed(lay, f"inner message: {err}", p, max(hlen, 1))
            break
        number += delta
        v = p + hlen
        if v + length > n:
            pkt.malformed(lay, f"RFC 7252 §3.1: inner option {number} runs past the plaintext", p, n - p)
            break
        idx += 1
        raw = pt[v:v + length]
        d = option_def(number)
        name = d.name if d is not None else f"Unknown Option ({number})"
        onode = lay.add(FC.opt_name, f"#{idx}: {name}", p, hlen + length) if (tree or FC.opt_name.primed) else lay
        if number == 11:
            parts.append(raw.decode("utf-8", "replace"))
        elif number == 12:
            cf = int.from_bytes(raw, "big")
        if d is not None:
            # The option's field only matters with a tree or a primed CoAP field: no name lookup
            # per option on a summary line.
            fd = C.P.fields.get(f"coap.opt.{d.field}") if tree or C.P.primed else None
            if fd is not None and (tree or fd.primed or number == 12 and FC.opt_content_format.primed):
                if number in (12, 17):
                    num = int.from_bytes(raw, "big")
                    onode.add(fd, content_format_name(num), v, length)
                    onode.add(FC.opt_content_format if number == 12 else FC.opt_accept_format, num, v, length)
                elif d.fmt is OptFormat.UINT:
                    onode.add(fd, int.from_bytes(raw, "big"), v, length)
                elif d.fmt is OptFormat.STRING:
                    onode.add(fd, raw.decode("utf-8", "replace"), v, length)
                elif d.fmt is OptFormat.EMPTY:
                    onode.add(fd, None, v, length)
                else:
                    onode.add(fd, bytes(raw), v, length)
            if tree and onode is not lay:
                onode.label = f"Opt Name: #{idx}: {name}: " + (
                    raw.decode("utf-8", "replace") if d.fmt is OptFormat.STRING else
                    content_format_name(int.from_bytes(raw, "big")) if number in (12, 17) else
                    str(int.from_bytes(raw, "big")) if d.fmt is OptFormat.UINT else raw.hex(" "))
        elif tree or FC.opt_unknown.primed:
            onode.add(FC.opt_unknown, bytes(raw), v, length)
        p = v + length
    path = "/" + "/".join(parts) if parts else ""
    shown_path = path or req_path
    if shown_path and (tree or FC.opt_uri_path_recon.primed):
        lay.add(FC.opt_uri_path_recon, shown_path, 0, 0, generated=True)
    if tree:
        lay.label = f"Constrained Application Protocol (OSCORE inner message), {code_name(code)}"
    if pkt.cols and outer is not None:
        bits = [TYPE_SHORT[outer.type & 3], f"MID:{outer.mid}", code_name(code)]
        if outer.token:
            bits.append(f"TKN:{_tok_str(outer.token)}")
        if shown_path:
            bits.append(shown_path)
        pkt.info = ", ".join(bits)
    plen = n - payload_off
    if plen > 0:
        if tree or FC.payload_length.primed:
            lay.add(FC.payload_length, plen, payload_off, plen, generated=True)
        cap = pkt.cap
        if shown_path and cap is not None and cap.lookup("coap.uri_path", shown_path) is not None:
            pkt.scratch["oscore.inner_code"] = code
            cap.call_table("coap.uri_path", shown_path, pkt, pt, payload_off, n, s2)
        elif cf is not None and cap is not None and cap.lookup("coap.content_format", cf) is not None:
            cap.call_table("coap.content_format", cf, pkt, pt, payload_off, n, s2)
        elif cf in CBOR_FORMATS or cf in CBOR_SEQ_FORMATS:
            if tree or FC.payload_cbor.primed:
                items, cerr = cbor.diag_all(pt, payload_off, n, sequence=cf in CBOR_SEQ_FORMATS)
                for text in items:
                    lay.add(FC.payload_cbor, text, payload_off, plen)
                if cerr is not None:
                    pkt.expert(lay, Severity.WARN, Group.MALFORMED, f"Invalid CBOR payload: {cerr.reason}",
                               cerr.offset, max(0, n - cerr.offset))
        elif cf in TEXT_FORMATS or (cf is None and code >= 128):
            if tree or FC.payload_text.primed:
                lay.add(FC.payload_text, pt[payload_off:].decode("utf-8", "replace"), payload_off, plen)
        elif cap is not None:
            cap.call_data(pkt, pt, payload_off, n, s2)
    pkt.protocol = proto_before if pkt.protocol == C.P.short else pkt.protocol
    return path
