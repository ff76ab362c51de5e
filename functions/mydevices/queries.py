"""The account's active sessions, the two ways the flows read them.

Unordered (`active_sessions`) where only membership counts: one equality filter, which Firestore
serves without a composite index. By last activity (`active_sessions_by_activity`) for the list a
user sees and the order closures go in: that one needs the composite index `indexes.py` declares.
"""

from __future__ import annotations

from google.cloud import firestore

from . import indexes, store
from .documents import ACTIVE


def active_sessions(uid: str) -> firestore.Query:
    return store.sessions_of(uid).where(filter=firestore.FieldFilter("status", "==", ACTIVE))


def active_sessions_by_activity(uid: str) -> firestore.Query:
    """Most recently active first."""
    return indexes.ACTIVE_SESSIONS_BY_ACTIVITY.query(store.sessions_of(uid), ACTIVE)
