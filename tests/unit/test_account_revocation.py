"""When Firebase Auth's tokensValidAfterTime ends sessions, read from the user records
firebase-admin builds out of the Auth API's answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from firebase_admin import auth

from mydevices import account
from mydevices.errors import Refusal

CREATED_MS = 1_700_000_000_999  # the last millisecond of a second


def _user(created_ms: int, valid_since_s: int | None) -> auth.UserRecord:
    record: dict[str, object] = {"localId": "u1", "createdAt": str(created_ms)}
    if valid_since_s is not None:
        record["validSince"] = str(valid_since_s)
    return auth.UserRecord(record)


def test_a_new_account_whose_creation_stamp_fell_in_the_next_second_can_sign_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign-up signs in at `createdAt` and stamps validSince a moment later: across a second
    boundary, the first sign-in (auth_time = created second) is older than validSince. It revoked
    nothing, so it must not refuse the user's first login (seen in the Auth emulator in CI)."""
    monkeypatch.setattr(account, "_user", lambda uid: _user(CREATED_MS, CREATED_MS // 1000 + 1))
    assert account.check_sign_in("u1", CREATED_MS // 1000) is None


def test_a_revocation_later_on_still_refuses_a_sign_in_from_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    revoked_s = CREATED_MS // 1000 + 3600
    monkeypatch.setattr(account, "_user", lambda uid: _user(CREATED_MS, revoked_s))
    with pytest.raises(Refusal) as refused:
        account.check_sign_in("u1", revoked_s - 1)
    assert refused.value.code.value == "session_revoked"
    assert account.check_sign_in("u1", revoked_s) is not None
    assert account.why_ended("u1", datetime.fromtimestamp(revoked_s - 10, UTC)) == account.Ended(
        account.CREDENTIALS_REVOKED, datetime.fromtimestamp(revoked_s, UTC))
