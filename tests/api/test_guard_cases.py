"""One table of cases (tests/guard_cases.json) for every guard of our sessions: the Python
`require_session` (tests/guarded_app) and @mydevices/server's `requireSession` for firebase-functions
v2 `onRequest` and its Express `sessionMiddleware` (clients/node/test/server.mjs, the built package).

Each case runs once per guard on a new user, and each guard must answer it as the table expects and
exactly as the Python guard does: the same status, the same JSON body (code, message, reason), a
fresh `X-Device-Id` or none, and the same effects (a replaced session's token signs the user out
everywhere, with one security event). The guards read the stack's clock (MYDEVICES_CLOCK_FILE) as
the product does, so a case can let time pass. App Check is checked apart (the Python guard's
function with MYDEVICES_APP_CHECK=enforce against the Node guard's `appCheck: "enforce"`), and so is
the callable adapter (`onCall`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.cloud import firestore

from infra.local import app_check_keys
from infra.local.stack import REPO_ROOT, Stack, free_port
from mydevices.config import Settings
from mydevices.tokens import access, keys
from support import GUARDED_APP, TESTS
from support.devices import IPHONE, PIXEL, Device, error_code, sign_in_with_custom_token
from support.dpop_key import DeviceKey
from support.serving import function_url
from support.waiting import wait_for

NODE_PACKAGE = REPO_ROOT / "clients" / "node"
CASES = json.loads((TESTS / "guard_cases.json").read_text())["cases"]
GUARDS = ("python", "node onRequest", "node express")

bound_orders = function_url("bound_orders", {}, signature_type="http", source=GUARDED_APP)
payments = function_url("payments", {}, signature_type="http", source=GUARDED_APP)  # max_auth_age=600


@pytest.fixture(scope="module")
def node_guarded(stack: Stack) -> Iterator[str]:
    """clients/node/test/server.mjs on a free port, with the stack's environment (the same keyring)."""
    if not (NODE_PACKAGE / "node_modules" / "firebase-admin").exists():
        pytest.fail("clients/node/node_modules is missing: infra/local/bootstrap --js-packages installs it (npm ci)")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=NODE_PACKAGE, check=True, timeout=120)
    port = free_port()
    log = open(stack.log_dir / "node-guarded.log", "wb")  # noqa: SIM115 -- closed after the process ends
    process = subprocess.Popen([shutil.which("node") or "node", "test/server.mjs"], cwd=NODE_PACKAGE,
                               env={**os.environ, **stack.env, "PORT": str(port)}, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/fn/orders", timeout=1).status_code == 401
        except requests.ConnectionError:
            return process.poll() is not None  # died: stop waiting, fail below

    try:
        wait_for(answers, timeout=30)
        assert process.poll() is None, (stack.log_dir / "node-guarded.log").read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def route(guard: str, name: str, urls: dict[str, str]) -> str:
    if guard == "python":
        python = {"orders": "python", "bound_orders": "python bound", "payments": "python payments"}[name]
        return f"{urls[python]}/{name}"
    express = {"orders": "/express", "bound_orders": "/express-bound", "payments": "/express-payments"}[name]
    prefix = {"node onRequest": "/fn", "node express": express}[guard]
    return f"{urls['node']}{prefix}/{name}"


def forged_token(real: str) -> str:
    """A token with our header and claims, signed by a key that is not ours."""
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": header["kid"]})


def expired_token(stack: Stack, real: str) -> str:
    """Our own signature over the same session, expired an hour ago (the keyring and settings read
    here, not through the process's cached ones, which other suites set up their own way)."""
    claims = jwt.decode(real, options={"verify_signature": False})
    conf = Settings.from_env()
    ring = keys.parse_keyring(json.loads(Path(str(stack.keys_file)).read_text()))
    past = int(time.time()) - 3600
    return access.issue(ring, issuer=conf.issuer, audience=conf.audience, claims=access.AccessClaims(
        uid=claims["sub"], sid=claims["sid"], did=claims["did"], iat=past - 600, exp=past))


def token_at_stack_time(stack: Stack, real: str) -> str:
    """Our own signature over the same session, issued now on the stack's clock: a credential still valid
    when the session no longer is (as a Firebase ID token of the session, which its deadlines do not cap)."""
    claims = jwt.decode(real, options={"verify_signature": False})
    conf = Settings.from_env()
    ring = keys.parse_keyring(json.loads(Path(str(stack.keys_file)).read_text()))
    now = int(stack.clock.now())
    return access.issue(ring, issuer=conf.issuer, audience=conf.audience, claims=access.AccessClaims(
        uid=claims["sub"], sid=claims["sid"], did=claims["did"], iat=now, exp=now + 600))


def move_past(stack: Stack, db: firestore.Client, uid: str, sid: str, deadline: str) -> None:
    """Move the stack's clock a minute past the session's stored `deadline` (idleExpiresAt, absoluteExpiresAt)."""
    moment = (db.collection("users").document(uid).collection("sessions").document(sid).get().to_dict() or {})[deadline]
    assert moment is not None, f"the session has no {deadline}"
    stack.clock.advance(moment.timestamp() - stack.clock.now() + 60)


def run_case(case: dict[str, Any], url: str, api: str, stack: Stack, sign_up: Callable[..., tuple[str, str]],
             db: firestore.Client) -> tuple[requests.Response, dict[str, Any]]:
    """Set the case up on a new user, send its request to `url`; the answer and what the case left."""
    uid, id_token = sign_up()
    key = DeviceKey()
    phone = Device(api, dict(IPHONE))
    # what the phone's login asks for besides its device: a device key (`bound`), or the case's `login`
    extra = {"devicePublicKey": key.public_jwk} if case.get("bound") else case.get("login")
    if extra:
        answer = phone.http.post(f"{api}/v1/sessions", json={"device": phone.device, **extra},
                                 headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
        assert answer.status_code == 201, answer.text
        data = answer.json()
        phone.device_id, phone.access_token, phone.session_id = (
            data["deviceId"], data["accessToken"], data["session"]["sessionId"])
        custom = data["firebaseCustomToken"]
    else:
        custom = phone.login(id_token).json()["firebaseCustomToken"]
    pixel = Device(api, dict(PIXEL))
    pixel.login(id_token)
    before = Device(api, dict(IPHONE), device_id=phone.device_id, access_token=phone.access_token,
                    session_id=phone.session_id)

    setup = case.get("setup")
    clock_before = stack.clock.offset
    if setup == "phone closes pixel":
        assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200
    elif setup == "support closes pixel":  # the support API's closure (flows/support.py), in-process
        from mydevices import closing

        assert closing.revoke_session(uid, pixel.session_id, "closed_by_support", note="Lost phone")
    elif setup == "phone logs in again":
        phone.login(id_token)
    elif setup == "a quarter of an hour passes on the stack's clock":
        stack.clock.advance(minutes=15)  # past the access token's 10 minutes and its 30 s of skew
    elif setup == "the stack's clock passes the phone's idle deadline":
        move_past(stack, db, uid, phone.session_id, "idleExpiresAt")
    elif setup == "the stack's clock passes the phone's absolute deadline":
        move_past(stack, db, uid, phone.session_id, "absoluteExpiresAt")
    elif setup == "eleven minutes pass on the stack's clock":
        stack.clock.advance(minutes=11)  # past the 600 s of max_auth_age / maxAuthAge
    else:
        assert setup is None, setup

    present = case["present"]
    headers: dict[str, str]
    if present == "nothing":
        headers = {}
    elif present == "phone":
        headers = phone.headers()
    elif present == "pixel":
        headers = pixel.headers()
    elif present == "phone before the re-login":
        headers = before.headers()
    elif present in ("phone with proof", "phone with another key's proof"):
        signer = key if present == "phone with proof" else DeviceKey()
        headers = phone.headers({"DPoP": signer.proof("GET", url, None, access_token=phone.access_token)})
    elif present == "forged token":
        headers = phone.headers({"Authorization": f"Bearer {forged_token(phone.access_token)}"})
    elif present == "forged device id":
        device_id, kid, mac = phone.device_id.split(".")
        headers = phone.headers({"X-Device-Id": f"{device_id}.{kid}.{mac[::-1]}"})
    elif present == "phone token, pixel device id":
        headers = phone.headers({"X-Device-Id": pixel.device_id})
    elif present == "expired token":
        headers = phone.headers({"Authorization": f"Bearer {expired_token(stack, phone.access_token)}"})
    elif present == "phone, a token issued at the stack's time":
        headers = phone.headers({"Authorization": f"Bearer {token_at_stack_time(stack, phone.access_token)}"})
    elif present == "firebase id token":
        firebase_id_token, _ = sign_in_with_custom_token(stack, custom)
        headers = {"Authorization": f"Bearer {firebase_id_token}"}
    else:
        raise AssertionError(f"unknown present: {present}")
    left: dict[str, Any] = {"uid": uid, "phone": phone.session_id}
    try:
        answer = requests.get(url, headers=headers, timeout=30)
        if case["expect"].get("closedAs"):  # the first sight closed it: what it left, and the next sight
            closed = db.collection("users").document(uid).collection("sessions").document(phone.session_id).get()
            left["closed as"] = (closed.to_dict() or {}).get("revokedReason")
            left["again"] = requests.get(url, headers=headers, timeout=30)
    finally:
        stack.clock.set(clock_before)

    if case["expect"].get("after"):
        left["still open"] = [s.id for s in db.collection("users").document(uid).collection("sessions")
                              .where(filter=firestore.FieldFilter("status", "==", "active")).stream()]
        left["security events"] = [s.id for s in db.collection("users").document(uid)
                                   .collection("securityEvents").stream()]
        left["replaced"] = before.session_id
    return answer, left


def shape(answer: requests.Response) -> dict[str, Any]:
    """What must be the same from every guard: status, JSON body (ids aside), a fresh device id or none."""
    body = answer.json()
    if answer.status_code == 200:
        body = {k: v for k, v in body.items() if k != "path"}
    return {"status": answer.status_code, "body": body, "fresh device id": "X-Device-Id" in answer.headers,
            "no-store": answer.headers.get("Cache-Control") == "no-store"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_guard_answers_the_case_alike(
    case: dict[str, Any], stack: Stack, api: str, guarded_url: str, bound_orders: str, payments: str,
    node_guarded: str,
    sign_up: Callable[..., tuple[str, str]], db: firestore.Client,
) -> None:
    urls = {"python": guarded_url, "python bound": bound_orders, "python payments": payments, "node": node_guarded}
    expect = case["expect"]
    shapes = {}
    for guard in GUARDS:
        answer, left = run_case(case, route(guard, case["route"], urls), api, stack, sign_up, db)
        assert answer.status_code == expect["status"], (guard, answer.text)
        if expect["status"] == 200:
            assert answer.json()["uid"] == left["uid"] and answer.json()["sessionId"] == left["phone"], guard
        else:
            assert error_code(answer) == expect["code"], (guard, answer.text)
            assert answer.json()["error"].get("reason") == expect.get("reason"), (guard, answer.text)
            assert answer.json()["error"].get("maxAge") == expect.get("maxAge"), (guard, answer.text)
            assert ("X-Device-Id" in answer.headers) == bool(expect.get("freshDeviceId")), guard
        if expect.get("after"):
            assert left["still open"] == [], guard  # every session of the user closed
            assert left["security events"] == [f"token_reused-{left['replaced']}"], guard
        if expect.get("closedAs"):
            assert left["closed as"] == expect["closedAs"], guard
            assert shape(left["again"]) == shape(answer), (guard, left["again"].text)  # closed as expired: the same
        shapes[guard] = shape(answer)
        if answer.status_code == 200:
            shapes[guard]["body"] = dict.fromkeys(shapes[guard]["body"], "<of this run>")
    assert shapes["node onRequest"] == shapes["python"]
    assert shapes["node express"] == shapes["python"]


def test_the_callable_adapter_checks_the_firebase_id_token_session(
    stack: Stack, api: str, node_guarded: str, sign_up: Callable[..., tuple[str, str]]
) -> None:
    """onCall(requireCallableSession(...)): firebase-functions verifies the ID token, the guard reads
    the session it names; a closed one is refused in the callable protocol with our code."""
    _, id_token = sign_up()
    phone = Device(api, dict(IPHONE))
    custom = phone.login(id_token).json()["firebaseCustomToken"]
    firebase_id_token, _ = sign_in_with_custom_token(stack, custom)
    call = f"{node_guarded}/callable/orders"
    sent = {"Authorization": f"Bearer {firebase_id_token}", "Content-Type": "application/json"}
    ok = requests.post(call, json={"data": {}}, headers=sent, timeout=30)
    assert ok.status_code == 200, ok.text
    assert ok.json()["result"]["sessionId"] == phone.session_id
    assert phone.post("/v1/sessions/logout").status_code == 200
    refused = requests.post(call, json={"data": {}}, headers=sent, timeout=30)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == {"status": "UNAUTHENTICATED", "message": "this session has been closed",
                                       "details": {"code": "session_revoked"}}
    anonymous = requests.post(call, json={"data": {}}, headers={"Content-Type": "application/json"}, timeout=30)
    assert anonymous.json()["error"]["details"] == {"code": "unauthenticated"}


def test_the_callable_adapter_asks_for_a_recent_sign_in_and_refuses_an_expired_session(
    stack: Stack, api: str, node_guarded: str, sign_up: Callable[..., tuple[str, str]], db: firestore.Client
) -> None:
    """onCall(requireCallableSession(..., { maxAuthAge: 600 })): a sign-in older than that is
    PERMISSION_DENIED recent_sign_in_required with maxAge, as the Python callables answer it; a session
    past its deadline (its Firebase ID token still valid: the deadlines do not cap it) is
    UNAUTHENTICATED session_expired, and closed."""
    uid, id_token = sign_up()
    phone = Device(api, dict(IPHONE))
    answer = phone.http.post(f"{api}/v1/sessions", json={"device": phone.device, "sessionLifetimeSeconds": 1200},
                             headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    sid = answer.json()["session"]["sessionId"]
    firebase_id_token, _ = sign_in_with_custom_token(stack, answer.json()["firebaseCustomToken"])
    call = f"{node_guarded}/callable/payments"
    sent = {"Authorization": f"Bearer {firebase_id_token}", "Content-Type": "application/json"}
    assert requests.post(call, json={"data": {}}, headers=sent, timeout=30).json() == {
        "result": {"uid": uid, "sessionId": sid}}
    stack.clock.advance(minutes=11)
    stale = requests.post(call, json={"data": {}}, headers=sent, timeout=30)
    assert stale.status_code == 403, stale.text
    assert stale.json()["error"]["status"] == "PERMISSION_DENIED"
    assert stale.json()["error"]["details"] == {"code": "recent_sign_in_required", "maxAge": 600}
    stack.clock.advance(minutes=10)  # past the 20 minutes the login asked for; the ID token has an hour
    expired = requests.post(call, json={"data": {}}, headers=sent, timeout=30)
    assert expired.status_code == 401, expired.text
    assert expired.json()["error"]["details"] == {"code": "session_expired", "reason": "max_age"}
    closed = db.collection("users").document(uid).collection("sessions").document(sid).get().to_dict() or {}
    assert (closed["status"], closed["revokedReason"]) == ("revoked", "expired_max_age")


APP_CHECK = "X-Firebase-AppCheck"


def test_app_check_is_enforced_by_the_node_guard_as_by_the_python_guard(
    stack: Stack, api: str, node_guarded: str, sign_up: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    """App Check in @mydevices/server (`appCheck: "enforce"`, MYDEVICES_APP_CHECK's values), verified by
    firebase-admin against the stack's local App Check key (infra/local/app_check_keys.py, served by the
    stand-in, as in tests/api/test_app_check.py): a live session without a valid App Check token is
    refused by both guards alike, with one it passes both; "report" lets a wrong one through."""
    python = stack.start_function("orders", "http", {"MYDEVICES_APP_CHECK": "enforce"}, port=free_port(),
                                  source=GUARDED_APP)
    try:
        _, id_token = sign_up()
        phone = Device(api, dict(IPHONE))
        phone.login(id_token)
        app_check_keys.ensure_keys(tmp_path / "other-key")
        now = int(time.time())
        wrong = {
            "missing": None,
            "garbage": "not-a-token",
            "expired": stack.mint_app_check_token(iat=now - 7200, exp=now - 3600),
            "another project": stack.mint_app_check_token(aud=["projects/123", "projects/demo-someone-else"]),
            "another key, our key id": app_check_keys.mint(tmp_path / "other-key", stack.project),
        }
        urls = {"python": python.url, "node": f"{node_guarded}/fn-app-check/orders"}
        for name, token in wrong.items():
            shapes = {}
            for guard, url in urls.items():
                answer = requests.get(url, headers=phone.headers({APP_CHECK: token} if token else {}), timeout=30)
                assert (answer.status_code, error_code(answer)) == (401, "app_check_failed"), (guard, name, answer.text)
                shapes[guard] = shape(answer)
            assert shapes["node"] == shapes["python"], name
        good = stack.mint_app_check_token()
        for guard, url in urls.items():
            answer = requests.get(url, headers=phone.headers({APP_CHECK: good}), timeout=30)
            assert answer.status_code == 200, (guard, answer.text)
            assert answer.json()["sessionId"] == phone.session_id, guard
        reported = requests.get(f"{node_guarded}/fn-app-check-report/orders",
                                headers=phone.headers({APP_CHECK: "not-a-token"}), timeout=30)
        assert reported.status_code == 200, reported.text
    finally:
        python.stop()
