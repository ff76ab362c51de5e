"""What a signed-in device reads about its account: the "Active sessions" list and its own session."""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as core_exceptions

from .. import clock, closing, lifetimes, queries
from ..fresh_sessions import may_act_from
from ..views import device_session, iso
from .validation import Caller


def list_sessions(caller: Caller) -> dict[str, Any]:
    """Current device first, then by last activity; each says whether the caller may close it.

    A session past its deadline (lifetimes.py) is over although nobody has closed its document
    yet: it is left out, and closed here as expired (no push: nobody uses it)."""
    allowed = may_act_from(caller.session)
    now = clock.utcnow()
    views = []
    for snap in queries.active_sessions_by_activity(caller.uid).stream():
        doc = snap.to_dict() or {}
        if (why := lifetimes.expired(doc, now)) is not None:
            try:
                closing.revoke_session(caller.uid, snap.id, lifetimes.CLOSED_AS[why])
            except (core_exceptions.GoogleAPIError, ValueError):
                pass  # left out all the same; the next reader closes it
            continue
        views.append(device_session(snap.id, doc, caller.sid))
    for view in views:
        view["canClose"] = allowed is None and not view["isCurrentDevice"]
    views.sort(key=lambda view: not view["isCurrentDevice"])  # stable: keeps the activity order
    return {"sessions": views, "closeOthersAllowedAt": iso(allowed),
            "autoCloseAfterDays": caller.session.get("autoCloseDays")}


def current_session(caller: Caller) -> dict[str, Any]:
    return device_session(caller.sid, caller.session, caller.sid)
