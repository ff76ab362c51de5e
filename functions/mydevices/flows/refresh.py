"""Refresh: a refresh token is rotated, in one transaction, once it is proven genuine.

The order is the defence (see `refresh`): prove the token genuine before anything else, so a
stranger who knows a session id can neither spend the session's refresh budget nor set off the
copied-token response; then the session's device key, if it is bound to one (DPoP for apps,
DBSC for browsers); then Firebase Auth's word on the account. A genuine token that is no longer
current is a copy in use (copied_token.py). A retry within the grace window gets byte for byte
the answer of the rotation it repeats (Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

from google.cloud import firestore

from .. import account, clock, closing, dbsc, documents, dpop, lifetimes, rate_limits, store
from ..config import settings
from ..documents import ACTIVE, IDLE_LIMIT
from ..errors import Code, Refusal
from ..tokens import refresh as refresh_tokens
from ..tokens.keys import keyring, same
from . import copied_token
from .issued import Issued, access_token

_INVALID = "refresh token is invalid"  # one answer for every token not proven genuine: no oracle


def refresh(refresh_token: str | None, did: str | None, signed_device_id: str, client_ip: str | None,
            proof_input: dpop.DpopInput | None = None,
            bound_cookie: str | None = None) -> Issued:
    """Rotate a refresh token, in this order: prove the token genuine (current, the one just
    replaced within the grace window, or an ancestor of the current one); only then count it against the
    session's refresh budget (kept in its secret document), so a stranger who knows a session id
    cannot spend it; refuse tokens
    of closed sessions; treat a genuine old token of a live session as a copy; and before
    anything is written, ask Firebase Auth whether the account may still hold sessions
    (account.py). Asked inside the transaction, so an Auth outage (503) rotates nothing: the
    client's retry with the same token is then no replay, however long the outage lasted.

    A session bound to a device key also needs a proof (`proof_input`, the request's DPoP
    header), judged only once the token is proven genuine (_proven): a made-up token stays
    `invalid_token`, so knowing a session id is not enough to set off the copied-token response.

    Only a refresh that fails is counted per client address (rate_limits.refresh_failures_from_address).
    The rotation's one update of the session document records its activity (documents.activity)."""
    with rate_limits.refresh_failures_from_address(client_ip):
        return _refresh(refresh_token, did, signed_device_id, proof_input, bound_cookie)


def _refresh(refresh_token: str | None, did: str | None, signed_device_id: str,
             proof_input: dpop.DpopInput | None, bound_cookie: str | None) -> Issued:
    # After an address known to be over its limit is refused: such a flood costs no signature checks.
    proof = proof_input.check() if proof_input is not None else dpop.ABSENT
    if not refresh_token:
        raise Refusal(Code.UNAUTHENTICATED, "a refresh token is required")
    presented = refresh_tokens.parse(refresh_token)
    if presented is None or not store.valid_id(presented.sid):
        raise Refusal(Code.INVALID_TOKEN, "refresh token is malformed")
    ring = keyring()
    if did is None:
        raise Refusal(Code.UNKNOWN_DEVICE, "this device is not recognised; sign in again")
    grace = settings().refresh_grace
    secret_ref = store.secret_ref(presented.sid)
    counted: list[str] = []
    ended: list[account.Ended | None] = []
    closed_for: list[str] = []  # the session was past a deadline and rotate closed it: why

    def count_and_ask_auth(data: dict[str, Any], uid: str, began: datetime) -> dict[str, Any]:
        """The session's refresh budget (429 past it; else the fields that count this refresh, to
        write with it), then Firebase Auth's word on the account, asked once per request (a
        retried transaction is not a new request)."""
        budget = rate_limits.refresh_budget(data)
        if not counted:
            counted.append(uid)
            ended.append(account.why_ended(uid, began))
        if ended[0] is not None:
            raise _Ended(uid, ended[0])
        return budget

    def rotate(transaction: firestore.Transaction) -> tuple[str, refresh_tokens.RefreshToken, int, str | None,
                                                            int | None]:
        closed_for.clear()  # a retried transaction decides again
        secret = secret_ref.get(transaction=transaction)
        data = secret.to_dict() or {}  # None when there is no such document
        expire_at = data.get("expireAt")
        if not data or (isinstance(expire_at, datetime) and expire_at <= clock.utcnow()):
            # Unused for IDLE_LIMIT: gone, whenever Firestore's TTL gets round to deleting it.
            raise Refusal(Code.INVALID_TOKEN, _INVALID)
        uid = data["uid"]
        session_ref = store.session_ref(uid, presented.sid)
        session = session_ref.get(transaction=transaction)
        if not session.exists or session.get("deviceId") != did:
            raise Refusal(Code.INVALID_TOKEN, _INVALID)
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
            raise Refusal(Code.INVALID_TOKEN, _INVALID)
        if active and (why := lifetimes.expired(doc)) is not None:
            # Past a deadline the session is over for every token of it: neither the current one nor
            # the grace window's retry brings it back, and an older copy no longer signs anyone out
            # (the session it would prove copied has ended). Closed here, in this transaction (a
            # racing refresh then finds it closed); a made-up token closes nothing.
            if not _genuine(presented, current_hash, generation, data.get("prevRefreshHash"), key):
                raise Refusal(Code.INVALID_TOKEN, _INVALID)
            transaction.update(session.reference, documents.revocation(lifetimes.CLOSED_AS[why], clock.utcnow()))
            closed_for.append(why)
            return uid, presented, 0, None, None
        jkt = doc.get("dpopJkt") if isinstance(doc.get("dpopJkt"), str) else None
        if presented.hash == current_hash and active:
            possession = _proven(data, doc, uid, presented.sid, proof, bound_cookie)
            budget = count_and_ask_auth(data, uid, began)
            now = clock.seconds()
            child = refresh_tokens.child(ring.current_hmac, presented)
            transaction.update(secret_ref, {
                "refreshHash": child.hash,
                "prevRefreshHash": current_hash,
                "refreshKid": ring.current_hmac_kid,
                "generation": child.generation,
                "rotatedAt": now,
                "expireAt": clock.utcnow() + IDLE_LIMIT,
                **possession,
                **budget,
            })
            # Activity: `lastActiveAt` and the idle deadline, when either is due (the one update of
            # the session a refresh makes, documents.activity).
            activity = documents.activity(doc, clock.utcnow())
            if activity:
                transaction.update(session_ref, activity)
            return uid, child, now, jkt, lifetimes.deadline({**doc, **activity})
        if presented.hash == data.get("prevRefreshHash") and active:
            rotated_at = int(data["rotatedAt"])
            child = refresh_tokens.child(key, presented)
            if clock.now() - rotated_at <= grace and child.hash == current_hash:
                possession = _proven(data, doc, uid, presented.sid, proof, bound_cookie)
                budget = count_and_ask_auth(data, uid, began)
                if possession or budget:
                    transaction.update(secret_ref, {**possession, **budget})
                # the same answer as the rotation it repeats (the deadline it wrote)
                return uid, child, rotated_at, jkt, lifetimes.deadline(doc)
            raise _Reused(uid, presented.sid, doc)
        if not _genuine(presented, current_hash, generation, None, key):
            raise Refusal(Code.INVALID_TOKEN, _INVALID)
        if active:
            raise _Reused(uid, presented.sid, doc)
        live = copied_token.live_replacement(uid, doc, transaction)
        if live is not None:
            raise _Reused(uid, live, doc)
        raise lifetimes.closed_refusal(doc) or Refusal(Code.SESSION_REVOKED, "this session has been closed")

    with _one_refresh_at_a_time(presented.sid):
        try:
            uid, child, issued_at, jkt, deadline = store.transact(rotate)
        except _Reused as reused:
            copied_token.respond(reused.uid, presented.sid, did, reused.live_sid, reused.presented,
                                 why=reused.why, code=reused.code)
        except _Ended as ended:
            _end_for_account(ended.uid, presented.sid, ended.ended)
    if closed_for:
        raise lifetimes.refusal(closed_for[0])
    access, expires = access_token(uid, presented.sid, did, issued_at, jkt, deadline)
    return Issued(uid, presented.sid, signed_device_id, access, expires, str(child))


def dbsc_refresh(refresh_token: str | None, sid: str, proof: str | None, client_ip: str | None) -> str:
    """The browser's DBSC refresh of session `sid`: 'ok' (issue a fresh bound cookie) or
    'challenge' (answer 403 with a challenge), or refuse.

    The request must carry the session's genuine refresh token (the cookie a copied cookie jar
    carries too); only then is a proof that the session's key did not sign a copied-credential
    incident (copied_token.py, as for a replayed token). Without a genuine token: `invalid_token`,
    closing nothing, so a stranger who knows a session id cannot sign the owner out."""
    if not store.valid_id(sid):
        raise Refusal(Code.INVALID_TOKEN, f"{dbsc.SESSION_ID_HEADER} must name a session")
    with rate_limits.refresh_failures_from_address(client_ip):
        return _dbsc_refresh(refresh_token, sid, proof)


def _dbsc_refresh(refresh_token: str | None, sid: str, proof: str | None) -> str:
    presented = refresh_tokens.parse(refresh_token or "")
    if presented is None or presented.sid != sid:
        raise Refusal(Code.INVALID_TOKEN, _INVALID)
    ring = keyring()
    secret = store.read(store.secret_ref(sid))
    if secret is None:
        raise Refusal(Code.INVALID_TOKEN, _INVALID)
    key = ring.hmac.get(secret.get("refreshKid") or "", ring.current_hmac)
    current, generation = str(secret.get("refreshHash")), int(secret.get("generation") or 0)
    if not _genuine(presented, current, generation, secret.get("prevRefreshHash"), key):
        raise Refusal(Code.INVALID_TOKEN, _INVALID)
    uid = str(secret["uid"])
    doc = store.read(store.session_ref(uid, sid))
    if doc is None or doc.get("status") != ACTIVE:
        raise lifetimes.closed_refusal(doc or {}) or Refusal(Code.SESSION_REVOKED, "this session has been closed")
    if (why := lifetimes.expired(doc)) is not None:  # no bound cookie for a session that is over
        closing.revoke_session(uid, sid, lifetimes.CLOSED_AS[why])
        raise lifetimes.refusal(why)
    verdict = dbsc.verify_refresh(doc, sid, proof)
    if verdict == "wrong":
        copied_token.respond(uid, sid, str(doc.get("deviceId")), sid, doc, code=Code.DEVICE_PROOF_FAILED,
                             why="DBSC refresh with a proof its browser key did not sign")
    return verdict


def _genuine(presented: refresh_tokens.RefreshToken, current: str, generation: int, previous: object,
             key: bytes) -> bool:
    """Whether `presented` is a token this session was really issued: its current one (with its own
    generation), the one before (`previous`, None where that does not count), or an ancestor."""
    return (presented.hash == current and presented.generation == generation) \
        or (previous is not None and presented.hash == previous) \
        or (presented.generation < generation and refresh_tokens.is_ancestor(key, presented, generation, current))


def _end_for_account(uid: str, sid: str, ended: account.Ended) -> NoReturn:
    """End the sessions Firebase Auth no longer stands behind, this one included, and refuse."""
    closing.revoke_where(uid, ended.reason, keep_sid=None, predating=ended.before)
    closing.revoke_session(uid, sid, ended.reason)  # in case the query missed it (just replaced, say)
    raise Refusal(Code.SESSION_REVOKED, f"this session has been closed ({ended.reason})", reason=ended.reason)


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
                 why: str = "refresh token used after rotation", code: Code = Code.TOKEN_REUSED) -> None:
        self.uid = uid
        self.live_sid = live_sid
        self.presented = presented
        self.why = why
        self.code = code


def _proven(data: dict[str, Any], doc: dict[str, Any], uid: str, sid: str, proof: dpop.Checked,
            bound_cookie: str | None = None) -> dict[str, Any]:
    """For a genuine refresh token of an active session: the fields to write for its proof of
    possession (none for a session not bound to a key), or refuse.

    No proof, or one no key of this session signed, means the token was copied off the device:
    a copied-credential incident (copied_token.py), exactly like a replayed token. A proof the key
    did sign but that is stale, for another URL, without our nonce or replayed is the device's
    own (or a replay of what it sent): refused with its own code, and nobody is signed out.
    A session registered with DBSC needs its fresh bound cookie (dbsc.require_cookie)."""
    dbsc.require_cookie(doc, sid, bound_cookie)
    jkt = doc.get("dpopJkt")
    if not isinstance(jkt, str):
        return {}
    if not same(proof.jkt, jkt):
        why = "refresh of a device-bound session " + ("with a proof from another key" if proof.present
                                                      else "without a proof of its key")
        raise _Reused(uid, sid, doc, why=why, code=Code.DEVICE_PROOF_FAILED)
    if proof.fault is not None:
        raise proof.fault
    return {"dpopSeen": dpop.remember(data.get("dpopSeen"), proof)}


class _Ended(Exception):
    """Firebase Auth no longer stands behind the account's sessions (account.py)."""

    def __init__(self, uid: str, ended: account.Ended) -> None:
        self.uid = uid
        self.ended = ended
