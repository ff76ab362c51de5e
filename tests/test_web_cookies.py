"""Behind Firebase Hosting only `__session` reaches a function: the one-cookie layout still keeps
every token away from script and other sites, and the whole web flow works with it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import CHROME, error_code


@pytest.fixture(scope="module")
def hosted_api(stack: Any) -> Iterator[str]:
    handle = stack.start_function("api", "http", {"MYDEVICES_WEB_COOKIE": "session"})
    yield handle.url
    handle.stop()


def _session_cookie(response: requests.Response) -> tuple[str, dict[str, str]]:
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert [c.split("=", 1)[0] for c in cookies] == ["__session"], cookies
    value, *attributes = cookies[0].split(";")
    flags = {a.strip().split("=")[0].lower(): a.strip() for a in attributes}
    return value.split("=", 1)[1], flags


def test_the_web_flow_runs_on_one_strict_session_cookie(hosted_api: str, sign_up: Any) -> None:
    _, id_token = sign_up()
    login = requests.post(f"{hosted_api}/v1/sessions", json={"device": CHROME},
                          headers={"Authorization": f"Bearer {id_token}"}, timeout=10)
    assert login.status_code == 201
    assert "accessToken" not in login.json() and "refreshToken" not in login.json()
    value, flags = _session_cookie(login)
    assert {"httponly", "secure", "samesite", "path"} <= set(flags) and "domain" not in flags
    assert flags["samesite"] == "SameSite=Strict" and flags["path"] == "Path=/"
    jar = {"Cookie": f"__session={value}"}

    current = requests.get(f"{hosted_api}/v1/sessions/current", headers=jar, timeout=10)
    assert current.status_code == 200 and current.json()["deviceType"] == "WEB"

    refreshed = requests.post(f"{hosted_api}/v1/sessions/refresh", headers=jar, timeout=10)
    assert refreshed.status_code == 200
    new_value, _ = _session_cookie(refreshed)
    assert new_value != value
    jar = {"Cookie": f"__session={new_value}"}
    assert requests.get(f"{hosted_api}/v1/sessions/current", headers=jar, timeout=10).status_code == 200

    logout = requests.post(f"{hosted_api}/v1/sessions/logout", headers=jar, timeout=10)
    assert logout.status_code == 200
    kept, _ = _session_cookie(logout)
    assert kept.startswith("did=") and "at=" not in kept and "rt=" not in kept  # the device stays known
    after = requests.get(f"{hosted_api}/v1/sessions/current", headers={"Cookie": f"__session={kept}"}, timeout=10)
    assert (after.status_code, error_code(after)) == (401, "unauthenticated")
    # The old cookie, replayed after logout, is refused.
    replay = requests.get(f"{hosted_api}/v1/sessions/current", headers=jar, timeout=10)
    assert (replay.status_code, error_code(replay)) == (401, "session_revoked")
