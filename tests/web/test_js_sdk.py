"""The callables through the real Firebase JS SDK (npm `firebase` 12.19.0, tests/js/package.json) in
Node: `signInWithCustomToken` with the login's custom token against the Auth emulator, then
`httpsCallable(...)()` and `httpsCallable(...).stream()` through `connectFunctionsEmulator`, and App
Check through the SDK's `CustomProvider` with a token of the stack's local key.

`.stream()` sends `Accept: text/event-stream` and reads only server-sent events, whatever the HTTP
status: before the callables answered it in SSE, it waited forever (here: the client's 15 s cap).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from infra.local.stack import FunctionServer, Stack
from support import TESTS
from support.devices import IPHONE, Device
from support.serving import function_server

JS_DIR = TESTS / "js"
CLIENT = JS_DIR / "callable_client.mjs"
REGION = "us-central1"


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None or not (JS_DIR / "node_modules" / "firebase").exists():
        pytest.fail("node or tests/js/node_modules missing: infra/local/bootstrap installs the Firebase JS SDK")
    return found


callables = function_server("callables", own_port=True)
enforced_callables = function_server("callables", {"MYDEVICES_APP_CHECK": "enforce"}, own_port=True)


def run_sdk(node: str, stack: Stack, server: FunctionServer, custom_token: str, calls: list[dict[str, object]],
            app_check_token: str | None = None) -> list[dict[str, Any]]:
    """One Node process: an app signed in with `custom_token` makes `calls` in order; their outcomes."""
    address = urlsplit(server.url)
    plan = {
        "projectId": stack.project, "authEmulator": f"http://{stack.auth.host}",
        "functionsHost": address.hostname, "functionsPort": address.port,
        "customToken": custom_token, "appCheckToken": app_check_token, "timeoutMs": 15000, "calls": calls,
    }
    done = subprocess.run([node, str(CLIENT)], input=json.dumps(plan), capture_output=True, text=True,  # noqa: S603
                          cwd=JS_DIR, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    outcomes: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcomes


def logged_in(api: str, sign_up: Any, spec: dict[str, Any] = IPHONE) -> tuple[Device, str, str]:
    """A device logged in through the API: (device, custom token, the Firebase login ID token)."""
    _, id_token = sign_up()
    device = Device(api, dict(spec))
    return device, device.login(id_token).json()["firebaseCustomToken"], id_token


def test_a_plain_call_and_a_stream_give_the_same_result(
    node: str, stack: Stack, api: str, sign_up: Any, callables: FunctionServer
) -> None:
    phone, custom_token, _ = logged_in(api, sign_up)
    plain, streamed = run_sdk(node, stack, callables, custom_token, [
        {"name": "sessions_list", "data": None},
        {"name": "sessions_list", "data": None, "stream": True},
    ])
    assert plain["ok"] and streamed["ok"], (plain, streamed)
    assert streamed["chunks"] == []  # no partial results: the one answer is the final result
    assert streamed["data"] == plain["data"]
    assert [s["sessionId"] for s in plain["data"]["sessions"]] == [phone.session_id]


def test_a_stream_refused_is_an_error_the_sdk_surfaces_not_a_wait(
    node: str, stack: Stack, api: str, sign_up: Any, callables: FunctionServer
) -> None:
    phone, custom_token, _ = logged_in(api, sign_up)
    outcomes = run_sdk(node, stack, callables, custom_token, [
        {"name": "sessions_revoke", "data": {"sessionId": "not a session id!"}, "stream": True},
        {"name": "sessions_revoke", "data": {"sessionId": phone.session_id}, "stream": True},
        {"name": "sessions_logout", "data": None, "stream": True},
        {"name": "sessions_list", "data": None, "stream": True},
        {"name": "sessions_list", "data": None},
    ])
    bad_input, current, logged_out, closed_stream, closed_plain = outcomes
    assert (bad_input["code"], bad_input["details"]["code"]) == ("functions/invalid-argument", "invalid_request")
    assert (current["code"], current["details"]["code"]) == ("functions/failed-precondition", "cannot_revoke_current")
    assert logged_out == {"ok": True, "data": {"loggedOut": True}, "chunks": []}
    for outcome in (closed_stream, closed_plain):
        assert (outcome["code"], outcome["details"]["code"]) == ("functions/unauthenticated", "session_revoked")


def test_what_a_stream_request_gets_on_the_wire(stack: Stack, api: str, sign_up: Any,
                                               callables: FunctionServer) -> None:
    """One server-sent event, `data: {...}` then a blank line, status 200 even for an error, as
    Firebase's own callables answer a stream (the SDK reads the event, not the status)."""
    url = f"{callables.url}/{stack.project}/{REGION}/sessions_list"
    stream = {"Accept": "text/event-stream"}
    refused = requests.post(url, json={"data": None}, headers=stream, timeout=30)
    assert refused.status_code == 200 and refused.headers["Content-Type"].startswith("text/event-stream")
    assert refused.text.endswith("\n\n") and refused.text.startswith("data: ")
    error = json.loads(refused.text.removeprefix("data: "))["error"]
    assert (error["status"], error["details"]["code"]) == ("UNAUTHENTICATED", "unauthenticated")
    plain = requests.post(url, json={"data": None}, timeout=30)  # without the header: JSON and its status
    assert plain.status_code == 401 and plain.headers["Content-Type"] == "application/json"


def test_app_check_through_the_sdk_s_custom_provider(
    node: str, stack: Stack, api: str, sign_up: Any, enforced_callables: FunctionServer
) -> None:
    _, custom_token, _ = logged_in(api, sign_up)
    calls: list[dict[str, object]] = [{"name": "sessions_list", "data": None},
                                      {"name": "sessions_list", "data": None, "stream": True}]
    attested = run_sdk(node, stack, enforced_callables, custom_token, calls, stack.mint_app_check_token())
    assert all(outcome["ok"] for outcome in attested), attested
    for token in (None, stack.mint_app_check_token(ttl=-60)):  # no App Check, an expired token
        for outcome in run_sdk(node, stack, enforced_callables, custom_token, calls, token):
            assert (outcome["code"], outcome["details"]["code"]) == ("functions/unauthenticated", "app_check_failed")
