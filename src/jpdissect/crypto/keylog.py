"""NSS key log files (SSLKEYLOGFILE) and pcapng Decryption Secrets Blocks carrying them.

The key log is what OpenSSL's ``-keylogfile``, ``SSLKEYLOGFILE`` in NSS/curl/Firefox, and Mbed TLS's
export callbacks write: one ``LABEL <client random hex> <secret hex>`` per line. DTLS 1.2 needs
``CLIENT_RANDOM`` (the 48-byte master secret), DTLS 1.3 the per-direction traffic secrets. The same
text may be embedded in a pcapng file as a Decryption Secrets Block of type ``TLSK`` (pcapng §4.7),
so a capture can carry its own keys -- ``editcap --inject-secrets tls,FILE`` makes such files.

Bad lines are counted and remembered (for an expert note), never fatal: a key log often mixes
sessions from many programs and a partly damaged file still holds good keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: pcapng Decryption Secrets Block type for a TLS key log (pcapng §4.7: 0x544c534b, "TLSK").
DSB_TLS_KEYLOG = 0x544C534B
#: Largest key log read (a line is ~180 bytes, so this is hundreds of thousands of sessions).
MAX_KEYLOG_BYTES = 64 << 20
#: Most malformed lines remembered for the report.
MAX_ERRORS_KEPT = 16
#: Client random length (RFC 5246 §7.4.1.2) -- the key every label is indexed by.
RANDOM_LEN = 32

#: The labels used here; others (e.g. ``RSA``, ``EXPORTER_SECRET``) are kept but not used.
CLIENT_RANDOM = "CLIENT_RANDOM"
CLIENT_HANDSHAKE = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
SERVER_HANDSHAKE = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
CLIENT_TRAFFIC_0 = "CLIENT_TRAFFIC_SECRET_0"
SERVER_TRAFFIC_0 = "SERVER_TRAFFIC_SECRET_0"
CLIENT_EARLY = "CLIENT_EARLY_TRAFFIC_SECRET"

_LINE = re.compile(r"^([A-Z0-9_]+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s*$")


@dataclass
class KeyLog:
    """Secrets by label and client random; ``errors`` names lines that could not be read."""

    secrets: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    bad_lines: int = 0
    sources: list[str] = field(default_factory=list)

    def add_text(self, text: str, source: str = "key log") -> int:
        """Parse key log text; returns how many secrets were added."""
        if source not in self.sources:
            self.sources.append(source)
        added = 0
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m is None or len(m.group(2)) % 2 or len(m.group(3)) % 2:
                self._bad(f"{source}:{n}: not 'LABEL <hex> <hex>'")
                continue
            label, key, secret = m.group(1), bytes.fromhex(m.group(2)), bytes.fromhex(m.group(3))
            if label != "RSA" and len(key) != RANDOM_LEN:
                self._bad(f"{source}:{n}: client random of {len(key)} bytes (expected {RANDOM_LEN})")
                continue
            self.secrets.setdefault(label, {})[key] = secret
            added += 1
        return added

    def _bad(self, msg: str) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(msg)

    def get(self, label: str, client_random: bytes | None) -> bytes | None:
        if client_random is None:
            return None
        by = self.secrets.get(label)
        return by.get(bytes(client_random)) if by is not None else None

    def master_secret(self, client_random: bytes | None) -> bytes | None:
        """The DTLS/TLS 1.2 master secret logged for this client random (``CLIENT_RANDOM``)."""
        return self.get(CLIENT_RANDOM, client_random)

    def __len__(self) -> int:
        return sum(len(v) for v in self.secrets.values())


def parse(text: str, source: str = "key log") -> KeyLog:
    kl = KeyLog()
    kl.add_text(text, source)
    return kl


def load_file(path: str | os.PathLike[str]) -> KeyLog:
    """Read a key log file; raises OSError (missing/unreadable) or ValueError (too large)."""
    p = os.fspath(path)
    size = os.path.getsize(p)
    if size > MAX_KEYLOG_BYTES:
        raise ValueError(f"{p}: key log of {size} bytes exceeds the {MAX_KEYLOG_BYTES}-byte limit")
    with open(p, "rb") as f:
        data = f.read()
    return parse(data.decode("utf-8", "replace"), p)


def add_dsbs(kl: KeyLog, secrets: Iterable[tuple[int, bytes]]) -> int:
    """Add the TLS key logs among pcapng Decryption Secrets Blocks; other secret types are skipped."""
    n = 0
    for i, (stype, data) in enumerate(secrets):
        if stype == DSB_TLS_KEYLOG:
            n += kl.add_text(bytes(data).decode("utf-8", "replace"), f"pcapng DSB #{i + 1}")
    return n


# ---------------------------------------------------------------------------
# The engine's view: key log file (preference) + DSBs seen so far, parsed once


@dataclass
class EngineSecrets:
    """What one capture's decryptors can use; refreshed when new DSBs arrive."""

    keylog: KeyLog
    file_error: str | None = None
    dsb_seen: int = 0
    configured: bool = False   # any DTLS secret source at all: only then is "no key" worth a note


STATE_KEY = "crypto.secrets"


def engine_secrets(cap: Any) -> EngineSecrets:
    """The parsed secrets of this engine: the ``dtls.keylog_file`` preference once, DSBs as read.

    The capture readers append Decryption Secrets Blocks to ``reader.secrets`` as they meet them
    and the CLI hands that list to ``engine.secrets``; new entries are picked up here.
    """
    st = cap.state.get(STATE_KEY)
    secrets = cap.secrets
    if st is not None and len(secrets) == st.dsb_seen:
        return st
    if st is None:
        kl = KeyLog()
        err = None
        path = cap.pref("dtls.keylog_file") if "dtls.keylog_file" in cap.prefs else ""
        if path:
            try:
                kl = load_file(path)
            except (OSError, ValueError) as exc:
                err = f"dtls.keylog_file: {exc}"
        psk = cap.prefs.get("dtls.psk") or b""
        st = cap.state[STATE_KEY] = EngineSecrets(kl, err, 0, bool(path) or bool(psk))
    if len(secrets) > st.dsb_seen:
        new = secrets[st.dsb_seen:]
        st.dsb_seen = len(secrets)
        if add_dsbs(st.keylog, new):
            st.configured = True
    return st


def configured_secrets(cap: Any) -> EngineSecrets | None:
    """:func:`engine_secrets`, or None when no DTLS secret was given at all (no key log, PSK or DSB).

    The DTLS 1.2 and 1.3 decryptors ask this for every protected record: None is their cue to say
    nothing, as tshark without keys. (``not keylog.secrets``, not ``len(keylog)``, which sums.)
    """
    st = engine_secrets(cap)
    return st if st.configured or st.keylog.secrets else None
