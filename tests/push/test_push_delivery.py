"""The push function against the real Firestore emulator and the FCM stand-in (through
firebase-admin's real send_each): what is sent, to whom, once, and what happens on failures."""

from __future__ import annotations

import base64
import json
import unicodedata
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from firebase_admin import messaging
from google.api_core import exceptions as core_exceptions
from google.cloud import firestore

from infra.local.fcm_standin import FcmStandin
from infra.local.stack import Stack
from mydevices import store
from mydevices.push import claims, fanout
from mydevices.tokens import action
from support.push import put_session

_ids = count(1)


@pytest.fixture()
def db(fresh: Stack) -> firestore.Client:
    return store.db()


def delivery(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """The data of a messagePublished CloudEvent, as functions-framework hands it to the function."""
    event_id = event_id or f"evt-{next(_ids)}"
    return {"message": {"data": base64.b64encode(json.dumps(event).encode()).decode(),
                        "attributes": {"eventId": event_id, "type": event["type"]},
                        "messageId": f"msg-{next(_ids)}"},
            "subscription": "projects/demo-mydevices/subscriptions/session-events-push"}


def revoked(uid: str, sid: str, reason: str = "user_revoked") -> dict[str, Any]:
    return {"type": "session_revoked", "uid": uid, "sessionId": sid, "reason": reason}


def new_login(uid: str, sid: str, device: str = "Galaxy S24", location: str | None = "Paris, France") -> dict[str, Any]:
    return {"type": "new_login", "uid": uid, "sessionId": sid, "deviceName": device, "location": location}


def tokens(standin: FcmStandin) -> list[str]:
    return sorted(m["message"]["token"] for m in standin.messages)


# --- session_revoked -------------------------------------------------------------------------


def test_revoked_session_gets_exactly_one_data_only_force_logout(db: firestore.Client,
                                                                 push_standin: FcmStandin) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    assert fanout.handle(delivery(revoked("alice", "s1", "user_revoked")))["sent"] == 1
    [record] = push_standin.messages
    assert record["message"] == {
        "token": "tok-s1",
        "data": {"action": "force_logout", "reason": "user_revoked", "sessionId": "s1"},
        "android": {"priority": "high"},
        "apns": {"headers": {"apns-push-type": "background", "apns-priority": "5"},
                 "payload": {"aps": {"content-available": 1}}},
    }


@pytest.mark.parametrize("reason", ["logout", "replaced"])
def test_a_logout_or_a_replacement_sends_nothing(db: firestore.Client, push_standin: FcmStandin, reason: str) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    event_id = f"silent-{reason}"
    fanout.handle(delivery(revoked("alice", "s1", reason), event_id))
    assert push_standin.messages == []
    assert db.document(f"processedEvents/{event_id}").get().get("status") == "done"


@pytest.mark.parametrize("reason", ["revoke_others", "token_reused", "rejected_by_user"])
def test_other_reasons_force_logout(db: firestore.Client, push_standin: FcmStandin, reason: str) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    fanout.handle(delivery(revoked("alice", "s1", reason)))
    assert [m["message"]["data"]["reason"] for m in push_standin.messages] == [reason]


def test_a_session_without_push_token_or_of_another_user_gets_nothing(db: firestore.Client,
                                                                      push_standin: FcmStandin) -> None:
    put_session(db, "alice", "s1", token=None, status="revoked")
    put_session(db, "bob", "s2", token="tok-bob", status="revoked")
    assert fanout.handle(delivery(revoked("alice", "s1")))["sent"] == 0
    assert fanout.handle(delivery(revoked("alice", "s2")))["sent"] == 0  # s2 is bob's
    assert push_standin.messages == []


# --- new_login -------------------------------------------------------------------------------


def test_new_login_alerts_every_other_active_session_with_a_token(db: firestore.Client,
                                                                  push_standin: FcmStandin) -> None:
    put_session(db, "alice", "phone", token="tok-phone")
    put_session(db, "alice", "tablet", token="tok-tablet")
    put_session(db, "alice", "web", token=None)
    put_session(db, "alice", "old", token="tok-old", status="revoked")
    put_session(db, "bob", "bobs", token="tok-bob")
    put_session(db, "alice", "new", token="tok-new", device="Galaxy S24")
    put_session(db, "alice", "later", token="tok-later")  # logged in after the new one
    fanout.handle(delivery(new_login("alice", "new")))
    assert tokens(push_standin) == ["tok-phone", "tok-tablet"]
    for record in push_standin.messages:
        message = record["message"]
        assert "notification" not in message  # Android: a data message, drawn by the app with its actions
        assert message["apns"]["payload"]["aps"]["alert"]["body"] == message["data"]["body"] == (
            "Signed in on “Galaxy S24” from Paris, France. Was that you?")
        assert message["apns"]["payload"]["aps"]["alert"]["loc-args"] == ["Galaxy S24", "Paris, France"]
        assert message["apns"]["payload"]["aps"]["category"] == "MYDEVICES_NEW_LOGIN"
        assert message["data"]["action"] == "new_login_alert"
        assert message["data"]["newSessionId"] == "new"
        claims = action.verify(message["data"]["actionToken"])
        alerted = {"tok-phone": "phone", "tok-tablet": "tablet"}[message["token"]]
        assert (claims["sub"], claims["sid"], claims["nsid"]) == ("alice", alerted, "new")


def test_an_unknown_location_is_said_so(db: firestore.Client, push_standin: FcmStandin) -> None:
    put_session(db, "alice", "phone", token="tok-phone")
    put_session(db, "alice", "new", location=None)
    fanout.handle(delivery(new_login("alice", "new", device="Chrome on macOS", location=None)))
    message = push_standin.messages[0]["message"]
    assert message["apns"]["payload"]["aps"]["alert"]["body"] == message["data"]["body"] == (
        "Signed in on “Chrome on macOS” from an unknown location. Was that you?")
    assert message["apns"]["payload"]["aps"]["alert"]["loc-args"] == ["Chrome on macOS"]


GENUINE_LONDON = "Signed in on “iPhone 15” from London, United Kingdom. Was that you?"
UNKNOWN = "from an unknown location. Was that you?"
RLO, PDF, LRI, PDI, ZWSP, ZWJ = "\u202e", "\u202c", "\u2066", "\u2069", "\u200b", "\u200d"


@pytest.mark.parametrize(("name", "location", "body"), [
    ("iPhone 15", "London, United Kingdom", GENUINE_LONDON),
    # The forgery of the issue: the name says the place, the login comes from nowhere known.
    ("iPhone 15 from London, United Kingdom", None,
     f"Signed in on “iPhone 15 from London, United Kingdom” {UNKNOWN}"),
    # A name that tries to close the quote and write the rest of the sentence.
    ("iPhone 15” from London, United Kingdom. Was that you? “x", None,
     f"Signed in on “iPhone 15 from London, United Kingdom.…” {UNKNOWN}"),
    ('iPhone 15" from London', None, f"Signed in on “iPhone 15 from London” {UNKNOWN}"),
    # Right-to-left override: shown as typed, the reversed tail would read " from London, ...".
    ("iPhone 15" + RLO + " from London, United Kingdom"[::-1] + PDF, None,
     f"Signed in on “iPhone 15modgniK detinU ,nodnoL morf” {UNKNOWN}"),
    (LRI + "iPhone" + PDI + ZWSP + " 15" + ZWJ, "Sweden", "Signed in on “iPhone 15” from Sweden. Was that you?"),
    ("iPhone \u2028\u3000 15 ", None, f"Signed in on “iPhone 15” {UNKNOWN}"),  # odd spaces collapse
    (RLO + ZWSP + LRI, None, f"Signed in on an unnamed device {UNKNOWN}"),
    ("x" * 100, None, f"Signed in on “{'x' * 39}…” {UNKNOWN}"),
], ids=["genuine-london", "name-claims-a-place", "name-closes-the-quote", "ascii-quote", "rlo", "isolates-zero-width",
        "odd-whitespace", "nothing-printable", "long"])
def test_the_alert_quotes_the_device_name_and_only_the_server_says_the_place(
    db: firestore.Client, push_standin: FcmStandin, name: str, location: str | None, body: str
) -> None:
    """What the alerted user reads, as FCM got it. The name is the new device's claim; the place
    is the server's lookup. No name can produce the genuine London text, nor hide or reorder
    characters of it."""
    put_session(db, "alice", "phone", token="tok-phone")
    put_session(db, "alice", "new", device=name, location=location)
    fanout.handle(delivery(new_login("alice", "new", device=name, location=location)))
    [record] = push_standin.messages
    text = record["message"]["data"]["body"]
    assert text == body == record["message"]["apns"]["payload"]["aps"]["alert"]["body"]
    name_arg = json.loads(record["message"]["data"]["body_loc_args"])[:1] if "unnamed" not in text else []
    assert all(f"“{arg}”" in text for arg in name_arg)  # the loc-args carry the same cleaned name
    assert not [char for char in text if unicodedata.category(char) in ("Cc", "Cf")]
    assert (text == GENUINE_LONDON) == (location == "London, United Kingdom")


def test_no_alert_about_a_session_that_is_already_closed(db: firestore.Client, push_standin: FcmStandin) -> None:
    put_session(db, "alice", "new", status="revoked")
    put_session(db, "alice", "phone", token="tok-phone")
    assert fanout.handle(delivery(new_login("alice", "new")))["sent"] == 0
    assert push_standin.messages == []


def test_alerts_to_hundreds_of_sessions_go_in_send_each_calls_of_at_most_500(
    db: firestore.Client, push_standin: FcmStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = db.bulk_writer()
    now = datetime.now(UTC) - timedelta(minutes=1)
    for i in range(620):
        writer.set(db.document(f"users/many/sessions/s{i:03d}"), {"uid": "many", "status": "active", "createdAt": now})
        writer.set(db.document(f"sessionSecrets/s{i:03d}"), {"uid": "many", "pushToken": f"tok-{i:03d}",
                                                             "pushProvider": "fcm"})
    writer.close()
    put_session(db, "many", "new")
    calls: list[int] = []
    real_send_each = messaging.send_each

    def spy(messages: list[Any], **kwargs: Any) -> Any:
        calls.append(len(messages))
        return real_send_each(messages, **kwargs)

    monkeypatch.setattr(messaging, "send_each", spy)
    assert fanout.handle(delivery(new_login("many", "new")))["sent"] == 620
    assert calls == [500, 120]
    assert len(set(tokens(push_standin))) == 620


# --- at most once per recipient --------------------------------------------------------------


def test_a_redelivered_event_sends_nothing_new(db: firestore.Client, push_standin: FcmStandin) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    message = delivery(revoked("alice", "s1"), "evt-once")
    assert fanout.handle(message)["sent"] == 1
    assert fanout.handle(message) == {"duplicate": 1}
    # a redelivered Firestore event is published again under a new message id, same event id
    assert fanout.handle(delivery(revoked("alice", "s1"), "evt-once")) == {"duplicate": 1}
    assert len(push_standin.messages) == 1
    claim = db.document("processedEvents/evt-once").get()
    assert claim.get("status") == "done" and claim.get("sent") == ["s1"]
    assert claim.get("expireAt") > datetime.now(UTC) + timedelta(days=6)


def test_a_delivery_while_another_holds_the_event_fails_and_sends_nothing(db: firestore.Client,
                                                                          push_standin: FcmStandin) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    assert claims.claim("evt-busy") is not None  # another instance is sending right now
    with pytest.raises(claims.InFlight):
        fanout.handle(delivery(revoked("alice", "s1"), "evt-busy"))
    assert push_standin.messages == []


def test_a_crashed_attempt_is_taken_over_once_its_lease_lapses(db: firestore.Client,
                                                               push_standin: FcmStandin) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    claim = claims.claim("evt-crashed")
    assert claim is not None
    claim.ref.update({"leaseUntil": datetime.now(UTC) - timedelta(seconds=1)})
    assert fanout.handle(delivery(revoked("alice", "s1"), "evt-crashed"))["sent"] == 1
    assert db.document("processedEvents/evt-crashed").get().get("attempts") == 2


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("status, code", [(404, "UNREGISTERED"), (403, "SENDER_ID_MISMATCH"),
                                          (400, "INVALID_ARGUMENT")])
def test_a_dead_token_is_removed_and_never_used_again(db: firestore.Client, push_standin: FcmStandin,
                                                      status: int, code: str) -> None:
    put_session(db, "alice", "dead", token="tok-dead")
    put_session(db, "alice", "live", token="tok-live")
    put_session(db, "alice", "new")
    push_standin.fault("tok-dead", status, code)
    counts = fanout.handle(delivery(new_login("alice", "new")))
    assert counts["sent"] == 1 and counts["dead"] == 1
    secret = db.document("sessionSecrets/dead").get()
    assert secret.get("pushToken") is None and secret.get("pushProvider") is None
    assert db.document("sessionSecrets/live").get().get("pushToken") == "tok-live"
    push_standin.clear()
    put_session(db, "alice", "newer")
    fanout.handle(delivery(new_login("alice", "newer")))
    assert "tok-dead" not in tokens(push_standin) and push_standin.failures == []


def test_a_payload_error_keeps_the_token_and_is_not_retried(db: firestore.Client, push_standin: FcmStandin) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")
    push_standin.fault("tok-s1", 400, "PAYLOAD_INVALID")
    counts = fanout.handle(delivery(revoked("alice", "s1"), "evt-payload"))
    assert counts["failed"] == 1
    assert db.document("sessionSecrets/s1").get().get("pushToken") == "tok-s1"
    assert db.document("processedEvents/evt-payload").get().get("status") == "done"


def test_a_dead_token_is_kept_if_the_app_registered_a_new_one_meanwhile(db: firestore.Client) -> None:
    put_session(db, "alice", "s1", token="tok-rotated")
    assert fanout.forget_token("s1", "tok-old") is False
    assert db.document("sessionSecrets/s1").get().get("pushToken") == "tok-rotated"
    assert fanout.forget_token("s1", "tok-rotated") is True


@pytest.mark.parametrize("status, code", [(503, "UNAVAILABLE"), (429, "QUOTA_EXCEEDED"), (500, "INTERNAL")])
def test_a_transient_failure_raises_and_the_redelivery_sends_only_what_is_missing(
    db: firestore.Client, push_standin: FcmStandin, status: int, code: str
) -> None:
    for name in ("a", "b", "c"):
        put_session(db, "alice", name, token=f"tok-{name}")
    put_session(db, "alice", "new")
    push_standin.fault("tok-b", status, code, times=5)  # outlasts firebase-admin's own retries
    message = delivery(new_login("alice", "new"), f"evt-{code}")
    with pytest.raises(fanout.RetryLater):
        fanout.handle(message)
    push_standin.clear_faults()  # FCM has recovered (a 429 is not retried by the library itself)
    assert tokens(push_standin) == ["tok-a", "tok-c"]
    claim = db.document(f"processedEvents/evt-{code}").get()
    assert claim.get("status") == "sending" and sorted(claim.get("sent")) == ["a", "c"]
    assert claim.get("leaseUntil") <= datetime.now(UTC)  # released: the redelivery need not wait
    assert fanout.handle(message)["sent"] == 1  # Pub/Sub's redelivery
    assert tokens(push_standin) == ["tok-a", "tok-b", "tok-c"]
    assert fanout.handle(message) == {"duplicate": 1}
    assert db.document("sessionSecrets/b").get().get("pushToken") == "tok-b"


def test_a_firestore_failure_raises_and_releases_the_event(db: firestore.Client, push_standin: FcmStandin,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    put_session(db, "alice", "s1", token="tok-s1", status="revoked")

    def unavailable(sid: str) -> Any:
        raise core_exceptions.ServiceUnavailable("firestore is down")

    monkeypatch.setattr(store, "secret_ref", unavailable)
    with pytest.raises(core_exceptions.ServiceUnavailable):
        fanout.handle(delivery(revoked("alice", "s1"), "evt-fs-down"))
    monkeypatch.undo()
    assert fanout.handle(delivery(revoked("alice", "s1"), "evt-fs-down"))["sent"] == 1


def test_a_malformed_message_is_dropped_not_retried(fresh: Stack, push_standin: FcmStandin) -> None:
    assert fanout.handle({"message": {"data": "not base64!", "attributes": {}}}) == {"malformed": 1}
    assert fanout.handle({"message": {"data": base64.b64encode(b'{"type": "other"}').decode(),
                                    "attributes": {"eventId": "x"}}}) == {"malformed": 1}
    assert fanout.handle(None) == {"malformed": 1}
    assert push_standin.messages == []
