"""Abuse limits on the real stack: logins and refreshes per client address and per user (429
`rate_limited` with Retry-After), counted in Firestore so they hold across instances, and the cap
on a user's active sessions (409 `device_limit_reached`).

Two api instances share the low limits below; every limit test alternates between them, so a
limit kept per process would let twice as many through. Each test uses its own users and its own
client addresses (X-Forwarded-For through one trusted proxy), so tests never share a counter.
Windows are a day long, so no window ends in the middle of a test; one test uses a 2-second
window to see a refused client let in again after Retry-After.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from google.cloud import firestore

from infra.local.stack import Stack
from mydevices import rate_limits
from support.devices import IPAD, IPHONE, PIXEL, error_code
from support.serving import function_url
from support.waiting import next_second

DAY = 86400
LIMITS = {
    "MYDEVICES_TRUSTED_PROXIES": "1",
    "MYDEVICES_LOGIN_RATE_PER_IP": f"3/{DAY}",
    "MYDEVICES_LOGIN_RATE_PER_USER": f"4/{DAY}",
    "MYDEVICES_REFRESH_RATE_PER_IP": f"3/{DAY}",
    "MYDEVICES_REFRESH_RATE_PER_SESSION": f"4/{DAY}",
}
CAP = 3
SHORT_WINDOW = 2
CAPPED = {  # the device cap, and a short per-address login window (per-user limits stay off)
    "MYDEVICES_TRUSTED_PROXIES": "1",
    "MYDEVICES_MAX_ACTIVE_SESSIONS": str(CAP),
    "MYDEVICES_LOGIN_RATE_PER_IP": f"2/{SHORT_WINDOW}",
}
LAPTOP = {"name": "Galaxy Tab S9", "model": "SM-X710", "platform": "android", "osVersion": "14", "appVersion": "2.3.0"}


@dataclass
class Instances:
    urls: list[str]

    def turns(self) -> Iterator[str]:
        """The instances in turn, forever."""
        return itertools.cycle(self.urls)


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[Instances]:
    servers = [stack.start_function("api", "http", LIMITS, port=None) for _ in range(2)]
    try:
        yield Instances([server.url for server in servers])
    finally:
        for server in servers:
            server.stop()


capped = function_url("api", CAPPED)


def public_ip() -> str:
    """A fresh public (global) IPv4 address, so no two tests share a counter."""
    return f"81.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def login(base: str, id_token: str, ip: str, spec: dict[str, Any] = IPHONE,
          device_id: str | None = None, **extra: Any) -> requests.Response:
    """`extra`: what the login body asks for besides its device (e.g. sessionLifetimeSeconds)."""
    headers = {"Authorization": f"Bearer {id_token}", "X-Forwarded-For": ip}
    if device_id:
        headers["X-Device-Id"] = device_id
    return requests.post(f"{base}/v1/sessions", json={"device": spec, **extra}, headers=headers, timeout=30)


def refresh(base: str, token: str, device_id: str, ip: str) -> requests.Response:
    return requests.post(f"{base}/v1/sessions/refresh", json={"refreshToken": token},
                         headers={"X-Device-Id": device_id, "X-Forwarded-For": ip}, timeout=30)


def assert_rate_limited(answer: requests.Response, window: int = DAY) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.json() == {"error": {"code": "rate_limited", "message": answer.json()["error"]["message"]}}
    retry_after = int(answer.headers["Retry-After"])
    assert 1 <= retry_after <= window
    return retry_after


# --- logins --------------------------------------------------------------------------------------


def test_logins_from_one_address_are_limited_across_instances_before_the_token_is_checked(
    limited: Instances, sign_up: Callable[[], tuple[str, str]]
) -> None:
    ip, turns = public_ip(), limited.turns()
    for _ in range(3):  # three users: the per-user limit is not what stops the fourth
        assert login(next(turns), sign_up()[1], ip).status_code == 201
    assert_rate_limited(login(next(turns), sign_up()[1], ip))
    assert_rate_limited(login(next(turns), sign_up()[1], ip))
    # A flood of made-up tokens from that address is refused without verifying them, and so is a
    # malformed Authorization header: the address is counted before the header is even read.
    assert_rate_limited(login(next(turns), "not-a-token", ip))
    assert_rate_limited(login(next(turns), "", ip))
    # Other addresses are not affected.
    assert login(next(turns), sign_up()[1], public_ip()).status_code == 201


def test_logins_of_one_user_are_limited_whatever_the_address(
    limited: Instances, sign_up: Callable[[], tuple[str, str]]
) -> None:
    _, id_token = sign_up()
    turns = limited.turns()
    first = login(next(turns), id_token, public_ip())
    assert first.status_code == 201
    device_id = first.json()["deviceId"]
    for _ in range(3):  # re-logins of one device: the device cap plays no part
        assert login(next(turns), id_token, public_ip(), device_id=device_id).status_code == 201
    assert_rate_limited(login(next(turns), id_token, public_ip(), device_id=device_id))
    assert error_code(login(next(turns), "not-a-token", public_ip())) == "invalid_token"
    assert login(next(turns), sign_up()[1], public_ip()).status_code == 201  # another user


def test_a_refused_client_is_let_in_again_after_retry_after(
    capped: str, sign_up: Callable[[], tuple[str, str]], stack: Stack
) -> None:
    ip = public_ip()
    answers = [login(capped, sign_up()[1], ip) for _ in range(3)]
    while answers[-1].status_code == 201 and len(answers) < 12:  # a window may end meanwhile
        answers.append(login(capped, sign_up()[1], ip))
    retry_after = assert_rate_limited(answers[-1], SHORT_WINDOW)
    stack.clock.advance(retry_after)
    assert login(capped, sign_up()[1], ip).status_code == 201


# --- refreshes -----------------------------------------------------------------------------------


def test_failed_refreshes_from_one_address_are_limited_and_a_refused_one_rotates_nothing(
    limited: Instances, sign_up: Callable[[], tuple[str, str]]
) -> None:
    """Only a refresh that fails is counted per address (issue 24): a genuine one pays no counter
    write, so an address's genuine refreshes are bounded by each session's own budget."""
    turns = limited.turns()
    data = login(next(turns), sign_up()[1], public_ip()).json()
    device_id, token = data["deviceId"], data["refreshToken"]
    other = login(next(turns), sign_up()[1], public_ip()).json()
    ip = public_ip()
    for _ in range(4):  # more genuine refreshes than the address's limit (all of the session's budget)
        answer = refresh(next(turns), token, device_id, ip)
        assert answer.status_code == 200, answer.text
        token = answer.json()["refreshToken"]
    for _ in range(3):
        assert error_code(refresh(next(turns), "made.0.up", device_id, ip)) == "invalid_token"
    # The fourth failure is refused; so is the fifth, on the other instance, which then knows too.
    assert_rate_limited(refresh(next(turns), "made.0.up", device_id, ip))
    assert_rate_limited(refresh(next(turns), f"{data['session']['sessionId']}.0.made-up", device_id, ip))
    # Now each instance refuses the address from memory, even a genuine token, before any work.
    for _ in limited.urls:
        assert_rate_limited(refresh(next(turns), other["refreshToken"], other["deviceId"], ip))
    # The refused refresh changed nothing: the same token still works from elsewhere.
    assert refresh(next(turns), other["refreshToken"], other["deviceId"], public_ip()).status_code == 200


def test_refreshes_of_one_session_are_limited_across_addresses_and_spare_the_users_other_sessions(
    limited: Instances, sign_up: Callable[[], tuple[str, str]]
) -> None:
    """An intruder's own genuine session, refreshing as fast as it can, spends only its own budget."""
    _, id_token = sign_up()
    turns = limited.turns()
    devices = []
    for spec in (IPHONE, PIXEL):
        data = login(next(turns), id_token, public_ip(), spec).json()
        devices.append([data["deviceId"], data["refreshToken"]])
    noisy, owner = devices
    for _ in range(4):
        answer = refresh(next(turns), noisy[1], noisy[0], public_ip())
        assert answer.status_code == 200, answer.text
        noisy[1] = answer.json()["refreshToken"]
    assert_rate_limited(refresh(next(turns), noisy[1], noisy[0], public_ip()))
    for _ in range(4):  # the user's other session still has its whole allowance
        answer = refresh(next(turns), owner[1], owner[0], public_ip())
        assert answer.status_code == 200, answer.text
        owner[1] = answer.json()["refreshToken"]
    assert_rate_limited(refresh(next(turns), owner[1], owner[0], public_ip()))


# --- what the limiter stores --------------------------------------------------------------------


def test_a_refused_flood_stops_costing_writes_and_counters_expire_and_hold_no_address(
    limited: Instances, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    ip, turns = public_ip(), limited.turns()
    window = int(time.time() // DAY)
    statuses = [login(next(turns), sign_up()[1] if n < 3 else "not-a-token", ip).status_code for n in range(10)]
    assert statuses == [201] * 3 + [429] * 7
    counter = db.document(f"{rate_limits.COLLECTION}/{rate_limits.counter_id('login-ip', ip, window)}").get()
    doc = counter.to_dict()
    assert doc is not None
    # Each instance wrote once more to learn it was over the limit, then refused from memory.
    assert doc["count"] == 3 + len(limited.urls)
    assert set(doc) == {"count", "kind", "expireAt"} and ip not in counter.id
    assert doc["expireAt"] > datetime.now(UTC)


# --- the device cap ------------------------------------------------------------------------------


def test_a_new_device_past_the_cap_is_refused_and_nothing_is_dropped(
    capped: str, sign_up: Callable[[str], tuple[str, str]], stack: Stack
) -> None:
    email = f"capped-{time.time_ns()}@example.com"
    _, id_token = sign_up(email)
    first = [login(capped, id_token, public_ip(), spec).json() for spec in (IPHONE, PIXEL, IPAD)]
    refused = login(capped, id_token, public_ip(), LAPTOP)
    assert refused.status_code == 409, refused.text
    assert error_code(refused) == "device_limit_reached"
    phone = {"Authorization": f"Bearer {first[0]['accessToken']}", "X-Device-Id": first[0]["deviceId"]}
    listed = requests.get(f"{capped}/v1/sessions", headers=phone, timeout=30).json()["sessions"]
    assert {s["sessionId"] for s in listed} == {data["session"]["sessionId"] for data in first}
    # A device signing in again replaces its own session: not a new device.
    again = login(capped, id_token, public_ip(), PIXEL, device_id=first[1]["deviceId"])
    assert again.status_code == 201, again.text
    # Once the user closes a session, the new device gets in.
    closed = requests.delete(f"{capped}/v1/sessions/{first[2]['session']['sessionId']}", headers=phone, timeout=30)
    assert closed.status_code == 200
    next_second(stack)  # a closure asks for a sign-in made after it
    _, fresh_token = stack.auth.sign_in(email)
    assert login(capped, fresh_token, public_ip(), LAPTOP).status_code == 201


def test_sessions_that_expired_but_were_never_closed_do_not_keep_a_new_device_out(
    capped: str, sign_up: Callable[[str], tuple[str, str]], stack: Stack, db: firestore.Client
) -> None:
    """A session past its deadline that no call has seen since is still `active` on its document, so
    the cap's count includes it: a login at the cap closes those first, each as what ended it, and
    counts again. Live sessions still count."""
    email = f"capped-expired-{time.time_ns()}@example.com"
    uid, id_token = sign_up(email)
    kept = login(capped, id_token, public_ip(), IPHONE).json()["session"]["sessionId"]
    brief = [login(capped, id_token, public_ip(), spec, sessionLifetimeSeconds=3600).json()["session"]["sessionId"]
             for spec in (PIXEL, IPAD)]  # "keep me signed in" unticked: an hour
    assert error_code(login(capped, id_token, public_ip(), LAPTOP)) == "device_limit_reached"  # all three live
    stack.clock.advance(hours=2)  # both brief sessions past their absolute deadline; no call has seen them
    _, fresh_token = stack.auth.sign_in(email)
    answer = login(capped, fresh_token, public_ip(), LAPTOP)
    assert answer.status_code == 201, answer.text
    sessions = db.collection("users").document(uid).collection("sessions")
    closed = {sid: (sessions.document(sid).get().to_dict() or {}) for sid in [kept, *brief]}
    assert [(doc["status"], doc["revokedReason"]) for doc in closed.values()] == [
        ("active", None), ("revoked", "expired_max_age"), ("revoked", "expired_max_age")]
    # the cap still holds for live sessions: the kept one and the new one, plus one more, fill it again
    assert login(capped, fresh_token, public_ip(), PIXEL).status_code == 201
    assert error_code(login(capped, fresh_token, public_ip(), IPAD)) == "device_limit_reached"


def test_concurrent_new_devices_cannot_pass_the_cap_together(
    capped: str, sign_up: Callable[[], tuple[str, str]]
) -> None:
    _, id_token = sign_up()
    for spec in (IPHONE, PIXEL):
        assert login(capped, id_token, public_ip(), spec).status_code == 201
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda spec: login(capped, id_token, public_ip(), spec), (IPAD, LAPTOP, IPAD)))
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409], [a.text for a in answers]
    assert all(error_code(a) == "device_limit_reached" for a in answers if a.status_code == 409)
