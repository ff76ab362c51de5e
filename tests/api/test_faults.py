"""Faults on the real stack: Firestore crashing (SIGKILL, then a restart) or hanging (SIGSTOP,
then SIGCONT) under a stream of requests, and Pub/Sub down when a session is revoked.

The client stream behaves as an app would: it logs in, calls, refreshes, lists and logs out in
a loop; on a 503 it waits and repeats the same request (same tokens); when its session is gone it
logs in again. The emulator keeps data only in memory, so after a crash every session made before
it is gone: `invalid_token` is expected then, for those sessions only (production Firestore keeps
its data; a hang keeps it here too, and there no request may fail but with 503).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests
from google.cloud import firestore
from google.events.cloud.firestore import Document, DocumentEventData, Value

from infra.bench.environment import forget_cached_state
from infra.local.stack import SESSION_EVENTS_TOPIC, Stack
from mydevices import config
from mydevices.push import events, outbox
from support.devices import IPAD, IPHONE, PIXEL, Device, error_code
from support.push import StackFcm, sent
from support.serving import function_url
from support.waiting import next_second, wait_for

FIRESTORE_TIMEOUT = 2  # seconds the api waits for Firestore before answering 503
PUBLISH_TIMEOUT = 5  # seconds the trigger waits for Pub/Sub before parking the event
MAX_REQUESTS = 400  # the stream's bound, whatever happens
REQUEST_TIMEOUT = 20  # an api waiting at most FIRESTORE_TIMEOUT per call answers well within this
RETRY_PAUSE = 0.3  # the stream's wait after a 503 (Retry-After says 2 s; shorter gives more samples)
ABANDONED_LOCKS = 60  # seconds the emulator keeps the locks of a transaction its client gave up on

faults: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print("\nfault outcomes:", dict(sorted(faults.items())))


@pytest.fixture(scope="module", autouse=True)
def leave_no_trace(stack: Stack) -> Iterator[None]:
    """Whatever happened here, later modules get a Pub/Sub with nothing in flight (a message
    still being redelivered to a function that is gone can hold up a push subscription) and an
    empty outbox (a later trigger would publish what is parked)."""
    yield
    stack.pubsub.stop(kill=True)
    stack.pubsub.start().wait_ready()
    db = firestore.Client(project=stack.project)
    for snapshot in db.collection(outbox.COLLECTION).stream():
        snapshot.reference.delete()


api_url = function_url("api", {"MYDEVICES_FIRESTORE_TIMEOUT_SECONDS": str(FIRESTORE_TIMEOUT)})


# --- the client stream ---------------------------------------------------------------------------


@dataclass
class Answer:
    op: str
    status: int
    code: str | None
    retry_after: str | None
    stale: bool  # the session it used was made before a crash that lost it
    after_fault: bool  # sent after the fault ended
    retry: bool  # repeats a request answered 503 (which may have taken effect all the same)
    at: float = field(default_factory=time.monotonic)  # when the answer came
    took: float = 0.0


@dataclass
class Stream:
    """A thread playing one app against the api, recording every answer."""

    base: str
    id_token: str
    answers: list[Answer] = field(default_factory=list)
    epoch: int = 0  # bumped by the test when the emulator loses its data
    fault_over: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    cycles_after_fault: int = 0

    def __post_init__(self) -> None:
        self.device = Device(self.base, dict(IPHONE))
        self.thread = threading.Thread(target=self.run, name="client-stream", daemon=True)

    def call(self, op: str) -> requests.Response:
        device = self.device
        if op == "login":
            headers = {"Authorization": f"Bearer {self.id_token}"}
            if device.device_id:
                headers["X-Device-Id"] = device.device_id
            return device.http.post(f"{self.base}/v1/sessions", json={"device": device.device}, headers=headers,
                                    timeout=REQUEST_TIMEOUT)
        if op == "refresh":
            return device.http.post(f"{self.base}/v1/sessions/refresh", json={"refreshToken": device.refresh_token},
                                    headers={"X-Device-Id": device.device_id}, timeout=REQUEST_TIMEOUT)
        if op == "logout":
            return device.http.post(f"{self.base}/v1/sessions/logout", headers=device.headers(),
                                    timeout=REQUEST_TIMEOUT)
        path = "/v1/sessions" if op == "list" else "/v1/sessions/current"
        return device.http.get(f"{self.base}{path}", headers=device.headers(), timeout=REQUEST_TIMEOUT)

    def run(self) -> None:
        ops = ["login", "current", "refresh", "current", "list", "logout"]
        step, session_epoch, retry = 0, self.epoch, False
        while not self.stop.is_set() and len(self.answers) < MAX_REQUESTS:
            op = ops[step]
            after_fault = self.fault_over
            sent = time.monotonic()
            try:
                answer = self.call(op)
            except requests.RequestException as exc:  # no answer at all: recorded, and a failure
                self.answers.append(Answer(op, 0, type(exc).__name__, None, False, after_fault, retry))
                continue
            code = error_code(answer) if answer.status_code >= 400 else None
            stale = op != "login" and session_epoch != self.epoch
            self.answers.append(Answer(op, answer.status_code, code, answer.headers.get("Retry-After"), stale,
                                       after_fault, retry, took=time.monotonic() - sent))
            retry = answer.status_code == 503
            if retry:
                time.sleep(RETRY_PAUSE)
                continue  # the same request again
            if answer.status_code >= 400:
                step = 0  # signed out: log in again
                continue
            if op == "login":
                data = answer.json()
                self.device.device_id = data["deviceId"]
                self.device.access_token, self.device.refresh_token = data["accessToken"], data["refreshToken"]
                session_epoch = self.epoch
            elif op == "refresh":
                self.device.adopt(answer)
            step = (step + 1) % len(ops)
            if step == 0 and after_fault:
                self.cycles_after_fault += 1

    def count(self, status: int) -> int:
        return sum(answer.status == status for answer in self.answers)


def until(predicate: Callable[[], bool], what: str, timeout: float = 60.0, stream: Stream | None = None) -> None:
    if not wait_for(predicate, timeout, interval=0.1):
        recent = stream.answers[-20:] if stream is not None else []
        pytest.fail(f"gave up waiting for {what}; the last answers: " + "\n".join(map(str, recent)))


def check_answers(stream: Stream, *, data_lost: bool) -> None:
    for answer in stream.answers:
        if answer.status in (200, 201):
            continue
        if answer.status == 503:
            assert answer.code == "unavailable" and answer.retry_after is not None and int(answer.retry_after) > 0
            continue
        if answer.retry and answer.op == "logout" and (answer.status, answer.code) == (401, "session_revoked"):
            continue  # the logout answered 503 had ended the session after all
        # Only a crash that lost the data may cost a session, and only one made before it.
        assert data_lost and answer.stale and (answer.status, answer.code) == (401, "invalid_token"), answer


def check_not_half_written(db: firestore.Client, uid: str) -> int:
    """Every session has its secrets and its device pointer, every active one is its device's
    current session, and nothing points to a session that does not exist. Returns how many."""
    sessions = {snap.id: snap.to_dict() or {} for snap in db.collection(f"users/{uid}/sessions").stream()}
    pointers = {snap.id: snap.to_dict() or {} for snap in db.collection(f"users/{uid}/devices").stream()}
    secrets = {snap.id for snap in db.collection("sessionSecrets").where(
        filter=firestore.FieldFilter("uid", "==", uid)).stream()}
    assert secrets == set(sessions)
    for sid, doc in sessions.items():
        assert doc["deviceId"] in pointers, sid
        if doc["status"] == "active":
            assert pointers[doc["deviceId"]]["sessionId"] == sid
    assert all(pointer["sessionId"] in sessions for pointer in pointers.values())
    return len(sessions)


# --- Firestore ------------------------------------------------------------------------------------


@contextlib.contextmanager
def streaming(base: str, id_token: str) -> Iterator[Stream]:
    """A stream running against the api, already answered 200 a few times; stopped on the way out."""
    stream = Stream(base, id_token)
    stream.thread.start()
    try:
        until(lambda: stream.count(200) >= 8, "requests before the fault")
        yield stream
    finally:
        stream.stop.set()
        stream.thread.join(60)


def test_firestore_crashing_under_load_gives_503s_then_recovers_and_leaves_no_half_written_session(
    api_url: str, stack: Stack, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    uid, id_token = sign_up()
    with streaming(api_url, id_token) as stream:
        stream.epoch += 1
        stack.firestore.stop(kill=True)  # SIGKILL: the emulator's in-memory data goes with it
        faults["firestore killed"] += 1
        until(lambda: stream.count(503) >= 3, "503s while Firestore is down", stream=stream)
        stack.firestore.start().wait_ready()
        stream.fault_over = True
        until(lambda: stream.cycles_after_fault >= 2, "two whole cycles after the restart", stream=stream)
    check_answers(stream, data_lost=True)
    assert stream.count(500) == 0 and stream.count(503) >= 3
    sessions = check_not_half_written(db, uid)
    assert sessions >= 2
    faults[f"firestore killed: {len(stream.answers)} requests, {stream.count(503)} x 503, none 500, recovered"] += 1


def test_firestore_hanging_under_load_gives_only_503s_and_nobody_is_signed_out(
    api_url: str, stack: Stack, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    uid, id_token = sign_up()
    with streaming(api_url, id_token) as stream:
        stack.firestore.pause()
        faults["firestore paused"] += 1
        try:
            until(lambda: stream.count(503) >= 3, "503s while Firestore hangs", stream=stream)
        finally:
            stack.firestore.resume()
        stream.fault_over = True
        # A transaction cut off by the hang keeps its documents locked until Firestore expires it
        # (about 60 s on the emulator): requests needing them get 503 until then.
        until(lambda: stream.cycles_after_fault >= 2, "two whole cycles after the hang", ABANDONED_LOCKS + 60,
              stream=stream)
    check_answers(stream, data_lost=False)
    assert stream.count(503) >= 3
    assert list(db.collection(f"users/{uid}/securityEvents").stream()) == []  # no retry looked like theft
    assert check_not_half_written(db, uid) >= 2
    faults[f"firestore paused: {len(stream.answers)} requests, {stream.count(503)} x 503, none 500, recovered"] += 1


# --- Pub/Sub -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> Iterator[StackFcm]:
    """The event functions, the trigger waiting at most PUBLISH_TIMEOUT for Pub/Sub."""
    trigger = stack.start_function("on_session_written", extra_env={
        "MYDEVICES_PUBLISH_TIMEOUT_SECONDS": str(PUBLISH_TIMEOUT)})
    push = stack.start_function("send_session_push")
    fcm = stack.fcm
    fcm.clear()
    try:
        # Only on these ports do the emulators deliver to them (a function left running elsewhere holds them).
        assert (trigger.port, push.port) == (stack.ports.trigger, stack.ports.push), "the event ports are taken"
        yield fcm
    finally:
        trigger.stop()
        push.stop()
        fcm.clear()


def test_a_revocation_while_pubsub_is_down_holds_at_once_and_its_push_goes_out_when_pubsub_is_back(
    api_url: str, stack: Stack, pipeline: StackFcm, sign_up: Callable[[], tuple[str, str]], db: firestore.Client
) -> None:
    fcm = pipeline
    email = f"faults-{uuid.uuid4().hex[:12]}@example.com"
    _, id_token = stack.auth.sign_up(email)
    phone = Device(api_url, dict(IPHONE))
    phone.login(id_token, push_token="tok-phone-" + uuid.uuid4().hex)
    pixel_token = "tok-pixel-" + uuid.uuid4().hex
    pixel = Device(api_url, dict(PIXEL))
    pixel.login(id_token, push_token=pixel_token)
    until(lambda: len(sent(fcm.messages(), "new_login_alert")) == 1, "the pipeline to work before the fault")
    fcm.clear()

    stack.pubsub.stop(kill=True)
    faults["pubsub killed"] += 1
    try:
        assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200
        revoked = pixel.get("/v1/sessions/current")
        assert (revoked.status_code, error_code(revoked)) == (401, "session_revoked")  # at once, without Pub/Sub
        parked = db.collection("outbox")
        until(lambda: any((snap.to_dict() or {}).get("event", {}).get("sessionId") == pixel.session_id
                          for snap in parked.stream()), "the trigger to park the event", timeout=30)
        assert sent(fcm.messages(), "force_logout") == []
    finally:
        stack.pubsub.start().wait_ready()

    # The next session change anywhere has the trigger publish what it parked first.
    tablet = Device(api_url, dict(IPAD))
    next_second(stack)  # after the closure, a login needs a sign-in made after it
    tablet.login(stack.auth.sign_in(email)[1])
    until(lambda: sent(fcm.messages(), "force_logout") != [], "the parked force_logout", timeout=30)
    until(lambda: sent(fcm.messages(), "new_login_alert") != [], "the tablet's alert", timeout=30)
    time.sleep(1)  # anything sent twice would arrive by now
    assert sent(fcm.messages(), "force_logout") == [{
        "token": pixel_token,
        "data": {"action": "force_logout", "reason": "user_revoked", "sessionId": pixel.session_id},
        "android": {"priority": "high"},
        "apns": {"headers": {"apns-push-type": "background", "apns-priority": "5"},
                 "payload": {"aps": {"content-available": 1}}},
    }]
    assert list(parked.stream()) == []
    assert pixel.get("/v1/sessions/current").status_code == 401
    faults["pubsub killed: revocation held, push sent once after restart"] += 1


def login_change(project: str, uid: str, sid: str) -> bytes:
    """The DocumentEventData of a session document created active, as Eventarc sends it."""
    name = f"projects/{project}/databases/(default)/documents/users/{uid}/sessions/{sid}"
    fields = {"status": Value(string_value="active"), "deviceName": Value(string_value="Pixel 8")}
    doc = Document(name=name, fields=fields)
    raw: bytes = DocumentEventData.serialize(DocumentEventData(value=doc))
    return raw


def test_events_parked_while_pubsub_is_down_leave_in_their_order_once_it_is_back(
    stack: Stack, db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trigger's own code, in this process, against the real emulators."""
    monkeypatch.setenv("MYDEVICES_PUBLISH_TIMEOUT_SECONDS", "1")  # to fail fast while Pub/Sub is down
    forget_cached_state()
    for snapshot in db.collection(outbox.COLLECTION).stream():  # only this test's events, in order
        snapshot.reference.delete()
    uid = "order-" + uuid.uuid4().hex
    tap = f"http://{stack.pubsub.host}/v1/projects/{stack.project}/subscriptions/tap-{uid}"
    try:
        stack.pubsub.stop(kill=True)
        faults["pubsub killed (in-process trigger)"] += 1
        try:
            with pytest.raises(Exception):  # noqa: B017 - whatever the client raises, the run fails
                events.handle("e1-" + uid, login_change(stack.project, uid, "s1"))
            with pytest.raises(events.PublishBlocked):
                events.handle("e2-" + uid, login_change(stack.project, uid, "s2"))
            parked = [snap.get("eventId") for snap in db.collection(outbox.COLLECTION).order_by("parkedAt").stream()]
            assert parked == ["e1-" + uid, "e2-" + uid]
        finally:
            stack.pubsub.start().wait_ready()
        requests.put(tap, json={"topic": f"projects/{stack.project}/topics/{SESSION_EVENTS_TOPIC}",
                                "enableMessageOrdering": True}, timeout=10).raise_for_status()
        monkeypatch.setenv("MYDEVICES_PUBLISH_TIMEOUT_SECONDS", str(PUBLISH_TIMEOUT))
        config.settings.cache_clear()
        events.handle("e3-" + uid, login_change(stack.project, uid, "s3"))
        pulled = requests.post(f"{tap}:pull", json={"maxMessages": 10}, timeout=10).json()["receivedMessages"]
        assert [m["message"]["attributes"]["eventId"] for m in pulled] == [f"e{n}-{uid}" for n in (1, 2, 3)]
        assert list(db.collection(outbox.COLLECTION).stream()) == []
        faults["pubsub killed (in-process trigger): 3 events, published once each, in order"] += 1
    finally:
        requests.delete(tap, timeout=10)
        monkeypatch.delenv("MYDEVICES_PUBLISH_TIMEOUT_SECONDS")
        forget_cached_state()
