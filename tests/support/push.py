"""Fixtures and helpers for the push tests, on the shared local stack (support.plugin).

Two ways in:
- in-process (`push_env`): this process calls push.handle / alert_answer.respond against the stack's
  Firestore emulator, and sends FCM to an in-process stand-in, so a test injects faults and
  reads messages directly. No event function runs, so Firestore writes go nowhere else (the
  emulator drops trigger deliveries nobody listens for).
- the pipeline (`event_functions`): the stack's Firestore emulator delivers its own CloudEvents
  to on_session_written, which publishes to the Pub/Sub emulator, whose push subscription
  delivers to send_session_push, which sends to the stack's FCM stand-in process (`StackFcm`,
  the stack's own client of its control API).
pytest finds the fixtures (tests/conftest.py registers this module); test modules import the helpers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud import firestore

from infra.bench.environment import environment
from infra.local.fcm_standin import FcmStandin
from infra.local.stack import FcmStandin as StackFcm
from infra.local.stack import Stack
from mydevices import documents
from mydevices.bodies import DeviceInfo, PushTarget
from support.fcm_retries import without_backoff

PIXEL = DeviceInfo("Pixel 8", "android")


@pytest.fixture(scope="session")
def push_standin() -> Iterator[FcmStandin]:
    server = FcmStandin("127.0.0.1", 0, out=None).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def push_env(stack: Stack, push_standin: FcmStandin) -> Iterator[Stack]:
    """This process on the stack's emulators and keys, with FCM going to the in-process stand-in."""
    with environment({"MYDEVICES_FCM_URL": push_standin.url}), without_backoff():
        yield stack


@pytest.fixture()
def fresh(push_env: Stack, push_standin: FcmStandin) -> Stack:
    """Empty Firestore and an empty stand-in for each test."""
    push_env.firestore.reset()
    push_standin.clear()
    return push_env


def put_session(db: firestore.Client, uid: str, sid: str, *, token: str | None = None, status: str = "active",
                device: str = "Pixel 8", location: str | None = "London, United Kingdom") -> None:
    """A session and its secrets as a new device's login writes them (mydevices/documents.py),
    created now; a status other than active is one the user closed from another device."""
    now = datetime.now(UTC)
    session = documents.session(uid, f"d-{sid}", PIXEL, location, now, alert_reason="new_device")
    session["deviceName"] = device  # as stored, even a name login would refuse: the push copes with any
    if status != documents.ACTIVE:
        session.update(documents.revocation(documents.USER_REVOKED, now))
    db.document(f"users/{uid}/sessions/{sid}").set(session)
    push = PushTarget(token) if token else None
    db.document(f"sessionSecrets/{sid}").set(documents.secret(uid, "no-token-hashes-here", "none", now, push))


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


@pytest.fixture()
def fcm(event_functions: EventFunctions, api: str) -> StackFcm:
    """The stack's FCM stand-in, emptied, with the pipeline and the api running: what a test
    then finds in it, the api's calls caused."""
    event_functions.fcm.clear()
    return event_functions.fcm


def sent(messages: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The messages (as the FCM stand-in recorded them) whose data carries this action."""
    return [m["message"] for m in messages if m["message"].get("data", {}).get("action") == action]
