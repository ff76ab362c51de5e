"""Writing the activity: one entry per app event, derived where the app events are derived.

Why the relay writes it: the relay (app_events/relay.py, `publish_app_events`) already receives
every internal session event on its own ordered subscription (ordering key uid) and turns it into
the documented app events, each with `closedBy`. The activity is those same events, kept for the
user. Writing it there costs no function run and no request-path work: a login or a closure pays
nothing more, and the entry inherits the relay's ordering and outage handling (outbox, retries).

Idempotent under redelivery: an entry's document id is its app event id, and its content is a
function of the event (plus, for a closure by the user, the acting device's name, read once), so a
redelivered event rewrites the same documents and a reader sees each entry once. Entries are
written before the relay publishes, so a failed publish redelivers and the write simply repeats.

Nothing secret goes in (a client reads these): no token hashes, keys, device ids or their MACs, no
`detail` of an incident; only names, places, kinds and session ids the sessions list shows anyway.
Device names and support notes are user- or agent-written text, stored as data and put into words
only by words.py. `expireAt` (30 days on) is the Firestore TTL field (firestore.indexes.json);
readers also filter on `order` by the product clock, since TTL deletion runs up to a day late and
never on the emulator.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from .. import clock, store
from ..app_events import envelope
from ..push import claims

log = logging.getLogger(__name__)

COLLECTION = "activity"
RETENTION = timedelta(days=30)
SIGNED_IN, CLOSED, COPIED_TOKEN, ALERT_ANSWERED = "signed_in", "closed", "copied_token", "alert_answered"
KIND_OF = {envelope.SESSION_OPENED_TYPE: SIGNED_IN, envelope.SESSION_CLOSED_TYPE: CLOSED,
           envelope.COPIED_TOKEN_TYPE: COPIED_TOKEN, envelope.ALERT_ANSWERED_TYPE: ALERT_ANSWERED}
# Within one moment a cause (an answer, an incident) sorts before its effect (the closure).
_RANK = {CLOSED: 1}
MAX_NOTE = 200  # characters of a support agent's note kept (words.py bounds what is shown)


def activity_of(uid: str) -> firestore.CollectionReference:
    return store.db().collection(store.USERS).document(uid).collection(COLLECTION)


def moment(value: Any) -> datetime:
    """An event's RFC 3339 `timestamp` as a datetime; the product clock when it has none."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return clock.utcnow()


def order_key(at: datetime, kind: str, entry_id: str) -> str:
    """The listing's sort key: fixed-width UTC time, then cause before effect, then the id (unique,
    so a cursor never skips entries of the same instant). Text order is time order."""
    return f"{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{_RANK.get(kind, 0)}#{entry_id}"


def cutoff(now: datetime) -> str:
    """The smallest `order` still within the retention at `now`."""
    return f"{(now - RETENTION).astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#"


def _device_name(uid: str, sid: Any) -> Any:
    """The acting session's device name ("closed by you on <device>"): one read."""
    if not isinstance(sid, str) or not store.valid_id(sid):
        return None
    return (store.read(store.sessions_of(uid).document(sid)) or {}).get("deviceName")


def _note(uid: str, sid: str) -> str | None:
    """A support agent's `revokedNote` on the closed session (one read, support closures only)."""
    note = (store.read(store.sessions_of(uid).document(sid)) or {}).get("revokedNote")
    return note[:MAX_NOTE] if isinstance(note, str) and note.strip() else None


def _closed_by(uid: str, data: dict[str, Any]) -> dict[str, Any]:
    by = data.get("closedBy") or {}
    kind, acting = by.get("kind"), by.get("sessionId")
    found: dict[str, Any] = {"kind": kind, "sessionId": acting, "deviceName": None, "note": None}
    if kind == "user":
        found["deviceName"] = _device_name(uid, acting)
    elif kind == "support":
        found["note"] = _note(uid, data["sessionId"])
    return found


def entry(app_event: dict[str, Any], event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(document id, fields) of the entry an app event means; `event` is the internal event it came
    from (the copied-token incident takes its device from the closure it causes)."""
    kind = KIND_OF.get(app_event.get("type", ""))
    if kind is None:
        return None
    data = app_event["data"]
    entry_id = claims.doc_id(app_event["id"])
    at = moment(app_event.get("timestamp"))
    fields: dict[str, Any] = {"kind": kind, "at": at, "order": order_key(at, kind, entry_id),
                              "expireAt": at + RETENTION, "sessionId": data.get("sessionId"),
                              "deviceName": data.get("deviceName", event.get("deviceName")),
                              "platform": data.get("platform", event.get("deviceType"))}
    if kind == SIGNED_IN:
        fields.update(location=data.get("location"), alerted=bool(data.get("alerted")),
                      alertReason=data.get("alertReason"))
    elif kind == CLOSED:
        fields.update(reason=data.get("reason"), closedBy=_closed_by(data["uid"], data))
    elif kind == COPIED_TOKEN:
        fields.update(liveSessionId=data.get("liveSessionId"))
    else:
        fields.update(answer=data.get("answer"))
    return entry_id, fields


def record(event: dict[str, Any], app_events: list[dict[str, Any]]) -> list[str]:
    """Write the entries of one internal event's app events in one batch; returns their ids."""
    found = [made for made in (entry(app_event, event) for app_event in app_events) if made is not None]
    if not found:
        return []
    batch = store.db().batch()
    for entry_id, fields in found:
        batch.set(activity_of(event["uid"]).document(entry_id), fields)
    batch.commit()
    return [entry_id for entry_id, _ in found]
