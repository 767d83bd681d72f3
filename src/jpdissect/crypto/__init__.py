"""Seeing inside: DTLS 1.2/1.3 and OSCORE decryption with secrets the user supplies.

Nothing here guesses keys. A record or message is decrypted only with a secret the user gave
(an SSLKEYLOGFILE, a pcapng Decryption Secrets Block, a DTLS PSK, an OSCORE security context), and a
plaintext is shown only after its AEAD tag verified -- so a wrong key gives an expert note
("authentication tag mismatch"), never a plausible-looking wrong plaintext.

The modules are called from the dissectors through single-call hooks (see :mod:`.dtls12`,
:mod:`.dtls13`, :mod:`.oscore`); per-capture state (parsed key logs, derived keys, handshake
transcripts) lives on the engine, like every other dissector state.

Preferences (``-o name:value``; the CLI's ``--keylog FILE`` and ``--oscore-contexts FILE`` set the
first and the last):
"""

from __future__ import annotations

from jpdissect.model import Pref, declare_prefs

declare_prefs(
    Pref("dtls.keylog_file", str, "",
         "NSS key log file (SSLKEYLOGFILE format: CLIENT_RANDOM for DTLS 1.2, traffic secrets for 1.3)"),
    Pref("dtls.psk", bytes, b"",
         "DTLS pre-shared key (hex) for plain PSK cipher suites (RFC 4279 §2)"),
    Pref("oscore.contexts_file", str, "",
         "OSCORE security contexts: a JSON list of {master_secret, master_salt, sender_id, recipient_id, "
         "id_context, algorithm} (hex), or an aiocoap context directory (settings.json/secret.json), "
         "or a directory of such directories"),
)

# Payload dissectors that only make sense once the plaintext is visible register on import.
from jpdissect.crypto import cbrski as _cbrski  # noqa: E402,F401  (registers on coap.uri_path)
from jpdissect.crypto import cojp as _cojp  # noqa: E402,F401
from jpdissect.crypto import dtls12 as _dtls12  # noqa: E402,F401
from jpdissect.crypto import dtls13 as _dtls13  # noqa: E402,F401

# Declare the decryption fields with the rest, so `jpdissect fields` and filters know them.
from jpdissect.crypto import oscore as _oscore  # noqa: E402,F401
