"""Session lifetimes and step-up on the real stack (issue 21), with short lifetimes set for the test
and the stack's clock moved (every function and the Auth emulator read it), never waited for.

Two API servers of this module: `short` (apps: idle 1 h, at most 4 h; a recent sign-in of 10 minutes
for closing other sessions) and `open` (no idle timeout: the user's own auto-close choice is the
only one). The Firestore emulator's rules read the machine's time, not the stack's, so the rules
tests write a deadline that has passed on the machine's clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud import firestore

from infra.local.stack import Stack
from support import GUARDED_APP
from support.devices import IPAD, IPHONE, PIXEL, Device, doc_url, error_code, sign_in_with_custom_token
from support.serving import function_url

HOUR = 3600
SHORT = {"MYDEVICES_IDLE_TIMEOUT_APP": str(HOUR), "MYDEVICES_MAX_SESSION_AGE_APP": str(4 * HOUR),
         "MYDEVICES_RECENT_SIGN_IN_SECONDS": "600"}
OPEN = {"MYDEVICES_IDLE_TIMEOUT_APP": "off", "MYDEVICES_RECENT_SIGN_IN_SECONDS": "600"}
PASSWORD = "correct-horse-9"

short = function_url("api", SHORT, own_port=True)
open_api = function_url("api", OPEN, own_port=True)
callables_url = function_url("callables", SHORT, own_port=True)
payments_url = function_url("payments", SHORT, signature_type="http", source=GUARDED_APP, own_port=True)


@pytest.fixture(scope="module", autouse=True)
def clock_put_back(stack: Stack) -> Iterator[None]:
    """These tests move the shared stack's clock by hours and days: put it back for the next module."""
    offset = stack.clock.offset
    yield
    stack.clock.set(offset)


def account(stack: Stack) -> str:
    email = f"life-{uuid.uuid4().hex[:8]}@example.com"
    stack.auth.sign_up(email, PASSWORD)
    return email


@dataclass
class Phone(Device):
    login_body: dict[str, Any] = field(default_factory=dict)


def device(stack: Stack, base: str, email: str, spec: dict[str, Any] = IPHONE, **extra: Any) -> Phone:
    """A device of `spec` logged in with a fresh sign-in; `extra` goes into the login body."""
    phone = Phone(base, dict(spec))
    id_token = stack.auth.sign_in(email, PASSWORD)[1]
    answer = phone.http.post(f"{base}/v1/sessions", json={"device": phone.device, **extra},
                             headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    phone.device_id, phone.access_token = body["deviceId"], body["accessToken"]
    phone.refresh_token, phone.session_id = body["refreshToken"], body["session"]["sessionId"]
    phone.login_body = body
    return phone


def refreshed(phone: Device) -> requests.Response:
    answer = phone.refresh()
    if answer.status_code == 200:
        phone.adopt(answer)
    return answer


def refused(answer: requests.Response) -> tuple[int, str, str | None]:
    error = answer.json()["error"]
    return answer.status_code, error["code"], error.get("reason")


def session_doc(stack: Stack, email: str, sid: str) -> dict[str, Any]:
    uid = stack.auth.sign_in(email, PASSWORD)[0]
    snap = firestore.Client(project=stack.project).document(f"users/{uid}/sessions/{sid}").get()
    return snap.to_dict() or {}


# --- idle timeout and absolute lifetime --------------------------------------------------------------


def test_an_idle_session_ends_as_session_expired_and_is_closed_and_gone_from_the_list(stack: Stack, short: str) -> None:
    email = account(stack)
    phone, tablet = device(stack, short, email), device(stack, short, email, IPAD)
    stack.clock.advance(minutes=50)
    assert refreshed(phone).status_code == 200  # in use: its idle deadline moves
    assert refreshed(tablet).status_code == 200
    stack.clock.advance(minutes=59)
    assert refreshed(phone).status_code == 200
    stack.clock.advance(minutes=2)  # the tablet's last activity was 61 minutes ago
    assert refused(refreshed(tablet)) == (401, "session_expired", "idle")
    doc = session_doc(stack, email, tablet.session_id)
    assert (doc["status"], doc["revokedReason"]) == ("revoked", "expired_idle")
    listed = phone.get("/v1/sessions").json()["sessions"]
    assert [view["sessionId"] for view in listed] == [phone.session_id]
    assert refused(refreshed(tablet)) == (401, "session_expired", "idle")  # and it stays so


def test_a_session_nobody_refreshed_is_left_out_of_the_list_and_closed_by_reading_it(
        stack: Stack, short: str) -> None:
    email = account(stack)
    phone, drawer = device(stack, short, email), device(stack, short, email, IPAD)
    stack.clock.advance(minutes=55)
    assert refreshed(phone).status_code == 200
    stack.clock.advance(minutes=10)
    assert [view["sessionId"] for view in phone.get("/v1/sessions").json()["sessions"]] == [phone.session_id]
    assert session_doc(stack, email, drawer.session_id)["revokedReason"] == "expired_idle"


def test_the_absolute_lifetime_ends_a_session_in_use_and_caps_its_access_tokens(stack: Stack, short: str) -> None:
    email = account(stack)
    phone = device(stack, short, email)
    born = phone.login_body["accessTokenExpiresAt"] - 600
    for _ in range(23):  # in use all along: every ten minutes
        stack.clock.advance(minutes=10)
        answer = refreshed(phone)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accessTokenExpiresAt"] <= born + 4 * HOUR
    stack.clock.advance(minutes=9, seconds=50)  # ten seconds before the end: a token for ten seconds
    answer = refreshed(phone)
    assert answer.status_code == 200
    assert answer.json()["accessTokenExpiresAt"] == born + 4 * HOUR
    stack.clock.advance(seconds=11)  # the token is within its 30 s of leeway: validation judges the session
    assert refused(phone.get("/v1/sessions/current")) == (401, "session_expired", "max_age")
    stack.clock.advance(seconds=60)
    assert refused(phone.get("/v1/sessions/current"))[1] == "token_expired"
    assert refused(refreshed(phone)) == (401, "session_expired", "max_age")
    assert session_doc(stack, email, phone.session_id)["revokedReason"] == "expired_max_age"


def test_the_grace_window_does_not_bring_an_expired_session_back(stack: Stack, short: str) -> None:
    """A retry of the last refresh within its 30 s grace answers the same tokens, but not once the
    session has passed its deadline in between (a client racing itself, or a copy)."""
    email = account(stack)
    phone = device(stack, short, email, sessionLifetimeSeconds=600)
    stack.clock.advance(minutes=9, seconds=50)
    previous = phone.refresh_token
    assert refreshed(phone).status_code == 200
    retried = phone.refresh(previous)
    assert retried.status_code == 200  # within the grace window and the lifetime: the same answer
    stack.clock.advance(seconds=15)
    assert refused(phone.refresh(previous)) == (401, "session_expired", "max_age")
    assert refused(refreshed(phone)) == (401, "session_expired", "max_age")


def test_a_shorter_lifetime_at_login_is_kept_and_a_longer_one_is_the_settings(stack: Stack, short: str) -> None:
    email = account(stack)
    kiosk = device(stack, short, email, sessionLifetimeSeconds=900)
    assert kiosk.login_body["accessTokenExpiresAt"] <= stack.clock.now() + 600
    greedy = device(stack, short, email, IPAD, sessionLifetimeSeconds=40 * HOUR)
    stack.clock.advance(minutes=10)
    assert refreshed(kiosk).status_code == 200
    assert refreshed(greedy).status_code == 200
    stack.clock.advance(minutes=6)
    assert refused(refreshed(kiosk)) == (401, "session_expired", "max_age")
    for _ in range(22):
        stack.clock.advance(minutes=10)
        assert refreshed(greedy).status_code == 200
    stack.clock.advance(minutes=15)
    assert refused(refreshed(greedy)) == (401, "session_expired", "max_age")


def test_a_login_asking_for_a_lifetime_out_of_range_is_refused(stack: Stack, short: str) -> None:
    email = account(stack)
    id_token = stack.auth.sign_in(email, PASSWORD)[1]
    for lifetime in (0, 59, -5, 1.5, "600", True):
        answer = requests.post(f"{short}/v1/sessions", json={"device": IPHONE, "sessionLifetimeSeconds": lifetime},
                               headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
        assert (answer.status_code, error_code(answer)) == (400, "invalid_request"), (lifetime, answer.text)


# --- Firebase-native: custom tokens, ID tokens, callables and the rules -------------------------------


def test_an_expired_session_does_not_come_back_through_a_firebase_id_token_or_its_custom_token(
        stack: Stack, short: str, callables_url: str) -> None:
    email = account(stack)
    phone = device(stack, short, email, PIXEL)
    custom = phone.login_body["firebaseCustomToken"]
    stack.clock.advance(minutes=61)  # idle; the ID tokens Firebase hands out still live an hour
    id_token = sign_in_with_custom_token(stack, custom)[0]
    api_answer = requests.get(f"{short}/v1/sessions", headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert refused(api_answer) == (401, "session_expired", "idle")
    called = requests.post(f"{callables_url}/sessions_list", json={"data": None},
                           headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert called.status_code == 401
    assert called.json()["error"]["details"] == {"code": "session_expired", "reason": "idle"}


def test_the_rules_deny_a_session_past_its_stored_deadline_without_a_sweep(stack: Stack, short: str) -> None:
    email = account(stack)
    phone = device(stack, short, email, PIXEL)
    id_token = sign_in_with_custom_token(stack, phone.login_body["firebaseCustomToken"])[0]
    uid = stack.auth.sign_in(email, PASSWORD)[0]
    path = f"notes/{uid}/items/n1"

    def read_note() -> int:
        return requests.get(doc_url(stack, path), headers={"Authorization": f"Bearer {id_token}"},
                            timeout=30).status_code

    assert read_note() in (200, 404)  # allowed (there is no such note yet)
    ref = firestore.Client(project=stack.project).document(f"users/{uid}/sessions/{phone.session_id}")
    machine_now = datetime.now(UTC)
    for deadline in ("idleExpiresAt", "absoluteExpiresAt"):
        ref.update({deadline: machine_now - timedelta(seconds=5)})  # still `active`: nobody closed it
        assert read_note() == 403, deadline
        ref.update({deadline: machine_now + timedelta(hours=1)})
        assert read_note() in (200, 404), deadline


# --- step-up: recent sign-in ---------------------------------------------------------------------------


def test_a_function_guarded_with_max_auth_age_needs_a_recent_sign_in_and_reauthentication_gives_it(
        stack: Stack, short: str, payments_url: str) -> None:
    email = account(stack)
    phone = device(stack, short, email)

    def pay() -> requests.Response:
        return requests.post(f"{payments_url}/pay", headers=phone.headers(), timeout=30)

    assert pay().status_code == 200
    stack.clock.advance(minutes=11)
    assert refreshed(phone).status_code == 200  # a refresh is no proof of identity
    answer = pay()
    assert (answer.status_code, error_code(answer), answer.json()["error"].get("maxAge")) == (
        403, "recent_sign_in_required", 600)
    # An ID token from the session's own custom token proves nothing new: it keeps the old sign-in time.
    kept = sign_in_with_custom_token(stack, phone.login_body["firebaseCustomToken"])[0]
    assert phone.post("/v1/sessions/current/reauthenticate", json={"idToken": kept}).status_code == 200
    assert error_code(pay()) == "recent_sign_in_required"
    # Another user's fresh sign-in is not this user's.
    stranger = stack.auth.sign_in(account(stack), PASSWORD)[1]
    assert error_code(phone.post("/v1/sessions/current/reauthenticate", json={"idToken": stranger})) == "forbidden"
    fresh = stack.auth.sign_in(email, PASSWORD)[1]
    again = phone.post("/v1/sessions/current/reauthenticate", json={"idToken": fresh})
    assert again.status_code == 200, again.text
    assert pay().status_code == 200
    assert [view["sessionId"] for view in phone.get("/v1/sessions").json()["sessions"]] == [phone.session_id]


def test_closing_other_sessions_needs_a_recent_sign_in_on_the_api_and_the_callables(
        stack: Stack, short: str, callables_url: str) -> None:
    email = account(stack)
    phone, tablet = device(stack, short, email, PIXEL), device(stack, short, email, IPAD)
    stack.clock.advance(minutes=11)
    assert refreshed(phone).status_code == 200
    assert refreshed(tablet).status_code == 200
    for answer in (phone.post("/v1/sessions/revoke-others"), phone.delete(f"/v1/sessions/{tablet.session_id}")):
        assert (answer.status_code, error_code(answer), answer.json()["error"]["maxAge"]) == (
            403, "recent_sign_in_required", 600)
    custom = phone.login_body["firebaseCustomToken"]
    id_token = sign_in_with_custom_token(stack, custom)[0]
    called = requests.post(f"{callables_url}/sessions_revoke_others", json={"data": None},
                           headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert called.status_code == 403
    assert called.json()["error"]["details"] == {"code": "recent_sign_in_required", "maxAge": 600}
    fresh = stack.auth.sign_in(email, PASSWORD)[1]
    assert phone.post("/v1/sessions/current/reauthenticate", json={"idToken": fresh}).status_code == 200
    assert phone.post("/v1/sessions/revoke-others").json() == {"revoked": 1}


def test_a_firebase_native_app_reverifies_and_sets_auto_close_through_the_callables(
        stack: Stack, short: str, callables_url: str) -> None:
    """The callables refuse a stale proof with PERMISSION_DENIED `recent_sign_in_required`; the app
    answers in the same protocol: sessions_reauthenticate with a fresh sign-in's ID token (its session's
    own Firebase ID token proves nothing new), then the action again; sessions_auto_close beside it."""
    email = account(stack)
    phone, _ = device(stack, short, email, PIXEL), device(stack, short, email, IPAD)
    session_token = sign_in_with_custom_token(stack, phone.login_body["firebaseCustomToken"])[0]

    def call(name: str, data: Any) -> requests.Response:
        return requests.post(f"{callables_url}/{name}", json={"data": data},
                             headers={"Authorization": f"Bearer {session_token}"}, timeout=30)

    stack.clock.advance(minutes=11)
    stale = {"code": "recent_sign_in_required", "maxAge": 600}
    assert call("sessions_revoke_others", None).json()["error"]["details"] == stale
    call("sessions_reauthenticate", {"idToken": session_token})  # no sign-in made since: still stale
    assert call("sessions_revoke_others", None).json()["error"]["details"] == stale
    bad = call("sessions_reauthenticate", {"idToken": ""})
    assert (bad.status_code, bad.json()["error"]["status"], bad.json()["error"]["message"]) == (
        400, "INVALID_ARGUMENT", "data.idToken must be a Firebase ID token")
    fresh = stack.auth.sign_in(email, PASSWORD)[1]
    renewed = call("sessions_reauthenticate", {"idToken": fresh})
    assert renewed.status_code == 200, renewed.text
    assert set(renewed.json()["result"]) == {"authTime"}
    assert call("sessions_revoke_others", None).json() == {"result": {"revoked": 1}}
    assert call("sessions_auto_close", {"afterDays": 7}).json() == {"result": {"autoCloseAfterDays": 7, "closed": 0}}
    assert session_doc(stack, email, phone.session_id)["autoCloseDays"] == 7
    bad = call("sessions_auto_close", {"afterDays": 8})
    assert (bad.status_code, bad.json()["error"]["message"]) == (400, "data.afterDays must be 7, 30, 90, 180 or null")


# --- the user's own auto-close -------------------------------------------------------------------------


def test_auto_close_applies_to_existing_sessions_at_once_and_to_new_logins(stack: Stack, open_api: str) -> None:
    email = account(stack)
    phone, tablet = device(stack, open_api, email), device(stack, open_api, email, IPAD)
    stack.clock.advance(days=8)  # the tablet lies in a drawer; without a setting nothing ends
    assert refreshed(phone).status_code == 200
    fresh = stack.auth.sign_in(email, PASSWORD)[1]
    assert phone.post("/v1/sessions/current/reauthenticate", json={"idToken": fresh}).status_code == 200
    answer = phone.put("/v1/sessions/auto-close", json={"afterDays": 7})
    assert answer.json() == {"autoCloseAfterDays": 7, "closed": 1}, answer.text
    assert refused(refreshed(tablet)) == (401, "session_expired", "idle")
    listed = phone.get("/v1/sessions").json()
    assert ([view["sessionId"] for view in listed["sessions"]], listed["autoCloseAfterDays"]) == (
        [phone.session_id], 7)
    laptop = device(stack, open_api, email, PIXEL)  # a login from now on gets the choice too
    stack.clock.advance(days=7, seconds=1)
    assert refused(refreshed(laptop)) == (401, "session_expired", "idle")
    assert refused(refreshed(phone)) == (401, "session_expired", "idle")


def test_widening_auto_close_needs_a_recent_sign_in_and_bad_choices_are_refused(stack: Stack, open_api: str) -> None:
    email = account(stack)
    phone = device(stack, open_api, email)
    assert phone.put("/v1/sessions/auto-close", json={"afterDays": 30}).status_code == 200
    stack.clock.advance(minutes=11)
    assert refreshed(phone).status_code == 200
    assert phone.put("/v1/sessions/auto-close", json={"afterDays": 7}).status_code == 200  # narrowing: no step-up
    for wider in (30, None):
        answer = phone.put("/v1/sessions/auto-close", json={"afterDays": wider})
        assert (answer.status_code, error_code(answer)) == (403, "recent_sign_in_required"), wider
    for bad in ({"afterDays": 8}, {"afterDays": "7"}, {}, {"afterDays": 7, "x": 1}):
        answer = phone.put("/v1/sessions/auto-close", json=bad)
        assert (answer.status_code, error_code(answer)) == (400, "invalid_request"), bad


def test_a_session_past_its_deadline_stays_over_when_auto_close_is_widened(stack: Stack, open_api: str) -> None:
    """The thief's tablet lay idle past the owner's 7 days, unlisted: widening the choice must not
    renew it (past either deadline, a session is over)."""
    email = account(stack)
    phone, tablet = device(stack, open_api, email), device(stack, open_api, email, IPAD)
    assert phone.put("/v1/sessions/auto-close", json={"afterDays": 7}).json()["closed"] == 0
    for _ in range(2):  # the phone is in use; the tablet is not
        stack.clock.advance(days=4)
        assert refreshed(phone).status_code == 200
    fresh = stack.auth.sign_in(email, PASSWORD)[1]
    assert phone.post("/v1/sessions/current/reauthenticate", json={"idToken": fresh}).status_code == 200
    for wider in (30, None):
        answer = phone.put("/v1/sessions/auto-close", json={"afterDays": wider})
        assert answer.status_code == 200, answer.text
    assert refused(refreshed(tablet)) == (401, "session_expired", "idle")
    assert session_doc(stack, email, tablet.session_id)["revokedReason"] == "expired_idle"


def test_narrowing_auto_close_so_that_it_closes_another_device_needs_a_recent_sign_in(
        stack: Stack, open_api: str) -> None:
    """Whoever holds an old unlocked session without the password cannot close the owner's idle
    laptop by narrowing auto-close, any more than by closing it."""
    email = account(stack)
    holder, laptop = device(stack, open_api, email), device(stack, open_api, email, PIXEL)
    stack.clock.advance(days=8)
    assert refreshed(holder).status_code == 200  # its sign-in is 8 days old: no recent one
    answer = holder.put("/v1/sessions/auto-close", json={"afterDays": 7})
    assert (answer.status_code, error_code(answer)) == (403, "recent_sign_in_required"), answer.text
    assert refreshed(laptop).status_code == 200
    assert holder.put("/v1/sessions/auto-close", json={"afterDays": 30}).json() == {"autoCloseAfterDays": 30,
                                                                                     "closed": 0}


def test_an_old_token_of_an_expired_session_signs_nobody_out(stack: Stack, short: str) -> None:
    """A copy of a tablet's refresh token, kept from before two rotations, used once the session is
    over: the session is over, so it proves no copy in use and closes nothing else."""
    email = account(stack)
    phone, tablet = device(stack, short, email), device(stack, short, email, IPAD)
    kept = tablet.refresh_token
    for _ in range(2):
        assert refreshed(tablet).status_code == 200
    stack.clock.advance(minutes=50)
    assert refreshed(phone).status_code == 200
    stack.clock.advance(minutes=11)  # the tablet's last activity was 61 minutes ago
    assert refused(tablet.refresh(kept)) == (401, "session_expired", "idle")
    assert refreshed(phone).status_code == 200
    assert session_doc(stack, email, tablet.session_id)["revokedReason"] == "expired_idle"
