"""The user's copy of everything the product keeps about them (a data-access request), as JSON.

It shows the account's devices, places and history in one file, so it needs what the user's other
sensitive actions need, with a default: a sign-in within MYDEVICES_RECENT_SIGN_IN_SECONDS, or within
`DEFAULT_SIGN_IN_SECONDS` when that is unset, against whoever holds an unlocked device without the
password. Not the fresh-session rule: a user on a new phone may read their own data (a password
thief sees no more here than the session list shows, plus closed sessions' names and times).
"""

from __future__ import annotations

from typing import Any

from .. import clock, lifetimes, rate_limits, user_data
from ..config import settings
from ..views import iso
from .validation import Caller

DEFAULT_SIGN_IN_SECONDS = 900
FORMAT = 1


def export(caller: Caller) -> dict[str, Any]:
    lifetimes.require_recent_sign_in(caller.session, settings().recent_sign_in_seconds or DEFAULT_SIGN_IN_SECONDS)
    # An export reads every document of the user, and a user can grow their own (a device per login):
    # counted before any read, so a loop of exports costs one counter write each, then nothing.
    rate_limits.hit("export-user", caller.uid, settings().export_rate_per_user)
    return {
        "format": FORMAT,
        "uid": caller.uid,
        "exportedAt": iso(clock.utcnow()),
        "documents": user_data.export(caller.uid),
        "removedFields": sorted(user_data.SECRET_FIELDS),
    }
