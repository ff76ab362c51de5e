"""The cost table: Firestore reads and writes, Firebase Auth lookups, Pub/Sub publishes and FCM
calls of every call, counted (counting.py) while a scenario plays through the api and its whole fan-out in this process.

The api runs through functions-framework's Flask app (inproc_api.py); the Firestore trigger and
the push function are served here on the ports the emulators deliver to (event_servers.py).
After each step the benchmark waits for its fan-out to finish, so each row holds exactly what
that call caused. The FCM column is also checked at the FCM stand-in, which counts the HTTP
requests it received.

The api's abuse limits are left at their defaults here (elsewhere the benchmark turns them off,
as the tests do), so their counter writes appear in the rows they belong to. The fresh-session
window is off: the scenario closes sessions seconds after opening them, which the product allows
only to sessions a day old. A closure from elsewhere asks for a Firebase sign-in made after it,
so the scenario signs in again (a second later: `auth_time` has whole seconds) where a person would.

Last, the guards for other teams' functions (guards.py): the Python `require_session` counted here,
and @mydevices/server's `requireSession` counted in its own Node process at the same layer of its
client, on one live session, each call apart (`Scenario.guards`).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.bench import guards, seeding, session_events
from infra.bench.activity_cost import ActivityCost
from infra.bench.counting import Counter
from infra.bench.environment import environment
from infra.bench.event_servers import PUSH, TRIGGER, EventServers
from infra.bench.inproc_api import Device, InProcessApi
from infra.local.stack import FRESH_SESSION_WINDOW_OFF, IPAD, IPHONE, PIXEL, RATE_LIMITS_OFF, Stack

FUNCTIONS = ("api", TRIGGER, PUSH)

# Rows that capacity.py builds on (and tests/platform/test_benchmarks.py checks), named once.
NEW_DEVICE_LOGIN = "POST /v1/sessions (second device: alerts 1)"
THIRD_DEVICE_LOGIN = "POST /v1/sessions (third device: alerts 2)"
VALIDATE = "GET /v1/sessions/current"
LIST = "GET /v1/sessions (2 active)"
REFRESH = "POST /v1/sessions/refresh"
REFRESH_RECORDING_ACTIVITY = "POST /v1/sessions/refresh (last activity recorded an interval ago: records it)"
PUSH_TOKEN = "PUT /v1/sessions/current/push-token"
ALERT_NO = "POST /v1/alerts/respond (\"no\": closes the new session, untrusts its device)"
CLOSE = "DELETE /v1/sessions/{id}"
LOGIN_AFTER_CLOSURE = "POST /v1/sessions (a closed device, after a fresh sign-in: alerts 1)"
REVOKE_ONE_OTHER = "POST /v1/sessions/revoke-others (1 other)"
LOGOUT = "POST /v1/sessions/logout"
MALFORMED_LOGIN = "POST /v1/sessions (a malformed ID token: 401 invalid_token)"
COPIED_TOKEN = "POST /v1/sessions/refresh (a copied token two rotations old: 401 token_reused, closes all 1)"
STALE_REPLAY = "POST /v1/sessions/refresh (the stale token replayed after the incident: 401 session_revoked)"
# Session lifetimes and step-up (lifetimes.py): the deadlines ride on the session document.
LIFETIMES_VALIDATE = "GET /v1/sessions/current (lifetimes on: idle timeout, and 4 h asked at login)"
LIFETIMES_REFRESH = "POST /v1/sessions/refresh (lifetimes on: idle timeout, and 4 h asked at login)"
REAUTHENTICATE = "POST /v1/sessions/current/reauthenticate (a fresh sign-in's ID token)"
AUTO_CLOSE = "PUT /v1/sessions/auto-close (7 days, 2 active)"
EXPIRED_FIRST_SEEN = "POST /v1/sessions/refresh (idle past its deadline, first seen: 401 session_expired, closes it)"
EXPORT = "GET /v1/account/export (2 sessions, 2 devices, their secrets, 1 closure)"
SWEEP = "sweep_deleted_users (one run over every user; 100 seeded here, 1 of them deleted: 1 session)"
SWEPT_USERS = 100
# The support API (support_api, flows/support.py): a closure by an agent, against the user's own DELETE.
SUPPORT_CLOSE = "support_api POST /v1/support/users/{uid}/sessions/{id}/close (an agent closes 1)"


class Scenario:
    def __init__(self, stack: Stack, counter: Counter, events: EventServers) -> None:
        self.stack = stack
        self.counter = counter
        self.events = events
        self.api = InProcessApi()
        self.rows: list[dict[str, Any]] = []
        self.activity: ActivityCost | None = None  # collects each step's session events (activity_cost.py)

    def _fcm_received(self) -> int:
        return len(self.stack.fcm.messages())

    def step(self, name: str, action: Callable[[], object], *, settle_timeout: float = 60.0) -> dict[str, Any]:
        """Run one call, wait for its fan-out, and record what every function did because of it."""
        received = self._fcm_received()
        self.events.step = name
        with self.counter.scope(f"{name}|api"):
            action()
        self.events.touch()
        settled = self.events.settle(settle_timeout)
        if self.activity is not None:
            self.activity.collect(name)
        tallies = self.counter.snapshot()
        row: dict[str, Any] = {"step": name, "settled": settled, "fcmReceived": self._fcm_received() - received}
        for function in FUNCTIONS:
            row[function] = tallies.get(f"{name}|{function}", {"invocations": 0})
        self.rows.append(row)
        return row

    def setup(self, action: Callable[[], object], *, quiet: bool = False, deliveries: int = 0) -> None:
        """Calls that a later row needs but that are no row's cost: counted apart (scope `setup`),
        their fan-out awaited; `quiet` answers their deliveries without running the event functions,
        and waits for `deliveries` of them first (a delivery the emulator makes after the pause ends
        would run the trigger in the next row)."""
        self.events.step = "setup"
        self.events.paused = quiet
        answered = self.events.answered_paused
        try:
            with self.counter.scope("setup"):
                action()
            deadline = time.monotonic() + 60
            while self.events.answered_paused < answered + deliveries and time.monotonic() < deadline:
                time.sleep(0.02)
            self.events.settle(60)
            if self.activity is not None:
                self.activity.collect("setup")  # no row's cost
        finally:
            self.events.paused = False

    def fresh_sign_in(self, email: str) -> str:
        """A Firebase ID token from a sign-in made after the closures so far, as the app gets one
        when the user types the password again (a second later: `auth_time` has whole seconds)."""
        time.sleep(1.05)
        return self.stack.auth.sign_in(email)[1]

    def set_back_activity(self, device: Device) -> None:
        from mydevices import clock, store
        from mydevices.config import settings

        payload = device.access_token.split(".")[1]
        uid = str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])
        recorded = clock.utcnow() - timedelta(seconds=settings().last_active_interval)
        store.session_ref(uid, device.session_id).update({"lastActiveAt": recorded})

    def alert_token_for(self, push_token: str, new_session_id: str) -> str:
        for record in reversed(self.stack.fcm.messages()):
            message = record["message"]
            data = message.get("data") or {}
            if message.get("token") == push_token and data.get("newSessionId") == new_session_id:
                return str(data["actionToken"])
        raise RuntimeError(f"no new-login alert to {push_token} about {new_session_id}")

    def play(self) -> None:
        email = f"bench-{secrets.token_hex(6)}@example.com"
        _, id_token = self.stack.auth.sign_up(email)
        phone = Device(self.api, dict(IPHONE))
        pixel = Device(self.api, dict(PIXEL))
        ipad = Device(self.api, dict(IPAD))
        self.step("POST /v1/sessions (first device)", lambda: phone.login(id_token, "tok-phone"))
        self.step(NEW_DEVICE_LOGIN, lambda: pixel.login(id_token, "tok-pixel"))
        self.step("POST /v1/sessions (same device again, a mobile re-login: replaces its session, alerts 1)",
                  lambda: pixel.login(id_token, "tok-pixel"))
        self.step(VALIDATE, lambda: phone.call("GET", "/v1/sessions/current"))
        self.step(LIST, lambda: phone.call("GET", "/v1/sessions"))
        previous_refresh = phone.refresh_token
        self.step(REFRESH, phone.refresh)
        self.step("POST /v1/sessions/refresh (retry within the grace window)", lambda: phone.refresh(previous_refresh))
        # A refresh records activity once the recorded one is an interval old: the scenario's calls
        # are seconds apart, so the phone's lastActiveAt is set back an interval first (no row's cost).
        self.setup(lambda: self.set_back_activity(phone), quiet=True, deliveries=1)
        self.step(REFRESH_RECORDING_ACTIVITY, phone.refresh)
        self.step(PUSH_TOKEN,
                  lambda: phone.call("PUT", "/v1/sessions/current/push-token",
                                     {"token": "tok-phone-2", "provider": "fcm"}))
        self.step(THIRD_DEVICE_LOGIN, lambda: ipad.login(id_token, "tok-ipad"))
        action_token = self.alert_token_for("tok-phone-2", ipad.session_id)
        self.step(ALERT_NO, lambda: self.api.call("POST", "/v1/alerts/respond",
                                                  body={"actionToken": action_token, "answer": "no"}))
        self.step(CLOSE, lambda: phone.call("DELETE", f"/v1/sessions/{pixel.session_id}"))
        self.step("POST /v1/sessions (after a closure, the ID token of an earlier sign-in: 401 "
                  "reauthentication_required)",
                  lambda: pixel.login(id_token, "tok-pixel", expect=401, code="reauthentication_required"))
        fresh_token = self.fresh_sign_in(email)
        self.step(LOGIN_AFTER_CLOSURE, lambda: pixel.login(fresh_token, "tok-pixel"))
        self.step(REVOKE_ONE_OTHER, lambda: phone.call("POST", "/v1/sessions/revoke-others"))
        self.step(LOGOUT, lambda: phone.call("POST", "/v1/sessions/logout"))
        self.step("GET /.well-known/jwks.json", lambda: self.api.call("GET", "/.well-known/jwks.json"))
        self.step(MALFORMED_LOGIN,
                  lambda: Device(self.api, dict(IPHONE)).login("not-an-id-token", expect=401, code="invalid_token"))
        self.copied_token_incident()
        self.lifetimes()
        self.data_rights()
        self.support_closure()

    def copied_token_incident(self) -> None:
        """A refresh token copied off a device and used after the device has rotated past it (the
        incident: everyone signed out), then replayed again, as a thief's script would."""
        _, id_token = self.stack.auth.sign_up()
        laptop = Device(self.api, dict(IPHONE))
        copied: list[str] = []

        def two_rotations() -> None:
            laptop.login(id_token, "tok-incident")
            copied.append(laptop.refresh_token)
            laptop.refresh()
            laptop.refresh()

        self.setup(two_rotations)
        self.step(COPIED_TOKEN, lambda: laptop.refresh(copied[0], expect=401, code="token_reused"))
        self.step(STALE_REPLAY, lambda: laptop.refresh(copied[0], expect=401, code="session_revoked"))

    def support_closure(self) -> None:
        """An agent (a Firebase user with the mydevicesSupport claim) closes one of a user's two
        sessions: its Auth lookup (the agent's standing and claim) and its audit record are what it
        adds to the user's own closure, less the caller's session read."""
        from firebase_admin import auth

        from mydevices.firebase_app import app

        uid, id_token = self.stack.auth.sign_up()
        phone, pixel = Device(self.api, dict(IPHONE)), Device(self.api, dict(PIXEL))
        agent_email = f"bench-agent-{secrets.token_hex(6)}@example.com"
        agent: list[str] = []

        def sign_in_both() -> None:
            phone.login(id_token, "tok-support-phone")
            pixel.login(id_token, "tok-support-pixel")
            agent_uid, _ = self.stack.auth.sign_up(agent_email)
            auth.set_custom_user_claims(agent_uid, {"mydevicesSupport": True}, app=app())
            agent.append(self.stack.auth.sign_in(agent_email)[1])

        self.setup(sign_in_both)
        support = InProcessApi("support_api")
        self.step(SUPPORT_CLOSE, lambda: support.call(
            "POST", f"/v1/support/users/{uid}/sessions/{pixel.session_id}/close", body={"reason": "bench"},
            headers={"Authorization": f"Bearer {agent[0]}"}))

    def lifetimes(self) -> None:
        """A session with both deadlines (the platform's idle timeout, and an absolute lifetime its
        login asked for), re-verification, the user's auto-close choice, and the first call to see a
        session past its idle deadline: 8 days pass on this process's clock (clock.shift), not waited."""
        from mydevices import clock  # imported where used, as binding.py does: after the environment is set

        email = f"bench-{secrets.token_hex(6)}@example.com"
        _, id_token = self.stack.auth.sign_up(email)
        phone = Device(self.api, dict(IPHONE))
        drawer = Device(self.api, dict(IPAD))
        self.setup(lambda: (phone.login(id_token, sessionLifetimeSeconds=4 * 3600), drawer.login(id_token)))
        self.step(LIFETIMES_VALIDATE, lambda: phone.call("GET", "/v1/sessions/current"))
        self.step(LIFETIMES_REFRESH, phone.refresh)
        fresh = self.fresh_sign_in(email)
        self.step(REAUTHENTICATE, lambda: phone.call("POST", "/v1/sessions/current/reauthenticate", {"idToken": fresh}))
        self.step(AUTO_CLOSE, lambda: phone.call("PUT", "/v1/sessions/auto-close", {"afterDays": 7}))
        clock.shift(8 * 86400)
        try:
            self.step(EXPIRED_FIRST_SEEN, lambda: drawer.refresh(expect=401, code="session_expired"))
        finally:
            clock.shift(-8 * 86400)

    def data_rights(self) -> None:
        """The export of a user with two devices, one closed, and one run of the deleted-users sweep
        over every user of the stack: SWEPT_USERS seeded here (in Auth, one session and its secret
        each), one of them deleted from Auth first. The row's `checked` says how many users it walked."""
        from firebase_admin import auth

        from mydevices import deleted_users
        from mydevices.firebase_app import app

        _, id_token = self.stack.auth.sign_up()
        phone, pixel = Device(self.api, dict(IPHONE)), Device(self.api, dict(PIXEL))
        self.setup(lambda: (phone.login(id_token, "tok-export-phone"), pixel.login(id_token, "tok-export-pixel"),
                            phone.call("DELETE", f"/v1/sessions/{pixel.session_id}")))
        self.step(EXPORT, lambda: phone.call("GET", "/v1/account/export"))
        uids: list[str] = []

        def seed() -> None:
            now = datetime.now(UTC)
            uids.extend(self.stack.auth.sign_up()[0] for _ in range(SWEPT_USERS))
            documents = []
            for number, uid in enumerate(uids):
                fields = seeding.session_fields(number, 0, now)
                fields["uid"] = {"stringValue": uid}
                sid = f"sweep{number:05d}{uid[:6]}"
                documents.append((f"users/{uid}/sessions/{sid}", fields))
                documents.append((f"sessionSecrets/{sid}", seeding.secret_fields(uid, "t", now)))
            seeding.Seeder(self.stack.firestore.host, self.stack.project).seed(iter(documents))
            auth.delete_user(uids[0], app=app())

        self.setup(seed, quiet=True)
        swept: list[dict[str, Any]] = []
        row = self.step(SWEEP, lambda: swept.append(deleted_users.sweep().as_dict()))
        row.update(swept[0])

    def revoke_others_at_scale(self, others: int) -> dict[str, Any]:
        """revoke-others for a user with `others` other active sessions, each with a push token."""
        uid, id_token = self.stack.auth.sign_up()
        phone = Device(self.api, dict(IPHONE))
        seeded: list[seeding.Seeded] = []

        def seed() -> None:
            phone.login(id_token, "tok-scale-phone")
            documents = []
            now = datetime.now(UTC)
            for number in range(others):
                sid = f"bench{number:05d}{phone.session_id[:8]}"
                fields = seeding.session_fields(number, 0, now)
                fields["uid"] = {"stringValue": uid}
                documents.append((f"users/{uid}/sessions/{sid}", fields))
                documents.append((f"sessionSecrets/{sid}", seeding.secret_fields(uid, f"tok-scale-{number}", now)))
            seeded.append(seeding.Seeder(self.stack.firestore.host, self.stack.project).seed(iter(documents)))

        self.setup(seed, quiet=True)  # the seeded sessions must not alert anyone
        name = f"POST /v1/sessions/revoke-others ({others} others)"
        row = self.step(name, lambda: phone.call("POST", "/v1/sessions/revoke-others"),
                        settle_timeout=max(120.0, others * 0.5))
        self.rows.remove(row)
        return {**row, "seededDocuments": seeded[0].documents, "others": others}


    def guards(self, calls: int, iterations: int, warmup: int) -> list[dict[str, Any]]:
        """The Python and the Node guard (guards.py) on one live session: `calls` calls of each,
        each counted on its own, then each timed against a bare get of the session document."""
        uid, id_token = self.stack.auth.sign_up()
        device = Device(self.api, dict(IPHONE))
        self.setup(lambda: device.login(id_token, "tok-guards"))
        headers, document = device.headers(), f"users/{uid}/sessions/{device.session_id}"
        guards.build_node_guard()
        measures: dict[str, Callable[[], dict[str, Any]]] = {
            guards.PYTHON_GUARD: lambda: guards.count_python(self.counter, headers, document, self.stack.project,
                                                             calls, iterations, warmup),
            guards.NODE_GUARD: lambda: guards.count_node(headers, document, calls, iterations, warmup),
        }
        rows = []
        for name, measure in measures.items():
            received = self._fcm_received()
            self.events.step = name
            measured = measure()
            self.events.touch()
            settled = self.events.settle(60)
            tallies = self.counter.snapshot()
            per_call = measured["perCall"]
            rows.append({
                "step": name, "settled": settled, "fcmReceived": self._fcm_received() - received,
                "api": per_call[0], "perCall": per_call, "calls": len(per_call),
                "alike": all(call == per_call[0] for call in per_call), "timing": measured["timing"],
                **{function: tallies.get(f"{name}|{function}", {"invocations": 0}) for function in FUNCTIONS[1:]},
            })
        return rows


def cost_table(stack: Stack, *, revoke_others: int, guard_calls: int = 5, guard_iterations: int = 200,
               guard_warmup: int = 20) -> dict[str, Any]:
    counter = Counter()
    events = EventServers(stack, counter)
    limits_on = {**dict.fromkeys(RATE_LIMITS_OFF), **FRESH_SESSION_WINDOW_OFF}
    activity = ActivityCost(stack, counter)
    with environment(limits_on), counter.installed(), events.serving(), activity.subscribed():
        events.step = "(earlier deliveries)"
        events.settle(10)
        stack.fcm.clear()
        scenario = Scenario(stack, counter, events)
        scenario.activity = activity
        scenario.play()
        events_rows = session_events.rows(scenario)
        at_scale = scenario.revoke_others_at_scale(revoke_others)
        guard_rows = scenario.guards(guard_calls, guard_iterations, guard_warmup)
        activity_rows = activity.measure({row["step"] for row in scenario.rows})
    unattributed = counter.snapshot().get("unattributed")
    return {"steps": scenario.rows, "revokeOthersAtScale": at_scale, "guards": guard_rows,
            "unattributed": unattributed, "activity": activity_rows, "sessionEvents": events_rows}
