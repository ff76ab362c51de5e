"""The Firestore trigger's decoding and classification, on real DocumentEventData protobufs."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from google.events.cloud.firestore import Document, DocumentEventData, Value
from google.protobuf.timestamp_pb2 import Timestamp

from mydevices import documents
from mydevices.bodies import DeviceInfo
from mydevices.push import events

DOC = "projects/demo-test/databases/(default)/documents/users/{uid}/sessions/{sid}"


def value(python: Any) -> Value:
    if python is None:
        return Value(null_value=0)
    if isinstance(python, bool):
        return Value(boolean_value=python)
    if isinstance(python, datetime):
        stamp = Timestamp()
        stamp.FromDatetime(python)
        return Value(timestamp_value=stamp)
    return Value(string_value=python)


def session_doc(uid: str = "u1", sid: str = "s1", **fields: Any) -> Document:
    base = documents.session(uid, f"d-{sid}", DeviceInfo("Pixel 8", "android"), "London, United Kingdom",
                             datetime(2026, 11, 22, tzinfo=UTC), alert_reason="new_device")
    base.update(fields)
    return Document(name=DOC.format(uid=uid, sid=sid), fields={k: value(v) for k, v in base.items()})


def change(new: Document | None, old: Document | None) -> DocumentEventData:
    data = DocumentEventData()
    if new is not None:
        data.value = new
    if old is not None:
        data.old_value = old
    return data


def wire(data: DocumentEventData) -> bytes:
    raw: bytes = DocumentEventData.serialize(data)
    return raw


def test_decode_accepts_raw_protobuf_as_eventarc_sends_it() -> None:
    raw = wire(change(session_doc(), None))
    assert raw[:1] == b"\x0a"
    assert events.decode(raw).value.name.endswith("/users/u1/sessions/s1")


def test_decode_accepts_base64_text_as_the_emulator_sends_it() -> None:
    raw = wire(change(session_doc(status="revoked"), session_doc()))
    for form in (base64.b64encode(raw), base64.b64encode(raw).decode()):
        decoded = events.decode(form)
        assert decoded.value.fields["status"].string_value == "revoked"
        assert decoded.old_value.fields["status"].string_value == "active"


def test_decode_of_nothing_is_an_empty_change_and_classifies_as_nothing() -> None:
    assert events.classify(events.decode(b"")) is None
    assert events.classify(events.decode(None)) is None


def test_a_new_active_session_is_a_new_login() -> None:
    event = events.classify(change(session_doc("alice", "sNew"), None))
    assert event == {"type": "new_login", "uid": "alice", "sessionId": "sNew", "deviceName": "Pixel 8",
                     "location": "London, United Kingdom", "alertReason": "new_device",
                     "at": "2026-11-22T00:00:00Z", "deviceId": "d-sNew", "deviceType": "ANDROID"}


def test_a_device_coming_back_is_a_session_opened_that_alerts_nobody() -> None:
    event = events.classify(change(session_doc(alertReason=None), None))
    assert event is not None and event["type"] == "session_opened" and event["alertReason"] is None


def test_a_yes_is_an_alert_confirmed() -> None:
    confirmed = datetime(2026, 11, 22, 2, tzinfo=UTC)
    event = events.classify(change(session_doc(confirmedAt=confirmed), session_doc()))
    assert event is not None and (event["type"], event["at"]) == ("alert_confirmed", "2026-11-22T02:00:00Z")
    assert events.classify(change(session_doc(confirmedAt=confirmed), session_doc(confirmedAt=confirmed))) is None


def test_a_new_login_with_unknown_location_carries_null() -> None:
    event = events.classify(change(session_doc(location=None), None))
    assert event is not None and event["location"] is None


@pytest.mark.parametrize("reason", ["user_revoked", "revoke_others", "logout", "replaced", "token_reused",
                                    "rejected_by_user"])
def test_active_to_revoked_is_session_revoked_with_its_reason(reason: str) -> None:
    closed = datetime(2026, 11, 23, tzinfo=UTC)
    event = events.classify(change(session_doc(status="revoked", revokedReason=reason, revokedAt=closed,
                                               revokedBy="s0"), session_doc()))
    assert event == {"type": "session_revoked", "uid": "u1", "sessionId": "s1", "reason": reason, "by": "s0",
                     "replacedBy": None, "deviceName": "Pixel 8", "at": "2026-11-23T00:00:00Z",
                     "deviceId": "d-s1", "deviceType": "ANDROID"}


@pytest.mark.parametrize("new, old", [
    (session_doc(lastActiveAt=datetime(2026, 11, 22, 1, tzinfo=UTC)), session_doc()),  # activity bump
    (session_doc(status="revoked", revokedReason="user_revoked", expireAt=datetime(2027, 1, 1, tzinfo=UTC)),
     session_doc(status="revoked", revokedReason="user_revoked")),  # an already revoked session changes
    (None, session_doc(status="revoked")),  # TTL deletion
    (None, session_doc()),  # deletion of an active one
    (session_doc(status="revoked", revokedReason="user_revoked"), None),  # born revoked
])
def test_other_changes_are_nothing(new: Document | None, old: Document | None) -> None:
    assert events.classify(change(new, old)) is None


def test_documents_outside_the_sessions_collection_are_ignored() -> None:
    stray = Document(name="projects/p/databases/(default)/documents/users/u1/devices/d1",
                     fields={"status": value("active")})
    assert events.classify(change(stray, None)) is None


def test_handle_publishes_only_what_classifies(monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[tuple[dict[str, Any], str]] = []

    def publish(event: dict[str, Any], event_id: str) -> str:
        published.append((event, event_id))
        return "m1"

    monkeypatch.setattr(events, "publish", publish)
    bump = wire(change(session_doc(lastActiveAt=datetime(2026, 11, 22, 1, tzinfo=UTC)), session_doc()))
    assert events.handle("e-bump", base64.b64encode(bump)) is None
    login = wire(change(session_doc(), None))
    assert events.handle("e-login", login) is not None
    assert [(event["type"], event_id) for event, event_id in published] == [("new_login", "e-login")]
