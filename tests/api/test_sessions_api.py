"""The sessions API end to end: real functions-framework server, real Firestore and Auth emulators."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
import requests
from google.cloud import firestore

from infra.local.stack import Stack
from mydevices.tokens import access
from mydevices.tokens.keys import parse_keyring
from support.devices import CHROME, IPHONE, LONDON_IP, PIXEL, Device, build_city_db, error_code, signed_in
from support.serving import serving

GRACE_SECONDS = 4


@pytest.fixture(scope="module")
def api_url(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    city_db = build_city_db(str(tmp_path_factory.mktemp("geo") / "city.mmdb"))
    with serving(stack, "api", {
        "MYDEVICES_GEOIP_DB": city_db,
        "MYDEVICES_TRUSTED_PROXIES": "1",
        "MYDEVICES_REFRESH_GRACE_SECONDS": str(GRACE_SECONDS),
    }) as handle:
        yield handle.url


@pytest.fixture()
def user(sign_up: Any) -> tuple[str, str]:
    return sign_up()


def device(api_url: str, spec: dict[str, Any] = IPHONE) -> Device:
    return Device(api_url, dict(spec))


# --- login ------------------------------------------------------------------------------------


def test_login_returns_a_device_session_and_tokens_and_no_secret_in_firestore_view(
    api_url: str, user: tuple[str, str], db: firestore.Client
) -> None:
    uid, id_token = user
    phone = device(api_url)
    data = phone.login(id_token, push_token="push-secret-1").json()
    session = data["session"]
    assert session == {
        "sessionId": session["sessionId"],
        "deviceName": "iPhone 15 Pro",
        "deviceType": "IOS",
        "model": "iPhone16,1",
        "osVersion": "17.4",
        "appVersion": "2.3.0",
        "location": None,
        "lastActiveAt": session["lastActiveAt"],
        "createdAt": session["createdAt"],
        "isCurrentDevice": True,
        "deviceBound": False,  # no devicePublicKey in this login (tests/api/test_binding.py)
    }
    assert data["accessTokenExpiresAt"] > time.time() + 500
    # The client-readable document holds no secret; the secret one holds only hashes.
    public = db.document(f"users/{uid}/sessions/{session['sessionId']}").get().to_dict()
    assert public is not None and public["status"] == "active"
    secret = db.document(f"sessionSecrets/{session['sessionId']}").get().to_dict()
    assert secret is not None
    public_text, secret_text = json.dumps(public, default=str), json.dumps(secret, default=str)
    refresh_secret = data["refreshToken"].split(".")[-1]
    for value in (refresh_secret, data["accessToken"]):
        assert value not in public_text and value not in secret_text
    assert "push-secret-1" not in public_text
    assert secret["pushToken"] == "push-secret-1"


def test_login_rejects_a_bad_firebase_id_token(api_url: str) -> None:
    phone = device(api_url)
    response = phone.login("not-a-token", expect=401)
    assert error_code(response) == "invalid_token"
    response = requests.post(f"{api_url}/v1/sessions", json={"device": IPHONE}, timeout=10)
    assert response.status_code == 401


def test_relogin_on_the_same_device_replaces_its_session(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    first_sid = phone.session_id
    phone.login(id_token)
    assert phone.session_id != first_sid
    sessions = phone.get("/v1/sessions").json()["sessions"]
    assert [s["sessionId"] for s in sessions] == [phone.session_id]


def test_two_devices_list_current_first_then_by_activity(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token, IPHONE)
    pixel = signed_in(api_url, id_token, PIXEL)
    web = signed_in(api_url, id_token, {**CHROME, "platform": "android", "name": "Tablet"})
    listing = phone.get("/v1/sessions")
    assert listing.status_code == 200
    sessions = listing.json()["sessions"]
    assert [s["sessionId"] for s in sessions] == [phone.session_id, web.session_id, pixel.session_id]
    assert [s["isCurrentDevice"] for s in sessions] == [True, False, False]
    assert sessions[2]["deviceType"] == "ANDROID"


def test_current_validates_and_returns_the_callers_session(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    response = phone.get("/v1/sessions/current")
    assert response.status_code == 200
    assert response.json()["sessionId"] == phone.session_id
    assert response.json()["isCurrentDevice"] is True


# --- validation errors ------------------------------------------------------------------------


def test_validation_error_codes(api_url: str, user: tuple[str, str], stack: Any) -> None:
    uid, id_token = user
    phone = signed_in(api_url, id_token)
    assert error_code(requests.get(f"{api_url}/v1/sessions/current", timeout=10)) == "unauthenticated"
    bad = phone.get("/v1/sessions/current", headers={"Authorization": "Bearer abc.def.ghi"})
    assert (bad.status_code, error_code(bad)) == (401, "invalid_token")
    # A device id that is missing or forged is replaced by a fresh one (step 1) and the call refused.
    no_device = requests.get(f"{api_url}/v1/sessions/current",
                             headers={"Authorization": f"Bearer {phone.access_token}"}, timeout=10)
    assert (no_device.status_code, error_code(no_device)) == (401, "unknown_device")
    assert no_device.headers["X-Device-Id"].count(".") == 2
    forged = phone.get("/v1/sessions/current", headers={"X-Device-Id": phone.device_id[:-3] + "abc"})
    assert error_code(forged) == "unknown_device"
    # A valid device id of another device: the token was carried off its device.
    other = signed_in(api_url, id_token, PIXEL)
    moved = phone.get("/v1/sessions/current", headers={"X-Device-Id": other.device_id})
    assert (moved.status_code, error_code(moved)) == (401, "invalid_token")
    # An expired token, signed with the real key.
    with open(stack.env["MYDEVICES_KEYS_FILE"], encoding="utf-8") as handle:
        ring = parse_keyring(json.load(handle))
    payload = jwt.decode(phone.access_token, options={"verify_signature": False})
    old = int(time.time()) - 3600
    claims = access.AccessClaims(uid=uid, sid=payload["sid"], did=payload["did"], iat=old, exp=old + 600)
    expired = access.issue(ring, issuer=payload["iss"], audience=payload["aud"], claims=claims)
    response = phone.get("/v1/sessions/current", headers={"Authorization": f"Bearer {expired}"})
    assert (response.status_code, error_code(response)) == (401, "token_expired")


def test_every_error_is_json_with_a_stable_code(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    cases = [
        (phone.post("/v1/sessions/refresh", data=b"{not json", headers={"Content-Type": "application/json"}),
         400, "invalid_request"),
        (phone.post("/v1/sessions", json={"device": {**IPHONE, "platform": "symbian"}},
                    headers={"Authorization": f"Bearer {id_token}"}), 400, "invalid_request"),
        (phone.post("/v1/sessions", json={"device": {**IPHONE, "name": ""}},
                    headers={"Authorization": f"Bearer {id_token}"}), 400, "invalid_request"),
        (phone.post("/v1/sessions", json={"device": IPHONE, "extra": 1},
                    headers={"Authorization": f"Bearer {id_token}"}), 400, "invalid_request"),
        (phone.post("/v1/sessions", data=b"x" * 100_000, headers={"Content-Type": "application/json"}),
         413, "payload_too_large"),
        (phone.post("/v1/sessions/refresh", data=b'{"refreshToken": "\xff\xfe"}',
                    headers={"Content-Type": "application/json"}), 400, "invalid_request"),
        (phone.get("/v1/nothing-here"), 404, "not_found"),
        (phone.delete("/v1/sessions"), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert error_code(response) == code


# --- refresh ----------------------------------------------------------------------------------


def test_refresh_rotates_and_the_new_pair_works(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    first = phone.refresh()
    assert first.status_code == 200, first.text
    assert first.json()["refreshToken"] != phone.refresh_token
    phone.adopt(first)
    assert phone.get("/v1/sessions/current").status_code == 200
    second = phone.refresh()
    assert second.status_code == 200
    assert second.json()["refreshToken"] != first.json()["refreshToken"]


def test_concurrent_refreshes_with_one_token_get_the_same_answer(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: phone.refresh(), range(2)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    phone.adopt(answers[0])
    assert phone.get("/v1/sessions/current").status_code == 200


def test_an_old_refresh_token_is_a_copied_token_and_signs_the_user_out_everywhere(
    api_url: str, user: tuple[str, str], db: firestore.Client
) -> None:
    uid, id_token = user
    phone = signed_in(api_url, id_token)
    laptop = signed_in(api_url, id_token, PIXEL)
    stolen = phone.refresh_token
    phone.adopt(phone.refresh())
    phone.adopt(phone.refresh())
    replay = phone.refresh(stolen)
    assert (replay.status_code, error_code(replay)) == (401, "token_reused")
    for victim in (phone, laptop):
        response = victim.get("/v1/sessions/current")
        assert (response.status_code, error_code(response)) == (401, "session_revoked")
    events = [e.to_dict() or {} for e in db.collection(f"users/{uid}/securityEvents").stream()]
    assert [e["type"] for e in events] == ["token_reused"]
    reasons = {s.get("revokedReason") for s in db.collection(f"users/{uid}/sessions").stream()}
    assert reasons == {"token_reused"}


def test_the_replaced_refresh_token_after_the_grace_window_is_a_copied_token(
    api_url: str, user: tuple[str, str], stack: Stack
) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    old = phone.refresh_token
    phone.adopt(phone.refresh())
    assert phone.refresh(old).status_code == 200  # inside the window: the same answer again
    stack.clock.advance(GRACE_SECONDS + 1)
    late = phone.refresh(old)
    assert (late.status_code, error_code(late)) == (401, "token_reused")


def test_an_access_token_of_a_replaced_session_is_a_copied_token(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    other = signed_in(api_url, id_token, PIXEL)
    copied = phone.access_token
    phone.login(id_token)  # the device signs in again: its previous session is replaced
    response = phone.get("/v1/sessions/current", headers={"Authorization": f"Bearer {copied}"})
    assert (response.status_code, error_code(response)) == (401, "token_reused")
    assert error_code(other.get("/v1/sessions/current")) == "session_revoked"
    assert error_code(phone.get("/v1/sessions/current")) == "session_revoked"


def test_refresh_errors(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    other = signed_in(api_url, id_token, PIXEL)
    assert error_code(phone.refresh("garbage")) == "invalid_token"
    forged = phone.refresh_token.rsplit(".", 1)[0] + "." + "A" * 43
    assert error_code(phone.refresh(forged)) == "invalid_token"
    wrong_device = requests.post(f"{api_url}/v1/sessions/refresh", json={"refreshToken": phone.refresh_token},
                                 headers={"X-Device-Id": other.device_id}, timeout=10)
    assert (wrong_device.status_code, error_code(wrong_device)) == (401, "invalid_token")
    # The refresh token still works from its own device.
    assert phone.refresh().status_code == 200


# --- closing sessions -------------------------------------------------------------------------


def test_close_another_session(api_url: str, user: tuple[str, str], sign_up: Any) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    pixel = signed_in(api_url, id_token, PIXEL)
    assert error_code(phone.delete(f"/v1/sessions/{phone.session_id}")) == "cannot_revoke_current"
    assert phone.delete(f"/v1/sessions/{phone.session_id}").status_code == 409
    _, stranger_token = sign_up()
    stranger = signed_in(api_url, stranger_token)
    response = phone.delete(f"/v1/sessions/{stranger.session_id}")
    assert (response.status_code, error_code(response)) == (404, "not_found")
    assert stranger.get("/v1/sessions/current").status_code == 200
    closed = phone.delete(f"/v1/sessions/{pixel.session_id}")
    assert closed.status_code == 200
    refused = pixel.get("/v1/sessions/current")
    assert (refused.status_code, error_code(refused)) == (401, "session_revoked")
    assert error_code(pixel.refresh()) == "session_revoked"
    assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 404
    assert [s["sessionId"] for s in phone.get("/v1/sessions").json()["sessions"]] == [phone.session_id]


def test_revoke_others_keeps_only_the_current_session(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    others = [signed_in(api_url, id_token, {**PIXEL, "name": f"Pixel {n}"}) for n in range(3)]
    response = phone.post("/v1/sessions/revoke-others")
    assert response.status_code == 200
    assert response.json() == {"revoked": 3}
    for other in others:
        assert error_code(other.get("/v1/sessions/current")) == "session_revoked"
    assert phone.get("/v1/sessions/current").status_code == 200
    assert phone.post("/v1/sessions/revoke-others").json() == {"revoked": 0}


def test_logout_ends_the_current_session(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    assert phone.post("/v1/sessions/logout").status_code == 200
    assert error_code(phone.get("/v1/sessions/current")) == "session_revoked"
    assert error_code(phone.refresh()) == "session_revoked"


def test_push_token_rotation_is_stored_with_the_secrets(
    api_url: str, user: tuple[str, str], db: firestore.Client
) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token, push="old-token")
    response = phone.put("/v1/sessions/current/push-token", json={"token": "new-token", "provider": "fcm"})
    assert response.status_code == 200
    secret = db.document(f"sessionSecrets/{phone.session_id}").get().to_dict()
    assert secret is not None and secret["pushToken"] == "new-token"
    assert error_code(phone.put("/v1/sessions/current/push-token", json={"token": ""})) == "invalid_request"


# --- keys, location, web ----------------------------------------------------------------------


def test_another_backend_verifies_access_tokens_with_the_jwks(api_url: str, user: tuple[str, str]) -> None:
    uid, id_token = user
    phone = signed_in(api_url, id_token)
    client = jwt.PyJWKClient(f"{api_url}/.well-known/jwks.json")
    key = client.get_signing_key_from_jwt(phone.access_token)
    claims = jwt.decode(phone.access_token, key, algorithms=["EdDSA"], audience="mydevices-api", issuer="mydevices")
    assert (claims["sub"], claims["sid"]) == (uid, phone.session_id)


def test_location_comes_from_the_client_ip_through_one_trusted_proxy(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    london = device(api_url)
    data = london.login(id_token, headers={"X-Forwarded-For": f"10.1.1.1, {LONDON_IP}"}).json()
    assert data["session"]["location"] == "London, United Kingdom"
    # Only the hop our proxy added counts: whatever the client put to its left is ignored.
    spoofed = device(api_url, PIXEL)
    data = spoofed.login(id_token, headers={"X-Forwarded-For": f"{LONDON_IP}, 192.168.1.20"}).json()
    assert data["session"]["location"] is None
    sweden = device(api_url, CHROME)
    data = sweden.login(id_token, headers={"X-Forwarded-For": "2001:db9::7"}).json()
    assert data["session"]["location"] == "Sweden"


def test_web_login_uses_strict_host_cookies_and_hides_tokens_from_script(api_url: str, user: tuple[str, str]) -> None:
    _, id_token = user
    browser = requests.Session()
    response = browser.post(f"{api_url}/v1/sessions", json={"device": CHROME},
                            headers={"Authorization": f"Bearer {id_token}"}, timeout=10)
    assert response.status_code == 201
    body = response.json()
    assert "refreshToken" not in body and "accessToken" not in body
    cookies = response.raw.headers.getlist("Set-Cookie")
    names = sorted(c.split("=", 1)[0] for c in cookies)
    assert names == ["__Host-mydevices-at", "__Host-mydevices-did", "__Host-mydevices-rt"]
    for cookie in cookies:
        flags = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite", "path"} <= set(flags)
        assert flags["samesite"].strip() == "SameSite=Strict"
        assert flags["path"].strip() == "Path=/"
        assert "domain" not in flags
    # requests will not send Secure cookies over http; a browser on localhost would. Send them as a browser does.
    jar = {c.split("=", 1)[0]: c.split("=", 1)[1].split(";", 1)[0] for c in cookies}
    cookie_header = "; ".join(f"{k}={v}" for k, v in jar.items())
    current = requests.get(f"{api_url}/v1/sessions/current", headers={"Cookie": cookie_header}, timeout=10)
    assert current.status_code == 200 and current.json()["deviceType"] == "WEB"
    same_origin = {"Cookie": cookie_header, "Sec-Fetch-Site": "same-origin"}  # what a browser adds (test_web_cookies)
    refreshed = requests.post(f"{api_url}/v1/sessions/refresh", headers=same_origin, timeout=10)
    assert refreshed.status_code == 200
    assert "refreshToken" not in refreshed.json()
    assert any(c.startswith("__Host-mydevices-rt=") for c in refreshed.raw.headers.getlist("Set-Cookie"))
    logout = requests.post(f"{api_url}/v1/sessions/logout", headers=same_origin, timeout=10)
    assert logout.status_code == 200
    cleared = [c for c in logout.raw.headers.getlist("Set-Cookie") if "Max-Age=0" in c]
    assert sorted(c.split("=", 1)[0] for c in cleared) == ["__Host-mydevices-at", "__Host-mydevices-rt"]


# --- outage -----------------------------------------------------------------------------------


def test_firestore_outage_gives_503_with_retry_after_then_recovers(api_url: str, user: tuple[str, str],
                                                                     stack: Any) -> None:
    _, id_token = user
    phone = signed_in(api_url, id_token)
    assert phone.get("/v1/sessions").status_code == 200
    stack.firestore.stop(kill=True)
    try:
        down = phone.get("/v1/sessions")
        assert down.status_code == 503, down.text
        assert error_code(down) == "unavailable"
        assert int(down.headers["Retry-After"]) > 0
    finally:
        stack.firestore.start().wait_ready()
    # Everything was lost with the in-memory emulator: sign in again, and it works at once.
    deadline = time.time() + 30
    while True:
        again = device(api_url)
        response = requests.post(f"{api_url}/v1/sessions", json={"device": IPHONE},
                                 headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
        if response.status_code == 201 or time.time() > deadline:
            break
        assert response.status_code == 503
        time.sleep(0.5)
    assert response.status_code == 201, response.text
    again.device_id = response.json()["deviceId"]
    again.access_token = response.json()["accessToken"]
    assert again.get("/v1/sessions/current").status_code == 200
