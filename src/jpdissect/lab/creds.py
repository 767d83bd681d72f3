"""Key material for one lab run: certificates, PSK, the JP header key, OSCORE contexts.

Made fresh for every run with ``cryptography`` and saved next to the capture, because the decryption
features read it back: the keylog alone does not cover everything (a python-mbedtls pair writes no
keylog; PSK handshakes are also decryptable from the PSK; JPY headers and extended-token state from
the JP key; CoJP from the OSCORE contexts).

cBRSKI authenticates pledges by IDevID certificates (RFC 8995 §2.3: an 802.1AR certificate whose
subject carries the ``serialNumber``), so the pledge certificates do; the Registrar certificate is
issued by the same lab CA. RFC 9031 §8.1 fixes the CoJP OSCORE identities: the pledge's Sender ID is
empty, the JRC's is ``"JRC"``, and the ID Context is the pledge identifier.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Fixed validity: the captures stay verifiable for years.
NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2099, 12, 31, tzinfo=datetime.UTC)
PSK_LEN = 16
JP_KEY_LEN = 16
KEK_LEN = 16
OSCORE_SECRET_LEN = 16
#: RFC 9031 §8.1: the JRC's OSCORE Sender ID.
JRC_SENDER_ID = b"JRC"
PSK_HINT = "registrar"
REGISTRAR_SERIAL = "JP-REG-0001"


def pledge_serial(i: int) -> str:
    return f"PLEDGE-{i:04d}"


def psk_identity(i: int) -> str:
    return f"pledge-{i:04d}"


def _name(cn: str, serial: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jpdissect lab"),
             x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if serial:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return x509.Name(attrs)


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
          issuer_key: ec.EllipticCurvePrivateKey, serial: int, ca: bool) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(serial).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
    return b.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@dataclass
class Credentials:
    """Paths and secrets of one run (``keydir`` holds the files)."""

    keydir: Path
    psk: bytes
    jp_key: bytes
    thread_kek: bytes
    pledge_ids: list[bytes] = field(default_factory=list)
    oscore_secrets: list[bytes] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.keydir / "ca.pem"

    @property
    def registrar_cert(self) -> Path:
        return self.keydir / "registrar.pem"

    @property
    def registrar_key(self) -> Path:
        return self.keydir / "registrar.key"

    def pledge_cert(self, i: int) -> Path:
        return self.keydir / f"pledge{i}.pem"

    def pledge_key(self, i: int) -> Path:
        return self.keydir / f"pledge{i}.key"

    def oscore_dir(self, i: int, role: str) -> Path:
        """aiocoap context directory of pledge ``i`` for ``role`` 'pledge' or 'jrc'."""
        return self.keydir / "oscore" / f"pledge{i}-{role}"


def make(keydir: Path, n_pledges: int, oscore: bool = False) -> Credentials:
    """Fresh keys for ``n_pledges`` pledges under ``keydir``."""
    keydir.mkdir(parents=True, exist_ok=True)
    creds = Credentials(keydir, os.urandom(PSK_LEN), os.urandom(JP_KEY_LEN), os.urandom(KEK_LEN))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("jpdissect lab CA")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, 1, True)
    creds.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    reg_key = ec.generate_private_key(ec.SECP256R1())
    reg = _cert(_name("registrar.example", REGISTRAR_SERIAL), reg_key, ca_name, ca_key, 0x1000, False)
    creds.registrar_cert.write_bytes(reg.public_bytes(serialization.Encoding.PEM))
    _write_key(creds.registrar_key, reg_key)
    for i in range(1, n_pledges + 1):
        k = ec.generate_private_key(ec.SECP256R1())
        c = _cert(_name("pledge", pledge_serial(i)), k, ca_name, ca_key, 0x2000 + i, False)
        creds.pledge_cert(i).write_bytes(c.public_bytes(serialization.Encoding.PEM))
        _write_key(creds.pledge_key(i), k)
        creds.pledge_ids.append(bytes.fromhex(f"5043{i:012x}"))  # an EUI-64-sized pledge identifier
    if oscore:
        for i in range(1, n_pledges + 1):
            secret = os.urandom(OSCORE_SECRET_LEN)
            creds.oscore_secrets.append(secret)
            pid = creds.pledge_ids[i - 1]
            for role, sender, recipient in (("pledge", b"", JRC_SENDER_ID), ("jrc", JRC_SENDER_ID, b"")):
                d = creds.oscore_dir(i, role)
                d.mkdir(parents=True, exist_ok=True)
                (d / "secret.json").write_text(json.dumps({
                    "secret_hex": secret.hex(), "sender-id_hex": sender.hex(),
                    "recipient-id_hex": recipient.hex(), "id-context_hex": pid.hex(),
                }, indent=1))
    return creds


def tidy_oscore(creds: Credentials) -> None:
    """Drop aiocoap's run-time state (sequence numbers, locks) so only the contexts remain."""
    root = creds.keydir / "oscore"
    if not root.exists():
        return
    for d in root.iterdir():
        for f in d.iterdir():
            if f.name != "secret.json":
                f.unlink()
