"""Pages on another origin (MYDEVICES_CORS_ORIGINS) calling the API with bearer tokens, in Debian's
Chromium: a page from an allowed origin logs in, calls and reads errors and `X-Device-Id`; the same
page from an origin not listed is blocked by the browser. The headers themselves, preflights and
the cookie rules are checked over plain HTTP first.

The api here also enforces App Check, so the preflight must allow `X-Firebase-AppCheck`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser

from infra.local.stack import Stack, free_port
from support.browser import chromium
from support.devices import CHROME, IPHONE, Device, error_code
from support.serving import serving

PAGE = b"<!doctype html><meta charset=utf-8><title>An app on another origin</title><p>other origin"
APP_CHECK = "X-Firebase-AppCheck"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_port() -> Iterator[int]:
    """A web app's page on loopback: `http://localhost:PORT` is listed, `http://127.0.0.1:PORT` is not."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def allowed(page_port: int) -> str:
    return f"http://localhost:{page_port}"


@pytest.fixture(scope="module")
def cors_api(stack: Stack, allowed: str) -> Iterator[str]:
    env = {"MYDEVICES_CORS_ORIGINS": f"https://app.example.com, {allowed}", "MYDEVICES_APP_CHECK": "enforce"}
    with serving(stack, "api", env, own_port=True) as server:
        yield server.url


def preflight(base: str, origin: str, method: str = "GET", path: str = "/v1/sessions/current") -> requests.Response:
    return requests.options(f"{base}{path}", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,x-device-id,x-firebase-appcheck",
    }, timeout=30)


# --- the headers ---------------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_is_answered_exactly(cors_api: str, allowed: str) -> None:
    answer = preflight(cors_api, allowed)
    assert answer.status_code == 204 and answer.content == b""
    assert answer.headers["Access-Control-Allow-Origin"] == allowed  # the exact origin, never *
    assert answer.headers["Access-Control-Allow-Methods"] == "GET"
    assert answer.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Device-Id, " \
                                                             "X-Firebase-AppCheck, DPoP"
    assert answer.headers["Access-Control-Max-Age"] == "3600" and answer.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in answer.headers
    assert preflight(cors_api, allowed, "DELETE", "/v1/sessions/" + "A" * 22).headers[
        "Access-Control-Allow-Methods"] == "DELETE"
    assert preflight(cors_api, allowed, "POST", "/v1/sessions").headers["Access-Control-Allow-Methods"] == "GET, POST"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://localhost", "https://app.example.com.evil.example",
                                    "null", "HTTPS://APP.EXAMPLE.COM"])
def test_a_preflight_from_any_other_origin_gets_no_cors_headers(cors_api: str, origin: str) -> None:
    answer = preflight(cors_api, origin)
    assert (answer.status_code, error_code(answer)) == (405, "method_not_allowed")
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


def test_answers_carry_cors_headers_only_for_an_allowed_origin(stack: Stack, cors_api: str, allowed: str) -> None:
    url = f"{cors_api}/v1/sessions/current"
    for_page = requests.get(url, headers={"Origin": allowed}, timeout=30)  # an error, readable by the page
    assert (for_page.status_code, error_code(for_page)) == (401, "app_check_failed")
    assert for_page.headers["Access-Control-Allow-Origin"] == allowed
    assert for_page.headers["Access-Control-Expose-Headers"] == "X-Device-Id, Retry-After, DPoP-Nonce"
    assert for_page.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in for_page.headers
    for headers in ({"Origin": "https://evil.example"}, {}):
        other = requests.get(url, headers=headers, timeout=30)
        assert "Access-Control-Allow-Origin" not in other.headers and other.headers["Vary"] == "Origin"
    jwks = requests.get(f"{cors_api}/.well-known/jwks.json", headers={"Origin": allowed}, timeout=30)
    assert jwks.headers["Access-Control-Allow-Origin"] == allowed and jwks.headers["Vary"] == "Origin"


def test_without_the_setting_nothing_changes(api: str) -> None:
    answer = preflight(api, "https://app.example.com")
    assert (answer.status_code, error_code(answer)) == (405, "method_not_allowed")
    plain = requests.get(f"{api}/v1/sessions/current", headers={"Origin": "https://app.example.com"}, timeout=30)
    assert "Access-Control-Allow-Origin" not in plain.headers and "Vary" not in plain.headers


def test_a_web_login_from_an_allowed_origin_gets_bearer_tokens_and_no_cookies(
    stack: Stack, cors_api: str, allowed: str, sign_up: Any
) -> None:
    """Cookies cannot work cross-origin, so that page gets what a mobile app gets; the same login
    from our own page (Sec-Fetch-Site: same-origin) still gets only cookies."""
    _, id_token = sign_up()
    app_check = {APP_CHECK: stack.mint_app_check_token()}
    away = Device(cors_api, dict(CHROME)).login(id_token, headers={"Origin": allowed, **app_check})
    assert away.json()["accessToken"] and away.json()["refreshToken"] and "Set-Cookie" not in away.headers
    home = Device(cors_api, dict(CHROME)).login(id_token, headers={
        "Origin": allowed, "Sec-Fetch-Site": "same-origin", **app_check})
    assert "accessToken" not in home.json() and "__Host-mydevices-at=" in home.headers["Set-Cookie"]
    elsewhere = Device(cors_api, dict(CHROME)).login(id_token, headers={"Origin": "https://evil.example", **app_check})
    assert "accessToken" not in elsewhere.json()  # an unlisted origin gets the cookies, which it cannot use
    assert Device(cors_api, dict(IPHONE)).login(id_token, headers=app_check).json()["accessToken"]


# --- in Chromium -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


# What the app's script does: log in with the Firebase ID token, then call with its bearer token.
APP_SCRIPT = """async ({api, idToken, appCheck, device}) => {
  const out = {};
  const call = async (path, headers, init = {}) => {
    const answer = await fetch(api + path, {...init, headers});
    return {status: answer.status, body: await answer.json(), deviceId: answer.headers.get("X-Device-Id")};
  };
  const login = await call("/v1/sessions", {"Authorization": "Bearer " + idToken, "Content-Type": "application/json",
                                           "X-Firebase-AppCheck": appCheck},
                           {method: "POST", body: JSON.stringify({device})});
  out.login = login.status;
  const token = login.body.accessToken, deviceId = login.body.deviceId;
  const current = await call("/v1/sessions/current", {"Authorization": "Bearer " + token, "X-Device-Id": deviceId,
                                                     "X-Firebase-AppCheck": appCheck});
  out.current = [current.status, current.body.sessionId === login.body.session.sessionId];
  const noDevice = await call("/v1/sessions/current", {"Authorization": "Bearer " + token,
                                                      "X-Firebase-AppCheck": appCheck});
  out.noDevice = [noDevice.status, noDevice.body.error.code, noDevice.deviceId !== null];
  const noAppCheck = await call("/v1/sessions/current", {"Authorization": "Bearer " + token, "X-Device-Id": deviceId});
  out.noAppCheck = [noAppCheck.status, noAppCheck.body.error.code];
  const refreshed = await call("/v1/sessions/refresh", {"Content-Type": "application/json", "X-Device-Id": deviceId,
                                                       "X-Firebase-AppCheck": appCheck},
                               {method: "POST", body: JSON.stringify({refreshToken: login.body.refreshToken})});
  out.refreshed = [refreshed.status, typeof refreshed.body.accessToken];
  out.cookies = document.cookie;
  return out;
}"""

BLOCKED_SCRIPT = """async ({api, appCheck}) => {
  const tries = {
    current: () => fetch(api + "/v1/sessions/current",
                         {headers: {"Authorization": "Bearer x", "X-Firebase-AppCheck": appCheck}}),
    jwks: () => fetch(api + "/.well-known/jwks.json"),  // a simple request, no preflight
  };
  const out = {};
  for (const [name, attempt] of Object.entries(tries)) {
    try { out[name] = "read " + (await attempt()).status; } catch (error) { out[name] = error.name; }
  }
  return out;
}"""


def test_in_chromium_an_allowed_origin_calls_with_bearer_tokens_and_another_is_blocked(
    stack: Stack, cors_api: str, allowed: str, page_port: int, browser: Browser, sign_up: Any
) -> None:
    _, id_token = sign_up()
    args = {"api": cors_api, "idToken": id_token, "appCheck": stack.mint_app_check_token(), "device": CHROME}
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{allowed}/")
        assert page.evaluate(APP_SCRIPT, args) == {
            "login": 201, "current": [200, True], "noDevice": [401, "unknown_device", True],
            "noAppCheck": [401, "app_check_failed"], "refreshed": [200, "string"], "cookies": "",
        }
        assert context.cookies(cors_api) == []  # no cookie was set for the API
        page.goto(f"http://127.0.0.1:{page_port}/")  # the same page from an origin not listed
        assert page.evaluate(BLOCKED_SCRIPT, args) == {"current": "TypeError", "jwks": "TypeError"}
    finally:
        context.close()
