"""The security activity's entries and words, without a stack: what an app event becomes (nothing
secret, a stable id, the retention), how each closer is worded (support included, ahead of the
support API), and that user-written text stays inert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mydevices.activity import record, words
from mydevices.errors import Refusal
from mydevices.flows import activity

AT = "2026-12-07T06:30:00.123456Z"
DEVICE = {"uid": "u1", "sessionId": "s1", "deviceId": "device-id.mac.sig", "deviceName": "Pixel 8",
          "platform": "android"}


def test_a_login_becomes_a_signed_in_entry_with_nothing_secret_and_30_days_to_live() -> None:
    event = {"id": "evt-1", "type": "session.opened", "timestamp": AT,
             "data": {**DEVICE, "location": "London, United Kingdom", "alerted": True, "alertReason": "new_device"}}
    entry_id, fields = record.entry(event, {}) or ("", {})
    assert entry_id == "evt-1"
    assert fields["kind"] == "signed_in" and fields["alerted"] is True
    assert fields["at"] == datetime(2026, 12, 7, 6, 30, 0, 123456, tzinfo=UTC)
    assert fields["expireAt"] - fields["at"] == timedelta(days=30)
    assert fields["order"] == "2026-12-07T06:30:00.123456Z#0#evt-1"
    assert "deviceId" not in fields and "uid" not in fields


def test_a_cause_sorts_before_its_effect_and_ids_that_cannot_name_a_document_are_hashed() -> None:
    answer = {"id": "evt-2-answer", "type": "alert.answered", "timestamp": AT, "data": {**DEVICE, "answer": "no"}}
    closed = {"id": "evt-2", "type": "session.closed", "timestamp": AT,
              "data": {**DEVICE, "reason": "rejected_by_user", "closedBy": {"kind": "alert_answer", "sessionId": "s1"}}}
    incident = {"id": "__bad/id__", "type": "incident.copied_token", "timestamp": AT,
                "data": {"uid": "u1", "sessionId": "s0", "liveSessionId": "s1", "deviceId": "x", "detail": "secret"}}
    (_, a), (_, c) = record.entry(answer, {}) or ("", {}), record.entry(closed, {}) or ("", {})
    assert sorted([c["order"], a["order"]], reverse=True) == [c["order"], a["order"]]  # newest first: the closure
    incident_id, fields = record.entry(incident, {"deviceName": "Pixel 8", "deviceType": "android"}) or ("", {})
    assert incident_id.startswith("h-") and "/" not in incident_id
    assert fields["deviceName"] == "Pixel 8" and "detail" not in fields and "deviceId" not in fields
    assert record.entry({"id": "x", "type": "something.else", "data": {}}, {}) is None


@pytest.mark.parametrize(("kind", "reason", "by", "said"), [
    ("alert_answer", "rejected_by_user", {}, "Closed by your \u201cNo\u201d to \u201cWas that you?\u201d"),
    ("support", "closed_by_support", {"note": "Reported stolen"}, "Closed by support: Reported stolen"),
    ("support", "closed_by_support", {"note": None}, "Closed by support"),
    ("account", "credentials_revoked", {}, "Closed when your password was reset or your sign-ins were revoked"),
    ("account", "account_disabled", {}, "Closed because your account was disabled"),
    ("account", "account_deleted", {}, "Closed because your account was deleted"),
    ("copied_token", "token_reused", {}, "Closed because a copy of its sign-in was used elsewhere"),
    ("expiry", "expired_idle", {}, "Expired: not used for too long"),
    ("expiry", "expired_max_age", {}, "Expired: it reached its maximum age"),
    ("same_device", "replaced", {}, "Replaced by a new sign-in on the same device"),
    ("logout", "logout", {}, "Signed out on the device itself"),
    ("user", "user_revoked", {"deviceName": "iPhone 15 Pro", "sessionId": "s9"},
     "Closed by you on \u201ciPhone 15 Pro\u201d"),
    ("user", "user_revoked", {"deviceName": "iPhone 15 Pro", "sessionId": "me"}, "Closed by you on this device"),
    ("a_newer_kind", "something", {}, "Closed"),
])
def test_every_closer_has_its_words(kind: str, reason: str, by: dict[str, str], said: str) -> None:
    entry = {"kind": "closed", "reason": reason, "deviceName": "Pixel 8", "closedBy": {"kind": kind, **by}}
    assert words.closed_by(entry, "me") == said
    assert words.sentence(entry, "me") == f"Session on \u201cPixel 8\u201d ended. {said}"


def test_names_and_notes_are_inert_text() -> None:
    hostile = "\u202eiPhone\u201d from London. \u201cOK\n\t"
    note = "call us\u2066 now\x00" + "x" * 300
    entry: dict[str, Any] = {"kind": "closed", "deviceName": hostile, "closedBy": {"kind": "support", "note": note}}
    said = words.sentence(entry)
    assert said.startswith("Session on \u201ciPhone from London. OK\u201d ended. Closed by support: call us now")
    assert not any(ch in said for ch in "\u202e\u2066\x00\n\t")
    assert len(words.plain(note) or "") == words.MAX_NOTE_SHOWN
    assert words.sentence({"kind": "signed_in", "deviceName": "", "location": None}) == \
        "Signed in on an unnamed device from an unknown location"


def test_the_paging_parameters_are_checked() -> None:
    assert activity.page_size(None) == 20 and activity.page_size("100") == 100
    for bad in ("0", "101", "-1", "1.5", "\u0661", "", "ten"):
        with pytest.raises(Refusal):
            activity.page_size(bad)
    assert activity.cursor_of("2026-12-07T06:30:00.123456Z#1#evt-2") is not None
    for bad in ("", "x", "2026-12-07T06:30:00Z#1#evt", "2026-12-07T06:30:00.123456Z#1#a/b"):
        with pytest.raises(Refusal):
            activity.cursor_of(bad)
    now = datetime(2026, 12, 31, tzinfo=UTC)
    assert record.cutoff(now) < record.order_key(now - timedelta(days=29), "closed", "e")
    assert record.cutoff(now) > record.order_key(now - timedelta(days=31), "closed", "e")
