"""Firebase-native sessions: the custom token from login, `hasActiveSession()` in the real
firestore.rules on the Firestore emulator, the callables as the Firebase SDK calls them, and
`require_session` with a Firebase ID token.

An "app" here does what the Firebase SDK does: it logs in through the API, signs in to the Auth
emulator with the custom token (`accounts:signInWithCustomToken`), and then talks to Firestore's
REST API and to the callables with the resulting ID token.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import requests

from infra.local.stack import FunctionServer, Stack, free_port
from support.devices import CHROME, IPHONE, PIXEL, Device, doc_url, error_code, sign_in_with_custom_token
from support.serving import function_server

REGION = "us-central1"


# --- an app signed in to Firebase with its login's custom token ---------------------------------


def claims_of(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def crafted_id_token(stack: Stack, uid: str, **claims: str) -> str:
    """An ID token for `uid` carrying whatever claims, from a custom token minted with firebase-admin."""
    from firebase_admin import auth

    from mydevices.firebase_app import app

    custom = auth.create_custom_token(uid, claims, app=app())
    return sign_in_with_custom_token(stack, custom.decode() if isinstance(custom, bytes) else custom)[0]


@dataclass
class App:
    """One install: a My Devices session plus the Firebase sign-in made with its custom token."""

    stack: Stack
    device: Device
    uid: str = ""
    id_token: str = ""
    firebase_refresh_token: str = ""
    login_body: dict[str, Any] = field(default_factory=dict)

    def login(self, uid: str, firebase_login_token: str) -> App:
        self.uid = uid
        self.login_body = self.device.login(firebase_login_token).json()
        self.id_token, self.firebase_refresh_token = sign_in_with_custom_token(
            self.stack, self.login_body["firebaseCustomToken"]
        )
        return self

    @property
    def sid(self) -> str:
        return self.device.session_id

    def refresh_firebase(self) -> None:
        """The Firebase SDK's own hourly refresh (securetoken), done now."""
        answer = requests.post(
            f"http://{self.stack.auth.host}/securetoken.googleapis.com/v1/token?key=any",
            data={"grant_type": "refresh_token", "refresh_token": self.firebase_refresh_token}, timeout=30,
        )
        assert answer.status_code == 200, answer.text
        self.id_token, self.firebase_refresh_token = answer.json()["id_token"], answer.json()["refresh_token"]


def signed_in_app(stack: Stack, api: str, uid: str, login_token: str, spec: dict[str, Any] = IPHONE) -> App:
    return App(stack, Device(api, dict(spec))).login(uid, login_token)


# --- Firestore through its REST API, as a client SDK (rules apply to end-user tokens) -----------


def read(stack: Stack, path: str, id_token: str) -> int:
    return requests.get(doc_url(stack, path), headers={"Authorization": f"Bearer {id_token}"},
                        timeout=30).status_code


def write(stack: Stack, path: str, id_token: str, text: str = "hello") -> int:
    body = {"fields": {"text": {"stringValue": text}}}
    return requests.patch(doc_url(stack, path), json=body, headers={"Authorization": f"Bearer {id_token}"},
                          timeout=30).status_code


def note(uid: str) -> str:
    return f"notes/{uid}/items/{secrets.token_hex(4)}"


# --- the callables, as the Firebase SDK calls them ------------------------------------------------


callables = function_server("callables")


def call(server: FunctionServer, name: str, id_token: str | None, data: Any = None,
         project: str = "demo-mydevices") -> requests.Response:
    """httpsCallable(name)(data) through connectFunctionsEmulator: POST {"data"} to /<project>/<region>/<name>."""
    headers = {"Authorization": f"Bearer {id_token}"} if id_token else {}
    return requests.post(f"{server.url}/{project}/{REGION}/{name}", json={"data": data}, headers=headers, timeout=30)


def call_error(response: requests.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["status"], error["details"]["code"]


# --- login hands out the custom token -------------------------------------------------------------


def test_login_returns_a_custom_token_whose_firebase_session_names_this_session_and_device(
    stack: Stack, api: str, sign_up: Any
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token)
    raw_device_id = phone.device.device_id.split(".")[0]
    claims = claims_of(phone.id_token)
    assert (claims["sub"], claims["sid"], claims["did"]) == (uid, phone.sid, raw_device_id)
    phone.refresh_firebase()  # Firebase's own refresh keeps the claims
    assert (claims_of(phone.id_token)["sid"], claims_of(phone.id_token)["did"]) == (phone.sid, raw_device_id)
    # The token is for logins only: a refresh of our tokens does not hand out another.
    refreshed = phone.device.refresh()
    assert refreshed.status_code == 200 and "firebaseCustomToken" not in refreshed.json()


def test_a_web_login_gets_the_custom_token_in_the_body_and_never_in_a_cookie(
    stack: Stack, api: str, sign_up: Any
) -> None:
    uid, login_token = sign_up()
    plain = requests.post(f"{api}/v1/sessions", json={"device": CHROME},
                          headers={"Authorization": f"Bearer {login_token}"}, timeout=30)
    assert plain.status_code == 201 and "firebaseCustomToken" not in plain.json()  # script sees no credential
    response = requests.post(f"{api}/v1/sessions", json={"device": CHROME, "firebaseCustomToken": True},
                             headers={"Authorization": f"Bearer {login_token}"}, timeout=30)
    assert response.status_code == 201
    custom_token = response.json()["firebaseCustomToken"]
    assert sorted(c.split("=", 1)[0] for c in response.raw.headers.getlist("Set-Cookie")) == [
        "__Host-mydevices-at", "__Host-mydevices-did", "__Host-mydevices-rt"
    ]
    assert all(custom_token not in c for c in response.raw.headers.getlist("Set-Cookie"))
    id_token, _ = sign_in_with_custom_token(stack, custom_token)
    assert claims_of(id_token)["sid"] == response.json()["session"]["sessionId"]
    assert write(stack, note(uid), id_token) == 200


# --- hasActiveSession() in firestore.rules --------------------------------------------------------


def test_a_closed_session_loses_firestore_access_at_its_next_request_and_other_devices_keep_theirs(
    stack: Stack, api: str, sign_up: Any
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token, IPHONE)
    pixel = signed_in_app(stack, api, uid, login_token, PIXEL)
    phones_note, pixels_note = note(uid), note(uid)
    assert write(stack, phones_note, phone.id_token) == 200
    assert write(stack, pixels_note, pixel.id_token) == 200
    assert read(stack, phones_note, pixel.id_token) == 200

    assert phone.device.delete(f"/v1/sessions/{pixel.sid}").status_code == 200

    assert read(stack, pixels_note, pixel.id_token) == 403
    assert write(stack, pixels_note, pixel.id_token, "still here?") == 403
    pixel.refresh_firebase()  # Firebase itself knows nothing of the closed session ...
    assert read(stack, pixels_note, pixel.id_token) == 403  # ... the rules do
    # Nor can it still watch the account's device list: it learns why from the API (401
    # session_revoked) or its force_logout push, not from Firestore.
    assert read(stack, f"users/{uid}/sessions/{pixel.sid}", pixel.id_token) == 403
    assert read(stack, f"users/{uid}/sessions/{phone.sid}", pixel.id_token) == 403
    assert read(stack, f"users/{uid}/sessions/{phone.sid}", phone.id_token) == 200
    assert read(stack, pixels_note, phone.id_token) == 200
    assert write(stack, phones_note, phone.id_token, "still mine") == 200


def test_logout_and_a_newer_login_on_the_same_device_end_the_old_firebase_access(
    stack: Stack, api: str, sign_up: Any
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token)
    path = note(uid)
    assert write(stack, path, phone.id_token) == 200
    old_id_token = phone.id_token
    phone.login(uid, login_token)  # same device (same X-Device-Id): replaces its session
    assert read(stack, path, old_id_token) == 403
    assert read(stack, path, phone.id_token) == 200
    assert phone.device.post("/v1/sessions/logout").status_code == 200
    assert read(stack, path, phone.id_token) == 403


def test_a_token_without_the_claims_or_naming_another_session_or_device_is_denied(
    stack: Stack, api: str, sign_up: Any
) -> None:
    alice, alice_login = sign_up()
    bob, bob_login = sign_up()
    alice_phone = signed_in_app(stack, api, alice, alice_login)
    bob_phone = signed_in_app(stack, api, bob, bob_login, PIXEL)
    alice_did = claims_of(alice_phone.id_token)["did"]
    bob_did = claims_of(bob_phone.id_token)["did"]
    alices_note, bobs_note = note(alice), note(bob)
    assert write(stack, alices_note, alice_phone.id_token) == 200

    # A plain Firebase sign-in (no My Devices login): no sid, no did.
    assert read(stack, alices_note, alice_login) == 403
    assert write(stack, note(alice), alice_login) == 403
    # Bob with Alice's session and device ids: neither his notes nor hers.
    bob_as_alice = crafted_id_token(stack, bob, sid=alice_phone.sid, did=alice_did)
    assert write(stack, bobs_note, bob_as_alice) == 403
    assert read(stack, alices_note, bob_as_alice) == 403
    # Alice's own session id, but another device's id.
    wrong_device = crafted_id_token(stack, alice, sid=alice_phone.sid, did=bob_did)
    assert read(stack, alices_note, wrong_device) == 403
    # The same crafting with the right claims is let in: the refusals above are the claims' doing.
    assert read(stack, alices_note, crafted_id_token(stack, alice, sid=alice_phone.sid, did=alice_did)) == 200
    assert write(stack, bobs_note, bob_phone.id_token) == 200


# --- the callables ----------------------------------------------------------------------------------


def test_the_callables_list_revoke_revoke_others_and_logout(
    stack: Stack, api: str, sign_up: Any, callables: FunctionServer
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token, IPHONE)
    pixel = signed_in_app(stack, api, uid, login_token, PIXEL)
    tablet = signed_in_app(stack, api, uid, login_token, {**PIXEL, "name": "Tablet"})
    laptop = signed_in_app(stack, api, uid, login_token, {**PIXEL, "name": "Laptop"})

    listed = call(callables, "sessions_list", phone.id_token)
    assert listed.status_code == 200, listed.text
    sessions = listed.json()["result"]["sessions"]
    assert [s["sessionId"] for s in sessions][0] == phone.sid and sessions[0]["isCurrentDevice"] is True
    assert {s["sessionId"] for s in sessions} == {phone.sid, pixel.sid, tablet.sid, laptop.sid}

    revoked = call(callables, "sessions_revoke", phone.id_token, {"sessionId": pixel.sid})
    assert revoked.json() == {"result": {"sessionId": pixel.sid, "revoked": True}}
    assert call_error(call(callables, "sessions_list", pixel.id_token)) == (401, "UNAUTHENTICATED", "session_revoked")
    assert call_error(call(callables, "sessions_revoke", phone.id_token, {"sessionId": pixel.sid})) == (
        404, "NOT_FOUND", "not_found")
    assert call_error(call(callables, "sessions_revoke", phone.id_token, {"sessionId": phone.sid})) == (
        400, "FAILED_PRECONDITION", "cannot_revoke_current")

    assert call(callables, "sessions_revoke_others", tablet.id_token).json() == {"result": {"revoked": 2}}
    assert call_error(call(callables, "sessions_list", phone.id_token))[2] == "session_revoked"
    assert read(stack, note(uid), laptop.id_token) == 403

    assert call(callables, "sessions_logout", tablet.id_token, {}).json() == {"result": {"loggedOut": True}}
    assert call_error(call(callables, "sessions_list", tablet.id_token)) == (401, "UNAUTHENTICATED", "session_revoked")
    assert tablet.device.get("/v1/sessions/current").status_code == 401  # the API agrees


def test_callables_answer_protocol_errors_in_the_protocol(
    stack: Stack, api: str, sign_up: Any, callables: FunctionServer
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token)
    url = f"{callables.url}/demo-mydevices/{REGION}/sessions_revoke"
    bearer = {"Authorization": f"Bearer {phone.id_token}"}

    def refused(response: requests.Response) -> tuple[int, str, str]:
        assert "Traceback" not in response.text
        return call_error(response)

    assert refused(requests.get(url, headers=bearer, timeout=30))[:2] == (400, "INVALID_ARGUMENT")
    assert refused(requests.post(url, data="data=1", headers={**bearer, "Content-Type": "text/plain"},
                                 timeout=30))[:2] == (400, "INVALID_ARGUMENT")
    assert refused(requests.post(url, data="{", headers={**bearer, "Content-Type": "application/json"},
                                 timeout=30))[:2] == (400, "INVALID_ARGUMENT")
    assert refused(requests.post(url, json={"sessionId": "x"}, headers=bearer, timeout=30))[:2] == (
        400, "INVALID_ARGUMENT")
    for data in (None, {"sessionId": 7}, {"sessionId": "../x"}, {"sessionId": phone.sid, "extra": 1}, ["x"]):
        assert refused(call(callables, "sessions_revoke", phone.id_token, data))[:2] == (400, "INVALID_ARGUMENT")
    assert refused(call(callables, "sessions_list", phone.id_token, {"all": True}))[:2] == (400, "INVALID_ARGUMENT")

    assert refused(call(callables, "sessions_list", None)) == (401, "UNAUTHENTICATED", "unauthenticated")
    assert refused(call(callables, "sessions_list", login_token)) == (401, "UNAUTHENTICATED", "invalid_token")
    assert refused(call(callables, "sessions_list", phone.device.access_token))[:2] == (401, "UNAUTHENTICATED")
    someone = crafted_id_token(stack, sign_up()[0], sid=phone.sid, did=claims_of(phone.id_token)["did"])
    assert refused(call(callables, "sessions_list", someone)) == (401, "UNAUTHENTICATED", "invalid_token")
    assert refused(call(callables, "sessions_rename", phone.id_token)) == (404, "NOT_FOUND", "not_found")

    preflight = requests.options(url, headers={"Origin": "https://app.example", "Access-Control-Request-Method":
                                 "POST", "Access-Control-Request-Headers": "authorization,content-type"}, timeout=30)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert call(callables, "sessions_list", phone.id_token).headers["Access-Control-Allow-Origin"] == "*"


def test_a_callable_answers_unavailable_with_retry_after_while_firestore_is_unreachable(
    stack: Stack, api: str, sign_up: Any
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token)
    cut_off = stack.start_function("callables", "http", {
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}",  # nothing listens there
        "MYDEVICES_FIRESTORE_TIMEOUT_SECONDS": "1",
    })
    try:
        answer = call(cut_off, "sessions_list", phone.id_token)
    finally:
        cut_off.stop()
    assert call_error(answer) == (503, "UNAVAILABLE", "unavailable")
    assert int(answer.headers["Retry-After"]) > 0


def test_each_callable_is_also_its_own_entry_point_at_the_name_the_sdk_calls(
    stack: Stack, api: str, sign_up: Any
) -> None:
    """Deployed, https://<region>-<project>.cloudfunctions.net/sessions_list reaches the function
    `sessions_list` at `/`. Called in this process (with the stack's emulators) to spare a server."""
    import flask

    import main

    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token)
    pixel = signed_in_app(stack, api, uid, login_token, PIXEL)

    def invoke(name: str, data: Any) -> Any:
        request = {"path": "/", "method": "POST", "json": {"data": data},
                   "headers": {"Authorization": f"Bearer {phone.id_token}"}}
        with flask.Flask(__name__).test_request_context(**request):
            return getattr(main, name)(flask.request).get_json()

    assert {s["sessionId"] for s in invoke("sessions_list", None)["result"]["sessions"]} == {phone.sid, pixel.sid}
    assert invoke("sessions_revoke", {"sessionId": pixel.sid})["result"]["revoked"] is True
    assert invoke("sessions_revoke_others", None) == {"result": {"revoked": 0}}
    assert invoke("sessions_logout", None) == {"result": {"loggedOut": True}}
    assert invoke("sessions_list", None)["error"]["status"] == "UNAUTHENTICATED"


# --- require_session with a Firebase ID token --------------------------------------------------------


def test_require_session_takes_a_firebase_id_token_bound_to_its_device_by_its_claim(
    stack: Stack, api: str, sign_up: Any, guarded_url: str
) -> None:
    uid, login_token = sign_up()
    phone = signed_in_app(stack, api, uid, login_token, IPHONE)
    pixel = signed_in_app(stack, api, uid, login_token, PIXEL)

    def orders(id_token: str, device_id: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {id_token}"}
        if device_id:
            headers["X-Device-Id"] = device_id
        return requests.get(f"{guarded_url}/orders", headers=headers, timeout=30)

    assert orders(phone.id_token).json() == {"uid": uid, "sessionId": phone.sid, "path": "/orders"}
    assert orders(phone.id_token, phone.device.device_id).status_code == 200
    mismatch = orders(phone.id_token, pixel.device.device_id)
    assert (mismatch.status_code, error_code(mismatch)) == (401, "invalid_token")
    plain = orders(login_token)
    assert (plain.status_code, error_code(plain)) == (401, "invalid_token")
    assert orders(pixel.id_token).status_code == 200
    assert phone.device.delete(f"/v1/sessions/{pixel.sid}").status_code == 200
    closed = orders(pixel.id_token)
    assert (closed.status_code, error_code(closed)) == (401, "session_revoked")
    # The API's own validation is the same one.
    current = requests.get(f"{api}/v1/sessions/current", headers={"Authorization": f"Bearer {phone.id_token}"},
                           timeout=30)
    assert current.status_code == 200 and current.json()["sessionId"] == phone.sid
