"""Shared helpers for the radio tests (802.15.4, 6LoWPAN, MLE, the Thread capture); no tests here.

The differential helpers run tshark 4.0 on the same file and compare ``-T fields`` output cell by
cell with ours, for the fields both tools declare.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

from jpdissect.api import field_rows, packets
from jpdissect.capture import Frame, open_capture
from jpdissect.dissectors import load_all
from jpdissect.dissectors.registry import REGISTRY
from jpdissect.engine import Engine
from jpdissect.model import FIELDS, FT, Group, Packet, Severity, prime, unprime_all

load_all()  # api.packets() primes fields before it builds an Engine: make sure they exist

DATA = Path(__file__).parent / "data"
THREAD_PCAP = DATA / "thread" / "thread_two_joiners.pcap"
THREAD_PCAPNG = DATA / "thread" / "thread_two_joiners.pcapng"
WPAN = DATA / "wpan"
NETWORK_KEY = "17c627a33d5927bf887ae312092611b7"
ML_PREFIX = "fde5:9b79:49cc:91ea::/64"
KEY_PREF = f"thread.network_key:{NETWORK_KEY}"
# tshark's way to say the same: an IEEE 802.15.4 key of type "Thread hash", key index 0.
TSHARK_KEY = ["-o", f'uat:ieee802154_keys:"{NETWORK_KEY}","0","Thread hash"']
# Wireshark does not learn the mesh-local prefix, so both tools are told context 0.
TSHARK_CTX0 = ["-o", f"6lowpan.context0:{ML_PREFIX}"]
# The KEKs the two joins end with (Joiner Router KEK TLV 21 in the c/tx of frames 169 and 311).
KEK_JOINER3 = "87ac110e301501083df59c95f390b840"
KEK_JOINER4 = "98daa78a702d31124943f5add047b8fc"
# The JOIN_ENT exchanges secured with those KEKs (Key ID Mode 0). Wireshark 4.0 cannot know a KEK,
# so wherever the MeshCoP dissector has handed it to us these frames decode here and not there.
KEK_FRAMES_3 = (181, 183, 185)
KEK_FRAMES_4 = (323, 325, 327)
KEK_FRAMES = KEK_FRAMES_3 + KEK_FRAMES_4


def kek_is_learned() -> bool:
    """Whether a loaded dissector (MeshCoP, for the c/tx Joiner Router KEK TLV) feeds KEKs to wpan."""
    eng = Engine(prefs=[KEY_PREF])
    for fr in read_frames(THREAD_PCAP)[:180]:
        eng.dissect(fr)
    return bool(eng.state.get("thread.kek"))

HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark not installed")


def needs_network_layer() -> None:
    """The end-to-end tests need the IPv6/UDP dissectors of the network issue."""
    missing = [n for n in ("ipv6", "udp") if n not in REGISTRY.named]
    if missing:
        pytest.skip(f"dissector(s) {', '.join(missing)} not available yet")


@functools.cache
def tshark_field_types() -> dict[str, str]:
    out = subprocess.run(["tshark", "-G", "fields"], capture_output=True, text=True, check=True).stdout
    types: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if parts[0] == "F" and len(parts) > 3:
            types[parts[2]] = parts[3]
    return types


def comparable_fields(*prefixes: str) -> list[str]:
    """Fields we declare under ``prefixes`` that tshark also has, minus FT_NONE (whose -T fields
    rendering differs between tools by design)."""
    tt = tshark_field_types()
    out = []
    for name, fd in FIELDS.items():
        if not name.startswith(prefixes) or fd.ftype in (FT.NONE, FT.PROTOCOL):
            continue
        if tt.get(name) not in (None, "FT_NONE", "FT_PROTOCOL"):
            out.append(name)
    return sorted(out)


def tshark_rows(path: Path, fields: list[str], opts: list[str] = ()) -> list[list[str]]:  # type: ignore[assignment]
    cmd = ["tshark", "-r", str(path), *opts, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.split("\n")[:-1]]


def diff_with_tshark(path: Path, fields: list[str], our_prefs: list[str], tshark_opts: list[str],
                     decode_as: list[str] = (), skip_frames: tuple[int, ...] = ()) -> list[str]:  # type: ignore[assignment]
    """Every cell where the two tools disagree, as readable strings (``skip_frames``: known,
    explained differences the caller checks separately)."""
    theirs = tshark_rows(path, fields, tshark_opts)
    ours = field_rows(path, fields, prefs=our_prefs, decode_as=decode_as)
    bad = [f"frame count: tshark {len(theirs)}, ours {len(ours)}"] if len(theirs) != len(ours) else []
    for i, (a, b) in enumerate(zip(theirs, ours, strict=False), start=1):
        if i in skip_frames:
            continue
        for f, x, y in zip(fields, a, b, strict=False):
            if x != y:
                bad.append(f"frame {i} {f}: tshark={x!r} ours={y!r}")
    return bad


# Fields Wireshark adds hidden: recorded only when asked for (as -e or a filter would).
HIDDEN = ("wpan.fcs_ok", "wpan.frame_length", "wpan.addr16", "wpan.addr64", "wpan.aux_sec.key_source.bytes")


def dissect_all(path: Path, prefs: list[str] = (), tree: bool = True,  # type: ignore[assignment]
                fields: tuple[str, ...] = HIDDEN) -> list[Packet]:
    return list(packets(path, prefs=prefs, tree=tree, fields=fields))


def dissect_bytes(frames: list[bytes], linktype: int, prefs: list[str] = (), tree: bool = True,  # type: ignore[assignment]
                  ts_step_ns: int = 1_000_000, fields: tuple[str, ...] = HIDDEN) -> list[Packet]:
    unprime_all()
    prime(fields)
    eng = Engine(prefs=prefs, tree=tree)
    out = []
    for i, data in enumerate(frames):
        out.append(eng.dissect(Frame(ts_ns=1_795_442_594_000_000_000 + i * ts_step_ns, caplen=len(data),
                                     wirelen=len(data), data=data, linktype=linktype)))
    return out


def read_frames(path: Path) -> list[Frame]:
    with open_capture(path) as rd:
        return list(rd)


def bugs(pkt: Packet) -> list[str]:
    """Expert entries that mean a dissector raised (the engine's last-resort catch)."""
    return [e.message for e in pkt.experts if e.message.startswith("Dissector bug")]


def experts(pkt: Packet, group: Group | None = None, severity: Severity | None = None) -> list[str]:
    return [e.message for e in pkt.experts if (group is None or e.group is group)
            and (severity is None or e.severity is severity)]
