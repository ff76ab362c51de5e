"""The relay: internal session events in (a second subscription on session-events), app events out
on the app's own topic (`MYDEVICES_EVENTS_TOPIC`), ordered by uid.

It rides on the push pipeline rather than beside it: the Firestore trigger already classifies each
session change once, publishes it with the uid as ordering key, and parks it in the outbox while
Pub/Sub is away (push/events.py, push/outbox.py). So the app's topic inherits that ordering and
that outage handling, and logins and closures pay nothing more on their request path.

Delivery is at least once: a failed publish fails this function, and Pub/Sub redelivers the
internal event (in order: its subscription is ordered), so an app event may be published twice,
always under the same `id` (envelope.py); receivers drop an id they have seen.

Before publishing, it also keeps the user's own copy: the security activity (activity/record.py,
one document per app event, its id the event's, so a redelivery rewrites rather than adds).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from .. import store
from ..activity import record as activity
from ..config import settings
from ..documents import TOKEN_REUSED
from ..push import events
from . import envelope

log = logging.getLogger(__name__)


def parse(data: Any) -> tuple[str, dict[str, Any]] | None:
    """(event id, internal event) from a messagePublished CloudEvent's data, or None if malformed."""
    try:
        message = data["message"]
        event = json.loads(base64.b64decode(message.get("data") or "", validate=True))
        event_id = (message.get("attributes") or {}).get("eventId") or message.get("messageId")
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(event, dict) or not isinstance(event_id, str) or not event_id:
        return None
    if event.get("type") not in events.KINDS or not all(isinstance(event.get(k), str) for k in ("uid", "sessionId")):
        return None
    return event_id, event


def incident(uid: str, replayed_sid: str) -> dict[str, Any] | None:
    """The copied-token incident flows/copied_token.py recorded for this replayed session."""
    if not store.valid_id(replayed_sid):
        return None
    return store.read(store.security_events_of(uid).document(f"{TOKEN_REUSED}-{replayed_sid}"))


def topic_path() -> str:
    conf = settings()
    return f"projects/{conf.project}/topics/{conf.events_topic}"


def publish(app_event: dict[str, Any]) -> str:
    """One app event on the app's topic, keyed by uid; waits at most `publish_timeout`."""
    client = events.publisher()
    topic, key = topic_path(), app_event["data"]["uid"]
    timeout = settings().publish_timeout
    data = json.dumps(app_event, separators=(",", ":")).encode()
    future = client.publish(topic, data, ordering_key=key, timeout=timeout, id=app_event["id"], type=app_event["type"])
    try:
        message_id: str = future.result(timeout=timeout)
    except Exception:
        client.resume_publish(topic, key)  # the client paused this key to keep order; the redelivery resumes it
        raise
    return message_id


def handle(data: Any) -> list[str]:
    """Relay one internal event; returns the app event ids published (for the log and tests)."""
    parsed = parse(data)
    if parsed is None:
        log.error("app events: dropping a malformed session event: %.500r", data)
        return []
    event_id, event = parsed
    published = []
    derived = envelope.app_events(event_id, event, incident)
    activity.record(event, derived)  # the user's own copy first: a failed publish redelivers, this repeats
    for app_event in derived:
        publish(app_event)
        published.append(app_event["id"])
    log.info("app events: %s published for session event %s", published, event_id)
    return published
