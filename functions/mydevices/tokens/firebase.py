"""Firebase-native sessions: the custom token a login hands out, and the ID tokens it turns into.

The app signs in to Firebase with the custom token, so every Firebase ID token it holds from then
on -- across the Firebase SDK's own hourly refresh -- carries our session id (`sid`) and device id
(`did`). Security rules (`hasActiveSession()` in firestore.rules), the callables and
`require_session` read them to know which session, on which device, a request belongs to.

firebase_admin.auth is imported on first use only, so a cold start that never mints or verifies
one of these tokens does not pay for it. Telling a Firebase ID token from our access token needs
no import: only Firebase's carry the issuer `https://securetoken.google.com/<project>`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import jwt

from ..errors import Code, Refusal, unavailable
from ..firebase_app import app
from .sign_in import SIGNED_IN_AT_CLAIM, uid_of, verify_claims

log = logging.getLogger(__name__)

FIREBASE_ISSUER_PREFIX = "https://securetoken.google.com/"
SID_CLAIM, DID_CLAIM = "sid", "did"
CLAIM_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class SessionClaims:
    uid: str
    sid: str
    did: str


def custom_token(uid: str, sid: str, did: str, signed_in_at: int) -> str:
    """A Firebase custom token (valid 1 h, Firebase's fixed lifetime) naming this session, and
    when the user last signed in with a credential (sign_in.Identity.auth_time).

    In production firebase-admin signs it through the IAM signBlob API as the function's service
    account (a network call per login, and the iam.serviceAccounts.signBlob permission); with the
    Auth emulator it is unsigned. A failure to sign is an outage of a dependency (503): the login
    then writes nothing, and the log says why, since it is usually a missing permission.
    """
    from firebase_admin import auth
    from google.auth.exceptions import GoogleAuthError

    try:
        claims = {SID_CLAIM: sid, DID_CLAIM: did, SIGNED_IN_AT_CLAIM: signed_in_at}
        token = auth.create_custom_token(uid, claims, app=app())
    except (auth.TokenSignError, ValueError, GoogleAuthError) as exc:  # ValueError: no service account to sign as
        log.error("cannot sign a Firebase custom token (needs iam.serviceAccounts.signBlob): %s", exc)
        raise unavailable() from None
    return token.decode("ascii") if isinstance(token, bytes) else str(token)


def is_id_token(token: str) -> bool:
    """Whether `token` claims to be a Firebase ID token (unverified: this only picks the verifier)."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a segment nested too deeply
        return False
    issuer = payload.get("iss")
    return isinstance(issuer, str) and issuer.startswith(FIREBASE_ISSUER_PREFIX)


def verify(id_token: str) -> SessionClaims:
    """The session a Firebase ID token names; refused when it was not minted by a My Devices login.

    No `check_revoked`: it would cost an Auth API call per request, and the caller reads the
    session document anyway, which revokes per device rather than per user.
    """
    claims = verify_claims(id_token)
    uid = uid_of(claims)
    sid, did = claims.get(SID_CLAIM), claims.get(DID_CLAIM)
    if not _usable(sid) or not _usable(did):
        raise Refusal(Code.INVALID_TOKEN, "this Firebase ID token does not come from a My Devices login")
    assert isinstance(sid, str) and isinstance(did, str)
    return SessionClaims(uid, sid, did)


def _usable(value: object) -> bool:
    """The shape hasActiveSession() in firestore.rules accepts, and never one Firestore reserves."""
    return isinstance(value, str) and CLAIM_SHAPE.fullmatch(value) is not None and not value.startswith("__")
