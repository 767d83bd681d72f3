"""The real OpenThread commissioning capture, end to end (tests/data/thread/README.txt).

What the Thread-radio issue promises on it:

* with ``-o thread.network_key:HEX`` every ``c/rx`` / ``c/tx`` (TMF CoAP, UDP 61631) decodes, and
  the DTLS records relayed inside; the joiner leg (unsecured frames to port 1000) decodes as DTLS;
* every field both tools decode (wpan.*, 6lowpan.*, ipv6.*, udp.*) equals tshark 4.0's, with
  tshark given the key as an IEEE 802.15.4 "Thread hash" key;
* without the key every one of the 341 frames is still listed, secured ones shown as encrypted;
* per UDP datagram, how many 802.15.4 frames carried it (the overhead analysis' input).
"""

from __future__ import annotations

import struct
from collections import Counter

from jpdissect.dissectors.registry import REGISTRY
from jpdissect.framing.meshcop import decode_relay_message
from jpdissect.model import FIELDS, Packet
from test_wpan_helpers import (
    KEK_FRAMES,
    KEK_JOINER3,
    KEK_JOINER4,
    KEY_PREF,
    ML_PREFIX,
    THREAD_PCAP,
    THREAD_PCAPNG,
    TSHARK_CTX0,
    TSHARK_KEY,
    bugs,
    comparable_fields,
    diff_with_tshark,
    dissect_all,
    experts,
    kek_is_learned,
    needs_network_layer,
    needs_tshark,
    tshark_rows,
)

CTX0 = f"6lowpan.context0:{ML_PREFIX}"
TMF_PORT = 61631
JOINER_PORT = 1000
RELAY_RX = (84, 111, 155, 167, 175, 205, 227, 253, 297, 309, 317)
RELAY_TX = (86, 127, 159, 169, 177, 229, 269, 301, 311, 319)
# The network layer's fields compared here (they are the network issue's; the bytes are ours).
NET_FIELDS = ["ipv6.version", "ipv6.tclass", "ipv6.flow", "ipv6.plen", "ipv6.nxt", "ipv6.hlim", "ipv6.src",
              "ipv6.dst", "udp.srcport", "udp.dstport", "udp.length", "udp.checksum"]


def _udp_datagrams(p: Packet) -> list[tuple[int, int, bytes]]:
    """(sport, dport, payload) of the IPv6/UDP packet(s) 6LoWPAN produced in this frame."""
    out = []
    for s in p.sources[1:]:
        if s.name not in ("Reassembled 6LoWPAN", "Decompressed 6LoWPAN IPHC"):
            continue
        ip = s.data
        if s.name == "Decompressed 6LoWPAN IPHC" and p.has("6lowpan.frag.size"):
            continue  # only the first fragment's share
        if len(ip) >= 48 and ip[6] == 17:
            sport, dport, ulen = struct.unpack_from("!HHH", ip, 40)
            out.append((sport, dport, ip[48 : 40 + ulen]))
    return out


def test_all_frames_listed_with_and_without_key() -> None:
    for prefs in ([], [KEY_PREF]):
        pkts = dissect_all(THREAD_PCAP, prefs=prefs)
        assert [p.number for p in pkts] == list(range(1, 342))
        assert not [(p.number, bugs(p)) for p in pkts if bugs(p)]
        assert all(p.protocols.startswith("wpan") for p in pkts)


def test_every_relay_message_and_its_dtls_decodes_with_the_key() -> None:
    pkts = dissect_all(THREAD_PCAP, prefs=[KEY_PREF])
    relays = {}
    for p in pkts:
        for sport, dport, payload in _udp_datagrams(p):
            if TMF_PORT in (sport, dport):
                msg, relay, errs = decode_relay_message(payload)
                if relay is not None:
                    assert not errs, (p.number, errs)
                    relays[p.number] = relay
    assert sorted(n for n, r in relays.items() if r.uri == "c/rx") == list(RELAY_RX)
    assert sorted(n for n, r in relays.items() if r.uri == "c/tx") == list(RELAY_TX)
    for n, r in relays.items():
        # Joiner DTLS Encapsulation: one or more DTLS 1.2 records (RFC 6347 §4.1)
        assert r.dtls[0] in (20, 21, 22, 23) and r.dtls[1:3] in (b"\xfe\xfd", b"\xfe\xff"), n
        assert r.joiner_port == JOINER_PORT and r.router_locator == 0x5000
    assert {r.kek.hex() for r in relays.values() if r.kek} == {KEK_JOINER3, KEK_JOINER4}


def test_without_key_no_relay_message_is_visible() -> None:
    pkts = dissect_all(THREAD_PCAP)
    for n in RELAY_RX + RELAY_TX:
        p = pkts[n - 1]
        assert not _udp_datagrams(p)
        assert "No encryption key set - can't decrypt" in experts(p)


def test_relay_and_joiner_legs_reach_coap_and_dtls() -> None:
    needs_network_layer()
    pkts = dissect_all(THREAD_PCAP, prefs=[KEY_PREF])
    for n in RELAY_RX + RELAY_TX:
        p = pkts[n - 1]
        assert p.get("udp.srcport") == TMF_PORT == p.get("udp.dstport")
        if "coap.opt.uri_path" in FIELDS:
            assert p.values("coap.opt.uri_path") == ["c", "rx" if n in RELAY_RX else "tx"], n
        if "meshcop" in REGISTRY.named and "dtls.record.content_type" in FIELDS:
            # the relayed DTLS (Joiner DTLS Encapsulation TLV) is dissected by the other issues
            assert p.protocols.removesuffix(":jp").endswith("meshcop:dtls") and p.values("dtls.record.content_type"), n
    joiner = [p for p in pkts if p.get("udp.dstport") == JOINER_PORT or p.get("udp.srcport") == JOINER_PORT]
    assert len(joiner) == 21  # tshark -Y udp.port==1000 (with the key) agrees
    for p in joiner:
        assert p.get("wpan.security") is False  # the joiner has no key yet
        if "dtls.record.content_type" in FIELDS:
            assert p.values("dtls.record.content_type"), p.number


def test_join_ent_decodes_with_a_learned_kek() -> None:
    needs_network_layer()
    pkts = dissect_all(THREAD_PCAP, prefs=[KEY_PREF, f"thread.kek:{KEK_JOINER3}"])
    je = pkts[182]  # frame 183: JOIN_ENT.ntf from node 2 to joiner 3 (link-local, port 1000)
    assert je.get("wpan.key_number") == 1
    if "coap.opt.uri_path" in FIELDS:
        assert je.values("coap.opt.uri_path") == ["c", "je"]


@needs_tshark
def test_fields_match_tshark_with_key() -> None:
    fields = comparable_fields("wpan.", "6lowpan.") + [f for f in NET_FIELDS if f in FIELDS]
    # Wireshark 4.0 has no way to learn the Joiner Router KEK: the JOIN_ENT frames decode only here.
    bad = diff_with_tshark(THREAD_PCAP, fields, [KEY_PREF, CTX0], TSHARK_KEY + TSHARK_CTX0, skip_frames=KEK_FRAMES)
    assert not bad, "\n".join(bad[:40])


@needs_tshark
def test_fields_match_tshark_without_key() -> None:
    fields = comparable_fields("wpan.", "6lowpan.") + [f for f in NET_FIELDS if f in FIELDS]
    bad = diff_with_tshark(THREAD_PCAP, fields, [], [])
    assert not bad, "\n".join(bad[:40])


def test_pcapng_copy_dissects_identically() -> None:
    a = dissect_all(THREAD_PCAP, prefs=[KEY_PREF])
    b = dissect_all(THREAD_PCAPNG, prefs=[KEY_PREF])
    assert len(a) == len(b) == 341
    for x, y in zip(a, b, strict=True):
        assert x.protocols == y.protocols
        for f in ("wpan.src64", "6lowpan.src", "6lowpan.fragment", "wpan.key_number"):
            assert x.values(f) == y.values(f)


def test_radio_frames_per_udp_datagram() -> None:
    """For the overhead analysis: 6lowpan.fragment.count (else 1) per datagram, and its radio bytes."""
    pkts = dissect_all(THREAD_PCAP, prefs=[KEY_PREF])
    per: list[tuple[int, int, int, int]] = []  # (frame, sport, frames, radio bytes)
    for p in pkts:
        for sport, _dport, _payload in _udp_datagrams(p):
            n = p.get("6lowpan.fragment.count") or 1
            radio = p.get("6lowpan.reassembled.psdu_bytes") or p.wirelen
            per.append((p.number, sport, n, radio))
    # tshark -Y udp -T fields -e 6lowpan.fragment.count (with the key), counted: 109 datagrams. With
    # the KEK learned from the c/tx, the two JOIN_ENT.ntf (2 frames each) and their one-frame
    # responses are four more, which Wireshark cannot see.
    hist = Counter(n for f, _s, n, _r in per if f not in KEK_FRAMES)
    assert hist == Counter({1: 86, 5: 8, 3: 3, 2: 4, 4: 2, 6: 2, 7: 2, 8: 2}) and hist.total() == 109
    kek = sorted((f, n) for f, _s, n, _r in per if f in KEK_FRAMES)
    assert kek == ([(183, 2), (185, 1), (325, 2), (327, 1)] if kek_is_learned() else [])
    big = {f: (n, r) for f, _s, n, r in per}
    assert big[127] == (8, 908)  # the c/tx carrying ServerHello..Done: eight frames
    assert big[74] == (5, 575)   # the joiner's first ClientHello


@needs_tshark
def test_fragment_counts_match_tshark() -> None:
    ours = {p.number: (p.get("6lowpan.fragment.count"), tuple(p.values("6lowpan.fragment")))
            for p in dissect_all(THREAD_PCAP, prefs=[KEY_PREF]) if p.has("6lowpan.fragment.count")}
    rows = tshark_rows(THREAD_PCAP, ["frame.number", "6lowpan.fragment.count", "6lowpan.fragment"], TSHARK_KEY)
    theirs = {int(r[0]): (int(r[1]), tuple(int(x) for x in r[2].split(","))) for r in rows if r[1]}
    # The two JOIN_ENT messages (KEK-secured, two fragments each) only reassemble here.
    kek_only = {n: v for n, v in ours.items() if n in KEK_FRAMES}
    assert kek_only == ({183: (2, (181, 183)), 325: (2, (323, 325))} if kek_is_learned() else {})
    assert {n: v for n, v in ours.items() if n not in KEK_FRAMES} == theirs and len(theirs) == 23
