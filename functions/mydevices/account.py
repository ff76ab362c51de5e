"""Whether Firebase Auth still lets the account hold sessions: the check every login and every
refresh makes, one Auth lookup each.

A session outlives the Firebase sign-in that opened it, so without this a user who was disabled
or deleted, or whose Firebase credentials were revoked (`revoke_refresh_tokens`, a password reset:
`tokensValidAfterTime`), would keep refreshing for as long as the refresh token lives. One Auth
lookup per refresh bounds that to one access-token lifetime. It is also the recovery path when
every device is lost: resetting the password ends every session that began before the reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import Code, Refusal, unavailable
from .firebase_app import app

DISABLED, DELETED, CREDENTIALS_REVOKED = "account_disabled", "account_deleted", "credentials_revoked"


@dataclass(frozen=True)
class Ended:
    """Why the account's sessions end, and which: those that began before `before` (None: all)."""

    reason: str
    before: datetime | None = None


def _user(uid: str) -> Any | None:
    """The Auth user record (one Auth lookup), or None if there is no such user."""
    from firebase_admin import auth, exceptions  # imported here: only logins and refreshes pay for it
    from google.auth.exceptions import GoogleAuthError

    try:
        return auth.get_user(uid, app=app())
    except auth.UserNotFoundError:
        return None
    except (exceptions.FirebaseError, GoogleAuthError):  # GoogleAuthError: the function's own credentials
        raise unavailable() from None


# Firebase stamps tokensValidAfterTime when it creates a user, a moment after the sign-up's own
# sign-in time: across a second boundary, the first sign-in would look older than it. A stamp
# within a second of creation is that one (a revocation then could only end the sign-up's own).
CREATION_STAMP_SECONDS = 1


def _valid_after(user: Any) -> datetime | None:
    """tokensValidAfterTime, which Firebase keeps in whole seconds (as milliseconds); None while
    it is still the stamp of the account's creation, which revoked nothing."""
    valid_after_ms = user.tokens_valid_after_timestamp  # 0 or None when never revoked
    if not valid_after_ms:
        return None
    created_ms = getattr(user.user_metadata, "creation_timestamp", None) if user.user_metadata else None
    if created_ms and valid_after_ms - created_ms < CREATION_STAMP_SECONDS * 1000:
        return None
    return datetime.fromtimestamp(valid_after_ms / 1000, UTC)


def predates(moment: float, valid_after: datetime | None) -> bool:
    """Whether something at `moment` (seconds) came before the revocation, compared in whole
    seconds as Firebase keeps it. Its own second does not count as before: Firebase sets
    tokensValidAfterTime when it creates a user too, in the second of the first sign-in, and
    compares the same way (`iat < validSince`). So a session opened within the second of a
    revocation survives it; the user's next sign-in is not refused for being in that second."""
    return valid_after is not None and int(moment) < int(valid_after.timestamp())


def why_ended(uid: str, session_began: datetime) -> Ended | None:
    """None while the account may keep a session that began at `session_began`; else why not."""
    user = _user(uid)
    if user is None:
        return Ended(DELETED)
    if user.disabled:
        return Ended(DISABLED)
    valid_after = _valid_after(user)
    if predates(session_began.timestamp(), valid_after):
        return Ended(CREDENTIALS_REVOKED, valid_after)
    return None


def check_sign_in(uid: str, signed_in_at: int) -> datetime | None:
    """Refuse a login Firebase Auth no longer stands behind; returns tokensValidAfterTime.

    Compared with when the user signed in, not with when the ID token was minted (firebase-admin's
    `check_revoked` uses `iat`): a credential kept from before a password reset, such as one of
    our custom tokens, must not open a session after it (tokens/sign_in.py)."""
    return _valid_after(standing(uid, signed_in_at))


def standing(uid: str, signed_in_at: int) -> Any:
    """check_sign_in's checks, answering with the Auth user record they read (one lookup): a
    support agent's custom claims as Firebase Auth holds them now (tokens/support_agent.py)."""
    user = _user(uid)
    if user is None:
        raise Refusal(Code.INVALID_TOKEN, "this user does not exist")
    if user.disabled:
        raise Refusal(Code.UNAUTHENTICATED, "this user is disabled")
    if predates(signed_in_at, _valid_after(user)):
        raise Refusal(Code.SESSION_REVOKED, "Firebase ID token has been revoked: sign in again")
    return user


def user_by_email(email: str) -> Any | None:
    """The Auth user record with this email (one Auth lookup), or None: support's way in from what
    a customer tells them (flows/support.py)."""
    from firebase_admin import auth, exceptions
    from google.auth.exceptions import GoogleAuthError

    try:
        return auth.get_user_by_email(email, app=app())
    except auth.UserNotFoundError:
        return None
    except ValueError:  # firebase-admin's own check of the address
        raise Refusal(Code.INVALID_REQUEST, "email is not a valid address") from None
    except (exceptions.FirebaseError, GoogleAuthError):
        raise unavailable() from None
