"""A stand-in for FCM HTTP v1 on loopback, so pushes can be watched and faults injected locally.

There is no FCM emulator. firebase-admin's messaging posts `{"message": {...}}` to
`/v1/projects/{project}/messages:send` (the URL is configurable, see MYDEVICES_FCM_URL); this
server answers like FCM does, keeps every message it accepted (tests read them back) and prints
each one on a line or two (a person following the walkthrough sees the force_logout arrive).

Faults are answered with bodies shaped exactly like FCM's, so firebase-admin maps them to its
real exception classes (UnregisteredError, SenderIdMismatchError, InvalidArgumentError,
UnavailableError, QuotaExceededError...) and the code under test takes its real error paths.

Control API (JSON):
    GET    /_standin/messages   {"messages": [{"n", "receivedAt", "message", "validateOnly"}]}
    DELETE /_standin/messages   forget messages, failures and pending faults
    DELETE /_standin/faults     forget pending faults only
    GET    /_standin/failures   {"failures": [{"n", "receivedAt", "message", "status", "errorCode"}]}
    POST   /_standin/faults     {"token": "<token>|*", "status": 503, "errorCode": "UNAVAILABLE",
                                 "times": 1, "retryAfter": null}
                                the next `times` sends to that token fail like FCM would. Counts
                                HTTP attempts: firebase-admin itself retries 500/503 up to 4
                                times, so `times: 5` makes one send_each report UnavailableError.
                                errorCode: UNREGISTERED, SENDER_ID_MISMATCH, INVALID_ARGUMENT (bad
                                token), PAYLOAD_INVALID (a bad message: google.rpc.BadRequest
                                detail), QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL,
                                THIRD_PARTY_AUTH_ERROR; status defaults to FCM's for the code.
    GET    /_standin/faults     the faults still pending
    GET    /_standin/health     {"ok": true}

App Check's JWKS, too (`--app-check-jwks FILE`, written by infra/local/app_check_keys.py): there is
no App Check emulator, and firebase-admin verifies App Check tokens against Google's JWKS.
    GET    /v1/jwks             the file's JWKS, as https://firebaseappcheck.googleapis.com/v1/jwks
    GET    /_standin/jwks-fetches  {"count": n}: how often /v1/jwks was fetched (firebase-admin caches it)

Stdlib only, so `python3 infra/local/fcm_standin.py --port P` runs with any interpreter.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

# errorCode -> (HTTP status FCM uses, canonical status, message), after FCM v1's ErrorCode docs.
_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    "PAYLOAD_INVALID": (400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value' (TYPE_STRING)"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for sending messages."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_body(status: int, error_code: str) -> dict[str, Any]:
    """The body FCM answers a failed send with; `PAYLOAD_INVALID` is a bad message, not a bad token.

    A bad token carries only the FcmError detail; a bad payload carries a google.rpc.BadRequest
    naming the offending field. That difference is all a caller has to tell them apart.
    """
    fallback = (status, _STATUS_NAMES.get(status, "UNKNOWN"), "error")
    default_status, canonical, message = _ERRORS.get(error_code, fallback)
    status = status or default_status
    canonical = _STATUS_NAMES.get(status, canonical)
    if error_code == "PAYLOAD_INVALID":
        details: list[dict[str, Any]] = [{
            "@type": _BAD_REQUEST,
            "fieldViolations": [{"field": "message.data[0].value", "description": message}],
        }]
    else:
        details = [{"@type": _FCM_ERROR, "errorCode": error_code}]
    return {"error": {"code": status, "message": message, "status": canonical, "details": details}}


def _plain_error(status: int, message: str) -> dict[str, Any]:
    """An error of the stand-in itself (not an injected FCM fault)."""
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


@dataclass
class Fault:
    token: str  # a device token, or "*" for any
    status: int
    error_code: str
    times: int
    retry_after: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"token": self.token, "status": self.status, "errorCode": self.error_code,
                "times": self.times, "retryAfter": self.retry_after}


@dataclass
class Ledger:
    """Everything the stand-in saw; one lock, because firebase-admin sends from a thread pool."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    counter: int = 0
    jwks_fetches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, token: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.token in ("*", token):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def next_n(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.failures.clear()
            self.faults.clear()

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()


def describe(message: dict[str, Any]) -> str:
    """One line a person can read: which device, and what it was told."""
    token = message.get("token") or message.get("fid") or message.get("topic") or "?"
    tail = "…" + token[-8:] if len(token) > 8 else token
    data = message.get("data") or {}
    notification = message.get("notification") or {}
    parts = [f"to {tail}"]
    if data.get("action"):
        parts.append(f"action={data['action']}")
    if notification.get("title") or notification.get("body"):
        parts.append(f"notification={notification.get('title', '')!r} {notification.get('body', '')!r}")
    if data.get("body"):  # the "Was that you?" text, which travels in the data (docs/push-messages.md)
        parts.append(f"text={data['body']!r}")
    extras = {k: v for k, v in data.items() if k not in ("action", "body", "title") and not k.endswith("_loc_key")}
    if extras:
        parts.append("data=" + json.dumps(extras, separators=(",", ":")))
    return " ".join(parts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as firebase-admin's pooled session expects

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the stand-in prints messages, not access logs

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def do_GET(self) -> None:
        ledger = self.server.ledger
        with ledger.lock:  # copy under the lock, answer outside it
            views = {
                "/_standin/messages": {"messages": list(ledger.messages)},
                "/_standin/failures": {"failures": list(ledger.failures)},
                "/_standin/faults": {"faults": [f.as_json() for f in ledger.faults]},
                "/_standin/health": {"ok": True},
                "/_standin/jwks-fetches": {"count": ledger.jwks_fetches},
            }
            if self.path == "/v1/jwks" and self.server.app_check_jwks is not None:
                ledger.jwks_fetches += 1
                views["/v1/jwks"] = self.server.app_check_jwks
        if self.path in views:
            return self._reply(200, views[self.path])
        self._reply(404, _plain_error(404, "no such path"))

    def do_DELETE(self) -> None:
        if self.path == "/_standin/messages":
            self.server.ledger.clear()
            return self._reply(200, {})
        if self.path == "/_standin/faults":
            self.server.ledger.clear_faults()
            return self._reply(200, {})
        self._reply(404, _plain_error(404, "no such path"))

    def do_POST(self) -> None:
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError):
            return self._reply(400, _plain_error(400, "body is not JSON"))
        if self.path == "/_standin/faults":
            return self._add_fault(body)
        match = _SEND_PATH.match(self.path)
        if match:
            return self._send(match["project"], body)
        self._reply(404, _plain_error(404, "no such path"))

    def _add_fault(self, body: Any) -> None:
        try:
            error_code = str(body.get("errorCode") or "UNAVAILABLE")
            status = int(body.get("status") or _ERRORS.get(error_code, (503,))[0])
            retry_after = body.get("retryAfter")
            fault = Fault(str(body.get("token") or "*"), status, error_code, int(body.get("times", 1)),
                          None if retry_after is None else int(retry_after))
        except (AttributeError, TypeError, ValueError) as exc:
            return self._reply(400, _plain_error(400, f"bad fault: {exc}"))
        with self.server.ledger.lock:
            self.server.ledger.faults.append(fault)
        self._reply(200, fault.as_json())

    def _send(self, project: str, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict):
            return self._reply(400, error_body(400, "PAYLOAD_INVALID"))
        token = message.get("token") or message.get("fid")
        ledger = self.server.ledger
        n = ledger.next_n()
        now = time.time()
        fault = ledger.take_fault(token)
        if fault is not None:
            with ledger.lock:
                ledger.failures.append({"n": n, "receivedAt": now, "message": message,
                                        "status": fault.status, "errorCode": fault.error_code})
            self.server.echo(f"[fcm] #{n} FAILED {fault.status} {fault.error_code} {describe(message)}")
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            return self._reply(fault.status, error_body(fault.status, fault.error_code), headers)
        validate_only = bool(body.get("validate_only"))
        with ledger.lock:
            ledger.messages.append({"n": n, "receivedAt": now, "message": message, "validateOnly": validate_only})
        self.server.echo(f"[fcm] #{n} {'(dry run) ' if validate_only else ''}{describe(message)}")
        self._reply(200, {"name": f"projects/{project}/messages/{n}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ledger: Ledger
    out: TextIO | None
    app_check_jwks: Any = None

    def echo(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)


class FcmStandin:
    """The stand-in, in-process: `FcmStandin("127.0.0.1").start()`, then point FCM at `.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, out: TextIO | None = sys.stdout,
                 app_check_jwks: Any = None) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.ledger = Ledger()
        self._server.out = out
        self._server.app_check_jwks = app_check_jwks
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else host
        return f"http://{host_text}:{port}"

    @property
    def url(self) -> str:
        """The send URL template, as firebase-admin wants it (`{0}` is the project id)."""
        return self.base + "/v1/projects/{0}/messages:send"

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._server.ledger.lock:
            return list(self._server.ledger.messages)

    @property
    def failures(self) -> list[dict[str, Any]]:
        with self._server.ledger.lock:
            return list(self._server.ledger.failures)

    def fault(self, token: str, status: int, error_code: str, times: int = 1, retry_after: int | None = None) -> None:
        with self._server.ledger.lock:
            self._server.ledger.faults.append(Fault(token, status, error_code, times, retry_after))

    def clear(self) -> None:
        self._server.ledger.clear()

    def clear_faults(self) -> None:
        self._server.ledger.clear_faults()

    def start(self) -> FcmStandin:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fcm-standin", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI's foreground mode) until interrupted."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9199)
    parser.add_argument("--quiet", action="store_true", help="do not print each message")
    parser.add_argument("--app-check-jwks", metavar="FILE", help="serve this JWKS file at /v1/jwks")
    args = parser.parse_args(argv)
    jwks = None
    if args.app_check_jwks:
        with open(args.app_check_jwks, encoding="utf-8") as file:
            jwks = json.load(file)
    standin = FcmStandin(args.host, args.port, out=None if args.quiet else sys.stdout, app_check_jwks=jwks)
    print(f"[fcm] stand-in listening on {standin.base} (send URL {standin.url})", flush=True)
    standin.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
