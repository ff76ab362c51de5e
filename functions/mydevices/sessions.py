"""The session core: login, validate, refresh, list, revoke, logout. It knows nothing of HTTP.

Invariants kept here:
- one active session per (user, device): login reads the device's pointer document in its
  transaction and retires the session it points to (reason `replaced`);
- strict validation costs one document read; `lastActiveAt` is written at most once per
  `last_active_interval` per session;
- the owner's last word stands: after a closure by the user or by the security response, a new
  login needs a Firebase sign-in made after it (`reauthAfter` on the user's document), and a
  device the user answered "No" about stays untrusted (`untrustedAt` on its pointer);
- a token of a session that is still live (active, or replaced by a session of the same device
  that is still active) but no longer current is a copied token: the user is signed out
  everywhere (or just that device, by policy), once per incident, and the reason is recorded. A
  token of a session that is closed for good gets `session_revoked` and closes nothing;
- a session younger than the fresh-session window cannot close others.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from . import (
    access_tokens,
    account,
    dbsc,
    device_ids,
    dpop,
    firebase_tokens,
    indexes,
    rate_limits,
    refresh_tokens,
    store,
)
from .config import settings
from .errors import Code, Conflict, Forbidden, NotFound, Unauthenticated
from .identity import Identity
from .keys import keyring
from .model import DeviceInfo, PushTarget, device_session, iso

ACTIVE, REVOKED = store.ACTIVE, store.REVOKED
REPLACED = "replaced"
TOKEN_REUSED = "token_reused"
REJECTED_BY_USER = "rejected_by_user"
# Ended by the device itself: its next login is a return, not news for the user's other devices.
SELF_ENDED = frozenset({"logout", REPLACED})
# Ended by the user from elsewhere or by the security response: the next login of the account
# needs a sign-in made after it (`reauthAfter`). The closures Firebase Auth decides need no mark:
# account.check_sign_in refuses a disabled account, and any sign-in before tokensValidAfterTime.
NEEDS_FRESH_SIGN_IN = frozenset({"user_revoked", "revoke_others", REJECTED_BY_USER, TOKEN_REUSED})
BATCH_LIMIT = 500
CAP_SLACK = 10  # below cap - CAP_SLACK active sessions, concurrent logins cannot pass the cap
MAX_REPLACEMENT_HOPS = 10  # how far a stale token's device is followed to its current session
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


def _access_token(uid: str, sid: str, did: str, issued_at: int, jkt: str | None = None) -> tuple[str, int]:
    conf = settings()
    claims = access_tokens.AccessClaims(uid=uid, sid=sid, did=did, iat=issued_at, exp=issued_at + conf.access_ttl,
                                        jkt=jkt)
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


def _alert_reason(pointer: dict[str, Any] | None, previous: dict[str, Any] | None, proven: bool) -> str | None:
    """Why this login is news for the user's other devices, or None when it is the device coming
    back: its previous session was ended by the device itself, or is still active and the login
    proves it holds it (`proven`: its access token came along), and the user never rejected the
    device. A device id alone proves nothing: it is a copy away from a silent takeover of the
    device's session. A session that expired away (TTL) says nothing either: news."""
    if pointer is None:
        return "new_device"
    if pointer.get("untrustedAt") is not None:
        return "untrusted_device"
    if previous is None:
        return "new_device"
    if previous.get("status") == ACTIVE:
        return None if proven else "unproven_re_login"
    if previous.get("revokedReason") in SELF_ENDED:
        return None
    return "closed_elsewhere"


def _holds(access_token: str | None, uid: str, sid: str | None, did: str) -> bool:
    """Whether `access_token` is ours, for this session on this device (expired or not)."""
    if not access_token or sid is None:
        return False
    conf = settings()
    try:
        claims = access_tokens.verify(keyring(), access_token, issuer=conf.issuer, audience=conf.audience,
                                      expired_ok=True)
    except Unauthenticated:
        return False
    return (claims.uid, claims.sid, claims.did) == (uid, sid, did)


def _require_fresh_sign_in(identity: Identity, user: dict[str, Any] | None) -> None:
    """After a closure, a Firebase SDK that stayed signed in (the closed device's, or a copy of
    its storage) cannot open a session again: only a sign-in made after the closure can."""
    closed_at = user.get("reauthAfter") if user else None
    # auth_time has whole seconds: a sign-in in the closure's own second might have come before
    # it, so it does not count (the user signs in again a second later).
    if isinstance(closed_at, datetime) and identity.auth_time <= closed_at.timestamp():
        raise Unauthenticated("sign in again: a session of this account was closed since your last sign-in",
                              code=Code.REAUTHENTICATION_REQUIRED)


@store.guarded
def login(identity: Identity, did: str, signed_device_id: str, device: DeviceInfo, push: PushTarget | None,
          location: str | None, *, firebase_token: bool = True, holds: str | None = None,
          device_key: dict[str, str] | None = None) -> Issued:
    """Open a session for (user, device), replacing the device's previous one.

    `holds` is the access token the request carried besides the ID token (a web client's cookie):
    with it a re-login proves it is the device itself coming back (see _alert_reason).
    `device_key` (a public JWK, dpop.parse_public_jwk) binds the session to that key: its every
    refresh must then carry a DPoP proof the key signed (see refresh)."""
    jkt = dpop.thumbprint(device_key) if device_key is not None else None
    uid = identity.uid
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
        "alertReason": None,
        "expireAt": None,
        "deviceBound": jkt is not None,
        "dpopJkt": jkt,  # the key's thumbprint: public, so it may sit where the owner can read it
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
    # Before writing: signing may fail (503), and nothing may be half-written then.
    custom_token = firebase_tokens.custom_token(uid, sid, did, identity.auth_time) if firebase_token else None
    device_ref = store.device_ref(uid, did)
    user_ref = store.user_ref(uid)

    # Far below the cap, it is not counted in the transaction: that count reads the whole range of
    # the user's sessions, so every concurrent login of the user would collide with it.
    near_cap = _active_count(store.active_sessions_of(uid)) + CAP_SLACK >= settings().max_active_sessions
    if near_cap and identity.credentials_valid_after is not None:
        # After a password reset, sessions of lost devices that never refresh must not keep the
        # owner's new device out: end those that began before it now, not at their next refresh.
        _revoke_where(uid, account.CREDENTIALS_REVOKED, keep_sid=None, predating=identity.credentials_valid_after)

    def create(transaction: firestore.Transaction) -> None:
        user = user_ref.get(transaction=transaction)
        _require_fresh_sign_in(identity, user.to_dict() if user.exists else None)
        pointer = device_ref.get(transaction=transaction)
        pointer_doc = pointer.to_dict() if pointer.exists else None
        previous = pointer_doc.get("sessionId") if pointer_doc else None
        previous_ref = store.session_ref(uid, previous) if previous else None
        old = previous_ref.get(transaction=transaction) if previous_ref is not None else None
        old_doc = old.to_dict() if old is not None and old.exists else None
        replacing = old_doc is not None and old_doc.get("status") == ACTIVE
        if not replacing and near_cap:
            _within_device_cap(transaction, uid)  # reads: before any write of this transaction
        session_doc["alertReason"] = _alert_reason(pointer_doc, old_doc, _holds(holds, uid, previous, did))
        if previous_ref is not None and replacing:
            transaction.update(previous_ref, _revocation(REPLACED, now, replacedBy=sid))
        transaction.set(store.session_ref(uid, sid), session_doc)
        transaction.set(store.secret_ref(sid), secret_doc)
        transaction.set(device_ref, {"sessionId": sid, "updatedAt": now}, merge=True)

    store.transact(create)
    access, expires = _access_token(uid, sid, did, int(now.timestamp()), jkt)
    view = device_session(sid, session_doc, sid)
    return Issued(uid, sid, signed_device_id, access, expires, str(refresh), view, firebase_custom_token=custom_token)


def _active_count(query: firestore.Query, transaction: firestore.Transaction | None = None) -> int:
    """One aggregation read (billed per 1000 index entries)."""
    aggregation: Any = query.count()  # the library annotates count() as returning a class
    return int(aggregation.get(transaction=transaction)[0][0].value)


def _within_device_cap(transaction: firestore.Transaction, uid: str) -> None:
    """Refuse a new device past the cap instead of silently closing the oldest: which session
    to give up is the user's choice. Counted in the login's transaction once the account is
    within CAP_SLACK of the cap, so concurrent logins cannot pass it together. A re-login of a
    device replaces its session and is not counted."""
    cap = settings().max_active_sessions
    count = _active_count(store.active_sessions_of(uid), transaction)
    if count >= cap:
        raise Conflict(f"this account is signed in on {count} devices, the most allowed; "
                       "close a session on another device first", code=Code.DEVICE_LIMIT_REACHED)


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
        raise Unauthenticated("an access token is required", code=Code.UNAUTHENTICATED)
    conf = settings()
    claims = access_tokens.verify(ring, access_token, issuer=conf.issuer, audience=conf.audience)
    if did is None:
        raise Unauthenticated("this device is not recognised; sign in again", code=Code.UNKNOWN_DEVICE)
    if claims.did != did:
        raise Unauthenticated("this token was issued to another device", code=Code.INVALID_TOKEN)
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
        raise Unauthenticated("this token was issued to another device", code=Code.INVALID_TOKEN)
    return _active_session(claims.uid, claims.sid, claims.did, replaced_means_copied=False)


def _active_session(uid: str, sid: str, did: str, *, replaced_means_copied: bool) -> Caller:
    """The third step, shared by both kinds of token: the one read, on this device, active."""
    doc = store.read(store.session_ref(uid, sid))
    if doc is None or doc.get("deviceId") != did:
        raise Unauthenticated("no such session", code=Code.INVALID_TOKEN)
    if doc.get("status") != ACTIVE:
        if replaced_means_copied and (live := _live_replacement(uid, doc)) is not None:
            _copied_token(uid, sid, did, live, doc, why="access token of a replaced session")
        raise Unauthenticated("this session has been closed", code=Code.SESSION_REVOKED)
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


def _live_replacement(uid: str, doc: dict[str, Any],
                      transaction: firestore.Transaction | None = None) -> str | None:
    """The active session that replaced this closed one on its device, following re-logins, if
    any. Only then does an old token mean a copy is in use next to the device: a session that
    was closed for good (by the user, a logout, an earlier incident) has no live successor, and
    replaying its tokens must not sign anyone out."""
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


def _copied_token(uid: str, sid: str, did: str, live_sid: str, presented: dict[str, Any], *, why: str,
                  code: str = TOKEN_REUSED) -> None:
    """Sign the user out (everywhere, by default), record why, and refuse the request.

    One incident, one security event: its id is the session whose token was presented, and it
    is created only if absent, so concurrent replays of one token record it once. Later replays
    find the device's sessions closed and close nothing (see _live_replacement).

    Signing out everywhere is for a copy of a settled session's credentials. A session younger
    than the fresh-session window may be an intruder's own, who could otherwise sign the owner
    out at will by replaying its own old token (settled_from): then only its device is signed out.
    """
    now = _now()
    everywhere = settings().reuse_policy == "revoke_all" and settled_from(presented) is None
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
        _revoke_where(uid, TOKEN_REUSED, keep_sid=None)
    else:
        revoke_session(uid, live_sid, TOKEN_REUSED)
    closed = "all sessions were closed" if everywhere else "its device was signed out"
    if code == PROOF_FAILED:
        raise Unauthenticated(f"this session is bound to its device's key and the refresh carried no proof "
                              f"from it; {closed}", code=Code(code))
    raise Unauthenticated(f"this token was used after it had been replaced; {closed}", code=Code(code))


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
    """A genuine token in the wrong hands: an old one, or one of a bound session without a proof."""

    def __init__(self, uid: str, live_sid: str, presented: dict[str, Any],
                 why: str = "refresh token used after rotation", code: str = TOKEN_REUSED) -> None:
        self.uid = uid
        self.live_sid = live_sid
        self.presented = presented
        self.why = why
        self.code = code


PROOF_FAILED = "device_proof_failed"


def _proven(data: dict[str, Any], doc: dict[str, Any], uid: str, sid: str, proof: dpop.Checked,
            bound_cookie: str | None = None) -> dict[str, Any]:
    """For a genuine refresh token of an active session: the fields to write for its proof of
    possession (none for a session not bound to a key), or refuse.

    No proof, or one no key of this session signed, means the token was copied off the device:
    a copied-credential incident (_copied_token), exactly like a replayed token. A proof the key
    did sign but that is stale, for another URL, without our nonce or replayed is the device's
    own (or a replay of what it sent): refused with its own code, and nobody is signed out.
    A session registered with DBSC needs its fresh bound cookie (dbsc.require_cookie)."""
    dbsc.require_cookie(doc, sid, bound_cookie)
    jkt = doc.get("dpopJkt")
    if not isinstance(jkt, str):
        return {}
    if proof.jkt is None or not hmac.compare_digest(proof.jkt, jkt):
        why = "refresh of a device-bound session " + ("with a proof from another key" if proof.present
                                                      else "without a proof of its key")
        raise _Reused(uid, sid, doc, why=why, code=PROOF_FAILED)
    if proof.fault is not None:
        raise proof.fault
    return {"dpopSeen": dpop.remember(data.get("dpopSeen"), proof)}


class _Ended(Exception):
    """Firebase Auth no longer stands behind the account's sessions (account.py)."""

    def __init__(self, uid: str, ended: account.Ended) -> None:
        self.uid = uid
        self.ended = ended


_INVALID = "refresh token is invalid"  # one answer for every token not proven genuine: no oracle


@store.guarded
def refresh(refresh_token: str | None, signed_device_id: str | None, proof: dpop.Checked = dpop.ABSENT,
            bound_cookie: str | None = None) -> Issued:
    """Rotate a refresh token, in this order: prove the token genuine (current, the one just
    replaced within the grace window, or an ancestor of the current one); only then charge the
    user's refresh budget, so a stranger who knows a session id cannot spend it; refuse tokens
    of closed sessions; treat a genuine old token of a live session as a copy; and before
    anything is written, ask Firebase Auth whether the account may still hold sessions
    (account.py). Asked inside the transaction, so an Auth outage (503) rotates nothing: the
    client's retry with the same token is then no replay, however long the outage lasted.

    A session bound to a device key also needs `proof` (dpop.check of the request's DPoP
    header), judged only once the token is proven genuine (_proven): a made-up token stays
    `invalid_token`, so knowing a session id is not enough to set off the copied-token response."""
    if not refresh_token:
        raise Unauthenticated("a refresh token is required", code=Code.UNAUTHENTICATED)
    presented = refresh_tokens.parse(refresh_token)
    if presented is None or not store.valid_id(presented.sid):
        raise Unauthenticated("refresh token is malformed", code=Code.INVALID_TOKEN)
    ring = keyring()
    did = device_ids.verify(ring, signed_device_id)
    if did is None:
        raise Unauthenticated("this device is not recognised; sign in again", code=Code.UNKNOWN_DEVICE)
    grace = settings().refresh_grace
    client = store.db()
    secret_ref = store.secret_ref(presented.sid)
    charged: list[str] = []
    standing: list[account.Ended | None] = []

    def charge(uid: str, began: datetime) -> None:
        """Once per request (a retried transaction is not a new one): the budget, then Auth."""
        if not charged:
            charged.append(uid)
            rate_limits.refresh_of_session(presented.sid)
            standing.append(account.standing(uid, began))
        if standing[0] is not None:
            raise _Ended(uid, standing[0])

    @firestore.transactional
    def rotate(transaction: firestore.Transaction) -> tuple[str, refresh_tokens.RefreshToken, int, str | None]:
        secret = secret_ref.get(transaction=transaction)
        if not secret.exists:
            raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
        data = secret.to_dict() or {}
        uid = data["uid"]
        session = store.session_ref(uid, presented.sid).get(transaction=transaction)
        if not session.exists or session.get("deviceId") != did:
            raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
        doc = session.to_dict() or {}
        key = ring.hmac.get(data.get("refreshKid") or "", ring.current_hmac)
        current_hash = data["refreshHash"]
        generation = int(data["generation"])
        active = doc.get("status") == ACTIVE
        began = doc.get("createdAt")
        if not isinstance(began, datetime):  # not ours to vouch for: as old as can be
            began = datetime.min.replace(tzinfo=UTC)
        if presented.hash == current_hash and presented.generation != generation:
            # The right secret with another generation number was never issued: someone edited the
            # token (a wrong generation would also defeat the copied-token proof of older ones).
            raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
        jkt = doc.get("dpopJkt") if isinstance(doc.get("dpopJkt"), str) else None
        if presented.hash == current_hash and active:
            possession = _proven(data, doc, uid, presented.sid, proof, bound_cookie)
            charge(uid, began)
            now = int(time.time())
            child = refresh_tokens.child(ring.current_hmac, presented)
            transaction.update(secret_ref, {
                "refreshHash": child.hash,
                "prevRefreshHash": current_hash,
                "refreshKid": ring.current_hmac_kid,
                "generation": child.generation,
                "rotatedAt": now,
                "expireAt": _now() + IDLE_LIMIT,
                **possession,
            })
            return uid, child, now, jkt
        if presented.hash == data.get("prevRefreshHash") and active:
            rotated_at = int(data["rotatedAt"])
            child = refresh_tokens.child(key, presented)
            if time.time() - rotated_at <= grace and child.hash == current_hash:
                possession = _proven(data, doc, uid, presented.sid, proof, bound_cookie)
                charge(uid, began)
                if possession:
                    transaction.update(secret_ref, possession)
                return uid, child, rotated_at, jkt  # the same answer as the rotation it repeats
            raise _Reused(uid, presented.sid, doc)
        genuine = presented.hash == current_hash or (
            presented.generation < generation and refresh_tokens.is_ancestor(key, presented, generation, current_hash))
        if not genuine:
            raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
        if active:
            raise _Reused(uid, presented.sid, doc)
        live = _live_replacement(uid, doc, transaction)
        if live is not None:
            raise _Reused(uid, live, doc)
        raise Unauthenticated("this session has been closed", code=Code.SESSION_REVOKED)

    with _one_refresh_at_a_time(presented.sid):
        try:
            uid, child, issued_at, jkt = rotate(client.transaction())
        except _Reused as reused:
            _copied_token(reused.uid, presented.sid, did, reused.live_sid, reused.presented,
                          why=reused.why, code=reused.code)
            raise  # unreachable: _copied_token raises
        except _Ended as ended:
            _end_for_account(ended.uid, presented.sid, ended.ended)
            raise  # unreachable: _end_for_account raises
    access, expires = _access_token(uid, presented.sid, did, issued_at, jkt)
    return Issued(uid, presented.sid, signed_device_id or "", access, expires, str(child))


@store.guarded
def dbsc_refresh(refresh_token: str | None, sid: str, proof: str | None) -> str:
    """The browser's DBSC refresh of session `sid`: 'ok' (issue a fresh bound cookie) or
    'challenge' (answer 403 with a challenge), or refuse.

    The request must carry the session's genuine refresh token (the cookie a copied cookie jar
    carries too); only then is a proof that the session's key did not sign a copied-credential
    incident (_copied_token, as for a replayed token). Without a genuine token: `invalid_token`,
    closing nothing, so a stranger who knows a session id cannot sign the owner out."""
    presented = refresh_tokens.parse(refresh_token or "")
    if presented is None or presented.sid != sid:
        raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
    ring = keyring()
    secret = store.read(store.secret_ref(sid))
    if secret is None:
        raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
    key = ring.hmac.get(secret.get("refreshKid") or "", ring.current_hmac)
    current, generation = str(secret.get("refreshHash")), int(secret.get("generation") or 0)
    genuine = (presented.hash == current and presented.generation == generation) \
        or presented.hash == secret.get("prevRefreshHash") \
        or (presented.generation < generation and refresh_tokens.is_ancestor(key, presented, generation, current))
    if not genuine:
        raise Unauthenticated(_INVALID, code=Code.INVALID_TOKEN)
    uid = str(secret["uid"])
    doc = store.read(store.session_ref(uid, sid))
    if doc is None or doc.get("status") != ACTIVE:
        raise Unauthenticated("this session has been closed", code=Code.SESSION_REVOKED)
    verdict = dbsc.verify_refresh(doc, sid, proof)
    if verdict == "wrong":
        _copied_token(uid, sid, str(doc.get("deviceId")), sid, doc,
                      why="DBSC refresh with a proof its browser key did not sign", code=PROOF_FAILED)
    return verdict


def _end_for_account(uid: str, sid: str, ended: account.Ended) -> None:
    """End the sessions Firebase Auth no longer stands behind, this one included, and refuse."""
    _revoke_where(uid, ended.reason, keep_sid=None, predating=ended.before)
    revoke_session(uid, sid, ended.reason)  # in case the query missed it (just replaced, say)
    raise Unauthenticated(f"this session has been closed ({ended.reason})", code=Code.SESSION_REVOKED,
                          reason=ended.reason)


# --- listing and closing -------------------------------------------------------------------


def _active_sessions(uid: str) -> firestore.Query:
    return indexes.ACTIVE_SESSIONS_BY_ACTIVITY.query(store.sessions_of(uid), ACTIVE)


def settled_from(session: dict[str, Any]) -> datetime | None:
    """When a session may act against the account's other sessions (close them, answer alerts
    about them, sign them all out as a copied-token response); None if it may now.

    Like Telegram's rule: an intruder with the password gets a fresh session, and must not be able
    to close the owner's older sessions (and with them the owner's "No") before the owner has
    seen the alert. A session the owner confirmed ("Yes" from another device) is settled at once.
    """
    hours = settings().fresh_session_hours
    began = session.get("createdAt")
    if hours <= 0 or not isinstance(began, datetime) or session.get("confirmedAt") is not None:
        return None
    allowed = began + timedelta(hours=hours)
    return allowed if allowed > _now() else None


def require_settled(session: dict[str, Any], doing: str = "close other sessions") -> None:
    allowed = settled_from(session)
    if allowed is not None:
        raise Forbidden(f"this session is too new to {doing}; it may from {iso(allowed)}",
                        code=Code.SESSION_TOO_NEW, allowed_at=iso(allowed) or "")


@store.guarded
def list_sessions(caller: Caller) -> dict[str, Any]:
    """Current device first, then by last activity; each says whether the caller may close it."""
    allowed = settled_from(caller.session)
    snapshots = _active_sessions(caller.uid).stream()
    views = [device_session(snap.id, snap.to_dict() or {}, caller.sid) for snap in snapshots]
    for view in views:
        view["canClose"] = allowed is None and not view["isCurrentDevice"]
    views.sort(key=lambda view: not view["isCurrentDevice"])  # stable: keeps the activity order
    return {"sessions": views, "closeOthersAllowedAt": iso(allowed)}


def _require_reauthentication(transaction: firestore.Transaction | None, uid: str,
                              reason: str, now: datetime) -> None:
    """A closure from elsewhere makes the account's next login need a sign-in made after it."""
    if reason not in NEEDS_FRESH_SIGN_IN:
        return
    ref, fields = store.user_ref(uid), {"reauthAfter": now}
    if transaction is None:
        ref.set(fields, merge=True)
    else:
        transaction.set(ref, fields, merge=True)


@store.guarded
def revoke_session(uid: str, sid: str, reason: str) -> bool:
    """Close one session; False when it was not active (or not this user's)."""
    ref = store.session_ref(uid, sid)

    @firestore.transactional
    def close(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists or snapshot.get("status") != ACTIVE:
            return False
        now = _now()
        transaction.update(ref, _revocation(reason, now))
        _require_reauthentication(transaction, uid, reason, now)
        return True

    return bool(close(store.db().transaction()))


@store.guarded
def reject(uid: str, sid: str) -> list[str]:
    """The user's "No, that wasn't me" about session `sid`: close it and whatever its device
    opened since (an intruder signs in again on the device before the owner answers), and keep
    that device id untrusted for the account. Returns the sessions this call closed; empty when
    they were already closed. One transaction, so no login of the device slips in between."""
    ref = store.session_ref(uid, sid)

    @firestore.transactional
    def close(transaction: firestore.Transaction) -> list[str]:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return []
        doc = snapshot.to_dict() or {}
        did = doc.get("deviceId")
        device_ref = store.device_ref(uid, did) if isinstance(did, str) and store.valid_id(did) else None
        pointer = device_ref.get(transaction=transaction) if device_ref is not None else None
        latest = (pointer.to_dict() or {}).get("sessionId") if pointer is not None and pointer.exists else None
        targets = {sid: doc}
        if isinstance(latest, str) and latest != sid and store.valid_id(latest):
            later = store.session_ref(uid, latest).get(transaction=transaction)
            began, later_began = doc.get("createdAt"), later.get("createdAt") if later.exists else None
            if isinstance(began, datetime) and isinstance(later_began, datetime) and later_began >= began:
                targets[latest] = later.to_dict() or {}
        now = _now()
        closed = [target for target, found in targets.items() if found.get("status") == ACTIVE]
        for target in closed:
            transaction.update(store.session_ref(uid, target), _revocation(REJECTED_BY_USER, now))
        if device_ref is not None:
            transaction.set(device_ref, {"untrustedAt": now}, merge=True)
        _require_reauthentication(transaction, uid, REJECTED_BY_USER, now)
        return closed

    return list(close(store.db().transaction()))


def close_other(caller: Caller, sid: str) -> None:
    """Close another session; if its device has signed in again since the caller's list was
    read, close what the device holds now: the user means the device, not an id."""
    if sid == caller.sid:
        raise Conflict("the current session ends only by logging out", code=Code.CANNOT_REVOKE_CURRENT)
    require_settled(caller.session)
    if not store.valid_id(sid):
        raise NotFound("no such active session")
    if revoke_session(caller.uid, sid, "user_revoked"):
        return
    doc = store.read(store.session_ref(caller.uid, sid))
    live = _live_replacement(caller.uid, doc) if doc is not None else None
    if live is None or live == caller.sid or not revoke_session(caller.uid, live, "user_revoked"):
        raise NotFound("no such active session")


def _revoke_where(uid: str, reason: str, keep_sid: str | None, predating: datetime | None = None) -> int:
    """Revoke every active session but `keep_sid` (and, if given, only those that may predate
    `predating`, a credential revocation: account.predates), at most BATCH_LIMIT writes per commit.

    The account's fresh-sign-in mark is written before the sessions are even read: a login that
    commits before the read is among them, and one after it meets the mark, so no login can slip
    between the two. Each write carries the update time it was read at, so a session changed in
    between (closed elsewhere) is left as that change made it rather than overwritten.
    """
    client = store.db()
    now = _now()
    _require_reauthentication(None, uid, reason, now)

    def targeted(doc: dict[str, Any]) -> bool:
        began = doc.get("createdAt")
        return predating is None or not isinstance(began, datetime) or account.predates(began.timestamp(), predating)

    targets = [snap for snap in _active_sessions(uid).stream()
               if snap.id != keep_sid and targeted(snap.to_dict() or {})]
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
    require_settled(caller.session)
    return _revoke_where(caller.uid, "revoke_others", keep_sid=caller.sid)


def logout(caller: Caller) -> None:
    revoke_session(caller.uid, caller.sid, "logout")


@store.guarded
def set_push_token(caller: Caller, push: PushTarget) -> None:
    store.secret_ref(caller.sid).update({"pushToken": push.token, "pushProvider": push.provider})


def current_session(caller: Caller) -> dict[str, Any]:
    return device_session(caller.sid, caller.session, caller.sid)
