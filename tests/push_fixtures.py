"""Fixtures for the push tests, on the shared local stack (tests/conftest.py).

Two ways in:
- in-process (`push_env`): this process calls push.handle / alerts.respond against the stack's
  Firestore emulator, and sends FCM to an in-process stand-in, so a test injects faults and
  reads messages directly. No event function runs, so Firestore writes go nowhere else (the
  emulator drops trigger deliveries nobody listens for).
- the pipeline (`event_functions`): the stack's Firestore emulator delivers its own CloudEvents
  to on_session_written, which publishes to the Pub/Sub emulator, whose push subscription
  delivers to send_session_push, which sends to the stack's FCM stand-in process (`StackFcm`,
  the stack's own client of its control API).
Test modules import what they use from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from firebase_admin import _http_client
from google.cloud import firestore

from infra.bench.environment import environment
from infra.local.fcm_standin import FcmStandin
from infra.local.stack import FcmStandin as StackFcm
from infra.local.stack import Stack


@pytest.fixture(scope="session")
def push_standin() -> Iterator[FcmStandin]:
    server = FcmStandin("127.0.0.1", 0, out=None).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def push_env(stack: Stack, push_standin: FcmStandin) -> Iterator[Stack]:
    """This process on the stack's emulators and keys, with FCM going to the in-process stand-in."""
    with environment({"MYDEVICES_FCM_URL": push_standin.url}):
        # firebase-admin retries 500/503 4 times after 0, 1, 2 and 4 s; keep the retries, drop the waits.
        saved_backoff = _http_client.DEFAULT_RETRY_CONFIG.backoff_factor
        _http_client.DEFAULT_RETRY_CONFIG.backoff_factor = 0
        try:
            yield stack
        finally:
            _http_client.DEFAULT_RETRY_CONFIG.backoff_factor = saved_backoff


@pytest.fixture()
def fresh(push_env: Stack, push_standin: FcmStandin) -> Stack:
    """Empty Firestore and an empty stand-in for each test."""
    push_env.firestore.reset()
    push_standin.clear()
    return push_env


def put_session(db: firestore.Client, uid: str, sid: str, *, token: str | None = None, status: str = "active",
                device: str = "Pixel 8", location: str | None = "London, United Kingdom") -> None:
    """A session and its secrets as the core writes them (docs/design.md), created now."""
    now = datetime.now(UTC)
    db.document(f"users/{uid}/sessions/{sid}").set({
        "uid": uid, "deviceId": f"d-{sid}", "deviceName": device, "deviceType": "ANDROID", "location": location,
        "status": status, "createdAt": now, "lastActiveAt": now, "revokedAt": None, "confirmedAt": None,
        "revokedReason": None if status == "active" else "user_revoked", "expireAt": None,
    })
    db.document(f"sessionSecrets/{sid}").set({
        "uid": uid, "pushToken": token, "pushProvider": "fcm" if token else None, "expireAt": now + timedelta(days=90),
    })


# --- the pipeline ------------------------------------------------------------------------------


@dataclass
class EventFunctions:
    trigger_url: str
    push_url: str
    fcm: StackFcm


@pytest.fixture(scope="module")
def event_functions(stack: Stack) -> Iterator[EventFunctions]:
    """on_session_written and send_session_push, served by functions-framework on their ports."""
    trigger, push = stack.start_functions(["on_session_written", "send_session_push"])
    fcm = stack.fcm
    try:
        yield EventFunctions(trigger.url, push.url, fcm)
    finally:
        trigger.stop()
        push.stop()
        fcm.clear()  # the stand-in is shared by the whole session: leave it as found


def sent(messages: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The messages (as the FCM stand-in recorded them) whose data carries this action."""
    return [m["message"] for m in messages if m["message"].get("data", {}).get("action") == action]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
