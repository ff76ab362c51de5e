"""The session core: login, validate, refresh, list, revoke, logout. It knows nothing of HTTP.

Invariants kept here:
- one active session per (user, device): login reads the device's pointer document in its
  transaction and retires the session it points to (reason `replaced`);
- strict validation costs one document read; `lastActiveAt` is written at most once per
  `last_active_interval` per session;
- a token from a replaced session, or an older refresh token, is a copied token: the user is
  signed out everywhere (or just that session, by policy) and the reason is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from . import access_tokens, device_ids, firebase_tokens, indexes, rate_limits, refresh_tokens, store
from .config import settings
from .errors import Conflict, NotFound, Unauthenticated
from .keys import keyring
from .model import DeviceInfo, PushTarget, device_session

ACTIVE, REVOKED = store.ACTIVE, store.REVOKED
REPLACED = "replaced"
TOKEN_REUSED = "token_reused"
BATCH_LIMIT = 500
IDLE_LIMIT = timedelta(days=90)  # a refresh token unused this long is gone (TTL on sessionSecrets)


@dataclass(frozen=True)
class Caller:
    """A request that passed all three validation steps."""

    uid: str
    sid: str
    did: str
    session: dict[str, Any]


@dataclass(frozen=True)
class Issued:
    """What a login or refresh hands to the client (secrets included: shown once, never stored)."""

    uid: str
    sid: str
    signed_device_id: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    session: dict[str, Any] | None = None
    firebase_custom_token: str | None = None  # login only: see firebase_tokens


def _now() -> datetime:
    return datetime.now(UTC)


def _revocation(reason: str, now: datetime, **extra: Any) -> dict[str, Any]:
    retention = timedelta(days=settings().revoked_retention_days)
    return {"status": REVOKED, "revokedAt": now, "revokedReason": reason, "expireAt": now + retention, **extra}


def _access_token(uid: str, sid: str, did: str, issued_at: int) -> tuple[str, int]:
    conf = settings()
    claims = access_tokens.AccessClaims(uid=uid, sid=sid, did=did, iat=issued_at, exp=issued_at + conf.access_ttl)
    token = access_tokens.issue(keyring(), issuer=conf.issuer, audience=conf.audience, claims=claims)
    return token, claims.exp


def resolve_device(signed_device_id: str | None) -> tuple[str, str, bool]:
    """Step 1: (device id, its signed form, whether it is new). A bad id is replaced, not refused."""
    ring = keyring()
    did = device_ids.verify(ring, signed_device_id)
    if did is not None:
        assert signed_device_id is not None
        return did, signed_device_id, False
    did = device_ids.new_device_id()
    return did, device_ids.sign(ring, did), True


# --- login ---------------------------------------------------------------------------------


@store.guarded
def login(uid: str, did: str, signed_device_id: str, device: DeviceInfo, push: PushTarget | None,
          location: str | None) -> Issued:
    sid = device_ids.new_device_id()  # same shape: 128 random bits
    refresh = refresh_tokens.first(sid)
    now = _now()
    session_doc = {
        "uid": uid,
        "deviceId": did,
        "deviceName": device.name,
        "deviceType": device.device_type,
        "model": device.model,
        "osVersion": device.os_version,
        "appVersion": device.app_version,
        "location": location,
        "status": ACTIVE,
        "createdAt": now,
        "lastActiveAt": now,
        "revokedAt": None,
        "revokedReason": None,
        "replacedBy": None,
        "confirmedAt": None,
        "expireAt": None,
    }
    secret_doc = {
        "uid": uid,
        "refreshHash": refresh.hash,
        "prevRefreshHash": None,
        "refreshKid": keyring().current_hmac_kid,
        "generation": 0,
        "rotatedAt": int(now.timestamp()),
        "pushToken": push.token if push else None,
        "pushProvider": push.provider if push else None,
        "expireAt": now + IDLE_LIMIT,
    }
    custom_token = firebase_tokens.custom_token(uid, sid, did)  # before writing: it may fail (503)
    client = store.db()
    device_ref = store.device_ref(uid, did)

    @firestore.transactional
    def create(transaction: firestore.Transaction) -> None:
        pointer = device_ref.get(transaction=transaction)
        previous = pointer.get("sessionId") if pointer.exists else None
        previous_ref = store.session_ref(uid, previous) if previous else None
        replacing = False
        if previous_ref is not None:
            old = previous_ref.get(transaction=transaction)
            replacing = old.exists and old.get("status") == ACTIVE
        if not replacing:
            _within_device_cap(transaction, uid)  # reads: before any write of this transaction
        if previous_ref is not None and replacing:
            transaction.update(previous_ref, _revocation(REPLACED, now, replacedBy=sid))
        transaction.set(store.session_ref(uid, sid), session_doc)
        transaction.set(store.secret_ref(sid), secret_doc)
        transaction.set(device_ref, {"sessionId": sid, "updatedAt": now})

    create(client.transaction())
    access, expires = _access_token(uid, sid, did, int(now.timestamp()))
    return Issued(uid, sid, signed_device_id, access, expires, str(refresh), device_session(sid, session_doc, sid),
                  firebase_custom_token=custom_token)


def _within_device_cap(transaction: firestore.Transaction, uid: str) -> None:
    """Refuse a new device past the cap instead of silently closing the oldest: which session
    to give up is the user's choice. Counted in the login's transaction, so concurrent logins
    cannot pass it together; one aggregation read (billed per 1000 index entries). A re-login of
    a device replaces its session and is not counted."""
    cap = settings().max_active_sessions
    aggregation: Any = store.active_sessions_of(uid).count()  # the library annotates count() as returning a class
    count = int(aggregation.get(transaction=transaction)[0][0].value)
    if count >= cap:
        raise Conflict(f"this account is signed in on {count} devices, the most allowed; "
                       "close a session on another device first", code="device_limit_reached")


# --- validation ----------------------------------------------------------------------------


@store.guarded
def validate(access_token: str | None, signed_device_id: str | None) -> Caller:
    """The three steps: is the device known, is the token valid, is this session active here.

    A Firebase ID token from a My Devices login is accepted in place of our access token.
    """
    ring = keyring()
    if (access_token and not access_tokens.names_our_key(ring, access_token)
            and firebase_tokens.is_id_token(access_token)):
        return validate_firebase(access_token, signed_device_id)
    did = device_ids.verify(ring, signed_device_id)
    if not access_token:
        raise Unauthenticated("an access token is required", code="unauthenticated")
    conf = settings()
    claims = access_tokens.verify(ring, access_token, issuer=conf.issuer, audience=conf.audience)
    if did is None:
        raise Unauthenticated("this device is not recognised; sign in again", code="unknown_device")
    if claims.did != did:
        raise Unauthenticated("this token was issued to another device", code="invalid_token")
    return _active_session(claims.uid, claims.sid, did, replaced_means_copied=True)


@store.guarded
def validate_firebase(id_token: str, signed_device_id: str | None = None) -> Caller:
    """The three steps for a Firebase ID token carrying our `sid` and `did` claims.

    Device: the `did` claim, written by our login into a token Google signs, binds the token to
    its device, so a caller without a device id (a callable, another backend) is still bound; a
    valid device id presented as well must match it. Token: firebase-admin, without the per-call
    Auth lookup of `check_revoked`. Session: one read. A replaced session is only
    `session_revoked` here, never a copied token: until the app signs in with its new custom
    token, its own Firebase SDK still holds, and refreshes, an ID token naming the old session.
    """
    claims = firebase_tokens.verify(id_token)
    presented = device_ids.verify(keyring(), signed_device_id)
    if presented is not None and presented != claims.did:
        raise Unauthenticated("this token was issued to another device", code="invalid_token")
    return _active_session(claims.uid, claims.sid, claims.did, replaced_means_copied=False)


def _active_session(uid: str, sid: str, did: str, *, replaced_means_copied: bool) -> Caller:
    """The third step, shared by both kinds of token: the one read, on this device, active."""
    doc = store.read(store.session_ref(uid, sid))
    if doc is None or doc.get("deviceId") != did:
        raise Unauthenticated("no such session", code="invalid_token")
    if doc.get("status") != ACTIVE:
        if replaced_means_copied and doc.get("revokedReason") == REPLACED:
            _copied_token(uid, sid, did, why="access token of a replaced session")
        raise Unauthenticated("this session has been closed", code="session_revoked")
    _touch(uid, sid, doc)
    return Caller(uid, sid, did, doc)


def _touch(uid: str, sid: str, doc: dict[str, Any]) -> None:
    """Record activity, at most once per interval: every write is billed and a document sustains
    about one write a second."""
    now = _now()
    last = doc.get("lastActiveAt")
    if isinstance(last, datetime) and (now - last).total_seconds() < settings().last_active_interval:
        return
    try:
        store.session_ref(uid, sid).update(
            {"lastActiveAt": now}, option=store.db().write_option(exists=True)
        )
        doc["lastActiveAt"] = now
    except core_exceptions.NotFound:
        pass


# --- copied tokens -------------------------------------------------------------------------


def _copied_token(uid: str, sid: str, did: str, *, why: str) -> None:
    """Sign the user out (everywhere, by default), record why, and refuse the request."""
    now = _now()
    if settings().reuse_policy == "revoke_all":
        _revoke_where(uid, TOKEN_REUSED, keep_sid=None)
    else:
        pointer = store.read(store.device_ref(uid, did))
        current = pointer.get("sessionId") if pointer is not None else None
        for target in {sid, current} - {None}:
            revoke_session(uid, str(target), TOKEN_REUSED)
    store.security_events_of(uid).add({
        "type": TOKEN_REUSED,
        "detail": why,
        "sessionId": sid,
        "deviceId": did,
        "at": now,
        "expireAt": now + timedelta(days=settings().revoked_retention_days),
    })
    raise Unauthenticated("this token was used after it had been replaced; all sessions were closed",
                          code="token_reused")


# --- refresh -------------------------------------------------------------------------------

_refresh_locks: dict[str, threading.Lock] = {}
_refresh_waiters: dict[str, int] = {}  # how many requests hold or wait for each lock
_refresh_locks_guard = threading.Lock()


@contextmanager
def _one_refresh_at_a_time(sid: str) -> Iterator[None]:
    """Concurrent refreshes of one session in this instance queue up, so the first rotates and
    the rest are answered from the grace window without contending in Firestore.

    A lock is dropped when nobody holds or awaits it (counted: an unlocked lock may still have
    a waiter about to take it), also after a refused refresh, so made-up ids do not pile up."""
    with _refresh_locks_guard:
        lock = _refresh_locks.setdefault(sid, threading.Lock())
        _refresh_waiters[sid] = _refresh_waiters.get(sid, 0) + 1
    try:
        with lock:
            yield
    finally:
        with _refresh_locks_guard:
            _refresh_waiters[sid] -= 1
            if not _refresh_waiters[sid]:
                del _refresh_waiters[sid]
                _refresh_locks.pop(sid, None)


class _Reused(Exception):
    def __init__(self, uid: str) -> None:
        self.uid = uid


@store.guarded
def refresh(refresh_token: str | None, signed_device_id: str | None) -> Issued:
    if not refresh_token:
        raise Unauthenticated("a refresh token is required", code="unauthenticated")
    presented = refresh_tokens.parse(refresh_token)
    if presented is None or not store.valid_id(presented.sid):
        raise Unauthenticated("refresh token is malformed", code="invalid_token")
    ring = keyring()
    did = device_ids.verify(ring, signed_device_id)
    if did is None:
        raise Unauthenticated("this device is not recognised; sign in again", code="unknown_device")
    grace = settings().refresh_grace
    client = store.db()
    secret_ref = store.secret_ref(presented.sid)
    counted: list[str] = []

    @firestore.transactional
    def rotate(transaction: firestore.Transaction) -> tuple[str, refresh_tokens.RefreshToken, int]:
        secret = secret_ref.get(transaction=transaction)
        if not secret.exists:
            raise Unauthenticated("no such session", code="invalid_token")
        data = secret.to_dict() or {}
        uid = data["uid"]
        if not counted:  # the user is known only now; a retried transaction is not a new request
            counted.append(uid)
            rate_limits.refresh_of_user(uid)
        session = store.session_ref(uid, presented.sid).get(transaction=transaction)
        if not session.exists or session.get("deviceId") != did:
            raise Unauthenticated("this refresh token belongs to another device", code="invalid_token")
        key = ring.hmac.get(data.get("refreshKid") or "", ring.current_hmac)
        current_hash = data["refreshHash"]
        generation = int(data["generation"])
        status = session.get("status")
        if presented.hash == current_hash and presented.generation != generation:
            # The right secret with another generation number was never issued: someone edited the
            # token (a wrong generation would also defeat the copied-token proof of older ones).
            raise Unauthenticated("refresh token is invalid", code="invalid_token")
        if presented.hash == current_hash:
            if status != ACTIVE:
                if session.get("revokedReason") == REPLACED:
                    raise _Reused(uid)
                raise Unauthenticated("this session has been closed", code="session_revoked")
            now = int(time.time())
            child = refresh_tokens.child(ring.current_hmac, presented)
            transaction.update(secret_ref, {
                "refreshHash": child.hash,
                "prevRefreshHash": current_hash,
                "refreshKid": ring.current_hmac_kid,
                "generation": child.generation,
                "rotatedAt": now,
                "expireAt": _now() + IDLE_LIMIT,
            })
            return uid, child, now
        if presented.hash == data.get("prevRefreshHash") and status == ACTIVE:
            rotated_at = int(data["rotatedAt"])
            child = refresh_tokens.child(key, presented)
            if time.time() - rotated_at <= grace and child.hash == current_hash:
                return uid, child, rotated_at  # the same answer as the rotation it repeats
            raise _Reused(uid)
        if presented.generation < generation and refresh_tokens.is_ancestor(key, presented, generation, current_hash):
            raise _Reused(uid)
        if status != ACTIVE:
            raise Unauthenticated("this session has been closed", code="session_revoked")
        raise Unauthenticated("refresh token is invalid", code="invalid_token")

    with _one_refresh_at_a_time(presented.sid):
        try:
            uid, child, issued_at = rotate(client.transaction())
        except _Reused as reused:
            _copied_token(reused.uid, presented.sid, did, why="refresh token used after rotation")
            raise  # unreachable: _copied_token raises
    access, expires = _access_token(uid, presented.sid, did, issued_at)
    return Issued(uid, presented.sid, signed_device_id or "", access, expires, str(child))


# --- listing and closing -------------------------------------------------------------------


def _active_sessions(uid: str) -> firestore.Query:
    return indexes.ACTIVE_SESSIONS_BY_ACTIVITY.query(store.sessions_of(uid), ACTIVE)


@store.guarded
def list_sessions(caller: Caller) -> list[dict[str, Any]]:
    """Current device first, then by last activity."""
    snapshots = _active_sessions(caller.uid).stream()
    views = [device_session(snap.id, snap.to_dict() or {}, caller.sid) for snap in snapshots]
    views.sort(key=lambda view: not view["isCurrentDevice"])  # stable: keeps the activity order
    return views


@store.guarded
def revoke_session(uid: str, sid: str, reason: str) -> bool:
    """Close one session; False when it was not active (or not this user's)."""
    ref = store.session_ref(uid, sid)

    @firestore.transactional
    def close(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists or snapshot.get("status") != ACTIVE:
            return False
        transaction.update(ref, _revocation(reason, _now()))
        return True

    return bool(close(store.db().transaction()))


def close_other(caller: Caller, sid: str) -> None:
    if sid == caller.sid:
        raise Conflict("the current session ends only by logging out", code="cannot_revoke_current")
    if not store.valid_id(sid) or not revoke_session(caller.uid, sid, "user_revoked"):
        raise NotFound("no such active session")


def _revoke_where(uid: str, reason: str, keep_sid: str | None) -> int:
    """Revoke every active session but `keep_sid`, at most BATCH_LIMIT writes per commit.

    Each write carries the update time it was read at, so a session changed in between (closed
    elsewhere, replaced by a login) is left as that change made it rather than overwritten.
    """
    client = store.db()
    now = _now()
    targets = [snap for snap in _active_sessions(uid).stream() if snap.id != keep_sid]
    revoked = 0
    for start in range(0, len(targets), BATCH_LIMIT):
        chunk = targets[start:start + BATCH_LIMIT]
        batch = client.batch()
        for snap in chunk:
            unchanged = client.write_option(last_update_time=snap.update_time)
            batch.update(snap.reference, _revocation(reason, now), option=unchanged)
        try:
            batch.commit()
            revoked += len(chunk)
        except (core_exceptions.FailedPrecondition, core_exceptions.NotFound):
            revoked += sum(revoke_session(uid, snap.id, reason) for snap in chunk)
    return revoked


@store.guarded
def revoke_others(caller: Caller) -> int:
    return _revoke_where(caller.uid, "revoke_others", keep_sid=caller.sid)


def logout(caller: Caller) -> None:
    revoke_session(caller.uid, caller.sid, "logout")


@store.guarded
def set_push_token(caller: Caller, push: PushTarget) -> None:
    store.secret_ref(caller.sid).update({"pushToken": push.token, "pushProvider": push.provider})


def current_session(caller: Caller) -> dict[str, Any]:
    return device_session(caller.sid, caller.session, caller.sid)
