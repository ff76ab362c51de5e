"""The local stack's plumbing: emulators answer, rules are loaded, events reach functions, stop is clean."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore, pubsub_v1

from infra.local.stack import (
    SESSION_EVENTS_DEAD_TOPIC,
    SESSION_EVENTS_PUSH_SUBSCRIPTION,
    SESSION_EVENTS_TOPIC,
    Stack,
    group_alive,
    port_in_use,
)
from support.devices import doc_url, sign_in_with_custom_token
from support.waiting import wait_for

RECORDER = """
import json, os
import functions_framework

@functions_framework.cloud_event
def record(event):
    data = event.data
    with open(os.environ["RECORD_FILE"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps({
            "type": event["type"],
            "source": event["source"],
            "subject": event.get("subject"),
            "data": data if isinstance(data, dict) else None,
        }) + "\\n")
"""


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture()
def recorder(stack: Stack, tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Start a CloudEvent function that appends what it receives to a file, on the given port."""
    source = tmp_path / "main.py"
    source.write_text(RECORDER)
    started = []

    def start(port: int) -> Path:
        if port_in_use(port):
            pytest.skip(f"port {port} is held by another function of this run")
        record_file = tmp_path / f"events-{port}.jsonl"
        started.append(
            stack.start_function("record", "cloudevent", {"RECORD_FILE": str(record_file)}, port=port, source=source)
        )
        return record_file

    yield start
    for server in started:
        server.stop()


def test_the_emulators_and_the_fcm_standin_answer(stack: Stack) -> None:
    assert requests.get(f"http://{stack.firestore.host}/", timeout=5).text.strip() == "Ok"
    assert requests.get(f"http://{stack.pubsub.host}/", timeout=5).text.strip() == "Ok"
    assert requests.get(f"http://{stack.auth.host}/", timeout=5).json()["authEmulator"]["ready"] is True
    assert stack.project.startswith("demo-")
    assert stack.env["MYDEVICES_FCM_URL"] == stack.fcm.url + "/v1/projects/{0}/messages:send"
    assert Path(stack.env["MYDEVICES_KEYS_FILE"]).is_file()
    if stack.fcm is not None:
        assert isinstance(stack.fcm.messages(), list)


def test_a_client_write_is_in_the_emulator_and_rules_let_only_the_owner_read(stack: Stack) -> None:
    from firebase_admin import auth

    from mydevices.firebase_app import app

    uid, plain_token = stack.auth.sign_up()
    other_uid, _ = stack.auth.sign_up()
    db = firestore.Client(project=stack.project)  # FIRESTORE_EMULATOR_HOST comes from the fixture
    db.document(f"users/{uid}/sessions/s1").set({"deviceName": "iPhone 15 Pro", "status": "active",
                                                 "deviceId": "d1"})
    db.document(f"users/{other_uid}/sessions/s2").set({"deviceName": "Pixel 8"})
    # The owner's device signed in to Firebase with its session's custom token (what login returns).
    custom = auth.create_custom_token(uid, {"sid": "s1", "did": "d1"}, app=app()).decode()
    id_token, _ = sign_in_with_custom_token(stack, custom)

    as_admin = requests.get(doc_url(stack, f"users/{uid}/sessions/s1"), headers={"Authorization": "Bearer owner"})
    assert as_admin.status_code == 200
    assert as_admin.json()["fields"]["deviceName"] == {"stringValue": "iPhone 15 Pro"}

    # Rules apply to end-user tokens only; the emulator accepts the Auth emulator's unsigned ID tokens.
    assert requests.get(doc_url(stack, f"users/{uid}/sessions/s1"), timeout=5).status_code == 403
    bearer = {"Authorization": f"Bearer {id_token}"}
    assert requests.get(doc_url(stack, f"users/{uid}/sessions/s1"), headers=bearer, timeout=5).status_code == 200
    plain = {"Authorization": f"Bearer {plain_token}"}  # no session behind it: reads nothing
    assert requests.get(doc_url(stack, f"users/{uid}/sessions/s1"), headers=plain, timeout=5).status_code == 403
    assert requests.get(doc_url(stack, f"users/{other_uid}/sessions/s2"), headers=bearer, timeout=5).status_code == 403
    assert requests.get(doc_url(stack, "sessionSecrets/s1"), headers=bearer, timeout=5).status_code == 403
    patch = requests.patch(doc_url(stack, f"users/{uid}/sessions/s1"), headers=bearer, json={"fields": {}}, timeout=5)
    assert patch.status_code == 403

    stack.firestore.reset()
    assert not db.document(f"users/{uid}/sessions/s1").get().exists


def test_session_events_topic_and_its_ordered_push_subscription_exist(stack: Stack) -> None:
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        topic = publisher.get_topic(topic=publisher.topic_path(stack.project, SESSION_EVENTS_TOPIC))
        assert topic.name.endswith("/topics/session-events")
        sub = subscriber.get_subscription(
            subscription=subscriber.subscription_path(stack.project, SESSION_EVENTS_PUSH_SUBSCRIPTION)
        )
        assert sub.topic == topic.name
        assert sub.push_config.push_endpoint == stack.push_endpoint
        assert sub.push_config.push_endpoint.startswith(f"http://127.0.0.1:{stack.ports.push}/")
        assert sub.enable_message_ordering
        assert sub.dead_letter_policy.dead_letter_topic.endswith(f"/topics/{SESSION_EVENTS_DEAD_TOPIC}")
        assert sub.dead_letter_policy.max_delivery_attempts == 5
    finally:
        subscriber.close()


def test_a_published_event_is_pushed_to_the_push_port_as_a_cloudevent(
    stack: Stack, recorder: Callable[[int], Path]
) -> None:
    record_file = recorder(stack.ports.push)
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    topic = publisher.topic_path(stack.project, SESSION_EVENTS_TOPIC)
    publisher.publish(topic, b'{"kind": "probe"}', ordering_key="user-1", eventId="e-1").result(timeout=10)
    records = wait_for(lambda: read_records(record_file), 15.0, interval=0.1)
    assert records, "nothing was pushed to the push port"
    assert records[0]["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    # The topic is in the push URL's path so functions-framework puts it in `source`, as in production.
    assert records[0]["source"] == f"//pubsub.googleapis.com/projects/{stack.project}/topics/{SESSION_EVENTS_TOPIC}"
    message = records[0]["data"]["message"]
    assert message["attributes"] == {"eventId": "e-1"}
    # functions-framework's push-to-CloudEvent conversion keeps data, attributes, messageId and
    # publishTime only (no orderingKey, no deliveryAttempt): the function must not rely on them.
    assert base64.b64decode(message["data"]) == b'{"kind": "probe"}'


def test_firestore_writes_reach_the_trigger_port_also_after_a_restart_on_the_same_port(
    stack: Stack, recorder: Callable[[int], Path]
) -> None:
    record_file = recorder(stack.ports.trigger)
    db = firestore.Client(project=stack.project)
    db.document("users/u1/sessions/s1").set({"status": "active"})
    db.document("users/u1/devices/d1").set({"sessionId": "s1"})  # not a session: no event
    records = wait_for(lambda: read_records(record_file), 15.0, interval=0.1)
    assert [r["type"] for r in records] == ["google.cloud.firestore.document.v1.written"]
    assert "users/u1/sessions/s1" in (records[0]["subject"] or "")

    port = stack.ports.firestore
    stack.firestore.restart(kill=True)
    assert stack.firestore.port == port
    assert requests.get(doc_url(stack, "users/u1/sessions/s1"), timeout=5).status_code == 403  # rules reloaded
    db.document("users/u1/sessions/s2").set({"status": "active"})
    records = wait_for(lambda: read_records(record_file)[1:], 15.0, interval=0.1)
    assert "users/u1/sessions/s2" in (records[0]["subject"] or "")
    stack.firestore.reset()


def test_stopping_a_function_leaves_nothing_of_its_process_group(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text("import functions_framework\n\n@functions_framework.http\ndef hello(request):\n    return 'hi'\n")
    server = stack.start_function("hello", "http", source=source)
    assert requests.get(server.url, timeout=5).text == "hi"
    pgid = server.pid
    assert pgid is not None
    assert server.stop()
    assert not group_alive(pgid)
    assert not port_in_use(server.port)


def test_a_function_started_in_a_with_block_is_stopped_when_the_block_ends(stack: Stack, tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text("import functions_framework\n\n@functions_framework.http\ndef hello(request):\n    return 'hi'\n")
    with stack.start_function("hello", "http", source=source) as server:
        pgid = server.pid
        assert requests.get(server.url, timeout=5).text == "hi"
    assert pgid is not None and not group_alive(pgid) and not server.running
