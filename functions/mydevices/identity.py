"""Who the user is: a Firebase ID token, verified by firebase-admin.

At login `check_revoked` makes a disabled or signed-out Firebase user unable to start a session;
it costs one Auth lookup, paid only there. Session-bearing ID tokens (firebase_tokens) skip it:
the read of their session document is their revocation check, and it is per device.
"""

from __future__ import annotations

from typing import Any

from .errors import Unauthenticated, Unavailable
from .firebase_app import app


def verify_id_token(id_token: str) -> str:
    """The uid of a login's Firebase ID token (revocation checked: see the module docstring)."""
    return uid_of(verify_claims(id_token, check_revoked=True))


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
    except (auth.InvalidIdTokenError, ValueError):
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
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid or "/" in uid or len(uid) > 128:
        raise Unauthenticated("Firebase ID token has no usable uid", code="invalid_token")
    return uid
