"""The push fan-out end to end on the local stack: the API changes sessions, the Firestore
emulator delivers its own CloudEvents to on_session_written, the Pub/Sub emulator's ordered push
subscription delivers to send_session_push, and the FCM stand-in process records what arrives."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.events.cloud.firestore import Document, DocumentEventData, Value

from infra.local.stack import Stack
from support.devices import GALAXY, IPAD, IPHONE, PIXEL, error_code, signed_in
from support.push import EventFunctions, StackFcm, sent
from support.waiting import wait_for

SETTLE_SECONDS = 1.0  # after the expected pushes arrived, how long to watch for unexpected ones
TAP = "session-events-tap"


@pytest.fixture(scope="module")
def tap(stack: Stack) -> Iterator[str]:
    """A pull subscription on the session-events topic, to see what the trigger published."""
    base = f"http://{stack.pubsub.host}/v1/projects/{stack.project}"
    requests.put(f"{base}/subscriptions/{TAP}", json={"topic": f"projects/{stack.project}/topics/session-events",
                                                      "enableMessageOrdering": True}, timeout=10).raise_for_status()
    yield f"{base}/subscriptions/{TAP}"
    requests.delete(f"{base}/subscriptions/{TAP}", timeout=10)


def pull(tap: str) -> list[dict[str, Any]]:
    got = requests.post(f"{tap}:pull", json={"maxMessages": 100, "returnImmediately": True}, timeout=10).json()
    received = got.get("receivedMessages", [])
    if received:
        requests.post(f"{tap}:acknowledge", json={"ackIds": [m["ackId"] for m in received]}, timeout=10)
    return [m["message"] for m in received]


def arrived(fcm: StackFcm, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Wait for `count` messages, then a little longer to catch any that should not have come."""
    wait_for(lambda: len(fcm.messages()) >= count, timeout)
    time.sleep(SETTLE_SECONDS)
    return fcm.messages()


def respond(api: str, token: str, answer: str) -> requests.Response:
    return requests.post(f"{api}/v1/alerts/respond", json={"actionToken": token, "answer": answer}, timeout=10)


def test_revoking_through_the_api_force_logs_out_exactly_that_device(api: str, fcm: StackFcm, sign_up: Any) -> None:
    _, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE, "tok-phone-" + uuid.uuid4().hex)
    pixel_token = "tok-pixel-" + uuid.uuid4().hex
    pixel = signed_in(api, id_token, PIXEL, pixel_token)
    arrived(fcm, 1)  # the Pixel's login alerted the phone
    fcm.clear()
    answer = phone.delete(f"/v1/sessions/{pixel.session_id}")
    returned = time.time()
    assert answer.status_code in (200, 204), answer.text
    messages = arrived(fcm, 1)
    assert len(messages) == 1
    assert messages[0]["message"] == {
        "token": pixel_token,
        "data": {"action": "force_logout", "reason": "user_revoked", "sessionId": pixel.session_id},
        "android": {"priority": "high"},
        "apns": {"headers": {"apns-push-type": "background", "apns-priority": "5"},
                 "payload": {"aps": {"content-available": 1}}},
    }
    assert messages[0]["receivedAt"] - returned < 5


def test_a_new_login_alerts_every_other_device_with_a_token_exactly_once(api: str, fcm: StackFcm,
                                                                         sign_up: Any) -> None:
    _, id_token = sign_up()
    phone_token, ipad_token = "tok-phone-" + uuid.uuid4().hex, "tok-ipad-" + uuid.uuid4().hex
    signed_in(api, id_token, IPHONE, phone_token)
    signed_in(api, id_token, IPAD, ipad_token)
    signed_in(api, id_token, {"name": "Chrome on macOS", "platform": "web"}, None)
    arrived(fcm, 3)  # the earlier logins' own alerts
    fcm.clear()
    galaxy = signed_in(api, id_token, GALAXY, "tok-galaxy-" + uuid.uuid4().hex)
    messages = arrived(fcm, 2)
    alerts = sent(messages, "new_login_alert")
    assert len(messages) == len(alerts) == 2
    assert sorted(m["token"] for m in alerts) == sorted([phone_token, ipad_token])
    assert {m["data"]["body"] for m in alerts} == {m["apns"]["payload"]["aps"]["alert"]["body"] for m in alerts} == {
        "Signed in on “Galaxy S24” from an unknown location. Was that you?"}
    assert {m["data"]["newSessionId"] for m in alerts} == {galaxy.session_id}


def test_a_device_named_after_a_place_cannot_pass_for_a_login_from_there(api: str, fcm: StackFcm,
                                                                        sign_up: Any) -> None:
    """Through the API and the whole pipeline: the intruder names its device to read like a
    genuine alert ("Signed in on iPhone 15 from London, United Kingdom"); the place comes from
    the server's lookup only (none here: a loopback client), and the name stays in quotes."""
    _, id_token = sign_up()
    signed_in(api, id_token, IPHONE, "tok-phone-" + uuid.uuid4().hex)  # alone: nobody to alert
    forged = {**GALAXY, "name": "iPhone 15” from London, United Kingdom"}
    signed_in(api, id_token, forged, "tok-intruder-" + uuid.uuid4().hex)
    [alert] = sent(arrived(fcm, 1), "new_login_alert")
    assert alert["data"]["body"] == alert["apns"]["payload"]["aps"]["alert"]["body"] == (
        "Signed in on “iPhone 15 from London, United Kingdom” from an unknown location. Was that you?")


def test_answering_no_closes_the_new_session_force_logs_it_out_and_works_once(api: str, fcm: StackFcm,
                                                                             sign_up: Any) -> None:
    _, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE, "tok-phone-" + uuid.uuid4().hex)
    intruder_token = "tok-intruder-" + uuid.uuid4().hex
    intruder = signed_in(api, id_token, GALAXY, intruder_token)
    [alert] = sent(arrived(fcm, 1), "new_login_alert")
    fcm.clear()
    answer = respond(api, alert["data"]["actionToken"], "no")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"answer": "no", "sessionId": intruder.session_id, "status": "revoked",
                             "closedSessionIds": [intruder.session_id], "advice": "change_password"}
    messages = arrived(fcm, 1)
    assert [(m["message"]["token"], m["message"]["data"]) for m in messages] == [
        (intruder_token, {"action": "force_logout", "reason": "rejected_by_user", "sessionId": intruder.session_id})]
    assert intruder.get("/v1/sessions/current").status_code == 401
    assert [s["sessionId"] for s in phone.get("/v1/sessions").json()["sessions"]] == [phone.session_id]
    again = respond(api, alert["data"]["actionToken"], "no")
    assert (again.status_code, error_code(again)) == (409, "already_answered")
    assert (respond(api, "garbage", "no").status_code, error_code(respond(api, "garbage", "no"))) == (
        401, "invalid_token")


def test_a_relogin_on_the_same_device_does_not_force_logout_it(api: str, fcm: StackFcm, sign_up: Any) -> None:
    """No force_logout to the device (it holds the new session); the other devices are asked,
    since a mobile re-login proves only the device id (docs/concepts/trust-rules.md)."""
    _, id_token = sign_up()
    phone_token, pixel_token = "tok-phone-" + uuid.uuid4().hex, "tok-pixel-" + uuid.uuid4().hex
    signed_in(api, id_token, IPHONE, phone_token)
    pixel = signed_in(api, id_token, PIXEL, pixel_token)
    arrived(fcm, 1)
    fcm.clear()
    pixel.login(id_token, push_token=pixel_token)  # same device id: replaces its session
    messages = arrived(fcm, 1)
    assert [(m["message"]["token"], m["message"]["data"]["action"]) for m in messages] == [
        (phone_token, "new_login_alert")]


def test_a_503_from_fcm_is_retried_until_the_push_gets_through(api: str, fcm: StackFcm, sign_up: Any) -> None:
    _, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE, None)
    flaky = "tok-flaky-" + uuid.uuid4().hex
    pixel = signed_in(api, id_token, PIXEL, flaky)
    fcm.fault(flaky, 503, "UNAVAILABLE", times=6)  # more than firebase-admin's own 4 retries
    assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code in (200, 204)
    messages = arrived(fcm, 1, timeout=60)  # library back-off (~7 s), then Pub/Sub redelivery
    assert [m["message"]["token"] for m in messages] == [flaky]
    assert len([f for f in fcm.failures() if f["message"]["token"] == flaky]) == 6


def test_a_dead_token_is_removed(api: str, fcm: StackFcm, sign_up: Any, stack: Stack) -> None:
    from google.cloud import firestore

    _, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE, None)
    dead = "tok-dead-" + uuid.uuid4().hex
    pixel = signed_in(api, id_token, PIXEL, dead)
    fcm.fault(dead, 404, "UNREGISTERED")
    assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code in (200, 204)
    secret = firestore.Client(project=stack.project).document(f"sessionSecrets/{pixel.session_id}")
    assert wait_for(lambda: secret.get().get("pushToken") is None, 15)
    assert fcm.messages() == []


def test_published_events_carry_the_emulator_event_id_and_the_uid_as_ordering_key(
    api: str, fcm: StackFcm, sign_up: Any, tap: str
) -> None:
    pull(tap)
    uid, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE, None)
    phone.post("/v1/sessions/logout")
    collected: list[dict[str, Any]] = []

    def two_published() -> bool:
        collected.extend(pull(tap))
        return len(collected) >= 2

    wait_for(two_published, 10)
    time.sleep(SETTLE_SECONDS)
    collected.extend(pull(tap))
    events = [json.loads(base64.b64decode(m["data"])) for m in collected]
    assert [e["type"] for e in events] == ["new_login", "session_revoked"]
    assert {k: events[1][k] for k in ("type", "uid", "sessionId", "reason", "by", "deviceName")} == {
        "type": "session_revoked", "uid": uid, "sessionId": phone.session_id, "reason": "logout", "by": None,
        "deviceName": IPHONE["name"]}  # the by and device fields are for the app's backend (app_events/)
    assert {m["orderingKey"] for m in collected} == {uid}
    assert all(uuid.UUID(m["attributes"]["eventId"]) for m in collected)
    assert fcm.messages() == []  # a logout the device made itself pushes nothing


def _revocation(project: str, uid: str, sid: str) -> bytes:
    def doc(status: str, reason: str | None) -> Document:
        fields = {"uid": Value(string_value=uid), "status": Value(string_value=status),
                  "revokedReason": Value(string_value=reason) if reason else Value(null_value=0)}
        return Document(name=f"projects/{project}/databases/(default)/documents/users/{uid}/sessions/{sid}",
                        fields=fields)

    raw: bytes = DocumentEventData.serialize(DocumentEventData(value=doc("revoked", "user_revoked"),
                                                               old_value=doc("active", None)))
    return raw


def test_a_redelivered_firestore_event_sends_nothing_new(event_functions: EventFunctions, fcm: StackFcm,
                                                         stack: Stack) -> None:
    from google.cloud import firestore

    sid, token = "s-" + uuid.uuid4().hex, "tok-" + uuid.uuid4().hex
    firestore.Client(project=stack.project).document(f"sessionSecrets/{sid}").set(
        {"uid": "redelivery-user", "pushToken": token, "pushProvider": "fcm"})
    event_id = str(uuid.uuid4())
    headers = {
        "ce-specversion": "1.0", "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": f"//firestore.googleapis.com/projects/{stack.project}/databases/(default)",
        "ce-id": event_id, "ce-subject": f"documents/users/redelivery-user/sessions/{sid}",
        "Content-Type": "application/protobuf",
    }
    body = _revocation(stack.project, "redelivery-user", sid)
    for payload in (body, base64.b64encode(body), body):  # Eventarc's raw bytes and the emulator's base64
        answer = requests.post(event_functions.trigger_url + "/", data=payload, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
    messages = arrived(fcm, 1)
    assert [m["message"]["token"] for m in messages] == [token]
