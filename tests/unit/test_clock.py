"""Time as the product reads it (mydevices/clock.py): each interval a flow depends on, crossed by
moving the clock instead of waiting for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from infra.bench.binding import HTU, DeviceKey
from mydevices import clock, config, dbsc, dpop, fresh_sessions
from mydevices.errors import Refusal
from mydevices.tokens import access, action, keys
from mydevices.tokens.access import LEEWAY_SECONDS, AccessClaims

ISS, AUD = "mydevices", "mydevices-api"


def access_token(ring: keys.Keyring, ttl: int = 600) -> str:
    now = clock.seconds()
    return access.issue(ring, issuer=ISS, audience=AUD, claims=AccessClaims("u1", "s1", "d1", now, now + ttl))


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(Refusal) as raised:
        call()
    return str(raised.value.code)


def test_shift_moves_every_reading_and_reset_puts_it_back() -> None:
    before = time.time()
    clock.shift(86400)
    assert clock.now() - before >= 86400 and clock.seconds() - int(before) >= 86400
    assert (clock.utcnow().timestamp() - before) // 3600 == 24
    clock.reset()
    assert clock.now() - time.time() < 1


def test_an_access_token_lives_its_ten_minutes_and_the_leeway_then_expires(ring: keys.Keyring) -> None:
    token = access_token(ring)
    assert access.verify(ring, token, issuer=ISS, audience=AUD).uid == "u1"  # remembered from here on
    clock.shift(600 + LEEWAY_SECONDS - 2)
    assert access.verify(ring, token, issuer=ISS, audience=AUD).uid == "u1"
    clock.shift(3)
    assert refused(lambda: access.verify(ring, token, issuer=ISS, audience=AUD)) == "token_expired"
    assert access.verify(ring, token, issuer=ISS, audience=AUD, expired_ok=True).sid == "s1"  # a re-login reads it


def test_a_token_from_a_clock_ahead_of_ours_is_not_yet_valid(ring: keys.Keyring) -> None:
    clock.shift(3600)
    token = access_token(ring)
    clock.reset()
    assert refused(lambda: access.verify(ring, token, issuer=ISS, audience=AUD)) == "invalid_token"


def test_an_action_token_answers_for_a_day_then_expires(ring: keys.Keyring) -> None:
    token = action.issue("alice", "phone", "new")
    clock.shift(24 * 3600 - 60)
    assert action.verify(token)["nsid"] == "new"
    clock.shift(120)
    assert refused(lambda: action.verify(token)) == "token_expired"


def test_the_dbsc_bound_cookie_lasts_its_five_minutes(ring: keys.Keyring) -> None:
    cookie = dbsc.cookie_value("s1")
    clock.shift(config.settings().dbsc_cookie_seconds - 1)
    assert dbsc.cookie_valid("s1", cookie)
    clock.shift(2)
    assert not dbsc.cookie_valid("s1", cookie)


def test_a_dpop_proof_is_stale_a_minute_later_and_the_nonce_moves_on(ring: keys.Keyring) -> None:
    key, nonce = DeviceKey(), dpop.nonce()
    proof = key.proof(nonce)
    assert dpop.check(proof, htm="POST", htu=HTU).fault is None
    clock.shift(dpop.PROOF_MAX_AGE + 1)
    stale = dpop.check(proof, htm="POST", htu=HTU).fault
    assert stale is not None and stale.reason == "stale"
    clock.shift(2 * dpop.NONCE_WINDOW)
    late = dpop.check(key.proof(nonce, iat=clock.seconds()), htm="POST", htu=HTU).fault
    assert late is not None and late.code == "use_dpop_nonce"


def test_a_new_session_may_close_others_a_day_later(configure: Callable[..., config.Settings]) -> None:
    configure(MYDEVICES_FRESH_SESSION_HOURS="24")  # the product's default, whatever a stack exported
    session = {"createdAt": clock.utcnow()}
    allowed = fresh_sessions.may_act_from(session)
    assert allowed is not None and allowed - clock.utcnow() > timedelta(hours=23, minutes=59)
    assert refused(lambda: fresh_sessions.require_may_act(session)) == "session_too_new"
    clock.shift(24 * 3600 + 1)
    assert fresh_sessions.may_act_from(session) is None


def test_a_stack_moves_the_clock_through_its_file(configure: Callable[..., config.Settings], tmp_path: Path) -> None:
    moved = tmp_path / "clock"
    moved.write_text("+7200\n")
    configure(MYDEVICES_CLOCK_FILE=str(moved), GOOGLE_CLOUD_PROJECT="demo-test")
    assert 7199 < clock.now() - time.time() < 7201
    moved.write_text("-60\n")  # in place, as `echo -60 > clock` does
    assert -61 < clock.now() - time.time() < -59


@pytest.mark.parametrize("text", ["", "tomorrow", "+1e400", "+1e20", "nan"])
def test_a_clock_file_that_says_nothing_usable_is_the_real_time(configure: Callable[..., config.Settings],
                                                               tmp_path: Path, text: str) -> None:
    moved = tmp_path / "clock"
    moved.write_text(text)
    configure(MYDEVICES_CLOCK_FILE=str(moved), GOOGLE_CLOUD_PROJECT="demo-test")
    assert abs(clock.now() - time.time()) < 1


def test_a_clock_file_being_written_or_mistyped_keeps_the_last_good_offset(
        configure: Callable[..., config.Settings], tmp_path: Path) -> None:
    moved = tmp_path / "clock"
    moved.write_text("+3600\n")
    configure(MYDEVICES_CLOCK_FILE=str(moved), GOOGLE_CLOUD_PROJECT="demo-test")
    assert 3599 < clock.now() - time.time() < 3601
    for text in ("", "+90000 seconds", "+1e20"):
        moved.write_text(text)
        assert 3599 < clock.now() - time.time() < 3601, text


def test_a_deployed_project_refuses_a_clock_file(configure: Callable[..., config.Settings], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="demo-"):
        configure(MYDEVICES_CLOCK_FILE=str(tmp_path / "clock"), GOOGLE_CLOUD_PROJECT="acme-prod")
