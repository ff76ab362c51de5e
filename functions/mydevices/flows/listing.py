"""What a signed-in device reads about its account: the "Active sessions" list and its own session."""

from __future__ import annotations

from typing import Any

from .. import queries
from ..fresh_sessions import may_act_from
from ..views import device_session, iso
from .validation import Caller


def list_sessions(caller: Caller) -> dict[str, Any]:
    """Current device first, then by last activity; each says whether the caller may close it."""
    allowed = may_act_from(caller.session)
    views = [device_session(snap.id, snap.to_dict() or {}, caller.sid)
             for snap in queries.active_sessions_by_activity(caller.uid).stream()]
    for view in views:
        view["canClose"] = allowed is None and not view["isCurrentDevice"]
    views.sort(key=lambda view: not view["isCurrentDevice"])  # stable: keeps the activity order
    return {"sessions": views, "closeOthersAllowedAt": iso(allowed)}


def current_session(caller: Caller) -> dict[str, Any]:
    return device_session(caller.sid, caller.session, caller.sid)
