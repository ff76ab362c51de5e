"""Who the user is: a Firebase ID token, verified by firebase-admin.

At login one Auth lookup (account.check_sign_in) makes a disabled, deleted or signed-out Firebase
user unable to start a session. Session-bearing ID tokens (firebase_tokens) skip it: the read of
their session document is their revocation check, and it is per device.

When the user proved who they are is the ID token's `auth_time`, except for a sign-in with one
of our own custom tokens (tokens/firebase.py custom_token): exchanging it is no credential typed,
so its ID token's auth_time is replaced by the `signed_in_at` claim the custom token carries,
the time of the sign-in that earned it. Otherwise a kept custom token would count as a fresh
sign-in after a closure, or after a password reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import clock, store
from ..errors import Code, Refusal, unavailable
from ..firebase_app import app

SIGNED_IN_AT_CLAIM = "signed_in_at"
OUR_SESSION_CLAIM = "sid"  # only our custom tokens put it there


@dataclass(frozen=True)
class Identity:
    """Who signs in, and when they last proved it with a credential (`auth_time`, seconds): a
    login after a closure must come from a sign-in made after it (flows/login.py).
    `credentials_valid_after` is Firebase's tokensValidAfterTime, if the user has one."""

    uid: str
    auth_time: int
    credentials_valid_after: datetime | None = None



def signed_in_at(claims: dict[str, Any]) -> int | None:
    """When the user last proved who they are (see the module docstring)."""
    if OUR_SESSION_CLAIM in claims:
        return clock.whole_seconds(claims.get(SIGNED_IN_AT_CLAIM))
    return clock.whole_seconds(claims.get("auth_time"))


def verify_id_token(id_token: str, *, of_user: str | None = None) -> Identity:
    """The identity in a login's Firebase ID token, once Firebase Auth still stands behind it.
    `of_user`: the token must be this user's, checked before Firebase Auth is asked (a lookup
    spends the project's Auth quota, so another user's token must not cost one)."""
    from .. import account

    claims = verify_claims(id_token)
    uid = uid_of(claims)
    if of_user is not None and uid != of_user:
        raise Refusal(Code.FORBIDDEN, "this Firebase ID token is another user's")
    auth_time = signed_in_at(claims)
    if auth_time is None:
        raise Refusal(Code.INVALID_TOKEN, "Firebase ID token has no usable auth_time")
    return Identity(uid, auth_time, account.check_sign_in(uid, auth_time))


def verify_claims(id_token: str) -> dict[str, Any]:
    """A Firebase ID token's claims, or the Unauthenticated / Unavailable that explains why not.

    Signature and claims only, never firebase-admin's `check_revoked`: login asks Firebase Auth
    itself (account.check_sign_in), and session-bearing tokens are checked by their session."""
    from firebase_admin import auth  # imported here: only the calls that verify one pay for it

    if len(id_token) > 8192:
        raise Refusal(Code.INVALID_TOKEN, "Firebase ID token is too long")
    try:
        claims = auth.verify_id_token(id_token, app=app())
    except auth.ExpiredIdTokenError:
        raise Refusal(Code.TOKEN_EXPIRED, "Firebase ID token has expired") from None
    except auth.CertificateFetchError:
        raise unavailable() from None
    except (auth.InvalidIdTokenError, ValueError, RecursionError, TypeError):
        # TypeError: outside the emulator firebase-admin looks into the payload's `d` claim with
        # `in`, which a non-container `d` turns into a TypeError; the token is garbage there too.
        # RecursionError: google-auth parses the segments with json.loads and lets a deeply nested
        # one escape as that (it catches only ValueError); the token is garbage, not our bug.
        raise Refusal(Code.INVALID_TOKEN, "Firebase ID token is invalid") from None
    except Exception as exc:  # firebase_admin wraps transport failures in its own error types
        from firebase_admin import exceptions

        if isinstance(exc, exceptions.UnavailableError | exceptions.DeadlineExceededError):
            raise unavailable() from None
        if isinstance(exc, exceptions.FirebaseError):
            raise Refusal(Code.INVALID_TOKEN, "Firebase ID token could not be verified") from None
        raise
    return dict(claims)


def uid_of(claims: dict[str, Any]) -> str:
    """The uid, which names the user's documents (users/{uid}/...).

    Firebase lets an admin create users whose uid Firestore cannot use as a document id (`.`,
    `..`, `__x__`, anything with `/`): such a user is real and signed in, so a new ID token would
    not help. 403 `unsupported_uid` says so, where Firestore would refuse the path with a 500.
    """
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid:
        raise Refusal(Code.INVALID_TOKEN, "Firebase ID token has no uid")
    if len(uid) > 128 or not store.valid_id(uid):
        raise Refusal(Code.UNSUPPORTED_UID, "this user's uid cannot be used with My Devices (a Firestore reserved id)")
    return uid
