"""What session events (app_events/) and the alert email (push/alert_email.py) add to a login and
a closure, counted like every other cost row (cost.py), on the real emulators.

Session events run behind the push fan-out: the relay `publish_app_events` on a second
subscription of session-events, and `deliver_webhook` on one ordered subscription per webhook
endpoint of the app's topic. For these rows both are served in this process (event_servers.py),
their subscriptions created as infra/terraform declares them, with two webhook endpoints, so the
per-endpoint cost shows as twice one endpoint's; each endpoint is a loopback receiver that answers
204 and counts what reached it. The scenario's user has a verified address and a first device
without a push token, so the second login's "Was that you?" can only go by email: that row holds
what a mailed login adds (the Auth lookup for the address, the query for the alerted session, the
SMTP send), also checked at the SMTP stand-in. Then one closure.

The subscriptions exist only for these rows and are deleted afterwards, so the other rows hold
what a deployment without session events pays.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.bench.environment import environment
from infra.bench.event_servers import RELAY, WEBHOOK
from infra.bench.inproc_api import Device
from infra.local.stack import HOST, IPAD, IPHONE, Stack, environ
from infra.local.stack.emulators import (
    APP_EVENTS_DEAD_TOPIC,
    APP_EVENTS_TOPIC,
    SESSION_EVENTS_TOPIC,
    ordered_push_subscription,
)
from infra.local.stack.ports import free_ports

ENDPOINTS = ("bench-a", "bench-b")
RELAY_SUBSCRIPTION = "bench-session-events-app"
SECRET = "whsec_" + "YmVuY2gtb25seS1sb29wYmFjay1zZWNyZXQtMzJi"  # made up for loopback receivers

FIRST_LOGIN = "POST /v1/sessions (first device, no push token; session events on, 2 webhook endpoints)"
EMAILED_LOGIN = ("POST /v1/sessions (second device: alerts the first, which push cannot reach, so by email; "
                 "session events on, 2 webhook endpoints)")
CLOSE = "DELETE /v1/sessions/{id} (session events on, 2 webhook endpoints)"
ROWS = (FIRST_LOGIN, EMAILED_LOGIN, CLOSE)


class Receiver:
    """A webhook endpoint on loopback: answers 204 to every POST and counts them."""

    def __init__(self) -> None:
        owner = self
        self.posts = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with owner._lock:
                    owner.posts += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="bench-webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self._lock:
            return self.posts


@contextlib.contextmanager
def _receivers() -> Iterator[dict[str, Receiver]]:
    found = {name: Receiver() for name in ENDPOINTS}
    for receiver in found.values():
        receiver.thread.start()
    try:
        yield found
    finally:
        for receiver in found.values():
            receiver.server.shutdown()
            receiver.server.server_close()


@contextlib.contextmanager
def _subscriptions(stack: Stack, relay_url: str, webhook_url: str) -> Iterator[None]:
    host, project = stack.pubsub.host, stack.project
    names = [RELAY_SUBSCRIPTION, *(f"webhook-{name}" for name in ENDPOINTS)]
    ordered_push_subscription(host, project, SESSION_EVENTS_TOPIC, RELAY_SUBSCRIPTION,
                              f"{relay_url}/projects/{project}/topics/{SESSION_EVENTS_TOPIC}",
                              dead_topic=APP_EVENTS_DEAD_TOPIC, backoff=(0.5, 2))
    for name in names[1:]:
        ordered_push_subscription(host, project, APP_EVENTS_TOPIC, name, webhook_url,
                                  dead_topic=APP_EVENTS_DEAD_TOPIC, backoff=(0.5, 2))
    try:
        yield
    finally:
        from google.cloud import pubsub_v1

        with environ({"PUBSUB_EMULATOR_HOST": host}):
            subscriber = pubsub_v1.SubscriberClient()
        try:
            for name in names:
                with contextlib.suppress(Exception):  # gone already (an emulator restart): nothing to undo
                    subscriber.delete_subscription(subscription=subscriber.subscription_path(project, name))
        finally:
            subscriber.close()


def rows(scenario: Any) -> list[dict[str, Any]]:
    """Play a login, a mailed login and a closure with session events on: their rows, each with
    the relay's and the webhook function's tallies, what the receivers and the SMTP stand-in got."""
    from firebase_admin import auth

    from mydevices.firebase_app import app

    stack: Stack = scenario.stack
    relay_port, webhook_port = free_ports(2)
    uid, id_token = stack.auth.sign_up()
    scenario.setup(lambda: auth.update_user(uid, email_verified=True, app=app()))
    laptop, tablet = Device(scenario.api, dict(IPHONE)), Device(scenario.api, dict(IPAD))
    found: list[dict[str, Any]] = []
    with _receivers() as receivers:
        hooks = {name: {"url": receiver.url, "secret": SECRET} for name, receiver in receivers.items()}
        with environment({"MYDEVICES_WEBHOOKS_JSON": json.dumps(hooks)}), \
                scenario.events.serving_app_events(relay_port, webhook_port, len(ENDPOINTS)), \
                _subscriptions(stack, f"http://{HOST}:{relay_port}", f"http://{HOST}:{webhook_port}"):
            steps = ((FIRST_LOGIN, lambda: laptop.login(id_token)),
                     (EMAILED_LOGIN, lambda: tablet.login(id_token, "tok-events-tablet")),
                     (CLOSE, lambda: laptop.call("DELETE", f"/v1/sessions/{tablet.session_id}")))
            for name, action in steps:
                posts, mailed = sum(r.count() for r in receivers.values()), len(stack.smtp.messages())
                entries = _activity_entries(uid)
                row = scenario.step(name, action)
                scenario.rows.remove(row)
                tallies = scenario.counter.snapshot()
                row[RELAY] = tallies.get(f"{name}|{RELAY}", {"invocations": 0})
                row[WEBHOOK] = tallies.get(f"{name}|{WEBHOOK}", {"invocations": 0})
                row["endpoints"] = len(ENDPOINTS)
                row["webhookPosts"] = sum(r.count() for r in receivers.values()) - posts
                row["smtpReceived"] = len(stack.smtp.messages()) - mailed
                row["activityEntries"] = _activity_entries(uid) - entries
                found.append(row)
    return found


def _activity_entries(uid: str) -> int:
    """The user's security-activity entries so far: the relay records one per app event (docs/activity.md)."""
    from mydevices import store
    from mydevices.activity import record

    return sum(1 for _ in store.db().collection(store.USERS).document(uid).collection(record.COLLECTION).stream())
