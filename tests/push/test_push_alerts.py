"""Answering "Was that you?": what "yes" and "no" do with an action token (single use, bound to
the alerted session), against the real Firestore emulator and the core's real revoke_session. The
token itself, which needs no emulator, is tested in tests/unit/test_action_tokens_and_fcm.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from google.cloud import firestore

from infra.local.stack import Stack
from mydevices import closing, store
from mydevices.errors import Refusal, unavailable
from mydevices.flows import alert_answer
from mydevices.http.render import WIRE
from mydevices.tokens import action
from support.push import put_session


@pytest.fixture()
def db(fresh: Stack) -> firestore.Client:
    put_session(store.db(), "alice", "phone", token="tok-phone")
    put_session(store.db(), "alice", "tablet", token="tok-tablet")
    put_session(store.db(), "alice", "new", device="Galaxy S24")
    return store.db()


def status_of(db: firestore.Client, sid: str, uid: str = "alice") -> dict[str, Any]:
    return db.document(f"users/{uid}/sessions/{sid}").get().to_dict() or {}


def error(call: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(Refusal) as caught:
        call(*args)
    return WIRE[caught.value.code].http, caught.value.code


# --- the answers -----------------------------------------------------------------------------


def test_no_closes_the_new_session_as_rejected_by_user(db: firestore.Client) -> None:
    answer = alert_answer.respond(action.issue("alice", "phone", "new"), "no")
    assert answer == {"answer": "no", "sessionId": "new", "status": "revoked", "closedSessionIds": ["new"],
                      "advice": "change_password"}
    new = status_of(db, "new")
    assert new["status"] == "revoked" and new["revokedReason"] == "rejected_by_user"
    assert status_of(db, "phone")["status"] == "active"


def test_yes_marks_the_new_session_confirmed(db: firestore.Client) -> None:
    assert alert_answer.respond(action.issue("alice", "phone", "new"), "yes") == {
        "answer": "yes", "sessionId": "new", "status": "active"}
    new = status_of(db, "new")
    assert new["status"] == "active" and new["confirmedAt"] is not None


@pytest.mark.parametrize("first, second", [("no", "no"), ("yes", "yes"), ("yes", "no"), ("no", "yes")])
def test_a_token_works_once(db: firestore.Client, first: str, second: str) -> None:
    token = action.issue("alice", "phone", "new")
    alert_answer.respond(token, first)
    assert error(alert_answer.respond, token, second) == (409, "already_answered")
    assert status_of(db, "new")["status"] == ("revoked" if first == "no" else "active")


def test_two_answers_at_once_with_one_token_let_exactly_one_through(db: firestore.Client) -> None:
    token = action.issue("alice", "phone", "new")

    def answer(_: int) -> str:
        try:
            alert_answer.respond(token, "no")
            return "ok"
        except Refusal as exc:
            return exc.code

    with ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(answer, range(4)))
    assert results == ["already_answered"] * 3 + ["ok"]


def test_a_bad_answer_is_400_and_does_not_use_the_token_up(db: firestore.Client) -> None:
    token = action.issue("alice", "phone", "new")
    for bad in ("maybe", "", None, "YES", 1):
        assert error(alert_answer.respond, token, bad) == (400, "invalid_request")
    assert alert_answer.respond(token, "yes")["status"] == "active"


def test_a_bad_token_is_401_and_a_missing_one_400_before_anything_is_touched(db: firestore.Client) -> None:
    assert error(alert_answer.respond, "garbage", "no") == (401, "invalid_token")
    assert error(alert_answer.respond, None, "no") == (400, "invalid_request")
    assert error(alert_answer.respond, "", "no") == (400, "invalid_request")
    assert error(alert_answer.respond, {"not": "a string"}, "no") == (400, "invalid_request")
    assert status_of(db, "new")["status"] == "active"


def test_the_alerted_session_must_still_be_active(db: firestore.Client) -> None:
    token = action.issue("alice", "phone", "new")
    closing.revoke_session("alice", "phone", "user_revoked")
    assert error(alert_answer.respond, token, "no") == (401, "session_revoked")
    assert status_of(db, "new")["status"] == "active"


def test_no_about_an_already_closed_session_is_fine_and_yes_is_a_conflict(db: firestore.Client) -> None:
    alert_answer.respond(action.issue("alice", "tablet", "new"), "no")  # the tablet answered first
    assert alert_answer.respond(action.issue("alice", "phone", "new"), "no")["status"] == "revoked"
    assert error(alert_answer.respond, action.issue("alice", "phone", "new"), "yes") == (409, "session_closed")


def test_yes_from_two_devices_keeps_the_first_confirmation(db: firestore.Client) -> None:
    alert_answer.respond(action.issue("alice", "tablet", "new"), "yes")
    first = status_of(db, "new")["confirmedAt"]
    alert_answer.respond(action.issue("alice", "phone", "new"), "yes")
    assert status_of(db, "new")["confirmedAt"] == first


def test_a_failed_action_gives_the_token_back(db: firestore.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    token = action.issue("alice", "phone", "new")

    def down(uid: str, sid: str) -> list[str]:
        raise unavailable()

    monkeypatch.setattr(alert_answer, "reject", down)
    assert error(alert_answer.respond, token, "no") == (503, "unavailable")
    monkeypatch.undo()
    assert alert_answer.respond(token, "no")["status"] == "revoked"


def test_the_used_token_record_expires_with_the_token(db: firestore.Client) -> None:
    token = action.issue("alice", "phone", "new")
    claims = action.verify(token)
    alert_answer.respond(token, "yes")
    used = db.document(f"usedActionTokens/{claims['jti']}").get()
    assert used.get("uid") == "alice" and used.get("answer") == "yes"
    assert used.get("expireAt").timestamp() >= claims["exp"]
