"""DTLS handshake message bodies (RFC 6347 §4.2, RFC 5246 §7.4, RFC 8422, RFC 4279, EC J-PAKE).

Two kinds of work live here. ``scan_*_hello`` pull out what the session table needs (randoms,
cipher suite, negotiated version, connection IDs) and run on every hello, tree or not: they skip
straight to the few bytes that matter. :func:`dissect_body` decodes a whole message into fields
and runs only for a full tree or primed fields, because a ClientHello alone is ~100 fields.

Every length is checked before it is used: a short or lying vector marks the layer malformed at
that offset and decoding of that message stops, the rest of the datagram goes on.
"""

from __future__ import annotations

import datetime as _dt
import struct
from typing import Any

from jpdissect.dissectors import dtls_names as N
from jpdissect.dissectors.dtls_fields import FD
from jpdissect.model import Group, Node, Severity

RANDOM_LEN = 32            # RFC 5246 §7.4.1.2
MAX_LIST_ITEMS = 1024      # tree lines per list (cipher suites, groups, ...) before we stop listing
MAX_CERTIFICATES = 16      # certificates decoded per Certificate message

EXT_SERVER_NAME, EXT_MAX_FRAG, EXT_GROUPS, EXT_EC_POINT_FORMATS, EXT_SIG_ALGS = 0, 1, 10, 11, 13
EXT_HEARTBEAT, EXT_ALPN, EXT_PADDING, EXT_RECORD_SIZE_LIMIT = 15, 16, 21, 28
EXT_PRE_SHARED_KEY, EXT_SUPPORTED_VERSIONS, EXT_COOKIE, EXT_PSK_KE_MODES = 41, 43, 44, 45
EXT_KEY_SHARE, EXT_CID_OLD, EXT_CID = 51, 53, 54
EXT_ECJPAKE_KKPP, EXT_RENEGOTIATION_INFO = 256, 0xFF01

HT_CLIENT_HELLO, HT_SERVER_HELLO, HT_HVR, HT_NEW_SESSION_TICKET = 1, 2, 3, 4
HT_CERTIFICATE, HT_SERVER_KEY_EXCHANGE, HT_CERTIFICATE_REQUEST = 11, 12, 13
HT_SERVER_HELLO_DONE, HT_CERTIFICATE_VERIFY, HT_CLIENT_KEY_EXCHANGE, HT_FINISHED = 14, 15, 16, 20
HT_HELLO_REQUEST = 0

# RFC 8446 §4.1.3: a ServerHello whose random is this value is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


class Short(Exception):
    """A vector ran past its container: raised by the reader, caught per message."""

    def __init__(self, what: str, offset: int) -> None:
        super().__init__(what)
        self.what = what
        self.offset = offset


def _u(buf: bytes, p: int, n: int, end: int, what: str) -> int:
    if p + n > end:
        raise Short(what, p)
    return int.from_bytes(buf[p:p + n], "big")


# ---------------------------------------------------------------------------
# Cheap scans for the session table

#: RFC 5246 §7.4.1.4: extension_type(2) extension_data length(2).
_EXT_HEADER = struct.Struct(">HH")
_CID_EXTENSIONS = frozenset({EXT_CID, EXT_CID_OLD})


def _hello_ext_scan(buf: bytes, p: int, end: int, out: dict[str, Any], server: bool) -> None:
    if p + 2 > end:
        return
    elen = (buf[p] << 8) | buf[p + 1]
    p += 2
    stop = min(end, p + elen)
    while p + 4 <= stop:
        et, ln = _EXT_HEADER.unpack_from(buf, p)
        d = p + 4
        if d + ln > stop:
            return
        if et in _CID_EXTENSIONS and ln >= 1 and 1 + buf[d] <= ln:
            out["cid"] = bytes(buf[d + 1:d + 1 + buf[d]])
        elif et == EXT_SUPPORTED_VERSIONS:
            if server and ln == 2:
                out["version"] = (buf[d] << 8) | buf[d + 1]
            elif not server and ln >= 1:
                out["supported_versions"] = [
                    (buf[i] << 8) | buf[i + 1] for i in range(d + 1, min(d + 1 + buf[d], d + ln) - 1, 2)
                ]
        p = d + ln


def scan_client_hello(body: bytes) -> dict[str, Any] | None:
    """random, session_id, cookie and the connection_id a client asks for (RFC 9146 §3)."""
    end = len(body)
    if end < 2 + RANDOM_LEN + 1:
        return None
    out: dict[str, Any] = {"version": (body[0] << 8) | body[1], "random": bytes(body[2:34])}
    p = 34
    n = body[p]
    out["session_id"] = bytes(body[p + 1:p + 1 + n])
    p += 1 + n
    if p >= end:
        return out
    n = body[p]
    out["cookie"] = bytes(body[p + 1:p + 1 + n])
    p += 1 + n
    if p + 2 > end:
        return out
    p += 2 + ((body[p] << 8) | body[p + 1])
    if p >= end:
        return out
    p += 1 + body[p]
    _hello_ext_scan(body, p, end, out, server=False)
    return out


def scan_server_hello(body: bytes) -> dict[str, Any] | None:
    """Negotiated version (supported_versions wins, RFC 8446 §4.2.1), random, suite, CID."""
    end = len(body)
    if end < 2 + RANDOM_LEN + 1:
        return None
    out: dict[str, Any] = {"version": (body[0] << 8) | body[1], "random": bytes(body[2:34])}
    p = 34
    n = body[p]
    out["session_id"] = bytes(body[p + 1:p + 1 + n])
    p += 1 + n
    if p + 3 > end:
        return out
    out["cipher_suite"] = (body[p] << 8) | body[p + 1]
    p += 3
    _hello_ext_scan(body, p, end, out, server=True)
    return out


# ---------------------------------------------------------------------------
# Full decoding


def dissect_body(ctx: Any, hs: Node, mt: int, buf: bytes, p: int, end: int, src: int, mlen: int) -> None:
    """Decode one complete handshake message body ``buf[p:end]`` into ``hs``."""
    pkt = ctx.pkt
    from_server = ctx.dir == 1
    fn = _BODIES.get(mt)
    if fn is None:
        if end > p:
            hs.add_text(f"Handshake body ({end - p} bytes, not decoded)", p, end - p)
        return
    try:
        q = fn(ctx, hs, buf, p, end, from_server)
    except Short as e:
        pkt.malformed(hs, f"Handshake message {N.HANDSHAKE_TYPES.get(mt, mt)}: {e.what} runs past "
                          f"the end of the message", e.offset, 0)
        return
    if q is not None and q < end:
        pkt.expert(hs, Severity.WARN, Group.MALFORMED,
                   f"{end - q} bytes of trailing data after the {N.HANDSHAKE_TYPES.get(mt, mt)}",
                   q, end - q)


def _random(hs: Node, buf: bytes, p: int, end: int) -> int:
    _u(buf, p, RANDOM_LEN, end, "random")
    rnd = bytes(buf[p:p + RANDOM_LEN])
    r = hs.add(FD.handshake_random, rnd, p, RANDOM_LEN)
    pkt = hs.pkt
    if pkt.tree or FD.handshake_random_time.primed:
        r.add(FD.handshake_random_time, int.from_bytes(rnd[:4], "big") * 1_000_000_000, p, 4)
    r.add(FD.handshake_random_bytes, rnd[4:], p + 4, RANDOM_LEN - 4)
    return p + RANDOM_LEN


def _vec8(hs: Node, buf: bytes, p: int, end: int, flen: Any, fval: Any, what: str) -> int:
    n = _u(buf, p, 1, end, what + " length")
    hs.add(flen, n, p, 1)
    _u(buf, p + 1, n, end, what)
    if n or fval is FD.handshake_session_id:
        if n:
            hs.add(fval, bytes(buf[p + 1:p + 1 + n]), p + 1, n)
    return p + 1 + n


def _client_hello(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    """RFC 6347 §4.2.1 ClientHello: like TLS 1.2's, plus the cookie after the session id."""
    ver = _u(buf, p, 2, end, "client_version")
    hs.add(FD.handshake_version, ver, p, 2)
    p = _random(hs, buf, p + 2, end)
    p = _vec8(hs, buf, p, end, FD.handshake_session_id_length, FD.handshake_session_id, "session_id")
    n = _u(buf, p, 1, end, "cookie length")
    hs.add(FD.handshake_cookie_length, n, p, 1)
    _u(buf, p + 1, n, end, "cookie")
    if n:
        hs.add(FD.handshake_cookie, bytes(buf[p + 1:p + 1 + n]), p + 1, n)
    p += 1 + n
    n = _u(buf, p, 2, end, "cipher_suites length")
    hs.add(FD.handshake_cipher_suites_length, n, p, 2)
    _u(buf, p + 2, n, end, "cipher_suites")
    cs = hs.add(FD.handshake_ciphersuites, None, p + 2, n)
    if hs.pkt.tree:
        cs.label = f"Cipher Suites ({n // 2} suite{'s' if n // 2 != 1 else ''})"
    for i in range(p + 2, p + 2 + n - 1, 2):
        cs.add(FD.handshake_ciphersuite, (buf[i] << 8) | buf[i + 1], i, 2)
    p += 2 + n
    n = _u(buf, p, 1, end, "compression_methods length")
    hs.add(FD.handshake_comp_methods_length, n, p, 1)
    _u(buf, p + 1, n, end, "compression_methods")
    cm = hs.add(FD.handshake_comp_methods, None, p + 1, n)
    if hs.pkt.tree:
        cm.label = f"Compression Methods ({n} method{'s' if n != 1 else ''})"
    for i in range(p + 1, p + 1 + n):
        cm.add(FD.handshake_comp_method, buf[i], i, 1)
    p += 1 + n
    if p < end:
        p = _extensions(ctx, hs, buf, p, end, HT_CLIENT_HELLO)
    return p


def _server_hello(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    ver = _u(buf, p, 2, end, "server_version")
    hs.add(FD.handshake_version, ver, p, 2)
    p = _random(hs, buf, p + 2, end)
    p = _vec8(hs, buf, p, end, FD.handshake_session_id_length, FD.handshake_session_id, "session_id")
    suite = _u(buf, p, 2, end, "cipher_suite")
    hs.add(FD.handshake_ciphersuite, suite, p, 2)
    hs.add(FD.handshake_comp_method, _u(buf, p + 2, 1, end, "compression_method"), p + 2, 1)
    p += 3
    if p < end:
        p = _extensions(ctx, hs, buf, p, end, HT_SERVER_HELLO)
    return p


def _hello_verify_request(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    """RFC 6347 §4.2.1: server_version and a stateless cookie."""
    hs.add(FD.handshake_version, _u(buf, p, 2, end, "server_version"), p, 2)
    n = _u(buf, p + 2, 1, end, "cookie length")
    hs.add(FD.handshake_cookie_length, n, p + 2, 1)
    _u(buf, p + 3, n, end, "cookie")
    hs.add(FD.handshake_cookie, bytes(buf[p + 3:p + 3 + n]), p + 3, n)
    return p + 3 + n


# -- extensions ------------------------------------------------------------------


def _extensions(ctx: Any, hs: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    elen = _u(buf, p, 2, end, "extensions length")
    hs.add(FD.handshake_extensions_length, elen, p, 2)
    p += 2
    stop = p + elen
    if stop > end:
        raise Short("extensions", p)
    tree = hs.pkt.tree
    while p < stop:
        et = _u(buf, p, 2, stop, "extension type")
        ln = _u(buf, p + 2, 2, stop, "extension length")
        d = p + 4
        _u(buf, d, ln, stop, f"extension {et} data")
        name = N.name(N.EXTENSION_TYPES, et)
        ex = hs.add_text(f"Extension: {name} (len={ln})", p, 4 + ln) if tree else hs
        ex.add(FD.handshake_extension_type, et, p, 2)
        ex.add(FD.handshake_extension_len, ln, p + 2, 2)
        fn = _EXTENSIONS.get(et)
        if fn is not None:
            try:
                q = fn(ex, buf, d, d + ln, mt)
            except Short as e:
                hs.pkt.malformed(ex, f"Extension {name}: {e.what} runs past the extension", e.offset)
                q = d + ln
            if q < d + ln:
                hs.pkt.expert(ex, Severity.WARN, Group.MALFORMED,
                              f"Extension {name}: {d + ln - q} bytes of trailing data", q, d + ln - q)
        elif ln:
            ex.add(FD.handshake_extension_data, bytes(buf[d:d + ln]), d, ln)
        p = d + ln
    return stop


def _ext_server_name(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 6066 §3: ServerNameList; empty in a ServerHello."""
    if p == end:
        return p
    n = _u(buf, p, 2, end, "server name list length")
    ex.add(FD.handshake_extensions_server_name_list_len, n, p, 2)
    p += 2
    stop = p + n
    _u(buf, p, n, end, "server name list")
    while p < stop:
        t = _u(buf, p, 1, stop, "name type")
        ln = _u(buf, p + 1, 2, stop, "name length")
        _u(buf, p + 3, ln, stop, "host_name")
        ex.add(FD.handshake_extensions_server_name_type, t, p, 1)
        ex.add(FD.handshake_extensions_server_name_len, ln, p + 1, 2)
        ex.add(FD.handshake_extensions_server_name, bytes(buf[p + 3:p + 3 + ln]).decode("utf-8", "replace"),
               p + 3, ln)
        p += 3 + ln
    return p


def _ext_max_frag(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    ex.add(FD.handshake_max_fragment_length, _u(buf, p, 1, end, "max_fragment_length"), p, 1)
    return p + 1


def _u16_list(ex: Node, buf: bytes, p: int, end: int, flen: Any, flist: Any, fitem: Any,
              what: str, unit: str) -> tuple[int, Node, int]:
    n = _u(buf, p, 2, end, what + " length")
    ex.add(flen, n, p, 2)
    _u(buf, p + 2, n, end, what)
    lst = ex.add(flist, None, p + 2, n)
    if ex.pkt.tree:
        lst.label = f"{flist.name} ({n // 2} {unit}{'s' if n // 2 != 1 else ''})"
    return p + 2, lst, n


def _ext_groups(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    p, lst, n = _u16_list(ex, buf, p, end, FD.handshake_extensions_supported_groups_length,
                          FD.handshake_extensions_supported_groups,
                          FD.handshake_extensions_supported_group, "supported groups", "group")
    for i in range(p, p + n - 1, 2):
        lst.add(FD.handshake_extensions_supported_group, (buf[i] << 8) | buf[i + 1], i, 2)
    return p + n


def _ext_point_formats(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    n = _u(buf, p, 1, end, "ec_point_formats length")
    ex.add(FD.handshake_extensions_ec_point_formats_length, n, p, 1)
    _u(buf, p + 1, n, end, "ec_point_formats")
    lst = ex.add(FD.handshake_extensions_ec_point_formats, None, p + 1, n)
    if ex.pkt.tree:
        lst.label = f"Elliptic curves point formats ({n})"
    for i in range(p + 1, p + 1 + n):
        lst.add(FD.handshake_extensions_ec_point_format, buf[i], i, 1)
    return p + 1 + n


def _sig_algs(node: Node, buf: bytes, p: int, end: int) -> int:
    p, lst, n = _u16_list(node, buf, p, end, FD.handshake_sig_hash_alg_len, FD.handshake_sig_hash_algs,
                          FD.handshake_sig_hash_alg, "signature algorithms", "algorithm")
    if node.pkt.tree:
        lst.label = f"Signature Hash Algorithms ({n // 2} algorithm{'s' if n // 2 != 1 else ''})"
    for i in range(p, p + n - 1, 2):
        a = lst.add(FD.handshake_sig_hash_alg, (buf[i] << 8) | buf[i + 1], i, 2)
        a.add(FD.handshake_sig_hash_hash, buf[i], i, 1)
        a.add(FD.handshake_sig_hash_sig, buf[i + 1], i + 1, 1)
    return p + n


def _ext_sig_algs(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    return _sig_algs(ex, buf, p, end)


def _ext_record_size_limit(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 8449 §4: a uint16 limit, at least 64."""
    v = _u(buf, p, 2, end, "record_size_limit")
    n = ex.add(FD.record_size_limit, v, p, 2)
    if v < 64:
        ex.pkt.expert(n, Severity.WARN, Group.PROTOCOL, "RFC 8449 §4: record_size_limit below 64", p, 2)
    return p + 2


def _ext_supported_versions(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 8446 §4.2.1: a list in the ClientHello, the selected version in the ServerHello."""
    if mt != HT_CLIENT_HELLO:
        ex.add(FD.handshake_extensions_supported_version, _u(buf, p, 2, end, "selected_version"), p, 2)
        return p + 2
    n = _u(buf, p, 1, end, "versions length")
    ex.add(FD.handshake_extensions_supported_versions_len, n, p, 1)
    _u(buf, p + 1, n, end, "versions")
    for i in range(p + 1, p + n, 2):
        ex.add(FD.handshake_extensions_supported_version, (buf[i] << 8) | buf[i + 1], i, 2)
    return p + 1 + n


def _key_share_entry(ex: Node, buf: bytes, p: int, end: int) -> int:
    g = _u(buf, p, 2, end, "key share group")
    ln = _u(buf, p + 2, 2, end, "key_exchange length")
    _u(buf, p + 4, ln, end, "key_exchange")
    ex.add(FD.handshake_extensions_key_share_group, g, p, 2)
    ex.add(FD.handshake_extensions_key_share_key_exchange_length, ln, p + 2, 2)
    ex.add(FD.handshake_extensions_key_share_key_exchange, bytes(buf[p + 4:p + 4 + ln]), p + 4, ln)
    return p + 4 + ln


def _ext_key_share(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 8446 §4.2.8: client_shares in a ClientHello, one entry (or a group in an HRR) from the server."""
    if mt == HT_CLIENT_HELLO:
        n = _u(buf, p, 2, end, "client_shares length")
        ex.add(FD.handshake_extensions_key_share_client_length, n, p, 2)
        stop = p + 2 + n
        _u(buf, p + 2, n, end, "client_shares")
        q = p + 2
        while q < stop:
            q = _key_share_entry(ex, buf, q, stop)
        return stop
    if end - p == 2:
        ex.add(FD.handshake_extensions_key_share_selected_group, _u(buf, p, 2, end, "selected_group"), p, 2)
        return p + 2
    return _key_share_entry(ex, buf, p, end)


def _ext_psk_ke_modes(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    n = _u(buf, p, 1, end, "ke_modes length")
    ex.add(FD.extension_psk_ke_modes_length, n, p, 1)
    _u(buf, p + 1, n, end, "ke_modes")
    for i in range(p + 1, p + 1 + n):
        ex.add(FD.extension_psk_ke_mode, buf[i], i, 1)
    return p + 1 + n


def _ext_pre_shared_key(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 8446 §4.2.11: OfferedPsks in a ClientHello, selected_identity from the server."""
    if mt != HT_CLIENT_HELLO:
        ex.add(FD.handshake_extensions_psk_identity_selected, _u(buf, p, 2, end, "selected_identity"), p, 2)
        return p + 2
    n = _u(buf, p, 2, end, "identities length")
    ex.add(FD.handshake_extensions_psk_identities_length, n, p, 2)
    q, stop = p + 2, p + 2 + n
    _u(buf, q, n, end, "identities")
    while q < stop:
        ln = _u(buf, q, 2, stop, "identity length")
        _u(buf, q + 2, ln + 4, stop, "identity")
        ex.add(FD.handshake_extensions_psk_identity_identity_length, ln, q, 2)
        ex.add(FD.handshake_extensions_psk_identity_identity, bytes(buf[q + 2:q + 2 + ln]), q + 2, ln)
        ex.add(FD.handshake_extensions_psk_identity_obfuscated_ticket_age,
               int.from_bytes(buf[q + 2 + ln:q + 6 + ln], "big"), q + 2 + ln, 4)
        q += 6 + ln
    n = _u(buf, q, 2, end, "binders length")
    ex.add(FD.handshake_extensions_psk_binders_len, n, q, 2)
    _u(buf, q + 2, n, end, "binders")
    ex.add(FD.handshake_extensions_psk_binders, None, q + 2, n)
    return q + 2 + n


def _ext_cookie(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 8446 §4.2.2 (DTLS 1.3 uses it instead of HelloVerifyRequest, RFC 9147 §5.1)."""
    n = _u(buf, p, 2, end, "cookie length")
    ex.add(FD.handshake_extensions_cookie_len, n, p, 2)
    _u(buf, p + 2, n, end, "cookie")
    ex.add(FD.handshake_extensions_cookie, bytes(buf[p + 2:p + 2 + n]), p + 2, n)
    return p + 2 + n


def _ext_cid(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 9146 §3: opaque cid<0..2^8-1>, the CID the sender wants to receive."""
    n = _u(buf, p, 1, end, "cid length")
    ex.add(FD.connection_id_length, n, p, 1)
    _u(buf, p + 1, n, end, "cid")
    if n:
        ex.add(FD.connection_id, bytes(buf[p + 1:p + 1 + n]), p + 1, n)
    return p + 1 + n


def _ext_reneg(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 5746 §3.2."""
    n = _u(buf, p, 1, end, "renegotiated_connection length")
    ex.add(FD.handshake_extensions_reneg_info_len, n, p, 1)
    _u(buf, p + 1, n, end, "renegotiated_connection")
    if n:
        ex.add(FD.handshake_extensions_reneg_info, bytes(buf[p + 1:p + 1 + n]), p + 1, n)
    return p + 1 + n


def _ext_alpn(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """RFC 7301 §3.1."""
    n = _u(buf, p, 2, end, "ALPN length")
    ex.add(FD.handshake_extensions_alpn_len, n, p, 2)
    q, stop = p + 2, p + 2 + n
    _u(buf, q, n, end, "protocol_name_list")
    while q < stop:
        ln = _u(buf, q, 1, stop, "protocol name length")
        _u(buf, q + 1, ln, stop, "protocol name")
        ex.add(FD.handshake_extensions_alpn_str_len, ln, q, 1)
        ex.add(FD.handshake_extensions_alpn_str, bytes(buf[q + 1:q + 1 + ln]).decode("utf-8", "replace"),
               q + 1, ln)
        q += 1 + ln
    return stop


def _ext_heartbeat(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    ex.add(FD.handshake_extension_heartbeat_mode, _u(buf, p, 1, end, "heartbeat mode"), p, 1)
    return p + 1


def _ext_padding(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    if end > p:
        ex.add(FD.handshake_extensions_padding_data, bytes(buf[p:end]), p, end - p)
    return end


def _ext_ecjpake_kkpp(ex: Node, buf: bytes, p: int, end: int, mt: int) -> int:
    """Thread/Mbed TLS ecjpake_kkpp: two ECJPAKEKeyKP (X, ZKP{V, r}) of EC J-PAKE round one."""
    data = bytes(buf[p:end])
    ex.add(FD.handshake_extension_data, data, p, end - p)  # Wireshark 4.0 only knows it as data
    ex.add(FD.handshake_ecjpake_kkpp, data, p, end - p)
    if ex.pkt.tree:
        q = p
        try:
            for i in (1, 2):
                q = _ecjpake_kp(ex, buf, q, end, None, f"KKP {i}")
        except Short:
            pass
    return end


_EXTENSIONS = {
    EXT_SERVER_NAME: _ext_server_name,
    EXT_MAX_FRAG: _ext_max_frag,
    EXT_GROUPS: _ext_groups,
    EXT_EC_POINT_FORMATS: _ext_point_formats,
    EXT_SIG_ALGS: _ext_sig_algs,
    EXT_HEARTBEAT: _ext_heartbeat,
    EXT_ALPN: _ext_alpn,
    EXT_PADDING: _ext_padding,
    EXT_RECORD_SIZE_LIMIT: _ext_record_size_limit,
    EXT_PRE_SHARED_KEY: _ext_pre_shared_key,
    EXT_SUPPORTED_VERSIONS: _ext_supported_versions,
    EXT_COOKIE: _ext_cookie,
    EXT_PSK_KE_MODES: _ext_psk_ke_modes,
    EXT_KEY_SHARE: _ext_key_share,
    EXT_CID_OLD: _ext_cid,
    EXT_CID: _ext_cid,
    EXT_ECJPAKE_KKPP: _ext_ecjpake_kkpp,
    EXT_RENEGOTIATION_INFO: _ext_reneg,
}


# -- certificates ------------------------------------------------------------------


def _certificate(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    """RFC 5246 §7.4.2: certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>."""
    n = _u(buf, p, 3, end, "certificate_list length")
    hs.add(FD.handshake_certificates_length, n, p, 3)
    stop = p + 3 + n
    _u(buf, p + 3, n, end, "certificate_list")
    lst = hs.add(FD.handshake_certificates, None, p + 3, n)
    if hs.pkt.tree:
        lst.label = f"Certificates ({n} bytes)"
    q = p + 3
    k = 0
    while q < stop:
        ln = _u(buf, q, 3, stop, "certificate length")
        _u(buf, q + 3, ln, stop, "certificate")
        lst.add(FD.handshake_certificate_length, ln, q, 3)
        der = bytes(buf[q + 3:q + 3 + ln])
        c = lst.add(FD.handshake_certificate, der, q + 3, ln)
        if k < MAX_CERTIFICATES:
            _x509(c, der, q + 3, ln)
        k += 1
        q += 3 + ln
    return stop


_X509_FIELDS = ("subject", "subject_cn", "subject_serial_number", "issuer", "serial", "not_before",
                "not_after", "key_type", "signature_algorithm")


def _x509(node: Node, der: bytes, p: int, ln: int) -> None:
    """Subject, issuer, validity and key of one certificate, via ``cryptography``.

    The subject's serialNumber attribute (OID 2.5.4.5) is pulled out on its own: it is the
    IDevID identity (IEEE 802.1AR, RFC 8995 §2.3.1) that names a pledge in the onboarding logs.
    """
    pkt = node.pkt
    if not (pkt.tree or any(getattr(FD, "x509_" + f).primed for f in _X509_FIELDS)):
        return
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(der)
        subject = cert.subject.rfc4514_string()
        issuer = cert.issuer.rfc4514_string()
        serial = cert.serial_number
        nb = cert.not_valid_before_utc
        na = cert.not_valid_after_utc
        cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        sn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]
        key = cert.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            ktype = f"EC {key.curve.name} ({key.key_size} bits)"
        elif isinstance(key, rsa.RSAPublicKey):
            ktype = f"RSA ({key.key_size} bits)"
        elif isinstance(key, ed25519.Ed25519PublicKey):
            ktype = "Ed25519"
        elif isinstance(key, ed448.Ed448PublicKey):
            ktype = "Ed448"
        else:
            ktype = type(key).__name__
        try:
            sigalg = cert.signature_algorithm_oid._name
        except Exception:  # noqa: BLE001 - cosmetic only
            sigalg = cert.signature_algorithm_oid.dotted_string
    except Exception as exc:  # noqa: BLE001 - any DER damage is the certificate's, not ours
        pkt.expert(node, Severity.WARN, Group.MALFORMED, f"Certificate does not parse as X.509: {exc}", p, ln)
        return
    node.add(FD.x509_subject, subject, p, ln)
    for v in cn:
        node.add(FD.x509_subject_cn, str(v), p, ln)
    for v in sn:
        node.add(FD.x509_subject_serial_number, str(v), p, ln)
    node.add(FD.x509_issuer, issuer, p, ln)
    node.add(FD.x509_serial, f"{serial:x}", p, ln)
    node.add(FD.x509_not_before, _ns(nb), p, ln)
    node.add(FD.x509_not_after, _ns(na), p, ln)
    node.add(FD.x509_key_type, ktype, p, ln)
    node.add(FD.x509_signature_algorithm, sigalg, p, ln)
    if pkt.tree:
        node.label = f"Certificate ({ln} bytes): {subject}"


def _ns(t: _dt.datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000


# -- key exchange ------------------------------------------------------------------


def _kx(ctx: Any) -> str:
    """The key exchange of the session's cipher suite, from its IANA name (TLS_<KX>_WITH_...)."""
    sess = ctx.sess
    suite = sess.cipher_suite if sess is not None else None
    if suite is None:
        return ""
    name = N.CIPHER_SUITES.get(suite, "")
    if "_WITH_" not in name:
        return ""
    return name[4:name.index("_WITH_")]


def _point(hs: Node, buf: bytes, p: int, end: int, flen: Any, fval: Any) -> int:
    n = _u(buf, p, 1, end, "point length")
    _u(buf, p + 1, n, end, "point")
    hs.add(flen, n, p, 1)
    hs.add(fval, bytes(buf[p + 1:p + 1 + n]), p + 1, n)
    return p + 1 + n


def _ecjpake_kp(hs: Node, buf: bytes, p: int, end: int, server: bool | None, label: str = "") -> int:
    """ECJPAKEKeyKP: ECPoint X, ECSchnorrZKP {ECPoint V; opaque r<1..2^8-1>} (RFC 8236 §3)."""
    if server is None:  # inside ecjpake_kkpp: no dedicated fields, tree text only
        for what in ("X", "V", "r"):
            n = _u(buf, p, 1, end, f"{label} {what} length")
            _u(buf, p + 1, n, end, f"{label} {what}")
            hs.add_text(f"{label} {what}: {bytes(buf[p + 1:p + 1 + n]).hex()}", p, 1 + n)
            p += 1 + n
        return p
    fx = (FD.handshake_xs_len, FD.handshake_xs) if server else (FD.handshake_xc_len, FD.handshake_xc)
    fv = (FD.handshake_vs_len, FD.handshake_vs) if server else (FD.handshake_vc_len, FD.handshake_vc)
    fr = (FD.handshake_rs_len, FD.handshake_rs) if server else (FD.handshake_rc_len, FD.handshake_rc)
    p = _point(hs, buf, p, end, *fx)
    p = _point(hs, buf, p, end, *fv)
    return _point(hs, buf, p, end, *fr)


def _ec_params(hs: Node, buf: bytes, p: int, end: int) -> int:
    """RFC 8422 §5.4 ECParameters: only named_curve (3) is still allowed."""
    ct = _u(buf, p, 1, end, "curve_type")
    hs.add(FD.handshake_server_curve_type, ct, p, 1)
    if ct != 3:
        hs.pkt.expert(hs, Severity.WARN, Group.PROTOCOL,
                      f"RFC 8422 §5.4: curve_type {ct} is deprecated; parameters not decoded", p, 1)
        raise Short("explicit curve parameters", p)
    hs.add(FD.handshake_server_named_curve, _u(buf, p + 1, 2, end, "named_curve"), p + 1, 2)
    return p + 3


def _has_sig_alg(ctx: Any) -> bool:
    """Signatures name their algorithm only from TLS 1.2 / DTLS 1.2 on (RFC 5246 §4.7)."""
    sess = ctx.sess
    v = sess.version if sess is not None else None
    return v not in (0xFEFF, 0x0100)


def _signature(ctx: Any, hs: Node, buf: bytes, p: int, end: int, flen: Any = None,
               fsig: Any = None) -> int:
    """RFC 5246 §4.7 digitally-signed: [SignatureAndHashAlgorithm] + opaque<0..2^16-1>."""
    if p >= end:
        return p
    if _has_sig_alg(ctx):
        alg = _u(buf, p, 2, end, "signature algorithm")
        a = hs.add(FD.handshake_sig_hash_alg, alg, p, 2)
        a.add(FD.handshake_sig_hash_hash, buf[p], p, 1)
        a.add(FD.handshake_sig_hash_sig, buf[p + 1], p + 1, 1)
        p += 2
    n = _u(buf, p, 2, end, "signature length")
    _u(buf, p + 2, n, end, "signature")
    hs.add(flen or FD.handshake_sig_len, n, p, 2)
    hs.add(fsig or FD.handshake_sig, bytes(buf[p + 2:p + 2 + n]), p + 2, n)
    return p + 2 + n


def _psk_hint(hs: Node, buf: bytes, p: int, end: int) -> int:
    n = _u(buf, p, 2, end, "psk_identity_hint length")
    _u(buf, p + 2, n, end, "psk_identity_hint")
    hs.add(FD.handshake_hint_len, n, p, 2)
    if n:
        hs.add(FD.handshake_hint, bytes(buf[p + 2:p + 2 + n]), p + 2, n)
    return p + 2 + n


def _server_key_exchange(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    kx = _kx(ctx)
    if kx == "ECJPAKE":
        # Thread / draft-cragie-tls-ecjpake: ECParameters then the server's round-two ECJPAKEKeyKP.
        p = _ec_params(hs, buf, p, end)
        return _ecjpake_kp(hs, buf, p, end, True)
    if kx in ("ECDHE_ECDSA", "ECDHE_RSA", "ECDH_anon"):
        p = _ec_params(hs, buf, p, end)
        p = _point(hs, buf, p, end, FD.handshake_server_point_len, FD.handshake_server_point)
        return _signature(ctx, hs, buf, p, end) if kx != "ECDH_anon" else p
    if kx in ("PSK", "RSA_PSK"):
        return _psk_hint(hs, buf, p, end)
    if kx == "ECDHE_PSK":  # RFC 5489 §2
        p = _psk_hint(hs, buf, p, end)
        p = _ec_params(hs, buf, p, end)
        return _point(hs, buf, p, end, FD.handshake_server_point_len, FD.handshake_server_point)
    hs.add_text(f"Server key exchange parameters ({kx or 'unknown key exchange'}, {end - p} bytes)",
                p, end - p)
    return end


def _client_key_exchange(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    kx = _kx(ctx)
    if kx == "ECJPAKE":
        return _ecjpake_kp(hs, buf, p, end, False)
    if kx.startswith("ECDHE") or kx.startswith("ECDH_"):
        if kx == "ECDHE_PSK":
            p = _identity(hs, buf, p, end)
        return _point(hs, buf, p, end, FD.handshake_client_point_len, FD.handshake_client_point)
    if kx == "PSK":
        return _identity(hs, buf, p, end)
    if kx in ("RSA", "RSA_PSK"):
        if kx == "RSA_PSK":
            p = _identity(hs, buf, p, end)
        n = _u(buf, p, 2, end, "EncryptedPreMasterSecret length")
        _u(buf, p + 2, n, end, "EncryptedPreMasterSecret")
        hs.add(FD.handshake_epms_len, n, p, 2)
        hs.add(FD.handshake_epms, bytes(buf[p + 2:p + 2 + n]), p + 2, n)
        return p + 2 + n
    hs.add_text(f"Client key exchange ({kx or 'unknown key exchange'}, {end - p} bytes)", p, end - p)
    return end


def _identity(hs: Node, buf: bytes, p: int, end: int) -> int:
    """RFC 4279 §2: psk_identity<0..2^16-1>."""
    n = _u(buf, p, 2, end, "psk_identity length")
    _u(buf, p + 2, n, end, "psk_identity")
    hs.add(FD.handshake_identity_len, n, p, 2)
    hs.add(FD.handshake_identity, bytes(buf[p + 2:p + 2 + n]), p + 2, n)
    return p + 2 + n


def _certificate_request(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    """RFC 5246 §7.4.4: certificate types, signature algorithms, acceptable CA names."""
    n = _u(buf, p, 1, end, "certificate_types length")
    hs.add(FD.handshake_cert_types_count, n, p, 1)
    _u(buf, p + 1, n, end, "certificate_types")
    ct = hs.add(FD.handshake_cert_types, None, p + 1, n)
    if hs.pkt.tree:
        ct.label = f"Certificate types ({n} type{'s' if n != 1 else ''})"
    for i in range(p + 1, p + 1 + n):
        ct.add(FD.handshake_cert_type, buf[i], i, 1)
    p += 1 + n
    p = _sig_algs(hs, buf, p, end)
    n = _u(buf, p, 2, end, "certificate_authorities length")
    hs.add(FD.handshake_dnames_len, n, p, 2)
    stop = p + 2 + n
    _u(buf, p + 2, n, end, "certificate_authorities")
    dn = hs.add(FD.handshake_dnames, None, p + 2, n)
    q = p + 2
    while q < stop:
        ln = _u(buf, q, 2, stop, "distinguished name length")
        _u(buf, q + 2, ln, stop, "distinguished name")
        dn.add(FD.handshake_dname_len, ln, q, 2)
        d = dn.add(FD.handshake_dname, None, q + 2, ln)
        if hs.pkt.tree:
            d.label = f"Distinguished Name: {_dn_text(bytes(buf[q + 2:q + 2 + ln]))}"
        q += 2 + ln
    return stop


_DN_OIDS = {
    "2.5.4.3": "CN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
    "2.5.4.10": "O", "2.5.4.11": "OU", "0.9.2342.19200300.100.1.25": "DC",
}


def _der(buf: bytes, p: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of one DER TLV (X.690 §8.1)."""
    if p + 2 > end:
        raise ValueError("short")
    tag, ln = buf[p], buf[p + 1]
    p += 2
    if ln & 0x80:
        k = ln & 0x7F
        if k == 0 or k > 3 or p + k > end:
            raise ValueError("length")
        ln = int.from_bytes(buf[p:p + k], "big")
        p += k
    if p + ln > end:
        raise ValueError("short")
    return tag, p, p + ln


def _oid(b: bytes) -> str:
    if not b:
        return ""
    parts = [b[0] // 40, b[0] % 40]
    v = 0
    for c in b[1:]:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(v)
            v = 0
    return ".".join(map(str, parts))


def _dn_text(der: bytes) -> str:
    """An X.501 Name (RDNSequence) as RFC 4514 text, most significant RDN last."""
    try:
        _, p, end = _der(der, 0, len(der))
        rdns = []
        while p < end:
            _, sp, send = _der(der, p, end)  # SET OF AttributeTypeAndValue
            parts = []
            while sp < send:
                _, ap, aend = _der(der, sp, send)
                _, op, oend = _der(der, ap, aend)
                _, vp, vend = _der(der, oend, aend)
                oid = _oid(der[op:oend])
                parts.append(f"{_DN_OIDS.get(oid, oid)}={der[vp:vend].decode('utf-8', 'replace')}")
                sp = aend
            rdns.append("+".join(parts))
            p = send
        return ",".join(reversed(rdns))
    except ValueError:
        return der.hex()


def _certificate_verify(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    """RFC 5246 §7.4.8: digitally-signed handshake hash."""
    return _signature(ctx, hs, buf, p, end, FD.handshake_client_cert_vrfy_sig_len,
                      FD.handshake_client_cert_vrfy_sig)


def _new_session_ticket(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    """RFC 5077 §3.3: lifetime hint and an opaque ticket."""
    hs.add(FD.handshake_session_ticket_lifetime_hint, _u(buf, p, 4, end, "ticket_lifetime_hint"), p, 4)
    n = _u(buf, p + 4, 2, end, "ticket length")
    _u(buf, p + 6, n, end, "ticket")
    hs.add(FD.handshake_session_ticket_length, n, p + 4, 2)
    hs.add(FD.handshake_session_ticket, bytes(buf[p + 6:p + 6 + n]), p + 6, n)
    return p + 6 + n


def _empty(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    return p


def _finished(ctx: Any, hs: Node, buf: bytes, p: int, end: int, from_server: bool) -> int:
    hs.add(FD.handshake_verify_data, None, p, end - p)
    return end


_BODIES = {
    HT_HELLO_REQUEST: _empty,
    HT_CLIENT_HELLO: _client_hello,
    HT_SERVER_HELLO: _server_hello,
    HT_HVR: _hello_verify_request,
    HT_NEW_SESSION_TICKET: _new_session_ticket,
    HT_CERTIFICATE: _certificate,
    HT_SERVER_KEY_EXCHANGE: _server_key_exchange,
    HT_CERTIFICATE_REQUEST: _certificate_request,
    HT_SERVER_HELLO_DONE: _empty,
    HT_CERTIFICATE_VERIFY: _certificate_verify,
    HT_CLIENT_KEY_EXCHANGE: _client_key_exchange,
    HT_FINISHED: _finished,
}
