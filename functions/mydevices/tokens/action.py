"""Action tokens: the capability a "Was that you?" push carries.

Whoever holds one may answer once, for one user, about one new session, and only while the
session it was sent to is still active (flows/alert_answer.py). It is a JWT (HS256, algorithm
pinned) keyed by a purpose-bound derivation of the keyring's HMAC key, so it can never pass as
an access token or a device id, and its `kid` lets keys rotate.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from typing import Any

import jwt

from .. import clock
from ..config import settings
from ..errors import Code, Refusal
from .keys import keyring, purpose_key

ALGORITHM = "HS256"
AUDIENCE = "mydevices-alert"
MAX_TOKEN_LENGTH = 2048
LEEWAY_SECONDS = 30
_PURPOSE = b"mydevices/action-token/v1"


def _key(secret: bytes) -> bytes:
    return purpose_key(secret, _PURPOSE)


def issue(uid: str, alerted_sid: str, new_sid: str, *, now: int | None = None, jti: str | None = None) -> str:
    """The token that lets the holder of session `alerted_sid` answer about `new_sid`."""
    ring = keyring()
    conf = settings()
    issued_at = clock.seconds() if now is None else now
    payload = {
        "iss": conf.issuer,
        "aud": AUDIENCE,
        "sub": uid,
        "sid": alerted_sid,
        "nsid": new_sid,
        "jti": jti or secrets.token_urlsafe(16),
        "iat": issued_at,
        "exp": issued_at + conf.action_token_ttl,
    }
    return jwt.encode(payload, _key(ring.current_hmac), algorithm=ALGORITHM, headers={"kid": ring.current_hmac_kid})


def earlier(candidate: Any, new_created: Any) -> bool:
    """Only sessions that existed before the new one are asked about it. Events can be handled
    late, and the pending list is read at any time: without this, a login made after the new one
    (an intruder's, say) would be handed an action token able to close the user's own new session."""
    if not isinstance(candidate, datetime) or not isinstance(new_created, datetime):
        return False
    return candidate < new_created


def pair_token(uid: str, alerted_sid: str, new_sid: str, new_created: Any) -> tuple[str, int]:
    """The one action token of (alerted session, new session), and when it expires.

    Issued at the new session's creation with a jti derived from the three ids, so the push and
    every read of the pending list hand out the same token (byte for byte while the HMAC key
    stays) and one answer uses them all up: a page polling every 2 s holds no more answers than
    one push would. The jti need not be secret: only the server writes `usedActionTokens`.
    """
    began = int(new_created.timestamp()) if isinstance(new_created, datetime) else clock.seconds()
    digest = hashlib.sha256(f"{uid}\x00{alerted_sid}\x00{new_sid}".encode()).digest()
    jti = base64.urlsafe_b64encode(digest[:18]).decode()
    return issue(uid, alerted_sid, new_sid, now=began, jti=jti), began + settings().action_token_ttl


def verify(token: Any) -> dict[str, Any]:
    """The token's claims, or 401 `invalid_token` / `token_expired`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Refusal(Code.INVALID_TOKEN, "action token is missing or malformed")
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a header nested too deeply
        raise Refusal(Code.INVALID_TOKEN, "action token is malformed") from None
    secret = keyring().hmac.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise Refusal(Code.INVALID_TOKEN, "action token was signed with an unknown key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _key(secret),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=settings().issuer,
            leeway=LEEWAY_SECONDS,
            # Its expiry is checked below against clock.py, not PyJWT's own clock.
            options={"require": ["iss", "aud", "sub", "sid", "nsid", "jti", "iat", "exp"], "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )
    except (jwt.InvalidTokenError, RecursionError):
        raise Refusal(Code.INVALID_TOKEN, "action token is invalid") from None
    if not all(isinstance(claims[name], str) and claims[name] for name in ("sub", "sid", "nsid", "jti")) \
            or not all(clock.whole_seconds(claims[name]) is not None for name in ("iat", "exp")):
        raise Refusal(Code.INVALID_TOKEN, "action token is invalid")
    if clock.passed(claims["exp"], LEEWAY_SECONDS):
        raise Refusal(Code.TOKEN_EXPIRED, "action token has expired")
    if clock.ahead(claims["iat"], LEEWAY_SECONDS):
        raise Refusal(Code.INVALID_TOKEN, "action token is invalid")
    return claims
