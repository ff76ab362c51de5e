"""Step-up and the user's own auto-close choice: the two things a session changes about its proof
of identity and its account's lifetimes (lifetimes.py).

Re-verification takes a new Firebase ID token of the same user, made by a sign-in (a credential
typed, not one of our custom tokens: sign_in.signed_in_at), and renews the caller's `authTime`. It
opens no session and moves no deadline: a session at its absolute lifetime ends whatever its user
proves, and a re-verification is one call's activity, no more.

Auto-close ("close my sessions after 1 week / 1 month / 3 months / 6 months without activity") is
kept on `users/{uid}` (read by every login's transaction anyway) and copied to each active session,
whose idle deadline is recomputed from its `lastActiveAt` at once: a session already idle longer
is closed now, and one already past a deadline stays closed. Widening it (or turning it off) keeps a
stolen idle device alive longer, and narrowing it can close the owner's other devices, so either is
a sensitive action like closing other sessions (`require_sensitive`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .. import clock, documents, lifetimes, queries, rate_limits, store
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
    rate_limits.reauthentication_of_session(caller.sid)
    who = sign_in.verify_id_token(id_token, of_user=caller.uid)
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
    account's sessions now and its logins from now on.

    Setting it closes the owner's sessions idle for longer, so it is a sensitive action whenever it
    would close another session, exactly like closing one: a session too new to close others cannot,
    and with MYDEVICES_RECENT_SIGN_IN_SECONDS it needs a recent sign-in. Widening it (or turning it
    off) keeps a stolen idle device alive longer, so it needs both too. Otherwise (narrowing that
    closes nothing but the caller's own idle sessions, or the same value again) the fresh-session
    rule alone applies. A session already past a deadline stays over whatever the new choice: it is
    closed as expired, never renewed."""
    current = caller.session.get("autoCloseDays")
    widening = after_days != current and (after_days is None or (current is not None and after_days > current))
    now = clock.utcnow()
    sessions = {snap.id: snap.to_dict() or {} for snap in queries.active_sessions(caller.uid).stream()}
    closes_another = any(sid != caller.sid and _closes(doc, after_days, now) for sid, doc in sessions.items())
    if widening or closes_another:
        require_sensitive(caller, "widen auto-close" if widening else "close other sessions")
    else:
        require_may_act(caller.session, "set auto-close")
    store.user_ref(caller.uid).set({"autoCloseDays": after_days}, merge=True)  # logins from now on
    closed: list[str] = []
    # Read again after the write: a login that slipped in before it is applied to as well.
    for snap in queries.active_sessions(caller.uid).stream():

        def apply(doc: dict[str, Any], sid: str = snap.id) -> dict[str, Any] | None:
            if doc.get("status") != ACTIVE:
                return None
            if (was := lifetimes.expired(doc, now)) is not None:
                closed.append(sid)  # over already: no choice brings it back
                return documents.revocation(lifetimes.CLOSED_AS[was], now)
            fields = _auto_close_fields(doc, after_days, now, sid == caller.sid)
            if (why := lifetimes.expired({**doc, **fields}, now)) is not None:
                closed.append(sid)  # idle longer than the new choice already: closed now, as expired
                return {**fields, **documents.revocation(lifetimes.CLOSED_AS[why], now)}
            unchanged = all(doc.get(name) == value for name, value in fields.items())
            return None if unchanged else fields  # the same value again writes nothing

        store.update_if(snap.reference, apply)
    return {"autoCloseAfterDays": after_days, "closed": len(closed)}


def _auto_close_fields(doc: dict[str, Any], after_days: int | None, now: datetime, own: bool) -> dict[str, Any]:
    """A session's auto-close choice and the idle deadline it gives, from its last activity (the
    caller's own session is active now)."""
    idle = lifetimes.idle_seconds(doc.get("deviceType"), after_days)
    last = doc.get("lastActiveAt")
    since = now if own or not isinstance(last, datetime) else last
    return {"autoCloseDays": after_days, "idleExpiresAt": since + timedelta(seconds=idle) if idle is not None else None}


def _closes(doc: dict[str, Any], after_days: int | None, now: datetime) -> bool:
    """Whether this choice would close the (still open) session `doc` now."""
    if lifetimes.expired(doc, now) is not None:
        return False  # over already, whatever is chosen
    return lifetimes.expired({**doc, **_auto_close_fields(doc, after_days, now, False)}, now) is not None
