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

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import flask
import msgspec
from werkzeug.exceptions import HTTPException

from . import app_check, bodies
from .errors import ApiError, Code, InvalidRequest, NotFound, Unauthenticated
from .flows import validation
from .httpio import ApiRequest, error_headers, finish, framework_refusal, json_text, open_preflight

log = logging.getLogger(__name__)
Arguments = TypeVar("Arguments", bound=bodies.Body)

# What each code is in the callable protocol. Every Code is here (tests/unit/test_error_codes.py).
STATUS: dict[Code, str] = {
    **dict.fromkeys([Code.INVALID_REQUEST, Code.METHOD_NOT_ALLOWED, Code.PAYLOAD_TOO_LARGE,
                     Code.UNSUPPORTED_MEDIA_TYPE, Code.PRIVATE_KEY_SENT, Code.UNSUPPORTED_KEY], "INVALID_ARGUMENT"),
    **dict.fromkeys([Code.UNAUTHENTICATED, Code.INVALID_TOKEN, Code.TOKEN_EXPIRED, Code.SESSION_REVOKED,
                     Code.TOKEN_REUSED, Code.DEVICE_PROOF_FAILED, Code.UNKNOWN_DEVICE, Code.REAUTHENTICATION_REQUIRED,
                     Code.APP_CHECK_FAILED, Code.USE_DPOP_NONCE, Code.INVALID_DPOP_PROOF, Code.DEVICE_BINDING_REQUIRED,
                     Code.BOUND_COOKIE_REQUIRED, Code.INVALID_DBSC_PROOF], "UNAUTHENTICATED"),
    **dict.fromkeys([Code.FORBIDDEN, Code.SESSION_TOO_NEW, Code.CROSS_SITE_REQUEST, Code.UNSUPPORTED_UID,
                     Code.DBSC_CHALLENGE], "PERMISSION_DENIED"),
    **dict.fromkeys([Code.CONFLICT, Code.CANNOT_REVOKE_CURRENT, Code.ALREADY_ANSWERED, Code.SESSION_CLOSED,
                     Code.DEVICE_LIMIT_REACHED], "FAILED_PRECONDITION"),
    Code.NOT_FOUND: "NOT_FOUND",
    Code.RATE_LIMITED: "RESOURCE_EXHAUSTED",
    Code.UNAVAILABLE: "UNAVAILABLE", Code.CONTENTION: "UNAVAILABLE",
    Code.INTERNAL: "INTERNAL",
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
            raise NotFound("no such callable")
        if request.method != "POST":  # Firebase's own callables answer INVALID_ARGUMENT too
            raise InvalidRequest("callable functions accept only POST", code=Code.METHOD_NOT_ALLOWED)
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
        return _answer({"error": {"status": STATUS[Code.INTERNAL], "message": "INTERNAL"}}, 500)


def _refused(error: ApiError, headers: dict[str, str] | None = None) -> flask.Response:
    status = STATUS[error.code]
    details = {"code": error.code, **error.facts()}
    body = {"error": {"status": status, "message": error.message, "details": details}}
    return _answer(body, HTTP_STATUS[status], error_headers(error) if headers is None else headers)


def render_framework_error(error: HTTPException) -> flask.Response | HTTPException:
    """werkzeug's own 4xx (httpio.framework_refusal says which) in the callable protocol."""
    refusal = framework_refusal(error)
    return error if refusal is None else _refused(refusal.error, refusal.headers)


def _id_token(request: flask.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a Firebase ID token is required (Authorization: Bearer)", code=Code.UNAUTHENTICATED)
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

