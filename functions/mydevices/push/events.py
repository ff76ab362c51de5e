"""From a Firestore change on a session document to at most one event on the session-events topic.

The trigger only classifies and publishes; pushing happens in a separate Pub/Sub function so a
slow or failing FCM never holds up (or repeats) the Firestore side, and so revoking hundreds of
sessions fans out through Pub/Sub instead of one long trigger run.

Each message carries the Firestore CloudEvent id as attribute `eventId`: Firestore delivers at
least once, so a redelivered change publishes again with the same id and the push function's
dedupe (see fanout.py) sends nothing twice. The ordering key is the uid, so one user's events are
handled in the order they happened (a login's alert before that session's rejection).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import threading
from typing import Any

from google.api_core.retry import Retry
from google.cloud.pubsub_v1 import PublisherClient
from google.cloud.pubsub_v1.types import PublisherOptions
from google.events.cloud.firestore import Document, DocumentEventData, Value

from ..config import settings
from ..documents import ACTIVE, REVOKED
from . import outbox

log = logging.getLogger(__name__)

NEW_LOGIN = "new_login"
SESSION_REVOKED = "session_revoked"
# Kinds only the app's backend hears of (app_events/): the push function acknowledges them unsent.
SESSION_OPENED = "session_opened"  # a login that is no news (the device came back): nobody is asked
ALERT_CONFIRMED = "alert_confirmed"  # "Yes, that was me" (confirmedAt set)
KINDS = frozenset({NEW_LOGIN, SESSION_REVOKED, SESSION_OPENED, ALERT_CONFIRMED})

_publisher_lock = threading.Lock()
_publisher: PublisherClient | None = None


def decode(data: bytes | str | None) -> DocumentEventData:
    """The DocumentEventData in a CloudEvent body: raw protobuf (Eventarc) or base64 of it.

    The Firestore emulator sends base64 text where Eventarc sends bytes. The two cannot be
    confused: a serialized DocumentEventData starts with a field tag (0x0a, 0x12, 0x1a), which is
    never a base64 character, so strict base64 decoding fails on raw protobuf.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data or b"")
    try:
        raw = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        pass  # already raw protobuf
    change: DocumentEventData = DocumentEventData.deserialize(raw)
    return change


def _plain(value: Value) -> Any:
    """The Python value of the scalar field types a session document uses."""
    kind = Value.pb(value).WhichOneof("value_type")  # proto-plus hides which oneof is set
    if kind in (None, "null_value"):
        return None
    if kind == "timestamp_value":
        return value.timestamp_value
    return getattr(value, kind)


def _field(doc: Document, name: str) -> Any:
    return _plain(doc.fields[name]) if name in doc.fields else None


def _when(doc: Document, name: str) -> str | None:
    """A timestamp field as RFC 3339 text (events travel as JSON)."""
    value = _field(doc, name)
    return value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else None


def _device(doc: Document) -> dict[str, Any]:
    """What the app's backend is told about the device (app_events/envelope.py)."""
    return {"deviceId": _field(doc, "deviceId"), "deviceType": _field(doc, "deviceType")}


def _path_ids(name: str) -> tuple[str, str] | None:
    """(uid, sid) from `projects/P/databases/D/documents/users/{uid}/sessions/{sid}`."""
    _, sep, path = name.partition("/documents/")
    parts = path.split("/") if sep else []
    if len(parts) == 4 and parts[0] == "users" and parts[2] == "sessions":
        return parts[1], parts[3]
    return None


def classify(change: DocumentEventData) -> dict[str, Any] | None:
    """The event a session change means, or None for changes nobody needs to hear about.

    Three transitions matter: a session document coming into existence active (`new_login` when
    the login is news for the other devices: login records why in `alertReason`; `session_opened`
    when it is null, the device coming back), a session going from active to revoked, and an
    active session's `confirmedAt` being set (`alert_confirmed`, "Yes, that was me"). The last two
    kinds and the extra fields serve the app's backend (app_events/); the push ignores them.
    Everything else (lastActiveAt bumps, TTL deletion) is None.
    """
    new, old = change.value, change.old_value
    new_exists = bool(new.name)
    old_exists = bool(old.name)
    if not new_exists:
        return None
    ids = _path_ids(new.name)
    if ids is None:
        log.warning("ignoring a change outside users/{uid}/sessions: %s", new.name)
        return None
    uid, sid = ids
    new_status = _field(new, "status")
    old_status = _field(old, "status") if old_exists else None
    if not old_exists and new_status == ACTIVE:
        quiet = "alertReason" in new.fields and _field(new, "alertReason") is None  # the device came back
        return {
            "type": SESSION_OPENED if quiet else NEW_LOGIN,
            "uid": uid,
            "sessionId": sid,
            "deviceName": _field(new, "deviceName"),
            "location": _field(new, "location"),
            "alertReason": _field(new, "alertReason"),
            "at": _when(new, "createdAt"),
            **_device(new),
        }
    if old_status == ACTIVE and new_status == REVOKED:
        return {"type": SESSION_REVOKED, "uid": uid, "sessionId": sid, "reason": _field(new, "revokedReason"),
                "by": _field(new, "revokedBy"), "replacedBy": _field(new, "replacedBy"),
                "deviceName": _field(new, "deviceName"), "at": _when(new, "revokedAt"), **_device(new)}
    if old_status == ACTIVE == new_status and _field(old, "confirmedAt") is None and _field(new, "confirmedAt"):
        return {"type": ALERT_CONFIRMED, "uid": uid, "sessionId": sid, "deviceName": _field(new, "deviceName"),
                "at": _when(new, "confirmedAt"), **_device(new)}
    return None


def publisher() -> PublisherClient:
    """One publisher per process: it owns batching threads and the per-key ordering state."""
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = PublisherClient(publisher_options=PublisherOptions(enable_message_ordering=True))
        return _publisher


def topic_path() -> str:
    conf = settings()
    return f"projects/{conf.project}/topics/{conf.session_events_topic}"


def _forget_publisher(client: PublisherClient) -> None:
    """After a failure, the next publish builds a new client on a new connection, which reaches a
    Pub/Sub that has come back at once instead of after gRPC's reconnect back-off. The old
    channel is closed: gRPC shares connections between channels to the same address, and the
    new channel would otherwise wait out the old one's back-off (seconds, growing with the
    outage). Publishes still pending on the old client fail, and their callers park them."""
    global _publisher
    with _publisher_lock:
        if _publisher is client:
            _publisher = None
    with contextlib.suppress(Exception):
        client.transport.close()


def publish(event: dict[str, Any], event_id: str) -> str:
    """Publish and wait at most `publish_timeout`, so a failure fails the trigger (Eventarc
    retries it) instead of holding it, and the emulator's one-at-a-time deliveries, for long.

    After a failed publish the client pauses that ordering key (to keep order) until told to
    resume; resuming before re-raising keeps the next delivery for this user from failing too.
    A publish that timed out may still go out later from the client's background thread; the
    caller parks the event all the same, and the push function's event-id claim keeps a second
    copy from sending anything.
    """
    client = publisher()
    topic = topic_path()
    data = json.dumps(event, separators=(",", ":")).encode()
    timeout = settings().publish_timeout
    future = client.publish(topic, data, ordering_key=event["uid"], retry=Retry(timeout=timeout), timeout=timeout,
                            eventId=event_id, type=event["type"])
    try:
        message_id: str = future.result(timeout=timeout)
    except Exception:
        with contextlib.suppress(RuntimeError):  # not paused: the future merely timed out
            client.resume_publish(topic, event["uid"])
        _forget_publisher(client)
        raise
    return message_id


class PublishBlocked(Exception):
    """Earlier events are still parked: this one waits behind them, and the run fails."""


def _drain_outbox() -> bool:
    """Publish events parked by earlier runs (see outbox.py). Returns False when Pub/Sub did not
    take them all. Not being able to read the outbox is logged, never raised, and does not hold
    this run's own event back: that event may still reach Pub/Sub."""
    if not outbox.due():
        return True
    try:
        return outbox.drain(publish)
    except Exception:
        log.exception("outbox: could not read parked events; the next run tries again")
        outbox.retry_soon()
        return True


def handle(event_id: str, data: bytes | str | None) -> dict[str, Any] | None:
    """The trigger's whole job: decode, classify, publish at most one event. Returns the event.

    An event that cannot be published is parked in the outbox and the run fails. While earlier
    events remain parked, a new one is parked behind them without trying, so one user's events
    still leave in the order they happened.
    """
    clear = _drain_outbox()
    event = classify(decode(data))
    if event is None:
        return None
    if not clear:
        outbox.park(event_id, event)
        raise PublishBlocked(f"event {event_id} parked behind earlier events that Pub/Sub has not taken yet")
    try:
        message_id = publish(event, event_id)
    except Exception:
        outbox.park(event_id, event)
        raise
    log.info("published %s for session %s (event %s, message %s)", event["type"], event["sessionId"],
             event_id, message_id)
    return event
