"""What a signed-in device reads of its user's security activity (activity/record.py writes it).

Newest first, paged: `limit` entries and, when there are more, `nextCursor` (the last entry's sort
key; opaque to clients). Only the last 30 days by the product clock: Firestore's TTL deletes older
entries up to a day late (never on the emulator), so the query itself stops at the retention.
One query: `limit + 1` document reads (at least one, even when nothing is found).
"""

from __future__ import annotations

import re
from typing import Any

from google.cloud import firestore

from .. import clock
from ..activity import record, words
from ..errors import Code, Refusal
from ..views import iso
from .validation import Caller

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
CURSOR = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z#\d#[A-Za-z0-9_.:-]{1,200}\Z")


def page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Refusal(Code.INVALID_REQUEST, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def cursor_of(raw: str | None) -> str | None:
    if raw is not None and not CURSOR.fullmatch(raw):
        raise Refusal(Code.INVALID_REQUEST, "cursor is not valid: pass back a nextCursor as it came")
    return raw


def view(entry_id: str, doc: dict[str, Any], current_sid: str) -> dict[str, Any]:
    """The ActivityEntry a client sees, field by field (nothing else of the document leaks)."""
    found: dict[str, Any] = {
        "id": entry_id, "kind": doc.get("kind"), "at": iso(doc.get("at")),
        "sessionId": doc.get("sessionId"), "deviceName": doc.get("deviceName"), "platform": doc.get("platform"),
        "isCurrentDevice": doc.get("sessionId") == current_sid, "text": words.sentence(doc, current_sid),
    }
    kind = doc.get("kind")
    if kind == record.SIGNED_IN:
        found.update(location=doc.get("location"), alerted=bool(doc.get("alerted")))
    elif kind == record.CLOSED:
        by = doc.get("closedBy") or {}
        found.update(reason=doc.get("reason"), closedBy={
            "kind": by.get("kind"), "sessionId": by.get("sessionId"), "deviceName": by.get("deviceName"),
            "note": words.plain(by.get("note")), "text": words.closed_by(doc, current_sid)})
    elif kind == record.COPIED_TOKEN:
        found.update(liveSessionId=doc.get("liveSessionId"))
    elif kind == record.ALERT_ANSWERED:
        found.update(answer=doc.get("answer"))
    return found


def list_activity(caller: Caller, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict[str, Any]:
    query = (record.activity_of(caller.uid)
             .where(filter=firestore.FieldFilter("order", ">=", record.cutoff(clock.utcnow())))
             .order_by("order", direction=firestore.Query.DESCENDING))
    if cursor is not None:
        query = query.start_after({"order": cursor})
    snaps = list(query.limit(limit + 1).stream())
    page = snaps[:limit]
    more = len(snaps) > limit
    return {"activity": [view(snap.id, snap.to_dict() or {}, caller.sid) for snap in page],
            "nextCursor": (page[-1].to_dict() or {}).get("order") if more and page else None}
