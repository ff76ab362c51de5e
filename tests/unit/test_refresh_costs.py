"""What a refresh pays for its abuse limits and its activity (issue 24): the per-session budget
lives in the secret document the rotation writes anyway, the per-address limit charges only a
refresh that fails, and `lastActiveAt` is written at most once per interval."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from mydevices import clock, documents, rate_limits
from mydevices.config import Rate
from mydevices.errors import Code, Refusal


def test_the_session_budget_is_counted_in_the_secret_document_and_refuses_past_it(
    configure: Callable[..., Any],
) -> None:
    configure(MYDEVICES_REFRESH_RATE_PER_SESSION="3/60")
    clock.shift(60 - clock.now() % 60 + 1)  # a second into a window: the loop below stays in it
    secret: dict[str, Any] = {"uid": "u1", "refreshHash": "h"}
    for used in range(1, 4):
        fields = rate_limits.refresh_budget(secret)
        assert fields["refreshCount"] == used
        secret.update(fields)
    with pytest.raises(Refusal) as refused:
        rate_limits.refresh_budget(secret)
    assert refused.value.code is Code.RATE_LIMITED
    assert refused.value.retry_after is not None and 1 <= refused.value.retry_after <= 60
    clock.shift(60)  # the next window: the whole budget again
    assert rate_limits.refresh_budget(secret)["refreshCount"] == 1


def test_a_session_budget_that_is_off_writes_nothing(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_REFRESH_RATE_PER_SESSION="off")
    assert rate_limits.refresh_budget({"refreshCount": 10**6, "refreshWindowEnd": 0}) == {}


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, Rate | None]]:
    """The per-address counter writes a refresh makes, recorded instead of sent to Firestore."""
    calls: list[tuple[str, str | None, Rate | None]] = []
    monkeypatch.setattr(rate_limits, "hit", lambda kind, key, rate: calls.append((kind, key, rate)))
    monkeypatch.setattr(rate_limits, "_over", {})
    return calls


def test_a_genuine_refresh_pays_no_counter_write_and_a_failed_one_pays_one(
    counted: list[tuple[str, str | None, Rate | None]],
) -> None:
    with rate_limits.refresh_failures_from_address("203.0.113.7"):
        pass  # a refresh that succeeded
    assert counted == []
    for code in (Code.INVALID_TOKEN, Code.SESSION_REVOKED, Code.TOKEN_REUSED, Code.DEVICE_PROOF_FAILED,
                 Code.RATE_LIMITED):
        with pytest.raises(Refusal), rate_limits.refresh_failures_from_address("203.0.113.7"):
            raise Refusal(code, "refused")
    assert counted == [("refresh-ip", "203.0.113.7", Rate(120, 60))] * 5


def test_our_own_failures_are_not_charged_to_the_address(
    counted: list[tuple[str, str | None, Rate | None]],
) -> None:
    for code in (Code.UNAVAILABLE, Code.CONTENTION, Code.INTERNAL):
        with pytest.raises(Refusal), rate_limits.refresh_failures_from_address("203.0.113.7"):
            raise Refusal(code, "not the client's doing")
    assert counted == []


def test_a_nonce_challenge_is_charged_so_a_replayed_nonce_less_proof_cannot_flood(
    counted: list[tuple[str, str | None, Rate | None]],
) -> None:
    """A device that follows DPoP meets a nonce challenge once per resume; a script replaying one
    proof without a nonce meets it at every try, each a signature check and a transaction's reads."""
    for _ in range(3):
        with pytest.raises(Refusal), rate_limits.refresh_failures_from_address("203.0.113.7"):
            raise Refusal(Code.USE_DPOP_NONCE, "use the server's nonce")
    assert counted == [("refresh-ip", "203.0.113.7", Rate(120, 60))] * 3


def test_an_address_this_instance_saw_over_the_limit_is_refused_before_any_work(
    counted: list[tuple[str, str | None, Rate | None]],
) -> None:
    now = clock.now()
    window = int(now // 60)
    rate_limits._remember_over(rate_limits.counter_id("refresh-ip", "198.51.100.9", window), (window + 1) * 60, now)
    worked: list[bool] = []
    with pytest.raises(Refusal) as refused, rate_limits.refresh_failures_from_address("198.51.100.9"):
        worked.append(True)
    assert (refused.value.code, worked, counted) == (Code.RATE_LIMITED, [], [])
    with rate_limits.refresh_failures_from_address("198.51.100.10"):  # another address: not affected
        worked.append(True)
    assert worked == [True]


def test_activity_is_written_at_most_once_per_interval() -> None:
    now = clock.utcnow()
    interval = timedelta(hours=1)  # MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS' default
    assert documents.activity({"lastActiveAt": now - interval + timedelta(seconds=1)}, now) == {}
    written = documents.activity({"lastActiveAt": now - interval}, now)
    assert written["lastActiveAt"] == now
    assert written["idleExpiresAt"] == now + timedelta(days=90)  # the idle deadline moves with it
    assert documents.activity({}, now)["lastActiveAt"] == now


def test_an_idle_deadline_that_could_pass_before_the_next_interval_is_renewed_at_once(
    configure: Callable[..., Any]
) -> None:
    """A session in use must never meet its idle timeout: with 15 minutes, every refresh renews it."""
    configure(MYDEVICES_IDLE_TIMEOUT_APP="900")
    now = clock.utcnow()
    session = {"deviceType": "ios", "lastActiveAt": now - timedelta(minutes=10),
               "idleExpiresAt": now + timedelta(minutes=5)}
    assert documents.activity(session, now) == {"lastActiveAt": now, "idleExpiresAt": now + timedelta(minutes=15)}
    far = {**session, "idleExpiresAt": now + timedelta(days=89)}
    assert documents.activity(far, now) == {}


def test_the_activity_interval_is_configurable(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS="600")
    now = clock.utcnow()
    assert documents.activity({"lastActiveAt": now - timedelta(minutes=10)}, now)["lastActiveAt"] == now
