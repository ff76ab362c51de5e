"""Access tokens: short-lived EdDSA JWTs.

Ed25519 signatures are deterministic, so the same claims always give the same token; the
refresh grace window relies on that to answer a retried refresh byte-for-byte the same.
Verification pins the algorithm, issuer and audience and allows a little clock skew.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from .errors import Unauthenticated
from .keys import Keyring

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
    return jwt.encode(payload, key.private, algorithm=ALGORITHM, headers={"kid": key.kid})


def verify(ring: Keyring, token: str, *, issuer: str, audience: str) -> AccessClaims:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("access token is too long", code="invalid_token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthenticated("access token is malformed", code="invalid_token") from None
    kid = header.get("kid")
    public = ring.public_key(kid) if isinstance(kid, str) else None
    if public is None:
        raise Unauthenticated("access token was signed with an unknown key", code="invalid_token")
    try:
        payload = jwt.decode(
            token,
            public,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "sid", "did", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("access token has expired", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("access token is invalid", code="invalid_token") from None
    try:
        return AccessClaims(
            uid=_text(payload["sub"]),
            sid=_text(payload["sid"]),
            did=_text(payload["did"]),
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
        )
    except (TypeError, ValueError):
        raise Unauthenticated("access token is invalid", code="invalid_token") from None


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError("claim must be a non-empty string without '/'")
    return value
