"""Counting what a call costs, at the clients, while the product runs in this process.

Firestore bills per document read and per document written, so the counts are taken where
every operation of the google-cloud-firestore client goes through: the methods of its
generated (gapic) `FirestoreClient`. Patched on the class, they see every client instance,
including one the product rebuilds after an outage:
- `batch_get_documents` (document gets, `get_all`, reads in transactions) and `get_document`
  (the unary read store.read uses): one read per document asked for, found or missing (a lookup
  that finds nothing is billed as a read);
- `run_query`: one read per document returned, and one for a query that returns none
  (Firestore's minimum charge);
- `run_aggregation_query` (`count()`): one read per 1000 index entries counted, at least one;
- `commit` (writes, batches, transactions): one write per `Write` in the request, one commit;
  writes to the abuse-limit counters (`rateLimits/`) are also counted apart, as `counterWrites`,
  because they are the part of a call's writes that an attack, not the user, decides;
- `begin_transaction` / `rollback`: counted, not billed.
Pub/Sub publishes are counted at `PublisherClient.publish`, FCM sends at firebase-admin's
`messaging.send_each` (calls and messages), Firebase Auth account lookups at firebase-admin's
`UserManager.get_user` (see `installed`).

Every count goes to the *scope* of the thread that made it (`Counter.scope(label)`), so the
api, the Firestore trigger and the push function, running side by side in this process, are
told apart. Calls outside any scope go to `unattributed`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

UNATTRIBUTED = "unattributed"


@dataclass
class Tally:
    invocations: int = 0
    reads: int = 0
    found: int = 0
    missing: int = 0
    queries: int = 0
    emptyQueries: int = 0  # noqa: N815 - JSON field names
    aggregations: int = 0
    writes: int = 0
    counterWrites: int = 0  # noqa: N815 - of `writes`: the abuse-limit counters
    commits: int = 0
    transactions: int = 0
    rollbacks: int = 0
    publishes: int = 0
    fcmCalls: int = 0  # noqa: N815 - send_each calls
    fcmMessages: int = 0  # noqa: N815
    authLookups: int = 0  # noqa: N815 - Firebase Auth accounts:lookup requests
    appEventPublishes: int = 0  # noqa: N815 - of `publishes`: to the app's events topic (app_events/relay.py)
    smtpSends: int = 0  # noqa: N815 - messages handed to an SMTP relay (push/smtp.py)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _writes_in(request: Any) -> list[Any]:
    writes = request.get("writes") if isinstance(request, dict) else getattr(request, "writes", None)
    return list(writes or [])


def _written_document(write: Any) -> str:
    """The document a `Write` changes, whichever kind of write it is."""
    return str(write.update.name or write.delete or write.transform.document)


def _aggregate_reads(response: Any) -> int:
    """Reads billed for one aggregation result: a read per 1000 entries counted, at least one."""
    result = getattr(response, "result", None)
    fields = getattr(result, "aggregate_fields", None) or {}
    entries = 0
    for value in fields.values():
        entries = max(entries, int(getattr(value, "integer_value", 0) or 0))
    return max(1, math.ceil(entries / 1000)) if result is not None and fields else 0


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.tallies: dict[str, Tally] = {}

    # --- scopes

    @contextlib.contextmanager
    def scope(self, label: str) -> Iterator[None]:
        with self._labelled(label):
            self.add("invocations")
            yield

    @contextlib.contextmanager
    def _labelled(self, label: str | None) -> Iterator[None]:
        """Count this thread's calls under `label` for a while."""
        previous = getattr(self._local, "label", None)
        self._local.label = label
        try:
            yield
        finally:
            self._local.label = previous

    def add(self, name: str, amount: int = 1) -> None:
        label = getattr(self._local, "label", None) or UNATTRIBUTED
        with self._lock:
            tally = self.tallies.setdefault(label, Tally())
            setattr(tally, name, getattr(tally, name) + amount)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {label: tally.as_dict() for label, tally in self.tallies.items()}

    def total(self, name: str) -> int:
        with self._lock:
            return sum(getattr(tally, name) for tally in self.tallies.values())

    # --- instrumentation

    def _counted_stream(self, responses: Iterable[Any], on_response: Callable[[Any], None],
                        on_end: Callable[[], None] | None = None) -> Iterator[Any]:
        label = getattr(self._local, "label", None)  # the stream may be consumed on another frame
        for response in responses:
            with self._labelled(label):
                on_response(response)
            yield response
        if on_end is not None:
            with self._labelled(label):
                on_end()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Counter]:
        """Patch the clients for as long as the block runs; everything is put back afterwards."""
        import smtplib

        from firebase_admin import _user_mgt, messaging
        from google.cloud.firestore_v1.services.firestore.client import FirestoreClient
        from google.cloud.pubsub_v1.publisher.client import Client as PublisherClient

        from mydevices.config import settings
        from mydevices.rate_limits import COLLECTION as COUNTERS

        counter = self
        originals: list[tuple[Any, str, Any]] = []

        def patch(owner: Any, name: str, replacement: Any) -> None:
            originals.append((owner, name, vars(owner)[name]))
            setattr(owner, name, replacement)

        batch_get = FirestoreClient.batch_get_documents
        get_document = FirestoreClient.get_document
        run_query = FirestoreClient.run_query
        run_aggregation = FirestoreClient.run_aggregation_query
        commit = FirestoreClient.commit
        begin = FirestoreClient.begin_transaction
        rollback = FirestoreClient.rollback
        publish = PublisherClient.publish
        send_each = messaging.send_each
        # Private: firebase-admin has no public hook for the requests it makes (no transport
        # callback, no metrics), and patching the public `auth.Client.get_user` would miss the
        # lookups by e-mail or phone. Every account lookup of firebase-admin, `auth.get_user` and
        # the revocation check of `verify_id_token(check_revoked=True)` included, is one
        # `accounts:lookup` request made here. Re-check the name when firebase-admin is upgraded.
        get_user = _user_mgt.UserManager.get_user
        send_message = smtplib.SMTP.send_message
        counter_path = f"/documents/{COUNTERS}/"

        def on_get(response: Any) -> None:
            if response.found and response.found.name:
                counter.add("found")
                counter.add("reads")
            elif response.missing:
                counter.add("missing")
                counter.add("reads")

        def counted_batch_get(client: Any, *args: Any, **kwargs: Any) -> Any:
            return counter._counted_stream(batch_get(client, *args, **kwargs), on_get)

        def counted_get_document(client: Any, *args: Any, **kwargs: Any) -> Any:
            from google.api_core.exceptions import NotFound

            counter.add("reads")
            try:
                document = get_document(client, *args, **kwargs)
            except NotFound:
                counter.add("missing")
                raise
            counter.add("found")
            return document

        def counted_run_query(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("queries")
            seen = [0]

            def on_response(response: Any) -> None:
                if response.document and response.document.name:
                    seen[0] += 1
                    counter.add("reads")

            def on_end() -> None:
                if seen[0] == 0:
                    counter.add("emptyQueries")
                    counter.add("reads")

            return counter._counted_stream(run_query(client, *args, **kwargs), on_response, on_end)

        def counted_aggregation(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("aggregations")
            return counter._counted_stream(run_aggregation(client, *args, **kwargs),
                                           lambda response: counter.add("reads", _aggregate_reads(response)))

        def counted_commit(client: Any, *args: Any, **kwargs: Any) -> Any:
            request = kwargs.get("request", args[0] if args else None)
            answer = commit(client, *args, **kwargs)
            writes = _writes_in(request)
            counter.add("commits")
            counter.add("writes", len(writes))
            counter.add("counterWrites", sum(counter_path in _written_document(write) for write in writes))
            return answer

        def counted_begin(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("transactions")
            return begin(client, *args, **kwargs)

        def counted_rollback(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("rollbacks")
            return rollback(client, *args, **kwargs)

        def counted_publish(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("publishes")
            topic = str(kwargs.get("topic", args[0] if args else ""))
            if topic.endswith(f"/topics/{settings().events_topic}"):
                counter.add("appEventPublishes")
            return publish(client, *args, **kwargs)

        def counted_send_message(client: Any, *args: Any, **kwargs: Any) -> Any:
            answer = send_message(client, *args, **kwargs)
            counter.add("smtpSends")  # after: only what the relay accepted
            return answer

        def counted_send_each(messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            counter.add("fcmCalls")
            counter.add("fcmMessages", len(messages))
            return send_each(messages, *args, **kwargs)

        def counted_get_user(manager: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("authLookups")  # before: a lookup that finds nobody was still made
            return get_user(manager, *args, **kwargs)

        patch(FirestoreClient, "batch_get_documents", counted_batch_get)
        patch(FirestoreClient, "get_document", counted_get_document)
        patch(FirestoreClient, "run_query", counted_run_query)
        patch(FirestoreClient, "run_aggregation_query", counted_aggregation)
        patch(FirestoreClient, "commit", counted_commit)
        patch(FirestoreClient, "begin_transaction", counted_begin)
        patch(FirestoreClient, "rollback", counted_rollback)
        patch(PublisherClient, "publish", counted_publish)
        patch(messaging, "send_each", counted_send_each)
        patch(_user_mgt.UserManager, "get_user", counted_get_user)

        # The data-rights calls (user_data.py, deleted_users.py): ListCollectionIds is billed as one
        # read; ListDocuments one read per document listed, at least one; a batch `get_users` (up to
        # 100 accounts) is one accounts:lookup request.
        list_collection_ids = FirestoreClient.list_collection_ids
        list_documents = FirestoreClient.list_documents
        get_users = _user_mgt.UserManager.get_users

        def counted_list_collection_ids(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("queries")
            counter.add("reads")
            return list_collection_ids(client, *args, **kwargs)

        def counted_list_documents(client: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("queries")
            seen = [0]

            def on_end() -> None:
                if seen[0] == 0:
                    counter.add("emptyQueries")
                    counter.add("reads")

            def on_document(_: Any) -> None:
                seen[0] += 1
                counter.add("reads")

            return counter._counted_stream(list_documents(client, *args, **kwargs), on_document, on_end)

        def counted_get_users(manager: Any, *args: Any, **kwargs: Any) -> Any:
            counter.add("authLookups")
            return get_users(manager, *args, **kwargs)

        patch(FirestoreClient, "list_collection_ids", counted_list_collection_ids)
        patch(FirestoreClient, "list_documents", counted_list_documents)
        patch(_user_mgt.UserManager, "get_users", counted_get_users)

        patch(smtplib.SMTP, "send_message", counted_send_message)
        try:
            yield self
        finally:
            for owner, name, original in reversed(originals):
                setattr(owner, name, original)
