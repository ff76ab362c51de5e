"""The FCM stand-in, driven by firebase-admin's real send_each: its answers must map to the
library's real exception classes, or the push code's error paths would be tested against fiction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import firebase_admin
import pytest
import requests
from firebase_admin import exceptions, messaging

from infra.local.fcm_standin import FcmStandin
from mydevices import firebase_app
from mydevices.push import fcm
from support.fcm_retries import without_backoff

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROJECT = "demo-standin"


@pytest.fixture()
def standin(push_standin: FcmStandin) -> FcmStandin:
    """The in-process stand-in the push suites use (support.push)."""
    return push_standin


@pytest.fixture(scope="module")
def app(push_standin: FcmStandin) -> Iterator[firebase_admin.App]:
    """An app of its own, whose messaging service is made (on its first send) while FCM's endpoint
    is the stand-in."""
    credentials = firebase_app.anonymous_credentials()
    instance = firebase_admin.initialize_app(credentials, {"projectId": PROJECT}, name="standin-test")
    saved = firebase_app.use_fcm_endpoint(push_standin.url)
    try:
        yield instance
    finally:
        firebase_app.use_fcm_endpoint(saved)
        firebase_admin.delete_app(instance)


@pytest.fixture(autouse=True)
def clean(standin: FcmStandin) -> Iterator[None]:
    standin.clear()
    with without_backoff():
        yield


def send(app: firebase_admin.App, *tokens: str, **parts: Any) -> messaging.BatchResponse:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        messages = [messaging.Message(token=token, data={"action": "test"}, **parts) for token in tokens]
    return messaging.send_each(messages, app=app)


def test_a_send_is_accepted_recorded_and_named_like_fcm(app: firebase_admin.App, standin: FcmStandin) -> None:
    before = time.time()
    apns = messaging.APNSConfig(headers={"apns-push-type": "background", "apns-priority": "5"},
                                payload=messaging.APNSPayload(aps=messaging.Aps(content_available=True)))
    batch = send(app, "token-a", android=messaging.AndroidConfig(priority="high"), apns=apns)
    assert batch.success_count == 1
    [record] = standin.messages
    assert batch.responses[0].message_id == f"projects/{PROJECT}/messages/{record['n']}"
    assert before <= record["receivedAt"] <= time.time()
    assert record["message"]["token"] == "token-a"
    assert record["message"]["android"] == {"priority": "high"}
    assert record["message"]["apns"] == {"headers": {"apns-push-type": "background", "apns-priority": "5"},
                                         "payload": {"aps": {"content-available": 1}}}


@pytest.mark.parametrize("status, code, exc_type, dead", [
    (404, "UNREGISTERED", messaging.UnregisteredError, True),
    (403, "SENDER_ID_MISMATCH", messaging.SenderIdMismatchError, True),
    (400, "INVALID_ARGUMENT", exceptions.InvalidArgumentError, True),
    (400, "PAYLOAD_INVALID", exceptions.InvalidArgumentError, False),
    (429, "QUOTA_EXCEEDED", messaging.QuotaExceededError, False),
])
def test_faults_come_out_as_firebase_admins_own_exceptions(
    app: firebase_admin.App, standin: FcmStandin, status: int, code: str, exc_type: type, dead: bool
) -> None:
    standin.fault("bad-token", status, code)
    batch = send(app, "good-token", "bad-token")
    good, bad = batch.responses
    assert good.success
    error = bad.exception
    assert type(error) is exc_type
    assert isinstance(error, exceptions.FirebaseError)
    assert fcm.is_dead_token(error) is dead
    assert fcm.is_transient(error) is (code == "QUOTA_EXCEEDED")
    assert [m["message"]["token"] for m in standin.messages] == ["good-token"]
    assert [(f["message"]["token"], f["status"], f["errorCode"]) for f in standin.failures] == [
        ("bad-token", status, code)]


def test_payload_error_names_a_message_field_and_a_token_error_does_not(app: firebase_admin.App,
                                                                         standin: FcmStandin) -> None:
    standin.fault("t1", 400, "INVALID_ARGUMENT")
    standin.fault("t2", 400, "PAYLOAD_INVALID")
    token_error, payload_error = (r.exception for r in send(app, "t1", "t2").responses)
    token_details = token_error.http_response.json()["error"]["details"]
    payload_details = payload_error.http_response.json()["error"]["details"]
    assert token_details == [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                              "errorCode": "INVALID_ARGUMENT"}]
    assert payload_details[0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert payload_details[0]["fieldViolations"][0]["field"].startswith("message.data")


def test_a_401_aborts_the_whole_call_under_anonymous_credentials(app: firebase_admin.App,
                                                                standin: FcmStandin) -> None:
    """FCM answers THIRD_PARTY_AUTH_ERROR with 401, and google-auth reacts to any 401 by refreshing
    the credentials, which anonymous ones cannot: locally the whole send_each fails (fcm.send then
    counts its messages as transient). In production the refresh works and the message fails alone."""
    standin.fault("apns-broken", 401, "THIRD_PARTY_AUTH_ERROR")
    with pytest.raises(exceptions.UnknownError):
        send(app, "apns-broken")


def test_a_503_is_retried_by_the_library_and_then_succeeds(app: firebase_admin.App, standin: FcmStandin) -> None:
    standin.fault("flaky", 503, "UNAVAILABLE", times=2)
    batch = send(app, "flaky")
    assert batch.success_count == 1
    assert len(standin.failures) == 2 and len(standin.messages) == 1


def test_a_503_that_outlasts_the_library_retries_is_unavailable_and_transient(app: firebase_admin.App,
                                                                              standin: FcmStandin) -> None:
    standin.fault("down", 503, "UNAVAILABLE", times=10)
    started = time.monotonic()
    [response] = send(app, "down").responses
    assert type(response.exception) is exceptions.UnavailableError
    assert fcm.is_transient(response.exception) and not fcm.is_dead_token(response.exception)
    assert len(standin.failures) == 5  # the first attempt and the library's 4 retries
    assert time.monotonic() - started < 3


def test_a_wildcard_fault_hits_any_token_and_times_counts_down(app: firebase_admin.App,
                                                              standin: FcmStandin) -> None:
    standin.fault("*", 404, "UNREGISTERED", times=1)
    first = send(app, "x").responses[0]
    second = send(app, "x").responses[0]
    assert type(first.exception) is messaging.UnregisteredError and second.success


def test_send_each_runs_in_parallel_against_the_threaded_server(app: firebase_admin.App,
                                                               standin: FcmStandin) -> None:
    tokens = [f"tok-{i}" for i in range(120)]
    batch = send(app, *tokens)
    assert batch.success_count == 120
    assert sorted(m["message"]["token"] for m in standin.messages) == sorted(tokens)
    assert len({m["n"] for m in standin.messages}) == 120


def test_control_api_over_http(standin: FcmStandin, app: firebase_admin.App) -> None:
    base = standin.base
    fault: dict[str, Any] = {"token": "http-tok", "status": 404, "errorCode": "UNREGISTERED", "times": 1}
    assert requests.post(f"{base}/_standin/faults", json=fault, timeout=5).status_code == 200
    assert requests.get(f"{base}/_standin/faults", timeout=5).json()["faults"][0]["token"] == "http-tok"
    send(app, "http-tok", "other")
    assert [m["message"]["token"] for m in requests.get(f"{base}/_standin/messages", timeout=5).json()["messages"]] \
        == ["other"]
    assert len(requests.get(f"{base}/_standin/failures", timeout=5).json()["failures"]) == 1
    assert requests.delete(f"{base}/_standin/messages", timeout=5).status_code == 200
    assert requests.get(f"{base}/_standin/messages", timeout=5).json() == {"messages": []}
    assert requests.post(f"{base}/_standin/faults", data="{not json", timeout=5).status_code == 400


def test_validate_only_is_recorded_as_a_dry_run(app: firebase_admin.App, standin: FcmStandin) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        message = messaging.Message(token="dry", data={"action": "test"})
    messaging.send_each([message], dry_run=True, app=app)
    assert standin.messages[0]["validateOnly"] is True


def test_cli_serves_and_prints_each_message_readably() -> None:
    script = os.path.join(ROOT, "infra", "local", "fcm_standin.py")
    proc = subprocess.Popen([sys.executable, script, "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        base = banner.split("listening on ")[1].split()[0]
        body = {"message": {"token": "abcdefghijklmnop-device", "data": {"action": "force_logout", "reason": "x"}}}
        answer = requests.post(f"{base}/v1/projects/demo-cli/messages:send", data=json.dumps(body), timeout=5)
        assert answer.json() == {"name": "projects/demo-cli/messages/1"}
        line = proc.stdout.readline()
        assert "…p-device" in line and "action=force_logout" in line
    finally:
        proc.terminate()
        proc.wait(timeout=5)
