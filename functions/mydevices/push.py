"""The push function: one session event in, the right pushes out, each at most once.

- `session_revoked` -> a data-only `force_logout` to the revoked session's device, woken even
  when the app is in the background (Android high priority, APNs background push). Two reasons
  send nothing: `logout` (the device ended its own session) and `replaced` (a re-login on the
  same device: that device already holds the new session, often with the same push token, and
  a force_logout would sign it out of the session it just opened).
- `new_login` -> to every other active session with a push token that was created before the
  new one, a visible "Was that you?" alert carrying an action token for `alerts.respond`.
  Nothing is sent if the new session is no longer active by the time the event is handled
  (already rejected or replaced).

Delivery is at least once; event_claims makes the effects once per recipient. A transient FCM
failure raises `RetryLater` after recording who was served, so Pub/Sub redelivers and only the
rest are tried again. Firestore errors propagate for the same reason. A malformed message is
logged and acknowledged: redelivering it cannot make it well-formed.

Apps should compare a force_logout's `sessionId` with their current session and ignore it if it
is about an older one (the device may have signed in again meanwhile).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from firebase_admin import messaging
from google.cloud import firestore

from . import alerts, event_claims, fcm, store
from .session_events import NEW_LOGIN, SESSION_REVOKED

log = logging.getLogger(__name__)

SILENT_REASONS = frozenset({"logout", "replaced"})
READ_CHUNK = 300  # secrets read per get_all call


class RetryLater(Exception):
    """Some pushes failed transiently; failing the function makes Pub/Sub deliver again."""


def parse(data: Any) -> tuple[str, dict[str, Any]] | None:
    """(event id, event) from a messagePublished CloudEvent's data, or None if malformed."""
    try:
        message = data["message"]
        event = json.loads(base64.b64decode(message.get("data") or "", validate=True))
        attributes = message.get("attributes") or {}
        event_id = attributes.get("eventId") or message.get("messageId") or message.get("message_id")
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        return None
    if event.get("type") not in (NEW_LOGIN, SESSION_REVOKED):
        return None
    if not all(isinstance(event.get(name), str) and event[name] for name in ("uid", "sessionId")):
        return None
    return event_id, event


def force_logout(token: str, session_id: str, reason: str) -> messaging.Message:
    return fcm.message(
        token,
        data={"action": "force_logout", "reason": reason, "sessionId": session_id},
        android=messaging.AndroidConfig(priority="high"),
        apns=messaging.APNSConfig(
            headers={"apns-push-type": "background", "apns-priority": "5"},
            payload=messaging.APNSPayload(aps=messaging.Aps(content_available=True)),
        ),
    )


MAX_ALERT_NAME = 40  # characters of the device name shown in an alert
# Quotation marks of every script: a name holding one could close our quote and write the rest
# of the sentence itself.
QUOTES = frozenset("\"'`\u00ab\u00bb\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2039\u203a"
                   "\u2e42\u300c\u300d\u300e\u300f\u301d\u301e\u301f\uff02\uff07\uff62\uff63")


def alert_name(device_name: str | None) -> str | None:
    """The device name as an alert may show it. The name is the new device's own claim, so it
    must not be able to pass for our words: no control or format characters (bidi overrides and
    isolates, zero-width ones: they reorder or hide what the user reads), no quotation marks,
    whitespace collapsed, and bounded. None when nothing printable is left."""
    kept = []
    for char in device_name or "":
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn") and char not in QUOTES:
            kept.append(char)
    name = " ".join("".join(kept).split())
    if len(name) > MAX_ALERT_NAME:
        name = name[:MAX_ALERT_NAME - 1].rstrip() + "\u2026"
    return name or None


def alert_text(device_name: str | None, location: str | None) -> str:
    """The place is always said, and only the server's lookup says it: a name like
    "iPhone 15 from London, United Kingdom" then reads as what it is, a quoted claim."""
    name = alert_name(device_name)
    device = f"\u201c{name}\u201d" if name else "an unnamed device"
    place = location if location else "an unknown location"
    return f"Signed in on {device} from {place}. Was that you?"


def new_login_alert(token: str, new_session_id: str, action_token: str, text: str) -> messaging.Message:
    return fcm.message(
        token,
        notification=messaging.Notification(title="New sign-in", body=text),
        data={"action": "new_login_alert", "newSessionId": new_session_id, "actionToken": action_token},
        android=messaging.AndroidConfig(priority="high"),
    )


def _push_token(secret: Mapping[str, Any], uid: str) -> str | None:
    token = secret.get("pushToken")
    if secret.get("uid") != uid or not isinstance(token, str) or not token:
        return None
    return token if secret.get("pushProvider") in (None, "fcm") else None


def _revoked_targets(event: dict[str, Any]) -> list[fcm.Outgoing]:
    reason = str(event.get("reason") or "unknown")
    if reason in SILENT_REASONS:
        return []
    sid = event["sessionId"]
    secret = store.read(store.secret_ref(sid))
    token = _push_token(secret, event["uid"]) if secret is not None else None
    return [fcm.Outgoing(sid, token, force_logout(token, sid, reason))] if token else []


def _earlier(candidate: Any, new_created: Any) -> bool:
    """Only sessions that existed before the new one are asked about it. Events can be handled
    late: without this, a login made after the new one (an intruder's, say) would be sent an
    action token able to close the user's own new session."""
    if not isinstance(candidate, datetime) or not isinstance(new_created, datetime):
        return False
    return candidate < new_created


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _new_login_targets(event: dict[str, Any]) -> list[fcm.Outgoing]:
    uid, new_sid = event["uid"], event["sessionId"]
    new_session = store.read(store.session_ref(uid, new_sid))
    if new_session is None or new_session.get("status") != store.ACTIVE:
        return []
    created = new_session.get("createdAt")
    others = [
        snap.id for snap in store.active_sessions_of(uid).stream()
        if snap.id != new_sid and _earlier((snap.to_dict() or {}).get("createdAt"), created)
    ]
    text = alert_text(event.get("deviceName"), event.get("location"))
    targets = []
    for chunk in _chunks(others, READ_CHUNK):
        for secret in store.db().get_all([store.secret_ref(sid) for sid in chunk]):
            token = _push_token(secret.to_dict() or {}, uid) if secret.exists else None
            if token:
                action_token = alerts.issue(uid, secret.id, new_sid)
                targets.append(fcm.Outgoing(secret.id, token, new_login_alert(token, new_sid, action_token, text)))
    return targets


def targets(event: dict[str, Any]) -> list[fcm.Outgoing]:
    """Who gets what for this event, read fresh from Firestore at handling time."""
    if event["type"] == SESSION_REVOKED:
        return _revoked_targets(event)
    return _new_login_targets(event)


def forget_token(sid: str, token: str) -> bool:
    """Drop a dead push token, unless the app has meanwhile registered a different one."""
    ref = store.secret_ref(sid)

    @firestore.transactional
    def drop(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists or snapshot.get("pushToken") != token:
            return False
        transaction.update(ref, {"pushToken": None, "pushProvider": None})
        return True

    return bool(drop(store.db().transaction()))


def handle(data: Any) -> dict[str, int]:
    """Handle one messagePublished payload; returns counts for the log (and tests)."""
    parsed = parse(data)
    if parsed is None:
        log.error("dropping a malformed session event: %.500r", data)
        return {"malformed": 1}
    event_id, event = parsed
    claim = event_claims.claim(event_id)
    if claim is None:
        log.info("event %s was handled already; nothing to send", event_id)
        return {"duplicate": 1}
    try:
        pending = [item for item in targets(event) if item.key not in claim.already_sent]
        outcome = fcm.send(pending)
        served = [item.key for item in outcome.sent]
        if outcome.dead or outcome.transient:
            event_claims.record_sent(claim, served)
        for item in outcome.dead:
            removed = forget_token(item.key, item.token)
            log.info("push token of session %s is dead (%s)", item.key, "removed" if removed else "already replaced")
        if outcome.transient:
            first = outcome.transient[0][1]
            raise RetryLater(f"{len(outcome.transient)} of {len(pending)} pushes for event {event_id} failed "
                             f"transiently ({type(first).__name__}: {first})")
        event_claims.finish(claim, served)
    except Exception:
        event_claims.release(claim)
        raise
    counts = {"sent": len(outcome.sent), "dead": len(outcome.dead), "failed": len(outcome.failed),
              "servedEarlier": len(claim.already_sent)}
    log.info("%s %s for session %s: %s", event["type"], event_id, event["sessionId"], counts)
    return counts
