"""Races against the running api function on the real Firestore emulator, each repeated a few
times (the emulator serialises contended transactions slowly, so rounds stay small).

The api runs under functions-framework's gunicorn: one worker process with several threads, so
requests really run at once and refreshes of one session meet the in-process queue in
sessions.py. A second api runs with two worker processes, where refreshes of one session also
meet in Firestore's transactions, as on two Cloud Functions instances.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
import requests
from google.cloud import firestore

from infra.local.stack import Stack, group_stats
from support.devices import GALAXY, IPAD, IPHONE, PIXEL, Device, error_code, signed_in
from support.waiting import wait_for

ROUNDS = 5  # rounds of 20 refreshes
SPREAD_ROUNDS = 6  # rounds of the two-sided races, their start spread over the other side's run time
REFRESHERS = 20

outcomes: Counter[str] = Counter()  # what the rounds of each race ended as (printed at the end)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print("\nrace outcomes:", dict(sorted(outcomes.items())))


@pytest.fixture(scope="module")
def two_workers(stack: Stack) -> Iterator[str]:
    server = stack.start_function("api", "http", {"WORKERS": "2", "THREADS": "8"})
    pid = server.pid
    assert pid is not None
    # gunicorn's arbiter and its two worker processes; the server answers as soon as the first
    # worker is up, so the second may still be forking.
    wait_for(lambda: len(list(group_stats(pid))) >= 3, 60, interval=0.1)
    assert len(list(group_stats(pid))) == 3
    yield server.url
    server.stop()


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def later(seconds: float, call: Callable[[], Any]) -> Callable[[], Any]:
    """`call`, started `seconds` after the others: rounds spread the start over the other side's
    run time, so each race is met at several points, not only where one side always wins."""

    def delayed() -> Any:
        time.sleep(seconds)
        return call()

    return delayed


def spread(rounds: int, span: float) -> list[float]:
    return [span * n / max(rounds - 1, 1) for n in range(rounds)]


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def sessions_of(db: firestore.Client, uid: str) -> dict[str, dict[str, Any]]:
    return {snap.id: snap.to_dict() or {} for snap in db.collection(f"users/{uid}/sessions").stream()}


# --- 20 refreshes of one token at once -----------------------------------------------------------


def concurrent_refreshes(base: str, sign_up: Callable[[], tuple[str, str]], db: firestore.Client, label: str) -> None:
    for _ in range(ROUNDS):
        uid, id_token = sign_up()
        phone = signed_in(base, id_token)
        token = phone.refresh_token
        answers = at_once(*[partial(phone.refresh, token) for _ in range(REFRESHERS)])
        assert [a.status_code for a in answers] == [200] * REFRESHERS, [a.text for a in answers]
        assert len({a.content for a in answers}) == 1  # byte for byte the same answer
        secret = db.document(f"sessionSecrets/{phone.session_id}").get().to_dict() or {}
        assert secret["generation"] == 1  # one rotation
        assert list(db.collection(f"users/{uid}/securityEvents").stream()) == []  # no theft alarm
        phone.adopt(answers[0])
        assert phone.get("/v1/sessions/current").status_code == 200
        assert phone.refresh().status_code == 200
        outcomes[f"{label}: one rotation, {REFRESHERS} identical answers"] += 1


def test_concurrent_refreshes_in_one_process_rotate_once_and_all_get_the_same_answer(
    api: str, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    concurrent_refreshes(api, sign_up, db, "refresh x20, 1 worker")


def test_concurrent_refreshes_across_processes_rotate_once_and_all_get_the_same_answer(
    two_workers: str, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    concurrent_refreshes(two_workers, sign_up, db, "refresh x20, 2 workers")


# --- refresh against revoke ----------------------------------------------------------------------


def test_after_a_revoke_returns_no_token_of_the_racing_refresh_works(
    api: str, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    _, id_token = sign_up()
    probe = signed_in(api, id_token)
    refresh_time = min(timed(lambda: probe.adopt(probe.refresh()))[1] for _ in range(3))
    for delay in spread(SPREAD_ROUNDS, 2 * refresh_time):
        head_start = delay - refresh_time  # < 0: the refresh starts first
        _, id_token = sign_up()
        phone = signed_in(api, id_token)
        pixel = signed_in(api, id_token, PIXEL)
        revoke = partial(phone.delete, f"/v1/sessions/{pixel.session_id}")
        revoked, refreshed = at_once(later(max(-head_start, 0), revoke), later(max(head_start, 0), pixel.refresh))
        assert revoked.status_code == 200, revoked.text
        if refreshed.status_code == 200:
            pixel.adopt(refreshed)  # the pixel now holds whatever the refresh answered
            outcomes["refresh vs revoke: refresh first"] += 1
        else:
            assert (refreshed.status_code, error_code(refreshed)) == (401, "session_revoked"), refreshed.text
            outcomes["refresh vs revoke: revoke first"] += 1
        after = pixel.get("/v1/sessions/current")
        assert (after.status_code, error_code(after)) == (401, "session_revoked")
        again = pixel.refresh()
        assert (again.status_code, error_code(again)) == (401, "session_revoked")
        assert phone.get("/v1/sessions/current").status_code == 200  # nobody else was signed out


# --- two logins of one device --------------------------------------------------------------------


def test_two_logins_of_one_device_at_once_leave_exactly_one_active_session(
    api: str, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    for n in range(SPREAD_ROUNDS):
        uid, id_token = sign_up()
        first = Device(api, dict(IPHONE))
        if n % 2:  # the device already has a session that both logins replace
            first.login(id_token)
        else:  # first contact: a device id handed out, no session yet
            first.device_id = requests.get(f"{api}/.well-known/jwks.json", timeout=30).headers["X-Device-Id"]
        second = Device(api, dict(IPHONE), device_id=first.device_id)
        a, b = at_once(partial(first.login, id_token), partial(second.login, id_token))
        sids = {a.json()["session"]["sessionId"], b.json()["session"]["sessionId"]}
        sessions = sessions_of(db, uid)
        active = [sid for sid, doc in sessions.items() if doc["status"] == "active"]
        assert len(active) == 1 and active[0] in sids
        pointer = db.document(f"users/{uid}/devices/{first.device_id.split('.')[0]}").get().to_dict() or {}
        assert pointer["sessionId"] == active[0]
        for sid, doc in sessions.items():
            if sid != active[0]:
                assert (doc["status"], doc["revokedReason"]) == ("revoked", "replaced")
        winner = first if first.session_id == active[0] else second
        assert winner.get("/v1/sessions/current").status_code == 200
        outcomes["two logins of one device: " + ("re-login" if n % 2 else "first contact")] += 1


# --- revoke-others against a new login -----------------------------------------------------------


logged_in_or_refused = (201, 401)


def test_revoke_others_racing_a_new_login_leaves_a_consistent_state(
    api: str, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    _, id_token = sign_up()
    _, login_time = timed(lambda: signed_in(api, id_token))
    for delay in spread(SPREAD_ROUNDS, login_time * 1.5):
        uid, id_token = sign_up()
        phone = signed_in(api, id_token)
        others = [signed_in(api, id_token, spec) for spec in (PIXEL, GALAXY)]
        tablet = Device(api, dict(IPAD))
        revoked, logged_in = at_once(later(delay, partial(phone.post, "/v1/sessions/revoke-others")),
                                     partial(tablet.login, id_token, expect=logged_in_or_refused))
        assert revoked.status_code == 200, revoked.text
        if logged_in.status_code == 401:
            # After the closure's mark, a login needs a sign-in made after it: refused, and nothing
            # was written for the tablet.
            assert error_code(logged_in) == "reauthentication_required", logged_in.text
            assert tablet.session_id == ""
            outcomes["revoke-others vs login: login refused (after the closure)"] += 1
        sessions = sessions_of(db, uid)
        for doc in sessions.values():
            assert doc["status"] in ("active", "revoked")
            if doc["status"] == "revoked":
                assert doc["revokedReason"] == "revoke_others" and doc["revokedAt"] is not None
        assert sessions[phone.session_id]["status"] == "active"
        assert all(sessions[other.session_id]["status"] == "revoked" for other in others)
        closed = [sid for sid, doc in sessions.items() if doc["status"] == "revoked"]
        assert revoked.json() == {"revoked": len(closed)}
        listed = phone.get("/v1/sessions").json()["sessions"]
        assert {s["sessionId"] for s in listed} == {sid for sid, doc in sessions.items() if doc["status"] == "active"}
        if logged_in.status_code == 401:
            continue
        mine = tablet.get("/v1/sessions/current")
        if sessions[tablet.session_id]["status"] == "active":
            assert mine.status_code == 200
            outcomes["revoke-others vs login: new session kept"] += 1
        else:
            assert (mine.status_code, error_code(mine)) == (401, "session_revoked")
            outcomes["revoke-others vs login: new session closed"] += 1
        assert logged_in.status_code == 201
