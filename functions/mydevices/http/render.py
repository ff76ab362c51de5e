"""Writing answers: the one wire table for errors, JSON bodies, cookies and the headers every
answer of ours carries, on the API, the callables and `require_session` alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import flask
from werkzeug.exceptions import HTTPException

from .. import dbsc, dpop, store, web_cookies
from ..config import settings
from ..errors import Code, Refusal
from ..flows.issued import Issued
from . import cors
from .request import ApiRequest, is_utf8

DRAIN_LIMIT = 1024 * 1024  # refused bodies up to this size are read, so the client sees the 413


class Wire(NamedTuple):
    """What a `Code` is on each protocol: its HTTP status on the API and `require_session`, and
    on the Firebase callable protocol its canonical status and the HTTP status the protocol pairs
    with that status (a 409 of the API is a FAILED_PRECONDITION, 400, there)."""

    http: int
    callable: str
    callable_http: int


_INVALID = ("INVALID_ARGUMENT", 400)
_UNAUTHENTICATED = ("UNAUTHENTICATED", 401)
_DENIED = ("PERMISSION_DENIED", 403)
_PRECONDITION = ("FAILED_PRECONDITION", 400)
_UNAVAILABLE = ("UNAVAILABLE", 503)

# The one wire table: every Code is here (tests/unit/test_error_codes.py).
WIRE: dict[Code, Wire] = {
    Code.INVALID_REQUEST: Wire(400, *_INVALID),
    Code.PRIVATE_KEY_SENT: Wire(400, *_INVALID),
    Code.UNSUPPORTED_KEY: Wire(400, *_INVALID),
    Code.UNAUTHENTICATED: Wire(401, *_UNAUTHENTICATED),
    Code.INVALID_TOKEN: Wire(401, *_UNAUTHENTICATED),
    Code.TOKEN_EXPIRED: Wire(401, *_UNAUTHENTICATED),
    Code.SESSION_REVOKED: Wire(401, *_UNAUTHENTICATED),
    Code.SESSION_EXPIRED: Wire(401, *_UNAUTHENTICATED),
    Code.TOKEN_REUSED: Wire(401, *_UNAUTHENTICATED),
    Code.DEVICE_PROOF_FAILED: Wire(401, *_UNAUTHENTICATED),
    Code.UNKNOWN_DEVICE: Wire(401, *_UNAUTHENTICATED),
    Code.REAUTHENTICATION_REQUIRED: Wire(401, *_UNAUTHENTICATED),
    Code.APP_CHECK_FAILED: Wire(401, *_UNAUTHENTICATED),
    Code.USE_DPOP_NONCE: Wire(401, *_UNAUTHENTICATED),
    Code.INVALID_DPOP_PROOF: Wire(401, *_UNAUTHENTICATED),
    Code.DEVICE_BINDING_REQUIRED: Wire(401, *_UNAUTHENTICATED),
    Code.BOUND_COOKIE_REQUIRED: Wire(401, *_UNAUTHENTICATED),
    Code.INVALID_DBSC_PROOF: Wire(401, *_UNAUTHENTICATED),
    Code.FORBIDDEN: Wire(403, *_DENIED),
    Code.SESSION_TOO_NEW: Wire(403, *_DENIED),
    Code.RECENT_SIGN_IN_REQUIRED: Wire(403, *_DENIED),
    Code.CROSS_SITE_REQUEST: Wire(403, *_DENIED),
    Code.UNSUPPORTED_UID: Wire(403, *_DENIED),
    Code.DBSC_CHALLENGE: Wire(403, *_DENIED),
    Code.NOT_FOUND: Wire(404, "NOT_FOUND", 404),
    Code.METHOD_NOT_ALLOWED: Wire(405, *_INVALID),  # as Firebase's own callables answer a GET
    Code.CONFLICT: Wire(409, *_PRECONDITION),
    Code.CANNOT_REVOKE_CURRENT: Wire(409, *_PRECONDITION),
    Code.ALREADY_ANSWERED: Wire(409, *_PRECONDITION),
    Code.SESSION_CLOSED: Wire(409, *_PRECONDITION),
    Code.DEVICE_LIMIT_REACHED: Wire(409, *_PRECONDITION),
    Code.PAYLOAD_TOO_LARGE: Wire(413, *_INVALID),
    Code.UNSUPPORTED_MEDIA_TYPE: Wire(415, *_INVALID),
    Code.RATE_LIMITED: Wire(429, "RESOURCE_EXHAUSTED", 429),
    Code.INTERNAL: Wire(500, "INTERNAL", 500),
    Code.UNAVAILABLE: Wire(503, *_UNAVAILABLE),
    Code.CONTENTION: Wire(503, *_UNAVAILABLE),
}
INTERNAL = Refusal(Code.INTERNAL, "internal error")


def refusal_for(failure: Exception) -> Refusal | None:
    """What a failure that escaped a flow means to the client: its own refusal, or an outage's
    (store.outage); None for a bug, which the edge logs and answers `internal`."""
    return failure if isinstance(failure, Refusal) else store.outage(failure)


def error_headers(refusal: Refusal) -> dict[str, str]:
    """The headers a refusal's facts call for: how long to wait, the DPoP nonce to use next, the
    DBSC challenge to sign."""
    headers = {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(refusal.retry_after)
    if refusal.nonce is not None:
        headers[dpop.NONCE_HEADER] = refusal.nonce
    if refusal.dbsc_session is not None:
        headers[dbsc.CHALLENGE_HEADER] = dbsc.challenge_header(refusal.dbsc_session)
    return headers


def finish(out: flask.Response, headers: Mapping[str, str]) -> flask.Response:
    """Every answer of ours: never stored by a cache (they name sessions and carry tokens), never
    sniffed as another type; then `headers`, which may relax the first (the JWKS is public)."""
    out.headers["Cache-Control"] = "no-store"
    out.headers["X-Content-Type-Options"] = "nosniff"
    out.headers.update(headers)
    return out


def json_text(body: Any) -> str:
    """An answer's JSON. Readable UTF-8, except when some text in it is no UTF-8 (a lone surrogate
    that came in with a request): then escaped, since the answer must go out whatever it carries."""
    text = json.dumps(body, ensure_ascii=False)
    return text if text.isascii() or is_utf8(text) else json.dumps(body)


@dataclass(frozen=True)
class Page:
    """An HTML answer instead of JSON: only the email link's page (http/email_page.py), which a
    person opens from a mail client, where no app of ours runs to read JSON."""

    html: str


@dataclass
class ApiResponse:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str | None] = field(default_factory=dict)  # web_cookies part -> value (None removes)
    bound_cookie: str | None = None  # a fresh DBSC-bound cookie (dbsc.py); "" removes it if the request had it


def refused(refusal: Refusal) -> ApiResponse:
    return ApiResponse(refusal.body(), WIRE[refusal.code].http, error_headers(refusal))


def issued_response(issued: Issued, *, web: bool, status: int = 200) -> ApiResponse:
    """Tokens for a mobile client go in the body; a web client gets them only as cookies.

    Either gets the Firebase custom token in the body when the login minted one (a web login
    only when it asked, main.log_in): the Firebase SDK signs in with it from script, it lasts an
    hour, and the Firebase session it starts ends with ours (rules and callables check the
    session it names), so it is no refresh credential of ours.
    """
    body: dict[str, Any] = {"accessTokenExpiresAt": issued.access_expires_at, "deviceId": issued.signed_device_id}
    if issued.session is not None:
        body = {"session": issued.session, **body}
    if issued.firebase_custom_token is not None:
        body["firebaseCustomToken"] = issued.firebase_custom_token
    response = ApiResponse(body, status)
    if web:
        response.cookies = {
            web_cookies.DEVICE: issued.signed_device_id,
            web_cookies.ACCESS: issued.access_token,
            web_cookies.REFRESH: issued.refresh_token,
        }
    else:
        body["accessToken"] = issued.access_token
        body["refreshToken"] = issued.refresh_token
    return response


def signed_out(body: Any) -> ApiResponse:
    return ApiResponse(body, cookies={web_cookies.ACCESS: None, web_cookies.REFRESH: None}, bound_cookie="")


def render(api_request: ApiRequest | None, response: ApiResponse) -> flask.Response:
    if isinstance(response.body, Page):
        out = flask.Response(response.body.html, status=response.status, mimetype="text/html")
    else:
        out = flask.Response(json_text(response.body), status=response.status, mimetype="application/json")
    declared = flask.request.content_length
    if response.status == WIRE[Code.PAYLOAD_TOO_LARGE].http and (declared is None or declared > DRAIN_LIMIT):
        # functions-framework reads the whole request body after every response that is not
        # streamed (its `read_request` hook), so a 10 MB body would be read just to be refused.
        # Streamed, the answer goes out at once and gunicorn drops the rest with the connection.
        # A body of a declared length up to DRAIN_LIMIT is still read: a client that is
        # mid-upload when the connection drops sees a reset instead of the 413.
        out.response = iter([out.get_data()])
    finish(out, {**response.headers, **cors.headers_for(flask.request)})
    changes = dict(response.cookies)
    if api_request is not None and api_request.new_device:
        # Step 1 hands a fresh id to a device whose id was missing or not ours.
        out.headers[cors.DEVICE_HEADER] = api_request.signed_did
        if api_request.from_cookie or web_cookies.DEVICE in changes:
            changes[web_cookies.DEVICE] = api_request.signed_did
    current = api_request.cookies if api_request is not None else {}
    for name, value, max_age in web_cookies.write(current, changes) if changes else []:
        out.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict")
    if response.bound_cookie or (response.bound_cookie == "" and dbsc.BOUND_COOKIE in current):
        out.set_cookie(dbsc.BOUND_COOKIE, response.bound_cookie, path="/", secure=True, httponly=True,
                       samesite="Strict", max_age=settings().dbsc_cookie_seconds if response.bound_cookie else 0)
    return out


_FRAMEWORK_REFUSALS = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 413: Code.PAYLOAD_TOO_LARGE,
                       415: Code.UNSUPPORTED_MEDIA_TYPE}


@dataclass(frozen=True)
class FrameworkRefusal:
    """A 4xx werkzeug raised before any function ran, as a refusal of ours with werkzeug's status
    (a 411 or 431 is `invalid_request`, and keeps its own status)."""

    refusal: Refusal
    status: int
    headers: dict[str, str]


def framework_refusal(error: HTTPException) -> FrameworkRefusal | None:
    """The refusal for a 4xx werkzeug raised before any function ran: functions-framework's
    router matches no path with a newline in it (`/v1/sessions/current%0a`) and refuses
    /robots.txt and /favicon.ico itself, in HTML. A client must not tell those paths from our
    own 404s, nor read HTML where it expects our JSON. None for a 5xx: not a refusal."""
    status = error.code or 500
    if status >= 500:
        return None
    kind = _FRAMEWORK_REFUSALS.get(status, Code.INVALID_REQUEST)
    message = "no such endpoint" if kind == Code.NOT_FOUND else (error.description or error.name)
    headers = {name: value for name, value in error.get_headers() if name in ("Allow", "Retry-After")}
    return FrameworkRefusal(Refusal(kind, message), status, headers)


def render_framework_error(error: HTTPException) -> flask.Response | HTTPException:
    """`framework_refusal` as the API answers it (functions-framework's errorhandler, main.py)."""
    refusal = framework_refusal(error)
    if refusal is None:
        return error
    return render(None, ApiResponse(refusal.refusal.body(), refusal.status, refusal.headers))
