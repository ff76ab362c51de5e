"""Closing sessions: one, or all of an account's but one, and the mark that makes the account's
next login need a fresh sign-in.

The owner's last word stands: after a closure by the user or by the security response, a Firebase
SDK that stayed signed in (the closed device's, or a copy of its storage) cannot open a session
again. Only a sign-in made after the closure can (`reauthAfter` on the user's document, checked by
flows/login.py). The closures Firebase Auth decides need no mark: account.check_sign_in refuses a
disabled account, and any sign-in before tokensValidAfterTime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from . import account, clock, documents, lifetimes, queries, store
from .documents import ACTIVE, CLOSED_BY_SUPPORT, REJECTED_BY_USER, REVOKE_OTHERS, TOKEN_REUSED, USER_REVOKED

NEEDS_FRESH_SIGN_IN = frozenset({USER_REVOKED, REVOKE_OTHERS, REJECTED_BY_USER, TOKEN_REUSED, CLOSED_BY_SUPPORT})
BATCH_LIMIT = 500


def mark_reauthentication(transaction: firestore.Transaction | None, uid: str, reason: str, now: datetime) -> None:
    """A closure from elsewhere makes the account's next login need a sign-in made after it."""
    if reason not in NEEDS_FRESH_SIGN_IN:
        return
    ref, fields = store.user_ref(uid), {"reauthAfter": now}
    if transaction is None:
        ref.set(fields, merge=True)
    else:
        transaction.set(ref, fields, merge=True)


def revoke_session(uid: str, sid: str, reason: str, by: str | None = None, note: str | None = None) -> bool:
    """Close one session; False when it was not active (or not this user's). `by` is the session
    that acted (recorded as `revokedBy` for the app's backend: app_events/envelope.py); `note`,
    support's words to the user (`revokedNote`)."""
    return store.update_if(
        store.session_ref(uid, sid),
        lambda doc: documents.revocation(reason, clock.utcnow(), by, **_noted(note))
        if doc.get("status") == ACTIVE else None,
        then=lambda transaction, _, closed: mark_reauthentication(transaction, uid, reason, closed["revokedAt"]),
    )


def revoke_where(uid: str, reason: str, keep_sid: str | None, predating: datetime | None = None,
                 by: str | None = None, note: str | None = None) -> int:
    """Revoke every active session but `keep_sid` (and, if given, only those that may predate
    `predating`, a credential revocation: account.predates), at most BATCH_LIMIT writes per commit.

    The account's fresh-sign-in mark is written before the sessions are even read: a login that
    commits before the read is among them, and one after it meets the mark, so no login can slip
    between the two.
    """
    now = clock.utcnow()
    mark_reauthentication(None, uid, reason, now)

    def targeted(doc: dict[str, Any]) -> bool:
        began = doc.get("createdAt")
        return predating is None or not isinstance(began, datetime) or account.predates(began.timestamp(), predating)

    targets = [snap for snap in queries.active_sessions_by_activity(uid).stream()
               if snap.id != keep_sid and targeted(snap.to_dict() or {})]
    return _close(uid, targets, reason, now, by, note)


def _noted(note: str | None) -> dict[str, str]:
    return {} if note is None else {"revokedNote": note}


def close_expired(uid: str) -> int:
    """Close the account's active sessions already past a deadline (lifetimes.py), each as what ended
    it (`expired_idle`, `expired_max_age`: no push, no fresh-sign-in mark). The device cap's rare path
    (flows/login.py): sessions nobody used since they expired must not keep a new device out."""
    now = clock.utcnow()
    targets = [snap for snap in queries.active_sessions(uid).stream()
               if lifetimes.expired(snap.to_dict() or {}, now) is not None]
    return _close(uid, targets, lifetimes.EXPIRED_IDLE, now)


def _close(uid: str, targets: list[Any], reason: str, now: datetime, by: str | None = None,
           note: str | None = None) -> int:
    """Close `targets` (snapshots of active sessions) as `reason`, or as expired when one is already
    past a deadline, at most BATCH_LIMIT writes per commit. Each write carries the update time it was
    read at, so a session changed in between (closed elsewhere) is left as that change made it."""
    client = store.db()
    revoked = 0
    for start in range(0, len(targets), BATCH_LIMIT):
        chunk = targets[start:start + BATCH_LIMIT]
        batch = client.batch()
        closed_as = {}
        for snap in chunk:
            why = lifetimes.expired(snap.to_dict() or {}, now)  # already over: closed as expired, no push
            closed_as[snap.id] = lifetimes.CLOSED_AS[why] if why else reason
            unchanged = client.write_option(last_update_time=snap.update_time)
            batch.update(snap.reference, documents.revocation(closed_as[snap.id], now, None if why else by,
                                                              **({} if why else _noted(note))),
                         option=unchanged)
        try:
            batch.commit()
            revoked += len(chunk)
        except (core_exceptions.FailedPrecondition, core_exceptions.NotFound):
            revoked += sum(revoke_session(uid, snap.id, closed_as[snap.id],
                                          *((by, note) if closed_as[snap.id] == reason else (None, None)))
                           for snap in chunk)
    return revoked
