"""The app-facing envelope (app_events/envelope.py) from internal session events, checked against
the published JSON Schema (docs/events/session-event.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from mydevices.app_events import envelope

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/events/session-event.schema.json").read_text())
DEVICE = {"uid": "u1", "deviceId": "d1", "deviceName": "Pixel 8", "deviceType": "ANDROID", "at": "2026-12-07T00:00:00Z"}


def closed(reason: str, by: str | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "session_revoked", "sessionId": "s1", "reason": reason, "by": by, "replacedBy": None,
            **DEVICE, **more}


def no_incident(uid: str, sid: str) -> None:
    return None


@pytest.mark.parametrize("reason, by, kind", [
    ("user_revoked", "s0", "user"), ("revoke_others", "s0", "user"), ("logout", None, "logout"),
    ("expired_idle", None, "expiry"), ("expired_max_age", None, "expiry"), ("credentials_revoked", None, "account"),
    ("account_disabled", None, "account"), ("token_reused", "s9", "copied_token"),
    ("closed_by_support", None, "support"),
])
def test_every_closure_says_who_closed_it(reason: str, by: str | None, kind: str) -> None:
    [event] = envelope.app_events("e1", closed(reason, by), no_incident)
    jsonschema_rs.validate(SCHEMA, event)
    assert (event["id"], event["type"], event["data"]["closedBy"]) == ("e1", "session.closed",
                                                                      {"kind": kind, "sessionId": by})


def test_a_replacement_names_the_devices_new_session() -> None:
    [event] = envelope.app_events("e1", closed("replaced", replacedBy="s2"), no_incident)
    assert event["data"]["closedBy"] == {"kind": "same_device", "sessionId": "s2"}


def test_a_no_is_answered_before_it_closes_and_only_for_the_session_asked_about() -> None:
    answered, closing = envelope.app_events("e1", closed("rejected_by_user", "s1"), no_incident)
    assert (answered["id"], answered["type"], answered["data"]["answer"]) == ("e1-answer", "alert.answered", "no")
    assert closing["type"] == "session.closed"
    later = envelope.app_events("e2", closed("rejected_by_user", "s0"), no_incident)  # the device's later session
    assert [e["type"] for e in later] == ["session.closed"]


def test_a_copied_token_incident_comes_once_with_the_live_sessions_closure() -> None:
    record = {"liveSessionId": "s1", "deviceId": "d1", "detail": "stale"}
    incident, closing = envelope.app_events("e1", closed("token_reused", "s9"), lambda uid, sid: record)
    jsonschema_rs.validate(SCHEMA, incident)
    assert incident["data"] == {"uid": "u1", "sessionId": "s9", "liveSessionId": "s1", "deviceId": "d1",
                                "detail": "stale"}
    other = envelope.app_events("e2", {**closed("token_reused", "s9"), "sessionId": "s5"}, lambda uid, sid: record)
    assert [e["type"] for e in other] == ["session.closed"]


@pytest.mark.parametrize("kind, alerted", [("new_login", True), ("session_opened", False)])
def test_a_login_says_whether_it_alerted(kind: str, alerted: bool) -> None:
    [event] = envelope.app_events("e1", {"type": kind, "sessionId": "s1", "location": None,
                                         "alertReason": "new_device" if alerted else None, **DEVICE}, no_incident)
    jsonschema_rs.validate(SCHEMA, event)
    assert (event["type"], event["data"]["alerted"]) == ("session.opened", alerted)
