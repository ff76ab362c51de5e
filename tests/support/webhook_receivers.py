"""Webhook receivers on loopback for the app-events tests: each records what reached it, verifies
nothing itself (the tests do, with the stock standardwebhooks library), and answers as told:
`ok`, `fail` (500), `slow` (holds the request until recovered, longer than the sender waits), or
`down` (nothing listens on its port until recovered)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    prompt: bool  # answered at once (not held past the sender's timeout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Receiver:
    mode: str
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    recovered: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        if self.mode != "down" or self.recovered.is_set():
            self._listen()
        return self

    def recover(self) -> None:
        self.recovered.set()
        if self.mode == "down" and self._server is None:
            self._listen()

    def _listen(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                prompt = True
                if owner.mode == "slow" and not owner.recovered.is_set():
                    owner.recovered.wait()  # held past the sender's timeout: the sender gives up first
                    prompt = False
                status = 500 if owner.mode == "fail" and not owner.recovered.is_set() else 204
                with owner._lock:
                    owner.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status,
                                                   prompt))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def attempts(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def stop(self) -> None:
        self.recovered.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
