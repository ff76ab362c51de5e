"""Whether Firebase Auth still lets the account hold sessions: the check every refresh makes.

A session outlives the Firebase sign-in that opened it, so without this a user who was disabled
or deleted, or whose Firebase credentials were revoked (`revoke_refresh_tokens`, a password reset:
`tokensValidAfterTime`), would keep refreshing for as long as the refresh token lives. One Auth
lookup per refresh bounds that to one access-token lifetime. It is also the recovery path when
every device is lost: resetting the password ends every session that began before the reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import Unavailable
from .firebase_app import app

DISABLED, DELETED, CREDENTIALS_REVOKED = "account_disabled", "account_deleted", "credentials_revoked"


@dataclass(frozen=True)
class Ended:
    """Why the account's sessions end, and which: those that began before `before` (None: all)."""

    reason: str
    before: datetime | None = None


def standing(uid: str, session_began: datetime) -> Ended | None:
    """None while the account may keep a session that began at `session_began`; else why not."""
    from firebase_admin import auth, exceptions  # imported here: only refreshes pay for it

    try:
        user = auth.get_user(uid, app=app())
    except auth.UserNotFoundError:
        return Ended(DELETED)
    except exceptions.FirebaseError:
        raise Unavailable() from None
    if user.disabled:
        return Ended(DISABLED)
    valid_after_ms = user.tokens_valid_after_timestamp  # milliseconds; 0 or None when never revoked
    if valid_after_ms and session_began.timestamp() * 1000 < valid_after_ms:
        return Ended(CREDENTIALS_REVOKED, datetime.fromtimestamp(valid_after_ms / 1000, UTC))
    return None
