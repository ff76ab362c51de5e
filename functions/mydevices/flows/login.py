"""Login: a Firebase sign-in opens one session for (user, device), in this order.

1. Abuse limits: per address before the ID token is even checked (a flood of made-up tokens),
   then per (user, address) and per Firebase sign-in (rate_limits.py).
2. Who: the Firebase ID token, and Firebase Auth's own word on the account (tokens/sign_in.py).
3. Where: GeoIP of the client's address, for the list and the alert text.
4. In one transaction: the owner's last word (a closure since the sign-in needs a fresh one,
   closing.py), the device cap, the device's previous session (replaced: one active session per
   user and device), and whether the login is news for the user's other devices (`alertReason`:
   the Firestore trigger sends the "Was that you?" push when it is set).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from google.cloud import firestore

from .. import account, clock, closing, dbsc, documents, dpop, geo, lifetimes, queries, rate_limits, store
from ..bodies import DeviceInfo, PushTarget
from ..config import settings
from ..documents import ACTIVE, REPLACED, SELF_ENDED
from ..errors import Code, Refusal
from ..tokens import access, device_id, firebase, refresh, sign_in
from ..tokens.keys import keyring
from ..views import device_session
from .issued import Issued, access_token

CAP_SLACK = 10  # below cap - CAP_SLACK active sessions, concurrent logins cannot pass the cap


def login(bearer: Callable[[], str | None], client_ip: str | None, did: str, signed_device_id: str, device: DeviceInfo,
          push: PushTarget | None, *, firebase_token: bool = True, holds: str | None = None,
          bound_cookie: str | None = None, device_key: dict[str, str] | None = None,
          lifetime: int | None = None) -> Issued:
    """Open a session for (user, device), replacing the device's previous one.

    `holds` is the access token the request carried besides the ID token (a web client's cookie):
    with it a re-login proves it is the device itself coming back (see _alert_reason), unless
    that session is bound to a key: then only a fresh DBSC `bound_cookie` proves it (_proves_session).
    `device_key` (a public JWK, dpop.parse_public_jwk) binds the session to that key: its every
    refresh must then carry a DPoP proof the key signed (flows/refresh.py). `lifetime` (seconds) makes
    this session's absolute lifetime shorter than the platform's (lifetimes.py)."""
    rate_limits.login_from_address(client_ip)
    who = sign_in.verify_id_token(bearer() or "")  # after the per-address limit: a flood of made-up tokens is cheap
    rate_limits.login_of_user(who.uid, who.auth_time, client_ip)
    location = geo.locate(client_ip, settings().geoip_db)
    return _open(who, did, signed_device_id, device, push, location, firebase_token=firebase_token, holds=holds,
                 bound_cookie=bound_cookie, device_key=device_key, lifetime=lifetime)


def _open(who: sign_in.Identity, did: str, signed_device_id: str, device: DeviceInfo, push: PushTarget | None,
          location: str | None, *, firebase_token: bool, holds: str | None, bound_cookie: str | None,
          device_key: dict[str, str] | None, lifetime: int | None) -> Issued:
    jkt = dpop.thumbprint(device_key) if device_key is not None else None
    uid = who.uid
    sid = device_id.new_device_id()  # same shape: 128 random bits
    first = refresh.first(sid)
    now = clock.utcnow()
    session_doc = documents.session(uid, did, device, location, now, jkt=jkt)
    secret_doc = documents.secret(uid, first.hash, keyring().current_hmac_kid, now, push)
    # Before writing: signing may fail (503), and nothing may be half-written then.
    custom_token = firebase.custom_token(uid, sid, did, who.auth_time) if firebase_token else None
    device_ref = store.device_ref(uid, did)
    user_ref = store.user_ref(uid)

    # Far below the cap, it is not counted in the transaction: that count reads the whole range of
    # the user's sessions, so every concurrent login of the user would collide with it.
    active = _active_count(queries.active_sessions(uid))
    near_cap = active + CAP_SLACK >= settings().max_active_sessions
    if near_cap and who.credentials_valid_after is not None:
        # After a password reset, sessions of lost devices that never refresh must not keep the
        # owner's new device out: end those that began before it now, not at their next refresh.
        closing.revoke_where(uid, account.CREDENTIALS_REVOKED, keep_sid=None, predating=who.credentials_valid_after)
    if active >= settings().max_active_sessions:
        # At the cap, sessions that expired but nobody closed (no call has seen them since) still
        # count: close them now, as expired, and let the transaction count again. Only on this
        # rare path: a login below the cap costs nothing more.
        closing.close_expired(uid)

    def create(transaction: firestore.Transaction) -> None:
        user = user_ref.get(transaction=transaction)
        user_doc = user.to_dict() if user.exists else None
        _require_fresh_sign_in(who, user_doc)
        # The user's own auto-close choice comes with the read above: no read of its own.
        session_doc.update(lifetimes.at_login(device.device_type, now, who.auth_time,
                                              (user_doc or {}).get("autoCloseDays"), lifetime))
        pointer = device_ref.get(transaction=transaction)
        pointer_doc = pointer.to_dict() if pointer.exists else None
        previous = pointer_doc.get("sessionId") if pointer_doc else None
        previous_ref = store.session_ref(uid, previous) if previous else None
        old = previous_ref.get(transaction=transaction) if previous_ref is not None else None
        old_doc = old.to_dict() if old is not None and old.exists else None
        replacing = old_doc is not None and old_doc.get("status") == ACTIVE
        if not replacing and near_cap:
            _within_device_cap(transaction, uid)  # reads: before any write of this transaction
        proven = _proves_session(holds, bound_cookie, uid, previous, did, old_doc or {})
        session_doc["alertReason"] = _alert_reason(pointer_doc, old_doc, proven)
        if previous_ref is not None and replacing:
            # An expired one is over, not replaced: its old tokens then prove no copy in use.
            ended = lifetimes.expired(old_doc or {}, now)
            transaction.update(previous_ref, documents.revocation(REPLACED, now, replacedBy=sid) if ended is None
                               else documents.revocation(lifetimes.CLOSED_AS[ended], now))
        transaction.set(store.session_ref(uid, sid), session_doc)
        transaction.set(store.secret_ref(sid), secret_doc)
        transaction.set(device_ref, {"sessionId": sid, "updatedAt": now}, merge=True)

    store.transact(create)
    token, expires = access_token(uid, sid, did, int(now.timestamp()), jkt, lifetimes.deadline(session_doc))
    view = device_session(sid, session_doc, sid)
    return Issued(uid, sid, signed_device_id, token, expires, str(first), view, firebase_custom_token=custom_token)


def _require_fresh_sign_in(who: sign_in.Identity, user: dict[str, Any] | None) -> None:
    """After a closure, only a sign-in made after it can open a session (closing.py)."""
    closed_at = user.get("reauthAfter") if user else None
    # auth_time has whole seconds: a sign-in in the closure's own second might have come before
    # it, so it does not count (the user signs in again a second later).
    if isinstance(closed_at, datetime) and who.auth_time <= closed_at.timestamp():
        raise Refusal(Code.REAUTHENTICATION_REQUIRED,
                      "sign in again: a session of this account was closed since your last sign-in")


def _alert_reason(pointer: dict[str, Any] | None, previous: dict[str, Any] | None, proven: bool) -> str | None:
    """Why this login is news for the user's other devices, or None when it is the device coming
    back: its previous session was ended by the device itself, or is still active and the login
    proves it holds it (`proven`: its access token came along, and for a session bound to a key
    the key's word, _proves_session), and the user never rejected the device. A device id alone proves
    nothing: it is a copy away from a silent takeover of the device's session. A session that
    expired away (TTL) says nothing either: news."""
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


def _proves_session(token: str | None, bound_cookie: str | None, uid: str, sid: str | None, did: str,
                    session: dict[str, Any]) -> bool:
    """Whether the login proves it holds session `sid` (its document `session`) of this device:
    `token` is our access token for it on this device (expired or not), and, for a session bound
    to a key, the key's word too. A stale copy of the cookie jar carries the access cookie, so
    for a bound session that cookie alone would let a thief who knows the password replace the
    session unnoticed (and bind the new one to its own key). A DBSC-bound session is proven by its
    fresh bound cookie besides (only the browser with the key keeps one fresh); a DPoP-bound one by
    nothing a login carries (it takes no proof of the key), so its re-login is always news."""
    if not token or sid is None:
        return False
    conf = settings()
    try:
        claims = access.verify(keyring(), token, issuer=conf.issuer, audience=conf.audience, expired_ok=True)
    except Refusal:
        return False
    if (claims.uid, claims.sid, claims.did) != (uid, sid, did):
        return False
    if session.get("dpopJkt") is not None:
        return False
    return session.get("dbscJwk") is None or dbsc.cookie_valid(sid, bound_cookie)


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
    count = _active_count(queries.active_sessions(uid), transaction)
    if count >= cap:
        raise Refusal(Code.DEVICE_LIMIT_REACHED, f"this account is signed in on {count} devices, the most allowed; "
                      "close a session on another device first")
