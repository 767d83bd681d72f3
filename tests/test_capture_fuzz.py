"""Property tests: no input makes the capture readers raise anything unexpected.

The contract (see jpdissect.capture): :func:`open_capture` raises only
:class:`CaptureFormatError`; iteration never raises; frames come out in file order, each
consistent with itself; and how the bytes arrive (chunk size, short reads from a pipe) never
changes what is read. Seeds are the committed fixtures plus files made by our writers, mutated
by flipping, overwriting, inserting and cutting bytes.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpdissect import capture
from jpdissect.capture import CaptureError, CaptureFormatError, Frame, open_capture
from jpdissect.capture.writer import PcapngWriter, PcapWriter

DATA = Path(__file__).parent / "data" / "capture"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _writer_seeds() -> list[bytes]:
    frames = [Frame(1_700_000_000_000_000_000 + i * 1_234_567, 5 + i, 5 + i, bytes(range(5 + i)),
                    (1, 195, 147)[i % 3], i % 2, ("c",) * (i % 3), 0, i if i % 2 else None)
              for i in range(6)]
    ng = io.BytesIO()
    with PcapngWriter(ng) as w:
        for f in frames:
            w.write(f)
        w.write_secrets(0x544C534B, b"CLIENT_RANDOM 1 2\n")
    pc = io.BytesIO()
    with PcapWriter(pc) as pw:
        for f in frames:
            pw.write(Frame(f.ts_ns, f.caplen, f.wirelen, f.data, 1))
    return [ng.getvalue(), pc.getvalue()]


SEEDS = [(DATA / "multi_section.pcapng").read_bytes(), (DATA / "be_ns.pcap").read_bytes(),
         *_writer_seeds()]


def _read_all(source: object) -> tuple[list[Frame] | None, str | None]:
    """(frames, error text), or (None, message) when open_capture refuses the input.

    Any exception other than CaptureFormatError at open, or any exception at all while
    iterating, propagates and fails the test.
    """
    try:
        r = open_capture(source)  # type: ignore[arg-type]
    except CaptureFormatError as e:
        msg = str(e)
        assert msg.startswith("jpdissect: ") and "\n" not in msg
        return None, msg
    with r:
        frames = list(r)
        _check_frames(frames)
        err = r.error
        if err is not None:
            assert isinstance(err, CaptureError)
            assert not frames or err.offset > frames[-1].offset
            assert "\n" not in str(err)
        return frames, None if err is None else str(err)


def _check_frames(frames: list[Frame]) -> None:
    last = -1
    for f in frames:
        assert f.offset > last  # strictly in file order
        last = f.offset
        assert type(f.data) is bytes and f.caplen == len(f.data)
        assert isinstance(f.ts_ns, int) and isinstance(f.linktype, int)
        assert f.interface_id >= 0 and all(isinstance(c, str) for c in f.comments)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "length"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 8))]
        elif op == "cut":
            del data[i:]
        else:  # plant a hostile 32-bit length somewhere
            v = draw(st.sampled_from([0, 3, 8, 12, 0x7FFFFFFF, 0xFFFFFFFF, 0x0FFFFFFC, 0x40001]))
            data[i:i + 4] = v.to_bytes(4, draw(st.sampled_from(["little", "big"])))
    return bytes(data)


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _read_all(io.BytesIO(data))


@SETTINGS
@given(st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b"]),
       st.binary(max_size=300))
def test_random_bytes_behind_a_valid_magic(magic: bytes, rest: bytes) -> None:
    _read_all(io.BytesIO(magic + rest))


@SETTINGS
@given(mutated())
def test_mutated_files(data: bytes) -> None:
    _read_all(io.BytesIO(data))


@SETTINGS
@given(mutated())
def test_mutated_gzip_files(data: bytes) -> None:
    _read_all(io.BytesIO(gzip.compress(data)))


class _Trickle(io.RawIOBase):
    """Non-seekable, short reads of varying size: a pipe."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._sizes = sizes or [1]
        self._i = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        k = min(len(b), len(self._data), self._sizes[self._i % len(self._sizes)])
        self._i += 1
        b[:k] = self._data[:k]
        self._data = self._data[k:]
        return k


@SETTINGS
@given(mutated(), st.integers(1, 64), st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_chunking_never_changes_the_result(data: bytes, chunk: int, sizes: list[int]) -> None:
    """Same frames and same error, whatever the chunk size and however short the reads."""
    ref = _read_all(io.BytesIO(data))
    with mock.patch.object(capture, "CHUNK_SIZE", chunk):
        assert _read_all(io.BytesIO(data)) == ref
        assert _read_all(_Trickle(data, sizes)) == ref


@SETTINGS
@given(mutated())
def test_random_access_agrees_with_iteration(data: bytes) -> None:
    """read_frame_at(frame.offset) gives back the frame iteration gave (the checked slow path
    agrees with the inlined fast path)."""
    try:
        r = open_capture(io.BytesIO(data))
    except CaptureFormatError:
        return
    with r:
        frames = list(r)
        for f in frames:
            assert r.read_frame_at(f.offset) == f
