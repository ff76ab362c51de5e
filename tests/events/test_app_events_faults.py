"""Session events for the app's backend while Pub/Sub is down, end to end: real logins and a
closure through the api, the Firestore trigger (which parks what it cannot publish in the outbox),
the relay, the app's topic, and an app backend pulling it in order.

Two faults around a login and a closure: the Pub/Sub emulator stopped (nothing can publish or
deliver), and Pub/Sub up but unreachable from the relay only (through a proxy that is cut; its
publishes fail while Pub/Sub keeps delivering to it, and a new instance takes over). Afterwards the
backend has every event once by id, none again under a new id, in the user's order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore, pubsub_v1

from infra.local.stack import FunctionServer, Stack
from infra.local.stack.emulators import (
    APP_EVENTS_DEAD_TOPIC,
    APP_EVENTS_TOPIC,
    SESSION_EVENTS_TOPIC,
    ordered_push_subscription,
)
from mydevices.push import outbox
from support.devices import IPAD, IPHONE, PIXEL, Device, signed_in
from support.serving import serving
from support.tcp_proxy import TcpProxy
from support.waiting import wait_for

PUBLISH_TIMEOUT = "3"  # seconds the trigger and the relay wait for Pub/Sub: fail fast while it is away
RELAY_SUBSCRIPTION = "session-events-app-faults"
BACKEND = "app-backend-faults"


@dataclass
class Pipeline:
    stack: Stack
    relay: FunctionServer
    proxy: TcpProxy  # between the relay and Pub/Sub
    subscriber: pubsub_v1.SubscriberClient
    events: list[dict[str, Any]]

    def plumb(self) -> None:
        """The relay's subscription and the backend's; made again after the emulator restarts
        (it keeps nothing; the stack remakes only its own topics and subscription)."""
        host, project = self.stack.pubsub.host, self.stack.project
        ordered_push_subscription(host, project, SESSION_EVENTS_TOPIC, RELAY_SUBSCRIPTION,
                                  f"{self.relay.url}/projects/{project}/topics/{SESSION_EVENTS_TOPIC}",
                                  dead_topic=APP_EVENTS_DEAD_TOPIC, max_attempts=100, backoff=(0.5, 2))
        self.subscriber.create_subscription(request=pubsub_v1.types.Subscription(
            name=self.subscriber.subscription_path(project, BACKEND),
            topic=f"projects/{project}/topics/{APP_EVENTS_TOPIC}", enable_message_ordering=True))

    def pull(self, uid: str) -> list[dict[str, Any]]:
        """Everything the backend has received about this user, in arrival order (acknowledged)."""
        path = self.subscriber.subscription_path(self.stack.project, BACKEND)
        answer = self.subscriber.pull(subscription=path, max_messages=50, timeout=5)
        if answer.received_messages:
            self.events += [json.loads(m.message.data) for m in answer.received_messages]
            self.subscriber.acknowledge(subscription=path, ack_ids=[m.ack_id for m in answer.received_messages])
        return [e for e in self.events if e["data"]["uid"] == uid]


@pytest.fixture(scope="module")
def pipeline(stack: Stack, api: str) -> Iterator[Pipeline]:
    fail_fast = {"MYDEVICES_PUBLISH_TIMEOUT_SECONDS": PUBLISH_TIMEOUT}
    trigger = stack.start_function("on_session_written", extra_env=fail_fast)
    push = stack.start_function("send_session_push")
    proxy = TcpProxy(stack.pubsub.host).start()
    relay_env = {"PUBSUB_EMULATOR_HOST": proxy.host, **fail_fast}
    try:
        assert (trigger.port, push.port) == (stack.ports.trigger, stack.ports.push), "the event ports are taken"
        with serving(stack, "publish_app_events", relay_env, signature_type="cloudevent", own_port=True) as relay:
            found = Pipeline(stack, relay, proxy, pubsub_v1.SubscriberClient(), [])
            found.plumb()
            yield found
            found.subscriber.close()
    finally:
        trigger.stop()
        push.stop()
        proxy.close()
        # later modules get a Pub/Sub with nothing in flight toward functions now gone, and an empty outbox
        stack.pubsub.stop(kill=True)
        stack.pubsub.start().wait_ready()
        db = firestore.Client(project=stack.project)
        for snapshot in db.collection(outbox.COLLECTION).stream():
            snapshot.reference.delete()


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["data"]["sessionId"]) for e in events]


def once_each_in_order(pipeline: Pipeline, uid: str, expected: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The user's events once they are all in: each (kind, session) under one id only, and, a
    redelivery under the same id aside, in the order of `expected`."""
    assert wait_for(lambda: len({e["id"] for e in pipeline.pull(uid)}) >= len(expected), 60), kinds(pipeline.pull(uid))
    time.sleep(3)  # anything published twice would be here by now
    got = pipeline.pull(uid)
    first: dict[str, dict[str, Any]] = {}
    for event in got:
        first.setdefault(event["id"], event)
    assert kinds(list(first.values())) == expected  # in order, nothing lost, nothing under a second id
    for event in got:
        assert event == first[event["id"]]  # a redelivery is the same event under the same id
    return list(first.values())


def test_the_emulator_stopped_around_a_login_and_a_closure_loses_duplicates_and_reorders_nothing(
        pipeline: Pipeline, api: str, sign_up: Callable[..., tuple[str, str]], db: firestore.Client) -> None:
    stack = pipeline.stack
    uid, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE)
    assert wait_for(lambda: pipeline.pull(uid), 30)
    stack.pubsub.stop(kill=True)
    try:
        tablet = signed_in(api, id_token, IPAD)  # the api needs no Pub/Sub
        assert phone.delete(f"/v1/sessions/{tablet.session_id}").status_code == 200

        def parked() -> int:
            return sum((snap.to_dict() or {}).get("event", {}).get("uid") == uid
                       for snap in db.collection(outbox.COLLECTION).stream())

        assert wait_for(lambda: parked() == 2, 30), "the trigger did not park the login and the closure"
    finally:
        stack.pubsub.start().wait_ready()
        pipeline.plumb()
    someone_else = sign_up()[1]
    signed_in(api, someone_else, PIXEL)  # any session change: the trigger publishes what it parked first
    events = once_each_in_order(pipeline, uid, [("session.opened", phone.session_id),
                                                ("session.opened", tablet.session_id),
                                                ("session.closed", tablet.session_id)])
    assert events[2]["data"]["closedBy"] == {"kind": "user", "sessionId": phone.session_id}
    assert wait_for(lambda: parked() == 0, 10)


def test_pubsub_unreachable_from_the_relay_delays_the_events_and_loses_or_reorders_none(
        pipeline: Pipeline, api: str, sign_up: Callable[..., tuple[str, str]]) -> None:
    uid, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE)
    assert wait_for(lambda: pipeline.pull(uid), 30)
    log = Path(pipeline.relay.log_path)
    since = len(log.read_text())
    pipeline.proxy.down()
    try:
        tablet: Device = signed_in(api, id_token, IPAD)
        assert phone.delete(f"/v1/sessions/{tablet.session_id}").status_code == 200
        # the relay has failed the tablet's login more than once (Pub/Sub retries it), and published nothing
        assert wait_for(lambda: log.read_text()[since:].count("Traceback") >= 2, 60), log.read_text()[since:]
        assert len(pipeline.pull(uid)) == 1
        # A new instance takes over, as Cloud Functions' would: the failed one's client may still be
        # retrying in the background, which a deployed instance, idle after answering, would not do.
        pipeline.relay.stop(kill=True)
    finally:
        pipeline.proxy.up()
        if not pipeline.relay.running:
            pipeline.relay.start().wait_ready()
    once_each_in_order(pipeline, uid, [("session.opened", phone.session_id),
                                       ("session.opened", tablet.session_id),
                                       ("session.closed", tablet.session_id)])
