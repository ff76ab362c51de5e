"""Writing many session documents into the emulator quickly: batched commits over its REST API.

Each commit carries at most 500 writes (Firestore's batch limit, which the emulator does not
enforce but production does). Documents are built as REST JSON directly: the client library's
per-field encoding costs more CPU than the emulator spends storing them, and this machine has
two cores. A few commits run side by side; the emulator is the bottleneck beyond that.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

BATCH_LIMIT = 500


def uid_of(user: int) -> str:
    return f"u{user:010d}"


def sid_of(user: int, session: int) -> str:
    return f"s{user:010d}{session:03d}"


def did_of(user: int, session: int) -> str:
    """22 characters, the shape of a real device id (device_id.py checks it)."""
    return f"d{user:010d}{session:03d}".ljust(22, "0")


def _rest(value: Any) -> dict[str, Any]:
    """A field as the REST API spells it."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, datetime):
        return {"timestampValue": value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    return {"stringValue": str(value)}


def session_fields(user: int, session: int, now: datetime) -> dict[str, Any]:
    """An active session document as login writes it (mydevices/documents.py; imported here, as the
    benchmark imports the product, once the functions' directory is on the path)."""
    from mydevices import documents
    from mydevices.bodies import DeviceInfo

    device = DeviceInfo("Pixel 8", "android", model="shiba", os_version="14", app_version="2.3.0")
    fields = documents.session(uid_of(user), did_of(user, session), device, None, now - timedelta(seconds=session + 1))
    fields["lastActiveAt"] = now
    return {name: _rest(value) for name, value in fields.items()}


def secret_fields(uid: str, push_token: str, now: datetime) -> dict[str, Any]:
    from mydevices import documents
    from mydevices.bodies import PushTarget

    fields = documents.secret(uid, "seeded", "seeded", now, PushTarget(push_token))
    return {name: _rest(value) for name, value in fields.items()}


@dataclass(frozen=True)
class Seeded:
    documents: int
    commits: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "commits": self.commits, "seconds": self.seconds,
                "documentsPerSecond": self.documents / self.seconds if self.seconds else 0.0}


class Seeder:
    """Commits (path, fields) pairs into one project of the emulator at `host`."""

    def __init__(self, host: str, project: str, threads: int = 2) -> None:
        self.project = project
        self.threads = threads
        self._url = f"http://{host}/v1/projects/{project}/databases/(default)/documents:commit"
        self._prefix = f"projects/{project}/databases/(default)/documents/"
        self._local = threading.local()

    def _commit(self, documents: list[tuple[str, dict[str, Any]]]) -> None:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = requests.Session()
        writes = [{"update": {"name": self._prefix + path, "fields": fields}} for path, fields in documents]
        answer = http.post(self._url, data=json.dumps({"writes": writes}),
                           headers={"Authorization": "Bearer owner", "Content-Type": "application/json"}, timeout=300)
        if answer.status_code != 200:
            raise RuntimeError(f"seeding commit answered {answer.status_code}: {answer.text[:300]}")

    def seed(self, documents: Iterator[tuple[str, dict[str, Any]]]) -> Seeded:
        start = time.perf_counter()
        count = commits = 0

        def batches() -> Iterator[list[tuple[str, dict[str, Any]]]]:
            batch: list[tuple[str, dict[str, Any]]] = []
            for document in documents:
                batch.append(document)
                if len(batch) == BATCH_LIMIT:
                    yield batch
                    batch = []
            if batch:
                yield batch

        with concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="seed") as pool:
            pending: set[concurrent.futures.Future[None]] = set()
            for batch in batches():
                if len(pending) >= self.threads * 2:  # keep memory flat: a few batches ahead at most
                    done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        future.result()
                pending.add(pool.submit(self._commit, batch))
                count += len(batch)
                commits += 1
            for future in pending:
                future.result()
        return Seeded(count, commits, time.perf_counter() - start)


def sessions_of_users(first: int, last: int, per_user: int, now: datetime | None = None
                      ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Users first..last-1, `per_user` active sessions each."""
    moment = now or datetime.now(UTC)
    for user in range(first, last):
        for session in range(per_user):
            yield f"users/{uid_of(user)}/sessions/{sid_of(user, session)}", session_fields(user, session, moment)
