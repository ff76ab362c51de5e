"""Session events that could not be published yet, parked in Firestore until they are.

The Firestore trigger publishes each session change to Pub/Sub. When that fails, the event is
parked as `outbox/{eventId}` and the trigger still fails. In production, Eventarc retries a failed
delivery (when the trigger has retry enabled) and the retry publishes. But the Firestore emulator
never retries, and Eventarc gives up after 24 hours, so each trigger run first drains parked
events: right away on an instance that parked one itself, otherwise at most once per
`outbox_sweep_interval` seconds, because even an empty check is billed as one read.

A parked event can be published twice, by an Eventarc retry and by a drain. The push function
claims each event id, so nothing is sent twice. While events are parked, later ones queue behind
them (events.handle). Only an instance that has not looked at the outbox within the
sweep interval can publish a later event first. That is harmless: push handling reads the
current state, and apps ignore a force_logout about a session older than their own.

If Firestore is unreachable too, nothing can be parked. The trigger fails and only an Eventarc
retry can save the event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as core_exceptions

from .. import clock, store
from ..config import settings
from . import claims

log = logging.getLogger(__name__)

COLLECTION = "outbox"
RETENTION = claims.RETENTION  # as long as a redelivered event is still recognised
DRAIN_BATCH = 100

_state_lock = threading.Lock()
_parked_here = False
_last_sweep = 0.0


def park(event_id: str, event: dict[str, Any]) -> None:
    """Keep `event` until a drain publishes it. An event parked again (a retried run) keeps its
    first place in the queue."""
    global _parked_here
    now = clock.utcnow()
    try:
        store.db().collection(COLLECTION).document(claims.doc_id(event_id)).create(
            {"eventId": event_id, "event": event, "parkedAt": now, "expireAt": now + RETENTION}
        )
    except core_exceptions.AlreadyExists:
        pass
    with _state_lock:
        _parked_here = True
    log.warning("parked %s for session %s (event %s) until Pub/Sub takes it", event["type"],
                event["sessionId"], event_id)


def due() -> bool:
    """Whether this run should look for parked events (and, if so, count it as the look)."""
    global _last_sweep, _parked_here
    now = time.monotonic()
    with _state_lock:
        if not _parked_here and now - _last_sweep < settings().outbox_sweep_interval:
            return False
        _last_sweep, _parked_here = now, False
        return True


def retry_soon() -> None:
    """Parked events may remain: look again on the next run."""
    global _parked_here
    with _state_lock:
        _parked_here = True


def drain(publish: Callable[[dict[str, Any], str], str]) -> bool:
    """Publish parked events, oldest first, deleting each once published. Stops at the first
    failure (Pub/Sub is probably still away). Returns whether the outbox is known to be empty."""
    parked = list(store.db().collection(COLLECTION).order_by("parkedAt").limit(DRAIN_BATCH).stream())
    published = 0
    for snapshot in parked:
        data = snapshot.to_dict() or {}
        event, event_id = data.get("event"), data.get("eventId")
        if not isinstance(event, dict) or not isinstance(event_id, str):
            log.error("dropping a malformed outbox entry %s: %.300r", snapshot.id, data)
            snapshot.reference.delete()
            continue
        try:
            publish(event, event_id)
        except Exception as exc:
            retry_soon()
            log.warning("outbox: still cannot publish (%s: %s); %d of %d published", type(exc).__name__, exc,
                        published, len(parked))
            return False
        snapshot.reference.delete()
        published += 1
    if published:
        log.info("outbox: published %d parked events", published)
    if len(parked) == DRAIN_BATCH:
        retry_soon()  # maybe more: the next run goes on
        return False
    return True
