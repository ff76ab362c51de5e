"""The keyring: signing keys for access tokens and HMAC keys for device ids and refresh tokens.

Keys come from configuration (a JSON file path or the JSON itself, e.g. from Secret Manager),
never from the repository. The first key of each list signs; the others only verify, which is
how a key is rotated without signing anyone out.

    {"signing": [{"kid": "...", "privateKeyPem": "-----BEGIN PRIVATE KEY-----..."}],
     "hmac": [{"kid": "...", "secret": "<base64url, at least 32 bytes>"}]}

`python -m mydevices.tokens.keys generate PATH` writes a fresh keyring for local development.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..config import settings


def purpose_key(secret: bytes, purpose: bytes) -> bytes:
    """A key for one purpose only (`b"mydevices/<what>/v1"`), derived from a keyring HMAC key: a
    MAC made with it is useless for any other purpose the same secret serves."""
    return hmac.new(secret, purpose, hashlib.sha256).digest()


def same(given: object, expected: str) -> bool:
    """Constant-time equality of a value from a request with ours. `hmac.compare_digest` refuses
    non-ASCII text with a TypeError; a client's é, or a lone surrogate from a JSON escape, must
    compare unequal instead of failing the request."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @cached_property
    def public(self) -> Ed25519PublicKey:
        """Derived once: deriving costs about half a signature check, and every validation needs it."""
        return self.private.public_key()

    def jwk(self) -> dict[str, str]:
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), "kid": self.kid, "alg": "EdDSA", "use": "sig"}


@dataclass(frozen=True)
class Keyring:
    signing: tuple[SigningKey, ...]
    hmac: dict[str, bytes]  # kid -> secret, insertion order: current first
    current_hmac_kid: str

    @property
    def current_signing(self) -> SigningKey:
        return self.signing[0]

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        for key in self.signing:
            if key.kid == kid:
                return key.public
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self.signing]}

    @property
    def current_hmac(self) -> bytes:
        return self.hmac[self.current_hmac_kid]


def parse_keyring(doc: dict[str, Any]) -> Keyring:
    signing = []
    for entry in doc.get("signing", []):
        private = serialization.load_pem_private_key(entry["privateKeyPem"].encode(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"signing key {entry['kid']!r} is not an Ed25519 key")
        signing.append(SigningKey(entry["kid"], private))
    hmac_keys = {entry["kid"]: b64url_decode(entry["secret"]) for entry in doc.get("hmac", [])}
    if not signing or not hmac_keys:
        raise ValueError("the keyring needs at least one signing key and one hmac key")
    if any(len(secret) < 32 for secret in hmac_keys.values()):
        raise ValueError("hmac keys must be at least 32 bytes")
    return Keyring(tuple(signing), hmac_keys, next(iter(hmac_keys)))


@lru_cache(maxsize=1)
def keyring() -> Keyring:
    conf = settings()
    if conf.keys_json:
        return parse_keyring(json.loads(conf.keys_json))
    if conf.keys_file:
        with open(conf.keys_file, encoding="utf-8") as handle:
            return parse_keyring(json.load(handle))
    raise RuntimeError("no keys configured: set MYDEVICES_KEYS_FILE or MYDEVICES_KEYS_JSON")


def new_signing_entry() -> dict[str, str]:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {"kid": "sig-" + secrets.token_hex(4), "privateKeyPem": pem.decode()}


def new_hmac_entry() -> dict[str, str]:
    return {"kid": "mac-" + secrets.token_hex(4), "secret": b64url(secrets.token_bytes(32))}


def generate_keyring_doc() -> dict[str, list[dict[str, str]]]:
    return {"signing": [new_signing_entry()], "hmac": [new_hmac_entry()]}


def _main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "generate":
        print("usage: python -m mydevices.tokens.keys generate PATH", file=sys.stderr)
        return 2
    path = argv[2]
    if os.path.exists(path):
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(generate_keyring_doc(), handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
