"""Session events for the app's backend, end to end on the local stack: session writes -> the
Firestore trigger -> session-events -> the relay (publish_app_events) -> the app's topic ->
one ordered push subscription per webhook endpoint -> deliver_webhook -> receivers on loopback,
verified with the stock standardwebhooks library, and a pull subscription standing for an app's
backend reading the topic itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests
from google.cloud import firestore, pubsub_v1
from standardwebhooks import Webhook

from infra.local.stack import Stack
from infra.local.stack.emulators import APP_EVENTS_TOPIC
from mydevices import documents, store
from mydevices.bodies import DeviceInfo
from support.app_event_pipeline import delivering
from support.devices import IPHONE, signed_in
from support.devices import PIXEL as PIXEL_SPEC
from support.push import EventFunctions
from support.serving import serving
from support.waiting import wait_for
from support.webhook_receivers import Receiver

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/events/session-event.schema.json").read_text())
PIXEL = DeviceInfo("Pixel 8", "android")
SECRET = "whsec_" + "c2VjcmV0LW9mLXRoZS10ZXN0cy1vbmx5LTMyYnl0ZXM="  # made up here, for loopback only
DEAD_AFTER = 3
_uids = count(1)


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Receiver]]:
    found = {name: Receiver(mode).start() for name, mode in
             (("good", "ok"), ("failing", "fail"), ("slow", "slow"), ("down", "down"), ("dead", "fail"))}
    yield found
    for receiver in found.values():
        receiver.stop()


@pytest.fixture(scope="module")
def pipeline(stack: Stack, event_functions: EventFunctions, receivers: dict[str, Receiver]) -> Iterator[Any]:
    """The relay and the webhook function, their subscriptions, and the app backend's own pull."""
    hooks = {name: {"url": r.url, "secret": SECRET, "maxAttempts": DEAD_AFTER if name == "dead" else 100}
             for name, r in receivers.items()}
    env = {"MYDEVICES_WEBHOOKS_JSON": json.dumps(hooks), "MYDEVICES_WEBHOOK_TIMEOUT_SECONDS": "1"}
    project = stack.project
    attempts = {f"webhook-{name}": 100 if name != "dead" else 5 for name in receivers}
    with delivering(stack, env, "session-events-app", attempts) as (_, webhook):
        subscriber = pubsub_v1.SubscriberClient()
        backend = subscriber.subscription_path(project, "app-backend")
        subscriber.create_subscription(request=pubsub_v1.types.Subscription(
            name=backend, topic=f"projects/{project}/topics/{APP_EVENTS_TOPIC}", enable_message_ordering=True))
        yield AppBackend(subscriber, backend), webhook
        subscriber.delete_subscription(subscription=backend)
        subscriber.close()


class AppBackend:
    """An app's backend reading the app events topic: pulls, acks, keeps them in arrival order."""

    def __init__(self, subscriber: pubsub_v1.SubscriberClient, path: str) -> None:
        self.subscriber, self.path = subscriber, path
        self.events: list[dict[str, Any]] = []

    def pull(self) -> list[dict[str, Any]]:
        answer = self.subscriber.pull(subscription=self.path, max_messages=50, timeout=5)
        if answer.received_messages:
            self.events += [json.loads(m.message.data) for m in answer.received_messages]
            self.subscriber.acknowledge(subscription=self.path, ack_ids=[m.ack_id for m in answer.received_messages])
        return self.events

    def of(self, uid: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["data"]["uid"] == uid]


def _now() -> datetime:
    return datetime.now(UTC)


class User:
    """Writes a user's session documents as the flows do (documents.py), one change at a time,
    each waited for on the app's topic, so the order of the writes is the order of the events."""

    def __init__(self, db: firestore.Client, backend: AppBackend) -> None:
        self.uid, self.db, self.backend = f"events-user-{next(_uids)}", db, backend

    def _wait(self, more: int) -> None:
        want = len(self.backend.of(self.uid)) + more
        assert wait_for(lambda: len([e for e in self.backend.pull() if e["data"]["uid"] == self.uid]) >= want, 30)

    def open(self, sid: str, alert_reason: str | None = "new_device") -> None:
        self.db.document(f"users/{self.uid}/sessions/{sid}").set(
            documents.session(self.uid, f"d-{sid}", PIXEL, "London, United Kingdom", _now(), alert_reason=alert_reason))
        self._wait(1)

    def close(self, sid: str, reason: str, by: str | None = None, more: int = 0, **extra: Any) -> None:
        self.db.document(f"users/{self.uid}/sessions/{sid}").update(documents.revocation(reason, _now(), by, **extra))
        self._wait(1 + more)

    def confirm(self, sid: str) -> None:
        self.db.document(f"users/{self.uid}/sessions/{sid}").update({"confirmedAt": _now()})
        self._wait(1)

    def incident(self, replayed: str, live: str) -> None:
        store.security_events_of(self.uid).document(f"token_reused-{replayed}").set(
            {"type": "token_reused", "detail": "stale refresh token", "sessionId": replayed,
             "liveSessionId": live, "deviceId": f"d-{live}", "at": _now()})


def every_kind(user: User) -> list[tuple[str, dict[str, Any]]]:
    """Every event kind and closure reason; returns (type, what its data must say), in order."""
    user.open("s1", alert_reason=None)
    user.open("s2")
    user.confirm("s2")
    user.open("s3")
    user.close("s3", "rejected_by_user", "s3", more=1)
    expected: list[tuple[str, dict[str, Any]]] = [("session.opened", {"sessionId": "s1", "alerted": False}),
                ("session.opened", {"sessionId": "s2", "alerted": True, "alertReason": "new_device"}),
                ("alert.answered", {"sessionId": "s2", "answer": "yes"}),
                ("session.opened", {"sessionId": "s3", "alerted": True}),
                ("alert.answered", {"sessionId": "s3", "answer": "no"}),
                ("session.closed", {"sessionId": "s3", "reason": "rejected_by_user",
                                    "closedBy": {"kind": "alert_answer", "sessionId": "s3"}})]
    closures = [("user_revoked", "s2", "user"), ("revoke_others", "s2", "user"), ("logout", None, "logout"),
                ("expired_idle", None, "expiry"), ("expired_max_age", None, "expiry"),
                ("credentials_revoked", None, "account"), ("account_disabled", None, "account")]
    for n, (reason, by, kind) in enumerate(closures):
        sid = f"c{n}"
        user.open(sid, alert_reason=None)
        user.close(sid, reason, by)
        expected += [("session.opened", {"sessionId": sid, "alerted": False}),
                     ("session.closed", {"sessionId": sid, "reason": reason,
                                         "closedBy": {"kind": kind, "sessionId": by}})]
    user.open("r1", alert_reason=None)
    user.close("r1", "replaced", replacedBy="r2")
    user.open("t1", alert_reason=None)
    user.incident("s1", "t1")
    user.close("t1", "token_reused", "s1", more=1)
    expected += [("session.opened", {"sessionId": "r1"}),
                 ("session.closed", {"sessionId": "r1", "closedBy": {"kind": "same_device", "sessionId": "r2"}}),
                 ("session.opened", {"sessionId": "t1"}),
                 ("incident.copied_token", {"sessionId": "s1", "liveSessionId": "t1", "deviceId": "d-t1"}),
                 ("session.closed", {"sessionId": "t1", "closedBy": {"kind": "copied_token", "sessionId": "s1"}})]
    return expected


def verified(receiver: Receiver, uid: str) -> list[tuple[dict[str, Any], bool]]:
    """(event, acknowledged at once) for every request of this user, each verified with the stock library."""
    out = []
    for got in receiver.attempts():
        event = Webhook(SECRET).verify(got.body, got.headers)  # raises on a bad signature
        assert got.headers["webhook-id"] == event["id"]
        if event["data"]["uid"] == uid:
            out.append((event, got.status < 300 and got.prompt))
    return out


def taken(receiver: Receiver, uid: str) -> list[str]:
    return [event["id"] for event, ok in verified(receiver, uid) if ok]


def test_every_kind_reaches_the_topic_and_a_webhook_signed_in_order(
        pipeline: Any, receivers: dict[str, Receiver]) -> None:
    backend, _ = pipeline
    user = User(store.db(), backend)
    expected = every_kind(user)
    on_topic = backend.of(user.uid)
    assert [(e["type"], {k: e["data"].get(k) for k in want}) for e, (_, want) in zip(on_topic, expected, strict=True)] \
        == expected
    for event in on_topic:
        jsonschema_rs.validate(SCHEMA, event)
    ids = [e["id"] for e in on_topic]
    assert len(set(ids)) == len(ids)
    good = receivers["good"]
    assert wait_for(lambda: len(taken(good, user.uid)) >= len(ids), 30)
    assert taken(good, user.uid) == ids  # in order, each once
    assert [e for e, _ in verified(good, user.uid)] == on_topic  # the same envelope both ways


def test_a_receiver_down_slow_or_failing_gets_everything_in_order_once_it_recovers(
        pipeline: Any, receivers: dict[str, Receiver]) -> None:
    backend, webhook = pipeline
    user = User(store.db(), backend)
    for sid in ("a", "b", "c"):
        user.open(sid, alert_reason=None)
    user.close("b", "user_revoked", "a")
    user.close("c", "logout")
    ids = [e["id"] for e in backend.of(user.uid)]
    log = Path(webhook.log_path)
    first = ids[0]
    # every faulty receiver has refused (or never answered) the user's first event more than once
    assert wait_for(lambda: all(log.read_text().count(f"webhook {name}: event {first} attempt") >= 2
                                for name in ("failing", "slow", "down")), 30)
    for name in ("failing", "slow", "down"):
        assert taken(receivers[name], user.uid) == []
        receivers[name].recover()
    for name in ("failing", "slow", "down"):
        receiver = receivers[name]
        assert wait_for(lambda: len(taken(receiver, user.uid)) >= len(ids), 60), name  # noqa: B023 - used at once
        assert taken(receiver, user.uid) == ids, name  # in order, and none twice once taken


def test_a_delivery_that_keeps_failing_is_kept_and_logged_as_dead(pipeline: Any,
                                                                  receivers: dict[str, Receiver]) -> None:
    backend, webhook = pipeline
    user = User(store.db(), backend)
    user.open("z1", alert_reason=None)
    [event] = backend.of(user.uid)
    dead = store.db().collection("deadWebhooks").document(f"dead-{event['id']}")
    assert wait_for(lambda: dead.get().exists, 60)
    record = dead.get().to_dict() or {}
    assert (record["endpoint"], record["attempts"], record["lastError"]) == ("dead", DEAD_AFTER, "HTTP 500")
    assert json.loads(record["payload"]) == event
    assert len([e for e, _ in verified(receivers["dead"], user.uid)]) == DEAD_AFTER
    logged = f"webhook dead: event {event['id']} is dead after {DEAD_AFTER} attempts"
    assert logged in Path(webhook.log_path).read_text()


def test_a_close_from_another_device_names_that_devices_session(pipeline: Any, api: str, sign_up: Any) -> None:
    backend, _ = pipeline
    uid, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE)
    pixel = signed_in(api, id_token, PIXEL_SPEC)
    assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200

    def closure() -> list[dict[str, Any]]:
        backend.pull()
        return [e for e in backend.of(uid) if e["type"] == "session.closed"]

    [event] = wait_for(closure, 30)
    assert event["data"]["sessionId"] == pixel.session_id
    assert event["data"]["closedBy"] == {"kind": "user", "sessionId": phone.session_id}


def test_a_close_by_support_says_support(pipeline: Any, api: str, stack: Stack, sign_up: Any) -> None:
    """The support API (flows/support.py) closes through the same path: the app's backend hears
    `session.closed` with `closedBy.kind` support, and the reason the user sees stays on the session."""
    from firebase_admin import auth

    from mydevices.firebase_app import app

    backend, _ = pipeline
    uid, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE)
    agent_email = f"agent-{next(_uids)}-{uid[:6]}@example.com"
    agent_uid, _ = stack.auth.sign_up(agent_email)
    auth.set_custom_user_claims(agent_uid, {"mydevicesSupport": True}, app=app())
    _, agent_token = stack.auth.sign_in(agent_email)
    with serving(stack, "support_api", signature_type="http", own_port=True) as support:
        closed = requests.post(f"{support.url}/v1/support/users/{uid}/sessions/{phone.session_id}/close",
                               json={"reason": "Lost phone"}, headers={"Authorization": f"Bearer {agent_token}"},
                               timeout=30)
    assert closed.status_code == 200, closed.text

    def closure() -> list[dict[str, Any]]:
        backend.pull()
        return [e for e in backend.of(uid) if e["type"] == "session.closed"]

    [event] = wait_for(closure, 30)
    jsonschema_rs.validate(SCHEMA, event)
    assert (event["data"]["sessionId"], event["data"]["reason"], event["data"]["closedBy"]) == \
        (phone.session_id, "closed_by_support", {"kind": "support", "sessionId": None})
