"""DTLS record layer: DTLS 1.0/1.2 plaintext records, RFC 9146 CID records, DTLS 1.3 unified headers.

Everything a constrained-device onboarding runs over: the pledge's handshake with the Registrar
(cBRSKI), relayed unchanged or wrapped by a Join Proxy, and the Thread joiner's EC J-PAKE
handshake. The record layer always runs the session state (flights, retransmissions, fragment
reassembly, timing) because that is what the overhead analysis measures; message *bodies* are
decoded only for a tree or primed fields (:mod:`dtls_handshake`).

Recognition: UDP 5684 (RFC 7252 §12.8 coaps) and a heuristic on any UDP port that demands the whole
datagram be a chain of well-formed records ending exactly at the datagram end.
"""

from __future__ import annotations

import struct
from typing import Any

from jpdissect.crypto import dtls12 as _dec12
from jpdissect.crypto import dtls13 as _dec13
from jpdissect.dissectors import dtls_handshake as HS
from jpdissect.dissectors import dtls_names as N
from jpdissect.dissectors.dtls_fields import FD, P
from jpdissect.dissectors.registry import REGISTRY, dissector, heuristic
from jpdissect.dtls_sessions import (
    C2S,
    MAX_PENDING,
    MAX_REASSEMBLY,
    MAX_RECORD_KEYS,
    S2C,
    Alert,
    DtlsSession,
    table,
)
from jpdissect.model import Group, Node, Packet, Severity
from jpdissect.reassembly import Issue, ReassemblyTable, Status, table_in

DTLS_PORT = 5684
RECORD_HEADER = 13          # RFC 6347 §4.1
HANDSHAKE_HEADER = 12       # RFC 6347 §4.2.2
MAX_RECORDS_PER_DATAGRAM = 256
MAX_CID_LENGTH = 255        # RFC 9146 §3: cid<0..2^8-1>
#: Record versions a plaintext DTLS record may carry (0x0100: OpenSSL before 0.9.8f; 0xfefc is
#: never on the wire in a record header but costs nothing to accept).
RECORD_VERSIONS = frozenset({0xFEFF, 0xFEFD, 0xFEFC, 0x0100})
#: type(1) version(2) epoch(2) sequence_number(6, read as 2 + 4): the record header up to the CID;
#: then length(2) for a record without one.
_RECORD_START = struct.Struct(">BHHHI")
_RECORD_HEADER = struct.Struct(">BHHHIH")
#: msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3), read as 4 + 2 + 4 + 2.
_HANDSHAKE_HDR = struct.Struct(">IHIH")

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APP, CT_HEARTBEAT, CT_CID, CT_ACK = 20, 21, 22, 23, 24, 25, 26
HT_CLIENT_HELLO, HT_SERVER_HELLO, HT_HVR = 1, 2, 3
HT_FINISHED = 20

# Fields recorded by the record layer itself; any other primed dtls field needs message bodies.
_HEADER_FIELDS = frozenset(
    a for a in P.fields
    if a.startswith(("dtls.record", "dtls.app_data", "dtls.enc_content", "dtls.unified_header",
                     "dtls.alert_message", "dtls.change_cipher_spec", "dtls.flight", "dtls.session",
                     "dtls.retransmission", "dtls.relayed_copy", "dtls.fragment", "dtls.reassembled"))
    or a in ("dtls.handshake", "dtls.handshake.type", "dtls.handshake.length",
             "dtls.handshake.message_seq", "dtls.handshake.fragment_offset",
             "dtls.handshake.fragment_length", "dtls.handshake.encrypted")
)


#: Record-header fields (RFC 6347 §4.1, RFC 9146 §4) and handshake-header fields (§4.2.2): each group
#: is filled only when the tree is built or one of its fields is primed.
_RECORD_HEADER_FIELDS = (FD.record, FD.record_content_type, FD.record_special_type, FD.record_version,
                         FD.record_epoch, FD.record_sequence_number, FD.record_connection_id,
                         FD.record_length)
_HANDSHAKE_HEADER_FIELDS = (FD.handshake, FD.handshake_type, FD.handshake_length,
                            FD.handshake_message_seq, FD.handshake_fragment_offset,
                            FD.handshake_fragment_length)


class _Plan:
    """Which DTLS fields and field groups this engine records, decided on its first DTLS datagram.

    Fields are primed before an engine starts (the CLI, the API and the TUI all do), so the
    answer holds for the run (it is redone if the engine's tree setting changes); per record the
    dissector then tests one attribute instead of calling ``add`` for every field nobody asked for.
    """

    __slots__ = ("tree", "body", "rec", "hs", "record", "content_type", "special_type", "version", "epoch",
                 "seq", "cid", "length", "handshake", "hs_type", "hs_length", "hs_seq", "hs_offset",
                 "hs_frag_length")

    def __init__(self, tree: bool) -> None:
        self.tree = tree
        #: message bodies (dtls_handshake): any field outside the record layer's own
        self.body = tree or any(fd.primed for a, fd in P.fields.items() if a not in _HEADER_FIELDS)
        # One flag per header field, and one per group.
        (self.record, self.content_type, self.special_type, self.version, self.epoch, self.seq,
         self.cid, self.length) = (tree or fd.primed for fd in _RECORD_HEADER_FIELDS)
        (self.handshake, self.hs_type, self.hs_length, self.hs_seq, self.hs_offset,
         self.hs_frag_length) = (tree or fd.primed for fd in _HANDSHAKE_HEADER_FIELDS)
        self.rec = tree or any(fd.primed for fd in _RECORD_HEADER_FIELDS)
        self.hs = tree or any(fd.primed for fd in _HANDSHAKE_HEADER_FIELDS)


def _plan(pkt: Packet) -> _Plan:
    st = pkt.cap.state
    plan = st.get("_plan.dtls")
    if plan is None or plan.tree != pkt.tree:  # (sessions.first_pass turns an engine's tree off)
        plan = st["_plan.dtls"] = _Plan(pkt.tree)
    return plan


# ---------------------------------------------------------------------------
# Per-datagram context


class Ctx:
    """What one call of the dissector knows: packet, session, direction, replay memo."""

    __slots__ = ("pkt", "sess", "dir", "leg", "live", "memo", "memo_i", "memo_key", "body", "infos",
                 "flight", "has_new_hs", "has_retrans", "col", "tbl", "retrans_ccs", "keep", "plan")

    sess: DtlsSession | None
    dir: int
    leg: tuple[Any, Any]
    memo: list[Any]
    memo_i: int
    memo_key: tuple[int, int]

    def __init__(self, pkt: Packet, plan: _Plan) -> None:
        # sess, dir, leg and the memo slots are set by _begin, which every datagram runs first.
        self.pkt = pkt
        self.plan = plan
        self.body = plan.body
        self.live = True
        self.keep = False  # whether this datagram's memo is worth keeping for re-dissection
        self.infos: list[str] = []
        self.flight: int | None = None
        self.has_new_hs = False
        self.has_retrans = False
        self.col: str | None = None
        self.tbl = table(pkt.cap.state)
        self.retrans_ccs = False

    def record(self, result: Any) -> Any:
        """Remember a state step's result so a re-dissected frame can replay it."""
        self.memo.append(result)
        return result

    def replay(self) -> Any:
        """The next recorded step result of a frame dissected before (None when nothing was kept)."""
        if self.memo_i < len(self.memo):
            r = self.memo[self.memo_i]
            self.memo_i += 1
            return r
        return None

    def step(self, fn: Any, *args: Any) -> Any:
        """Run a state-changing step once; a re-dissected frame gets the recorded result back."""
        if self.live:
            self.keep = True
            return self.record(fn(self, *args))
        return self.replay()


def _endpoints(pkt: Packet) -> tuple[Any, Any]:
    sc = pkt.scratch
    src = sc.get("dtls.src")
    dst = sc.get("dtls.dst")
    if src is None:
        src = (pkt.net_src, pkt.srcport)
    if dst is None:
        dst = (pkt.net_dst, pkt.dstport)
    return src, dst


def _session_key(pkt: Packet, src: Any, dst: Any) -> Any:
    k = pkt.scratch.get("dtls.session_key")
    if k is not None:
        return k
    try:
        return (src, dst) if src <= dst else (dst, src)
    except TypeError:  # endpoints of mixed types: order by repr, deterministic enough
        return (src, dst) if repr(src) <= repr(dst) else (dst, src)


def _guess_dir(pkt: Packet) -> int:
    sp, dp = pkt.srcport, pkt.dstport
    if dp == DTLS_PORT and sp != DTLS_PORT:
        return C2S
    if sp == DTLS_PORT and dp != DTLS_PORT:
        return S2C
    return C2S if dp <= sp else S2C


#: memo slots: [session, direction, (flight, datagram was a retransmission), step results...]
_MEMO_STEPS = 3


def _begin(ctx: Ctx, buf: bytes, off: int, end: int) -> None:
    """Find or start the session and the direction of this datagram.

    The engine may dissect a frame again (the TUI re-opens frames on demand): a frame at or
    before the newest one seen is replayed from what its first dissection recorded, so the
    session table never counts it twice. Datagrams with nothing worth recording (application
    data) keep no memo and are replayed statelessly.
    """
    pkt = ctx.pkt
    tbl = ctx.tbl
    sc = pkt.scratch
    src, dst = _endpoints(pkt)
    leg = ctx.leg = (src, dst)
    n = pkt.number
    calls = sc.get("dtls.calls", 0)
    sc["dtls.calls"] = calls + 1
    key = _session_key(pkt, src, dst)
    if n < tbl.last_frame or (n == tbl.last_frame and not sc.get("dtls.live")):
        ctx.live = False
        memo = tbl.memo.get((n, calls))
        if memo is not None:
            ctx.memo = memo
            ctx.sess, ctx.dir = memo[0], memo[1]
            ctx.memo_i = _MEMO_STEPS
        else:
            sess = tbl.by_key.get(key) or DtlsSession(0, key)
            ctx.sess = sess
            ctx.dir = sess.dirs.get(leg, _guess_dir(pkt))
            ctx.memo = [sess, ctx.dir, (None, False)]
            ctx.memo_i = _MEMO_STEPS
        return
    sc["dtls.live"] = True
    tbl.last_frame = n
    sess = tbl.lookup(key, pkt.ts_ns)
    # A fresh ClientHello (message_seq 0, a random not seen in this session) starts a new session
    # on the same key: a pledge reconnecting from the same port is a new onboarding attempt.
    ch = _peek_client_hello(buf, off, end) if end > off and buf[off] == CT_HANDSHAKE else None
    if sess is not None and ch is not None and sess.client_random is not None and ch != sess.client_random:
        sess = None
    if sess is None:
        sess = tbl.new(key, n)
    leg = ctx.leg = sess.intern_leg(leg)
    d = sess.dirs.get(leg)
    if d is None:
        if ch is not None:
            d = C2S
        elif _peek_server_first(buf, off, end):
            d = S2C
        else:
            d = _guess_dir(pkt)
        sess.dirs[leg] = d
        sess.dirs.setdefault((dst, src), 1 - d)
        sess.legs.add(leg if d == C2S else (dst, src))
        if sess.client is None:
            sess.client, sess.server = (src, dst) if d == C2S else (dst, src)
    ctx.sess, ctx.dir = sess, d
    sess.last_frame = n
    sess.last_ns = pkt.ts_ns
    ctx.memo = [sess, d, (None, False)]
    ctx.memo_i = _MEMO_STEPS
    ctx.memo_key = (n, calls)


def _peek_client_hello(buf: bytes, off: int, end: int) -> bytes | None:
    """The random of a ClientHello (its first fragment) starting the datagram under epoch 0, else None."""
    if end - off < RECORD_HEADER + HANDSHAKE_HEADER + 34:
        return None
    if buf[off] != CT_HANDSHAKE or buf[off + 3] or buf[off + 4]:
        return None
    h = off + RECORD_HEADER
    if buf[h] != HT_CLIENT_HELLO or buf[h + 6] or buf[h + 7] or buf[h + 8]:  # fragment_offset 0
        return None
    return bytes(buf[h + 14:h + 46])


def _peek_server_first(buf: bytes, off: int, end: int) -> bool:
    if end - off < RECORD_HEADER + 1 or buf[off] != CT_HANDSHAKE:
        return False
    return buf[off + RECORD_HEADER] in (HT_SERVER_HELLO, HT_HVR)


# ---------------------------------------------------------------------------
# Heuristic


def _plausible_record(buf: bytes, off: int, end: int) -> int:
    """End offset of a well-formed plaintext record at ``off``, or -1."""
    if end - off < RECORD_HEADER:
        return -1
    ct = buf[off]
    if ct < CT_CCS or ct > CT_ACK or ct == CT_CID:
        return -1
    if ((buf[off + 1] << 8) | buf[off + 2]) not in RECORD_VERSIONS:
        return -1
    ln = (buf[off + 11] << 8) | buf[off + 12]
    p = off + RECORD_HEADER
    if ln == 0 or p + ln > end:
        return -1
    if buf[off + 3] == 0 and buf[off + 4] == 0:  # epoch 0: the content is plaintext, check it
        if ct == CT_HANDSHAKE:
            if ln < HANDSHAKE_HEADER or buf[p] not in N.HANDSHAKE_TYPES:
                return -1
            mlen = int.from_bytes(buf[p + 1:p + 4], "big")
            foff = int.from_bytes(buf[p + 6:p + 9], "big")
            flen = int.from_bytes(buf[p + 9:p + 12], "big")
            if foff + flen > mlen or HANDSHAKE_HEADER + flen > ln:
                return -1
        elif ct == CT_CCS:
            if ln != 1 or buf[p] != 1:
                return -1
        elif ct == CT_ALERT:
            if ln != 2 or buf[p] not in (1, 2):
                return -1
    return p + ln


@heuristic("udp", "dtls_udp", "dtls")
def heur_dtls(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """A chain of DTLS records filling the datagram exactly (Wireshark's dissect_dtls_heur, stricter)."""
    if end - off < RECORD_HEADER + 1:
        return False
    b0 = buf[off]
    if CT_CCS <= b0 <= CT_ACK:
        p, n = off, 0
        while p < end and n < MAX_RECORDS_PER_DATAGRAM:
            p = _plausible_record(buf, p, end)
            if p < 0:
                return False
            n += 1
        if p != end:
            return False
        return dissect_dtls(pkt, buf, off, end, src)
    if b0 & 0xE0 == 0x20 and b0 & 0x04:
        # A unified header is only a byte pattern; claim it only for a conversation whose
        # DTLS handshake we already saw (RFC 9147 §4: the plaintext ClientHello comes first).
        s, d = _endpoints(pkt)
        if table(pkt.cap.state).lookup(_session_key(pkt, s, d), pkt.ts_ns) is not None:
            return dissect_dtls(pkt, buf, off, end, src)
    return False


# ---------------------------------------------------------------------------
# The dissector


@dissector("dtls", "Datagram Transport Layer Security")
def dissect_dtls(pkt: Packet, buf: bytes, off: int, end: int, src: int) -> bool:
    """All DTLS records of one datagram (RFC 6347 §4.1.1: a datagram may carry several)."""
    lay = pkt.add_layer(P, off, end - off, src)
    tree = pkt.tree
    ctx = Ctx(pkt, _plan(pkt))
    _begin(ctx, buf, off, end)
    sess = ctx.sess
    assert sess is not None
    pkt.scratch["dtls.session"] = sess  # for relay/session dissectors above and below us
    if tree or FD.session.primed:
        lay.add(FD.session, sess.index, off, 0, generated=True)
    start = off
    nrec = 0
    while off < end:
        if nrec >= MAX_RECORDS_PER_DATAGRAM:
            pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                       f"More than {MAX_RECORDS_PER_DATAGRAM} records in one datagram; the rest is not shown",
                       off)
            break
        b0 = buf[off]
        if CT_CCS <= b0 <= CT_ACK:
            off = _plaintext_record(ctx, lay, buf, off, end, src)
        elif b0 & 0xE0 == 0x20:
            off = _unified_record(ctx, lay, buf, off, end, src)
        else:
            # RFC 9147 §4.1: the first byte demultiplexes; anything else is not a DTLS record.
            lay.add(FD.enc_content, buf[off:end], off, end - off)
            pkt.expert(lay, Severity.WARN, Group.MALFORMED,
                       f"RFC 9147 §4.1: first byte 0x{b0:02x} is no DTLS content type or unified header; "
                       f"{end - off} bytes not dissected", off, end - off)
            ctx.infos.append("Continuation Data")
            off = end
        nrec += 1
    if ctx.live:
        _end_datagram(ctx)
    else:
        ctx.flight, retr = ctx.memo[2]
        if retr:
            _retrans_expert(ctx, lay)
    if ctx.live and ctx.has_retrans and not ctx.has_new_hs:
        _retrans_expert(ctx, lay)
    if ctx.flight and (tree or FD.flight.primed):
        lay.add(FD.flight, ctx.flight, start, 0, generated=True)
    if pkt.cols:
        pkt.info = ", ".join(ctx.infos)
    pkt.protocol = pkt.scratch.pop("dtls.inner_protocol", None) or ctx.col or "DTLS"
    if tree:
        lay.label = "Datagram Transport Layer Security"
    return True


#: What _record_step says of a record number: first copy, duplicate on this leg, relayed copy.
REC_FIRST, REC_DUPLICATE, REC_RELAYED = 0, 1, 2


def _record_step(ctx: Ctx, epoch: int, seq: int, size: int) -> int:
    """REC_FIRST, REC_DUPLICATE (on this leg) or REC_RELAYED (from another leg) for record number
    (dir, epoch, seq)."""
    sess = ctx.sess
    assert sess is not None
    k = (ctx.dir, epoch, seq)
    records = sess.records
    seen = records.get(k)
    if seen is None:
        if len(records) >= MAX_RECORD_KEYS:
            del records[next(iter(records))]
        records[k] = ctx.leg
        if ctx.dir == C2S:
            sess.bytes_c2s += size
        else:
            sess.bytes_s2c += size
        return REC_FIRST
    if seen == ctx.leg:
        return REC_DUPLICATE
    return REC_RELAYED


def _plaintext_record(ctx: Ctx, lay: Node, buf: bytes, off: int, end: int, src: int) -> int:
    """One DTLSPlaintext (RFC 6347 §4.1) or DTLSCiphertext with CID (RFC 9146 §4) record."""
    pkt = ctx.pkt
    avail = end - off
    ct = buf[off]
    sess = ctx.sess
    if ct != CT_CID and avail >= RECORD_HEADER:  # the common case, one struct read
        cid_len = 0
        hdr = RECORD_HEADER
        lp = off + 11
        _ct, version, epoch, seq_hi, seq_lo, rlen = _RECORD_HEADER.unpack_from(buf, off)
    else:
        cid_len = _cid_length(ctx) if ct == CT_CID else 0
        hdr = RECORD_HEADER + cid_len
        if avail < hdr:
            rec = lay.add(FD.record, None, off, avail)
            _truncated_header(ctx, rec, buf, off, end, cid_len)
            return end
        lp = off + 11 + cid_len
        _ct, version, epoch, seq_hi, seq_lo = _RECORD_START.unpack_from(buf, off)
        rlen = (buf[lp] << 8) | buf[lp + 1]
    seq = (seq_hi << 32) | seq_lo
    p = off + hdr
    rend = p + rlen
    # Wireshark's protocol column: the session version, learnt from the first non-ClientHello record.
    rv = sess.record_version
    if rv is None and sess.version is None and ctx.live and version in RECORD_VERSIONS and not (
            ct == CT_HANDSHAKE and p < end and buf[p] == HT_CLIENT_HELLO):
        rv = sess.record_version = version
    ctx.col = N.VERSION_SHORT.get(sess.version or rv, "DTLS")  # no version (None, 0): "DTLS"
    plan = ctx.plan
    if plan.rec:
        rec = lay.add(FD.record, None, off, min(hdr + rlen, avail)) if plan.record else lay
        # RFC 9146 §4: 25 is only the outer type; like Wireshark, show it as the "special type"
        # (the real content type is inside the encryption).
        if ct == CT_CID:
            if plan.special_type:
                rec.add(FD.record_special_type, ct, off, 1)
        elif plan.content_type:
            rec.add(FD.record_content_type, ct, off, 1)
        if plan.version:
            rec.add(FD.record_version, version, off + 1, 2)
        if plan.epoch:
            rec.add(FD.record_epoch, epoch, off + 3, 2)
        if plan.seq:
            rec.add(FD.record_sequence_number, seq, off + 5, 6)
        if ct == CT_CID and plan.cid:
            rec.add(FD.record_connection_id, bytes(buf[off + 11:off + 11 + cid_len]), off + 11, cid_len)
        if plan.length:
            rec.add(FD.record_length, rlen, lp, 2)
    else:  # nobody reads record-header fields: children attach to the layer (nothing is built)
        rec = lay
    if rend > end:
        pkt.malformed(rec, f"RFC 6347 §4.1: record length {rlen} overruns the datagram "
                           f"({end - p} bytes left)", lp, 2)
        rend = end
    if ctx.live:
        r = _record_step(ctx, epoch, seq, rend - off)
        ctx.memo.append(r)
        if r:
            ctx.keep = True
    else:
        r = ctx.replay() or REC_FIRST
    copy = r != REC_FIRST  # a duplicate or a relayed copy: shown, not counted again
    if copy:
        if r == REC_RELAYED:
            rec.add(FD.relayed_copy, True, off, 0, generated=True)
        else:
            rec.add(FD.retransmission, True, off, 0, generated=True)
            pkt.expert(rec, Severity.NOTE, Group.SEQUENCE,
                       f"Duplicate record: epoch {epoch} sequence number {seq} already seen on this path", off)
    n0 = len(ctx.infos) if pkt.tree else 0
    if epoch or ct == CT_CID:
        _protected(ctx, rec, ct, buf, p, rend, epoch, copy)
        _dec12.decrypt_record(ctx, rec, buf, off, p, rend, src, copy)
    elif ct == CT_HANDSHAKE:
        _handshake_record(ctx, rec, buf, p, rend, src, copy)
    elif ct == CT_CCS:
        _ccs(ctx, rec, buf, p, rend, copy)
    elif ct == CT_ALERT:
        _alert(ctx, rec, buf, p, rend)
    elif ct == CT_APP:
        if pkt.tree or FD.app_data.primed:
            rec.add(FD.app_data, bytes(buf[p:rend]), p, rend - p)
        ctx.infos.append("Application Data")
        if ctx.live and r != REC_RELAYED:
            sess.app_records += 1
            sess.app_seen.add(ctx.dir)
    elif ct == CT_HEARTBEAT:
        _heartbeat(ctx, rec, buf, p, rend)
    elif ct == CT_ACK:
        _ack(ctx, rec, buf, p, rend)
    if pkt.tree:
        rec.label = _record_label(ctx, ct, ctx.infos[n0:])
    return rend


def _record_label(ctx: Ctx, ct: int, what: list[str]) -> str:
    """Wireshark's record line: ``DTLSv1.2 Record Layer: Handshake Protocol: Server Hello``."""
    head = f"{ctx.col or 'DTLS'} Record Layer: "
    if (ct == CT_ALERT and what and what[0].startswith("Alert (")) or ct == CT_CID:
        return head + (what[0] if what else "Connection ID")
    proto = f"{N.CONTENT_TYPES.get(ct, 'Unknown')} Protocol"
    if ct == CT_HANDSHAKE and len(what) > 1:
        return f"{head}{proto}: Multiple Handshake Messages"
    return f"{head}{proto}: {what[0]}" if what else head + proto


def _truncated_header(ctx: Ctx, rec: Node, buf: bytes, off: int, end: int, cid_len: int) -> None:
    avail = end - off
    rec.add(FD.record_content_type, buf[off], off, 1)
    if avail >= 3:
        rec.add(FD.record_version, (buf[off + 1] << 8) | buf[off + 2], off + 1, 2)
    if avail >= 5:
        rec.add(FD.record_epoch, (buf[off + 3] << 8) | buf[off + 4], off + 3, 2)
    if avail >= 11:
        rec.add(FD.record_sequence_number, int.from_bytes(buf[off + 5:off + 11], "big"), off + 5, 6)
    ctx.pkt.malformed(rec, f"RFC 6347 §4.1: truncated record header: {avail} of "
                           f"{RECORD_HEADER + cid_len} bytes", off, avail)
    ctx.infos.append("[Truncated Record]")
    sess = ctx.sess
    if sess is not None and ctx.col is None:
        v = sess.version or sess.record_version
        ctx.col = N.VERSION_SHORT.get(v, "DTLS") if v else "DTLS"


def _cid_length(ctx: Ctx) -> int:
    """RFC 9146 §3: a record carries the CID its *receiver* asked for in its hello."""
    sess = ctx.sess
    assert sess is not None
    cid = sess.server_cid if ctx.dir == C2S else sess.client_cid
    if cid is not None:
        return len(cid)
    return min(max(int(ctx.pkt.cap.pref("dtls.cid_length")), 0), MAX_CID_LENGTH)


def _protected(ctx: Ctx, rec: Node, ct: int, buf: bytes, p: int, rend: int, epoch: int,
               copy: bool) -> None:
    """Content under a non-zero epoch (or any CID record) is encrypted: show it as such."""
    sess = ctx.sess
    assert sess is not None
    data_len = rend - p
    tree = ctx.pkt.tree
    if ct == CT_APP:
        if tree or FD.app_data.primed:
            rec.add(FD.app_data, bytes(buf[p:rend]), p, data_len)
        ctx.infos.append("Application Data")
        if ctx.live and not copy:
            sess.app_records += 1
            sess.app_seen.add(ctx.dir)
        return
    if ct == CT_HANDSHAKE:
        hs = rec.add(FD.handshake, None, p, data_len) if tree or FD.handshake.primed else rec
        if tree or FD.handshake_encrypted.primed:
            hs.add(FD.handshake_encrypted, bytes(buf[p:rend]), p, data_len)
        if tree:
            hs.label = "Handshake Protocol: Encrypted Handshake Message"
        ctx.infos.append("Encrypted Handshake Message")
        ctx.step(_encrypted_hs_step, epoch, copy)
        return
    if ct == CT_ALERT:
        rec.add(FD.alert_message, None, p, data_len)
        ctx.infos.append("Encrypted Alert")
        if ctx.live and not copy:
            sess.alerts.append(Alert(ctx.pkt.number, ctx.pkt.ts_ns, ctx.dir, None, None))
        return
    if tree or FD.enc_content.primed:
        rec.add(FD.enc_content, bytes(buf[p:rend]), p, data_len)
    if ct == CT_CID:
        ctx.infos.append("Connection ID")
    elif ct == CT_HEARTBEAT:
        ctx.infos.append("Encrypted Heartbeat")
    elif ct == CT_ACK:
        ctx.infos.append("Encrypted Ack")
    elif ct == CT_CCS:
        ctx.infos.append("Change Cipher Spec")
    else:
        ctx.infos.append("Encrypted Record")


def _encrypted_hs_step(ctx: Ctx, epoch: int, copy: bool) -> None:
    """A handshake record under epoch > 0 is, in DTLS 1.2, the Finished of that side's flight."""
    sess = ctx.sess
    assert sess is not None
    if copy:
        return None
    d = ctx.dir
    if d in sess.finished and d not in sess.app_seen:
        # The same side's Finished again, before any data under the new keys: a retransmission.
        ctx.has_retrans = True
        if ctx.flight is None:
            ctx.flight = sess.ccs_flight.get(d)
        return None
    if ctx.retrans_ccs:
        ctx.has_retrans = True
        return None
    ctx.has_new_hs = True
    _new_flight_if_needed(ctx)
    if d not in sess.finished:
        sess.finished[d] = ctx.pkt.number
        if len(sess.finished) == 2 and sess.finish_ns is None:
            sess.finish_ns = ctx.pkt.ts_ns
            sess.finish_frame = ctx.pkt.number
    return None


def _new_flight_if_needed(ctx: Ctx) -> int:
    """RFC 6347 §4.2.4: a flight is what one side sends before waiting for the other."""
    sess = ctx.sess
    assert sess is not None
    if sess.flights == 0 or sess.flight_dir != ctx.dir:
        sess.flights += 1
        sess.flight_dir = ctx.dir
    if ctx.flight is None:
        ctx.flight = sess.flights
    return sess.flights


def _ccs(ctx: Ctx, rec: Node, buf: bytes, p: int, rend: int, copy: bool) -> None:
    """RFC 5246 §7.1: one byte, value 1."""
    sess = ctx.sess
    assert sess is not None
    n = rec.add(FD.change_cipher_spec, None, p, rend - p)
    if rend - p != 1 or buf[p] != 1:
        ctx.pkt.expert(n, Severity.WARN, Group.PROTOCOL,
                       "RFC 5246 §7.1: ChangeCipherSpec must be the single byte 1", p, rend - p)
    ctx.infos.append("Change Cipher Spec")
    ctx.step(_ccs_step, copy)


def _ccs_step(ctx: Ctx, copy: bool) -> None:
    sess = ctx.sess
    assert sess is not None
    if copy:
        return None
    d = ctx.dir
    if d in sess.ccs_flight and (sess.flight_dir != d or d in sess.finished):
        ctx.retrans_ccs = True  # the same side's CCS again: its flight is being retransmitted
        ctx.has_retrans = True
        if ctx.flight is None:
            ctx.flight = sess.ccs_flight[d]
    else:
        ctx.has_new_hs = True
        sess.ccs_flight[d] = _new_flight_if_needed(ctx)
    return None


def _alert(ctx: Ctx, rec: Node, buf: bytes, p: int, rend: int) -> None:
    """RFC 5246 §7.2: level and description, in the clear under epoch 0."""
    pkt = ctx.pkt
    sess = ctx.sess
    assert sess is not None
    al = rec.add(FD.alert_message, None, p, rend - p)
    if rend - p < 2:
        pkt.malformed(al, f"RFC 5246 §7.2: an alert is 2 bytes, the record holds {rend - p}", p, rend - p)
        ctx.infos.append("Alert")
        return
    level, desc = buf[p], buf[p + 1]
    al.add(FD.alert_message_level, level, p, 1)
    al.add(FD.alert_message_desc, desc, p + 1, 1)
    lname = N.ALERT_LEVELS.get(level, "Unknown")
    dname = N.ALERT_DESCRIPTIONS.get(desc, "Unknown")
    if pkt.cols or pkt.tree:
        ctx.infos.append(f"Alert (Level: {lname}, Description: {dname})")
    if pkt.tree:
        al.label = "Alert Message"
    if rend - p > 2:
        pkt.expert(al, Severity.WARN, Group.MALFORMED,
                   f"RFC 5246 §7.2: {rend - p - 2} bytes after the alert", p + 2, rend - p - 2)
    if level == 2:
        pkt.expert(al, Severity.WARN, Group.SEQUENCE, f"Fatal alert: {dname}", p, 2)
    if ctx.live:
        sess.alerts.append(Alert(pkt.number, pkt.ts_ns, ctx.dir, level, desc))


def _heartbeat(ctx: Ctx, rec: Node, buf: bytes, p: int, rend: int) -> None:
    """RFC 6520 §4: type, payload_length, payload, at least 16 bytes of padding."""
    pkt = ctx.pkt
    hb = rec.add(FD.heartbeat_message, None, p, rend - p)
    if rend - p < 3:
        pkt.malformed(hb, "RFC 6520 §4: heartbeat message shorter than its 3-byte header", p, rend - p)
        ctx.infos.append("Heartbeat")
        return
    t = buf[p]
    plen = (buf[p + 1] << 8) | buf[p + 2]
    hb.add(FD.heartbeat_message_type, t, p, 1)
    hb.add(FD.heartbeat_message_payload_length, plen, p + 1, 2)
    ctx.infos.append(N.HEARTBEAT_INFO.get(t, "Heartbeat"))
    q = p + 3
    if q + plen > rend:
        pkt.malformed(hb, f"RFC 6520 §4: payload_length {plen} exceeds the record", p + 1, 2)
        plen = rend - q
    hb.add(FD.heartbeat_message_payload, bytes(buf[q:q + plen]), q, plen)
    if q + plen < rend:
        hb.add(FD.heartbeat_message_padding, bytes(buf[q + plen:rend]), q + plen, rend - q - plen)


def _ack(ctx: Ctx, rec: Node, buf: bytes, p: int, rend: int) -> None:
    """RFC 9147 §7: RecordNumber record_numbers<0..2^16-1>, each uint64 epoch + uint64 seq."""
    pkt = ctx.pkt
    ack = rec.add(FD.ack, None, p, rend - p)
    ctx.infos.append("Ack")
    if rend - p < 2:
        pkt.malformed(ack, "RFC 9147 §7: ACK shorter than its 2-byte length", p, rend - p)
        return
    n = (buf[p] << 8) | buf[p + 1]
    ack.add(FD.ack_record_numbers_length, n, p, 2)
    q, stop = p + 2, p + 2 + n
    if stop > rend or n % 16:
        pkt.malformed(ack, f"RFC 9147 §7: record_numbers length {n} is not a whole number of "
                           "16-byte RecordNumbers inside the record", p, 2)
        stop = min(stop, rend)
    while q + 16 <= stop:
        ack.add(FD.ack_record_number_epoch, int.from_bytes(buf[q:q + 8], "big"), q, 8)
        ack.add(FD.ack_record_number_sequence_number, int.from_bytes(buf[q + 8:q + 16], "big"), q + 8, 8)
        q += 16


def _unified_record(ctx: Ctx, lay: Node, buf: bytes, off: int, end: int, src: int) -> int:
    """RFC 9147 §4 DTLSCiphertext with the unified header ``0 0 1 C S L E E``."""
    pkt = ctx.pkt
    sess = ctx.sess
    assert sess is not None
    b0 = buf[off]
    c, s16, lbit, ebits = b0 & 0x10, b0 & 0x08, b0 & 0x04, b0 & 0x03
    cid_len = _cid_length(ctx) if c else 0
    hdr = 1 + cid_len + (2 if s16 else 1) + (2 if lbit else 0)
    avail = end - off
    rec = lay.add(FD.record, None, off, avail)
    if ctx.col is None or sess.version is None:
        ctx.col = "DTLSv1.3"
    bm = rec.add(FD.unified_header_bitmask, b0, off, 1)
    bm.add(FD.unified_header_fixed, b0 & 0xE0, off, 1)
    bm.add(FD.unified_header_cid_present, bool(c), off, 1)
    bm.add(FD.unified_header_seq_size, bool(s16), off, 1)
    bm.add(FD.unified_header_length, bool(lbit), off, 1)
    bm.add(FD.unified_header_epoch_bits, ebits, off, 1)
    if pkt.tree:
        bm.label = (f"Unified header bitmask: 0x{b0:02x} (C={int(bool(c))}, S={int(bool(s16))}, "
                    f"L={int(bool(lbit))}, E={ebits})")
    if avail < hdr:
        pkt.malformed(rec, f"RFC 9147 §4: truncated unified header: {avail} of {hdr} bytes", off, avail)
        ctx.infos.append("[Truncated Record]")
        return end
    q = off + 1
    if c:
        rec.add(FD.record_connection_id, bytes(buf[q:q + cid_len]), q, cid_len)
        q += cid_len
    sl = 2 if s16 else 1
    rec.add(FD.record_encrypted_sequence_number, bytes(buf[q:q + sl]), q, sl)
    q += sl
    if lbit:
        rlen = (buf[q] << 8) | buf[q + 1]
        rec.add(FD.record_length, rlen, q, 2)
        q += 2
        rend = q + rlen
        if rend > end:
            pkt.malformed(rec, f"RFC 9147 §4: record length {rlen} overruns the datagram "
                               f"({end - q} bytes left)", q - 2, 2)
            rend = end
    else:
        rend = end  # RFC 9147 §4: without L the record runs to the end of the datagram
    rec.add(FD.enc_content, bytes(buf[q:rend]), q, rend - q)
    if pkt.tree:
        rec.length = rend - off
        rec.label = f"DTLSv1.3 Record Layer: Encrypted Record (epoch bits {ebits})"
    ctx.infos.append("Encrypted Record")
    _dec13.decrypt_record(ctx, rec, buf, off, q, rend, src)
    if ctx.live:
        if ctx.dir == C2S:
            sess.bytes_c2s += rend - off
        else:
            sess.bytes_s2c += rend - off
    return rend


# ---------------------------------------------------------------------------
# Handshake records: headers always, fragments reassembled always, bodies on demand


def _handshake_record(ctx: Ctx, rec: Node, buf: bytes, p: int, rend: int, src: int, copy: bool) -> None:
    pkt = ctx.pkt
    tree = pkt.tree
    plan = ctx.plan
    want_hdr = plan.hs
    while p < rend:
        if rend - p < HANDSHAKE_HEADER:
            hs = rec.add(FD.handshake, None, p, rend - p)
            pkt.malformed(hs, f"RFC 6347 §4.2.2: handshake header needs {HANDSHAKE_HEADER} bytes, "
                              f"{rend - p} left in the record", p, rend - p)
            ctx.infos.append("[Malformed Handshake]")
            return
        type_len, mseq, off_flen, flen_lo = _HANDSHAKE_HDR.unpack_from(buf, p)
        mt, mlen = type_len >> 24, type_len & 0xFFFFFF
        foff, flen = off_flen >> 8, ((off_flen & 0xFF) << 16) | flen_lo
        b = p + HANDSHAKE_HEADER
        bend = b + flen
        if want_hdr:
            hs = rec.add(FD.handshake, None, p, min(bend, rend) - p) if plan.handshake else rec
            if plan.hs_type:
                hs.add(FD.handshake_type, mt, p, 1)
            if plan.hs_length:
                hs.add(FD.handshake_length, mlen, p + 1, 3)
            if plan.hs_seq:
                hs.add(FD.handshake_message_seq, mseq, p + 4, 2)
            if plan.hs_offset:
                hs.add(FD.handshake_fragment_offset, foff, p + 6, 3)
            if plan.hs_frag_length:
                hs.add(FD.handshake_fragment_length, flen, p + 9, 3)
        else:
            hs = rec
        mname = N.HANDSHAKE_TYPES.get(mt)
        if mname is None:
            mname = f"Unknown Handshake Message ({mt})"
            pkt.expert(hs, Severity.WARN, Group.PROTOCOL, f"Unknown handshake type {mt}", p, 1)
        bad = False
        if bend > rend:
            pkt.malformed(hs, f"RFC 6347 §4.2.2: fragment_length {flen} runs past the record "
                              f"({rend - b} bytes left)", p + 9, 3)
            bend = rend
            bad = True
        if foff + flen > mlen:
            pkt.malformed(hs, f"RFC 6347 §4.2.3: fragment {foff}+{flen} runs past the end of the "
                              f"{mlen}-byte message", p + 6, 6)
            bad = True
        whole = foff == 0 and flen == mlen and not bad
        # ctx.step(_message_step, ...) spelled out: this runs for every handshake fragment.
        if ctx.live:
            ctx.keep = True
            res = _message_step(ctx, mt, mseq, mlen, foff, bytes(buf[b:bend]), whole, bad, copy)
            ctx.memo.append(res)
        else:
            res = ctx.replay()
        retrans_of = None
        reasm = None
        if res is not None:
            retrans_of, _flight, reasm, notes = res
            for sev, grp, msg in notes:
                pkt.expert(hs, sev, grp, msg, p, HANDSHAKE_HEADER)
        if retrans_of is not None:
            hs.add(FD.retransmission, True, p, 0, generated=True)
            hs.add(FD.retransmission_of, retrans_of, p, 0, generated=True)
        if whole:
            ctx.infos.append(mname)
            if ctx.body:
                HS.dissect_body(ctx, hs, mt, buf, b, bend, src, mlen)
        elif reasm is not None:
            data, frames = reasm
            ctx.infos.append(f"{mname} (Reassembled)")
            fr = hs.add(FD.fragments, None, b, bend - b)
            for f in frames:
                fr.add(FD.fragment, f, b, 0, generated=True)
            fr.add(FD.fragment_count, len(frames), b, 0, generated=True)
            fr.add(FD.reassembled_length, len(data), b, 0, generated=True)
            if ctx.body:
                s2 = pkt.add_source(f"Reassembled DTLS ({len(data)} bytes)", data)
                HS.dissect_body(ctx, hs, mt, data, 0, len(data), s2, mlen)
        else:
            ctx.infos.append(f"{mname} (Fragment)")
        if tree:
            hs.label = f"Handshake Protocol: {mname}" + ("" if whole else
                                                          " (Reassembled)" if reasm else " (Fragment)")
        p = bend


def _message_step(ctx: Ctx, mt: int, mseq: int, mlen: int, foff: int, data: bytes, whole: bool,
                  bad: bool, copy: bool) -> tuple[int | None, int | None, Any, list[Any]]:
    """Session bookkeeping for one handshake fragment: retransmission, flight, reassembly.

    Returns (retransmission of frame, flight, (reassembled bytes, frames) or None, expert notes).
    """
    sess = ctx.sess
    assert sess is not None
    notes: list[Any] = []
    d = ctx.dir
    k = (d, mseq)
    pkt = ctx.pkt
    if copy:
        f = sess.msg_flight.get(k)
        if f is not None and ctx.flight is None:
            ctx.flight = f[0]
        return None, None, None, notes
    prev = sess.msg_flight.get(k)
    retrans_of = None
    complete_now: bytes | None = None
    frames: list[int] = []
    if bad:
        return None, None, None, notes
    if prev is not None and k in sess.done:
        # Seen in full before: a retransmission (RFC 6347 §4.2.4), keeping its original flight.
        retrans_of = prev[1]
        old = sess.done[k][0]
        if old[foff:foff + len(data)] != data or len(old) != mlen:
            notes.append((Severity.WARN, Group.REASSEMBLE,
                          f"Retransmitted handshake message {mseq} differs from the original "
                          f"(frame {prev[1]})"))
        sess.retransmitted_messages += 1
        ctx.has_retrans = True
        if ctx.flight is None:
            ctx.flight = prev[0]
        return retrans_of, prev[0], None, notes
    if whole:
        complete_now = data
        frames = [pkt.number]
    else:
        rkey = (sess.index, d, mseq)
        res = _reassembly(ctx).add(rkey, pkt.number, foff, data, total=mlen, ts_ns=pkt.ts_ns)
        iss = res.issues
        if iss & Issue.TOTAL_MISMATCH:
            notes.append((Severity.WARN, Group.REASSEMBLE,
                          f"RFC 6347 §4.2.3: message length {mlen} differs from {res.total} "
                          "in an earlier fragment"))
        if res.status is Status.ERROR:
            notes.append((Severity.WARN, Group.REASSEMBLE,
                          f"Handshake message {mseq} of {mlen} bytes is not reassembled (limit "
                          f"{MAX_REASSEMBLY} bytes)"))
            return None, None, None, notes
        if iss & Issue.CONFLICT:
            notes.append((Severity.ERROR, Group.REASSEMBLE,
                          f"Fragment at offset {foff} overlaps earlier data of message {mseq} "
                          f"with conflicting bytes (frames {', '.join(map(str, res.conflict_frames))})"))
        elif iss & Issue.OVERLAP:
            notes.append((Severity.NOTE, Group.REASSEMBLE,
                          f"Fragment at offset {foff} overlaps earlier fragments of message {mseq}"))
        for a, b in res.gaps:
            if b is not None and b <= foff:
                notes.append((Severity.NOTE, Group.REASSEMBLE,
                              f"Gap in message {mseq}: bytes {a}-{b - 1} not received yet"))
        missing = sum((b if b is not None else mlen) - a for a, b in res.gaps)
        before = sess.missing.get(k)
        if res.complete:
            complete_now = res.data
            frames = [fr.frame for fr in res.fragments]
            sess.missing.pop(k, None)
        elif prev is not None and before is not None and missing == before:
            # Nothing new: the same fragment again, from a retransmitted flight.
            sess.retransmitted_messages += 1
            ctx.has_retrans = True
            if ctx.flight is None:
                ctx.flight = prev[0]
            return prev[1], prev[0], None, notes
        else:
            if len(sess.missing) >= MAX_PENDING:
                sess.missing.pop(next(iter(sess.missing)))
            sess.missing[k] = missing
    # New handshake data: a new flight when the sender changed (RFC 6347 §4.2.4).
    ctx.has_new_hs = True
    if prev is None:
        flight = _new_flight_if_needed(ctx)
        sess.msg_flight[k] = (flight, pkt.number)
    else:  # a later fragment of a message whose first fragment opened (or joined) a flight
        flight = prev[0]
        if ctx.flight is None:
            ctx.flight = flight
    if complete_now is None:
        return None, flight, None, notes
    sess.done[k] = (complete_now, pkt.number)
    _dec12.handshake_message(ctx, mt, mseq, complete_now)
    sess.handshake_messages += 1
    _learn(ctx, mt, complete_now)
    reasm = None if whole else (complete_now, list(dict.fromkeys(frames)))
    return None, flight, reasm, notes


def _reassembly(ctx: Ctx) -> ReassemblyTable:
    """The engine's DTLS handshake reassembly table (jpdissect.reassembly), keyed per session,
    direction and message_seq."""
    return table_in(ctx.pkt.cap.state, "dtls.reassembly", max_size=MAX_REASSEMBLY)


def _learn(ctx: Ctx, mt: int, body: bytes) -> None:
    """What the session table keeps from the hellos: versions, randoms, suite, CIDs, timing."""
    sess = ctx.sess
    assert sess is not None
    pkt = ctx.pkt
    if mt == HT_CLIENT_HELLO:
        info = HS.scan_client_hello(body)
        if sess.start_ns is None:
            sess.start_ns = pkt.ts_ns
        if info is not None:
            sess.client_random = info.get("random", sess.client_random)
            if info.get("cookie"):
                sess.cookie = info["cookie"]
            if "cid" in info:
                sess.client_cid = info["cid"]
        if sess.client is None:
            sess.client, sess.server = ctx.leg
    elif mt == HT_SERVER_HELLO:
        info = HS.scan_server_hello(body)
        if info is not None:
            sess.server_random = info.get("random")
            sess.cipher_suite = info.get("cipher_suite")
            sess.version = info.get("version")
            sid = info.get("session_id")
            if sid and sess.session_id == sid:
                sess.resumed = True
            sess.session_id = sid
            if "cid" in info:
                sess.server_cid = info["cid"]
    elif mt == HT_HVR:
        if sess.record_version is None and len(body) >= 2:
            v = (body[0] << 8) | body[1]
            if v in RECORD_VERSIONS:
                sess.record_version = v


def _end_datagram(ctx: Ctx) -> None:
    sess = ctx.sess
    assert sess is not None
    if ctx.dir == C2S:
        sess.datagrams_c2s += 1
    else:
        sess.datagrams_s2c += 1
    retr = ctx.has_retrans and not ctx.has_new_hs
    if retr:
        sess.retransmissions += 1
    memo = ctx.memo
    memo[2] = (ctx.flight, retr)
    if ctx.keep or ctx.flight is not None or retr:
        ctx.tbl.remember(ctx.memo_key, memo)


def _retrans_expert(ctx: Ctx, lay: Node) -> None:
    ctx.pkt.expert(lay, Severity.NOTE, Group.SEQUENCE,
                   f"Retransmission of flight {ctx.flight}" if ctx.flight else "Retransmitted handshake data")


REGISTRY.add("udp.port", DTLS_PORT, "dtls")

__all__ = ["dissect_dtls", "heur_dtls", "S2C", "C2S"]
