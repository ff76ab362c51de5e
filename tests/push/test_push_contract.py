"""Every message the product sends holds to the push contract (tests/support/push_contract.py): our schemas
per platform (docs/push/), FCM's own HTTP v1 Message schema, and Apple's rules.

Two sources of messages: the real pipeline (api -> Firestore trigger -> Pub/Sub -> send_session_push
-> the stack's FCM stand-in process), where every message the stand-in received is checked, not a
chosen one; and fanout.handle in-process, for the variants the pipeline cannot easily make (every
force_logout reason, hostile and missing device names, unknown places)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from infra.local.fcm_standin import FcmStandin
from infra.local.stack import Stack
from mydevices import store
from mydevices.flows import alert_answer
from mydevices.push import fanout
from mydevices.tokens import action
from support.devices import IPHONE, LONDON_IP, PIXEL, Device, build_city_db
from support.push import EventFunctions, put_session
from support.push_contract import (
    contract_errors,
    kind_of,
)
from support.serving import serving
from support.waiting import wait_for


def assert_holds(messages: list[dict[str, Any]]) -> None:
    assert messages, "no messages to check"
    problems = {i: contract_errors(m) for i, m in enumerate(messages)}
    assert {i: p for i, p in problems.items() if p} == {}, json.dumps(messages, indent=1, ensure_ascii=False)


# --- the pipeline: what the FCM stand-in receives ------------------------------------------------


@pytest.fixture(scope="module")
def geo_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An api that believes one proxy and knows London: the alert then names a real place."""
    db = build_city_db(str(tmp_path_factory.mktemp("contract-geo") / "city.mmdb"))
    with serving(stack, "api", {"MYDEVICES_GEOIP_DB": db, "MYDEVICES_TRUSTED_PROXIES": "1"}, own_port=True) as server:
        yield server.url


def test_every_message_the_pipeline_sends_holds_to_the_contract_on_both_platforms(
    geo_api: str, event_functions: EventFunctions, sign_up: Any
) -> None:
    fcm = event_functions.fcm
    fcm.clear()
    _, id_token = sign_up()
    iphone_token, pixel_token = "tok-iphone-" + uuid.uuid4().hex, "tok-pixel-" + uuid.uuid4().hex
    iphone = Device(geo_api, dict(IPHONE))
    iphone.login(id_token, push_token=iphone_token)
    pixel = Device(geo_api, dict(PIXEL))
    pixel.login(id_token, push_token=pixel_token, headers={"X-Forwarded-For": LONDON_IP})  # alerts the iPhone
    intruder = Device(geo_api, {"name": "iPhone 15\u201d from Paris\u202e", "platform": "ios"})
    intruder.login(id_token, push_token="tok-intruder-" + uuid.uuid4().hex)  # alerts both, unknown place
    assert wait_for(lambda: len(fcm.messages()) >= 3, 20)
    assert iphone.delete(f"/v1/sessions/{intruder.session_id}").status_code == 200  # a force_logout
    assert wait_for(lambda: len(fcm.messages()) >= 4, 20)
    messages = [record["message"] for record in fcm.messages()]
    assert sorted(kind_of(m) for m in messages) == ["force_logout"] + ["new_login_alert"] * 3
    assert_holds(messages)

    # What each platform is told, in each form: the cleaned name and the server's place only.
    first = next(m for m in messages if m["data"].get("newSessionId") == pixel.session_id)
    aps_alert = first["apns"]["payload"]["aps"]["alert"]
    assert aps_alert["loc-args"] == ["Pixel 8", "London, United Kingdom"]
    assert aps_alert["body"] == first["data"]["body"] == (
        "Signed in on “Pixel 8” from London, United Kingdom. Was that you?")
    assert json.loads(first["data"]["body_loc_args"]) == ["Pixel 8", "London, United Kingdom"]
    assert first["token"] == iphone_token and first["data"]["sessionId"] == iphone.session_id
    forged = [m for m in messages if m["data"].get("newSessionId") == intruder.session_id]
    assert {m["data"]["body"] for m in forged} == {
        "Signed in on “iPhone 15 from Paris” from an unknown location. Was that you?"}
    assert {tuple(m["apns"]["payload"]["aps"]["alert"]["loc-args"]) for m in forged} == {("iPhone 15 from Paris",)}
    assert {m["apns"]["payload"]["aps"]["alert"]["loc-key"] for m in forged} == {
        "mydevices_new_login_body_unknown_place"}
    # The action token in the data answers for that session, on either platform.
    answer = iphone.post("/v1/alerts/respond", json={"actionToken": first["data"]["actionToken"], "answer": "yes"})
    assert answer.status_code == 200, answer.text


# --- in-process: every variant -----------------------------------------------------------------


def _delivery(event: dict[str, Any]) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(json.dumps(event).encode()).decode(),
                        "attributes": {"eventId": "evt-" + uuid.uuid4().hex}, "messageId": uuid.uuid4().hex}}


@pytest.mark.parametrize("reason", ["user_revoked", "revoke_others", "rejected_by_user", "token_reused",
                                    "account_disabled", "account_deleted", "credentials_revoked"])
def test_force_logout_for_every_reason_holds(fresh: Stack, push_standin: FcmStandin, reason: str) -> None:
    put_session(store.db(), "alice", "s1", token="tok-s1", status="revoked")
    fanout.handle(_delivery({"type": "session_revoked", "uid": "alice", "sessionId": "s1", "reason": reason}))
    assert_holds([record["message"] for record in push_standin.messages])


NAMES = [
    ("Pixel 8", "London, United Kingdom", "mydevices_new_login_body", ["Pixel 8", "London, United Kingdom"]),
    (None, "Paris, France", "mydevices_new_login_body_unnamed", ["Paris, France"]),
    ("\u202e\u200b\"\u201c\u00ab", None, "mydevices_new_login_body_unnamed_unknown_place", []),
    ("x" * 300, None, "mydevices_new_login_body_unknown_place", ["x" * 39 + "\u2026"]),
    ("%2$s \u0627\u0644\u0647\u0627\u062a\u0641 \u2067evil\u2069", "Zürich, Switzerland",
     "mydevices_new_login_body", ["%2$s \u0627\u0644\u0647\u0627\u062a\u0641 evil", "Zürich, Switzerland"]),
]


@pytest.mark.parametrize(("name", "place", "loc_key", "loc_args"), NAMES)
def test_new_login_alert_for_every_shape_of_name_and_place_holds(
    fresh: Stack, push_standin: FcmStandin, name: str | None, place: str | None, loc_key: str, loc_args: list[str]
) -> None:
    db = store.db()
    put_session(db, "alice", "phone", token="tok-phone")
    put_session(db, "alice", "new", device=name or "", location=place)
    fanout.handle(_delivery({"type": "new_login", "uid": "alice", "sessionId": "new", "deviceName": name,
                           "location": place}))
    [message] = [record["message"] for record in push_standin.messages]
    assert_holds([message])
    alert = message["apns"]["payload"]["aps"]["alert"]
    assert (alert["loc-key"], alert.get("loc-args", [])) == (loc_key, loc_args)
    assert (message["data"]["body_loc_key"], json.loads(message["data"]["body_loc_args"])) == (loc_key, loc_args)
    assert alert["body"] == message["data"]["body"] == fanout.alert_text(name, place)
    # The "%2$s" in a name stays text: the place is never pulled into the quoted name.
    if name and name.startswith("%2$s"):
        assert alert["body"].startswith("Signed in on “%2$s ")


def test_the_action_token_is_one_per_pair_of_sessions_in_the_push_and_the_pending_list(
    fresh: Stack, push_standin: FcmStandin
) -> None:
    """The push, a redelivered push and the pending list hand the phone the same token, and one
    answer uses it up everywhere."""
    db = store.db()
    put_session(db, "alice", "phone", token="tok-phone")
    put_session(db, "alice", "new", device="Galaxy S24")
    db.document("users/alice/sessions/new").update({"alertReason": "new_device"})
    event = {"type": "new_login", "uid": "alice", "sessionId": "new", "deviceName": "Galaxy S24", "location": None}
    fanout.handle(_delivery(event))
    fanout.handle(_delivery(event))  # another event id: sent again
    tokens = {record["message"]["data"]["actionToken"] for record in push_standin.messages}
    assert len(push_standin.messages) == 2 and len(tokens) == 1
    created = db.document("users/alice/sessions/new").get().get("createdAt")
    assert isinstance(created, datetime) and created.tzinfo is not None
    assert action.pair_token("alice", "phone", "new", created)[0] in tokens
    assert alert_answer.respond(tokens.pop(), "yes")["status"] == "active"
