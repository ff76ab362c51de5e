"""Session lifetimes as settings and arithmetic (lifetimes.py); the real stack proves the flows
(tests/api/test_lifetimes.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mydevices import clock, config, lifetimes
from mydevices.errors import Code, Refusal
from mydevices.push.fanout import SILENT_REASONS

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture()
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    config.settings.cache_clear()
    yield monkeypatch
    config.settings.cache_clear()


def test_durations_are_seconds_or_off_and_nothing_else(settings: pytest.MonkeyPatch) -> None:
    settings.setenv("MYDEVICES_IDLE_TIMEOUT_WEB", "off")
    settings.setenv("MYDEVICES_MAX_SESSION_AGE_APP", "3600")
    conf = config.settings()
    assert (conf.idle_timeout_web, conf.idle_timeout_app, conf.max_session_age_app) == (None, 90 * 86400, 3600)
    for bad in ("0", "-1", "1h", "1.5"):
        settings.setenv("MYDEVICES_RECENT_SIGN_IN_SECONDS", bad)
        config.settings.cache_clear()
        with pytest.raises(ValueError, match="MYDEVICES_RECENT_SIGN_IN_SECONDS"):
            config.settings()


def test_the_shorter_of_platform_and_user_choice_wins_and_off_is_no_limit(settings: pytest.MonkeyPatch) -> None:
    settings.setenv("MYDEVICES_IDLE_TIMEOUT_WEB", "off")
    settings.setenv("MYDEVICES_IDLE_TIMEOUT_APP", str(30 * 86400))
    settings.setenv("MYDEVICES_MAX_SESSION_AGE_WEB", "7200")
    assert lifetimes.idle_seconds("WEB") is None
    assert lifetimes.idle_seconds("WEB", 7) == 7 * 86400
    assert lifetimes.idle_seconds("IOS", 90) == 30 * 86400
    assert lifetimes.idle_seconds("ANDROID", 8) == 30 * 86400  # not one of the choices: ignored
    assert lifetimes.max_age_seconds("WEB", 600) == 600
    assert lifetimes.max_age_seconds("WEB", 9000) == 7200  # never longer than the setting
    assert lifetimes.max_age_seconds("IOS", 9000) == 9000  # off on apps: the app's own choice stands
    assert lifetimes.max_age_seconds("IOS") is None


def test_which_deadline_passed_and_the_earlier_one_caps_tokens() -> None:
    doc = {"idleExpiresAt": NOW + timedelta(hours=1), "absoluteExpiresAt": NOW + timedelta(hours=2)}
    assert lifetimes.expired(doc, NOW) is None
    assert lifetimes.expired(doc, NOW + timedelta(hours=1)) == "idle"
    assert lifetimes.expired(doc, NOW + timedelta(hours=2)) == "max_age"
    assert lifetimes.deadline(doc) == int((NOW + timedelta(hours=1)).timestamp())
    assert lifetimes.expired({"idleExpiresAt": None, "absoluteExpiresAt": None}, NOW) is None
    assert lifetimes.deadline({}) is None


def test_a_recent_sign_in_is_judged_on_the_product_clock_and_says_max_age() -> None:
    session = {"authTime": clock.utcnow() - timedelta(seconds=100)}
    lifetimes.require_recent_sign_in(session, 120)
    lifetimes.require_recent_sign_in({}, None)
    clock.shift(30)
    try:
        with pytest.raises(Refusal) as refused:
            lifetimes.require_recent_sign_in(session, 120)
    finally:
        clock.reset()
    assert (refused.value.code, refused.value.wire_facts()) == (Code.RECENT_SIGN_IN_REQUIRED, {"maxAge": 120})
    with pytest.raises(Refusal):
        lifetimes.require_recent_sign_in({"authTime": None}, 10**9)  # no proof time known: never recent


def test_an_expired_session_sends_no_force_logout() -> None:
    assert lifetimes.EXPIRED <= SILENT_REASONS
