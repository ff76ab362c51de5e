"""Who the user is: a Firebase ID token, verified by firebase-admin.

At login `check_revoked` makes a disabled or signed-out Firebase user unable to start a session;
it costs one Auth lookup, paid only there. Session-bearing ID tokens (firebase_tokens) skip it:
the read of their session document is their revocation check, and it is per device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import store
from .errors import Forbidden, Unauthenticated, Unavailable
from .firebase_app import app


@dataclass(frozen=True)
class Identity:
    """Who signs in, and when they last proved it with a credential (`auth_time`, seconds): a
    login after a closure must come from a sign-in made after it (sessions.login)."""

    uid: str
    auth_time: int


def verify_id_token(id_token: str) -> Identity:
    """The identity in a login's Firebase ID token (revocation checked: see the module docstring)."""
    claims = verify_claims(id_token, check_revoked=True)
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or isinstance(auth_time, bool):
        raise Unauthenticated("Firebase ID token has no auth_time", code="invalid_token")
    return Identity(uid_of(claims), auth_time)


def verify_claims(id_token: str, *, check_revoked: bool) -> dict[str, Any]:
    """A Firebase ID token's claims, or the Unauthenticated / Unavailable that explains why not."""
    from firebase_admin import auth  # imported here: only the calls that verify one pay for it

    if len(id_token) > 8192:
        raise Unauthenticated("Firebase ID token is too long", code="invalid_token")
    try:
        claims = auth.verify_id_token(id_token, app=app(), check_revoked=check_revoked)
    except auth.ExpiredIdTokenError:
        raise Unauthenticated("Firebase ID token has expired", code="token_expired") from None
    except auth.RevokedIdTokenError:
        raise Unauthenticated("Firebase ID token has been revoked", code="session_revoked") from None
    except auth.UserDisabledError:
        raise Unauthenticated("this user is disabled", code="unauthenticated") from None
    except auth.CertificateFetchError:
        raise Unavailable() from None
    except (auth.InvalidIdTokenError, ValueError, RecursionError):
        # RecursionError: google-auth parses the segments with json.loads and lets a deeply nested
        # one escape as that (it catches only ValueError); the token is garbage, not our bug.
        raise Unauthenticated("Firebase ID token is invalid", code="invalid_token") from None
    except auth.UserNotFoundError:
        raise Unauthenticated("this user does not exist", code="invalid_token") from None
    except Exception as exc:  # firebase_admin wraps transport failures in its own error types
        from firebase_admin import exceptions

        if isinstance(exc, exceptions.UnavailableError | exceptions.DeadlineExceededError):
            raise Unavailable() from None
        if isinstance(exc, exceptions.FirebaseError):
            raise Unauthenticated("Firebase ID token could not be verified", code="invalid_token") from None
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
        raise Unauthenticated("Firebase ID token has no uid", code="invalid_token")
    if len(uid) > 128 or not store.valid_id(uid):
        raise Forbidden("this user's uid cannot be used with My Devices (a Firestore reserved id)",
                        code="unsupported_uid")
    return uid
