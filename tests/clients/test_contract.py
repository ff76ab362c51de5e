"""The client contract (clients/contract/): its vectors held to what the real stack does, and the
JavaScript client run over them.

- push.json: the messages are the ones the FCM stand-in really receives from the whole pipeline
  (api -> Firestore trigger -> Pub/Sub -> send_session_push -> FCM), with the values that change from
  run to run (session ids, action tokens, times) replaced by the vectors' own. A change to the pushes
  fails here; `MYDEVICES_WRITE_VECTORS=1` rewrites the captured vectors from the stack (then review the diff).
- api.json: every (status, code) of the error table (docs/api.md) has a vector, and the success answers have the
  shape the live api gives.
- The JS client (clients/js) runs over api.json and push.json in Node (tests/clients/contract_js.mjs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.local.stack import IPAD, IPHONE, PIXEL, REPO_ROOT
from support.client_contract import CONTRACT, expectation, load, write
from support.devices import Device, signed_in
from support.push import StackFcm, sent
from support.push_contract import ours
from support.waiting import wait_for

NODE = shutil.which("node") or "node"
WRITE = os.environ.get("MYDEVICES_WRITE_VECTORS") == "1"
# The fixed values the vectors carry in place of what changes from run to run.
FIXED = {"phone": "PhoneSessionAAAAAAAAAA", "pixel": "PixelSessionAAAAAAAAAA", "unnamed": "UnnamedSessionAAAAAAAA",
         "tablet": "TabletSessionAAAAAAAAA"}
EXPIRES = "1767225600"  # 2026-01-01T00:00:00Z
TTL = "86400s"


def _await(fcm: StackFcm, token: str, action: str) -> dict[str, Any]:
    wait_for(lambda: sent([m for m in fcm.messages() if m["message"]["token"] == token], action), 20)
    [message] = [m for m in sent(fcm.messages(), action) if m["token"] == token]
    return message


def _normalized(message: dict[str, Any], sessions: dict[str, str], token_name: str) -> dict[str, Any]:
    text = json.dumps(message, ensure_ascii=False)
    for name, sid in sessions.items():
        text = text.replace(sid, FIXED[name])
    data = message["data"]
    if "actionToken" in data:
        text = text.replace(data["actionToken"], f"ACTION-TOKEN-{token_name}")
        text = text.replace(data["expiresAt"], EXPIRES)
        text = re.sub(r'"ttl": "\d+s"', f'"ttl": "{TTL}"', text)
    result: dict[str, Any] = json.loads(text)
    return result


def _capture(api: str, fcm: StackFcm, id_token: str) -> dict[str, dict[str, Any]]:
    """Drive the stack through every push a client handles; the messages as the stand-in got them."""
    phone = signed_in(api, id_token, IPHONE, "tok-phone")
    pixel = signed_in(api, id_token, PIXEL, "tok-pixel")
    named = _await(fcm, "tok-phone", "new_login_alert")
    tablet = signed_in(api, id_token, IPAD, "tok-tablet")  # before any closure: after one, a login needs a new sign-in
    wait_for(lambda: len(sent(fcm.messages(), "new_login_alert")) == 3, 20)
    fcm.clear()
    unnamed = signed_in(api, id_token, {**PIXEL, "name": "\u201c\u201d"}, "tok-unnamed")
    unnamed_alert = _await(fcm, "tok-phone", "new_login_alert")
    assert phone.post("/v1/alerts/respond", json={"actionToken": unnamed_alert["data"]["actionToken"],
                                                  "answer": "no"}).status_code == 200
    rejected = _await(fcm, "tok-unnamed", "force_logout")
    assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200
    revoked = _await(fcm, "tok-pixel", "force_logout")
    assert phone.post("/v1/sessions/revoke-others").json() == {"revoked": 1}
    others = _await(fcm, "tok-tablet", "force_logout")
    sessions = {"phone": phone.session_id, "pixel": pixel.session_id, "unnamed": unnamed.session_id,
                "tablet": tablet.session_id}
    return {
        "alert_named_unknown_place": _normalized(named, sessions, "pixel"),
        "alert_unnamed_unknown_place": _normalized(unnamed_alert, sessions, "unnamed"),
        "force_logout_rejected_by_user": _normalized(rejected, sessions, ""),
        "force_logout_user_revoked": _normalized(revoked, sessions, ""),
        "force_logout_revoke_others": _normalized(others, sessions, ""),
    }


def _vector(name: str, message: dict[str, Any], current: str | None, note: str, captured: bool) -> dict[str, Any]:
    return {"name": name, "captured": captured, "note": note, "currentSessionId": current, "message": message,
            "expect": expectation(message["data"], current)}


def test_push_vectors_are_what_the_fcm_standin_receives(api: str, fcm: StackFcm, sign_up: Any) -> None:
    _, id_token = sign_up()
    captured = _capture(api, fcm, id_token)
    vectors = load("push.json")
    if WRITE:
        for vector in vectors["vectors"]:
            if vector["captured"]:
                vector["message"] = captured[vector["capture"]]
                vector["expect"] = expectation(vector["message"]["data"], vector["currentSessionId"])
        write("push.json", vectors)
    by_capture = {v["capture"]: v for v in vectors["vectors"] if v["captured"]}
    assert set(by_capture) == set(captured)
    for name, message in captured.items():
        assert by_capture[name]["message"] == message, name


def test_push_vectors_hold_to_the_push_schemas_and_their_expectations() -> None:
    """Every vector, captured or made (a place the test stack cannot look up, hostile data), is a
    message docs/push/*.fcm.json allows or is marked as not one; its expectations follow the rules."""
    vectors = load("push.json")["vectors"]
    assert len(vectors) >= 10
    for vector in vectors:
        data = vector["message"]["data"]
        if vector.get("valid", True):
            errors = [str(e) for e in ours(data["action"], "fcm").iter_errors(vector["message"])]
            assert errors == [], (vector["name"], errors)
        assert vector["expect"] == expectation(data, vector["currentSessionId"]), vector["name"]


def _error_table() -> set[tuple[int, str]]:
    api = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")  # the error table of the HTTP API page
    table = api.split("Errors are always", 1)[1].split("\n\n", 2)[1]
    pairs = set()
    for row in table.splitlines():
        status = re.match(r"\| (\d{3}) \| (.*) \|$", row)
        if status:
            for code in re.findall(r"`([a-z][a-z_]+)`", status.group(2)):
                if code not in ("reason", "allowedAt", "account_disabled", "account_deleted", "credentials_revoked",
                                "stale", "replayed", "wrong_url", "wrong_method", "wrong_ath", "bad_jti", "bad_iat",
                                "missing", "wrong_key", "idle", "max_age", "maxAge", "closed_by_support"):
                    pairs.add((int(status.group(1)), code))
    return pairs


def test_api_vectors_cover_every_documented_error_code() -> None:
    table = _error_table()
    assert len(table) >= 32, table  # 32 on 2026-12-07
    covered = set()
    for vector in load("api.json")["vectors"]:
        for exchange in vector["exchanges"]:
            body = exchange["response"].get("body") or {}
            if "error" in body:
                covered.add((exchange["response"]["status"], body["error"]["code"]))
    assert table - covered == set(), "documented error codes without a vector"
    assert covered - table == set(), "vectors with codes docs/api.md does not document"


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__ if value is not None else "null"


def _shape_fits(vector: Any, live: Any, where: str) -> None:
    """The vector's answer has the live answer's keys and types (nulls and empty lists fit anything)."""
    if vector == "null" or live == "null" or vector == [] or live == []:
        return
    if isinstance(live, dict):
        assert isinstance(vector, dict) and set(vector) == set(live), (where, sorted(vector), sorted(live))
        for key in live:
            _shape_fits(vector[key], live[key], f"{where}.{key}")
    elif isinstance(live, list):
        _shape_fits(vector[0], live[0], f"{where}[]")
    else:
        assert vector == live or {vector, live} <= {"int", "float"}, (where, vector, live)


def test_api_success_vectors_have_the_live_answers_shape(api: str, sign_up: Any) -> None:
    _, id_token = sign_up()
    phone = Device(api, dict(IPHONE))
    live = {("POST", "/v1/sessions"): phone.login(id_token, push_token="tok-shape").json()}
    pixel = signed_in(api, id_token, PIXEL)
    tablet = signed_in(api, id_token, IPAD)  # before the "No": a login after a closure needs a new sign-in
    live[("GET", "/v1/sessions")] = phone.get("/v1/sessions").json()
    live[("GET", "/v1/sessions/current")] = phone.get("/v1/sessions/current").json()
    refreshed = phone.refresh()
    live[("POST", "/v1/sessions/refresh")] = refreshed.json()
    phone.adopt(refreshed)
    live[("PUT", "/v1/sessions/current/push-token")] = phone.put(
        "/v1/sessions/current/push-token", json={"token": "tok-shape-2", "provider": "fcm"}).json()
    alerts = wait_for(lambda: [a for a in phone.get("/v1/alerts").json()["alerts"]
                               if a["newSessionId"] == pixel.session_id], 20)
    live[("POST", "/v1/alerts/respond")] = phone.post(
        "/v1/alerts/respond", json={"actionToken": alerts[0]["actionToken"], "answer": "no"}).json()
    live[("DELETE", "/v1/sessions/{id}")] = phone.delete(f"/v1/sessions/{tablet.session_id}").json()
    live[("POST", "/v1/sessions/revoke-others")] = phone.post("/v1/sessions/revoke-others").json()
    live[("GET", "/v1/activity")] = phone.get("/v1/activity").json()
    live[("POST", "/v1/sessions/logout")] = phone.post("/v1/sessions/logout").json()
    seen = set()
    for vector in load("api.json")["vectors"]:
        if vector["call"].get("answer") == "yes":
            continue  # "Yes" answers {answer, sessionId, status}: fewer keys than the live "No"
        for exchange in vector["exchanges"]:
            request, response = exchange["request"], exchange["response"]
            path = re.sub(r"^/v1/sessions/(?!refresh|current|logout|revoke-others)[^/]+$", "/v1/sessions/{id}",
                          request["path"].split("?")[0])
            if "body" in response and response["status"] < 300 and (request["method"], path) in live:
                _shape_fits(_shape(response["body"]), _shape(live[(request["method"], path)]), vector["name"])
                seen.add((request["method"], path))
    assert seen == set(live), set(live) - seen


def test_the_js_client_passes_the_contract() -> None:
    """clients/js over the same vectors, with a scripted fetch: what it returns, throws, stores and
    reports. Vectors needing what the JS client does not do (DPoP, retrying a lost refresh) are skipped
    by their `requires`, and the script says how many ran."""
    run = subprocess.run([NODE, str(REPO_ROOT / "tests" / "clients" / "contract_js.mjs"), str(CONTRACT)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    summary = run.stdout.strip().splitlines()[-1]
    ran = re.fullmatch(r"(\d+) passed, 0 failed, (\d+) skipped", summary)
    assert ran and int(ran.group(1)) >= 40, run.stdout[-4000:]



def test_the_js_contract_runner_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    shutil.copytree(CONTRACT, tmp_path / "contract")
    api = load("api.json")
    api["vectors"][1]["expect"]["result"]["sessionIds"].reverse()
    write_to = tmp_path / "contract" / "api.json"
    write_to.write_text(json.dumps(api))
    run = subprocess.run([NODE, str(REPO_ROOT / "tests" / "clients" / "contract_js.mjs"), str(tmp_path / "contract")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert run.stdout.strip().splitlines()[-1].split(", ")[1] == "1 failed", run.stdout[-3000:]
