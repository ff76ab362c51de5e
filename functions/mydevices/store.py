"""Firestore: the client, where documents live, and what an outage looks like to callers.

The client's default retries wait up to 60 s, which turns a Firestore outage into hung
requests. Every call here is bounded by `firestore_timeout` instead and an outage surfaces as
`Unavailable` (503 with Retry-After). After an outage the client is rebuilt, so a restarted
Firestore is used again at once instead of after gRPC's reconnect back-off.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from google.api_core import exceptions as core_exceptions
from google.api_core import gapic_v1
from google.api_core import retry as retries
from google.cloud import firestore

from .config import settings
from .errors import Unavailable

SESSIONS = "sessions"
SECRETS = "sessionSecrets"
DEVICES = "devices"
SECURITY_EVENTS = "securityEvents"
USERS = "users"

_TRANSIENT = (
    core_exceptions.ServiceUnavailable,
    core_exceptions.DeadlineExceeded,
    core_exceptions.InternalServerError,
    core_exceptions.ResourceExhausted,
    core_exceptions.Aborted,
    core_exceptions.Unknown,
    core_exceptions.RetryError,
)

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


P = ParamSpec("P")
R = TypeVar("R")


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a Firestore outage inside `func` into Unavailable."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _TRANSIENT as exc:
            _forget_client()
            raise Unavailable() from exc

    return wrapper


def session_ref(uid: str, sid: str) -> firestore.DocumentReference:
    return db().collection(USERS).document(uid).collection(SESSIONS).document(sid)


def sessions_of(uid: str) -> firestore.CollectionReference:
    return db().collection(USERS).document(uid).collection(SESSIONS)


def secret_ref(sid: str) -> firestore.DocumentReference:
    return db().collection(SECRETS).document(sid)


def device_ref(uid: str, did: str) -> firestore.DocumentReference:
    return db().collection(USERS).document(uid).collection(DEVICES).document(did)


def security_events_of(uid: str) -> firestore.CollectionReference:
    return db().collection(USERS).document(uid).collection(SECURITY_EVENTS)
