"""Access tokens: short-lived EdDSA JWTs.

Ed25519 signatures are deterministic, so the same claims always give the same token; the
refresh grace window relies on that to answer a retried refresh byte-for-byte the same.
Verification pins the algorithm, issuer and audience and allows a little clock skew.

An app presents one token on every request for its ten minutes, and the signature check is most
of what validation computes besides the session read: so a token whose signature this process
has checked is remembered (the exact text, with the keyring it was checked against), and a
request that presents it again only has its expiry checked.
"""

from __future__ import annotations

import binascii
import json
import threading
from dataclasses import dataclass
from typing import Any

import jwt

from .. import clock
from ..errors import Code, Refusal
from .keys import Keyring, b64url_decode

ALGORITHM = "EdDSA"
LEEWAY_SECONDS = 30
MAX_TOKEN_LENGTH = 4096
REMEMBERED = 2048  # tokens whose signature checked out; the oldest is forgotten first


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


_checked: dict[str, tuple[Keyring, str, str, AccessClaims]] = {}
_checked_lock = threading.Lock()


def verify(ring: Keyring, token: str, *, issuer: str, audience: str, expired_ok: bool = False) -> AccessClaims:
    if expired_ok:
        return _verify(ring, token, issuer=issuer, audience=audience)
    known = _checked.get(token)
    if known is not None and known[0] is ring and known[1:3] == (issuer, audience):
        return _unexpired(known[3])
    claims = _verify(ring, token, issuer=issuer, audience=audience)
    with _checked_lock:
        if len(_checked) >= REMEMBERED:
            del _checked[next(iter(_checked))]
        _checked[token] = (ring, issuer, audience, claims)
    return _unexpired(claims)


def _unexpired(claims: AccessClaims) -> AccessClaims:
    """The token's times against the product's clock (PyJWT would read the system's), as PyJWT
    decides them: expired, or issued in the future (no token of ours is)."""
    if clock.passed(claims.exp, LEEWAY_SECONDS):
        raise Refusal(Code.TOKEN_EXPIRED, "access token has expired")
    if clock.ahead(claims.iat, LEEWAY_SECONDS):
        raise Refusal(Code.INVALID_TOKEN, "access token is invalid")
    return claims


def _verify(ring: Keyring, token: str, *, issuer: str, audience: str) -> AccessClaims:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Refusal(Code.INVALID_TOKEN, "access token is too long")
    header = _header(token)
    if header is None:
        raise Refusal(Code.INVALID_TOKEN, "access token is malformed")
    kid = header.get("kid")
    public = ring.public_key(kid) if isinstance(kid, str) else None
    if public is None:
        raise Refusal(Code.INVALID_TOKEN, "access token was signed with an unknown key")
    try:
        payload = jwt.decode(
            token,
            public,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            leeway=LEEWAY_SECONDS,
            # Times are checked against clock.py by the caller: not PyJWT's own clock.
            options={"require": ["iss", "aud", "sub", "sid", "did", "iat", "exp"], "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )
    except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a payload nested too deeply
        raise Refusal(Code.INVALID_TOKEN, "access token is invalid") from None
    nbf = payload.get("nbf")  # none of ours has one; a token that says "not yet" is not used yet
    if nbf is not None and (clock.whole_seconds(nbf) is None or clock.ahead(nbf, LEEWAY_SECONDS)):
        raise Refusal(Code.INVALID_TOKEN, "access token is invalid")
    cnf = payload.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    try:
        return AccessClaims(
            uid=_text(payload["sub"]),
            sid=_text(payload["sid"]),
            did=_text(payload["did"]),
            iat=_whole(payload["iat"]),
            exp=_whole(payload["exp"]),
            jkt=_text(jkt) if jkt is not None else None,
        )
    except (TypeError, ValueError):
        raise Refusal(Code.INVALID_TOKEN, "access token is invalid") from None


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


def _whole(value: object) -> int:
    seconds = clock.whole_seconds(value)
    if seconds is None:
        raise ValueError("time claims are whole seconds")
    return seconds


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise ValueError("claim must be a non-empty string without '/'")
    return value
