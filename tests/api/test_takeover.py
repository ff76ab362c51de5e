"""The takeover response, attacked the way an intruder would: with the password (they sign in to
Firebase at will), with a copied token or the app's storage (a Firebase SDK that stays signed
in), with only a session id, and with a client that ignores what we tell it. Real api, real
Auth and Firestore emulators, real push pipeline and FCM stand-in.

Each test states the attack and what the owner must still have afterwards.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud import firestore

from infra.local.stack import RATE_LIMITS_OFF, Stack
from mydevices.account import CREATION_STAMP_SECONDS
from mydevices.firebase_app import app
from support.devices import CHROME, GALAXY, IPAD, IPHONE, PIXEL, Device, error_code, signed_in
from support.push import EventFunctions, StackFcm, sent
from support.serving import function_url, serving
from support.waiting import next_second, wait_for

PASSWORD = "correct-horse-9"
SETTLE_SECONDS = 1.0


@dataclass
class Account:
    """A Firebase Auth user as the intruder with the password and the owner both see it."""

    stack: Stack
    email: str
    uid: str
    id_token: str
    refresh_token: str

    @classmethod
    def create(cls, stack: Stack) -> Account:
        email = f"user-{secrets.token_hex(6)}@example.com"
        answer = _auth(stack, "accounts:signUp", {"email": email, "password": PASSWORD, "returnSecureToken": True})
        return cls(stack, email, answer["localId"], answer["idToken"], answer["refreshToken"])

    def sign_in(self) -> str:
        """A fresh sign-in with the password: a new ID token with a new auth_time (kept as
        `id_token`; `sdk_refreshed_id_token` still stands for the first sign-in)."""
        next_second(self.stack)  # auth_time has whole seconds: be in a later second than anything before
        answer = _auth(self.stack, "accounts:signInWithPassword",
                       {"email": self.email, "password": PASSWORD, "returnSecureToken": True})
        self.id_token = str(answer["idToken"])
        return self.id_token

    def sdk_refreshed_id_token(self) -> str:
        """What a Firebase SDK that stayed signed in gets with `getIdToken(true)`: a new ID token,
        but the auth_time of the original sign-in."""
        response = requests.post(
            f"http://{self.stack.auth.host}/securetoken.googleapis.com/v1/token?key=any",
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token}, timeout=10)
        response.raise_for_status()
        return str(response.json()["id_token"])


def revoke_credentials(account: Account) -> None:
    """What a password reset does to the account. revoke_refresh_tokens stamps tokensValidAfterTime
    in whole seconds of this process's clock: wait so that the stamp is a later second than every
    sign-in so far, and more than the creation stamp's second after the account was made
    (account.CREATION_STAMP_SECONDS)."""
    created = _admin_auth().get_user(account.uid, app=app()).user_metadata.creation_timestamp / 1000
    time.sleep(max(1.05, created + CREATION_STAMP_SECONDS + 1.05 - time.time()))
    _admin_auth().revoke_refresh_tokens(account.uid, app=app())


def _auth(stack: Stack, method: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"http://{stack.auth.host}/identitytoolkit.googleapis.com/v1/{method}?key=any",
                             json=body, timeout=10)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture()
def account(stack: Stack) -> Account:
    return Account.create(stack)


def session_doc(db: firestore.Client, uid: str, sid: str) -> dict[str, Any]:
    return db.document(f"users/{uid}/sessions/{sid}").get().to_dict() or {}


def security_events(db: firestore.Client, uid: str) -> list[dict[str, Any]]:
    return [snap.to_dict() or {} for snap in db.collection(f"users/{uid}/securityEvents").stream()]


def alive(device: Device) -> bool:
    answer = device.get("/v1/sessions/current")
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def alerts_about(fcm: StackFcm, sid: str, count: int = 1) -> list[dict[str, Any]]:
    wait_for(lambda: len([m for m in sent(fcm.messages(), "new_login_alert")
                          if m["data"]["newSessionId"] == sid]) >= count, 15)
    time.sleep(SETTLE_SECONDS)
    return [m for m in sent(fcm.messages(), "new_login_alert") if m["data"]["newSessionId"] == sid]


def respond(api: str, action_token: str, answer: str) -> requests.Response:
    return requests.post(f"{api}/v1/alerts/respond", json={"actionToken": action_token, "answer": answer},
                         timeout=10)


def backdate(db: firestore.Client, uid: str, sid: str, hours: float) -> None:
    """Make a session look `hours` old (the fresh-session window counts from createdAt)."""
    db.document(f"users/{uid}/sessions/{sid}").update({"createdAt": datetime.now(UTC) - timedelta(hours=hours)})


# --- 1. Firebase Auth decides whether the account may still have sessions ------------------------


def _admin_auth() -> Any:
    from firebase_admin import auth

    return auth


@pytest.mark.parametrize(("act", "reason"), [
    (lambda uid: _admin_auth().update_user(uid, disabled=True, app=app()), "account_disabled"),
    (lambda uid: _admin_auth().delete_user(uid, app=app()), "account_deleted"),
])
def test_a_disabled_or_deleted_account_loses_every_session_on_its_next_refresh(
    api: str, account: Account, db: firestore.Client, act: Any, reason: str
) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    pixel = signed_in(api, account.id_token, PIXEL)
    act(account.uid)
    refused = phone.refresh()
    assert (refused.status_code, error_code(refused)) == (401, "session_revoked"), refused.text
    assert refused.json()["error"]["reason"] == reason
    for device in (phone, pixel):
        assert session_doc(db, account.uid, device.session_id)["revokedReason"] == reason
        assert not alive(device)
    assert (pixel.refresh().status_code, error_code(pixel.refresh())) == (401, "session_revoked")


def test_a_password_reset_ends_every_session_that_began_before_it_and_only_those(
    api: str, account: Account, db: firestore.Client
) -> None:
    """The lost-device recovery path: revoke_refresh_tokens is what a password reset does."""
    lost_phone = signed_in(api, account.id_token, IPHONE)
    lost_tablet = signed_in(api, account.id_token, IPAD)
    revoke_credentials(account)
    # The owner signs in again on a new laptop, after the reset.
    laptop = signed_in(api, account.sign_in(), PIXEL)
    assert laptop.refresh().status_code == 200
    refused = lost_phone.refresh()
    assert (refused.status_code, error_code(refused)) == (401, "session_revoked"), refused.text
    assert refused.json()["error"]["reason"] == "credentials_revoked"
    assert session_doc(db, account.uid, lost_tablet.session_id)["revokedReason"] == "credentials_revoked"
    assert not alive(lost_tablet) and not alive(lost_phone)
    assert alive(laptop) and session_doc(db, account.uid, laptop.session_id)["status"] == "active"


@pytest.fixture(scope="module")
def auth_down_apis(stack: Stack) -> Iterator[tuple[str, str]]:
    """Two apis on the same Firestore with a 1 s grace window: one whose Auth is unreachable."""
    with (serving(stack, "api", {"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",
                                 "MYDEVICES_REFRESH_GRACE_SECONDS": "1"}) as dead,
          serving(stack, "api", {"MYDEVICES_REFRESH_GRACE_SECONDS": "1"}) as live):
        yield dead.url, live.url


def test_an_auth_outage_during_a_refresh_rotates_nothing_and_is_no_replay_later(
    auth_down_apis: tuple[str, str], account: Account, db: firestore.Client
) -> None:
    dead, live = auth_down_apis
    phone = signed_in(live, account.id_token, IPHONE)
    phone.base = dead
    down = phone.refresh()
    assert (down.status_code, error_code(down)) == (503, "unavailable"), down.text
    assert int(down.headers["Retry-After"]) >= 1
    account.stack.clock.advance(2)  # past the grace window: had the token been rotated, this retry would be a copy
    phone.base = live
    retried = phone.refresh()
    assert retried.status_code == 200, retried.text
    assert security_events(db, account.uid) == []


# --- 2. A closed session cannot silently come back ------------------------------------------------


def _close_from_elsewhere(api: str, how: str, owner: Device, victim: Device) -> None:
    if how == "closed from another device":
        assert owner.delete(f"/v1/sessions/{victim.session_id}").status_code == 200
    elif how == "revoke-others":
        assert owner.post("/v1/sessions/revoke-others").json() == {"revoked": 1}
    elif how == "a copied token":
        stale = victim.refresh_token
        victim.adopt(victim.refresh())
        victim.adopt(victim.refresh())  # two rotations: the first token is past the grace window's reach
        assert error_code(victim.refresh(stale)) == "token_reused"
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["closed from another device", "revoke-others", "a copied token"])
def test_a_closed_device_that_stayed_signed_in_to_firebase_cannot_open_a_session_again(
    api: str, account: Account, how: str
) -> None:
    owner = signed_in(api, account.id_token, IPHONE)
    closed = signed_in(api, account.id_token, GALAXY)
    _close_from_elsewhere(api, how, owner, closed)
    assert not alive(closed)
    # The closed device's Firebase SDK refreshes its ID token and logs in again, no password typed.
    again = Device(api, dict(GALAXY), device_id=closed.device_id)
    refused = again.login(account.sdk_refreshed_id_token(), expect=401)
    assert error_code(refused) == "reauthentication_required"
    fresh_device = Device(api, dict(GALAXY))  # nor by dropping its device id
    assert error_code(fresh_device.login(account.id_token, expect=401)) == "reauthentication_required"
    if how != "a copied token":  # the copy response signs everyone out
        assert alive(owner)
    # Someone who can type the password can sign in again (and the owner's devices are told).
    assert again.login(account.sign_in()).status_code == 201


def test_a_logout_needs_no_fresh_sign_in_and_signing_in_after_it_is_no_news(
    api: str, account: Account, fcm: StackFcm, db: firestore.Client
) -> None:
    owner = signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    tablet = signed_in(api, account.id_token, IPAD, "tok-tablet-" + uuid.uuid4().hex)
    alerts_about(fcm, tablet.session_id)  # a new device: news
    fcm.clear()
    assert tablet.post("/v1/sessions/logout").status_code == 200
    tablet.access_token = ""
    tablet.login(account.sdk_refreshed_id_token())  # after its own logout: no password needed
    assert session_doc(db, account.uid, tablet.session_id)["alertReason"] is None
    time.sleep(3)
    assert sent(fcm.messages(), "new_login_alert") == []
    assert alive(owner) and alive(tablet)


def test_a_device_id_alone_does_not_take_over_a_devices_session_silently(
    api: str, account: Account, fcm: StackFcm, db: firestore.Client
) -> None:
    """Someone with a copy of the device id and the password signs in "as" the owner's tablet."""
    owner = signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    tablet = signed_in(api, account.id_token, IPAD, "tok-tablet-" + uuid.uuid4().hex)
    alerts_about(fcm, tablet.session_id)
    fcm.clear()
    copy = Device(api, dict(IPAD), device_id=tablet.device_id)
    copy.login(account.sign_in())
    assert session_doc(db, account.uid, copy.session_id)["alertReason"] == "unproven_re_login"
    assert [a["token"] for a in alerts_about(fcm, copy.session_id)] == [owner_token(db, account.uid, owner)]


def owner_token(db: firestore.Client, uid: str, device: Device) -> str:
    return str((db.document(f"sessionSecrets/{device.session_id}").get().to_dict() or {})["pushToken"])


def test_a_web_re_login_with_its_own_cookie_is_no_news(api: str, account: Account, fcm: StackFcm,
                                                        db: firestore.Client) -> None:
    signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    first = requests.post(f"{api}/v1/sessions", json={"device": CHROME}, timeout=10,
                          headers={"Authorization": f"Bearer {account.id_token}"})
    assert first.status_code == 201, first.text
    cookies = "; ".join(c.split(";", 1)[0] for c in first.raw.headers.getlist("Set-Cookie"))
    alerts_about(fcm, first.json()["session"]["sessionId"])
    fcm.clear()
    again = requests.post(f"{api}/v1/sessions", json={"device": CHROME}, timeout=10, headers={
        "Authorization": f"Bearer {account.id_token}", "Cookie": cookies, "Sec-Fetch-Site": "same-origin"})
    assert again.status_code == 201, again.text
    assert session_doc(db, account.uid, again.json()["session"]["sessionId"])["alertReason"] is None
    time.sleep(3)
    assert sent(fcm.messages(), "new_login_alert") == []


def test_a_kept_custom_token_is_no_fresh_sign_in(api: str, account: Account, stack: Stack) -> None:
    """The thief keeps the custom token of a login and exchanges it after being closed out."""
    owner = signed_in(api, account.id_token, IPHONE)
    thief = Device(api, dict(GALAXY))
    kept = thief.login(account.id_token).json()["firebaseCustomToken"]
    assert owner.delete(f"/v1/sessions/{thief.session_id}").status_code == 200
    next_second(stack)
    exchanged = _auth(stack, "accounts:signInWithCustomToken", {"token": kept, "returnSecureToken": True})
    refused = thief.login(exchanged["idToken"], expect=401)
    assert error_code(refused) == "reauthentication_required"


# --- 3. "No, close this session" closes the intruder, whatever they did since --------------------


def test_no_closes_the_intruders_later_sessions_on_that_device_and_it_stays_untrusted(
    api: str, account: Account, fcm: StackFcm, db: firestore.Client
) -> None:
    owner = signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    intruder = signed_in(api, account.sign_in(), GALAXY, "tok-intruder-" + uuid.uuid4().hex)
    [alert] = alerts_about(fcm, intruder.session_id)
    first_sid = intruder.session_id
    # Before the owner answers, the intruder signs in again on the same device, and again after
    # a logout: two sessions that the alert does not name.
    intruder.login(account.id_token)
    second_sid = intruder.session_id
    assert intruder.post("/v1/sessions/logout").status_code == 200
    intruder.access_token = ""
    intruder.login(account.sign_in())
    assert intruder.session_id not in (first_sid, second_sid) and alive(intruder)
    answer = respond(api, alert["data"]["actionToken"], "no")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["closedSessionIds"] == [intruder.session_id]  # the one still open; never a false claim
    assert (body["status"], body["advice"]) == ("revoked", "change_password")
    assert not alive(intruder) and alive(owner)
    assert session_doc(db, account.uid, intruder.session_id)["revokedReason"] == "rejected_by_user"
    # The device is untrusted now: the old sign-in no longer opens a session, and a fresh one
    # (the intruder has the password) alerts the owner again, although it is a known device.
    assert error_code(intruder.login(account.sdk_refreshed_id_token(), expect=401)) == "reauthentication_required"
    fcm.clear()
    intruder.login(account.sign_in())
    assert session_doc(db, account.uid, intruder.session_id)["alertReason"] == "untrusted_device"
    [again] = alerts_about(fcm, intruder.session_id)
    intruder.login(account.id_token)  # even a plain re-login of that device alerts, and needs no new sign-in
    [re_login_alert] = alerts_about(fcm, intruder.session_id)
    assert re_login_alert["token"] == again["token"] == alert["token"]


def test_no_about_sessions_already_closed_claims_nothing(
    api: str, account: Account, fcm: StackFcm
) -> None:
    owner = signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    intruder = signed_in(api, account.id_token, GALAXY, "tok-intruder-" + uuid.uuid4().hex)
    [alert] = alerts_about(fcm, intruder.session_id)
    assert owner.delete(f"/v1/sessions/{intruder.session_id}").status_code == 200
    answer = respond(api, alert["data"]["actionToken"], "no")
    assert answer.status_code == 200, answer.text
    assert answer.json()["closedSessionIds"] == []


def test_a_device_closed_from_elsewhere_alerts_when_it_signs_in_again(
    api: str, account: Account, fcm: StackFcm, db: firestore.Client
) -> None:
    owner = signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    tablet = signed_in(api, account.id_token, IPAD, "tok-tablet-" + uuid.uuid4().hex)
    alerts_about(fcm, tablet.session_id)
    assert owner.delete(f"/v1/sessions/{tablet.session_id}").status_code == 200
    fcm.clear()
    tablet.access_token = ""
    tablet.login(account.sign_in())
    assert session_doc(db, account.uid, tablet.session_id)["alertReason"] == "closed_elsewhere"
    assert len(alerts_about(fcm, tablet.session_id)) == 1


def test_yes_lifts_an_earlier_no_about_the_device(api: str, account: Account, fcm: StackFcm,
                                                  db: firestore.Client) -> None:
    signed_in(api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    tablet = signed_in(api, account.id_token, IPAD, "tok-tablet-" + uuid.uuid4().hex)
    [alert] = alerts_about(fcm, tablet.session_id)
    assert respond(api, alert["data"]["actionToken"], "no").status_code == 200
    fcm.clear()
    tablet.login(account.sign_in())
    [alert] = alerts_about(fcm, tablet.session_id)
    assert respond(api, alert["data"]["actionToken"], "yes").status_code == 200
    assert tablet.post("/v1/sessions/logout").status_code == 200
    tablet.access_token = ""
    tablet.login(account.id_token)  # trusted again: coming back after its own logout is no news
    assert session_doc(db, account.uid, tablet.session_id)["alertReason"] is None


# --- 4. A fresh session cannot take over the account ---------------------------------------------


# The api with the fresh-session window at its default (24 h).
settled_api = function_url("api", {"MYDEVICES_FRESH_SESSION_HOURS": "24"})


def test_a_fresh_session_cannot_close_others_but_older_ones_can_close_it(
    settled_api: str, stack: Stack, account: Account, db: firestore.Client
) -> None:
    owner = signed_in(settled_api, account.id_token, IPHONE)
    backdate(db, account.uid, owner.session_id, hours=30)
    intruder = signed_in(settled_api, account.sign_in(), GALAXY)
    for attempt in (intruder.post("/v1/sessions/revoke-others"),
                    intruder.delete(f"/v1/sessions/{owner.session_id}")):
        assert (attempt.status_code, error_code(attempt)) == (403, "session_too_new"), attempt.text
        allowed_at = datetime.fromisoformat(attempt.json()["error"]["allowedAt"])
        now = datetime.fromtimestamp(stack.clock.now(), UTC)  # the product's time: the test moved it
        assert timedelta(hours=23, minutes=59) < allowed_at - now <= timedelta(hours=24)
    listed = intruder.get("/v1/sessions").json()
    assert listed["closeOthersAllowedAt"] is not None
    assert {s["sessionId"]: s["canClose"] for s in listed["sessions"]} == {
        intruder.session_id: False, owner.session_id: False}
    assert alive(owner)
    owner_view = owner.get("/v1/sessions").json()
    assert owner_view["closeOthersAllowedAt"] is None
    assert {s["sessionId"]: s["canClose"] for s in owner_view["sessions"]} == {
        owner.session_id: False, intruder.session_id: True}
    assert owner.delete(f"/v1/sessions/{intruder.session_id}").status_code == 200
    assert not alive(intruder)


def test_a_fresh_session_cannot_close_others_through_the_callables(
    settled_api: str, stack: Stack, account: Account, db: firestore.Client
) -> None:
    from mydevices.tokens import firebase  # noqa: F401 - the custom token names the session

    callables = stack.start_function("callables", "http", {"MYDEVICES_FRESH_SESSION_HOURS": "24"})
    try:
        owner = signed_in(settled_api, account.id_token, IPHONE)
        backdate(db, account.uid, owner.session_id, hours=30)
        login = requests.post(f"{settled_api}/v1/sessions", json={"device": GALAXY},
                              headers={"Authorization": f"Bearer {account.sign_in()}"}, timeout=10).json()
        signed = _auth(stack, "accounts:signInWithCustomToken",
                       {"token": login["firebaseCustomToken"], "returnSecureToken": True})
        headers = {"Authorization": f"Bearer {signed['idToken']}"}
        for name, data in (("sessions_revoke_others", None), ("sessions_revoke", {"sessionId": owner.session_id})):
            answer = requests.post(f"{callables.url}/{name}", json={"data": data}, headers=headers, timeout=10)
            assert answer.status_code == 403, answer.text
            error = answer.json()["error"]
            assert (error["status"], error["details"]["code"]) == ("PERMISSION_DENIED", "session_too_new")
            assert error["details"]["allowedAt"]
        assert alive(owner)
    finally:
        callables.stop()


def test_an_older_session_can_still_answer_no_about_a_fresh_one(
    settled_api: str, account: Account, db: firestore.Client, event_functions: EventFunctions
) -> None:
    fcm = event_functions.fcm
    fcm.clear()
    owner = signed_in(settled_api, account.id_token, IPHONE, "tok-owner-" + uuid.uuid4().hex)
    backdate(db, account.uid, owner.session_id, hours=30)
    intruder = signed_in(settled_api, account.sign_in(), GALAXY)
    assert error_code(intruder.post("/v1/sessions/revoke-others")) == "session_too_new"
    [alert] = alerts_about(fcm, intruder.session_id)
    answer = respond(settled_api, alert["data"]["actionToken"], "no")
    assert answer.json()["closedSessionIds"] == [intruder.session_id]
    assert not alive(intruder) and alive(owner)


def test_a_fresh_session_cannot_answer_alerts_about_the_owners_next_login(
    settled_api: str, account: Account, db: firestore.Client, event_functions: EventFunctions
) -> None:
    fcm = event_functions.fcm
    fcm.clear()
    intruder = signed_in(settled_api, account.sign_in(), GALAXY, "tok-intruder-" + uuid.uuid4().hex)
    laptop = signed_in(settled_api, account.sign_in(), PIXEL)  # the owner, on a new device
    [alert] = [a for a in alerts_about(fcm, laptop.session_id) if a["token"].startswith("tok-intruder-")]
    for answer in ("no", "yes"):
        refused = respond(settled_api, alert["data"]["actionToken"], answer)
        assert (refused.status_code, error_code(refused)) == (403, "session_too_new"), refused.text
    assert alive(laptop) and alive(intruder)


def test_a_fresh_sessions_own_stale_token_signs_out_only_its_own_device(
    settled_api: str, account: Account, db: firestore.Client
) -> None:
    owner = signed_in(settled_api, account.id_token, IPHONE)
    backdate(db, account.uid, owner.session_id, hours=30)
    intruder = signed_in(settled_api, account.sign_in(), GALAXY)
    stale = intruder.refresh_token
    intruder.login(account.id_token)  # replaces its own session: its old token is now "a copy"
    answer = intruder.refresh(stale)
    assert (answer.status_code, error_code(answer)) == (401, "token_reused"), answer.text
    assert alive(owner) and not alive(intruder)


def test_closing_a_session_whose_device_signed_in_again_closes_what_the_device_holds(
    api: str, account: Account
) -> None:
    owner = signed_in(api, account.id_token, IPHONE)
    tablet = signed_in(api, account.id_token, IPAD)
    listed_sid = tablet.session_id
    tablet.login(account.id_token)  # between the owner's list and the tap
    assert owner.delete(f"/v1/sessions/{listed_sid}").status_code == 200
    assert not alive(tablet) and alive(owner)


capped_api = function_url("api", {"MYDEVICES_MAX_ACTIVE_SESSIONS": "3"})


def test_lost_devices_that_never_refresh_do_not_keep_the_owner_out_after_a_reset(
    capped_api: str, account: Account, db: firestore.Client
) -> None:
    lost = [signed_in(capped_api, account.id_token, spec) for spec in (IPHONE, IPAD, GALAXY)]
    assert error_code(Device(capped_api, dict(PIXEL)).login(account.id_token, expect=409)) == "device_limit_reached"
    revoke_credentials(account)
    laptop = Device(capped_api, dict(PIXEL))
    assert laptop.login(account.sign_in()).status_code == 201
    assert {session_doc(db, account.uid, d.session_id)["revokedReason"] for d in lost} == {"credentials_revoked"}


# --- 5. The copied-token response fires once per incident and is no weapon -----------------------


def test_a_stale_refresh_token_replayed_again_and_again_signs_out_once(
    api: str, account: Account, db: firestore.Client
) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    stale = phone.refresh_token
    phone.adopt(phone.refresh())
    phone.adopt(phone.refresh())
    first = phone.refresh(stale)
    assert (first.status_code, error_code(first)) == (401, "token_reused")
    assert len(security_events(db, account.uid)) == 1
    # The owner signs in again; the thief keeps replaying the copy.
    laptop = signed_in(api, account.sign_in(), PIXEL)
    for _ in range(5):
        replay = phone.refresh(stale)
        assert (replay.status_code, error_code(replay)) == (401, "session_revoked"), replay.text
    assert alive(laptop)
    assert len(security_events(db, account.uid)) == 1


def test_concurrent_replays_of_one_stale_token_record_one_incident(
    api: str, account: Account, db: firestore.Client
) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    stale = phone.refresh_token
    phone.adopt(phone.refresh())
    phone.adopt(phone.refresh())
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: phone.refresh(stale), range(4)))
    assert {a.status_code for a in answers} == {401}
    assert "token_reused" in {error_code(a) for a in answers}
    assert len(security_events(db, account.uid)) == 1


def test_a_retry_in_the_grace_window_after_a_closure_closes_nothing_else(
    api: str, account: Account, db: firestore.Client
) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    tablet = signed_in(api, account.id_token, IPAD)
    previous = tablet.refresh_token
    tablet.adopt(tablet.refresh())
    assert phone.delete(f"/v1/sessions/{tablet.session_id}").status_code == 200
    retry = tablet.refresh(previous)  # a lost response retried, after the phone closed the tablet
    assert (retry.status_code, error_code(retry)) == (401, "session_revoked"), retry.text
    assert alive(phone) and security_events(db, account.uid) == []


def test_tokens_of_a_replaced_session_whose_successor_ended_close_nothing(
    api: str, account: Account, db: firestore.Client
) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    tablet = signed_in(api, account.id_token, IPAD)
    old_access, old_refresh = tablet.access_token, tablet.refresh_token
    tablet.login(account.id_token)  # replaced by its own re-login ...
    assert tablet.post("/v1/sessions/logout").status_code == 200  # ... which then logged out
    copy = Device(api, dict(IPAD), device_id=tablet.device_id, access_token=old_access, refresh_token=old_refresh)
    assert error_code(copy.refresh()) == "session_revoked"
    assert error_code(copy.get("/v1/sessions/current")) == "session_revoked"
    assert alive(phone) and security_events(db, account.uid) == []


def test_a_replaced_sessions_token_while_its_successor_is_live_is_a_copy(
    api: str, account: Account, db: firestore.Client
) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    tablet = signed_in(api, account.id_token, IPAD)
    copy = Device(api, dict(IPAD), device_id=tablet.device_id, access_token=tablet.access_token,
                  refresh_token=tablet.refresh_token)
    tablet.login(account.id_token)
    tablet.login(account.id_token)  # two re-logins: the successor chain is followed
    assert error_code(copy.get("/v1/sessions/current")) == "token_reused"
    assert not alive(phone) and not alive(tablet)
    [event] = security_events(db, account.uid)
    assert event["liveSessionId"] == tablet.session_id


# --- 6. Limits that cannot be turned against the owner -------------------------------------------


limited_api = function_url("api", {
    **dict.fromkeys(RATE_LIMITS_OFF, "off"),
    "MYDEVICES_TRUSTED_PROXIES": "1",
    "MYDEVICES_REFRESH_RATE_PER_SESSION": "3/600",
    "MYDEVICES_LOGIN_RATE_PER_USER_ADDRESS": "3/3600",
    "MYDEVICES_LOGIN_RATE_PER_USER": "50/3600",
    "MYDEVICES_LOGIN_RATE_PER_IP": "4/600",
    "MYDEVICES_IPV6_RATE_PREFIX": "64",
})


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_made_up_secrets_with_the_victims_session_id_do_not_spend_the_victims_budget(
    limited_api: str, account: Account
) -> None:
    victim = Device(limited_api, dict(IPHONE))
    victim.login(account.id_token, headers=_from("198.51.100.7"))
    for _ in range(8):
        forged = f"{victim.session_id}.0.{secrets.token_urlsafe(32)}"
        answer = victim.refresh(forged)
        assert (answer.status_code, error_code(answer)) == (401, "invalid_token")
    answer = victim.refresh()
    assert answer.status_code == 200, answer.text


def test_an_intruders_logins_do_not_lock_the_owner_out_on_another_address(
    limited_api: str, account: Account
) -> None:
    intruder = [Device(limited_api, dict(GALAXY)).login(account.id_token, headers=_from("203.0.113.9"),
                                                        expect=201 if index < 3 else 429) for index in range(4)]
    assert error_code(intruder[-1]) == "rate_limited"  # per (user, address): a new device id each time does not help
    owner = Device(limited_api, dict(IPHONE))
    assert owner.login(account.id_token, headers=_from("192.0.2.44")).status_code == 201


def test_ipv6_addresses_are_counted_by_their_slash_64(limited_api: str, stack: Stack) -> None:
    same_net = ["2001:db8:aa:1::1", "2001:db8:aa:1:ffff::2", "2001:db8:aa:1::3", "2001:db8:aa:1:1:2:3:4",
                "2001:db8:aa:1::5"]
    answers = [requests.post(f"{limited_api}/v1/sessions", json={"device": IPHONE}, timeout=10,
                             headers={"Authorization": "Bearer not-a-token", **_from(ip)}) for ip in same_net]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    other_net = requests.post(f"{limited_api}/v1/sessions", json={"device": IPHONE}, timeout=10,
                              headers={"Authorization": "Bearer not-a-token", **_from("2001:db8:aa:2::1")})
    assert other_net.status_code == 401


# --- 9. No oracles, and contention answered honestly ---------------------------------------------


def test_refresh_answers_the_same_for_a_real_and_a_made_up_session_id(api: str, account: Account) -> None:
    phone = signed_in(api, account.id_token, IPHONE)
    real = phone.refresh(f"{phone.session_id}.0.{secrets.token_urlsafe(32)}")
    made_up = phone.refresh(f"{secrets.token_urlsafe(16)}.0.{secrets.token_urlsafe(32)}")
    other_device = Device(api, dict(PIXEL))
    other_device.login(account.id_token)
    foreign = other_device.refresh(phone.refresh_token)
    assert real.status_code == made_up.status_code == foreign.status_code == 401
    assert real.json() == made_up.json() == foreign.json()


def test_parallel_logins_of_one_user_succeed_or_say_it_was_contention(api: str, account: Account) -> None:
    """Six devices of one user signing in at once (a family tablet set-up, a script)."""
    specs = [dict(spec, name=f"{spec['name']} {index}") for index, spec in enumerate((IPHONE, PIXEL, IPAD) * 2)]
    with ThreadPoolExecutor(len(specs)) as pool:
        answers = list(pool.map(lambda spec: requests.post(
            f"{api}/v1/sessions", json={"device": spec}, timeout=60,
            headers={"Authorization": f"Bearer {account.id_token}"}), specs))
    refused = [a for a in answers if a.status_code != 201]
    print(f"\nparallel logins of one user: {len(answers) - len(refused)} of {len(answers)} succeeded")
    for answer in refused:
        assert (answer.status_code, error_code(answer)) == (503, "contention"), answer.text
        assert int(answer.headers["Retry-After"]) >= 1
    assert len(refused) <= 1
