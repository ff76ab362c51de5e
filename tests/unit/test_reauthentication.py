"""Re-verification (flows/account_settings.reauthenticate) asks Firebase Auth about the account,
which spends the project's Auth quota: another user's ID token must cost no lookup, and the call is
counted per session before the token is looked at."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mydevices import account, rate_limits
from mydevices.config import Rate
from mydevices.errors import Code, Refusal
from mydevices.flows import account_settings
from mydevices.flows.validation import Caller
from mydevices.tokens import sign_in

CALLER = Caller("alice", "s" * 22, "d" * 22, {"status": "active", "deviceId": "d" * 22})


@pytest.fixture()
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    def user(uid: str) -> None:
        asked.append(uid)

    monkeypatch.setattr(account, "_user", user)
    return asked


def test_another_users_id_token_is_refused_before_firebase_auth_is_asked(
    configure: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    configure(MYDEVICES_LOGIN_RATE_PER_USER_ADDRESS="off")
    monkeypatch.setattr(sign_in, "verify_claims", lambda _: {"uid": "mallory", "auth_time": 1_700_000_000})
    with pytest.raises(Refusal) as refused:
        account_settings.reauthenticate(CALLER, "a valid token of another user")
    assert refused.value.code == Code.FORBIDDEN
    assert lookups == []


def test_each_reauthentication_is_counted_per_session_before_the_token_is_looked_at(
    configure: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    configure()
    counted: list[tuple[str, str | None, Rate | None]] = []

    def over(kind: str, key: str | None, rate: Rate | None) -> None:
        counted.append((kind, key, rate))
        raise Refusal(Code.RATE_LIMITED, "too many", retry_after=60)

    looked_at: list[str] = []

    def claims(token: str) -> dict[str, Any]:
        looked_at.append(token)
        return {}

    monkeypatch.setattr(rate_limits, "hit", over)
    monkeypatch.setattr(sign_in, "verify_claims", claims)
    with pytest.raises(Refusal) as refused:
        account_settings.reauthenticate(CALLER, "any token")
    assert refused.value.code == Code.RATE_LIMITED
    assert counted == [("reauth-session", CALLER.sid, Rate(20, 3600))]
    assert (looked_at, lookups) == ([], [])
