"""The generic byte-offset reassembly table (jpdissect.reassembly).

Unit tests name the rule they check: RFC 791 §3.2 / RFC 8200 §4.5 (IP: the
last fragment fixes the total length), RFC 6347 §4.2.3 and RFC 4944 §5.3
(DTLS and 6LoWPAN: every fragment states the total), RFC 5722 (overlaps).
The last tests feed it the real kernel-fragmented datagrams of
tests/data/net/eth_veth.pcap and compare with tshark's reassembly.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jpdissect.reassembly import (
    MAX_FRAGMENTS,
    MAX_REASSEMBLY,
    Issue,
    ReassemblyTable,
    Status,
)

DATA = Path(__file__).parent / "data" / "net"
SEC = 1_000_000_000


def chunks(data: bytes, size: int) -> list[tuple[int, bytes, bool]]:
    """(offset, bytes, more) pieces of ``data``, as IP fragmentation makes them."""
    out = []
    for o in range(0, len(data), size):
        out.append((o, data[o : o + size], o + size < len(data)))
    return out


PAYLOAD = bytes(range(256)) * 3 + b"tail"


def test_in_order_completes_on_last_fragment() -> None:
    # RFC 791 §3.2: the datagram is complete once the MF=0 fragment fixed its
    # length and every byte before it has arrived.
    t = ReassemblyTable()
    pieces = chunks(PAYLOAD, 200)
    for i, (o, d, more) in enumerate(pieces[:-1], start=1):
        r = t.add("k", i, o, d, more)
        assert r.status is Status.PENDING and r.data is None and r.total is None
    o, d, more = pieces[-1]
    r = t.add("k", len(pieces), o, d, more)
    assert r.status is Status.COMPLETE and r.complete
    assert r.data == PAYLOAD and r.total == len(PAYLOAD)
    assert r.reassembled_in == len(pieces)
    assert [f.frame for f in r.fragments] == list(range(1, len(pieces) + 1))
    assert [f.offset for f in r.fragments] == [o for o, _d, _m in pieces]
    assert not r.issues and len(t) == 0


def test_out_of_order_and_gaps() -> None:
    t = ReassemblyTable()
    pieces = chunks(PAYLOAD, 256)  # offsets 0, 256, 512, 768
    r = t.add("k", 1, *pieces[3])
    assert r.status is Status.PENDING
    assert r.total == len(PAYLOAD)               # the last fragment fixed the total
    assert r.gaps == ((0, 768),)
    r = t.add("k", 2, *pieces[1])
    assert r.gaps == ((0, 256), (512, 768))
    r = t.add("k", 3, *pieces[0])
    assert r.gaps == ((512, 768),)
    r = t.add("k", 4, *pieces[2])
    assert r.complete and r.data == PAYLOAD
    # The list is in offset order whatever the arrival order.
    assert [f.frame for f in r.fragments] == [3, 2, 4, 1]


def test_unknown_total_gap_is_open_ended() -> None:
    t = ReassemblyTable()
    r = t.add("k", 1, 0, b"abcd", True)
    assert r.gaps == ((4, None),) and r.total is None


def test_total_given_up_front() -> None:
    # RFC 6347 §4.2.3: each DTLS handshake fragment carries the message length.
    t = ReassemblyTable()
    msg = b"0123456789" * 10
    r = t.add(("dtls", 5), 1, 40, msg[40:], total=len(msg))
    assert r.status is Status.PENDING and r.total == 100 and r.gaps == ((0, 40),)
    r = t.add(("dtls", 5), 2, 0, msg[:40], total=len(msg))
    assert r.complete and r.data == msg


def test_total_mismatch_is_reported() -> None:
    t = ReassemblyTable()
    t.add("k", 1, 0, b"x" * 8, total=16)
    r = t.add("k", 2, 8, b"y" * 8, total=24)
    assert r.issues & Issue.TOTAL_MISMATCH
    assert r.complete and r.total == 16  # the first statement stands


def test_duplicate_is_overlap_without_conflict() -> None:
    # RFC 5722 §4 forbids overlaps for IPv6, but retransmitted DTLS fragments
    # are exact duplicates: the caller decides; the table reports it.
    t = ReassemblyTable()
    t.add("k", 1, 0, b"A" * 8, True)
    r = t.add("k", 2, 0, b"A" * 8, True)
    assert r.issues == Issue.OVERLAP
    assert r.overlap_frames == (1,) and r.conflict_frames == ()
    r = t.add("k", 3, 8, b"B" * 8, False)
    assert r.complete and r.data == b"A" * 8 + b"B" * 8
    dup = [f for f in r.fragments if f.frame == 2][0]
    assert dup.issues == Issue.OVERLAP and not dup.error


def test_conflicting_overlap_first_copy_wins() -> None:
    t = ReassemblyTable()
    t.add("k", 1, 0, b"A" * 8, True)
    t.add("k", 2, 8, b"X" * 8, True)
    r = t.add("k", 3, 4, b"B" * 8, True)   # overlaps both, with different bytes
    assert r.issues & Issue.OVERLAP and r.issues & Issue.CONFLICT
    assert set(r.conflict_frames) == {1, 2}
    r = t.add("k", 4, 16, b"C" * 4, False)
    assert r.complete
    assert r.data == b"A" * 8 + b"X" * 8 + b"C" * 4
    bad = [f for f in r.fragments if f.frame == 3][0]
    assert bad.error and bad.issues & Issue.CONFLICT


def test_multiple_tails_and_too_long() -> None:
    t = ReassemblyTable()
    t.add("k", 1, 8, b"B" * 8, False)          # total = 16
    r = t.add("k", 2, 8, b"B" * 12, False)     # a second, longer tail
    assert r.issues & Issue.MULTIPLE_TAILS and r.issues & Issue.TOO_LONG
    r = t.add("k", 3, 0, b"A" * 8, True)
    assert r.complete and r.data == b"A" * 8 + b"B" * 8 and r.total == 16


def test_too_long_learnt_later() -> None:
    t = ReassemblyTable()
    t.add("k", 1, 0, b"A" * 24, True)
    r = t.add("k", 2, 8, b"B" * 8, False)      # the total is 16, frame 1 went past it
    assert r.issues & Issue.TOO_LONG
    assert r.complete and r.data == b"A" * 16


def test_size_limit_abandons_datagram() -> None:
    t = ReassemblyTable(max_size=100)
    r = t.add("k", 1, 96, b"x" * 8, True)
    assert r.status is Status.ERROR and r.issues & Issue.TOO_LARGE
    # Later fragments of the abandoned datagram are reported, not restarted.
    r = t.add("k", 2, 0, b"y" * 8, True)
    assert r.status is Status.ERROR
    assert MAX_REASSEMBLY == 65535


def test_explicit_total_over_limit() -> None:
    t = ReassemblyTable(max_size=1000)
    r = t.add("k", 1, 0, b"x" * 10, total=2000)
    assert r.status is Status.ERROR and r.issues & Issue.TOO_LARGE


def test_fragment_count_limit() -> None:
    t = ReassemblyTable(max_fragments=3)
    for i in range(3):
        assert t.add("k", i + 1, i * 8, b"z" * 8, True).status is Status.PENDING
    r = t.add("k", 4, 24, b"z" * 8, True)
    assert r.status is Status.ERROR and r.issues & Issue.TOO_MANY
    assert MAX_FRAGMENTS >= 65535 // 8


def test_stale_entries_are_evicted_by_capture_time() -> None:
    t = ReassemblyTable(timeout_ns=30 * SEC)
    t.add("old", 1, 0, b"a" * 8, True, ts_ns=0)
    t.add("other", 2, 0, b"b" * 8, True, ts_ns=20 * SEC)
    r = t.add("old", 3, 8, b"a" * 8, False, ts_ns=40 * SEC)
    # "old" was idle 40 s > 30 s: dropped; its last fragment starts afresh and says so.
    assert r.status is Status.PENDING and r.expired_fragments == 1
    assert r.gaps == ((0, 8),)
    assert "other" in t.pending_keys() and t.evicted == 1


def test_least_recently_used_entries_go_first() -> None:
    t = ReassemblyTable(max_pending=2)
    t.add("a", 1, 0, b"a", True)
    t.add("b", 2, 0, b"b", True)
    t.add("a", 3, 1, b"a", True)     # touch "a"
    t.add("c", 4, 0, b"c", True)     # evicts "b", the least recently used
    assert t.pending_keys() == ["a", "c"] and t.evicted == 1


def test_keys_are_independent_and_any_hashable() -> None:
    t = ReassemblyTable()
    k1 = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 17, 0x1234)
    k2 = (b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 17, 0x1235)
    t.add(k1, 1, 0, b"11", True)
    t.add(k2, 2, 0, b"22", True)
    r1 = t.add(k1, 3, 2, b"11", False)
    assert r1.data == b"1111"
    assert t.pending_keys() == [k2]


def test_redissection_is_stable() -> None:
    t = ReassemblyTable()
    first = t.add("k", 1, 0, b"AAAA", True)
    assert first.status is Status.PENDING
    done = t.add("k", 2, 4, b"BBBB", False)
    assert done.complete
    # Frame 2 again (the TUI re-dissects): the same datagram, not a new entry.
    again = t.add("k", 2, 4, b"BBBB", False)
    assert again.complete and again.data == done.data and len(t) == 0
    # Frame 1 again: now it knows where its datagram was completed.
    back = t.add("k", 1, 0, b"AAAA", True)
    assert back.status is Status.DONE and back.reassembled_in == 2 and back.data is None


def test_key_reuse_after_completion_starts_a_new_datagram() -> None:
    # The IPv4 Identification wraps; a completed datagram must not swallow the next one.
    t = ReassemblyTable()
    t.add("k", 1, 0, b"AA", True)
    assert t.add("k", 2, 2, b"AA", False).data == b"AAAA"
    t.add("k", 3, 0, b"BB", True)
    assert t.add("k", 4, 2, b"BB", False).data == b"BBBB"


def test_meta_travels_with_the_datagram() -> None:
    # IPv6 keeps the offset-0 fragment's Next Header this way (RFC 8200 §4.5).
    t = ReassemblyTable()
    t.add("k", 1, 8, b"x" * 8, False)
    r = t.add("k", 2, 0, b"y" * 8, True, meta=17)
    assert r.complete and r.meta == 17


# --- real bytes: kernel-fragmented datagrams ------------------------------------------


def _fragments_from_capture() -> dict[tuple[bytes, bytes, int], list[tuple[int, int, bytes, bool]]]:
    """IPv4 fragments of eth_veth.pcap, grouped by (src, dst, id), parsed here by hand (RFC 791 §3.1)."""
    from jpdissect.capture import open_capture

    groups: dict[tuple[bytes, bytes, int], list[tuple[int, int, bytes, bool]]] = {}
    for n, fr in enumerate(open_capture(DATA / "eth_veth.pcap"), start=1):
        d = fr.data
        if d[12:14] != b"\x08\x00":
            continue
        ip = d[14:]
        hl = (ip[0] & 15) * 4
        tl = int.from_bytes(ip[2:4], "big")
        fl = int.from_bytes(ip[6:8], "big")
        if fl & 0x3FFF == 0:
            continue
        key = (ip[12:16], ip[16:20], int.from_bytes(ip[4:6], "big"))
        groups.setdefault(key, []).append((n, (fl & 0x1FFF) * 8, ip[hl:tl], bool(fl & 0x2000)))
    return groups


def test_real_kernel_fragments_match_tshark() -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    groups = _fragments_from_capture()
    assert len(groups) == 2  # the 3000-byte datagram and its echo
    out = subprocess.run(
        ["tshark", "-r", str(DATA / "eth_veth.pcap"), "-Y", "ip.reassembled.length",
         "-T", "fields", "-e", "frame.number", "-e", "ip.reassembled.data", "-e", "ip.fragment"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    expected = {int(c[0]): (bytes.fromhex(c[1]), [int(x) for x in c[2].split(",")])
                for c in (line.split("\t") for line in out) if len(c) == 3}
    t = ReassemblyTable()
    got = {}
    for key, frags in groups.items():
        for n, off, data, more in frags:
            r = t.add(key, n, off, data, more)
            if r.complete:
                got[n] = (r.data, [f.frame for f in r.fragments])
    assert got == expected
    assert all(len(d) == 3008 for d, _ in got.values())


def test_real_fragments_reversed_and_duplicated() -> None:
    """The same real fragments, delivered last-first with the middle one twice."""
    groups = _fragments_from_capture()
    key, frags = next(iter(groups.items()))
    whole = b"".join(d for _n, _o, d, _m in sorted(frags, key=lambda f: f[1]))
    t = ReassemblyTable()
    order = [frags[2], frags[1], frags[1], frags[0]]
    results = [t.add(key, 100 + i, off, data, more) for i, (_n, off, data, more) in enumerate(order)]
    assert results[2].issues == Issue.OVERLAP
    assert results[-1].complete and results[-1].data == whole


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
