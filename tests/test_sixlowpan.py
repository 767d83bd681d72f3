"""6LoWPAN (RFC 4944, RFC 6282): IPHC/NHC decompression, mesh/broadcast headers, fragmentation.

``lowpan.pcap`` holds IPv6 packets compressed by scapy (plus hand-made NHC extension-header,
IP-in-IP and mesh cases, see make_fixtures.py); the decompressed packet must equal the packet that
was compressed, byte for byte. tshark 4.0 decodes the same frames for the differential checks.
"""

from __future__ import annotations

import json

import pytest

from jpdissect.dissectors import sixlowpan
from jpdissect.engine import Engine, OptionError
from jpdissect.model import FIELDS, Group, Severity
from test_wpan_helpers import (
    THREAD_PCAP,
    WPAN,
    bugs,
    comparable_fields,
    diff_with_tshark,
    dissect_all,
    dissect_bytes,
    experts,
    needs_tshark,
    read_frames,
)

CTX = ["6lowpan.context0:fd00:db8:0:1::/64", "6lowpan.context1:2001:db8:aaaa:bbbb::/64"]
TSHARK_CTX = ["-o", "6lowpan.context0:fd00:db8:0:1::/64", "-o", "6lowpan.context1:2001:db8:aaaa:bbbb::/64"]
EXPECTED = json.loads((WPAN / "lowpan_expected.json").read_text())
FRAG_EXPECTED = {c["case"]: c for c in json.loads((WPAN / "lowpan_frag_expected.json").read_text())}


def _ipv6_of(p):  # type: ignore[no-untyped-def]
    """The IPv6 packet 6LoWPAN handed on: the reassembled or else the decompressed source."""
    for name in ("Reassembled 6LoWPAN", "Decompressed 6LoWPAN IPHC", "Decompressed 6LoWPAN HC1"):
        for s in p.sources[1:]:
            if s.name == name:
                return s.data
    return None


@pytest.mark.parametrize("case", EXPECTED, ids=[c["desc"][:40] for c in EXPECTED])
def test_decompression_restores_the_compressed_packet(case: dict) -> None:  # type: ignore[type-arg]
    p = dissect_all(WPAN / "lowpan.pcap", prefs=CTX)[case["frame"] - 1]
    assert not bugs(p)
    want = bytes.fromhex(case["ipv6"])
    got = _ipv6_of(p)
    if got is None:  # uncompressed IPv6 dispatch: handed on in place
        assert want in p.data
    else:
        assert got == want
    assert p.get("6lowpan.src") is not None or got is None


def test_mesh_addresses_replace_the_mac_addresses_for_iids() -> None:
    """RFC 6282 §3.2.2 with RFC 4944 §5.2: elided IIDs come from the mesh originator/final."""
    pkts = dissect_all(WPAN / "lowpan.pcap")
    mesh16, mesh64 = (pkts[next(c["frame"] for c in EXPECTED if c["desc"].startswith(d)) - 1]
                      for d in ("mesh header (16-bit", "mesh header (64-bit"))
    assert mesh16.get("6lowpan.mesh.orig16") == 0x000A and mesh16.get("6lowpan.bcast.seqnum") == 0x33
    assert str(mesh16.get("6lowpan.src").hex()).endswith("00fffe00000a")
    assert mesh64.get("6lowpan.mesh.hops8") == 20 and mesh64.get("6lowpan.mesh.hops") == 15


def test_elided_udp_checksum_is_recomputed() -> None:
    """RFC 6282 §4.3.2: the decompressor computes the checksum the compressor dropped."""
    case = next(c for c in EXPECTED if "checksum elided" in c["desc"])
    p = dissect_all(WPAN / "lowpan.pcap")[case["frame"] - 1]
    assert p.get("6lowpan.nhc.udp.checksum") is True and p.get("6lowpan.udp.checksum") is None
    assert _ipv6_of(p)[46:48] == bytes.fromhex(case["ipv6"])[46:48] != b"\x00\x00"


@needs_tshark
def test_iphc_variants_match_tshark() -> None:
    net = [f for f in ("ipv6.tclass", "ipv6.flow", "ipv6.plen", "ipv6.nxt", "ipv6.hlim", "ipv6.src", "ipv6.dst",
                       "udp.srcport", "udp.dstport", "udp.length", "udp.checksum") if f in FIELDS]
    bad = diff_with_tshark(WPAN / "lowpan.pcap", comparable_fields("6lowpan.", "wpan.") + net, CTX, TSHARK_CTX)
    # The one intended difference: an elided UDP checksum (RFC 6282 §4.3.2) is recomputed here,
    # where Wireshark 4.0 writes 0xffff.
    elided = next(c["frame"] for c in EXPECTED if "checksum elided" in c["desc"])
    want = bytes.fromhex(next(c["ipv6"] for c in EXPECTED if c["frame"] == elided))[46:48].hex()
    expected = [f"frame {elided} udp.checksum: tshark='0xffff' ours='0x{want}'"] if "udp.checksum" in net else []
    assert bad == expected, "\n".join(bad)


@needs_tshark
def test_fragment_fields_match_tshark_except_the_timeout() -> None:
    """Wireshark 4.0 never times a 6LoWPAN reassembly out; RFC 4944 §5.3 (60 s) does, and so do we."""
    bad = diff_with_tshark(WPAN / "lowpan_frag.pcap", comparable_fields("6lowpan.", "wpan."), [], [])
    timeout = FRAG_EXPECTED["timeout"]["frames"]
    assert bad == [f"frame {timeout[-1]} {f}" + s for f, s in (
        ("6lowpan.fragment", ": tshark='23,24,25,26' ours=''"),
        ("6lowpan.fragment.count", ": tshark='4' ours=''"),
        ("6lowpan.reassembled.length", ": tshark='348' ours=''"))]


def test_reassembly_cases() -> None:
    pkts = dissect_all(WPAN / "lowpan_frag.pcap")
    assert not any(bugs(p) for p in pkts)
    by = {p.number: p for p in pkts}
    for name in ("in order", "reversed", "duplicate"):
        c = FRAG_EXPECTED[name]
        done = by[c["complete_in"]]
        assert _ipv6_of(done) == bytes.fromhex(c["ipv6"]), name
        assert sorted(done.values("6lowpan.fragment")) == sorted(c["frames"])
        assert done.get("6lowpan.fragment.count") == len(c["frames"])
        assert done.get("6lowpan.reassembled.psdu_bytes") == sum(by[n].caplen for n in c["frames"])
        for n in c["frames"]:
            if n != c["complete_in"]:
                assert by[n].protocols.endswith(":data") and not by[n].has("udp")
    dup = FRAG_EXPECTED["duplicate"]
    assert any("same data" in m for m in experts(by[dup["duplicate"]], Group.REASSEMBLE))
    assert by[dup["complete_in"]].get("6lowpan.fragment.overlap") is True
    con = FRAG_EXPECTED["conflict"]
    assert any("conflicting data" in m for m in experts(by[con["conflict"]], Group.MALFORMED, Severity.ERROR))
    done = by[con["complete_in"]]
    assert done.get("6lowpan.fragment.overlap.conflicts") is True
    assert done.get("6lowpan.fragment.error") == con["conflict"]
    lost = FRAG_EXPECTED["lost"]
    assert not any(by[n].has("6lowpan.fragments") or by[n].has("ipv6") for n in lost["frames"])
    to = FRAG_EXPECTED["timeout"]
    assert any("timed out" in m for m in experts(by[to["expired_at"]], Group.REASSEMBLE))
    assert not any(by[n].has("6lowpan.fragments") for n in to["frames"])


def test_redissecting_a_fragment_names_where_it_was_reassembled() -> None:
    """The reassembly table remembers outcomes per frame: a second pass (the TUI) knows more."""
    frames = read_frames(WPAN / "lowpan_frag.pcap")
    eng = Engine(tree=True)
    first = [eng.dissect(f) for f in frames]
    c = FRAG_EXPECTED["in order"]
    eng.count = c["frames"][0] - 1
    again = eng.dissect(frames[c["frames"][0] - 1])
    assert first[c["frames"][0] - 1].get("6lowpan.reassembled.in") is None
    assert again.get("6lowpan.reassembled.in") == c["complete_in"]


def test_unknown_context_is_noted_once_and_prefix_left_zero() -> None:
    """Like Wireshark, an unknown context contributes no prefix bits (the capture's RLOCs)."""
    p = dissect_all(THREAD_PCAP, prefs=["thread.network_key:17c627a33d5927bf887ae312092611b7"])[16]
    notes = [m for m in experts(p, Group.ASSUMPTION) if "context 0 unknown" in m]
    assert len(notes) == 1
    assert p.get("6lowpan.src") == bytes.fromhex("0000000000000000" "000000fffe000c01")  # ::ff:fe00:c01


def test_context_preferences_and_learning() -> None:
    key = "thread.network_key:17c627a33d5927bf887ae312092611b7"
    want = bytes.fromhex("fde59b7949cc91ea000000fffe000c01")
    for pref in ("6lowpan.context0:fde5:9b79:49cc:91ea::/64", "sixlowpan.context0:fde5:9b79:49cc:91ea::/64"):
        p = dissect_all(THREAD_PCAP, prefs=[key, pref])[16]
        assert p.get("6lowpan.src") == want and p.get("6lowpan.iphc.sctx.origin") is None
    with pytest.raises(OptionError):
        Engine(prefs=["6lowpan.context0:not-a-prefix"])
    # Learned (as mle.py does from an Active Operational Dataset): the origin frame is shown.
    eng = Engine(prefs=[key], tree=True)
    frames = read_frames(THREAD_PCAP)
    for f in frames[:16]:
        eng.dissect(f)
    sixlowpan.learn_context(eng, 0, bytes.fromhex("fde59b7949cc91ea"), 64, 5)
    p = eng.dissect(frames[16])
    assert p.get("6lowpan.src") == want and p.get("6lowpan.iphc.sctx.origin") == 5
    # A context given with -o wins over a learned one.
    eng = Engine(prefs=[key, "6lowpan.context0:fd00::/64"])
    sixlowpan.learn_context(eng, 0, bytes.fromhex("fde59b7949cc91ea"), 64, 5)
    assert sixlowpan.find_context(eng, 0).prefix[:8] == bytes.fromhex("fd00000000000000")


def test_rfc4944_short_address_iid_preference() -> None:
    """RFC 4944 §6: with the preference, a short address's IID embeds the PAN ID (U/L bit cleared)."""
    frames = read_frames(WPAN / "lowpan.pcap")
    p = dissect_bytes([frames[1].data], 195, prefs=["6lowpan.rfc4944_short_address_format:true"])[0]
    assert p.get("6lowpan.src") == bytes.fromhex("fe80000000000000" "944100fffe000c01")


def test_heuristic_leaves_non_lowpan_payloads_alone() -> None:
    """RFC 4944 §5.1: 00xxxxxx is "not a LoWPAN frame" (NALP)."""
    fr = read_frames(WPAN / "mac_frames.pcap")[10].data  # a data frame whose payload starts 0x00
    p = dissect_bytes([fr], 195)[0]
    assert "6lowpan" not in p.protocols and p.protocols.endswith("data")


def test_truncated_and_garbled_payloads_never_raise() -> None:
    frames = [f.data[:-2] for f in read_frames(WPAN / "lowpan.pcap")] + \
             [f.data[:-2] for f in read_frames(WPAN / "lowpan_frag.pcap")][:6]
    cut = [d[:n] for d in frames for n in range(len(d))]
    flipped = [d[:i] + bytes([d[i] ^ 0xFF]) + d[i + 1:] for d in frames[:8] for i in range(15, min(len(d), 40))]
    for p in dissect_bytes(cut + flipped, 230, prefs=CTX):
        assert not bugs(p), (p.data.hex(), bugs(p))
