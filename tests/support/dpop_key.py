"""A device's P-256 key for DPoP (RFC 9449) made with the `cryptography` package, not with code of
ours: its public JWK, its RFC 7638 thumbprint, and proofs (tests/api/test_binding.py,
tests/api/test_guard_cases.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class DeviceKey:
    """A P-256 key as the platform keystore holds it: only `public_jwk` ever leaves it."""

    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big"))}

    def thumbprint(self) -> str:
        jwk = self.public_jwk
        canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
        return b64(hashlib.sha256(canonical.encode()).digest())

    def proof(self, htm: str, htu: str, nonce: str | None, *, iat: int | None = None, jti: str | None = None,
              access_token: str | None = None, header: dict[str, Any] | None = None) -> str:
        head = header or {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk}
        payload: dict[str, Any] = {"jti": jti or secrets.token_urlsafe(16), "htm": htm, "htu": htu,
                                   "iat": int(time.time()) if iat is None else iat}
        if nonce is not None:
            payload["nonce"] = nonce
        if access_token is not None:
            payload["ath"] = b64(hashlib.sha256(access_token.encode()).digest())
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
