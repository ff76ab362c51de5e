"""The push function: one session event in, the right pushes out, each at most once.

- `session_revoked` -> a data-only `force_logout` to the revoked session's device, woken even
  when the app is in the background (Android high priority, APNs background push). Two reasons
  send nothing: `logout` (the device ended its own session) and `replaced` (a re-login on the
  same device: that device already holds the new session, often with the same push token, and
  a force_logout would sign it out of the session it just opened).
- `new_login` -> to every other active session with a push token that was created before the
  new one, a visible "Was that you?" alert carrying an action token for `flows/alert_answer.py`
  (`new_login_alert`: an APNs alert with the "No, close this session" category, an Android data
  message the app turns into a notification with both actions; docs/push-messages.md).
  Nothing is sent if the new session is no longer active by the time the event is handled
  (already rejected or replaced). When no push reaches anyone (or always, as configured), the
  same question goes by email (alert_email.py), recorded in the claim as one more served target.

Delivery is at least once; claims.py makes the effects once per recipient. A transient FCM
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
from collections.abc import Iterable, Mapping
from typing import Any

from firebase_admin import messaging

from .. import clock, queries, store
from ..documents import ACTIVE
from ..lifetimes import EXPIRED
from ..tokens import action
from . import alert_copy, alert_email, claims, fcm
from .events import KINDS, NEW_LOGIN, SESSION_REVOKED

log = logging.getLogger(__name__)

SILENT_REASONS = frozenset({"logout", "replaced", *EXPIRED})  # expired: nobody uses it (lifetimes.py)
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
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        return None
    if event.get("type") not in KINDS:
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


# The alert's words live in alert_copy (the api's pending-alerts list says the same sentence).
alert_name = alert_copy.alert_name
alert_text = alert_copy.alert_text


def new_login_alert(token: str, recipient_sid: str, new_session_id: str, action_token: str,
                    copy: alert_copy.Copy, expires_at: int) -> messaging.Message:
    """"Was that you?" with a "No, close this session" button on both platforms
    (docs/push-messages.md, schemas in docs/push/).

    - Android: a data message, high priority. A notification message is drawn by the system tray
      while the app is in the background, without action buttons and without running app code;
      a data message reaches FirebaseMessagingService.onMessageReceived in the background too, so
      the app builds the notification with both actions. Hence no `notification` block anywhere
      (a top-level one would turn the Android delivery into a notification message), and the
      localization travels in the data under FCM's own field names.
    - iOS: a visible alert (`apns-push-type: alert`, priority 10), localized with loc-key and
      loc-args, English `body` as the fallback, and `category` naming the registered
      UNNotificationCategory whose actions are "No, close this session" (destructive) and "Yes".
      FCM copies the data keys into the APNs payload, so the action token is there too.
    Both expire with the action token: a later delivery could not be answered anyway.
    """
    ttl = max(0, expires_at - clock.seconds())
    return fcm.message(
        token,
        data={
            "action": "new_login_alert", "sessionId": recipient_sid, "newSessionId": new_session_id,
            "actionToken": action_token, "expiresAt": str(expires_at),
            "title": alert_copy.TITLE, "body": copy.text,
            "title_loc_key": alert_copy.TITLE_LOC_KEY,
            "body_loc_key": copy.loc_key, "body_loc_args": json.dumps(list(copy.loc_args), ensure_ascii=False),
            "deviceName": copy.name or "", "location": copy.location or "",
            "category": alert_copy.CATEGORY,
        },
        android=messaging.AndroidConfig(priority="high", ttl=ttl),
        apns=messaging.APNSConfig(
            headers={"apns-push-type": "alert", "apns-priority": "10", "apns-expiration": str(expires_at),
                     "apns-collapse-id": f"new-login-{new_session_id}"[:64]},
            payload=messaging.APNSPayload(aps=messaging.Aps(
                alert=messaging.ApsAlert(title=alert_copy.TITLE, title_loc_key=alert_copy.TITLE_LOC_KEY,
                                         body=copy.text, loc_key=copy.loc_key, loc_args=list(copy.loc_args)),
                category=alert_copy.CATEGORY, sound="default", thread_id="mydevices-new-login",
            )),
        ),
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


_earlier = action.earlier


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _new_login_targets(event: dict[str, Any]) -> tuple[list[fcm.Outgoing], alert_email.Alerted | None]:
    """The alerts to push, and the session an email would speak to (the oldest earlier active one,
    None when there is none): one read and one query serve both."""
    uid, new_sid = event["uid"], event["sessionId"]
    new_session = store.read(store.session_ref(uid, new_sid))
    if new_session is None or new_session.get("status") != ACTIVE:
        return [], None
    created = new_session.get("createdAt")
    earlier = sorted(
        (began, snap.id) for snap in queries.active_sessions(uid).stream()
        if snap.id != new_sid and _earlier(began := (snap.to_dict() or {}).get("createdAt"), created)
    )
    others = [sid for _, sid in earlier]
    copy = alert_copy.Copy.of(event.get("deviceName"), event.get("location"))
    targets = []
    for chunk in _chunks(others, READ_CHUNK):
        for secret in store.db().get_all([store.secret_ref(sid) for sid in chunk]):
            token = _push_token(secret.to_dict() or {}, uid) if secret.exists else None
            if token:
                action_token, expires_at = action.pair_token(uid, secret.id, new_sid, created)
                message = new_login_alert(token, secret.id, new_sid, action_token, copy, expires_at)
                targets.append(fcm.Outgoing(secret.id, token, message))
    return targets, (alert_email.Alerted(others[0], created) if others else None)


def targets(event: dict[str, Any]) -> tuple[list[fcm.Outgoing], alert_email.Alerted | None]:
    """Who gets what for this event, read fresh from Firestore at handling time."""
    if event["type"] == SESSION_REVOKED:
        return _revoked_targets(event), None
    return _new_login_targets(event)


def forget_token(sid: str, token: str) -> bool:
    """Drop a dead push token, unless the app has meanwhile registered a different one."""
    return store.update_if(store.secret_ref(sid), lambda doc: {"pushToken": None, "pushProvider": None}
                           if doc.get("pushToken") == token else None)


def handle(data: Any) -> dict[str, int]:
    """Handle one messagePublished payload; returns counts for the log (and tests)."""
    parsed = parse(data)
    if parsed is None:
        log.error("dropping a malformed session event: %.500r", data)
        return {"malformed": 1}
    event_id, event = parsed
    if event["type"] not in (NEW_LOGIN, SESSION_REVOKED):
        return {"ignored": 1}  # a kind for the app's backend only (app_events/): no push, no claim
    claim = claims.claim(event_id)
    if claim is None:
        log.info("event %s was handled already; nothing to send", event_id)
        return {"duplicate": 1}
    try:
        outgoing, alerted = targets(event)
        pending = [item for item in outgoing if item.key not in claim.already_sent]
        outcome = fcm.send(pending)
        served = [item.key for item in outcome.sent]
        emailed, email_failure = False, None
        reached = bool(served) or bool(claim.already_sent - {alert_email.KEY})
        if alerted is not None and alert_email.due(event, claim.already_sent, reached=reached,
                                                   waiting=bool(outcome.transient)):
            try:
                emailed = alert_email.send(event, event_id, alerted)
                served.append(alert_email.KEY)  # sent, or nothing to send: either way done
            except alert_email.NotYet as failure:
                email_failure = failure
        if outcome.dead or outcome.transient or email_failure:
            claims.record_sent(claim, served)
        for item in outcome.dead:
            removed = forget_token(item.key, item.token)
            log.info("push token of session %s is dead (%s)", item.key, "removed" if removed else "already replaced")
        if outcome.transient:
            first = outcome.transient[0][1]
            raise RetryLater(f"{len(outcome.transient)} of {len(pending)} pushes for event {event_id} failed "
                             f"transiently ({type(first).__name__}: {first})")
        if email_failure is not None:
            raise RetryLater(f"the new-login email for event {event_id} could not be sent ({email_failure})")
        claims.finish(claim, served)
    except Exception:
        claims.release(claim)
        raise
    counts = {"sent": len(outcome.sent), "dead": len(outcome.dead), "failed": len(outcome.failed),
              "servedEarlier": len(claim.already_sent)}
    if alert_email.KEY in served:
        counts["emailed"] = int(emailed)
    log.info("%s %s for session %s: %s", event["type"], event_id, event["sessionId"], counts)
    return counts
