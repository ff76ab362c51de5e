"""Access tokens: short-lived EdDSA JWTs.

Ed25519 signatures are deterministic, so the same claims always give the same token; the
refresh grace window relies on that to answer a retried refresh byte-for-byte the same.
Verification pins the algorithm, issuer and audience and allows a little clock skew.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import Code, Unauthenticated
from .keys import Keyring, b64url_decode

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 4096


@dataclass(frozen=True)
class AccessClaims:
    uid: str
    sid: str
    did: str
    iat: int
    exp: int
    jkt: str | None = None  # a device-bound session's key thumbprint (RFC 9449 `cnf.jkt`)


def issue(ring: Keyring, *, issuer: str, audience: str, claims: AccessClaims) -> str:
    key = ring.current_signing
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": claims.uid,
        "sid": claims.sid,
        "did": claims.did,
        "iat": claims.iat,
        "exp": claims.exp,
    }
    if claims.jkt is not None:
        # Another backend verifying with the JWKS can demand a DPoP proof of this key per request.
        payload["cnf"] = {"jkt": claims.jkt}
    return jwt.encode(payload, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


def verify(ring: Keyring, token: str, *, issuer: str, audience: str, expired_ok: bool = False) -> AccessClaims:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("access token is too long", code=Code.INVALID_TOKEN)
    header = _header(token)
    if header is None:
        raise Unauthenticated("access token is malformed", code=Code.INVALID_TOKEN)
    kid = header.get("kid")
    public = ring.public_key(kid) if isinstance(kid, str) else None
    if public is None:
        raise Unauthenticated("access token was signed with an unknown key", code=Code.INVALID_TOKEN)
    try:
        payload = jwt.decode(
            token,
            public,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "sid", "did", "iat", "exp"], "verify_exp": not expired_ok},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("access token has expired", code=Code.TOKEN_EXPIRED) from None
    except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a payload nested too deeply
        raise Unauthenticated("access token is invalid", code=Code.INVALID_TOKEN) from None
    cnf = payload.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    try:
        return AccessClaims(
            uid=_text(payload["sub"]),
            sid=_text(payload["sid"]),
            did=_text(payload["did"]),
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
            jkt=_text(jkt) if jkt is not None else None,
        )
    except (TypeError, ValueError):
        raise Unauthenticated("access token is invalid", code=Code.INVALID_TOKEN) from None


def _header(token: str) -> dict[str, Any] | None:
    """The token's JOSE header, unverified, read from its first segment alone.

    Only the `kid` is taken from it, to pick the key; `jwt.decode` then checks every segment and
    the signature, which covers this header. (`jwt.get_unverified_header` would parse and check
    the whole token once more: on every validated request, a measurable share of its CPU.)
    """
    try:
        header = json.loads(b64url_decode(token.split(".", 1)[0]))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: JSON nested too deeply
        return None
    return header if isinstance(header, dict) else None


def names_our_key(ring: Keyring, token: str) -> bool:
    """Whether the token's (unverified) header names one of our signing keys: such a token is
    ours to verify, so nothing else needs to look at it first."""
    header = _header(token) if len(token) <= MAX_TOKEN_LENGTH else None
    kid = header.get("kid") if header else None
    return isinstance(kid, str) and ring.public_key(kid) is not None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError("claim must be a non-empty string without '/'")
    return value
