"""The composite indexes our queries need, declared once: queries are built from these declarations,
and tests/platform/test_infra.py checks that firestore.indexes.json (which Terraform and the Firebase CLI
deploy) holds each of them.

A query that filters on one field and orders by another needs a composite index. Production
Firestore refuses such a query without it (FAILED_PRECONDITION, a 503 here) while the emulator
never asks for one, so nothing else would catch a forgotten index before users do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from google.cloud import firestore

from .store import SESSIONS

Direction = Literal["ASCENDING", "DESCENDING"]


@dataclass(frozen=True)
class CompositeIndex:
    """Equality filters on `equals` (in this order), then ordered by `order_by`."""

    collection_group: str
    equals: tuple[str, ...]
    order_by: tuple[str, Direction]

    def fields(self) -> list[dict[str, str]]:
        """The index's fields as firestore.indexes.json spells them."""
        return [{"fieldPath": name, "order": "ASCENDING"} for name in self.equals] + [
            {"fieldPath": self.order_by[0], "order": self.order_by[1]}
        ]

    def query(self, collection: firestore.CollectionReference, *values: Any) -> firestore.Query:
        """The query this index serves over `collection`, `values` matching `equals`."""
        if collection.id != self.collection_group:
            raise ValueError(f"this index is for {self.collection_group!r}, not {collection.id!r}")
        query: Any = collection
        for name, value in zip(self.equals, values, strict=True):
            query = query.where(filter=firestore.FieldFilter(name, "==", value))
        direction = firestore.Query.DESCENDING if self.order_by[1] == "DESCENDING" else firestore.Query.ASCENDING
        ordered: firestore.Query = query.order_by(self.order_by[0], direction=direction)
        return ordered


# A user's active sessions, most recently active first (the list, revoke-others, token reuse).
ACTIVE_SESSIONS_BY_ACTIVITY = CompositeIndex(SESSIONS, equals=("status",), order_by=("lastActiveAt", "DESCENDING"))

REQUIRED: tuple[CompositeIndex, ...] = (ACTIVE_SESSIONS_BY_ACTIVITY,)
