"""The support API's flows: what an app's support agent may see and do on a customer's account, each
call recorded before it acts.

An agent starts from what the customer tells them (an email: one Auth lookup), sees the account's
sessions, closed ones too for as long as they are kept (`revoked_retention_days`, 30 days by
default: the TTL on their `expireAt`), and its copied-token incidents, and may close one session or
all of them. A closure goes through closing.py like the user's own, so the device is cut off at its
next request (401 `session_revoked`, reason `closed_by_support`), its silent `force_logout` push is
sent by the session trigger, and the app's backend hears `session.closed` with `closedBy.kind`
"support". The agent's reason is stored as plain text on the session (`revokedNote`), for the
user's security activity to show ("Closed by support: <note>"); it is never markup.

Every call an agent is allowed to make writes one `supportAudit` document first (who, what, whose,
why, when): an action that cannot be recorded is not taken. It is kept `support_audit_days` (400 by
default, TTL on `expireAt`), longer than anything it names, so a question about a closure can be
answered after the session itself is gone. Refused callers write nothing (an attacker with garbage
tokens must not be able to fill the collection); they are logged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from .. import account, clock, closing, lifetimes, queries, store
from ..config import settings
from ..documents import ACTIVE, CLOSED_BY_SUPPORT, TOKEN_REUSED
from ..errors import Code, Refusal
from ..tokens.support_agent import Agent
from ..views import device_session, iso

MAX_EMAIL = 320


def audit(agent: Agent, action: str, uid: str | None = None, sid: str | None = None, *,
          reason: str | None = None, email: str | None = None) -> None:
    """The call's record, written before it acts (one write)."""
    now = clock.utcnow()
    store.support_audit().add({
        "agentUid": agent.uid, "agentEmail": agent.email, "action": action,
        "targetUid": uid, "targetSessionId": sid, "reason": reason, "email": email,
        "at": now, "expireAt": now + timedelta(days=settings().support_audit_days),
    })


def target_uid(uid: str) -> str:
    """A uid from the path, checked before it names a document."""
    if len(uid) > 128 or not store.valid_id(uid):
        raise Refusal(Code.INVALID_REQUEST, "not a valid uid")
    return uid


def find_user(agent: Agent, email: str | None) -> dict[str, Any]:
    if not email or len(email) > MAX_EMAIL or "@" not in email:
        raise Refusal(Code.INVALID_REQUEST, "email must be an email address")
    audit(agent, "find_user", email=email)
    user = account.user_by_email(email)
    if user is None:
        raise Refusal(Code.NOT_FOUND, "no user has this email")
    metadata = user.user_metadata
    return {"uid": user.uid, "email": user.email, "disabled": bool(user.disabled),
            "createdAt": _ms(metadata.creation_timestamp if metadata else None),
            "lastSignInAt": _ms(metadata.last_sign_in_timestamp if metadata else None)}


def sessions(agent: Agent, uid: str, *, closed: bool) -> dict[str, Any]:
    """The user's active sessions, most recently active first, then (with `closed`) those closed
    within the retention, most recent closure first. Reads only: a session past its deadline is
    shown with `expired`, and left for the user's own next request to close."""
    audit(agent, "list_sessions_closed" if closed else "list_sessions", uid)
    now = clock.utcnow()
    source = store.sessions_of(uid) if closed else queries.active_sessions(uid)
    active, ended = [], []
    for snap in source.stream():
        doc = snap.to_dict() or {}
        if doc.get("status") == ACTIVE:
            active.append(_view(snap.id, doc, now))
        elif not _past(doc.get("expireAt"), now):  # the TTL may drop it a day after its time
            ended.append(_view(snap.id, doc, now))
    active.sort(key=lambda view: view["lastActiveAt"] or "", reverse=True)
    ended.sort(key=lambda view: view["revokedAt"] or "", reverse=True)
    return {"uid": uid, "sessions": active + ended, "closedRetentionDays": settings().revoked_retention_days}


def close(agent: Agent, uid: str, sid: str, reason: str) -> dict[str, Any]:
    audit(agent, "close_session", uid, sid, reason=reason)
    if not closing.revoke_session(uid, sid, CLOSED_BY_SUPPORT, note=reason):
        if store.read(store.session_ref(uid, sid)) is None:
            raise Refusal(Code.NOT_FOUND, "this user has no such session")
        raise Refusal(Code.SESSION_CLOSED, "this session is already closed")
    return {"uid": uid, "sessionId": sid, "revoked": True}


def close_all(agent: Agent, uid: str, reason: str) -> dict[str, Any]:
    audit(agent, "close_all_sessions", uid, reason=reason)
    return {"uid": uid, "revoked": closing.revoke_where(uid, CLOSED_BY_SUPPORT, keep_sid=None, note=reason)}


def incidents(agent: Agent, uid: str) -> dict[str, Any]:
    """The user's copied-token incidents (flows/copied_token.py), newest first."""
    audit(agent, "list_incidents", uid)
    query = store.security_events_of(uid).where(filter=firestore.FieldFilter("type", "==", TOKEN_REUSED))
    found = [{"id": snap.id, "type": doc.get("type"), "detail": doc.get("detail"),
              "sessionId": doc.get("sessionId"), "liveSessionId": doc.get("liveSessionId"),
              "deviceId": doc.get("deviceId"), "at": iso(doc.get("at"))}
             for snap in query.stream() if (doc := snap.to_dict() or {})]
    found.sort(key=lambda item: item["at"] or "", reverse=True)
    return {"uid": uid, "incidents": found}


def _view(sid: str, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    view = device_session(sid, doc, None)
    del view["isCurrentDevice"]
    expired = lifetimes.expired(doc, now) if doc.get("status") == ACTIVE else None
    return {**view, "deviceId": doc.get("deviceId"), "status": doc.get("status"), "expired": expired,
            "revokedAt": iso(doc.get("revokedAt")), "revokedReason": doc.get("revokedReason"),
            "revokedNote": doc.get("revokedNote")}


def _past(moment: Any, now: datetime) -> bool:
    return isinstance(moment, datetime) and moment <= now


def _ms(value: Any) -> str | None:
    return iso(datetime.fromtimestamp(value / 1000, tz=UTC)) if isinstance(value, int) else None
