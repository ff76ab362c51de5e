"""A self-signed certificate for the local stack's HTTPS, and how to start Chromium with DBSC on.

Chromium runs Device Bound Session Credentials only over HTTPS with no certificate error
(/work/shared/platform-notes.md): `--ignore-certificate-errors` is not enough, but a certificate
whose public-key hash is allowlisted (`--ignore-certificate-errors-spki-list`) is. So the stack
makes one certificate (P-256, for `localhost` and `127.0.0.1`) into an ignored folder
(`.local/tls/`), once, with the `cryptography` package, and prints the switches with its hash.

    python -m infra.local.tls          # makes .local/tls/ if needed, prints the Chromium command
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
TLS_DIR = REPO_ROOT / ".local" / "tls"
DBSC_FEATURES = ("DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,"
                 "EnableBoundSessionCredentialsSoftwareKeysForManualTesting,DeviceBoundSessionsDevTools")


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    @property
    def spki_hash(self) -> str:
        """base64 SHA-256 of the DER SubjectPublicKeyInfo: what the SPKI allowlist takes."""
        loaded = x509.load_pem_x509_certificate(self.cert.read_bytes())
        der = loaded.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()


def ensure_certificate(folder: Path = TLS_DIR) -> Certificate:
    """The certificate in `folder`, made the first time (valid a year, renewed when near its end)."""
    found = Certificate(folder / "cert.pem", folder / "key.pem")
    if found.cert.exists() and found.key.exists():
        loaded = x509.load_pem_x509_certificate(found.cert.read_bytes())
        if loaded.not_valid_after_utc > datetime.now(UTC) + timedelta(days=7):
            return found
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    found.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    found.key.chmod(0o600)
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return found


def chromium_switches(certificate: Certificate, user_data_dir: Path) -> list[str]:
    """The switches that turn DBSC on (software keys) and trust this certificate, no other."""
    return [
        f"--enable-features={DBSC_FEATURES}",
        f"--ignore-certificate-errors-spki-list={certificate.spki_hash}",
        f"--user-data-dir={user_data_dir}",
    ]


def chromium_command(certificate: Certificate, url: str) -> str:
    switches = " ".join(chromium_switches(certificate, REPO_ROOT / ".local" / "chromium-dbsc"))
    return f"chromium {switches} {url}"


if __name__ == "__main__":
    made = ensure_certificate()
    print(f"certificate: {made.cert} (SPKI sha256 {made.spki_hash})")
    print("Chromium with DBSC on:\n  " + chromium_command(made, sys.argv[1] if len(sys.argv) > 1 else "https://localhost:5443"))
