"""The Firebase callable protocol: what routing is to the API, this is to the callables.

The Firebase SDKs' `httpsCallable(name)` POSTs `{"data": ...}` as application/json with the
user's Firebase ID token in `Authorization: Bearer`, and expects `{"result": ...}` (200) or
`{"error": {"status", "message", "details"}}` with the HTTP status that goes with `status`.
The SDK turns `status` into the error's code (`functions/unauthenticated`, ...) and hands
`details` to the app as is, so our stable error code travels in `details.code`.

`httpsCallable(name).stream()` (Firebase JS SDK 11+) sends `Accept: text/event-stream` and reads
only server-sent events: `data: {"message": ...}` chunks, then `data: {"result": ...}` or
`data: {"error": ...}`; it ignores the HTTP status and any other body, so a plain JSON answer would
leave it waiting forever. Our callables have no chunks to send: a stream request gets its one
answer, result or error, as a single event, with status 200 as Firebase's own callables send it.

With MYDEVICES_APP_CHECK on, the `X-Firebase-AppCheck` token is verified first (app_check.py).

The caller is identified by the `sid`/`did` claims of its ID token and its session is read once
per call (flows/validation.py); a closed session is UNAUTHENTICATED. Browsers call
cross-origin, so any origin may: nothing here rides on cookies, and a page cannot obtain another
site's ID token to send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import flask
import msgspec
from werkzeug.exceptions import HTTPException

from .. import app_check, bodies
from ..errors import Code, Refusal
from ..flows import validation
from .cors import open_preflight
from .render import WIRE, error_headers, finish, framework_refusal, json_text, refusal_for
from .request import ApiRequest

log = logging.getLogger(__name__)
Arguments = TypeVar("Arguments", bound=bodies.Body)

PREFLIGHT_MAX_AGE = 3600
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class Call:
    """One call that passed the protocol checks and session validation."""

    caller: validation.Caller
    data: Any

    def arguments(self, kind: type[Arguments]) -> Arguments:
        """`data` as the callable's declared arguments; a call without arguments may send null or {}."""
        return bodies.decode({} if self.data is None and not msgspec.structs.fields(kind) else self.data, kind, "data")


Handler = Callable[[Call], Any]


def serve(request: flask.Request, handler: Handler | None) -> flask.Response:
    """Answer one callable request; `handler` None means no callable has this name."""
    if request.method == "OPTIONS":
        return open_preflight(request, PREFLIGHT_MAX_AGE)
    try:
        if handler is None:
            raise Refusal(Code.NOT_FOUND, "no such callable")
        if request.method != "POST":  # Firebase's own callables answer INVALID_ARGUMENT too
            raise Refusal(Code.METHOD_NOT_ALLOWED, "callable functions accept only POST")
        app_check.check(request.headers.get(app_check.HEADER))
        api_request = ApiRequest.parse(request)
        body = api_request.json()
        if "data" not in body:
            raise Refusal(Code.INVALID_REQUEST, 'the body must be {"data": ...}')
        caller = validation.validate_firebase(_id_token(request), api_request.known_did)
        return _answer({"result": handler(Call(caller, body["data"]))}, 200)
    except Exception as failure:
        refusal = refusal_for(failure)
        if refusal is None:  # a bug: log it, never show a stack trace
            log.exception("unhandled error in callable %s", request.path)
            wire = WIRE[Code.INTERNAL]
            return _answer({"error": {"status": wire.callable, "message": "INTERNAL"}}, wire.callable_http)
        return _refused(refusal)


def _refused(refusal: Refusal, headers: dict[str, str] | None = None) -> flask.Response:
    wire = WIRE[refusal.code]
    details = {"code": refusal.code, **refusal.wire_facts()}
    body = {"error": {"status": wire.callable, "message": refusal.message, "details": details}}
    return _answer(body, wire.callable_http, error_headers(refusal) if headers is None else headers)


def render_framework_error(error: HTTPException) -> flask.Response | HTTPException:
    """werkzeug's own 4xx (render.framework_refusal says which) in the callable protocol."""
    refusal = framework_refusal(error)
    return error if refusal is None else _refused(refusal.refusal, refusal.headers)


def _id_token(request: flask.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(Code.UNAUTHENTICATED, "a Firebase ID token is required (Authorization: Bearer)")
    return token.strip()


def wants_stream(request: flask.Request) -> bool:
    """Whether the caller asked for server-sent events (the SDK's `.stream()`)."""
    accepted = (item.partition(";")[0].strip().lower() for item in request.headers.get("Accept", "").split(","))
    return EVENT_STREAM in accepted


def _answer(body: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
    text = json_text(body)
    if wants_stream(flask.request):  # one event; the SDK reads the outcome from it, not the status
        out = flask.Response(f"data: {text}\n\n", status=200, mimetype=EVENT_STREAM)
    else:
        out = flask.Response(text, status=status, mimetype="application/json")
    return finish(out, {"Access-Control-Allow-Origin": "*", **(headers or {})})

