"""The cost table: Firestore reads and writes, Pub/Sub publishes and FCM calls of every call,
counted (counting.py) while a scenario plays through the api and its whole fan-out in this process.

The api runs through functions-framework's Flask app (inproc_api.py); the Firestore trigger and
the push function are served here on the ports the emulators deliver to (event_servers.py).
After each step the benchmark waits for its fan-out to finish, so each row holds exactly what
that call caused. The FCM column is also checked at the FCM stand-in, which counts the HTTP
requests it received.

The api's abuse limits are left at their defaults here (elsewhere the benchmark turns them off,
as the tests do), so their counter writes appear in the rows they belong to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.bench import seeding
from infra.bench.counting import Counter
from infra.bench.environment import environment
from infra.bench.event_servers import PUSH, TRIGGER, EventServers
from infra.bench.inproc_api import Device, InProcessApi
from infra.local.stack import IPAD, IPHONE, PIXEL, RATE_LIMITS_OFF, Stack

FUNCTIONS = ("api", TRIGGER, PUSH)


class Scenario:
    def __init__(self, stack: Stack, counter: Counter, events: EventServers) -> None:
        self.stack = stack
        self.counter = counter
        self.events = events
        self.api = InProcessApi()
        self.rows: list[dict[str, Any]] = []

    def _fcm_received(self) -> int:
        assert self.stack.fcm is not None
        return len(self.stack.fcm.messages())

    def step(self, name: str, action: Callable[[], object], *, settle_timeout: float = 60.0) -> dict[str, Any]:
        """Run one call, wait for its fan-out, and record what every function did because of it."""
        received = self._fcm_received()
        self.events.step = name
        with self.counter.scope(f"{name}|api"):
            action()
        self.events.touch()
        settled = self.events.settle(settle_timeout)
        tallies = self.counter.snapshot()
        row: dict[str, Any] = {"step": name, "settled": settled, "fcmReceived": self._fcm_received() - received}
        for function in FUNCTIONS:
            row[function] = tallies.get(f"{name}|{function}", {"invocations": 0})
        self.rows.append(row)
        return row

    def alert_token_for(self, push_token: str, new_session_id: str) -> str:
        assert self.stack.fcm is not None
        for record in reversed(self.stack.fcm.messages()):
            message = record["message"]
            data = message.get("data") or {}
            if message.get("token") == push_token and data.get("newSessionId") == new_session_id:
                return str(data["actionToken"])
        raise RuntimeError(f"no new-login alert to {push_token} about {new_session_id}")

    def play(self) -> None:
        _, id_token = self.stack.sign_up()
        phone = Device(self.api, dict(IPHONE))
        pixel = Device(self.api, dict(PIXEL))
        ipad = Device(self.api, dict(IPAD))
        self.step("POST /v1/sessions (first device)", lambda: phone.login(id_token, "tok-phone"))
        self.step("POST /v1/sessions (second device: alerts 1)", lambda: pixel.login(id_token, "tok-pixel"))
        self.step("POST /v1/sessions (same device again: replaces its session)",
                  lambda: pixel.login(id_token, "tok-pixel"))
        self.step("GET /v1/sessions/current", lambda: phone.call("GET", "/v1/sessions/current"))
        self.step("GET /v1/sessions (2 active)", lambda: phone.call("GET", "/v1/sessions"))
        previous_refresh = phone.refresh_token
        self.step("POST /v1/sessions/refresh", phone.refresh)
        self.step("POST /v1/sessions/refresh (retry within the grace window)",
                  lambda: self.api.call("POST", "/v1/sessions/refresh", body={"refreshToken": previous_refresh},
                                        headers={"X-Device-Id": phone.device_id}))
        self.step("PUT /v1/sessions/current/push-token",
                  lambda: phone.call("PUT", "/v1/sessions/current/push-token",
                                     {"token": "tok-phone-2", "provider": "fcm"}))
        self.step("POST /v1/sessions (third device: alerts 2)", lambda: ipad.login(id_token, "tok-ipad"))
        action_token = self.alert_token_for("tok-phone-2", ipad.session_id)
        self.step("POST /v1/alerts/respond (\"no\": closes the new session)",
                  lambda: self.api.call("POST", "/v1/alerts/respond",
                                        body={"actionToken": action_token, "answer": "no"}))
        self.step("DELETE /v1/sessions/{id}", lambda: phone.call("DELETE", f"/v1/sessions/{pixel.session_id}"))
        self.step("POST /v1/sessions (a closed device signs in again: alerts 1)",
                  lambda: pixel.login(id_token, "tok-pixel"))
        self.step("POST /v1/sessions/revoke-others (1 other)", lambda: phone.call("POST", "/v1/sessions/revoke-others"))
        self.step("POST /v1/sessions/logout", lambda: phone.call("POST", "/v1/sessions/logout"))
        self.step("GET /.well-known/jwks.json", lambda: self.api.call("GET", "/.well-known/jwks.json"))

    def revoke_others_at_scale(self, others: int) -> dict[str, Any]:
        """revoke-others for a user with `others` other active sessions, each with a push token."""
        uid, id_token = self.stack.sign_up()
        phone = Device(self.api, dict(IPHONE))
        self.events.step = "setup"
        self.events.paused = True  # the seeded logins must not alert anyone
        with self.counter.scope("setup"):
            phone.login(id_token, "tok-scale-phone")
        documents = []
        now = datetime.now(UTC)
        for number in range(others):
            sid = f"bench{number:05d}{phone.session_id[:8]}"
            fields = seeding.session_fields(number, 0, now)
            fields["uid"] = {"stringValue": uid}
            documents.append((f"users/{uid}/sessions/{sid}", fields))
            documents.append((f"sessionSecrets/{sid}", seeding.secret_fields(uid, f"tok-scale-{number}", now)))
        seeded = seeding.Seeder(self.stack.firestore_host, self.stack.project).seed(iter(documents))
        self.events.settle(60)
        self.events.paused = False
        name = f"POST /v1/sessions/revoke-others ({others} others)"
        row = self.step(name, lambda: phone.call("POST", "/v1/sessions/revoke-others"),
                        settle_timeout=max(120.0, others * 0.5))
        self.rows.remove(row)
        return {**row, "seededDocuments": seeded.documents, "others": others}


def cost_table(stack: Stack, *, revoke_others: int) -> dict[str, Any]:
    counter = Counter()
    events = EventServers(stack, counter)
    assert stack.fcm is not None
    with environment(dict.fromkeys(RATE_LIMITS_OFF)), counter.installed(), events.serving():
        events.step = "(earlier deliveries)"
        events.settle(10)
        stack.fcm.clear()
        scenario = Scenario(stack, counter, events)
        scenario.play()
        at_scale = scenario.revoke_others_at_scale(revoke_others)
    unattributed = counter.snapshot().get("unattributed")
    return {"steps": scenario.rows, "revokeOthersAtScale": at_scale, "unattributed": unattributed}
