"""DTLS dissector: hand-built records per the RFC figures, malformed input, sessions, heuristics.

Real-stack captures are compared with tshark in test_dtls_tshark.py; here each hand-built byte
string cites the RFC section whose figure it follows.
"""

from __future__ import annotations

import random
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from jpdissect.api import field_strings  # noqa: E402
from jpdissect.dissectors import load_all  # noqa: E402
from jpdissect.dtls_sessions import C2S, S2C, list_sessions, session_rows  # noqa: E402
from jpdissect.engine import Engine  # noqa: E402
from jpdissect.model import Packet  # noqa: E402
from test_dtls_tshark import DATA, dissect  # noqa: E402

load_all()

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 5684)


# ---------------------------------------------------------------------------
# Builders (RFC 6347 §4.1 record, §4.2.2 handshake header, RFC 5246 §7.4.1 hellos)


def record(ct: int, epoch: int, seq: int, payload: bytes, version: int = 0xFEFD, cid: bytes = b"") -> bytes:
    return (bytes([ct]) + version.to_bytes(2, "big") + epoch.to_bytes(2, "big") + seq.to_bytes(6, "big")
            + cid + len(payload).to_bytes(2, "big") + payload)


def handshake(mt: int, mseq: int, body: bytes, foff: int = 0, flen: int | None = None,
              mlen: int | None = None) -> bytes:
    frag = body[foff:foff + flen] if flen is not None else body[foff:]
    mlen = len(body) if mlen is None else mlen
    return (bytes([mt]) + mlen.to_bytes(3, "big") + mseq.to_bytes(2, "big") + foff.to_bytes(3, "big")
            + len(frag).to_bytes(3, "big") + frag)


def ext(t: int, data: bytes) -> bytes:
    return t.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def client_hello(rnd: bytes = b"\x11" * 32, cookie: bytes = b"", suites: tuple[int, ...] = (0xC0AE,),
                 exts: bytes = b"", version: int = 0xFEFD) -> bytes:
    cs = b"".join(s.to_bytes(2, "big") for s in suites)
    body = (version.to_bytes(2, "big") + rnd + b"\x00" + bytes([len(cookie)]) + cookie
            + len(cs).to_bytes(2, "big") + cs + b"\x01\x00")
    if exts:
        body += len(exts).to_bytes(2, "big") + exts
    return body


def server_hello(rnd: bytes = b"\x22" * 32, suite: int = 0xC0AE, exts: bytes = b"",
                 version: int = 0xFEFD) -> bytes:
    body = version.to_bytes(2, "big") + rnd + b"\x00" + suite.to_bytes(2, "big") + b"\x00"
    if exts:
        body += len(exts).to_bytes(2, "big") + exts
    return body


class Feeder:
    """Drives the dissector the way udp.py will: addresses and ports set, then udp.port dispatch."""

    def __init__(self, tree: bool = True, prefs: tuple[str, ...] = (), decode_as: tuple[str, ...] = ()) -> None:
        self.eng = Engine(tree=tree, prefs=list(prefs), decode_as=list(decode_as))
        self.n = 0

    def send(self, data: bytes, src: tuple[bytes, int] = CLIENT, dst: tuple[bytes, int] = SERVER,
             ts_ms: int = 0, scratch: dict | None = None, number: int | None = None) -> Packet:
        if number is None:
            self.n += 1
            number = self.n
        pkt = Packet(number, ts_ms * 1_000_000, data, 0, len(data), tree=self.eng.tree)
        pkt.cap = self.eng
        pkt.net_src, pkt.srcport = src
        pkt.net_dst, pkt.dstport = dst
        if scratch:
            pkt.scratch.update(scratch)
        self.eng.call_ports("udp.port", "udp", pkt, data, 0, len(data), 0)
        assert not [e for e in pkt.experts if "Dissector bug" in e.message], pkt.experts
        return pkt

    @property
    def sessions(self):  # noqa: ANN201
        return list_sessions(self.eng)


def experts(pkt: Packet) -> list[str]:
    return [e.message for e in pkt.experts]


# ---------------------------------------------------------------------------
# Record layer


def test_several_records_per_datagram_rfc6347_4_1_1() -> None:
    """RFC 6347 §4.1.1: one datagram may carry several records; each gets its own header fields."""
    f = Feeder()
    data = record(22, 0, 0, handshake(1, 0, client_hello())) + record(21, 0, 1, b"\x01\x00")
    p = f.send(data)
    assert p.values("dtls.record.sequence_number") == [0, 1]
    assert p.values("dtls.record.content_type") == [22, 21]
    assert p.info == "Client Hello, Alert (Level: Warning, Description: Close Notify)"
    assert p.values("dtls.handshake.ciphersuite") == [0xC0AE]
    assert field_strings(p, "dtls.handshake.ciphersuite") == "0xc0ae"
    assert p.protocol == "DTLSv1.2"  # the alert record is authoritative, as in Wireshark


def test_ecjpake_and_ccm8_suite_names() -> None:
    """RFC 7251 CCM_8 suites and Thread's TLS_ECJPAKE_WITH_AES_128_CCM_8 (0xC0FF) by IANA name."""
    f = Feeder()
    p = f.send(record(22, 0, 0, handshake(1, 0, client_hello(suites=(0xC0FF, 0xC0AE, 0xC0A8))) ))
    fd = p.nodes("dtls.handshake.ciphersuite")
    assert [n.text() for n in fd] == [
        "Cipher Suite: TLS_ECJPAKE_WITH_AES_128_CCM_8 (0xc0ff)",
        "Cipher Suite: TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (0xc0ae)",
        "Cipher Suite: TLS_PSK_WITH_AES_128_CCM_8 (0xc0a8)",
    ]


def test_record_length_overrunning_datagram_is_malformed_rest_shown() -> None:
    """RFC 6347 §4.1: length counts the bytes that follow; a record claiming more is malformed."""
    f = Feeder()
    good = record(22, 0, 0, handshake(1, 0, client_hello()))
    bad = record(23, 1, 5, b"\xaa" * 40)[:13 + 10]  # header says 40, only 10 present
    p = f.send(good + bad)
    assert p.info.startswith("Client Hello, Application Data")
    assert p.values("dtls.record.length") == [len(good) - 13, 40]
    assert p.values("dtls.app_data") == [b"\xaa" * 10]
    assert any("overruns the datagram" in m for m in experts(p))
    assert p.layer("dtls").malformed


def test_truncated_record_header() -> None:
    f = Feeder()
    p = f.send(record(22, 0, 0, handshake(1, 0, client_hello())) + bytes([23, 0xFE, 0xFD, 0, 1]))
    assert p.values("dtls.record.content_type") == [22, 23]
    assert p.values("dtls.record.epoch") == [0, 1]
    assert any("truncated record header: 5 of 13 bytes" in m for m in experts(p))
    assert p.layer("dtls").malformed


def test_truncated_handshake_body_never_raises() -> None:
    """A ClientHello whose cipher_suites vector lies about its length: malformed, no exception."""
    f = Feeder()
    body = bytearray(client_hello())
    body[2 + 32 + 2] = 0xFF  # cipher_suites length high byte
    p = f.send(record(22, 0, 0, handshake(1, 0, bytes(body))))
    assert p.info == "Client Hello"
    assert any("cipher_suites runs past the end" in m for m in experts(p))


def test_handshake_fragment_past_record_end() -> None:
    f = Feeder()
    h = handshake(1, 0, client_hello())
    p = f.send(record(22, 0, 0, h)[:-10])  # fragment cut short inside the datagram
    assert any("overruns the datagram" in m for m in experts(p))
    assert any("fragment_length" in m and "runs past the record" in m for m in experts(p))


# ---------------------------------------------------------------------------
# RFC 9146 connection IDs and RFC 9147 (DTLS 1.3) records


def _cid_handshake(f: Feeder, client_cid: bytes, server_cid: bytes) -> None:
    f.send(record(22, 0, 0, handshake(1, 0, client_hello(exts=ext(54, bytes([len(client_cid)]) + client_cid)))))
    f.send(record(22, 0, 0, handshake(2, 0, server_hello(exts=ext(54, bytes([len(server_cid)]) + server_cid)))),
           src=SERVER, dst=CLIENT)


def test_tls12_cid_record_length_learned_from_extension_rfc9146() -> None:
    """RFC 9146 §3: each side names the CID it wants to *receive*; §4: tls12_cid (25) records
    carry the receiver's CID between sequence_number and length."""
    f = Feeder()
    _cid_handshake(f, client_cid=b"\xc1\xc2", server_cid=b"\x51\x52\x53\x54")
    s = f.sessions[0]
    assert (s.client_cid, s.server_cid) == (b"\xc1\xc2", b"\x51\x52\x53\x54")
    to_server = record(25, 1, 7, b"\xee" * 24, cid=b"\x51\x52\x53\x54")
    p = f.send(to_server)
    assert p.values("dtls.record.connection_id") == [b"\x51\x52\x53\x54"]
    assert p.values("dtls.record.length") == [24]
    assert p.values("dtls.enc_content") == [b"\xee" * 24]
    assert p.info == "Connection ID"
    to_client = record(25, 1, 3, b"\xdd" * 17, cid=b"\xc1\xc2")
    p = f.send(to_client, src=SERVER, dst=CLIENT)
    assert p.values("dtls.record.connection_id") == [b"\xc1\xc2"]
    assert p.values("dtls.record.length") == [17]
    assert not p.experts


def _write_pcap(path: Path, datagrams: list[tuple[bytes, tuple[bytes, int], tuple[bytes, int]]]) -> None:
    """Ethernet/IPv4/UDP frames around hand-built DTLS bytes, so tshark can read them too."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, (payload, (sa, sp), (da, dp)) in enumerate(datagrams):
        udp = struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, sa, da) + udp
        fr = b"\x02" + b"\x00" * 5 + b"\x02" + b"\x00" * 4 + b"\x01" + b"\x08\x00" + ip
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(fr), len(fr)) + fr
    path.write_bytes(out)


def test_tls12_cid_records_equal_tshark(tmp_path: Path) -> None:
    """The RFC 9146 §4 records above, written to a pcap: tshark 4.0 reads them the same way."""
    import shutil

    from test_dtls_tshark import tshark_rows

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    dgrams = [
        (record(22, 0, 0, handshake(1, 0, client_hello(exts=ext(54, b"\x02\xc1\xc2")))), CLIENT, SERVER),
        (record(22, 0, 0, handshake(2, 0, server_hello(exts=ext(54, b"\x04\x51\x52\x53\x54")))), SERVER, CLIENT),
        (record(25, 1, 7, b"\xee" * 24, cid=b"\x51\x52\x53\x54"), CLIENT, SERVER),
        (record(25, 1, 3, b"\xdd" * 17, cid=b"\xc1\xc2"), SERVER, CLIENT),
    ]
    pcap = tmp_path / "cid.pcap"
    _write_pcap(pcap, dgrams)
    fields = ["dtls.record.content_type", "dtls.record.special_type", "dtls.record.version",
              "dtls.record.epoch", "dtls.record.sequence_number", "dtls.record.connection_id",
              "dtls.record.length", "dtls.enc_content", "dtls.connection_id", "dtls.connection_id_length"]
    want = tshark_rows(pcap, fields + ["_ws.col.Info", "_ws.col.Protocol"])
    f = Feeder()
    for (d, s, t), row in zip(dgrams, want, strict=True):
        p = f.send(d, src=s, dst=t)
        assert [field_strings(p, x) for x in fields] + [p.info, p.protocol] == row


def test_tls12_cid_length_from_preference() -> None:
    """Without the handshake in the capture the CID length comes from -o dtls.cid_length:N."""
    f = Feeder(prefs=("dtls.cid_length:3",))
    p = f.send(record(25, 1, 9, b"\x01" * 20, cid=b"\xab\xcd\xef"))
    assert p.values("dtls.record.connection_id") == [b"\xab\xcd\xef"]
    assert p.values("dtls.record.length") == [20]


def test_dtls13_unified_header_full_rfc9147_4() -> None:
    """RFC 9147 §4 Figure 3: 0 0 1 C S L E E, CID, 16-bit (encrypted) sequence number, length."""
    f = Feeder(prefs=("dtls.cid_length:2",))
    b0 = 0b0011_1110  # C=1 S=1 L=1 E=2
    rec = bytes([b0]) + b"\x0a\x0b" + b"\x9c\x31" + (20).to_bytes(2, "big") + b"\x77" * 20
    p = f.send(rec)
    assert p.protocol == "DTLSv1.3"
    assert p.values("dtls.unified_header.bitmask") == [b0]
    assert p.values("dtls.unified_header.cid_present") == [True]
    assert p.values("dtls.unified_header.seq_size") == [True]
    assert p.values("dtls.unified_header.length") == [True]
    assert p.values("dtls.unified_header.epoch_bits") == [2]
    assert p.values("dtls.record.connection_id") == [b"\x0a\x0b"]
    assert p.values("dtls.record.encrypted_sequence_number") == [b"\x9c\x31"]
    assert p.values("dtls.enc_content") == [b"\x77" * 20]
    assert "Encrypted Sequence Number" in [n.fd.name for n in p.nodes("dtls.record.encrypted_sequence_number")]


def test_dtls13_unified_header_minimal_runs_to_datagram_end() -> None:
    """RFC 9147 §4 Figure 4: no CID, 8-bit sequence number, no length: the record fills the datagram;
    two length-carrying records may precede it."""
    f = Feeder()
    r1 = bytes([0b0010_1101]) + b"\x00\x05" + (4).to_bytes(2, "big") + b"\x01\x02\x03\x04"  # S=1 L=1 E=1
    r2 = bytes([0b0010_0001]) + b"\x42" + b"\x99" * 30                                     # S=0 L=0
    p = f.send(r1 + r2)
    assert p.values("dtls.record.encrypted_sequence_number") == [b"\x00\x05", b"\x42"]
    assert p.values("dtls.enc_content") == [b"\x01\x02\x03\x04", b"\x99" * 30]
    assert p.info == "Encrypted Record, Encrypted Record"
    assert not p.experts


def test_dtls13_unified_header_length_overrun() -> None:
    f = Feeder()
    p = f.send(bytes([0b0010_1100]) + b"\x00\x01" + (50).to_bytes(2, "big") + b"\x00" * 10)
    assert any("RFC 9147 §4: record length 50 overruns" in m for m in experts(p))


def test_ack_record_rfc9147_7() -> None:
    """RFC 9147 §7: ACK = RecordNumber record_numbers<0..2^16-1>, each {uint64 epoch; uint64 seq}."""
    f = Feeder()
    rn = (2).to_bytes(8, "big") + (5).to_bytes(8, "big") + (2).to_bytes(8, "big") + (6).to_bytes(8, "big")
    p = f.send(record(26, 0, 4, len(rn).to_bytes(2, "big") + rn))
    assert p.values("dtls.ack.record_number.epoch") == [2, 2]
    assert p.values("dtls.ack.record_number.sequence_number") == [5, 6]
    assert p.info == "Ack"


def test_dtls13_client_hello_extensions_rfc8446() -> None:
    """A DTLS 1.3 ClientHello (RFC 9147 §5.3) with RFC 8446 §4.2 extensions, and a ServerHello whose
    supported_versions selects DTLS 1.3 (0xfefc) so the column says DTLSv1.3."""
    f = Feeder()
    ks = ext(51, (36).to_bytes(2, "big") + (0x1D).to_bytes(2, "big") + (32).to_bytes(2, "big") + b"\x5a" * 32)
    psk_modes = ext(45, b"\x01\x01")
    identity = b"pledge-psk"
    offered = ((len(identity) + 6).to_bytes(2, "big") + len(identity).to_bytes(2, "big") + identity
               + (1000).to_bytes(4, "big") + (33).to_bytes(2, "big") + b"\x20" + b"\xbb" * 32)
    exts = (ext(43, b"\x04\xfe\xfc\xfe\xfd") + ks + psk_modes + ext(44, b"\x00\x03abc")
            + ext(28, (1024).to_bytes(2, "big")) + ext(1, b"\x02")
            + ext(0, b"\x00\x0e\x00\x00\x0bregistrar.x") + ext(41, offered))
    p = f.send(record(22, 0, 0, handshake(1, 0, client_hello(exts=exts, suites=(0x1301, 0x1305)))))
    assert p.values("dtls.handshake.extensions.supported_version") == [0xFEFC, 0xFEFD]
    assert p.values("dtls.handshake.extensions_key_share_group") == [0x1D]
    assert p.values("dtls.handshake.extensions_key_share_key_exchange") == [b"\x5a" * 32]
    assert p.values("dtls.extension.psk_ke_mode") == [1]
    assert p.values("dtls.handshake.extensions.cookie") == [b"abc"]
    assert p.values("dtls.record_size_limit") == [1024]
    assert p.values("dtls.handshake.max_fragment_length") == [2]
    assert p.values("dtls.handshake.extensions_server_name") == ["registrar.x"]
    assert p.values("dtls.handshake.extensions.psk.identity.identity") == [identity]
    assert p.values("dtls.handshake.extensions.psk.identity.obfuscated_ticket_age") == [1000]
    assert p.values("dtls.handshake.extensions.psk.binders_len") == [33]
    assert not p.experts
    sh_exts = ext(43, b"\xfe\xfc") + ext(51, (0x1D).to_bytes(2, "big") + (32).to_bytes(2, "big") + b"\x6b" * 32) \
        + ext(41, b"\x00\x00")
    p = f.send(record(22, 0, 0, handshake(2, 0, server_hello(exts=sh_exts, suite=0x1301))),
               src=SERVER, dst=CLIENT)
    assert p.values("dtls.handshake.extensions.psk.identity.selected") == [0]
    assert f.sessions[0].version == 0xFEFC
    p = f.send(bytes([0b0010_1110]) + b"\x00\x01" + (3).to_bytes(2, "big") + b"abc", src=SERVER, dst=CLIENT)
    assert p.protocol == "DTLSv1.3"


# ---------------------------------------------------------------------------
# Reassembly (RFC 6347 §4.2.3)


def _cert_body() -> bytes:
    der = (DATA / "server.pem").read_text()
    import base64

    b64 = "".join(line for line in der.splitlines() if not line.startswith("-----"))
    cert = base64.b64decode(b64)
    return (len(cert) + 3).to_bytes(3, "big") + len(cert).to_bytes(3, "big") + cert


def test_fragments_across_datagrams_reassemble_and_certificate_decodes() -> None:
    f = Feeder()
    f.send(record(22, 0, 0, handshake(1, 0, client_hello())))
    f.send(record(22, 0, 0, handshake(2, 0, server_hello(suite=0xC0AE))), src=SERVER, dst=CLIENT)
    body = _cert_body()
    cut = 200
    p1 = f.send(record(22, 0, 1, handshake(11, 1, body, 0, cut)), src=SERVER, dst=CLIENT)
    p2 = f.send(record(22, 0, 2, handshake(11, 1, body, cut)), src=SERVER, dst=CLIENT)
    assert p1.info == "Certificate (Fragment)"
    assert p2.info == "Certificate (Reassembled)"
    assert p2.values("dtls.fragment") == [p1.number, p2.number]
    assert p2.values("dtls.reassembled.length") == [len(body)]
    assert p2.values("dtls.x509.subject_serial_number") == ["JP-REG-0001"]
    assert p2.values("dtls.x509.subject_cn") == ["registrar.example"]
    assert p2.values("dtls.x509.issuer") == ["CN=jpdissect Test CA,O=jpdissect test"]
    assert p2.values("dtls.x509.key_type") == ["EC secp256r1 (256 bits)"]
    assert p2.values("dtls.x509.serial") == ["1234"]
    assert len(p2.sources) == 2 and p2.sources[1].data == body


def test_fragment_overlap_conflict_and_gap_are_expert_info() -> None:
    f = Feeder()
    f.send(record(22, 0, 0, handshake(1, 0, client_hello())))
    body = _cert_body()
    assert len(body) > 320
    p1 = f.send(record(22, 0, 0, handshake(11, 1, body, 200, 100)), src=SERVER, dst=CLIENT)
    assert any("Gap in message 1: bytes 0-199" in m for m in experts(p1))
    evil = body[:250] + bytes(b ^ 0xFF for b in body[250:260]) + body[260:]
    p2 = f.send(record(22, 0, 1, handshake(11, 1, evil, 240, 40)), src=SERVER, dst=CLIENT)
    assert any("conflicting bytes" in m for m in experts(p2))
    p3 = f.send(record(22, 0, 2, handshake(11, 1, body, 0, 210)), src=SERVER, dst=CLIENT)
    assert any("overlaps earlier fragments" in m for m in experts(p3))
    assert p3.info == "Certificate (Fragment)"
    p4 = f.send(record(22, 0, 3, handshake(11, 1, body, 300)), src=SERVER, dst=CLIENT)
    assert p4.info == "Certificate (Reassembled)"
    # The first copy of the conflicting bytes wins, as in Wireshark: the result equals the original.
    assert p4.sources[-1].data == body


def test_message_length_change_between_fragments() -> None:
    f = Feeder()
    body = _cert_body()
    f.send(record(22, 0, 0, handshake(11, 1, body, 0, 100)), src=SERVER, dst=CLIENT)
    p = f.send(record(22, 0, 1, handshake(11, 1, body + b"xx", 100, 100)), src=SERVER, dst=CLIENT)
    assert any("differs from" in m for m in experts(p))


# ---------------------------------------------------------------------------
# Recognition


def _first_datagram(name: str) -> bytes:
    from jpdissect.capture import open_capture

    with open_capture(DATA / f"{name}.pcap") as rd:
        fr = next(iter(rd))
    return fr.data[42:]  # Ethernet 14 + IPv4 20 + UDP 8


def test_heuristic_claims_dtls_on_any_port() -> None:
    f = Feeder()
    p = f.send(_first_datagram("cert_ccm8"), src=(CLIENT[0], 40001), dst=(SERVER[0], 7777))
    assert p.protocols == "dtls"
    assert p.info == "Client Hello"


def test_heuristic_rejects_random_udp() -> None:
    """Random payloads (including ones starting like a record) on other ports stay data."""
    rng = random.Random(4)
    f = Feeder(tree=False)
    claimed = 0
    for i in range(3000):
        n = rng.randint(1, 120)
        data = bytes(rng.getrandbits(8) for _ in range(n))
        if i % 3 == 0:  # start like a DTLS 1.2 record to make it hard
            data = bytes([rng.randint(20, 26), 0xFE, 0xFD]) + data
        p = f.send(data, src=(CLIENT[0], 40002), dst=(SERVER[0], 9999))
        claimed += p.protocols != "data"
    assert claimed == 0


def test_heuristic_rejects_length_mismatch() -> None:
    f = Feeder()
    d = _first_datagram("cert_ccm8")
    p = f.send(d + b"\x00", src=(CLIENT[0], 40001), dst=(SERVER[0], 7777))
    assert p.protocols == "data"


def test_decode_as_overrides_port_and_heuristic() -> None:
    f = Feeder(decode_as=("udp.port==5684,coap",))
    p = f.send(_first_datagram("cert_ccm8"))
    assert "dtls" not in p.protocols
    f = Feeder(decode_as=("udp.port==7777,dtls",))
    p = f.send(b"\x17\xfe\xfd\x00\x01" + b"\x00" * 6 + b"\x00\x50" + b"\x01" * 3, dst=(SERVER[0], 7777))
    assert p.protocols == "dtls"  # not a plausible record, but decode-as says DTLS: shown malformed
    assert p.layer("dtls").malformed


# ---------------------------------------------------------------------------
# Robustness


def test_mutated_real_datagrams_never_raise() -> None:
    """Bit flips and truncations of every datagram of the real fixtures: experts, never exceptions."""
    from jpdissect.capture import open_capture

    rng = random.Random(9)
    datagrams = []
    for name in ("cert_mtu256", "psk_ccm8", "mbedtls_cert"):
        with open_capture(DATA / f"{name}.pcap") as rd:
            datagrams += [fr.data[42:] for fr in rd]
    for tree in (True, False):
        f = Feeder(tree=tree)
        for _ in range(6):
            for d in datagrams:
                m = bytearray(d)
                for _ in range(rng.randint(1, 4)):
                    m[rng.randrange(len(m))] = rng.getrandbits(8)
                if rng.random() < 0.4:
                    m = m[:rng.randrange(1, len(m) + 1)]
                f.send(bytes(m), src=(CLIENT[0], 40000 + rng.randint(0, 3)))


# ---------------------------------------------------------------------------
# Sessions, flights, retransmissions


def test_session_table_on_openssl_capture() -> None:
    eng, pkts = dissect(DATA / "cert_gcm_mutual.pcap", fields=["dtls.flight", "dtls.handshake.random"])
    (s,) = list_sessions(eng)
    assert s is eng.state["dtls.sessions"].sessions[0]
    assert s.version == 0xFEFD and s.cipher_suite == 0xC02B
    # the randoms kept for decryption are the hello randoms (checked against tshark elsewhere)
    assert s.client_random == pkts[0].get("dtls.handshake.random")
    assert s.server_random == pkts[3].get("dtls.handshake.random")
    assert s.complete and s.flights == 6 and s.retransmissions == 0
    assert s.start_ns == pkts[0].ts_ns
    assert s.finish_ns == pkts[12].ts_ns  # the server's Finished, frame 13
    assert s.handshake_duration_ns == pkts[12].ts_ns - pkts[0].ts_ns
    assert [(a.level, a.description) for a in s.alerts] == [(None, None)]  # encrypted close_notify
    total = sum(len(p.data) - 42 for p in pkts)
    assert s.bytes_c2s + s.bytes_s2c == total
    flights = [p.get("dtls.flight") for p in pkts]
    assert flights == [1, 2, 3, 4, 4, 4, 4, 4, 4, 5, 6, 6, 6, None, None, None]
    row = session_rows([s])[0]
    assert row["cipher_suite"] == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert row["client"] == f"127.0.0.1:{pkts[0].srcport}" and row["server"] == "127.0.0.1:5684"


def test_plaintext_alert_recorded() -> None:
    eng, _ = dissect(DATA / "alert_nocipher.pcap")
    (s,) = list_sessions(eng)
    assert [(a.level, a.description, a.direction) for a in s.alerts] == [(2, 40, S2C)]
    assert not s.complete and s.handshake_duration_ns is None


def test_retransmitted_flight_through_a_relay() -> None:
    """OpenSSL through a stateful join-proxy stand-in that lost one Registrar datagram: the
    Registrar's flight 4 and the pledge's flight 3 are retransmitted; by default each relay leg is
    its own session (UDP address pairs), each tagging the retransmitted datagrams with their flight."""
    eng, pkts = dissect(DATA / "relay_retransmit.pcap", decode_as=["udp.port==5685,dtls"], tree=True)
    pledge, registrar = list_sessions(eng)
    assert pledge.server[1] == 5685 and registrar.server[1] == 5684
    assert pledge.client_random == registrar.client_random
    assert registrar.retransmissions >= 5 and pledge.retransmissions >= 3
    assert pledge.complete and registrar.complete and pledge.flights == registrar.flights == 6
    re_ch = [p for p in pkts if p.info == "Client Hello" and p.get("dtls.retransmission")]
    assert re_ch and all(p.get("dtls.flight") == 3 for p in re_ch)
    re_sh = [p for p in pkts if p.get("dtls.retransmission") and p.values("dtls.handshake.type") == [2]]
    first_sh = next(p for p in pkts if 2 in p.values("dtls.handshake.type"))
    assert re_sh and re_sh[0].get("dtls.flight") == 4
    assert any("Retransmission of flight 4" in m for m in experts(re_sh[0]))
    assert re_sh[0].get("dtls.retransmission.of") == first_sh.number


def test_supplied_session_key_joins_both_relay_legs() -> None:
    """An outer relay dissector names the session (pkt.scratch["dtls.session_key"]): both legs form
    one session, the second sighting of each datagram is a relayed copy, bytes are counted once."""
    from jpdissect.capture import open_capture

    f = Feeder(tree=True)
    pkts = []
    with open_capture(DATA / "relay_retransmit.pcap") as rd:
        for fr in rd:
            d = fr.data
            src = (d[26:30], struct.unpack_from("!H", d, 34)[0])
            dst = (d[30:34], struct.unpack_from("!H", d, 36)[0])
            p = f.send(d[42:], src=src, dst=dst, scratch={"dtls.session_key": ("pledge", 1)})
            pkts.append(p)
    (s,) = f.sessions
    assert s.complete and len(s.legs) == 2
    copies = [p.number for p in pkts if p.get("dtls.relayed_copy")]
    assert 2 in copies and 4 in copies and 6 in copies
    # every datagram of the handshake passed both legs except the one the proxy dropped
    eng, alone = dissect(DATA / "relay_retransmit.pcap", decode_as=["udp.port==5685,dtls"])
    reg = list_sessions(eng)[1]
    assert s.bytes_c2s == reg.bytes_c2s and s.bytes_s2c == reg.bytes_s2c
    assert s.flights == 6


def test_redissecting_frames_does_not_change_sessions() -> None:
    """The TUI re-opens frames: a frame dissected again is replayed, not counted again."""
    from jpdissect.capture import open_capture

    eng = Engine(tree=True)
    frames = []
    first = []
    with open_capture(DATA / "cert_mtu256.pcap") as rd:
        for fr in rd:
            frames.append(fr)
    f = Feeder()
    for i, fr in enumerate(frames, 1):
        d = fr.data
        first.append(f.send(d[42:], src=(d[26:30], struct.unpack_from("!H", d, 34)[0]),
                            dst=(d[30:34], struct.unpack_from("!H", d, 36)[0]), ts_ms=i))
    before = session_rows(f.sessions)
    for i in (5, 3, 9, 1, 12):
        d = frames[i - 1].data
        again = f.send(d[42:], src=(d[26:30], struct.unpack_from("!H", d, 34)[0]),
                       dst=(d[30:34], struct.unpack_from("!H", d, 36)[0]), ts_ms=i, number=i)
        assert again.info == first[i - 1].info
        assert again.get("dtls.flight") == first[i - 1].get("dtls.flight")
        assert again.values("dtls.x509.subject") == first[i - 1].values("dtls.x509.subject")
    assert session_rows(f.sessions) == before
    del eng


def test_new_client_hello_random_starts_new_session_on_same_ports() -> None:
    f = Feeder()
    f.send(record(22, 0, 0, handshake(1, 0, client_hello(rnd=b"\x01" * 32))))
    f.send(record(22, 0, 1, handshake(1, 0, client_hello(rnd=b"\x01" * 32))))  # retransmission
    f.send(record(22, 0, 0, handshake(1, 0, client_hello(rnd=b"\x02" * 32))))  # a new attempt
    a, b = f.sessions
    assert a.retransmissions == 1 and b.retransmissions == 0
    assert a.dirs[(CLIENT, SERVER)] == C2S


def test_list_sessions_from_path() -> None:
    if "udp" not in __import__("jpdissect.dissectors.registry", fromlist=["REGISTRY"]).REGISTRY.named:
        pytest.skip("needs the project's Ethernet/IP/UDP dissectors")
    (s,) = list_sessions(DATA / "psk_ccm8.pcap")
    assert s.cipher_suite == 0xC0A8


def test_psk_identity_and_hint() -> None:
    _, pkts = dissect(DATA / "psk_ccm8.pcap", tree=True)
    assert pkts[3].values("dtls.handshake.hint") == [b"registrar"]
    assert pkts[4].values("dtls.handshake.identity") == [b"pledge-0001"]


def test_client_certificate_idevid_serial() -> None:
    _, pkts = dissect(DATA / "cert_gcm_mutual.pcap", fields=["dtls.x509.subject_serial_number"])
    sns = [p.values("dtls.x509.subject_serial_number") for p in pkts]
    assert ["JP-REG-0001"] in sns and ["PLEDGE-00-11-22-33"] in sns


def test_heartbeat_rfc6520_4() -> None:
    """RFC 6520 §4: type, payload_length, payload, >= 16 bytes padding; a lying length is malformed."""
    f = Feeder()
    p = f.send(record(24, 0, 2, b"\x01\x00\x04ping" + b"\x00" * 16))
    assert p.info == "Heartbeat Request"
    assert p.values("dtls.heartbeat_message.payload") == [b"ping"]
    assert p.values("dtls.heartbeat_message.padding") == [b"\x00" * 16]
    p = f.send(record(24, 0, 3, b"\x02\x40\x00ab"))  # Heartbleed-style length
    assert any("payload_length 16384 exceeds the record" in m for m in experts(p))
    p = f.send(record(24, 1, 4, b"\x33" * 40))
    assert p.info == "Encrypted Heartbeat"
