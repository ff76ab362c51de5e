"""Revocation: the user closes another session, all the others, or their own (logout).

Closing from elsewhere needs a settled session (fresh_sessions.py), and a recent sign-in when
MYDEVICES_RECENT_SIGN_IN_SECONDS is set (flows/account_settings.py), and makes the account's next
login need a fresh sign-in (closing.py); a logout does neither. The closed device learns of it on
its next call (401) and at once from the silent push the Firestore trigger sends.
"""

from __future__ import annotations

from .. import closing, store
from ..documents import LOGOUT, REVOKE_OTHERS, USER_REVOKED
from ..errors import Code, Refusal
from . import copied_token
from .account_settings import require_sensitive
from .validation import Caller


def close_other(caller: Caller, sid: str) -> None:
    """Close another session; if its device has signed in again since the caller's list was
    read, close what the device holds now: the user means the device, not an id."""
    if sid == caller.sid:
        raise Refusal(Code.CANNOT_REVOKE_CURRENT, "the current session ends only by logging out")
    require_sensitive(caller)
    if not store.valid_id(sid):
        raise Refusal(Code.NOT_FOUND, "no such active session")
    if closing.revoke_session(caller.uid, sid, USER_REVOKED, caller.sid):
        return
    doc = store.read(store.session_ref(caller.uid, sid))
    live = copied_token.live_replacement(caller.uid, doc) if doc is not None else None
    if live is None or live == caller.sid or not closing.revoke_session(caller.uid, live, USER_REVOKED, caller.sid):
        raise Refusal(Code.NOT_FOUND, "no such active session")


def revoke_others(caller: Caller) -> int:
    require_sensitive(caller)
    return closing.revoke_where(caller.uid, REVOKE_OTHERS, keep_sid=caller.sid, by=caller.sid)


def logout(caller: Caller) -> None:
    closing.revoke_session(caller.uid, caller.sid, LOGOUT)
