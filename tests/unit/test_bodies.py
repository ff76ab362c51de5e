"""Request bodies as the API reads them (mydevices/model.py): what a client may send, and the
exact message it gets for what it may not. Device names end up on other devices' screens, so
the text rules are the ones an attacker probes."""

from __future__ import annotations

from typing import Any

import pytest

from mydevices import model
from mydevices.errors import Code, InvalidRequest

DEVICE = {"name": "Pixel 8", "platform": "android", "model": "shiba", "osVersion": "14", "appVersion": "2.3.0"}


def refusal(body: Any, kind: type[model.Body] = model.Login, where: str = "") -> str:
    with pytest.raises(InvalidRequest) as refused:
        model.decode(body, kind, where)
    assert refused.value.code == Code.INVALID_REQUEST
    return refused.value.message


def test_a_login_body_reads_into_its_fields() -> None:
    login = model.decode({"device": DEVICE, "push": {"token": "t-1"}, "firebaseCustomToken": True}, model.Login)
    assert (login.device.name, login.device.device_type, login.device.os_version) == ("Pixel 8", "ANDROID", "14")
    assert login.push is not None and (login.push.token, login.push.provider) == ("t-1", "fcm")
    assert login.firebase_custom_token is True and login.device_public_key is None


def test_text_is_kept_exactly_as_sent() -> None:
    name = "  Ана’s iPhone 📱 שלום "
    login = model.decode({"device": {"name": name, "platform": "ios"}}, model.Login)
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
    assert model.decode({"actionToken": "a", "answer": "no"}, model.AlertAnswer).answer == "no"
    assert refusal({"actionToken": "a", "answer": "maybe"}, model.AlertAnswer) == 'answer must be "yes" or "no"'
    assert refusal({"actionToken": "a", "answer": True}, model.AlertAnswer) == 'answer must be "yes" or "no"'
    assert refusal({"actionToken": 5, "answer": "yes"}, model.AlertAnswer) == "actionToken is required"


def test_a_refresh_body_holds_only_its_token() -> None:
    assert model.decode({"refreshToken": "r"}, model.Refresh).refresh_token == "r"
    assert refusal({"refreshToken": "r", "deviceId": "d"}, model.Refresh) == "unknown field deviceId"
    assert refusal({"refreshToken": ["r"]}, model.Refresh) == "refreshToken must be a string"


def test_a_push_token_body_is_checked_where_it_was_sent() -> None:
    assert refusal({"token": ""}, model.PushTarget, "push") == "push.token must not be empty"
    assert refusal({"token": "t", "extra": 1}, model.PushTarget, "push") == "unknown field push.extra"
