"""Who the user is at login: a Firebase ID token, verified by firebase-admin.

`check_revoked` makes a disabled or signed-out Firebase user unable to start a session; it costs
one Auth lookup, paid only at login.
"""

from __future__ import annotations

from .errors import Unauthenticated, Unavailable
from .firebase_app import app


def verify_id_token(id_token: str) -> str:
    from firebase_admin import auth  # imported here: only logins pay for it

    if len(id_token) > 8192:
        raise Unauthenticated("Firebase ID token is too long", code="invalid_token")
    try:
        claims = auth.verify_id_token(id_token, app=app(), check_revoked=True)
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
    uid = claims.get("uid") or claims.get("sub")
    if not isinstance(uid, str) or not uid or "/" in uid or len(uid) > 128:
        raise Unauthenticated("Firebase ID token has no usable uid", code="invalid_token")
    return uid
