"""The support API end to end on the local stack: the `support_api` function, agents signed in to the
Auth emulator with the `mydevicesSupport` custom claim, the user's devices on the `api`, the session
trigger and the push function delivering to the FCM stand-in. And the operators' command line
(infra/support/mydevices-support) run as a subprocess against the same function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore

from infra.local.stack import Stack
from mydevices.account import CREATION_STAMP_SECONDS
from mydevices.firebase_app import app
from support.devices import IPAD, IPHONE, PIXEL, error_code, signed_in
from support.push import StackFcm, sent
from support.serving import function_url
from support.waiting import wait_for

CLI = Path(__file__).parents[2] / "infra/support/mydevices-support"
PASSWORD = "correct-horse-9"
MAX_AUTH_AGE = 600
REASON = "You asked us to sign out <b>this</b> phone (ticket 4821)"

support_url = function_url("support_api", {"MYDEVICES_SUPPORT_MAX_AUTH_AGE_SECONDS": str(MAX_AUTH_AGE)},
                           signature_type="http", own_port=True)


class Agent:
    """A Firebase user of the app's staff, with or without the support role."""

    def __init__(self, stack: Stack, claims: dict[str, Any] | None = {"mydevicesSupport": True}) -> None:  # noqa: B006
        self.stack = stack
        self.email = f"agent-{uuid.uuid4().hex[:10]}@example.com"
        self.uid, _ = stack.auth.sign_up(self.email, PASSWORD)
        if claims is not None:
            auth.set_custom_user_claims(self.uid, claims, app=app())
        _, self.token = stack.auth.sign_in(self.email, PASSWORD)

    def call(self, base: str, method: str, path: str, body: dict[str, Any] | None = None,
             token: str | None = "mine") -> requests.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {self.token if token == 'mine' else token}"}
        return requests.request(method, f"{base}{path}", json=body, headers=headers, timeout=30)

    def audit(self, db: firestore.Client) -> list[dict[str, Any]]:
        query = db.collection("supportAudit").where(filter=firestore.FieldFilter("agentUid", "==", self.uid))
        return sorted((snap.to_dict() or {} for snap in query.stream()), key=lambda record: record["at"])


def push_of(fcm: StackFcm, sid: str) -> list[dict[str, Any]]:
    return [m for m in sent(fcm.messages(), "force_logout") if m["data"]["sessionId"] == sid]


def session_doc(db: firestore.Client, uid: str, sid: str) -> dict[str, Any]:
    return db.document(f"users/{uid}/sessions/{sid}").get().to_dict() or {}


def test_an_agent_finds_lists_and_closes_and_every_call_is_audited(
        stack: Stack, api: str, support_url: str, fcm: StackFcm, db: firestore.Client,
        sign_up: Callable[..., tuple[str, str]]) -> None:
    email = f"customer-{uuid.uuid4().hex[:8]}@example.com"
    uid, id_token = sign_up(email)
    phone = signed_in(api, id_token, IPHONE, "tok-phone-" + uuid.uuid4().hex)
    pixel = signed_in(api, id_token, PIXEL, "tok-pixel-" + uuid.uuid4().hex)
    ipad = signed_in(api, id_token, IPAD, "tok-ipad-" + uuid.uuid4().hex)
    assert ipad.post("/v1/sessions/logout").status_code == 200  # a closed session, within the retention
    agent = Agent(stack)

    found = agent.call(support_url, "GET", f"/v1/support/users?email={email}")
    assert found.status_code == 200, found.text
    assert (found.json()["uid"], found.json()["email"], found.json()["disabled"]) == (uid, email, False)

    active = agent.call(support_url, "GET", f"/v1/support/users/{uid}/sessions").json()
    assert {s["sessionId"] for s in active["sessions"]} == {phone.session_id, pixel.session_id}
    everything = agent.call(support_url, "GET", f"/v1/support/users/{uid}/sessions?closed=true").json()
    by_id = {s["sessionId"]: s for s in everything["sessions"]}
    assert set(by_id) == {phone.session_id, pixel.session_id, ipad.session_id}
    assert (by_id[ipad.session_id]["status"], by_id[ipad.session_id]["revokedReason"]) == ("revoked", "logout")
    assert everything["closedRetentionDays"] == 30
    assert [s["status"] for s in everything["sessions"]] == ["active", "active", "revoked"]

    fcm.clear()
    closed = agent.call(support_url, "POST", f"/v1/support/users/{uid}/sessions/{pixel.session_id}/close",
                        {"reason": REASON})
    assert closed.status_code == 200, closed.text
    cut_off = pixel.get("/v1/sessions/current")
    assert (cut_off.status_code, error_code(cut_off), cut_off.json()["error"]["reason"]) == \
        (401, "session_revoked", "closed_by_support")
    refused = pixel.refresh()
    assert (refused.status_code, refused.json()["error"].get("reason")) == (401, "closed_by_support")
    assert phone.get("/v1/sessions/current").status_code == 200  # only that one
    [push] = wait_for(lambda: push_of(fcm, pixel.session_id), 15)
    assert push["data"]["reason"] == "closed_by_support"
    doc = session_doc(db, uid, pixel.session_id)
    assert (doc["revokedReason"], doc["revokedNote"]) == ("closed_by_support", REASON)  # kept as sent: plain text
    again = agent.call(support_url, "POST", f"/v1/support/users/{uid}/sessions/{pixel.session_id}/close",
                       {"reason": "twice"})
    assert (again.status_code, error_code(again)) == (409, "session_closed")

    listed = agent.call(support_url, "GET", f"/v1/support/users/{uid}/sessions?closed=true").json()
    note = {s["sessionId"]: s["revokedNote"] for s in listed["sessions"]}
    assert note[pixel.session_id] == REASON

    everyone = agent.call(support_url, "POST", f"/v1/support/users/{uid}/sessions/close-all",
                          {"reason": "Account secured after your call"})
    assert everyone.json() == {"uid": uid, "revoked": 1}
    gone = phone.get("/v1/sessions/current")
    assert (gone.status_code, gone.json()["error"].get("reason")) == (401, "closed_by_support")
    assert wait_for(lambda: push_of(fcm, phone.session_id), 15)

    audit = agent.audit(db)
    assert [(r["action"], r["targetUid"], r["targetSessionId"], r["reason"]) for r in audit] == [
        ("find_user", None, None, None),
        ("list_sessions", uid, None, None),
        ("list_sessions_closed", uid, None, None),
        ("close_session", uid, pixel.session_id, REASON),
        ("close_session", uid, pixel.session_id, "twice"),
        ("list_sessions_closed", uid, None, None),
        ("close_all_sessions", uid, None, "Account secured after your call"),
    ]
    assert {(r["agentEmail"], r["email"]) for r in audit[:1]} == {(agent.email, email)}
    assert all((r["expireAt"] - r["at"]).days == 400 for r in audit)


def test_an_agent_reads_a_copied_token_incident(stack: Stack, api: str, support_url: str, db: firestore.Client,
                                                sign_up: Callable[..., tuple[str, str]]) -> None:
    uid, id_token = sign_up()
    phone = signed_in(api, id_token)
    stolen = phone.refresh_token
    phone.adopt(phone.refresh())
    phone.adopt(phone.refresh())
    assert error_code(phone.refresh(stolen)) == "token_reused"
    agent = Agent(stack)
    answer = agent.call(support_url, "GET", f"/v1/support/users/{uid}/incidents")
    assert answer.status_code == 200, answer.text
    [incident] = answer.json()["incidents"]
    assert (incident["type"], incident["sessionId"], incident["liveSessionId"]) == \
        ("token_reused", phone.session_id, phone.session_id)
    assert [r["action"] for r in agent.audit(db)] == ["list_incidents"]


def test_bad_requests_from_an_agent_are_clear_4xx(stack: Stack, support_url: str, db: firestore.Client) -> None:
    agent = Agent(stack)
    cases = [
        ("GET", "/v1/support/users?email=nobody-" + uuid.uuid4().hex + "@example.com", None, 404, "not_found"),
        ("GET", "/v1/support/users?email=not-an-address", None, 400, "invalid_request"),
        ("POST", "/v1/support/users/u1/sessions/close-all", {"reason": ""}, 400, "invalid_request"),
        ("POST", "/v1/support/users/u1/sessions/close-all", {"reason": "x" * 501}, 400, "invalid_request"),
        ("POST", "/v1/support/users/u1/sessions/close-all", {"reason": "a\u0000b"}, 400, "invalid_request"),
        ("POST", "/v1/support/users/u1/sessions/AAAAAAAAAAAAAAAAAAAAAA/close", {"reason": "r"}, 404, "not_found"),
        ("GET", "/v1/support/users/__x__/sessions", None, 400, "invalid_request"),
        ("DELETE", "/v1/support/users/u1/sessions", None, 405, "method_not_allowed"),
    ]
    for method, path, body, status, code in cases:
        answer = agent.call(support_url, method, path, body)
        assert (answer.status_code, error_code(answer)) == (status, code), (path, answer.text)


def _claimless(stack: Stack) -> Agent:
    return Agent(stack, claims=None)


def _string_claim(stack: Stack) -> Agent:
    return Agent(stack, claims={"mydevicesSupport": "true"})


def _stale(stack: Stack) -> Agent:
    agent = Agent(stack)
    stack.clock.advance(MAX_AUTH_AGE + 5)  # its sign-in is now older than the window
    return agent


def _revoked(stack: Stack) -> Agent:
    agent = Agent(stack)
    created = auth.get_user(agent.uid, app=app()).user_metadata.creation_timestamp / 1000
    time.sleep(max(1.05, created + CREATION_STAMP_SECONDS + 1.05 - time.time()))  # tokensValidAfterTime: whole s
    auth.revoke_refresh_tokens(agent.uid, app=app())
    return agent


def _disabled(stack: Stack) -> Agent:
    agent = Agent(stack)
    auth.update_user(agent.uid, disabled=True, app=app())
    return agent


def _role_withdrawn(stack: Stack) -> Agent:
    agent = Agent(stack)  # its token still carries the claim: the record is what counts
    auth.set_custom_user_claims(agent.uid, None, app=app())
    return agent


@pytest.mark.parametrize("who, token, status, code", [
    (_claimless, "mine", 403, "forbidden"),
    (_string_claim, "mine", 403, "forbidden"),
    (_role_withdrawn, "mine", 403, "forbidden"),
    (_stale, "mine", 403, "recent_sign_in_required"),
    (_revoked, "mine", 401, "session_revoked"),
    (_disabled, "mine", 401, "unauthenticated"),
    (Agent, None, 401, "unauthenticated"),
    (Agent, "garbage", 401, "invalid_token"),
])
def test_anyone_else_is_refused_and_changes_nothing(
        stack: Stack, api: str, support_url: str, db: firestore.Client, sign_up: Callable[..., tuple[str, str]],
        who: Callable[[Stack], Agent], token: str | None, status: int, code: str) -> None:
    email = f"customer-{uuid.uuid4().hex[:8]}@example.com"
    uid, id_token = sign_up(email)
    phone = signed_in(api, id_token)
    caller = who(stack)
    calls = [("GET", f"/v1/support/users?email={email}", None),
             ("GET", f"/v1/support/users/{uid}/sessions?closed=true", None),
             ("POST", f"/v1/support/users/{uid}/sessions/{phone.session_id}/close", {"reason": "r"}),
             ("POST", f"/v1/support/users/{uid}/sessions/close-all", {"reason": "r"}),
             ("GET", f"/v1/support/users/{uid}/incidents", None)]
    for method, path, body in calls:
        answer = caller.call(support_url, method, path, body, token=token)
        assert (answer.status_code, error_code(answer)) == (status, code), answer.text
        assert answer.headers["Content-Type"] == "application/json"
        if code == "recent_sign_in_required":
            assert answer.json()["error"]["maxAge"] == MAX_AUTH_AGE
    assert phone.get("/v1/sessions/current").status_code == 200
    assert session_doc(db, uid, phone.session_id)["status"] == "active"
    assert caller.audit(db) == []


def run_cli(stack: Stack, support_url: str, *args: str, agent: Agent | None = None,
            token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MYDEVICES_SUPPORT_")}
    env["MYDEVICES_SUPPORT_URL"] = support_url
    if agent is not None:
        env["MYDEVICES_SUPPORT_PASSWORD"] = PASSWORD
        args = ("--agent-email", agent.email, "--auth-emulator", stack.auth.host, *args)
    if token is not None:
        env["MYDEVICES_SUPPORT_TOKEN"] = token
    return subprocess.run([sys.executable, str(CLI), *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_command_line_does_the_same(stack: Stack, api: str, support_url: str, fcm: StackFcm,
                                        db: firestore.Client, sign_up: Callable[..., tuple[str, str]]) -> None:
    email = f"customer-{uuid.uuid4().hex[:8]}@example.com"
    uid, id_token = sign_up(email)
    phone = signed_in(api, id_token, IPHONE, "tok-phone-" + uuid.uuid4().hex)
    pixel = signed_in(api, id_token, PIXEL, "tok-pixel-" + uuid.uuid4().hex)
    agent = Agent(stack)

    found = run_cli(stack, support_url, "--json", "users", "--email", email, agent=agent)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["uid"] == uid
    table = run_cli(stack, support_url, "sessions", uid, token=agent.token)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["sessionId", "status", "deviceName"]
    assert sorted(row.split()[0] for row in rows) == sorted([phone.session_id, pixel.session_id])

    closed = run_cli(stack, support_url, "close", uid, pixel.session_id, "--reason", "Lost phone", agent=agent)
    assert (closed.returncode, closed.stdout.strip()) == (0, f"closed session {pixel.session_id} of {uid}")
    assert pixel.get("/v1/sessions/current").json()["error"]["reason"] == "closed_by_support"
    assert wait_for(lambda: push_of(fcm, pixel.session_id), 15)
    listed = json.loads(run_cli(stack, support_url, "--json", "sessions", uid, "--closed", agent=agent).stdout)
    assert {s["sessionId"]: s["revokedNote"] for s in listed["sessions"]}[pixel.session_id] == "Lost phone"
    everyone = run_cli(stack, support_url, "close-all", uid, "--reason", "Secured", agent=agent)
    assert (everyone.returncode, everyone.stdout.strip()) == (0, f"closed 1 session(s) of {uid}")
    incidents = run_cli(stack, support_url, "incidents", uid, agent=agent)
    assert (incidents.returncode, incidents.stdout.strip()) == (0, "no copied-token incidents")
    assert [r["action"] for r in agent.audit(db)] == [
        "find_user", "list_sessions", "close_session", "list_sessions_closed", "close_all_sessions", "list_incidents"]

    again = run_cli(stack, support_url, "close", uid, pixel.session_id, "--reason", "x", agent=agent)
    assert (again.returncode, again.stderr.split(":")[:2]) == (1, ["error", " session_closed"])
    outsider = _claimless(stack)
    refused = run_cli(stack, support_url, "sessions", uid, agent=outsider)
    assert (refused.returncode, refused.stderr.split(":")[:2]) == (1, ["error", " forbidden"])
    garbage = run_cli(stack, support_url, "sessions", uid, token="garbage")
    assert (garbage.returncode, garbage.stderr.split(":")[:2]) == (1, ["error", " invalid_token"])
    assert outsider.audit(db) == []
