"""Firestore: the client, where documents live, and what an outage looks like to callers.

The client's default retries wait up to 60 s, which turns a Firestore outage into hung
requests. Every call here is bounded by `firestore_timeout` instead, and each edge turns the
failure that escapes into 503 `unavailable` with Retry-After (`outage`). After an outage the
client is rebuilt, so a restarted Firestore is used again at once instead of after gRPC's
reconnect back-off.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as core_exceptions
from google.api_core import gapic_v1
from google.api_core import retry as retries
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers

from .config import settings
from .errors import Refusal, contention, unavailable

SESSIONS = "sessions"
SECRETS = "sessionSecrets"
DEVICES = "devices"
SECURITY_EVENTS = "securityEvents"
USERS = "users"
SUPPORT_AUDIT = "supportAudit"

_TRANSIENT = (
    core_exceptions.ServiceUnavailable,
    core_exceptions.DeadlineExceeded,
    core_exceptions.InternalServerError,
    core_exceptions.ResourceExhausted,
    core_exceptions.Aborted,
    core_exceptions.Unknown,
    core_exceptions.RetryError,
)

# Firestore is up but refuses: a composite index or a permission missing from the deployment
# (indexes.py), or a call cancelled under it. Nothing the client can fix: 503, and a loud log.
_REFUSED = (
    core_exceptions.FailedPrecondition,
    core_exceptions.PermissionDenied,
    core_exceptions.Cancelled,
)

log = logging.getLogger(__name__)
_lock = threading.Lock()
_client: firestore.Client | None = None


def _bounded(client: firestore.Client) -> firestore.Client:
    timeout = settings().firestore_timeout
    retry = retries.Retry(
        initial=0.05,
        maximum=0.5,
        multiplier=2.0,
        predicate=retries.if_exception_type(
            core_exceptions.ServiceUnavailable, core_exceptions.DeadlineExceeded, core_exceptions.InternalServerError
        ),
        timeout=timeout,
    )
    # No public way: firestore.Client takes no default retry or timeout, and a per-call `retry=`
    # cannot reach the calls its transactions and batches make. So the generated client's wrapped
    # methods (private to google-cloud-firestore) get these defaults, once, when the client is made.
    transport = client._firestore_api._transport
    transport._wrapped_methods = {
        method: gapic_v1.method.wrap_method(method, default_retry=retry, default_timeout=timeout)
        for method in transport._wrapped_methods
    }
    return client


def db() -> firestore.Client:
    global _client
    with _lock:
        if _client is None:
            _client = _bounded(firestore.Client(project=settings().project))
        return _client


def _forget_client() -> None:
    global _client
    with _lock:
        _client = None


R = TypeVar("R")


def _outage_behind(exc: BaseException) -> BaseException | None:
    """The outage another error of the transaction helper hides, if any. After a failure it rolls
    back, and the rollback's own error replaces the outage, which survives only as its context:
    ValueError("no transaction ID") when the transaction never began, InvalidArgument
    ("Transaction is invalid or closed") when a commit timed out but had gone through, or the
    transaction expired. Contention past its retries is a ValueError caused by Aborted."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _TRANSIENT):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def outage(exc: BaseException) -> Refusal | None:
    """What a Firestore failure that escaped a flow means to its caller, or None when `exc` is no
    Firestore failure (a bug). Each edge asks this once, for whatever a flow raised: 503
    `unavailable` for an outage or a refusal, `contention` when the documents were busy. After an
    outage the client is rebuilt."""
    if isinstance(exc, _TRANSIENT):
        _forget_client()
        return unavailable()
    if isinstance(exc, _REFUSED):
        log.error("Firestore refused a call (a missing index or permission?): %s", exc)
        return unavailable()
    behind = _outage_behind(exc)
    if behind is None:
        return None
    if isinstance(behind, core_exceptions.Aborted):
        return contention()  # Firestore is up: the client needs no rebuilding
    _forget_client()
    return unavailable()


CONTENTION_ATTEMPTS = 4


def transact(body: Callable[[firestore.Transaction], R]) -> R:
    """Run `body` in a transaction, again after a random pause while it meets contention.

    The client library retries an aborted transaction at once, so transactions that collided
    collide again; spread out, most of them get through (tests/api/test_takeover.py measures it).
    """
    run = firestore.transactional(body)
    for attempt in range(CONTENTION_ATTEMPTS):
        try:
            return run(db().transaction())
        except Exception as exc:
            if attempt == CONTENTION_ATTEMPTS - 1 or not isinstance(_outage_behind(exc), core_exceptions.Aborted):
                raise
            time.sleep(random.uniform(0.05, 0.25) * 2**attempt)
    raise AssertionError("unreachable")


def update_if(ref: firestore.DocumentReference, change: Callable[[dict[str, Any]], dict[str, Any] | None], *,
              then: Callable[[firestore.Transaction, dict[str, Any], dict[str, Any]], None] | None = None) -> bool:
    """Read the document and write `change(fields)` to it in one transaction, so what was checked
    still holds when it is written. False when it does not exist or `change` returns None (nothing
    written); `{}` writes nothing but counts. `then(transaction, doc, written)` adds the writes
    that go with the change. One run of the library's transaction, which retries at once on contention:
    a single document is rarely contended."""
    def body(transaction: firestore.Transaction) -> bool:
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return False
        doc = snapshot.to_dict() or {}
        fields = change(doc)
        if fields is None:
            return False
        if fields:
            transaction.update(ref, fields)
        if then is not None:
            then(transaction, doc, fields)
        return True

    return bool(firestore.transactional(body)(db().transaction()))


def valid_id(text: str) -> bool:
    """Whether `text` can name a document. Firestore answers InvalidArgument (not NotFound) for
    `.`, `..`, `__anything__` and ids over 1500 bytes, so an id a client chose must pass this
    before it becomes a path, or a crafted id would surface as a 500."""
    return (
        bool(text) and "/" not in text and text not in (".", "..")
        and not (len(text) >= 4 and text.startswith("__") and text.endswith("__"))
        and len(text.encode()) <= 1500
    )


def session_ref(uid: str, sid: str) -> firestore.DocumentReference:
    return db().collection(USERS).document(uid).collection(SESSIONS).document(sid)


def read(ref: firestore.DocumentReference) -> dict[str, Any] | None:
    """The document's fields (as `snapshot.to_dict()` gives them), or None if it does not exist.

    One unary GetDocument call, billed as one read like `ref.get()`. `ref.get()` streams
    BatchGetDocuments instead, and a streaming call costs this client about twice the CPU (gRPC
    starts a thread per call when none is in flight): on the path every validated request
    takes, the streaming call was the largest cost left on our side (docs/benchmarks.md). No public way: the
    library has no unary get, so this uses its generated client and its decoder (both private).
    """
    client = ref._client
    try:
        document = client._firestore_api.get_document(
            request={"name": ref._document_path}, metadata=client._rpc_metadata
        )
    except core_exceptions.NotFound:
        return None
    fields = _helpers.decode_dict(document.fields, client)
    return fields if isinstance(fields, dict) else {}  # a map shaped like a vector: no document of ours


def sessions_of(uid: str) -> firestore.CollectionReference:
    return db().collection(USERS).document(uid).collection(SESSIONS)


def secret_ref(sid: str) -> firestore.DocumentReference:
    return db().collection(SECRETS).document(sid)


def user_ref(uid: str) -> firestore.DocumentReference:
    """Server-only facts about the account: `reauthAfter` (flows/login.py)."""
    return db().collection(USERS).document(uid)


def device_ref(uid: str, did: str) -> firestore.DocumentReference:
    return db().collection(USERS).document(uid).collection(DEVICES).document(did)


def security_events_of(uid: str) -> firestore.CollectionReference:
    return db().collection(USERS).document(uid).collection(SECURITY_EVENTS)


def support_audit() -> firestore.CollectionReference:
    """One document per support API call (flows/support.py): server only, TTL on `expireAt`."""
    return db().collection(SUPPORT_AUDIT)
