"""The copied-token response: a genuine but stale credential means a copy is in use.

A token of a session that is still live (active, or replaced by a session of the same device
that is still active) but no longer current was copied off the device: the user is signed out
everywhere (or just that device, by MYDEVICES_REUSE_POLICY), once per incident, and the reason is
recorded in `securityEvents`. A token of a session closed for good gets `session_revoked` from its
flow and closes nothing: replaying it must not be a way to sign the owner out at will.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from .. import clock, closing, store
from ..config import settings
from ..documents import ACTIVE, REPLACED, TOKEN_REUSED
from ..errors import Code, Refusal
from ..fresh_sessions import may_act_from

MAX_REPLACEMENT_HOPS = 10  # how far a stale token's device is followed to its current session


def live_replacement(uid: str, doc: dict[str, Any], transaction: firestore.Transaction | None = None) -> str | None:
    """The active session that replaced this closed one on its device, following re-logins, if
    any. Only then does an old token mean a copy is in use next to the device: a session that
    was closed for good (by the user, a logout, an earlier incident) has no live successor."""
    for _ in range(MAX_REPLACEMENT_HOPS):
        successor = doc.get("replacedBy") if doc.get("revokedReason") == REPLACED else None
        if not isinstance(successor, str) or not store.valid_id(successor):
            return None
        ref = store.session_ref(uid, successor)
        if transaction is None:
            found = store.read(ref)
        else:
            snapshot = ref.get(transaction=transaction)
            found = snapshot.to_dict() if snapshot.exists else None
        if found is None:
            return None
        if found.get("status") == ACTIVE:
            return successor
        doc = found
    return None


def respond(uid: str, sid: str, did: str, live_sid: str, presented: dict[str, Any], *, why: str,
            code: Code = Code.TOKEN_REUSED) -> NoReturn:
    """Sign the user out (everywhere, by default), record why, and refuse the request.

    One incident, one security event: its id is the session whose token was presented, and it
    is created only if absent, so concurrent replays of one token record it once. Later replays
    find the device's sessions closed and close nothing (see live_replacement).

    Signing out everywhere is for a copy of a settled session's credentials. A session younger
    than the fresh-session window may be an intruder's own, who could otherwise sign the owner
    out at will by replaying its own old token (may_act_from): then only its device is signed out.
    """
    now = clock.utcnow()
    everywhere = settings().reuse_policy == "revoke_all" and may_act_from(presented) is None
    try:
        store.security_events_of(uid).document(f"{TOKEN_REUSED}-{sid}").create({
            "type": TOKEN_REUSED,
            "detail": why,
            "sessionId": sid,
            "liveSessionId": live_sid,
            "deviceId": did,
            "at": now,
            "expireAt": now + timedelta(days=settings().revoked_retention_days),
        })
    except core_exceptions.AlreadyExists:
        pass  # a concurrent replay of the same token got here first; closing again closes nothing
    if everywhere:
        closing.revoke_where(uid, TOKEN_REUSED, keep_sid=None, by=sid)
    else:
        closing.revoke_session(uid, live_sid, TOKEN_REUSED, sid)
    closed = "all sessions were closed" if everywhere else "its device was signed out"
    if code == Code.DEVICE_PROOF_FAILED:
        raise Refusal(code, f"this session is bound to its device's key and the refresh carried no proof "
                      f"from it; {closed}")
    raise Refusal(code, f"this token was used after it had been replaced; {closed}")
