"""Hostile requests against the live `api` function: the OpenAPI document, schemathesis, and the
explicit cases that need the live server (body framing, huge bodies refused unread, the body of a
route that validates first, hostile device names stored; tests/unit/test_request_bodies.py has the rest).

docs/openapi.yaml is the contract: the first test holds it to functions/main.py's ROUTES, then
schemathesis generates requests from it (valid and invalid, deterministic, bounded per operation)
and every answer must be a status the document lists for that operation, never a 5xx.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec

from infra.local.stack import Stack
from support import ROOT
from support.devices import IPHONE, PIXEL, Device
from support.hostile_bodies import BAD_BYTES, WRONG_CONTENT_TYPES, nested

SPEC = ROOT / "docs" / "openapi.yaml"
# Fuzzing examples per operation (the coverage phase adds its boundary cases on top). Operations
# without a body or parameters have little to vary, so they get a handful; the rest get more.
MAX_EXAMPLES = 5
MAX_EXAMPLES_WITH_INPUT = 25
WITH_INPUT = ["login", "refresh", "setPushToken", "respondToAlert", "closeSession"]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

def _device_key() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {name: base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()
            for name, value in (("x", numbers.x), ("y", numbers.y))}


DEVICE_KEY = _device_key()

schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict({
        "generation": {
            "mode": "all",  # documents that fit the schema and documents that do not
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,  # the same cases every run: a failure here is reproducible
            "database": "none",  # no .hypothesis/ directory in the repository
        },
        "phases": {"stateful": {"enabled": False}},
        # An invalid body may be refused for its size before anything else is looked at.
        "checks": {"negative_data_rejection": {
            "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429],
        }},
        "operations": [{"include-operation-id": WITH_INPUT, "generation": {"max-examples": MAX_EXAMPLES_WITH_INPUT}}],
    }),
)


def _spec() -> dict[str, Any]:
    return dict(schema.raw_schema)


# --- schemathesis against the live function ---------------------------------------------------


@dataclass
class FuzzTarget:
    """Credentials for generated requests, so they reach past 401, and what the run produced.

    Three users keep the operations from undoing each other: `owner` (login, list, current,
    push token, close, revoke-others), `rotator` (refresh: its valid token is substituted into
    schema-valid bodies and the chain is followed), `leaver` (logout: a fresh session per case).
    """

    url: str
    owner: Device
    owner_id_token: str
    login_device_id: str
    rotator: Device
    rotator_id_token: str
    leaver_id_token: str
    documented: dict[str, set[str]]
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    as_documented: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def headers_for(self, case: schemathesis.Case) -> dict[str, str]:
        label = case.operation.label
        if label == "POST /v1/sessions":
            # A device of its own: each login replaces the previous one instead of piling up.
            if case.meta is not None and case.meta.generation.mode.is_positive and isinstance(case.body, dict) \
                    and isinstance(key := case.body.get("devicePublicKey"), dict):
                # The schema cannot say "a point on P-256": a real key's coordinates.
                key.update(DEVICE_KEY)
            return {"Authorization": f"Bearer {self.owner_id_token}", "X-Device-Id": self.login_device_id}
        if label == "POST /v1/sessions/refresh":
            if case.meta is not None and case.meta.generation.mode.is_positive and isinstance(case.body, dict) \
                    and isinstance(case.body.get("refreshToken"), str):
                case.body["refreshToken"] = self.rotator.refresh_token
            return {"X-Device-Id": self.rotator.device_id}
        if label == "POST /v1/sessions/logout":
            leaver = Device(self.url, dict(PIXEL))
            leaver.login(self.leaver_id_token)
            return leaver.headers()
        if label in ("POST /v1/alerts/respond", "GET /.well-known/jwks.json"):
            return {}
        return self.owner.headers()

    def documents(self, case: schemathesis.Case, status: int) -> bool:
        """Whether the document promises `status` for this request. Another method on a documented
        path (schemathesis tries those too) is 405 for every path (the document's introduction)."""
        if case.method.upper() != case.operation.method.upper():
            return status == 405
        return str(status) in self.documented[case.operation.label]

    def record(self, case: schemathesis.Case, response: schemathesis.Response) -> None:
        label = case.operation.label
        with self.lock:
            self.statuses.setdefault(label, Counter())[response.status_code] += 1
            self.as_documented += self.documents(case, response.status_code)
        if label == "POST /v1/sessions/refresh":
            answer = response.json()
            if response.status_code == 200 and "refreshToken" in answer:
                self.rotator.access_token, self.rotator.refresh_token = answer["accessToken"], answer["refreshToken"]
            elif response.status_code == 401 and answer["error"]["code"] in ("token_reused", "session_revoked"):
                self.rotator.login(self.rotator_id_token)

    def summary(self) -> str:
        total = sum(sum(c.values()) for c in self.statuses.values())
        documented = self.as_documented
        per_op = "; ".join(f"{label}: {dict(sorted(c.items()))}" for label, c in sorted(self.statuses.items()))
        return f"schemathesis: {total} generated requests, {documented} answered as documented ({per_op})"


@pytest.fixture(scope="module")
def fuzz_target(stack: Stack, request: pytest.FixtureRequest) -> Iterator[FuzzTarget]:
    server = stack.start_function("api", "http")
    try:
        _, owner_token = stack.auth.sign_up()
        _, rotator_token = stack.auth.sign_up()
        _, leaver_token = stack.auth.sign_up()
        owner = Device(server.url, dict(IPHONE))
        owner.login(owner_token)
        login_device = Device(server.url, dict(PIXEL))
        login_device.login(owner_token)
        rotator = Device(server.url, dict(PIXEL))
        rotator.login(rotator_token)
        documented = {
            f"{method.upper()} {path}": set(operation["responses"])
            for path, item in _spec()["paths"].items()
            for method, operation in item.items() if method in METHODS
        }
        target = FuzzTarget(server.url, owner, owner_token, login_device.device_id, rotator, rotator_token,
                            leaver_token, documented)
        yield target
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None and capture is not None and target.statuses:
            with capture.global_and_fixture_disabled():
                reporter.write_line(target.summary())
    finally:
        server.stop()


@schema.parametrize()
def test_every_generated_request_gets_a_documented_answer(case: schemathesis.Case, fuzz_target: FuzzTarget) -> None:
    # The document's cookies come from a browser, which says where a request comes from: without
    # this header every generated cookie request that changes state would stop at 403
    # cross_site_request (tests/web/test_web_cookies.py) and never reach a handler.
    headers = {"Sec-Fetch-Site": "same-origin", **fuzz_target.headers_for(case)}
    response = case.call(base_url=fuzz_target.url, headers=headers, timeout=30)
    fuzz_target.record(case, response)
    assert response.status_code < 500, response.text
    assert fuzz_target.documents(case, response.status_code), (case.method, response.status_code, response.text)
    if response.status_code == 405:
        assert case.operation.method.upper() in response.headers["allow"][0]  # schemathesis: lower case, lists
    case.validate_response(response, headers=headers)


# --- explicit hostile requests ----------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
BODY_ROUTES = [
    ("POST", "/v1/sessions"),
    ("POST", "/v1/sessions/refresh"),
    ("PUT", "/v1/sessions/current/push-token"),
    ("POST", "/v1/alerts/respond"),
]
# The route that reads its body only after validating the session, which needs the stack; the
# others read it first, and tests/unit/test_request_bodies.py covers them in-process.
AFTER_VALIDATION = [("PUT", "/v1/sessions/current/push-token")]


@pytest.fixture(scope="module")
def phone(api: str, stack: Stack) -> tuple[Device, str]:
    """A signed-in phone (its credentials reach every body-reading route) and its ID token."""
    _, id_token = stack.auth.sign_up()
    device = Device(api, dict(IPHONE))
    device.login(id_token)
    return device, id_token


def _send(phone: tuple[Device, str], method: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    device, id_token = phone
    sent = device.headers()
    if path == "/v1/sessions":
        sent["Authorization"] = f"Bearer {id_token}"
    sent.update(headers)
    return device.http.request(method, f"{device.base}{path}", data=body, headers=sent, timeout=30)


def _assert_error(response: requests.Response, status: int, code: str) -> None:
    assert (response.status_code, response.headers["Content-Type"]) == (status, "application/json"), response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json()["error"]["code"] == code
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize(("method", "path"), AFTER_VALIDATION)
@pytest.mark.parametrize("content_type", WRONG_CONTENT_TYPES, ids=lambda c: c or "none")
def test_a_body_that_is_not_json_is_refused_with_415(
    phone: tuple[Device, str], method: str, path: str, content_type: str | None
) -> None:
    body = b'{"device": {"name": "x", "platform": "ios"}, "refreshToken": "x", "token": "x"}'
    headers = {} if content_type is None else {"Content-Type": content_type}
    _assert_error(_send(phone, method, path, body, headers), 415, "unsupported_media_type")


@pytest.mark.parametrize(("method", "path"), AFTER_VALIDATION)
@pytest.mark.parametrize("body", BAD_BYTES.values(), ids=BAD_BYTES.keys())
def test_a_body_that_is_not_utf8_text_is_refused_with_400(
    phone: tuple[Device, str], method: str, path: str, body: bytes
) -> None:
    _assert_error(_send(phone, method, path, body, JSON), 400, "invalid_request")


@pytest.mark.parametrize(("method", "path"), AFTER_VALIDATION)
@pytest.mark.parametrize("body", [nested(33), nested(2000), b"[" * 8000 + b"]" * 8000], ids=["33", "2000", "8000"])
def test_deeply_nested_json_is_refused_with_400(phone: tuple[Device, str], method: str, path: str, body: bytes) -> None:
    response = _send(phone, method, path, body, JSON)
    _assert_error(response, 400, "invalid_request")


def _raw_exchange(url: str, head: bytes, first_part: bytes, *, hang_up: bool = False) -> bytes:
    """Send a request head and only the start of its body, then read what the server answers
    before the rest ever comes. A server that waited for the whole body would never answer.
    `hang_up`: stop sending (half-close) after `first_part`, as a client cut off mid-body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(head + first_part)
        if hang_up:
            conn.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received or len(received) < received.index(b"\r\n\r\n") + 4 + _length(received):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _length(received: bytes) -> int:
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", received)
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize(("method", "path"), [
    *BODY_ROUTES, ("GET", "/v1/sessions"), ("POST", "/v1/sessions/logout"), ("PATCH", "/v1/nowhere"),
])
def test_a_10_mb_body_is_refused_with_413_before_it_is_read(api: str, method: str, path: str) -> None:
    ten_mb = 10 * 1024 * 1024
    head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {ten_mb}\r\n\r\n").encode()
    answer = _raw_exchange(api, head, b'{"device": {"name": "' + b"x" * 1000)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:300]
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "payload_too_large"


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(api: str) -> None:
    chunk = b"x" * 8192
    head = (b"POST /v1/alerts/respond HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4))  # 32 KiB, never terminated
    answer = _raw_exchange(api, head, framed)
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"413", answer[:300]


def _chunked_head(phone: tuple[Device, str], method: str, path: str) -> bytes:
    """A chunked request's head with the phone's credentials (its ID token for a login)."""
    device, id_token = phone
    headers = device.headers({"Authorization": f"Bearer {id_token}"} if path == "/v1/sessions" else None)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n{lines}\r\n").encode()


def _parsed(answer: bytes) -> tuple[int, dict[str, str], Any]:
    """(status, headers with lower-case names, JSON body) of a raw HTTP/1.1 answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body[:_length(answer)])


MALFORMED_CHUNKED = {
    "size-not-hex": b'zz\r\n{"answer": "yes"}\r\n0\r\n\r\n',
    "negative-size": b'-5\r\n{"answer": "yes"}\r\n0\r\n\r\n',
    "chunk-longer-than-declared": b'2\r\n{"answer": "yes"}\r\n0\r\n\r\n',
    "cut-off-mid-chunk": b'40\r\n{"answer": ',
}


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("body", MALFORMED_CHUNKED.values(), ids=MALFORMED_CHUNKED.keys())
def test_a_malformed_chunked_body_is_a_json_400(phone: tuple[Device, str], method: str, path: str,
                                                body: bytes) -> None:
    """Broken chunked framing (what the server's chunk decoder refuses) is the client's error:
    our JSON 400, never the 500 of the decoder's exception escaping."""
    answer = _raw_exchange(phone[0].base, _chunked_head(phone, method, path), body,
                           hang_up=body == MALFORMED_CHUNKED["cut-off-mid-chunk"])
    status, headers, error = _parsed(answer)
    assert (status, headers.get("content-type")) == (400, "application/json"), answer[:500]
    assert error["error"]["code"] == "invalid_request" and set(error["error"]) == {"code", "message"}


def test_a_well_formed_chunked_body_still_works(api: str, stack: Stack) -> None:
    """The same framing done right: a login and a refresh, each body in several chunks."""
    phone = Device(api, dict(PIXEL))
    _, id_token = stack.auth.sign_up()

    def chunked(path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        framed = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
        return _parsed(_raw_exchange(api, _chunked_head((phone, id_token), "POST", path), framed + b"0\r\n\r\n"))

    status, _, login = chunked("/v1/sessions", json.dumps({"device": PIXEL}).encode())
    assert status == 201, login
    phone.device_id, phone.refresh_token = login["deviceId"], login["refreshToken"]
    status, _, refreshed = chunked("/v1/sessions/refresh", json.dumps({"refreshToken": phone.refresh_token}).encode())
    assert status == 200 and refreshed["refreshToken"] != phone.refresh_token, refreshed


NAMES = {
    "emoji": "👩🏽‍💻 Ayşe’s 📱 🏳️‍🌈",
    "arabic": "هاتف سارة",
    "hebrew-mixed": "הטלפון של דנה (Pixel 8)",
    "right-to-left-override": "Pixel \u202egnp.exe",
    "decomposed-accent": "Re\u0301my’s iPad",  # NFD: must not come back composed
    "cjk-and-zero-width": "田中さんの\u200biPhone",
    "html": "<img src=x onerror=alert(1)>",
    "script-and-quotes": "</script><script>alert(\"x\")</script>'--",
    "100-characters": "é" * 100,
}


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_device_names_are_stored_and_returned_exactly(api: str, stack: Stack, name: str) -> None:
    uid, id_token = stack.auth.sign_up()
    device = Device(api, {"name": name, "platform": "android", "model": name[:64]})
    login = device.login(id_token)
    assert login.json()["session"]["deviceName"] == name
    listing = device.get("/v1/sessions")
    assert listing.status_code == 200
    assert listing.headers["Content-Type"] == "application/json"
    assert listing.headers["X-Content-Type-Options"] == "nosniff"
    # Byte for byte: the name's UTF-8 is in the answer, with only the escapes JSON requires (`"`),
    # no \u escapes, no HTML entities, no Unicode normalization.
    assert json.dumps(name, ensure_ascii=False).encode() in listing.content
    [session] = listing.json()["sessions"]
    assert (session["deviceName"], session["model"]) == (name, name[:64])
    from google.cloud import firestore

    stored = firestore.Client(project=stack.project).document(f"users/{uid}/sessions/{device.session_id}").get()
    assert stored.get("deviceName") == name


HOSTILE_SESSION_PATHS = {
    "firestore-reserved-id": ("/v1/sessions/__AAAAAAAAAAAAAAAAAA__", 404, "not_found"),
    "encoded-traversal": ("/v1/sessions/..%2F..%2FsessionSecrets%2Fx", 404, "not_found"),
    "dot-dot": ("/v1/sessions/..", 404, "not_found"),
    "sixty-five-characters": ("/v1/sessions/" + "A" * 65, 404, "not_found"),
    "a-sibling-path": ("/v1/sessions/refresh", 405, "method_not_allowed"),
    "current": ("/v1/sessions/current", 405, "method_not_allowed"),
}


@pytest.mark.parametrize(("path", "status", "code"), HOSTILE_SESSION_PATHS.values(), ids=HOSTILE_SESSION_PATHS.keys())
def test_closing_a_session_by_a_hostile_id(phone: tuple[Device, str], path: str, status: int, code: str) -> None:
    _assert_error(phone[0].delete(path), status, code)
    assert phone[0].get("/v1/sessions/current").status_code == 200  # and nothing else happened to the caller


# Paths functions-framework's own router refuses before our code runs (no rule of it matches a
# newline; it serves /robots.txt and /favicon.ico itself), and paths that only our routes refuse:
# a client must get the same JSON 404 for all of them, so none tells it where the router stands.
UNROUTED_PATHS = ["/v1/sessions/current%0a", "/v1/sessions/current%0A/x", "/v1/sessions/current%0d",
                  "/v1/sessions/current%00", "/v1/sessions%0a", "/robots.txt", "/favicon.ico", "/nowhere"]


@pytest.mark.parametrize("path", UNROUTED_PATHS)
def test_a_path_no_route_matches_gets_our_json_404(phone: tuple[Device, str], path: str) -> None:
    device = phone[0]
    for method in ("GET", "POST", "DELETE"):
        answer = device.http.request(method, device.base + path, headers=device.headers(), timeout=30)
        _assert_error(answer, 404, "not_found")
        assert answer.json()["error"]["message"] == "no such endpoint"
        assert answer.headers["Cache-Control"] == "no-store"


def test_the_callables_answer_unrouted_paths_in_the_callable_protocol(stack: Stack) -> None:
    server = stack.start_function("callables", "http")
    try:
        for path in ("/demo-mydevices/us-central1/sessions_list%0a", "/sessions_list%0d", "/robots.txt"):
            answer = requests.post(server.url + path, json={"data": None}, timeout=30)
            assert (answer.status_code, answer.headers["Content-Type"]) == (404, "application/json"), answer.text
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            assert answer.json()["error"]["status"] == "NOT_FOUND"
            assert answer.json()["error"]["details"]["code"] == "not_found"
        assert "Traceback" not in server.log_path.read_text()
    finally:
        server.stop()
