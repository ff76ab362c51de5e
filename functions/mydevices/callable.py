"""The Firebase callable protocol: what httpio is to the API, this is to the callables.

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

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from . import app_check
from .errors import ApiError, InvalidRequest, NotFound, Unauthenticated
from .flows import validation
from .httpio import ApiRequest, framework_refusal

log = logging.getLogger(__name__)

# Our HTTP statuses -> the callable protocol's canonical status (every other 4xx: INVALID_ARGUMENT).
STATUS = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}
# The canonical status -> the HTTP status the protocol pairs it with.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}
PREFLIGHT_MAX_AGE = 3600
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class Call:
    """One call that passed the protocol checks and session validation."""

    caller: validation.Caller
    data: Any

    def arguments(self, *names: str) -> dict[str, Any]:
        """`data` as an object holding exactly `names`; a call without arguments may send null or {}."""
        if self.data is None and not names:
            return {}
        if not isinstance(self.data, dict):
            raise InvalidRequest("data must be an object" if names else "data must be null or {}")
        unknown = sorted(set(self.data) - set(names))
        if unknown:
            raise InvalidRequest(f"unknown field data.{unknown[0]}")
        missing = [name for name in names if name not in self.data]
        if missing:
            raise InvalidRequest(f"data.{missing[0]} is required")
        return self.data

    def text(self, name: str, shape: re.Pattern[str]) -> str:
        """The single argument `name`, a string of the given shape."""
        value = self.arguments(name)[name]
        if not isinstance(value, str) or not shape.fullmatch(value):
            raise InvalidRequest(f"data.{name} is not valid")
        return value


Handler = Callable[[Call], Any]


def serve(request: flask.Request, handler: Handler | None) -> flask.Response:
    """Answer one callable request; `handler` None means no callable has this name."""
    if request.method == "OPTIONS":
        return _preflight(request)
    try:
        if handler is None:
            raise NotFound("no such callable")
        if request.method != "POST":  # Firebase's own callables answer INVALID_ARGUMENT too
            raise InvalidRequest("callable functions accept only POST", code="method_not_allowed")
        app_check.check(request.headers.get(app_check.HEADER))
        api_request = ApiRequest.parse(request)
        body = api_request.json()
        if "data" not in body:
            raise InvalidRequest('the body must be {"data": ...}')
        caller = validation.validate_firebase(_id_token(request), api_request.known_did)
        return _answer({"result": handler(Call(caller, body["data"]))}, 200)
    except ApiError as error:
        return _refused(error)
    except Exception:  # a bug: log it, never show a stack trace
        log.exception("unhandled error in callable %s", request.path)
        return _answer({"error": {"status": "INTERNAL", "message": "INTERNAL"}}, 500)


def _refused(error: ApiError) -> flask.Response:
    status = STATUS.get(error.status, "INVALID_ARGUMENT")
    details = {"code": error.code, **error.details}
    body = {"error": {"status": status, "message": error.message, "details": details}}
    return _answer(body, HTTP_STATUS[status], error.headers)


def render_framework_error(error: HTTPException) -> flask.Response | HTTPException:
    """werkzeug's own 4xx (httpio.framework_refusal says which) in the callable protocol."""
    refusal = framework_refusal(error)
    return error if refusal is None else _refused(refusal)


def _id_token(request: flask.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a Firebase ID token is required (Authorization: Bearer)", code="unauthenticated")
    return token.strip()


def wants_stream(request: flask.Request) -> bool:
    """Whether the caller asked for server-sent events (the SDK's `.stream()`)."""
    accepted = (item.partition(";")[0].strip().lower() for item in request.headers.get("Accept", "").split(","))
    return EVENT_STREAM in accepted


def _answer(body: Any, status: int, headers: dict[str, str] | None = None) -> flask.Response:
    text = json.dumps(body, ensure_ascii=False)
    if wants_stream(flask.request):  # one event; the SDK reads the outcome from it, not the status
        out = flask.Response(f"data: {text}\n\n", status=200, mimetype=EVENT_STREAM)
    else:
        out = flask.Response(text, status=status, mimetype="application/json")
    out.headers["Cache-Control"] = "no-store"
    out.headers["X-Content-Type-Options"] = "nosniff"
    out.headers["Access-Control-Allow-Origin"] = "*"
    for name, value in (headers or {}).items():
        out.headers[name] = value
    return out


def _preflight(request: flask.Request) -> flask.Response:
    out = flask.Response(status=204)
    out.headers["Access-Control-Allow-Origin"] = "*"
    out.headers["Access-Control-Allow-Methods"] = "POST"
    # The SDK sends Authorization, Content-Type and, depending on set-up, App Check / instance-id
    # / client-version headers: allow what the browser asks for (nothing rides on cookies).
    requested = request.headers.get("Access-Control-Request-Headers")
    out.headers["Access-Control-Allow-Headers"] = requested or "Authorization, Content-Type"
    out.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return out
