"""Exactly-once effects on at-least-once delivery: one Firestore document per event id.

`processedEvents/{eventId}` is created (create-if-absent) by the first delivery of an event and
carries a short lease, the recipients already served, and `status: done` once nothing is left
to do. So:
- a redelivery after success finds `done` and sends nothing;
- a redelivery after a transient failure takes over and sends only to recipients not yet served;
- a duplicate arriving while the first is still sending finds the lease held and fails, so
  Pub/Sub brings it back later (by then it is `done`, or the lease has lapsed after a crash).
What remains is the unavoidable gap between FCM accepting a message and this document saying
so: a crash exactly there sends that one message again on redelivery.
`expireAt` (7 days, longer than Pub/Sub's maximum retention) drives a Firestore TTL policy.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from .. import clock, store

log = logging.getLogger(__name__)

COLLECTION = "processedEvents"
RETENTION = timedelta(days=7)
# Longer than one attempt can take: FCM's own retries (about 8 s) plus bounded Firestore calls.
LEASE = timedelta(seconds=120)
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


class InFlight(Exception):
    """Another delivery of this event holds the lease; failing lets Pub/Sub retry it later."""


@dataclass(frozen=True)
class Claim:
    event_id: str
    ref: firestore.DocumentReference
    already_sent: frozenset[str]


def _now() -> datetime:
    return clock.utcnow()


def doc_id(event_id: str) -> str:
    """Event ids become document ids; anything that would not be a safe one is hashed."""
    if _SAFE_ID.fullmatch(event_id) and event_id not in (".", "..") and not event_id.startswith("__"):
        return event_id
    return "h-" + hashlib.sha256(event_id.encode()).hexdigest()


def claim(event_id: str) -> Claim | None:
    """Take this event for handling; None if it was handled already. May raise InFlight."""
    ref = store.db().collection(COLLECTION).document(doc_id(event_id))
    now = _now()
    fresh = {
        "eventId": event_id,
        "status": "sending",
        "sent": [],
        "attempts": 1,
        "leaseUntil": now + LEASE,
        "createdAt": now,
        "expireAt": now + RETENTION,
    }
    try:
        ref.create(fresh)
        return Claim(event_id, ref, frozenset())
    except core_exceptions.AlreadyExists:
        pass

    def take_over(transaction: firestore.Transaction) -> Claim | None:
        snapshot = ref.get(transaction=transaction)
        current = _now()
        if not snapshot.exists:  # expired and deleted in between: start afresh
            transaction.create(ref, fresh)
            return Claim(event_id, ref, frozenset())
        doc = snapshot.to_dict() or {}
        if doc.get("status") == "done":
            return None
        lease = doc.get("leaseUntil")
        if isinstance(lease, datetime) and lease > current:
            raise InFlight(f"event {event_id} is being handled by another delivery")
        transaction.update(ref, {"leaseUntil": current + LEASE, "attempts": firestore.Increment(1)})
        return Claim(event_id, ref, frozenset(doc.get("sent") or []))

    return store.transact(take_over)


def record_sent(claim: Claim, sent: Iterable[str]) -> None:
    """Remember who has been served, before anything else can fail and lose that knowledge."""
    served = sorted(set(sent))
    if served:
        claim.ref.update({"sent": firestore.ArrayUnion(served)})


def release(claim: Claim) -> None:
    """End the lease early so the redelivery of a failed attempt need not wait for it. Best effort."""
    try:
        claim.ref.update({"leaseUntil": _now()})
    except core_exceptions.GoogleAPICallError as exc:
        log.warning("could not release the claim on event %s: %s", claim.event_id, exc)


def finish(claim: Claim, sent: Iterable[str] = ()) -> None:
    """Nothing is left to do for this event: every later delivery is a no-op."""
    update: dict[str, object] = {"status": "done", "doneAt": _now(), "leaseUntil": None}
    served = sorted(set(sent))
    if served:
        update["sent"] = firestore.ArrayUnion(served)
    claim.ref.update(update)
