"""Behind Firebase Hosting only `__session` reaches a function: the one-cookie layout still keeps
every token away from script and other sites, and the whole web flow works with it.

In both layouts a request that carries the web cookies and changes state must come from the
page's own origin (`Sec-Fetch-Site: same-origin`, or an Origin in MYDEVICES_ALLOWED_ORIGINS),
else 403 `cross_site_request`: SameSite=Strict does not stop a page on a sibling subdomain.
The requests below carry the headers a browser would put on them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from support.devices import CHROME, IPHONE, error_code, signed_in
from support.serving import function_url

ALLOWED = "https://app.example.com"  # MYDEVICES_ALLOWED_ORIGINS of hosted_api
SIBLING = "https://forum.example.com"  # same site as the app (example.com), another origin
PUSH = {"token": "fcm-web-token", "provider": "fcm"}


hosted_api = function_url("api", {"MYDEVICES_WEB_COOKIE": "session",
                                   "MYDEVICES_ALLOWED_ORIGINS": f"{ALLOWED}, http://localhost:5000"})


def _session_cookie(response: requests.Response) -> tuple[str, dict[str, str]]:
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert [c.split("=", 1)[0] for c in cookies] == ["__session"], cookies
    value, *attributes = cookies[0].split(";")
    flags = {a.strip().split("=")[0].lower(): a.strip() for a in attributes}
    return value.split("=", 1)[1], flags


def test_the_web_flow_runs_on_one_strict_session_cookie(hosted_api: str, sign_up: Any) -> None:
    _, id_token = sign_up()
    held = f"{hosted_api}/v1/sessions/cookies"  # what a page loaded in this browser asks first
    assert requests.get(held, timeout=10).json() == {"access": False, "refresh": False}
    login = requests.post(f"{hosted_api}/v1/sessions", json={"device": CHROME},
                          headers={"Authorization": f"Bearer {id_token}"}, timeout=10)
    assert login.status_code == 201
    assert "accessToken" not in login.json() and "refreshToken" not in login.json()
    value, flags = _session_cookie(login)
    assert {"httponly", "secure", "samesite", "path"} <= set(flags) and "domain" not in flags
    assert flags["samesite"] == "SameSite=Strict" and flags["path"] == "Path=/"
    jar = {"Cookie": f"__session={value}", "Sec-Fetch-Site": "same-origin"}  # a browser adds the latter
    assert requests.get(held, headers=jar, timeout=10).json() == {"access": True, "refresh": True}

    current = requests.get(f"{hosted_api}/v1/sessions/current", headers=jar, timeout=10)
    assert current.status_code == 200 and current.json()["deviceType"] == "WEB"

    refreshed = requests.post(f"{hosted_api}/v1/sessions/refresh", headers=jar, timeout=10)
    assert refreshed.status_code == 200
    new_value, _ = _session_cookie(refreshed)
    assert new_value != value
    jar = {"Cookie": f"__session={new_value}", "Sec-Fetch-Site": "same-origin"}
    assert requests.get(f"{hosted_api}/v1/sessions/current", headers=jar, timeout=10).status_code == 200

    logout = requests.post(f"{hosted_api}/v1/sessions/logout", headers=jar, timeout=10)
    assert logout.status_code == 200
    kept, _ = _session_cookie(logout)
    assert kept.startswith("did=") and "at=" not in kept and "rt=" not in kept  # the device stays known
    held_after = requests.get(held, headers={"Cookie": f"__session={kept}"}, timeout=10)
    assert (held_after.status_code, held_after.json()) == (200, {"access": False, "refresh": False})
    after = requests.get(f"{hosted_api}/v1/sessions/current", headers={"Cookie": f"__session={kept}"}, timeout=10)
    assert (after.status_code, error_code(after)) == (401, "unauthenticated")
    # The old cookie, replayed after logout, is refused.
    replay = requests.get(f"{hosted_api}/v1/sessions/current", headers=jar, timeout=10)
    assert (replay.status_code, error_code(replay)) == (401, "session_revoked")


# --- cookie requests that change state must come from the page's own origin ---------------------


@pytest.fixture(params=["host", "session"])
def base(request: pytest.FixtureRequest, api: str, hosted_api: str) -> str:
    """The api with `__Host-` cookies and no allowed origins, or with `__session` and ALLOWED."""
    return api if request.param == "host" else hosted_api


def web_login(base: str, id_token: str) -> str:
    """A browser's login; returns its Cookie header (requests keeps no Secure cookie over http)."""
    login = requests.post(f"{base}/v1/sessions", json={"device": CHROME},
                          headers={"Authorization": f"Bearer {id_token}"}, timeout=10)
    assert login.status_code == 201, login.text
    return "; ".join(c.split(";", 1)[0] for c in login.raw.headers.getlist("Set-Cookie"))


def send(base: str, method: str, path: str, headers: dict[str, str], body: str = "x=1") -> tuple[int, str]:
    answer = requests.request(method, f"{base}{path}", data=body, headers=headers, timeout=10)
    assert "Set-Cookie" not in answer.headers or answer.status_code < 400
    return answer.status_code, error_code(answer) if answer.status_code >= 400 else ""


def push_token(base: str, headers: dict[str, str]) -> tuple[int, str]:
    return send(base, "PUT", "/v1/sessions/current/push-token", {**headers, "Content-Type": "application/json"},
                json.dumps(PUSH))


def test_a_same_site_page_posting_text_plain_with_the_users_cookies_is_refused(base: str, sign_up: Any) -> None:
    """The attack of the issue: a page on a sibling subdomain posts a form (text/plain, no CORS
    preflight) to revoke-others; the browser attaches the SameSite=Strict cookies, since the
    site is the same. Every state-changing call is refused the same way, before its body is read."""
    _, id_token = sign_up()
    phone = signed_in(base, id_token, IPHONE)
    cookies = web_login(base, id_token)
    forged = {"Cookie": cookies, "Content-Type": "text/plain", "Sec-Fetch-Site": "same-site", "Origin": SIBLING}
    for method, path in [("POST", "/v1/sessions/revoke-others"), ("DELETE", f"/v1/sessions/{phone.session_id}"),
                         ("POST", "/v1/sessions/logout"), ("POST", "/v1/sessions/refresh"),
                         ("PUT", "/v1/sessions/current/push-token"), ("POST", "/v1/sessions"),
                         ("POST", "/v1/alerts/respond")]:
        assert send(base, method, path, forged) == (403, "cross_site_request"), (method, path)
    assert phone.get("/v1/sessions/current").status_code == 200  # nothing was closed
    # The order: the same text/plain body from the page itself is judged on its type (415).
    page = {"Cookie": cookies, "Sec-Fetch-Site": "same-origin"}
    assert send(base, "POST", "/v1/sessions/refresh", {**page, "Content-Type": "text/plain"}) == (
        415, "unsupported_media_type")
    assert push_token(base, page) == (200, "")
    assert send(base, "POST", "/v1/sessions/logout", page, "") == (200, "")
    assert phone.get("/v1/sessions/current").status_code == 200


@pytest.mark.parametrize("signal", [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://attacker.example"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "none"},
    {"Origin": "null"},  # a sandboxed frame, a data: URL
    {"Origin": SIBLING},
    {},  # neither header: no browser sends a POST so; a non-browser client with cookies must add one
], ids=["cross-site", "same-site-alone", "sec-fetch-none", "origin-null", "sibling-origin-alone", "no-headers"])
def test_without_a_same_origin_signal_a_cookie_request_that_changes_state_is_refused(
    base: str, sign_up: Any, signal: dict[str, str]
) -> None:
    _, id_token = sign_up()
    cookies = web_login(base, id_token)
    assert push_token(base, {"Cookie": cookies, **signal}) == (403, "cross_site_request")
    # Reads are not judged: SameSite=Strict keeps other sites' out, and no other origin reads the answer.
    listed = requests.get(f"{base}/v1/sessions", headers={"Cookie": cookies, **signal}, timeout=10)
    assert listed.status_code == 200
    assert push_token(base, {"Cookie": cookies, "Sec-Fetch-Site": "same-origin"}) == (200, "")


def test_an_allowed_origin_may_send_cookie_requests_and_near_misses_may_not(
    api: str, hosted_api: str, sign_up: Any
) -> None:
    """For a page on another origin of the deployment, or a browser without Fetch Metadata (it
    still sends Origin on a POST): MYDEVICES_ALLOWED_ORIGINS, exact matches only."""
    _, id_token = sign_up()
    cookies = web_login(hosted_api, id_token)
    assert push_token(hosted_api, {"Cookie": cookies, "Origin": ALLOWED}) == (200, "")
    assert push_token(hosted_api, {"Cookie": cookies, "Origin": ALLOWED, "Sec-Fetch-Site": "same-site"}) == (200, "")
    assert push_token(hosted_api, {"Cookie": cookies, "Origin": "http://localhost:5000"}) == (200, "")
    for near_miss in (f"{ALLOWED}.attacker.example", "http://app.example.com", f"{ALLOWED}/", f"{ALLOWED}:8443",
                      "https://APP.example.com", f"{ALLOWED}, {ALLOWED}"):
        refused = push_token(hosted_api, {"Cookie": cookies, "Origin": near_miss})
        assert refused == (403, "cross_site_request"), near_miss
    # The default is no allowed origin at all.
    host_cookies = web_login(api, id_token)
    assert push_token(api, {"Cookie": host_cookies, "Origin": ALLOWED}) == (403, "cross_site_request")


def test_a_mobile_client_without_cookies_needs_no_origin(base: str, sign_up: Any) -> None:
    """The bearer header is no ambient credential: no page can make a browser send it."""
    _, id_token = sign_up()
    phone = signed_in(base, id_token, IPHONE)
    assert phone.put("/v1/sessions/current/push-token", json=PUSH).status_code == 200
    elsewhere = {"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"}  # e.g. a web view's
    assert phone.put("/v1/sessions/current/push-token", json=PUSH, headers=elsewhere).status_code == 200
    refreshed = phone.refresh()
    assert refreshed.status_code == 200
    phone.adopt(refreshed)
    assert phone.post("/v1/sessions/logout").status_code == 200


def test_a_function_behind_require_session_gets_the_same_check(guarded_url: str, api: str, sign_up: Any) -> None:
    _, id_token = sign_up()
    cookies = web_login(api, id_token)
    forged = {"Cookie": cookies, "Sec-Fetch-Site": "same-site", "Origin": SIBLING, "Content-Type": "text/plain"}
    assert send(guarded_url, "POST", "/orders", forged) == (403, "cross_site_request")
    assert send(guarded_url, "POST", "/orders", {"Cookie": cookies, "Sec-Fetch-Site": "same-origin"}) == (200, "")
    assert requests.get(f"{guarded_url}/orders", headers=forged, timeout=10).status_code == 200
