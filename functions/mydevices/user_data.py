"""Everything the product keeps about one user, found in one place: what the export hands the user
(flows/export.py) and what the erasure of a deleted Firebase user removes (deleted_users.py).

- `users/{uid}` and every collection under it, found by listing its collections (ListCollectionIds)
  and querying all their descendants, so a collection added later (the security activity, say) is
  exported and erased with no change here.
- The top-level collections that name the user in a field (`KEYED`): a session's secrets, used
  alert-answer tokens, dead webhook deliveries, events parked in the outbox.
- Not here: `rateLimits` (keyed by a hash of the user or address, holding a count only),
  `processedEvents` and `webhookFailures` (event ids, counts and errors): nothing in them names the
  user, and their TTL drops them (docs/data-rights.md lists every collection's retention).

Secret fields (`SECRET_FIELDS`) are left out of every exported document, wherever they appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from . import store
from .views import iso

# (collection, the field naming the user). Names as the writing modules spell them:
# flows/alert_answer.USED_TOKENS, app_events/webhooks.DEAD, push/outbox.COLLECTION (its `event`
# carries the uid); tests/api/test_data_rights.py checks they agree.
KEYED: tuple[tuple[str, str], ...] = (
    (store.SECRETS, "uid"),
    ("usedActionTokens", "uid"),
    ("deadWebhooks", "uid"),
    ("outbox", "event.uid"),
)

# Left out of the export, and why (docs/data-rights.md has the same list):
SECRET_FIELDS: dict[str, str] = {
    "refreshHash": "the keyed hash of the current refresh token: with the key it checks guesses",
    "prevRefreshHash": "the same, of the previous token (the rotation's grace window)",
    "refreshKid": "which server HMAC key hashes the tokens",
    "pushToken": "the device's FCM/APNs address: whoever holds it with the app's credentials can push to it",
    "dpopSeen": "proof ids the server remembers against replay",
    "endpoint": "the app's webhook endpoint name (operator configuration)",
    "lastError": "what the app's webhook receiver answered (operator diagnostics)",
}

BATCH_LIMIT = 500  # writes per batch (the emulator does not enforce it: platform-notes)


def _tree(uid: str, *, names_only: bool = False) -> Iterator[firestore.DocumentSnapshot[Any]]:
    """Every document under the account's (not itself), at any depth: one
    ListCollectionIds, then one query per collection for all its descendants (the query
    `recursive_delete` makes), so the cost is the documents read, not a call per document."""
    account = store.user_ref(uid)
    for collection in account.collections():
        query = collection.recursive()
        yield from (query.select([FieldPath.document_id()]) if names_only else query).stream()


def keyed_documents(uid: str) -> Iterator[firestore.DocumentSnapshot[Any]]:
    """The top-level documents that name `uid`."""
    for collection, field in KEYED:
        yield from store.db().collection(collection).where(
            filter=firestore.FieldFilter(field, "==", uid)).stream()


def plain(value: Any) -> Any:
    """A Firestore value as JSON: times as ISO 8601, maps and lists walked, anything else as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _entry(snapshot: firestore.DocumentSnapshot[Any]) -> dict[str, Any]:
    return {"path": snapshot.reference.path, "data": plain(snapshot.to_dict() or {})}


def export(uid: str) -> list[dict[str, Any]]:
    """Every document of the user, secrets left out: `[{"path", "data"}]`, the account's first."""
    account = store.read(store.user_ref(uid))
    found = [{"path": store.user_ref(uid).path, "data": plain(account)}] if account is not None else []
    found += sorted((_entry(snap) for snap in _tree(uid)), key=lambda doc: str(doc["path"]))
    return found + [_entry(snap) for snap in keyed_documents(uid)]


def erase(uid: str) -> int:
    """Delete every document of the user; returns how many deletes it made. Idempotent: a second
    run finds nothing under the account and deletes only its (absent) document again."""
    client = store.db()
    refs = [store.user_ref(uid)]
    refs += [snap.reference for snap in _tree(uid, names_only=True)]
    refs += [snap.reference for snap in keyed_documents(uid)]
    for start in range(0, len(refs), BATCH_LIMIT):
        batch = client.batch()
        for ref in refs[start:start + BATCH_LIMIT]:
            batch.delete(ref)
        batch.commit()
    return len(refs)
