"""The user's security activity, end to end on the local stack: logins, an alert answered "No", a
close from another device, an expiry and a copied token go through the API, the Firestore trigger,
session-events and the relay (publish_app_events, on its own ordered subscription here), which
writes users/{uid}/activity; GET /v1/activity, the callable and the Firestore rules read it back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1

from infra.local.stack import FunctionServer, Stack
from infra.local.stack.emulators import APP_EVENTS_DEAD_TOPIC, SESSION_EVENTS_TOPIC, ordered_push_subscription
from mydevices import store
from support.devices import GALAXY, IPAD, IPHONE, PIXEL, Device, doc_url, error_code, sign_in_with_custom_token
from support.push import EventFunctions
from support.serving import function_url, serving
from support.waiting import next_second, wait_for

HOUR = 3600
SHORT = {"MYDEVICES_IDLE_TIMEOUT_APP": str(HOUR), "MYDEVICES_MAX_SESSION_AGE_APP": str(24 * HOUR)}
PASSWORD = "correct-horse-9"
SUBSCRIPTION = "session-events-activity-test"

short = function_url("api", SHORT, own_port=True)
callables_url = function_url("callables", SHORT, own_port=True)


@pytest.fixture(scope="module")
def relay(stack: Stack, event_functions: EventFunctions) -> Iterator[FunctionServer]:
    """The relay on an ordered push subscription of session-events, as Terraform declares it."""
    host, project = stack.pubsub.host, stack.project
    with serving(stack, "publish_app_events", signature_type="cloudevent", own_port=True) as server:
        ordered_push_subscription(host, project, SESSION_EVENTS_TOPIC, SUBSCRIPTION,
                                  f"{server.url}/projects/{project}/topics/{SESSION_EVENTS_TOPIC}",
                                  dead_topic=APP_EVENTS_DEAD_TOPIC, backoff=(0.5, 2))
        yield server
        subscriber = pubsub_v1.SubscriberClient()
        subscriber.delete_subscription(subscription=subscriber.subscription_path(project, SUBSCRIPTION))
        subscriber.close()


@pytest.fixture(scope="module", autouse=True)
def clock_put_back(stack: Stack) -> Iterator[None]:
    offset = stack.clock.offset
    yield
    stack.clock.set(offset)


class Account:
    """One user signing in devices with fresh passwords sign-ins (the Auth emulator reads the clock)."""

    def __init__(self, stack: Stack, base: str) -> None:
        self.stack, self.base = stack, base
        self.email = f"activity-{uuid.uuid4().hex[:8]}@example.com"
        self.uid = stack.auth.sign_up(self.email, PASSWORD)[0]

    def device(self, spec: dict[str, Any]) -> Device:
        next_second(self.stack)
        device = Device(self.base, dict(spec))
        self.login = device.login(self.stack.auth.sign_in(self.email, PASSWORD)[1]).json()
        return device


def entries(uid: str) -> list[dict[str, Any]]:
    found = store.db().collection(f"users/{uid}/activity").stream()
    return [(snap.to_dict() or {}) | {"id": snap.id} for snap in found]


def settled(uid: str, count: int) -> list[dict[str, Any]]:
    """The user's entries once there are `count` of them (the relay writes them in the background)."""
    found = wait_for(lambda: len(entries(uid)) >= count and entries(uid), 30)
    assert len(found) == count, found
    return list(found)


def listed(device: Device, **params: Any) -> dict[str, Any]:
    answer = device.get("/v1/activity", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def summary(activity: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(kind, session, who closed it, the answer or whether it alerted), newest first."""
    return [(e["kind"], e["sessionId"], (e.get("closedBy") or {}).get("kind"),
             e.get("answer", e.get("alerted"))) for e in activity]


@pytest.fixture(scope="module")
def story(stack: Stack, short: str, relay: FunctionServer) -> dict[str, Any]:
    """One user's month: a login, an alert answered "No", a close from another device, an expiry,
    a copied token; then a fresh login to read it all with."""
    user = Account(stack, short)
    phone = user.device(IPHONE)
    phone_firebase = sign_in_with_custom_token(stack, user.login["firebaseCustomToken"])[0]
    pixel = user.device(PIXEL)  # news: the phone is asked "Was that you?"
    [alert] = wait_for(lambda: phone.get("/v1/alerts").json()["alerts"], 10)
    answer = requests.post(f"{short}/v1/alerts/respond", json={"actionToken": alert["actionToken"], "answer": "no"},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    ipad = user.device(IPAD)
    assert phone.delete(f"/v1/sessions/{ipad.session_id}").status_code == 200
    galaxy = user.device(GALAXY)
    stack.clock.advance(minutes=50)
    phone.adopt(phone.refresh())
    stack.clock.advance(minutes=15)  # the Galaxy is idle for 65 minutes: listing closes it as expired
    phone.adopt(phone.refresh())  # its access token has lived its ten minutes
    assert [s["sessionId"] for s in phone.get("/v1/sessions").json()["sessions"]] == [phone.session_id]
    copied = phone.refresh_token
    phone.adopt(phone.refresh())
    phone.adopt(phone.refresh())
    replay = phone.refresh(copied)
    assert (replay.status_code, error_code(replay)) == (401, "token_reused")
    # 4 logins, the "No" and its closure, a closure by the phone, an expiry, the incident and its closure
    settled(user.uid, 10)
    reader = user.device(PIXEL)  # a new device of the user's, to read it all
    reader_firebase = sign_in_with_custom_token(stack, user.login["firebaseCustomToken"])[0]
    settled(user.uid, 11)
    return {"user": user, "phone": phone, "pixel": pixel, "ipad": ipad, "galaxy": galaxy, "reader": reader,
            "phone_firebase": phone_firebase, "reader_firebase": reader_firebase}


def test_each_event_appears_once_newest_first_with_who_closed_it(story: dict[str, Any]) -> None:
    phone, pixel, ipad, galaxy, reader = (story[k] for k in ("phone", "pixel", "ipad", "galaxy", "reader"))
    activity = listed(reader)["activity"]
    assert summary(activity) == [
        ("signed_in", reader.session_id, None, True),
        ("closed", phone.session_id, "copied_token", None),
        ("copied_token", phone.session_id, None, None),
        ("closed", galaxy.session_id, "expiry", None),
        ("signed_in", galaxy.session_id, None, True),
        ("closed", ipad.session_id, "user", None),
        ("signed_in", ipad.session_id, None, True),
        ("closed", pixel.session_id, "alert_answer", None),
        ("alert_answered", pixel.session_id, None, "no"),
        ("signed_in", pixel.session_id, None, True),
        ("signed_in", phone.session_id, None, True),  # a first device is news too (envelope.py's `alerted`)
    ]
    assert len({e["id"] for e in activity}) == len(activity)
    by_kind = {(e["kind"], e["sessionId"]): e for e in activity}
    closed_ipad = by_kind[("closed", ipad.session_id)]
    assert closed_ipad["closedBy"]["sessionId"] == phone.session_id
    assert closed_ipad["closedBy"]["text"] == "Closed by you on \u201ciPhone 15 Pro\u201d"
    assert by_kind[("closed", pixel.session_id)]["closedBy"]["text"] == \
        "Closed by your \u201cNo\u201d to \u201cWas that you?\u201d"
    assert by_kind[("closed", galaxy.session_id)]["reason"] == "expired_idle"
    assert by_kind[("copied_token", phone.session_id)]["liveSessionId"] == phone.session_id
    assert activity[0]["isCurrentDevice"] and activity[0]["text"].startswith("Signed in on \u201cPixel 8\u201d")
    for entry in entries(story["user"].uid):  # nothing a client may not read
        assert not {"deviceId", "detail", "refreshHash", "uid"} & set(entry), entry


def test_pages_with_a_cursor_give_the_same_entries_once(story: dict[str, Any]) -> None:
    reader = story["reader"]
    whole = [e["id"] for e in listed(reader)["activity"]]
    paged, cursor = [], None
    while True:
        page = listed(reader, limit=4, **({"cursor": cursor} if cursor else {}))
        assert len(page["activity"]) <= 4
        paged += [e["id"] for e in page["activity"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert paged == whole
    for bad in ({"limit": "0"}, {"limit": "101"}, {"limit": "two"}, {"cursor": "x' OR 1"}):
        answer = reader.get("/v1/activity", params=bad)
        assert (answer.status_code, error_code(answer)) == (400, "invalid_request"), bad


def test_the_callable_gives_the_same_list(story: dict[str, Any], callables_url: str) -> None:
    answer = requests.post(f"{callables_url}/sessions_activity", json={"data": {"limit": 3}},
                           headers={"Authorization": f"Bearer {story['reader_firebase']}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert [e["id"] for e in answer.json()["result"]["activity"]] == \
        [e["id"] for e in listed(story["reader"])["activity"]][:3]


def test_another_user_reads_none_of_it_through_the_api_or_the_rules(stack: Stack, short: str,
                                                                    story: dict[str, Any]) -> None:
    other = Account(stack, short)
    stranger = other.device(IPHONE)
    stranger_firebase = sign_in_with_custom_token(stack, other.login["firebaseCustomToken"])[0]
    mine = settled(other.uid, 1)
    assert [e["id"] for e in listed(stranger)["activity"]] == [mine[0]["id"]]
    assert stranger.get("/v1/activity", headers={"Authorization": "Bearer nope"}).status_code == 401
    uid = story["user"].uid
    some = entries(uid)[0]["id"]
    collection = doc_url(stack, f"users/{uid}/activity")
    for token, expected in ((stranger_firebase, 403), (story["phone_firebase"], 403), (None, 403),
                            (story["reader_firebase"], 200)):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert requests.get(f"{collection}/{some}", headers=headers, timeout=30).status_code == expected
        assert requests.get(collection, headers=headers, timeout=30).status_code == expected
    write = requests.patch(f"{collection}/{some}", json={"fields": {"kind": {"stringValue": "forged"}}},
                           headers={"Authorization": f"Bearer {story['reader_firebase']}"}, timeout=30)
    assert write.status_code == 403


def test_a_redelivered_event_writes_no_second_entry(stack: Stack, story: dict[str, Any],
                                                    relay: FunctionServer) -> None:
    uid = story["user"].uid
    before = entries(uid)
    login = next(e for e in before if e["kind"] == "signed_in" and e["sessionId"] == story["reader"].session_id)
    again = {"type": "session_opened", "uid": uid, "sessionId": login["sessionId"], "deviceName": "Pixel 8",
             "location": None, "alertReason": "new_device", "at": login["at"].isoformat(), "deviceId": "d",
             "deviceType": "android"}
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    topic = publisher.topic_path(stack.project, SESSION_EVENTS_TOPIC)
    publisher.publish(topic, json.dumps(again).encode(), ordering_key=uid, eventId=login["id"]).result(30)
    # then a new event of the same user: the subscription is ordered, so once its entry is there the
    # redelivered one was handled before it
    marker = f"marker-{uuid.uuid4().hex}"
    publisher.publish(topic, json.dumps(again | {"sessionId": "marker"}).encode(), ordering_key=uid,
                      eventId=marker).result(30)
    after = settled(uid, len(before) + 1)
    assert sorted(e["id"] for e in after) == sorted([e["id"] for e in before] + [marker])
    store.db().document(f"users/{uid}/activity/{marker}").delete()


def test_entries_older_than_30_days_are_not_listed(stack: Stack, short: str, story: dict[str, Any]) -> None:
    user = story["user"]
    stack.clock.advance(days=31)
    late = user.device(IPHONE)
    settled(user.uid, 12)  # the old ones are still stored: the emulator never runs TTL
    assert [e["sessionId"] for e in listed(late)["activity"]] == [late.session_id]
