"""The push contract's checks (tests/support/push_contract.py) can fail, and the builders hold to it:
each message the product builds, encoded as firebase-admin sends it, passes our schemas per platform
(docs/push/), FCM's own HTTP v1 Message schema and Apple's rules; each planted mistake is caught by
the authority it breaks. tests/push/test_push_contract.py checks what the pipeline really sends."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mydevices.push import alert_copy, fanout
from support.push_contract import TYPES, apple_errors, contract_errors, fcm_discovery, fcm_errors, ours


def _good(kind: str) -> dict[str, Any]:
    copy_ = alert_copy.Copy.of("Pixel 8", "London, United Kingdom")
    built = (fanout.force_logout("tok", "s1", "user_revoked") if kind == "force_logout"
             else fanout.new_login_alert("tok", "s1", "s2", "a.b.c", copy_, int(datetime.now(UTC).timestamp()) + 3600))
    # No public way: firebase-admin encodes a Message to FCM's JSON only inside its send path.
    from firebase_admin import _messaging_encoder

    encoded: dict[str, Any] = _messaging_encoder.MessageEncoder().default(built)
    return json.loads(json.dumps(encoded))


@pytest.mark.parametrize("kind", TYPES)
def test_the_builders_hold_when_encoded_as_firebase_admin_sends_them(kind: str) -> None:
    assert contract_errors(_good(kind)) == []


BROKEN: list[tuple[str, str, Any, str]] = [
    # (type, path, value or DELETE, the authority that must object)
    ("new_login_alert", "notification", {"title": "New sign-in", "body": "x"}, "Android"),
    ("new_login_alert", "apns.headers.apns-push-type", "DELETE", "Apple"),
    ("new_login_alert", "apns.payload.aps.category", "DELETE", "ours/fcm"),
    ("new_login_alert", "apns.payload.aps.alert.loc-args", ["only one"], "Apple"),
    ("new_login_alert", "apns.payload.aps.alert.subtitle-loc-keyz", "x", "Apple"),
    ("new_login_alert", "android.ttl", "one day", "FCM v1 Message"),
    ("new_login_alert", "android.notificationz", {}, "FCM v1 Message"),
    ("new_login_alert", "data.expiresAt", 1234567890, "FCM v1 Message"),
    ("new_login_alert", "data.actionToken", "DELETE", "ours/android"),
    ("new_login_alert", "data.gcm.extra", "x", "Android"),
    ("force_logout", "apns.headers.apns-priority", "10", "Apple"),
    ("force_logout", "apns.payload.aps.sound", "default", "Apple"),
    ("force_logout", "apns.payload.aps.alert", {"body": "You were signed out"}, "ours/ios"),
    ("force_logout", "android.priority", "urgent", "FCM v1 Message"),
    ("force_logout", "data.sessionId", "DELETE", "ours/android"),
]


def _set(message: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    if parts[0] in ("apns",) and len(parts) > 2 and parts[1] == "headers":
        parts = [parts[0], parts[1], ".".join(parts[2:])]
    elif parts[0] == "data":
        parts = ["data", ".".join(parts[1:])]
    node = message
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value == "DELETE":
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


@pytest.mark.parametrize(("kind", "path", "value", "authority"), BROKEN)
def test_a_message_that_breaks_the_contract_is_caught(kind: str, path: str, value: Any, authority: str) -> None:
    message = copy.deepcopy(_good(kind))
    _set(message, path, value)
    errors = contract_errors(message)
    assert any(error.startswith(authority) for error in errors), errors


def test_the_fcm_authority_is_the_discovery_document_google_ships() -> None:
    discovery = fcm_discovery()
    assert discovery["name"] == "fcm" and discovery["version"] == "v1"
    assert fcm_errors({"token": "t", "android": {"priority": "high", "ttl": "60s"}}) == []
    assert fcm_errors({"token": "t", "android": {"body_loc_key": "x"}}) != []  # a notification field, misplaced
    assert fcm_errors({"token": "t", "android": {"notification": {"body_loc_key": "k", "body_loc_args": ["a"]}}}) == []
    assert apple_errors({"apns": {"headers": {"apns-push-type": "background", "apns-priority": "5"},
                                  "payload": {"aps": {"content-available": 1}}}}) == []


def test_every_type_has_its_three_schemas_and_they_are_valid_json_schema() -> None:
    for kind in TYPES:
        for platform in ("fcm", "android", "ios"):
            ours(kind, platform)  # raises on an invalid schema or an unresolvable $ref
