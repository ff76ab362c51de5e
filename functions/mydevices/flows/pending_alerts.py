"""`GET /v1/alerts`: the "Was that you?" questions a session may still answer. The web page
shows them in place of the push a browser does not get."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import clock, queries, store
from ..push import alert_copy
from ..tokens import action
from ..views import iso
from .validation import Caller


def pending(caller: Caller) -> dict[str, Any]:
    """`GET /v1/alerts`: the "Was that you?" questions the caller's session may still answer.

    A new session is pending for the caller while it is active, was news when it logged in
    (`alertReason` set: the same rule that sends the push), is not confirmed, was created after
    the caller's own session (`earlier`) and its token has not expired. Answered ones leave by
    themselves: "no" closes the session, "yes" confirms it. One query of the active sessions
    (n reads), as for the list.
    """
    mine = caller.session.get("createdAt")
    now = clock.seconds()
    found = []
    for snap in queries.active_sessions(caller.uid).stream():
        doc = snap.to_dict() or {}
        created = doc.get("createdAt")
        news = doc.get("alertReason") if "alertReason" in doc else "new_device"
        if snap.id == caller.sid or not news or doc.get("confirmedAt") is not None:
            continue
        if not isinstance(created, datetime) or not action.earlier(mine, created) or not store.valid_id(snap.id):
            continue
        token, expires_at = action.pair_token(caller.uid, caller.sid, snap.id, created)
        if expires_at <= now:
            continue
        copy = alert_copy.Copy.of(doc.get("deviceName"), doc.get("location"))
        found.append((int(created.timestamp()), {
            "newSessionId": snap.id, "deviceName": copy.name, "deviceType": doc.get("deviceType"),
            "location": copy.location, **copy.as_json(), "createdAt": iso(created),
            "expiresAt": iso(datetime.fromtimestamp(expires_at, UTC)), "actionToken": token,
        }))
    found.sort(key=lambda item: item[0], reverse=True)
    return {"alerts": [view for _, view in found]}
