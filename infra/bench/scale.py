"""Does a call cost the same with 100,000 users as with 1,000?

Two projects in the same emulator hold the two populations (the emulator keeps projects
apart, so each is a database of that size), seeded with batched commits (seeding.py). The
product is then pointed at one or the other call by call (its Firestore client is swapped), so
the 1,000-user and 100,000-user figures are taken interleaved, in the same minutes, rather than
minutes apart on a machine whose load keeps changing.

Beside the product's calls, the bare client calls they are made of (a document get; the list
query) are measured on both populations too. Where the product's ratio moves, the bare call's
moving with it shows the cost is in the database, not in our code.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from infra.bench import seeding, stats
from infra.local.stack import Stack


@contextlib.contextmanager
def _product_client(client: firestore.Client) -> Iterator[None]:
    from mydevices import store

    previous = store._client
    store._client = client
    try:
        yield
    finally:
        store._client = previous


class Population:
    """One seeded project: the product's (bounded) client on it, a bare client, sample sessions."""

    def __init__(self, project: str, users: int, per_user: int, samples: int) -> None:
        from mydevices import store
        from mydevices.config import settings
        from mydevices.flows import validation
        from mydevices.tokens import access, device_id
        from mydevices.tokens.keys import keyring

        self.project = project
        self.users = users
        self.product_client = store._bounded(firestore.Client(project=project))
        self.bare_client = firestore.Client(project=project)
        conf, ring, now = settings(), keyring(), int(time.time())
        step = max(1, users // samples)
        self.callers: list[tuple[str, str]] = []
        self.list_callers: list[Any] = []
        self.documents: list[firestore.DocumentReference] = []
        self.queries: list[firestore.Query] = []
        for user in range(0, users, step)[:samples]:
            uid, sid, did = seeding.uid_of(user), seeding.sid_of(user, 0), seeding.did_of(user, 0)
            claims = access.AccessClaims(uid=uid, sid=sid, did=did, iat=now, exp=now + conf.access_ttl)
            token = access.issue(ring, issuer=conf.issuer, audience=conf.audience, claims=claims)
            self.callers.append((token, device_id.sign(ring, did)))
            self.list_callers.append(validation.Caller(uid, sid, did, {}))
            self.documents.append(self.bare_client.document(f"users/{uid}/sessions/{sid}"))
            self.queries.append(
                self.bare_client.collection(f"users/{uid}/sessions")
                .where(filter=firestore.FieldFilter("status", "==", "active"))
                .order_by("lastActiveAt", direction=firestore.Query.DESCENDING)
            )
        self._turn = 0

    def _next(self) -> int:
        self._turn = (self._turn + 1) % len(self.callers)
        return self._turn

    def validate(self) -> None:
        from mydevices.flows import validation
        from mydevices.tokens import device_id
        from mydevices.tokens.keys import keyring

        token, signed = self.callers[self._next()]
        with _product_client(self.product_client):
            validation.validate(token, device_id.verify(keyring(), signed))

    def list_sessions(self) -> None:
        from mydevices.flows import listing

        caller = self.list_callers[self._next()]
        with _product_client(self.product_client):
            if not listing.list_sessions(caller)["sessions"]:
                raise RuntimeError(f"{caller.uid} has no sessions in {self.project}")

    def bare_get(self) -> None:
        self.documents[self._next()].get()

    def bare_list(self) -> None:
        list(self.queries[self._next()].stream())

    def close(self) -> None:
        self.product_client.close()  # type: ignore[no-untyped-call]
        self.bare_client.close()  # type: ignore[no-untyped-call]


def scale(stack: Stack, *, small_users: int, large_users: int, per_user: int, seed_threads: int,
          iterations: int, list_iterations: int, samples: int, progress: Callable[[str], None]) -> dict[str, Any]:
    small_project, large_project = f"{stack.project}-scale-small", f"{stack.project}-scale-large"
    seeded: dict[str, Any] = {}
    now = datetime.now(UTC)
    for name, project, users in (("small", small_project, small_users), ("large", large_project, large_users)):
        progress(f"seeding {users:,} users x {per_user} sessions into {project} ...")
        seeder = seeding.Seeder(stack.firestore.host, project, threads=seed_threads)
        done = seeder.seed(seeding.sessions_of_users(0, users, per_user, now))
        seeded[name] = {"project": project, "users": users, **done.as_dict()}
        progress(f"  {done.documents:,} documents in {done.seconds:.1f} s "
                 f"({done.documents / done.seconds:,.0f}/s, {done.commits} commits)")
    small = Population(small_project, small_users, per_user, samples)
    large = Population(large_project, large_users, per_user, samples)
    try:
        progress("validation and listing at both sizes, interleaved ...")
        gets = stats.interleaved({"small": small.validate, "large": large.validate,
                                  "bareSmall": small.bare_get, "bareLarge": large.bare_get},
                                 iterations, warmup=samples)  # each sampled session once: a first call may write
        lists = stats.interleaved({"small": small.list_sessions, "large": large.list_sessions,
                                   "bareSmall": small.bare_list, "bareLarge": large.bare_list},
                                  list_iterations, warmup=2)
    finally:  # the data stays: nothing else uses these projects, and the run's emulator goes next
        small.close()
        large.close()
    result: dict[str, Any] = {"seeding": seeded, "sessionsPerUser": per_user, "sampledUsers": samples}
    for name, samples_of in (("validate", gets), ("list", lists)):
        section: dict[str, Any] = {key: stats.summary(values) for key, values in samples_of.items()}
        section["median"] = stats.verdict(stats.ratio(section["large"]["medianMs"], section["small"]["medianMs"]), 1.1)
        section["bareRatio"] = stats.ratio(section["bareLarge"]["medianMs"], section["bareSmall"]["medianMs"])
        result[name] = section
    return result
