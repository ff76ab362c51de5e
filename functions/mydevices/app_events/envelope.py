"""From an internal session event (push/events.classify) to the app-facing events it means.

The envelope is documented in docs/events.md and docs/events/session-event.schema.json. It is
derived from what the Firestore trigger already classified, so a login or a closure does no extra
work on its request path. One internal event gives one app event, or two when it also records a
decision: a copied-token closure of the device's live session is preceded by the incident, and a
"No" is preceded by the answer, so a receiver reading in order sees the cause before the effect.

App event ids are the internal event id (the Firestore change's CloudEvent id), suffixed for the
derived ones: the same change always gives the same ids, so a receiver recognises a redelivery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import account, lifetimes
from ..documents import (
    CLOSED_BY_SUPPORT,
    LOGOUT,
    REJECTED_BY_USER,
    REPLACED,
    REVOKE_OTHERS,
    TOKEN_REUSED,
    USER_REVOKED,
)
from ..push.events import ALERT_CONFIRMED, NEW_LOGIN, SESSION_OPENED, SESSION_REVOKED

SESSION_OPENED_TYPE = "session.opened"
SESSION_CLOSED_TYPE = "session.closed"
COPIED_TOKEN_TYPE = "incident.copied_token"
ALERT_ANSWERED_TYPE = "alert.answered"
TYPES = (SESSION_OPENED_TYPE, SESSION_CLOSED_TYPE, COPIED_TOKEN_TYPE, ALERT_ANSWERED_TYPE)

# revokedReason -> who closed it (closedBy.kind)
CLOSED_BY = {
    USER_REVOKED: "user", REVOKE_OTHERS: "user",
    REJECTED_BY_USER: "alert_answer",
    LOGOUT: "logout",
    REPLACED: "same_device",
    TOKEN_REUSED: "copied_token",
    lifetimes.EXPIRED_IDLE: "expiry", lifetimes.EXPIRED_MAX_AGE: "expiry",
    account.CREDENTIALS_REVOKED: "account", account.DISABLED: "account", account.DELETED: "account",
    CLOSED_BY_SUPPORT: "support",
}

# (uid, replayed session id) -> the incident's security event (users/{uid}/securityEvents), or None
IncidentLookup = Callable[[str, str], dict[str, Any] | None]


def _device(event: dict[str, Any]) -> dict[str, Any]:
    return {"uid": event["uid"], "sessionId": event["sessionId"], "deviceId": event.get("deviceId"),
            "deviceName": event.get("deviceName"), "platform": event.get("deviceType")}


def _one(event_id: str, kind: str, at: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "timestamp": at, "data": data}


def _closed_by(event: dict[str, Any]) -> dict[str, Any]:
    reason = event.get("reason")
    acting = event.get("replacedBy") if reason == REPLACED else event.get("by")
    return {"kind": CLOSED_BY.get(str(reason), "unknown"), "sessionId": acting if isinstance(acting, str) else None}


def app_events(event_id: str, event: dict[str, Any], incident: IncidentLookup) -> list[dict[str, Any]]:
    """The app events, in the order a receiver should see them, for one internal event."""
    kind, at = event.get("type"), event.get("at")
    if kind in (NEW_LOGIN, SESSION_OPENED):
        return [_one(event_id, SESSION_OPENED_TYPE, at, {
            **_device(event), "location": event.get("location"),
            "alerted": kind == NEW_LOGIN, "alertReason": event.get("alertReason"),
        })]
    if kind == ALERT_CONFIRMED:
        return [_one(event_id, ALERT_ANSWERED_TYPE, at, {**_device(event), "answer": "yes"})]
    if kind != SESSION_REVOKED:
        return []
    closed_by = _closed_by(event)
    found: list[dict[str, Any]] = []
    reason, by = event.get("reason"), closed_by["sessionId"]
    if reason == REJECTED_BY_USER and by == event["sessionId"]:  # the session the "No" was about
        found.append(_one(f"{event_id}-answer", ALERT_ANSWERED_TYPE, at, {**_device(event), "answer": "no"}))
    if reason == TOKEN_REUSED and by:
        record = incident(event["uid"], by)
        if record is not None and record.get("liveSessionId") == event["sessionId"]:  # once per incident
            found.append(_one(f"{event_id}-incident", COPIED_TOKEN_TYPE, at, {
                "uid": event["uid"], "sessionId": by, "liveSessionId": event["sessionId"],
                "deviceId": record.get("deviceId"), "detail": record.get("detail"),
            }))
    found.append(_one(event_id, SESSION_CLOSED_TYPE, at, {**_device(event), "reason": reason, "closedBy": closed_by}))
    return found
