"""Step-up and the user's own auto-close choice: the two things a session changes about its proof
of identity and its account's lifetimes (lifetimes.py).

Re-verification takes a new Firebase ID token of the same user, made by a sign-in (a credential
typed, not one of our custom tokens: sign_in.signed_in_at), and renews the caller's `authTime`. It
opens no session and moves no deadline: a session at its absolute lifetime ends whatever its user
proves, and a re-verification is one call's activity, no more.

Auto-close ("close my sessions after 1 week / 1 month / 3 months / 6 months without activity") is
kept on `users/{uid}` (read by every login's transaction anyway) and copied to each active session,
whose idle deadline is recomputed from its `lastActiveAt` at once: a session already idle longer
is closed now. Widening it (or turning it off) keeps a stolen idle device alive longer, so it is a
sensitive action like closing other sessions (closing_others_allowed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .. import clock, documents, lifetimes, queries, store
from ..config import settings
from ..documents import ACTIVE
from ..errors import Code, Refusal
from ..fresh_sessions import require_may_act
from ..tokens import sign_in
from ..views import iso
from .validation import Caller


def require_sensitive(caller: Caller, doing: str = "close other sessions") -> None:
    """Our own sensitive actions: the fresh-session rule (against whoever has the password), then a
    recent sign-in when MYDEVICES_RECENT_SIGN_IN_SECONDS is set (against whoever holds an old
    session's unlocked device without the password)."""
    require_may_act(caller.session, doing)
    lifetimes.require_recent_sign_in(caller.session, settings().recent_sign_in_seconds)


def reauthenticate(caller: Caller, id_token: str) -> dict[str, Any]:
    who = sign_in.verify_id_token(id_token)
    if who.uid != caller.uid:
        raise Refusal(Code.FORBIDDEN, "this Firebase ID token is another user's")
    proved = datetime.fromtimestamp(who.auth_time, UTC)

    def renew(doc: dict[str, Any]) -> dict[str, Any] | None:
        if doc.get("status") != ACTIVE or doc.get("deviceId") != caller.did:
            raise Refusal(Code.SESSION_REVOKED, "this session has been closed")
        if (why := lifetimes.expired(doc)) is not None:
            raise lifetimes.refusal(why)
        known = doc.get("authTime")
        return {"authTime": proved} if not isinstance(known, datetime) or proved > known else None

    store.update_if(store.session_ref(caller.uid, caller.sid), renew)
    known = caller.session.get("authTime")
    latest = max(proved, known) if isinstance(known, datetime) else proved
    return {"authTime": iso(latest)}


def set_auto_close(caller: Caller, after_days: int | None) -> dict[str, Any]:
    """Set the user's auto-close choice (None: off, the platform's idle timeout alone), for the
    account's sessions now and its logins from now on. It closes the owner's idle sessions, so a
    session too new to close others cannot set it; widening it needs a recent sign-in besides."""
    current = caller.session.get("autoCloseDays")
    widening = current is not None and (after_days is None or after_days > current)
    if widening:
        require_sensitive(caller, "widen auto-close")
    else:
        require_may_act(caller.session, "set auto-close")
    now = clock.utcnow()
    store.user_ref(caller.uid).set({"autoCloseDays": after_days}, merge=True)  # logins from now on
    closed: list[str] = []
    for snap in queries.active_sessions(caller.uid).stream():  # after the write: no login slips between

        def apply(doc: dict[str, Any], sid: str = snap.id) -> dict[str, Any] | None:
            if doc.get("status") != ACTIVE:
                return None
            idle = lifetimes.idle_seconds(doc.get("deviceType"), after_days)
            last = doc.get("lastActiveAt")
            since = now if sid == caller.sid or not isinstance(last, datetime) else last
            fields = {"autoCloseDays": after_days,
                      "idleExpiresAt": since + timedelta(seconds=idle) if idle is not None else None}
            if (why := lifetimes.expired({**doc, **fields}, now)) is None:
                return fields
            closed.append(sid)  # idle longer than the new choice already: closed now, as expired
            return {**fields, **documents.revocation(lifetimes.CLOSED_AS[why], now)}

        store.update_if(snap.reference, apply)
    return {"autoCloseAfterDays": after_days, "closed": len(closed)}
