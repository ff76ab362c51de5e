"""What the edge does with a body it cannot use: wrong type, broken UTF-8, deep nesting, too big,
or a device it cannot describe. Each is the client's error: our JSON 4xx, never a 500.

In-process (`api_client`): each route here reads its body before anything else, so none of these
reaches the database. The push-token route reads its body only after validating the session: its
cases, and the framing cases that need a real HTTP server (chunked bodies, a body refused before it
is read), are in tests/security/test_security_requests.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.hostile_bodies import BAD_BYTES, WRONG_CONTENT_TYPES, nested

BODY_ROUTES = [("POST", "/v1/sessions"), ("POST", "/v1/sessions/refresh"), ("POST", "/v1/alerts/respond")]
JSON = "application/json"

BAD_DEVICES = {
    "unknown-platform": {"name": "Nokia", "platform": "symbian"},
    "platform-case": {"name": "iPhone", "platform": "IOS"},
    "platform-list": {"name": "iPhone", "platform": ["ios"]},
    "platform-object": {"name": "iPhone", "platform": {"ios": True}},
    "no-platform": {"name": "iPhone"},
    "empty-name": {"name": "", "platform": "ios"},
    "blank-name": {"name": " \u3000\u00a0 ", "platform": "ios"},
    "no-name": {"platform": "ios"},
    "null-name": {"name": None, "platform": "ios"},
    "number-name": {"name": 7, "platform": "ios"},
    "10000-character-name": {"name": "x" * 10_000, "platform": "ios"},
    "101-character-name": {"name": "x" * 101, "platform": "ios"},
    "control-character-name": {"name": "Pixel\u0000 8", "platform": "android"},
    "newline-name": {"name": "Pixel\n8", "platform": "android"},
    "c1-control-name": {"name": "Pixel\u009b8", "platform": "android"},
    "blank-control-model": {"name": "Pixel", "platform": "android", "model": "\t"},
    "65-character-model": {"name": "Pixel", "platform": "android", "model": "m" * 65},
    "unknown-device-field": {"name": "Pixel", "platform": "android", "imei": "35-209900-176148-1"},
    "device-is-a-string": "Pixel 8",
}


def send(api_client: Any, method: str, path: str, body: bytes, content_type: str | None = JSON) -> Any:
    # A login carries an ID token; nothing here gets as far as verifying it.
    headers = {"Authorization": "Bearer not-looked-at"} if path == "/v1/sessions" else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api_client().open(path, method=method, data=body, headers=headers)


def refused(answer: Any, status: int, code: str) -> dict[str, str]:
    assert (answer.status_code, answer.mimetype) == (status, JSON), answer.get_data(as_text=True)[:300]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    error: dict[str, str] = answer.get_json()["error"]
    assert error["code"] == code and set(error) == {"code", "message"}, error
    return error


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("content_type", WRONG_CONTENT_TYPES, ids=lambda c: c or "none")
def test_a_body_that_is_not_json_is_refused_with_415(api_client: Any, method: str, path: str,
                                                     content_type: str | None) -> None:
    body = b'{"device": {"name": "x", "platform": "ios"}, "refreshToken": "x", "token": "x"}'
    refused(send(api_client, method, path, body, content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("body", BAD_BYTES.values(), ids=BAD_BYTES.keys())
def test_a_body_that_is_not_utf8_text_is_refused_with_400(api_client: Any, method: str, path: str,
                                                          body: bytes) -> None:
    refused(send(api_client, method, path, body), 400, "invalid_request")


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("body", [nested(33), nested(2000), b"[" * 8000 + b"]" * 8000], ids=["33", "2000", "8000"])
def test_deeply_nested_json_is_refused_with_400(api_client: Any, method: str, path: str, body: bytes) -> None:
    refused(send(api_client, method, path, body), 400, "invalid_request")


def test_nesting_is_refused_for_its_depth_and_32_levels_still_parse(api_client: Any) -> None:
    too_deep = refused(send(api_client, "POST", "/v1/sessions", nested(33)), 400, "invalid_request")
    assert "nested too deeply" in too_deep["message"]
    deep_enough = refused(send(api_client, "POST", "/v1/sessions", nested(32)), 400, "invalid_request")
    assert "nested" not in deep_enough["message"]  # refused for its content instead


def test_a_whole_10_mb_body_gets_a_json_413(api_client: Any) -> None:
    body = b'{"device": {"name": "' + b"x" * (10 * 1024 * 1024) + b'", "platform": "ios"}}'
    refused(send(api_client, "POST", "/v1/sessions", body), 413, "payload_too_large")


@pytest.mark.parametrize("device", BAD_DEVICES.values(), ids=BAD_DEVICES.keys())
def test_bad_device_descriptions_are_refused_with_400(api_client: Any, device: Any) -> None:
    refused(send(api_client, "POST", "/v1/sessions", json.dumps({"device": device}).encode()), 400,
            "invalid_request")
