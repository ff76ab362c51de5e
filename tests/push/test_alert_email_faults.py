"""The "Was that you?" email through the whole pipeline while the SMTP relay is down or refusing:
a real login through the api, the Firestore trigger, Pub/Sub's push subscription redelivering to
the push function, smtplib, and the stack's SMTP server (aiosmtpd) stopped or answering 4xx/5xx.
The email goes out once the relay is back, and never a second time: not after a relay that took
the message and then answered QUIT badly, not when Pub/Sub delivers the event again after success."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from firebase_admin import auth

from infra.local.stack import SESSION_EVENTS_TOPIC, Stack
from mydevices import store
from mydevices.firebase_app import app
from mydevices.push import alert_email, claims
from support.devices import GALAXY, PIXEL, Device, signed_in
from support.push import EventFunctions
from support.waiting import wait_for

NOT_SENT = "could not be sent"  # the push function's RetryLater for the email (fanout.py), logged at ERROR


class Tap:
    """A pull subscription on session-events: what the trigger published, as the push function gets it."""

    def __init__(self, stack: Stack) -> None:
        self.emulator = f"http://{stack.pubsub.host}/v1/projects/{stack.project}"
        self.url = f"{self.emulator}/subscriptions/tap-mail-{time.monotonic_ns()}"
        requests.put(self.url, json={"topic": f"projects/{stack.project}/topics/{SESSION_EVENTS_TOPIC}"},
                     timeout=10).raise_for_status()
        self.seen: list[dict[str, Any]] = []

    def new_login(self, session_id: str, timeout: float = 30) -> dict[str, Any]:
        """The published message (data, attributes) of the new_login event about this session."""
        def find() -> dict[str, Any] | None:
            received = requests.post(f"{self.url}:pull", json={"maxMessages": 50, "returnImmediately": True},
                                     timeout=10).json() \
                .get("receivedMessages", [])
            if received:
                requests.post(f"{self.url}:acknowledge", json={"ackIds": [m["ackId"] for m in received]},
                              timeout=10).raise_for_status()
            self.seen += [dict(m["message"]) for m in received]
            for message in self.seen:
                event = json.loads(base64.b64decode(message["data"]))
                if event.get("type") == "new_login" and event.get("sessionId") == session_id:
                    return message
            return None

        found = wait_for(find, timeout)
        assert found, f"no new_login event for session {session_id}"
        return dict(found)

    def delete(self) -> None:
        requests.delete(self.url, timeout=10)


@pytest.fixture()
def relay(stack: Stack, event_functions: EventFunctions, api: str) -> Iterator[Stack]:
    stack.smtp.clear()
    stack.smtp.fault(None)
    yield stack
    stack.smtp.fault(None)
    if not stack.smtp.running:
        stack.smtp.start().wait_ready()


@pytest.fixture()
def tap(stack: Stack) -> Iterator[Tap]:
    found = Tap(stack)
    yield found
    found.delete()


def push_log(stack: Stack) -> Path:
    server = stack.function("send_session_push")
    assert server is not None
    return Path(server.log_path)


def owner_with_a_device_push_cannot_reach(api: str, sign_up: Callable[..., tuple[str, str]]) -> tuple[str, str]:
    """(uid, ID token) of a user with a verified address whose only device has no push token."""
    uid, id_token = sign_up()
    auth.update_user(uid, email_verified=True, app=app())
    signed_in(api, id_token, PIXEL)
    return uid, id_token


def failed_attempts(log: Path, since: int) -> int:
    return log.read_text()[since:].count(NOT_SENT)


def emailed_once(stack: Stack, tap: Tap, intruder: Device, settle: float = 4.0) -> str:
    """Exactly one email about the intruder's login, its event done, and no other one coming;
    returns the event id."""
    event_id = str(tap.new_login(intruder.session_id)["attributes"]["eventId"])
    claim = store.db().collection(claims.COLLECTION).document(claims.doc_id(event_id))

    def done() -> bool:
        doc = claim.get().to_dict() or {}
        return doc.get("status") == "done" and alert_email.KEY in (doc.get("sent") or [])

    log = push_log(stack).read_text()
    assert wait_for(done, 60), f"the email was never sent: {claim.get().to_dict()}; the push function said:\n" \
        + push_log(stack).read_text()[len(log) - 3000:]
    time.sleep(settle)  # a redelivery that would send again comes within the back-off (1 to 10 s)
    assert len(stack.smtp.messages()) == 1
    return event_id


@pytest.mark.parametrize("fault", [
    ("down", ""),
    ("EHLO", "554 5.3.2 Service not available"),
    ("MAIL", "421 4.3.2 Service not available, closing transmission channel"),
    ("MAIL", "554 5.3.2 Relay not accepting messages"),
    ("RCPT", "450 4.2.1 Mailbox busy, try again later"),
    ("DATA", "451 4.3.0 Local error in processing, try again later"),
], ids=["stopped", "554-at-EHLO-and-HELO", "421-at-MAIL", "554-at-MAIL", "450-at-RCPT", "451-at-DATA"])
def test_a_login_mailed_while_the_relay_is_down_is_sent_once_when_it_is_back(
        relay: Stack, tap: Tap, api: str, sign_up: Callable[..., tuple[str, str]], fault: tuple[str, str]) -> None:
    stage, reply = fault
    log = push_log(relay)
    since = len(log.read_text())
    _, id_token = owner_with_a_device_push_cannot_reach(api, sign_up)
    if stage == "down":
        relay.smtp.stop()
    else:
        relay.smtp.fault(stage, reply)
    try:
        intruder = signed_in(api, id_token, GALAXY)
        assert wait_for(lambda: failed_attempts(log, since) >= 2, 30), "the push function never tried to mail"
        assert relay.smtp.messages() == []
    finally:
        if stage == "down":
            relay.smtp.start().wait_ready()
        relay.smtp.fault(None)
    emailed_once(relay, tap, intruder)
    assert relay.smtp.messages()[0]["Subject"] == "New sign-in to your account"


def test_a_relay_that_took_the_message_then_answered_quit_badly_gets_it_once(
        relay: Stack, tap: Tap, api: str, sign_up: Callable[..., tuple[str, str]]) -> None:
    """The relay accepted the message (250 after DATA): whatever it answers to QUIT, that email is
    out, so no redelivery may send it again."""
    log = push_log(relay)
    since = len(log.read_text())
    _, id_token = owner_with_a_device_push_cannot_reach(api, sign_up)
    relay.smtp.fault("QUIT", "421 4.3.2 Shutting down")
    try:
        intruder = signed_in(api, id_token, GALAXY)
        assert wait_for(relay.smtp.messages, 30)
        time.sleep(6)  # the fault stays on for any retry to see it
    finally:
        relay.smtp.fault(None)
    emailed_once(relay, tap, intruder)
    assert failed_attempts(log, since) == 0


def test_pubsub_delivering_the_event_again_after_the_email_went_out_sends_nothing(
        relay: Stack, tap: Tap, api: str, sign_up: Callable[..., tuple[str, str]]) -> None:
    """The message exactly as the trigger published it, published again: what Pub/Sub's
    at-least-once delivery may hand the push function after it has answered."""
    uid, id_token = owner_with_a_device_push_cannot_reach(api, sign_up)
    intruder = signed_in(api, id_token, GALAXY)
    emailed_once(relay, tap, intruder, settle=0)
    message = tap.new_login(intruder.session_id)
    again = {"data": message["data"], "attributes": message["attributes"], "orderingKey": uid}
    requests.post(f"{tap.emulator}/topics/{SESSION_EVENTS_TOPIC}:publish", json={"messages": [again]},
                  timeout=10).raise_for_status()
    event_id = message["attributes"]["eventId"]

    def copies() -> int:
        tap.new_login(intruder.session_id)  # pulls what is new
        return sum(m["attributes"].get("eventId") == event_id for m in tap.seen)

    assert wait_for(lambda: copies() == 2, 30)  # published again, under the same event id
    time.sleep(5)  # the push subscription delivers it at once: this user's queue is empty
    assert len(relay.smtp.messages()) == 1
