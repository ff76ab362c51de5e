"""App Check (`MYDEVICES_APP_CHECK`) on the API, the callables and `require_session`, as a client or
an attacker sees it. Tokens are minted with the stack's local key, whose JWKS the FCM stand-in
serves in place of Google's (infra/local/app_check_keys.py); firebase-admin verifies them.

`-s` prints what a verification costs (`test_the_cost_of_a_verification`).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import jwt
import requests

from infra.local import app_check_keys
from infra.local.stack import FunctionServer, Stack, free_port
from support import GUARDED_APP
from support.devices import IPHONE, Device, error_code, sign_in_with_custom_token
from support.serving import function_server, function_url
from support.waiting import wait_for

HEADER = "X-Firebase-AppCheck"
REGION = "us-central1"


enforced = function_url("api", {"MYDEVICES_APP_CHECK": "enforce"}, own_port=True)
reported = function_server("api", {"MYDEVICES_APP_CHECK": "report"}, own_port=True)
enforced_callables = function_url("callables", {"MYDEVICES_APP_CHECK": "enforce"}, own_port=True)


def wrong_tokens(stack: Stack, tmp_path: Path) -> dict[str, str | None]:
    """Every way an App Check token can be wrong, by name."""
    other_key = tmp_path / "other-key"
    app_check_keys.ensure_keys(other_key)
    now = int(time.time())
    good_claims = jwt.decode(stack.mint_app_check_token(), options={"verify_signature": False})
    return {
        "missing": None,
        "garbage": "not-a-token",
        "expired": stack.mint_app_check_token(iat=now - 7200, exp=now - 3600),
        "another project": stack.mint_app_check_token(aud=["projects/123", "projects/demo-someone-else"]),
        "another key, our key id": app_check_keys.mint(other_key, stack.project),
        "an unknown key id": stack.mint_app_check_token(key_id="nobody-knows-me"),
        "HS256 with the key id": jwt.encode(good_claims, "a-guessed-secret-of-32-bytes-long!", algorithm="HS256",
                                            headers={"kid": app_check_keys.KEY_ID, "typ": "JWT"}),
        "no signature": stack.mint_app_check_token().rsplit(".", 1)[0] + ".",
    }


def login(base: str, id_token: str, app_check: str | None) -> Device:
    device = Device(base, dict(IPHONE))
    device.login(id_token, headers={HEADER: app_check} if app_check else {})
    return device


def refused_login(base: str, id_token: str, app_check: str | None) -> requests.Response:
    return Device(base, dict(IPHONE)).login(id_token, headers={HEADER: app_check} if app_check else {}, expect=401)


# --- the API ------------------------------------------------------------------------------------


def test_enforced_the_api_refuses_every_wrong_token_with_app_check_failed_and_takes_a_good_one(
    stack: Stack, enforced: str, sign_up: Any, tmp_path: Path
) -> None:
    _, id_token = sign_up()
    for name, token in wrong_tokens(stack, tmp_path).items():
        refused = refused_login(enforced, id_token, token)
        assert error_code(refused) == "app_check_failed", name
        assert refused.headers["Content-Type"] == "application/json", name
    good = stack.mint_app_check_token()
    phone = login(enforced, id_token, good)
    assert phone.get("/v1/sessions/current", headers={HEADER: good}).status_code == 200
    # Every call needs it, not only the login; a valid session does not stand in for it.
    for answer in (phone.get("/v1/sessions/current"), phone.get("/v1/sessions"), phone.refresh(),
                   phone.post("/v1/sessions/logout")):
        assert (answer.status_code, error_code(answer)) == (401, "app_check_failed")
    assert phone.get("/v1/sessions/current", headers={HEADER: good}).status_code == 200  # nothing was closed
    # The JWKS is for other backends: no App Check there.
    assert requests.get(f"{enforced}/.well-known/jwks.json", timeout=30).status_code == 200


def test_app_check_is_checked_before_anything_else_so_an_unattested_client_learns_nothing(
    stack: Stack, enforced: str
) -> None:
    """No token, no session and a bad body: the answer is about App Check, not the rest."""
    answer = requests.post(f"{enforced}/v1/sessions", data=b"{", headers={"Content-Type": "application/json"},
                           timeout=30)
    assert (answer.status_code, error_code(answer)) == (401, "app_check_failed")
    # Unknown paths and methods are still what they are.
    assert requests.get(f"{enforced}/v1/nothing", timeout=30).status_code == 404
    assert requests.put(f"{enforced}/v1/sessions", timeout=30).status_code == 405


def test_off_by_default_the_header_is_not_read(api: str, sign_up: Any) -> None:
    _, id_token = sign_up()
    phone = login(api, id_token, None)
    assert phone.get("/v1/sessions/current", headers={HEADER: "not-a-token"}).status_code == 200


def test_report_mode_lets_a_wrong_token_through_and_logs_it(
    stack: Stack, reported: FunctionServer, sign_up: Any
) -> None:
    _, id_token = sign_up()
    phone = login(reported.url, id_token, "not-a-token")
    assert phone.get("/v1/sessions/current").status_code == 200
    said = "App Check failed, let through (MYDEVICES_APP_CHECK=report)"
    assert wait_for(lambda: said in reported.log_path.read_text(errors="replace"), 10)
    log = reported.log_path.read_text(errors="replace")
    assert "not-a-token" not in log  # the reason, never the token


def test_enforced_without_google_s_keys_the_answer_is_503_with_retry_after(stack: Stack, sign_up: Any) -> None:
    cut_off = stack.start_function("api", "http", {
        "MYDEVICES_APP_CHECK": "enforce", "MYDEVICES_APP_CHECK_JWKS_URL": f"http://127.0.0.1:{free_port()}/v1/jwks",
    }, port=free_port())
    try:
        answer = requests.get(f"{cut_off.url}/v1/sessions/current",
                              headers={HEADER: stack.mint_app_check_token()}, timeout=60)
        assert (answer.status_code, error_code(answer)) == (503, "unavailable")
        assert answer.headers["Retry-After"]
    finally:
        cut_off.stop()


# --- callables and require_session -------------------------------------------------------------------


def test_enforced_callables_answer_unauthenticated_app_check_failed_as_firebase_s_own_do(
    stack: Stack, api: str, enforced_callables: str, sign_up: Any, tmp_path: Path
) -> None:
    _, login_token = sign_up()
    body = Device(api, dict(IPHONE)).login(login_token).json()
    id_token = sign_in_with_custom_token(stack, body["firebaseCustomToken"])[0]
    url = f"{enforced_callables}/{stack.project}/{REGION}/sessions_list"
    for name, token in wrong_tokens(stack, tmp_path).items():
        headers = {"Authorization": f"Bearer {id_token}", **({HEADER: token} if token else {})}
        answer = requests.post(url, json={"data": None}, headers=headers, timeout=30)
        error = answer.json()["error"]
        assert (answer.status_code, error["status"], error["details"]["code"]) == (
            401, "UNAUTHENTICATED", "app_check_failed"), name
    headers = {"Authorization": f"Bearer {id_token}", HEADER: stack.mint_app_check_token()}
    answer = requests.post(url, json={"data": None}, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.json()["result"]["sessions"][0]["sessionId"] == body["session"][
        "sessionId"]


def test_require_session_applies_its_function_s_own_setting(stack: Stack, api: str, sign_up: Any) -> None:
    guarded = stack.start_function("orders", "http", {"MYDEVICES_APP_CHECK": "enforce"}, port=free_port(),
                                   source=GUARDED_APP)
    try:
        _, id_token = sign_up()
        phone = login(api, id_token, None)
        refused = requests.get(guarded.url, headers=phone.headers(), timeout=30)
        assert (refused.status_code, error_code(refused)) == (401, "app_check_failed")
        taken = requests.get(guarded.url, headers=phone.headers({HEADER: stack.mint_app_check_token()}), timeout=30)
        assert taken.status_code == 200, taken.text
    finally:
        guarded.stop()


# --- what it costs -------------------------------------------------------------------------------


def _jwks_fetches(stack: Stack) -> int:
    return stack.fcm.jwks_fetches()


def test_the_cost_of_a_verification(stack: Stack, enforced: str, api: str, sign_up: Any) -> None:
    """firebase-admin's verify_token in this process (the RSA verify with the JWKS cached, and the
    first call, which fetches it), then GET /v1/sessions/current with enforcement on and off; the
    JWKS is fetched once per instance, not per request."""
    from firebase_admin import app_check

    from mydevices.firebase_app import app

    # No public way to time the first verification apart: firebase-admin keeps one service per app,
    # so a fresh one (private) is made here; its first call fetches the JWKS.
    service = app_check._AppCheckService(app())
    assert service._jwks_client.uri == f"{stack.fcm.url}/v1/jwks"  # the stand-in's, not Google's
    token = stack.mint_app_check_token()
    started = time.perf_counter()
    service.verify_token(token)
    first_ms = (time.perf_counter() - started) * 1000
    runs = []
    for _ in range(300):
        started = time.perf_counter()
        claims = service.verify_token(token)
        runs.append((time.perf_counter() - started) * 1000)
    assert claims["app_id"] == app_check_keys.APP_ID

    _, id_token = sign_up()
    on, off = login(enforced, id_token, token), login(api, id_token, None)
    fetches_before = _jwks_fetches(stack)

    def timed(device: Device, headers: dict[str, str]) -> float:
        started = time.perf_counter()
        assert device.get("/v1/sessions/current", headers=headers).status_code == 200
        return (time.perf_counter() - started) * 1000

    on_ms, off_ms = [], []
    for _ in range(100):  # interleaved, so both see the same load on a shared machine
        on_ms.append(timed(on, {HEADER: token}))
        off_ms.append(timed(off, {}))
    assert _jwks_fetches(stack) == fetches_before  # cached across requests
    print(f"\nApp Check verify_token: first call (JWKS fetch from loopback) {first_ms:.2f} ms; "
          f"cached: median {statistics.median(runs):.3f} ms, p95 {sorted(runs)[int(len(runs) * 0.95)]:.3f} ms "
          f"({len(runs)} runs)\nGET /v1/sessions/current, 100 each, interleaved: enforce median "
          f"{statistics.median(on_ms):.2f} ms, off {statistics.median(off_ms):.2f} ms")
