"""Time passes: sessions as people keep them, for months, on a stack of their own whose clock the
tests move (infra/local/stack/clock.py: every function and the Auth emulator read it).

The suite elsewhere proves each flow within seconds of a login; these tests let minutes, nights and
a whole quarter pass. The stack runs with the product's own defaults (abuse limits on, the 24-hour
fresh-session window on): what a user of the README's `infra/local/run` gets.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.stack import ENTRY_POINTS, Ports, Stack, ensure_dev_keys
from infra.local.stack.clock import faketime_library
from mydevices.tokens.keys import new_hmac_entry, new_signing_entry
from support.devices import IPAD, PIXEL, Device, error_code
from support.waiting import wait_for

CHROME = {"name": "Chrome on Windows", "platform": "web", "osVersion": "11", "appVersion": "web-1"}
LAPTOP = {"name": "Firefox on Linux", "platform": "web", "osVersion": "6.8", "appVersion": "web-1"}
PIXEL_9 = {"name": "Pixel 9", "model": "tokay", "platform": "android", "osVersion": "15", "appVersion": "2.3.0"}
INTRUDER = {"name": "Galaxy S24", "model": "SM-S921B", "platform": "android", "osVersion": "14", "appVersion": "2.3.0"}
PASSWORD = "correct-horse-9"
NEW_PASSWORD = "correct-horse-10"
WEB_APP = "https://app.example.com"  # the browser's page: a web app on its own origin, with bearer tokens
ACCESS_TTL = 600  # the product's default: an app in use refreshes every ten minutes


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own (its Auth emulator's clock moves too), with production defaults
    and one deployment setting: the web app's origin, whose pages hold bearer tokens."""
    assert faketime_library() is not None, "libfaketime is missing: infra/local/bootstrap --faketime installs it"
    # Functions inherit this process's environment, where the suite's shared stack exported its
    # presets (the fresh-session window off, no abuse limits): not here.
    presets = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("MYDEVICES_")}
    log_dir = tmp_path_factory.mktemp("long-life")
    running = Stack(Ports.free(), log_dir, keys_file=ensure_dev_keys(log_dir / "keys.json"),
                    env_extra={"MYDEVICES_CORS_ORIGINS": WEB_APP})
    try:
        running.start(functions=ENTRY_POINTS)
        yield running
    finally:
        running.stop()
        os.environ.update(presets)


def api_url(stack: Stack) -> str:
    server = stack.function("api")
    assert server is not None
    return server.url


def sign_up(stack: Stack) -> tuple[str, str]:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    stack.auth.sign_up(email, PASSWORD)
    return email, stack.auth.sign_in(email, PASSWORD)[1]


# --- the minute-six regression --------------------------------------------------------------------


def test_a_session_keeps_answering_after_its_activity_interval(life: Stack) -> None:
    """lastActiveAt used to be written by validation every 5 minutes, and that write raised, so
    from minute six every validated call answered 500 and the owner could not close an intruder.
    Validation no longer writes it (the refresh does, see the next test): calls past the old
    interval, and past the new one, still answer."""
    email, id_token = sign_up(life)
    phone = Device(api_url(life), dict(PIXEL))
    phone.login(id_token)
    tablet = Device(api_url(life), dict(IPAD))
    tablet.login(life.auth.sign_in(email, PASSWORD)[1])
    for minutes in (6, 55):  # the old interval, then past the new one (an hour)
        life.clock.advance(minutes=minutes)
        if minutes * 60 >= ACCESS_TTL:  # the access token has expired meanwhile
            refreshed = phone.refresh()
            ok(refreshed)
            phone.adopt(refreshed)
        for path in ("/v1/sessions", "/v1/sessions/current", "/v1/alerts"):
            answer = phone.get(path)
            assert answer.status_code == 200, (path, answer.status_code, answer.text)
    life.clock.advance(days=1)  # the fresh-session window has passed: the phone may close others
    refreshed = phone.refresh()
    ok(refreshed)
    phone.adopt(refreshed)
    assert ok(phone.delete(f"/v1/sessions/{tablet.session_id}"))["revoked"] is True
    assert ok(phone.post("/v1/sessions/logout"))["loggedOut"] is True


def last_active(device: Device) -> float:
    return datetime.fromisoformat(ok(device.get("/v1/sessions/current"))["lastActiveAt"]).timestamp()


def test_activity_is_recorded_by_the_refresh_at_most_once_an_hour_and_never_by_a_validated_call(
    life: Stack,
) -> None:
    """lastActiveAt (the list's "last active", and the idle timeout's signal) comes from the
    refresh, in its rotation's transaction, once the recorded one is an hour old
    (MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS): a validated call writes nothing, so "last active" is
    behind by at most the interval plus the access token's lifetime."""
    _, id_token = sign_up(life)
    phone = Device(api_url(life), dict(PIXEL))
    phone.login(id_token)
    logged_in = last_active(phone)
    life.clock.advance(minutes=9)
    assert last_active(phone) == logged_in  # a validated call nine minutes on: nothing written
    for _ in range(5):  # an app in use, refreshing every ten minutes for 50 minutes
        refreshed = phone.refresh()
        ok(refreshed)
        phone.adopt(refreshed)
        assert last_active(phone) == logged_in  # within the hour: the refresh only rotates
        life.clock.advance(minutes=10)
    life.clock.advance(minutes=2)
    refreshed = phone.refresh()  # 61 minutes after the login: the first refresh past the hour
    ok(refreshed)
    phone.adopt(refreshed)
    recorded = last_active(phone)
    assert recorded - logged_in >= 61 * 60
    life.clock.advance(minutes=9)
    assert last_active(phone) == recorded


def test_a_refresh_token_unused_for_ninety_days_is_gone_whenever_ttl_deletes_it(life: Stack) -> None:
    """A phone in a drawer: its refresh token is kept 90 days from its last use (the TTL field),
    and refused after that whether or not Firestore's TTL has deleted it yet (the emulator never does)."""
    _, id_token = sign_up(life)
    drawer = Device(api_url(life), dict(PIXEL))
    drawer.login(id_token)
    life.clock.advance(days=89)
    refreshed = drawer.refresh()
    ok(refreshed)
    drawer.adopt(refreshed)  # used on day 89: kept 90 days from now
    life.clock.advance(days=90, seconds=-60)
    refreshed = drawer.refresh()
    ok(refreshed)
    drawer.adopt(refreshed)
    life.clock.advance(days=90, seconds=1)
    gone = drawer.refresh()
    assert (gone.status_code, error_code(gone)) == (401, "invalid_token"), gone.text


# --- ninety days ----------------------------------------------------------------------------------


def ok(answer: requests.Response, status: int = 200) -> Any:
    assert answer.status_code == status, (answer.request.method, answer.request.url, answer.status_code, answer.text)
    return answer.json() if answer.content else None


@dataclass
class App:
    """One install of the app (or a browser tab) as a careful client drives it: it refreshes when its
    access token has expired, and it is signed out (storage cleared but the device id) on a 401."""

    stack: Stack
    spec: dict[str, Any]
    push: str | None = None
    device: Device = field(init=False)
    expires_at: float = 0.0
    signed_out: str | None = None
    seen: list[int] = field(default_factory=list)  # every status this app was answered

    def __post_init__(self) -> None:
        self.device = Device(api_url(self.stack), dict(self.spec))
        if self.spec["platform"] == "web":
            self.device.http.headers["Origin"] = WEB_APP

    def sign_in(self, email: str, password: str = PASSWORD, expect: int = 201) -> dict[str, Any]:
        """A sign-in to Firebase (the Auth emulator, on the stack's clock), then our login."""
        self.device.access_token = self.device.refresh_token = ""
        answer = self.device.login(self.stack.auth.sign_in(email, password)[1], push_token=self.push, expect=expect)
        self.seen.append(answer.status_code)
        body = answer.json()
        if answer.status_code == 201:
            self.expires_at = self.stack.clock.now() + ACCESS_TTL
            self.signed_out = None
        return dict(body)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call as the app makes it: refresh first if the token has expired; a 401 signs out."""
        if self.signed_out is not None:
            raise AssertionError(f"{self.spec['name']} is signed out ({self.signed_out}) and made a call")
        if self.stack.clock.now() >= self.expires_at - 30:
            answered = self.device.refresh()
            self.seen.append(answered.status_code)
            assert answered.status_code < 500, answered.text
            if answered.status_code == 401:
                self.signed_out = error_code(answered)
                return answered
            assert answered.status_code == 200, answered.text
            self.device.adopt(answered)
            self.expires_at = self.stack.clock.now() + ACCESS_TTL
        answer = getattr(self.device, method)(path, **kwargs)
        self.seen.append(answer.status_code)
        assert answer.status_code < 500, (method, path, answer.status_code, answer.text)
        if answer.status_code == 401:
            self.signed_out = error_code(answer)
        return answer

    def use(self, minutes: int) -> None:
        """A stretch of use: a call a minute or so, a refresh every ten minutes; what it shows is checked."""
        for _ in range(0, minutes, 5):
            answer = self.call("get", "/v1/sessions")
            if self.signed_out is not None:
                return
            sessions = ok(answer)["sessions"]
            assert sessions[0]["isCurrentDevice"] and sessions[0]["sessionId"] == self.device.session_id
            assert sum(view["isCurrentDevice"] for view in sessions) == 1
            self.stack.clock.advance(minutes=5)

    def names(self) -> list[str]:
        """The device names on the Active sessions screen, current first."""
        return [view["deviceName"] for view in ok(self.call("get", "/v1/sessions"))["sessions"]]


def alerts_for(stack: Stack, to: App, new_sid: str) -> list[dict[str, Any]]:
    return [m["message"] for m in stack.fcm.messages()
            if m["message"].get("token") == to.push and m["message"]["data"].get("action") == "new_login_alert"
            and m["message"]["data"].get("newSessionId") == new_sid]


def force_logouts(stack: Stack, to: App) -> list[dict[str, Any]]:
    return [m["message"] for m in stack.fcm.messages()
            if m["message"].get("token") == to.push and m["message"]["data"].get("action") == "force_logout"]


def answer_alert(stack: Stack, alert: dict[str, Any], answer: str) -> dict[str, Any]:
    reply = requests.post(f"{api_url(stack)}/v1/alerts/respond",
                          json={"actionToken": alert["data"]["actionToken"], "answer": answer}, timeout=30)
    return dict(ok(reply))


def rotate_keys(stack: Stack, *, drop_old_signing: bool = False) -> None:
    """A signing-key rotation as an operator does it: the new key signs, the old one only verifies
    (until every token it signed has expired), then it goes; HMAC keys are added, never dropped
    while device ids they signed are in use. The functions restart to read the new keyring."""
    import json

    assert stack.keys_file is not None
    ring = json.loads(Path(stack.keys_file).read_text())
    if drop_old_signing:
        ring["signing"] = ring["signing"][:1]
    else:
        ring["signing"].insert(0, new_signing_entry())
        ring["hmac"].insert(0, new_hmac_entry())
    Path(stack.keys_file).write_text(json.dumps(ring))
    for target in ("api", "on_session_written", "send_session_push"):
        server = stack.function(target)
        assert server is not None
        server.stop()
        stack.start_function(target, port=server.port)  # the apps keep calling the same URL


@dataclass
class Quarter:
    """One user's devices through ninety days; each event is a method named for what happens."""

    stack: Stack
    email: str
    phone: App
    tablet: App
    browser: App
    replacement: App | None = None
    laptop: App | None = None
    intruder: App | None = None
    steps: list[str] = field(default_factory=list)

    def apps(self) -> list[App]:
        return [app for app in (self.phone, self.tablet, self.browser, self.laptop, self.intruder,
                                self.replacement) if app is not None]

    def a_day(self, day: int) -> None:
        """Mornings on the phone, weekdays in the browser, weekends on the tablet; nights idle."""
        weekday = day % 7 < 5  # day 0 is a Monday
        self.stack.clock.advance(hours=7, minutes=30)
        phone = self.replacement or self.phone
        if day not in (44, 45) and phone.signed_out is None:  # lost on day 44, replaced on day 46
            phone.use(20)
        if weekday and self.browser.signed_out is None:
            self.stack.clock.advance(hours=2)
            self.browser.use(30)
        if not weekday and self.tablet.signed_out is None:
            self.stack.clock.advance(hours=3)
            self.tablet.use(45)
        event = EVENTS.get(day)
        if event is not None:
            event(self)
            self.steps.append(event.__name__)

    def push_token_rotated(self) -> None:
        """FCM gave the phone a new token: the app sends it, and the alerts follow it."""
        self.phone.push = "tok-phone-" + uuid.uuid4().hex
        ok(self.phone.call("put", "/v1/sessions/current/push-token", json={"token": self.phone.push,
                                                                          "provider": "fcm"}))

    def signing_key_rotated(self) -> None:
        """Tokens signed by the old key keep working for their ten minutes."""
        rotate_keys(self.stack)
        ok(self.phone.call("get", "/v1/sessions/current"))

    def old_signing_key_dropped(self) -> None:
        rotate_keys(self.stack, drop_old_signing=True)
        ok(self.phone.call("get", "/v1/sessions/current"))

    def app_updated(self) -> None:
        """A new version keeps its storage, and so its session."""
        self.phone.device.device["appVersion"] = "2.4.0"
        ok(self.phone.call("get", "/v1/sessions/current"))

    def new_laptop_confirmed(self) -> None:
        """A new laptop: the phone asks "Was that you?", and the user says Yes."""
        self.laptop = App(self.stack, LAPTOP)
        new = self.laptop.sign_in(self.email)["session"]["sessionId"]
        alert = one_alert(self.stack, self.phone, new)
        assert answer_alert(self.stack, alert, "yes")["status"] == "active"
        self.laptop.use(10)

    def lost_phone_closed(self) -> None:
        """The phone was lost yesterday: the user closes it from the browser; whoever has it is out."""
        pushed = len(force_logouts(self.stack, self.phone))
        ok(self.browser.call("delete", f"/v1/sessions/{self.phone.device.session_id}"))
        assert "Pixel 8" not in self.browser.names()
        wait_for(lambda: len(force_logouts(self.stack, self.phone)) > pushed, 15)
        finder = self.phone.device.refresh()
        assert (finder.status_code, error_code(finder)) == (401, "session_revoked")

    def replacement_signed_in(self) -> None:
        """A fresh sign-in on the new phone, which is news for the tablet."""
        self.replacement = App(self.stack, PIXEL_9, push="tok-pixel9-" + uuid.uuid4().hex)
        new = self.replacement.sign_in(self.email)["session"]["sessionId"]
        alert = one_alert(self.stack, self.tablet, new)
        assert alert["data"]["body"].startswith("Signed in on “Pixel 9”")
        assert sorted(self.browser.names()) == sorted(["Chrome on Windows", "iPad Air", "Pixel 9", "Firefox on Linux"])

    def intruder_rejected(self) -> None:
        """Someone with the password signs in; its fresh session cannot close the owner's devices, and
        the owner's No from the new phone closes it."""
        assert self.replacement is not None
        self.intruder = App(self.stack, INTRUDER, push="tok-intruder-" + uuid.uuid4().hex)
        new = self.intruder.sign_in(self.email)["session"]["sessionId"]
        alert = one_alert(self.stack, self.replacement, new)
        refused = self.intruder.call("post", "/v1/sessions/revoke-others")
        assert (refused.status_code, error_code(refused)) == (403, "session_too_new")
        answer = answer_alert(self.stack, alert, "no")
        assert answer["status"] == "revoked" and answer["advice"] == "change_password"
        self.intruder.call("get", "/v1/sessions")
        assert self.intruder.signed_out == "session_revoked"
        assert "Galaxy S24" not in self.replacement.names()

    def password_changed(self) -> None:
        """The advice taken: a new password ends every session that began before it, at its next
        refresh; the user signs in again on the devices they still use."""
        assert self.replacement is not None and self.laptop is not None
        uid = self.stack.auth.sign_in(self.email, PASSWORD)[0]
        ok(requests.post(
            f"{self.stack.auth.url}/identitytoolkit.googleapis.com/v1/projects/{self.stack.project}/accounts:update",
            json={"localId": uid, "password": NEW_PASSWORD}, headers={"Authorization": "Bearer owner"}, timeout=30))
        self.stack.clock.advance(minutes=11)  # every access token has expired: the next calls refresh
        for app in (self.replacement, self.tablet, self.browser, self.laptop):
            app.call("get", "/v1/sessions")
            assert app.signed_out == "session_revoked", app.spec["name"]
        for app in (self.replacement, self.tablet, self.browser):
            app.sign_in(self.email, NEW_PASSWORD)

    def end_of_quarter(self) -> None:
        assert self.replacement is not None
        assert sorted(self.replacement.names()) == sorted(["Pixel 9", "iPad Air", "Chrome on Windows"])


EVENTS = {
    3: Quarter.push_token_rotated,
    10: Quarter.signing_key_rotated,
    11: Quarter.old_signing_key_dropped,
    20: Quarter.app_updated,
    30: Quarter.new_laptop_confirmed,
    45: Quarter.lost_phone_closed,
    46: Quarter.replacement_signed_in,
    60: Quarter.intruder_rejected,
    61: Quarter.password_changed,
    89: Quarter.end_of_quarter,
}


def one_alert(stack: Stack, to: App, new_sid: str) -> dict[str, Any]:
    [alert] = wait_for(lambda: alerts_for(stack, to, new_sid), 15)
    return alert


def test_ninety_days_of_one_user_with_a_phone_a_tablet_and_a_browser(life: Stack) -> None:
    """One user's quarter, day by day. At every step: what the user sees, and never a 5xx."""
    started = time.monotonic()
    email, _ = sign_up(life)
    quarter = Quarter(life, email, App(life, PIXEL, push="tok-phone-" + uuid.uuid4().hex),
                      App(life, IPAD, push="tok-tablet-" + uuid.uuid4().hex), App(life, CHROME))
    for app in (quarter.phone, quarter.tablet, quarter.browser):
        app.sign_in(email)
    one_alert(life, quarter.phone, quarter.browser.device.session_id)  # the browser was news
    assert sorted(quarter.phone.names()) == sorted(["Pixel 8", "iPad Air", "Chrome on Windows"])
    midnight = life.clock.offset
    for day in range(90):
        life.clock.set(midnight + day * 86400)
        quarter.a_day(day)
    assert quarter.steps == [event.__name__ for event in EVENTS.values()]
    statuses = [status for app in quarter.apps() for status in app.seen]
    assert statuses and max(statuses) < 500
    print(f"\nlong life: 90 simulated days, {len(statuses)} calls, {len(quarter.steps)} events, "
          f"{time.monotonic() - started:.0f} s")
