"""Request bodies as the API reads them (mydevices/bodies.py): what a client may send, and the
exact message it gets for what it may not. Device names end up on other devices' screens, so
the text rules are the ones an attacker probes."""

from __future__ import annotations

from typing import Any

import pytest

from mydevices import bodies
from mydevices.errors import Code, Refusal
from mydevices.flows import alert_answer

DEVICE = {"name": "Pixel 8", "platform": "android", "model": "shiba", "osVersion": "14", "appVersion": "2.3.0"}


def refusal(body: Any, kind: type[bodies.Body] = bodies.Login, where: str = "") -> str:
    with pytest.raises(Refusal) as refused:
        bodies.decode(body, kind, where)
    assert refused.value.code == Code.INVALID_REQUEST
    return refused.value.message


def test_a_login_body_reads_into_its_fields() -> None:
    login = bodies.decode({"device": DEVICE, "push": {"token": "t-1"}, "firebaseCustomToken": True}, bodies.Login)
    assert (login.device.name, login.device.device_type, login.device.os_version) == ("Pixel 8", "ANDROID", "14")
    assert login.push is not None and (login.push.token, login.push.provider) == ("t-1", "fcm")
    assert login.firebase_custom_token is True and login.device_public_key is None


def test_text_is_kept_exactly_as_sent() -> None:
    name = "  Ана’s iPhone 📱 שלום "
    login = bodies.decode({"device": {"name": name, "platform": "ios"}}, bodies.Login)
    assert login.device.name == name and login.device.device_type == "IOS"


@pytest.mark.parametrize(("body", "message"), [
    ({}, "device must be a JSON object"),
    ({"device": "Pixel"}, "device must be a JSON object"),
    ({"device": {"name": "x"}}, "device.platform must be one of ios, android, web"),
    ({"device": {**DEVICE, "platform": "windows"}}, "device.platform must be one of ios, android, web"),
    ({"device": DEVICE, "admin": True}, "unknown field admin"),
    ({"device": {**DEVICE, "uid": "someone-else"}}, "unknown field device.uid"),
    ({"device": {**DEVICE, "name": "x" * 101}}, "device.name must be at most 100 characters"),
    ({"device": {**DEVICE, "name": "evil\u0000name"}}, "device.name must not contain control characters"),
    ({"device": {**DEVICE, "name": "line\nbreak"}}, "device.name must not contain control characters"),
    ({"device": {**DEVICE, "name": "   "}}, "device.name must not be empty"),
    ({"device": {**DEVICE, "name": 7}}, "device.name must be a string"),
    ({"device": {**DEVICE, "model": "m" * 65}}, "device.model must be at most 64 characters"),
    ({"device": DEVICE, "push": {"token": "t", "provider": "apns"}}, "push.provider must be fcm"),
    ({"device": DEVICE, "firebaseCustomToken": "yes"}, "firebaseCustomToken must be true or false"),
    ({"device": DEVICE, "firebaseCustomToken": 1}, "firebaseCustomToken must be true or false"),
])
def test_a_login_body_that_breaks_a_rule_says_which(body: dict[str, Any], message: str) -> None:
    assert refusal(body) == message


def test_an_alert_answer_is_yes_or_no_and_nothing_else() -> None:
    """The body holds whatever was sent; the answer's flow checks it, the token first, before it
    touches Firestore (here there is none to touch)."""
    assert bodies.decode({"actionToken": "a", "answer": "no"}, bodies.AlertAnswer).answer == "no"
    for token, answer, message in [("a", "maybe", 'answer must be "yes" or "no"'),
                                   ("a", True, 'answer must be "yes" or "no"'),
                                   (5, "yes", "actionToken is required"),
                                   (None, "maybe", "actionToken is required")]:
        body = bodies.decode({"actionToken": token, "answer": answer}, bodies.AlertAnswer)
        with pytest.raises(Refusal) as refused:
            alert_answer.respond(body.action_token, body.answer)
        assert refused.value.message == message


def test_a_field_name_is_quoted_whatever_it_holds() -> None:
    assert refusal({"device": DEVICE, "a`\nb": 1}) == "unknown field a`\nb"
    assert refusal({"device": {**DEVICE, "q`": 1}}) == "unknown field device.q`"


def test_a_null_text_is_a_missing_one() -> None:
    assert refusal({"device": {**DEVICE, "name": None}}) == "device.name is required"
    assert refusal({"device": DEVICE, "push": {"token": None}}) == "push.token is required"
    assert refusal({"device": DEVICE, "push": {"provider": "apns"}}) == "push.token is required"


def test_a_callable_names_a_session_by_its_id_alone() -> None:
    assert bodies.decode({"sessionId": "A" * 22}, bodies.RevokeArguments, "data").session_id == "A" * 22
    for bad in ("abc\n", "", "a/b", "A" * 65, 7, None):
        assert refusal({"sessionId": bad}, bodies.RevokeArguments, "data") == "data.sessionId is not valid"
    bodies.decode({}, bodies.NoArguments, "data")
    assert refusal({"sessionId": "A" * 22}, bodies.NoArguments, "data") == "unknown field data.sessionId"


def test_a_refresh_body_holds_only_its_token() -> None:
    assert bodies.decode({"refreshToken": "r"}, bodies.Refresh).refresh_token == "r"
    assert refusal({"refreshToken": "r", "deviceId": "d"}, bodies.Refresh) == "unknown field deviceId"
    assert refusal({"refreshToken": ["r"]}, bodies.Refresh) == "refreshToken must be a string"


def test_a_push_token_body_is_checked_where_it_was_sent() -> None:
    assert refusal({"token": ""}, bodies.PushTarget, "push") == "push.token must not be empty"
    assert refusal({"token": "t", "extra": 1}, bodies.PushTarget, "push") == "unknown field push.extra"


@pytest.mark.parametrize(("sent", "kept"), [(4187, 4187), (4187.0, 4187), (None, None)])
def test_a_session_lifetime_is_whole_seconds_however_json_writes_them(sent: Any, kept: int | None) -> None:
    """JSON Schema's integer (docs/openapi.yaml) includes 4187.0, which JavaScript may send."""
    login = bodies.decode({"device": {"name": "Pixel", "platform": "android"}, "sessionLifetimeSeconds": sent},
                          bodies.Login)
    assert login.lifetime == kept and (kept is None or type(login.lifetime) is int)


@pytest.mark.parametrize("sent", [4187.5, 59, 59.0, 10 * 365 * 86400 + 1, "4187", True])
def test_a_session_lifetime_that_is_no_whole_number_in_range_is_refused(sent: Any) -> None:
    with pytest.raises(Refusal) as refused:
        bodies.decode({"device": {"name": "Pixel", "platform": "android"}, "sessionLifetimeSeconds": sent},
                      bodies.Login)
    assert refused.value.code == Code.INVALID_REQUEST and "sessionLifetimeSeconds" in refused.value.message
