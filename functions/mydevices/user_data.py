"""Everything the product keeps about one user, found in one place: what the export hands the user
(flows/export.py) and what the erasure of a deleted Firebase user removes (deleted_users.py).

- Our fields of `users/{uid}` (`ACCOUNT_FIELDS`) and our collections under it (`OWN_COLLECTIONS`),
  each queried with all its descendants. Only ours: an app may keep its own profile and data under
  `users/{uid}` too, and that is neither ours to hand out (its own rules guard it) nor ours to
  delete. A collection we add there must be named in `OWN_COLLECTIONS`
  (tests/api/test_data_rights.py finds any we write that is missing).
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
from .activity import record as activity
from .views import iso

# Ours under users/{uid}; the account document's fields we write (closing.py, account_settings.py).
OWN_COLLECTIONS = (store.SESSIONS, store.DEVICES, store.SECURITY_EVENTS, activity.COLLECTION)
ACCOUNT_FIELDS = ("reauthAfter", "autoCloseDays")

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
    """Every document in our collections under the account, at any depth: one query per collection
    for all its descendants (the query `recursive_delete` makes), so the cost is the documents
    read, not a call per document."""
    account = store.user_ref(uid)
    for name in OWN_COLLECTIONS:
        query = account.collection(name).recursive()
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
    account = {k: v for k, v in (store.read(store.user_ref(uid)) or {}).items() if k in ACCOUNT_FIELDS}
    found = [{"path": store.user_ref(uid).path, "data": plain(account)}] if account else []
    found += sorted((_entry(snap) for snap in _tree(uid)), key=lambda doc: str(doc["path"]))
    return found + [_entry(snap) for snap in keyed_documents(uid)]


def erase(uid: str) -> int:
    """Delete every document of ours about the user, and our fields of the account document (the
    app's own fields and collections there stay); returns how many writes it made, 0 when there
    was nothing of ours left (a second run, or an id that only the app keeps data under)."""
    client = store.db()
    refs = [snap.reference for snap in _tree(uid, names_only=True)]
    refs += [snap.reference for snap in keyed_documents(uid)]
    for start in range(0, len(refs), BATCH_LIMIT):
        batch = client.batch()
        for ref in refs[start:start + BATCH_LIMIT]:
            batch.delete(ref)
        batch.commit()
    return len(refs) + _clear_account_fields(uid)


def _clear_account_fields(uid: str) -> int:
    """Our fields of users/{uid} gone, and the document with them if nothing of the app's is left:
    1 write, or 0 when none of our fields is there."""
    ref = store.user_ref(uid)

    def clear(transaction: firestore.Transaction) -> int:
        snapshot = ref.get(transaction=transaction)
        fields = set(snapshot.to_dict() or {}) if snapshot.exists else set()
        if not fields & set(ACCOUNT_FIELDS):
            return 0
        if fields <= set(ACCOUNT_FIELDS):
            transaction.delete(ref)
        else:
            transaction.update(ref, dict.fromkeys(ACCOUNT_FIELDS, firestore.DELETE_FIELD))
        return 1

    return store.transact(clear)
