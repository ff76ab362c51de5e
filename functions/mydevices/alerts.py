"""Answers to "Signed in on <device>. Was that you?": action tokens and what each answer does.

An action token is a capability carried in a push: whoever holds it may answer once, for one
user, about one new session, and only while the session it was sent to is still active. It is
a JWT (HS256, algorithm pinned) keyed by a purpose-bound derivation of the keyring's HMAC key,
so it can never pass as an access token or a device id, and its `kid` lets keys rotate.

Single use is a create-if-absent of `usedActionTokens/{jti}`, done before acting, so two
concurrent answers with one token cannot both act; if the action then fails, the claim is
withdrawn so the user's retry works instead of meeting `already_answered`.

Decisions:
- the alerted session no longer active -> 401 `session_revoked` (the token was issued to that
  session; once it is closed its holder is no longer trusted to speak for the user);
- "no" -> the new session and whatever its device opened since are closed, and the device stays
  untrusted (sessions.reject); `closedSessionIds` says what this answer closed, and is empty
  when they were closed already (another device may have answered first): 200 either way,
  since the user's intent holds. `advice: change_password` tells the app to offer it;
- "yes" about a new session that is already closed -> 409 `session_closed` (nothing to confirm);
- "yes" twice through different devices' tokens -> 200, keeping the first `confirmedAt`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from . import alert_copy, sessions, store
from .config import settings
from .errors import Code, Conflict, InvalidRequest, Unauthenticated
from .keys import keyring
from .model import iso

ALGORITHM = "HS256"
AUDIENCE = "mydevices-alert"
USED_TOKENS = "usedActionTokens"
MAX_TOKEN_LENGTH = 2048
LEEWAY_SECONDS = 30
# What the owner's device is told after a "No": closing sessions cannot stop someone who knows
# the password from signing in again; changing it ends every session that began before (account.py).
CHANGE_PASSWORD = "change_password"
_PURPOSE = b"mydevices/action-token/v1"


def _key(secret: bytes) -> bytes:
    """A key for this purpose only, so a MAC made here is useless anywhere else the key is used."""
    return hmac.new(secret, _PURPOSE, hashlib.sha256).digest()


def issue(uid: str, alerted_sid: str, new_sid: str, *, now: int | None = None, jti: str | None = None) -> str:
    """The token that lets the holder of session `alerted_sid` answer about `new_sid`."""
    ring = keyring()
    conf = settings()
    issued_at = int(time.time()) if now is None else now
    payload = {
        "iss": conf.issuer,
        "aud": AUDIENCE,
        "sub": uid,
        "sid": alerted_sid,
        "nsid": new_sid,
        "jti": jti or secrets.token_urlsafe(16),
        "iat": issued_at,
        "exp": issued_at + conf.action_token_ttl,
    }
    return jwt.encode(payload, _key(ring.current_hmac), algorithm=ALGORITHM, headers={"kid": ring.current_hmac_kid})


def earlier(candidate: Any, new_created: Any) -> bool:
    """Only sessions that existed before the new one are asked about it. Events can be handled
    late, and the pending list is read at any time: without this, a login made after the new one
    (an intruder's, say) would be handed an action token able to close the user's own new session."""
    if not isinstance(candidate, datetime) or not isinstance(new_created, datetime):
        return False
    return candidate < new_created


def pair_token(uid: str, alerted_sid: str, new_sid: str, new_created: Any) -> tuple[str, int]:
    """The one action token of (alerted session, new session), and when it expires.

    Issued at the new session's creation with a jti derived from the three ids, so the push and
    every read of the pending list hand out the same token (byte for byte while the HMAC key
    stays) and one answer uses them all up: a page polling every 2 s holds no more answers than
    one push would. The jti need not be secret: only the server writes `usedActionTokens`.
    """
    began = int(new_created.timestamp()) if isinstance(new_created, datetime) else int(time.time())
    digest = hashlib.sha256(f"{uid}\x00{alerted_sid}\x00{new_sid}".encode()).digest()
    jti = base64.urlsafe_b64encode(digest[:18]).decode()
    return issue(uid, alerted_sid, new_sid, now=began, jti=jti), began + settings().action_token_ttl


@store.guarded
def pending(caller: sessions.Caller) -> dict[str, Any]:
    """`GET /v1/alerts`: the "Was that you?" questions the caller's session may still answer.

    A new session is pending for the caller while it is active, was news when it logged in
    (`alertReason` set: the same rule that sends the push), is not confirmed, was created after
    the caller's own session (`earlier`) and its token has not expired. Answered ones leave by
    themselves: "no" closes the session, "yes" confirms it. One query of the active sessions
    (n reads), as for the list.
    """
    mine = caller.session.get("createdAt")
    now = int(time.time())
    found = []
    for snap in store.active_sessions_of(caller.uid).stream():
        doc = snap.to_dict() or {}
        created = doc.get("createdAt")
        news = doc.get("alertReason") if "alertReason" in doc else "new_device"
        if snap.id == caller.sid or not news or doc.get("confirmedAt") is not None:
            continue
        if not isinstance(created, datetime) or not earlier(mine, created) or not store.valid_id(snap.id):
            continue
        token, expires_at = pair_token(caller.uid, caller.sid, snap.id, created)
        if expires_at <= now:
            continue
        copy = alert_copy.Copy.of(doc.get("deviceName"), doc.get("location"))
        found.append((int(created.timestamp()), {
            "newSessionId": snap.id, "deviceName": copy.name, "deviceType": doc.get("deviceType"),
            "location": copy.location, **copy.as_json(), "createdAt": iso(created),
            "expiresAt": iso(datetime.fromtimestamp(expires_at, UTC)), "actionToken": token,
        }))
    found.sort(key=lambda item: item[0], reverse=True)
    return {"alerts": [view for _, view in found]}


def verify(token: Any) -> dict[str, Any]:
    """The token's claims, or 401 `invalid_token` / `token_expired`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("action token is missing or malformed", code=Code.INVALID_TOKEN)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.InvalidTokenError, RecursionError):  # RecursionError: a header nested too deeply
        raise Unauthenticated("action token is malformed", code=Code.INVALID_TOKEN) from None
    secret = keyring().hmac.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise Unauthenticated("action token was signed with an unknown key", code=Code.INVALID_TOKEN)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _key(secret),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=settings().issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "sub", "sid", "nsid", "jti", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("action token has expired", code=Code.TOKEN_EXPIRED) from None
    except (jwt.InvalidTokenError, RecursionError):
        raise Unauthenticated("action token is invalid", code=Code.INVALID_TOKEN) from None
    if not all(isinstance(claims[name], str) and claims[name] for name in ("sub", "sid", "nsid", "jti")):
        raise Unauthenticated("action token is invalid", code=Code.INVALID_TOKEN)
    return claims


def _claim(jti: str, uid: str, answer: str, exp: int) -> firestore.DocumentReference:
    ref = store.db().collection(USED_TOKENS).document(jti)
    try:
        ref.create({
            "uid": uid,
            "answer": answer,
            "usedAt": firestore.SERVER_TIMESTAMP,
            # kept until the token could no longer verify anyway; then the TTL policy drops it
            "expireAt": datetime.fromtimestamp(exp, UTC) + timedelta(seconds=LEEWAY_SECONDS + 60),
        })
    except core_exceptions.AlreadyExists:
        raise Conflict("this alert has already been answered", code=Code.ALREADY_ANSWERED) from None
    return ref


def _confirm(uid: str, new_sid: str) -> bool:
    """Set confirmedAt unless the session is closed; False if it is. Keeps an earlier confirmation.
    A "yes" also lifts an earlier "No" about the device: the owner has vouched for it."""
    ref = store.session_ref(uid, new_sid)

    @firestore.transactional
    def confirm(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists or snapshot.get("status") != store.ACTIVE:
            return False
        if snapshot.get("confirmedAt") is None:
            transaction.update(ref, {"confirmedAt": datetime.now(UTC)})
        did = snapshot.get("deviceId")
        if isinstance(did, str) and store.valid_id(did):
            transaction.set(store.device_ref(uid, did), {"untrustedAt": None}, merge=True)
        return True

    return bool(confirm(store.db().transaction()))


@store.guarded
def respond(action_token: Any, answer: Any) -> dict[str, Any]:
    """Apply the user's answer; returns `{"answer", "sessionId", "status"}` about the new session.

    For the HTTP edge: body `{"actionToken": ..., "answer": "yes"|"no"}` -> `respond(...)`, 200.
    Checks run cheapest first and nothing is used up by a request that fails them: 400 for a
    missing token or an answer other than yes/no, 401 for a bad or expired token or a closed
    alerted session, then 409 if the token was used before.
    """
    if not isinstance(action_token, str) or not action_token:
        raise InvalidRequest("actionToken is required")
    if answer not in ("yes", "no"):
        raise InvalidRequest('answer must be "yes" or "no"')
    claims = verify(action_token)
    uid, alerted_sid, new_sid = claims["sub"], claims["sid"], claims["nsid"]
    alerted = store.read(store.session_ref(uid, alerted_sid))
    if alerted is None or alerted.get("status") != store.ACTIVE:
        raise Unauthenticated("the session this alert was sent to has been closed", code=Code.SESSION_REVOKED)
    # A fresh session (an intruder's, perhaps) cannot say "No" about the owner's next login, nor
    # lift the owner's "No" with a "Yes": answering speaks for the account like closing does.
    sessions.require_settled(alerted, "answer alerts about other sessions")
    claim = _claim(claims["jti"], uid, answer, int(claims["exp"]))
    try:
        if answer == "no":
            closed = sessions.reject(uid, new_sid) if store.valid_id(new_sid) else []
            return {"answer": answer, "sessionId": new_sid, "status": store.REVOKED, "closedSessionIds": closed,
                    "advice": CHANGE_PASSWORD}
        if not _confirm(uid, new_sid):
            raise Conflict("the new session has already been closed", code=Code.SESSION_CLOSED)
        return {"answer": answer, "sessionId": new_sid, "status": store.ACTIVE}
    except Conflict:
        raise  # a definite answer: the token stays used
    except Exception:
        _withdraw(claim)
        raise


def _withdraw(claim: firestore.DocumentReference) -> None:
    """Best effort: if Firestore is down this fails too, and the token stays used."""
    try:
        claim.delete()
    except core_exceptions.GoogleAPICallError:
        pass
