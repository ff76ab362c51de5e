"""The answer to "Signed in on <device>. Was that you?", given with the action token its push
carried (tokens/action.py).

Single use is a create-if-absent of `usedActionTokens/{jti}`, done before acting, so two
concurrent answers with one token cannot both act; if the action then fails, the claim is
withdrawn so the user's retry works instead of meeting `already_answered`.

Decisions:
- the alerted session no longer active -> 401 `session_revoked` (the token was issued to that
  session; once it is closed its holder is no longer trusted to speak for the user);
- "no" -> the new session and whatever its device opened since are closed, and the device stays
  untrusted (`reject`); `closedSessionIds` says what this answer closed, and is empty when they
  were closed already (another device may have answered first): 200 either way, since the
  user's intent holds. `advice: change_password` tells the app to offer it;
- "yes" about a new session that is already closed -> 409 `session_closed` (nothing to confirm);
- "yes" twice through different devices' tokens -> 200, keeping the first `confirmedAt`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from .. import clock, closing, documents, store
from ..documents import ACTIVE, REJECTED_BY_USER, REVOKED
from ..errors import Code, Refusal
from ..fresh_sessions import require_may_act
from ..tokens import action

USED_TOKENS = "usedActionTokens"
# What the owner's device is told after a "No": closing sessions cannot stop someone who knows
# the password from signing in again; changing it ends every session that began before (account.py).
CHANGE_PASSWORD = "change_password"


def respond(action_token: Any, answer: Any) -> dict[str, Any]:
    """Apply the user's answer; returns `{"answer", "sessionId", "status"}` about the new session.

    For the HTTP edge: body `{"actionToken": ..., "answer": "yes"|"no"}` -> `respond(...)`, 200.
    Checks run cheapest first and nothing is used up by a request that fails them: 400 for a
    missing token or an answer other than yes/no, 401 for a bad or expired token or a closed
    alerted session, then 409 if the token was used before.
    """
    if not isinstance(action_token, str) or not action_token:
        raise Refusal(Code.INVALID_REQUEST, "actionToken is required")
    if answer not in ("yes", "no"):
        raise Refusal(Code.INVALID_REQUEST, 'answer must be "yes" or "no"')
    claims = action.verify(action_token)
    uid, alerted_sid, new_sid = claims["sub"], claims["sid"], claims["nsid"]
    alerted = store.read(store.session_ref(uid, alerted_sid))
    if alerted is None or alerted.get("status") != ACTIVE:
        raise Refusal(Code.SESSION_REVOKED, "the session this alert was sent to has been closed")
    # A fresh session (an intruder's, perhaps) cannot say "No" about the owner's next login, nor
    # lift the owner's "No" with a "Yes": answering speaks for the account like closing does.
    require_may_act(alerted, "answer alerts about other sessions")
    claim = _claim(claims["jti"], uid, answer, int(claims["exp"]))
    try:
        if answer == "no":
            closed = reject(uid, new_sid) if store.valid_id(new_sid) else []
            return {"answer": answer, "sessionId": new_sid, "status": REVOKED, "closedSessionIds": closed,
                    "advice": CHANGE_PASSWORD}
        if not _confirm(uid, new_sid):
            raise Refusal(Code.SESSION_CLOSED, "the new session has already been closed")
        return {"answer": answer, "sessionId": new_sid, "status": ACTIVE}
    except Exception as failure:
        if not (isinstance(failure, Refusal) and failure.code is Code.SESSION_CLOSED):
            _withdraw(claim)  # no answer was given: the token may be used again
        raise  # session_closed is a definite answer: the token stays used


def reject(uid: str, sid: str) -> list[str]:
    """The user's "No, that wasn't me" about session `sid`: close it and whatever its device
    opened since (an intruder signs in again on the device before the owner answers), and keep
    that device id untrusted for the account. Returns the sessions this call closed; empty when
    they were already closed. One transaction, so no login of the device slips in between."""
    ref = store.session_ref(uid, sid)

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
        now = clock.utcnow()
        closed = [target for target, found in targets.items() if found.get("status") == ACTIVE]
        for target in closed:
            transaction.update(store.session_ref(uid, target), documents.revocation(REJECTED_BY_USER, now, sid))
        if device_ref is not None:
            transaction.set(device_ref, {"untrustedAt": now}, merge=True)
        closing.mark_reauthentication(transaction, uid, REJECTED_BY_USER, now)
        return closed

    return store.transact(close)


def _claim(jti: str, uid: str, answer: str, exp: int) -> firestore.DocumentReference:
    ref = store.db().collection(USED_TOKENS).document(jti)
    try:
        ref.create({
            "uid": uid,
            "answer": answer,
            "usedAt": clock.utcnow(),
            # kept until the token could no longer verify anyway; then the TTL policy drops it
            "expireAt": datetime.fromtimestamp(exp, UTC) + timedelta(seconds=action.LEEWAY_SECONDS + 60),
        })
    except core_exceptions.AlreadyExists:
        raise Refusal(Code.ALREADY_ANSWERED, "this alert has already been answered") from None
    return ref


def _confirm(uid: str, new_sid: str) -> bool:
    """Set confirmedAt unless the session is closed; False if it is. Keeps an earlier confirmation.
    A "yes" also lifts an earlier "No" about the device: the owner has vouched for it."""
    def trust_device(transaction: firestore.Transaction, doc: dict[str, Any], _: dict[str, Any]) -> None:
        did = doc.get("deviceId")
        if isinstance(did, str) and store.valid_id(did):
            transaction.set(store.device_ref(uid, did), {"untrustedAt": None}, merge=True)

    return store.update_if(
        store.session_ref(uid, new_sid),
        lambda doc: None if doc.get("status") != ACTIVE else {} if doc.get("confirmedAt") is not None
        else {"confirmedAt": clock.utcnow()},
        then=trust_device,
    )


def _withdraw(claim: firestore.DocumentReference) -> None:
    """Best effort: if Firestore is down this fails too, and the token stays used."""
    try:
        claim.delete()
    except core_exceptions.GoogleAPICallError:
        pass
