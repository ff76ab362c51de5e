"""The two event functions, served inside this process where the stack expects them.

The stack's Firestore emulator POSTs its CloudEvents to `ports.trigger`, and the Pub/Sub push
subscription delivers to `ports.push`. Serving `on_session_written` and `send_session_push`
there from this process (functions-framework's own app for each, under werkzeug's threaded
server) puts the whole fan-out in reach of the counters: the api call, the trigger it causes,
the push that follows. Each delivery runs in the counter scope `<step>|<function>`, where
`step` is what the scenario is doing at that moment.

`settle()` waits until the fan-out of the current step is over: nothing running, as many push
deliveries handled as events were published, and a short quiet spell (the emulator delivers
triggers a few milliseconds after the commit). `paused` answers deliveries without running the
function, for seeding data whose triggers nobody should see.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import functions_framework
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from infra.bench.counting import Counter
from infra.local.stack import HOST, MAIN_PY, Stack

TRIGGER = "on_session_written"
PUSH = "send_session_push"
RELAY = "publish_app_events"  # session events for the app's backend (app_events/relay.py)
WEBHOOK = "deliver_webhook"  # one signed POST per event and endpoint (app_events/webhooks.py)

StartResponse = Callable[..., Any]


class EventServers:
    def __init__(self, stack: Stack, counter: Counter, quiet_seconds: float = 0.4) -> None:
        self.stack = stack
        self.counter = counter
        self.quiet_seconds = quiet_seconds
        self.step = "setup"
        self.paused = False
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self.handled: dict[str, int] = {TRIGGER: 0, PUSH: 0, RELAY: 0, WEBHOOK: 0}
        self.answered_paused = 0  # deliveries answered without running the function
        self.failed: dict[str, int] = {TRIGGER: 0, PUSH: 0, RELAY: 0, WEBHOOK: 0}
        self._servers: list[tuple[BaseWSGIServer, threading.Thread]] = []
        # While session events are served (serving_app_events): the session-events publishes made
        # before their subscription existed, and how many webhook endpoints each app event goes to.
        self.app_events_from: int | None = None
        self.endpoints = 0

    def _app(self, target: str, signature_type: str = "cloudevent") -> Callable[[dict[str, Any], StartResponse],
                                                                               Iterable[bytes]]:
        app = functions_framework.create_app(  # type: ignore[no-untyped-call]
            target=target, source=str(MAIN_PY), signature_type=signature_type)

        def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            with self._lock:
                self._in_flight += 1
                self._last_activity = time.monotonic()
            statuses: list[str] = []

            def recording_start_response(status: str, *args: Any) -> Any:
                statuses.append(status)
                return start_response(status, *args)

            try:
                if self.paused:
                    with self._lock:
                        self.answered_paused += 1
                    start_response("204 No Content", [("Content-Length", "0")])
                    return [b""]
                with self.counter.scope(f"{self.step}|{target}"):
                    body = b"".join(app(environ, recording_start_response))
                ok = bool(statuses) and statuses[0].startswith("2")
                with self._lock:
                    (self.handled if ok else self.failed)[target] += 1
                return [body]
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._last_activity = time.monotonic()

        return wsgi

    def touch(self) -> None:
        with self._lock:
            self._last_activity = time.monotonic()

    def settle(self, timeout: float = 60.0) -> bool:
        """Wait for the current step's fan-out to end; False if it was still going at `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                idle = self._in_flight == 0 and time.monotonic() - self._last_activity >= self.quiet_seconds
                handled = dict(self.handled)
            app_published = self.counter.total("appEventPublishes")
            session_published = self.counter.total("publishes") - app_published
            done = handled[PUSH] >= session_published
            if self.app_events_from is not None:
                done = done and handled[RELAY] >= session_published - self.app_events_from
                done = done and handled[WEBHOOK] >= app_published * self.endpoints
            if idle and (self.paused or done):
                return True
            time.sleep(0.02)
        return False

    @contextlib.contextmanager
    def serving_app_events(self, relay_port: int, webhook_port: int, endpoints: int) -> Iterator[None]:
        """Also serve the relay and the webhook function (their subscriptions are the caller's);
        `settle` then waits for their deliveries too: one relay run per session event published
        from now on, one webhook run per app event and endpoint."""
        self.settle(60)
        started = len(self._servers)
        for target, port, signature in ((RELAY, relay_port, "cloudevent"), (WEBHOOK, webhook_port, "http")):
            self._serve(target, port, signature)
        self.app_events_from = self.counter.total("publishes") - self.counter.total("appEventPublishes")
        self.endpoints = endpoints
        try:
            yield
        finally:
            self.app_events_from, self.endpoints = None, 0
            for server, thread in self._servers[started:]:
                server.shutdown()
                server.server_close()
                thread.join(timeout=10)
            del self._servers[started:]

    def _serve(self, target: str, port: int, signature_type: str = "cloudevent") -> None:
        server = _bind(port, self._app(target, signature_type))
        thread = threading.Thread(target=server.serve_forever, name=f"bench-{target}", daemon=True)
        thread.start()
        self._servers.append((server, thread))

    @contextlib.contextmanager
    def serving(self) -> Iterator[EventServers]:
        ports = {TRIGGER: self.stack.ports.trigger, PUSH: self.stack.ports.push}
        try:
            for target, port in ports.items():
                self._serve(target, port)
            yield self
        finally:
            for server, thread in self._servers:
                server.shutdown()
                server.server_close()
                thread.join(timeout=10)
            self._servers.clear()


class _Quiet(WSGIRequestHandler):
    """No access log: hundreds of deliveries would bury the benchmark's own output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _bind(port: int, app: Any, wait: float = 10.0) -> BaseWSGIServer:
    """werkzeug's threaded server on `port`, waiting a little for a just-stopped function to let go of it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return make_server(HOST, port, app, threaded=True, request_handler=_Quiet)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
