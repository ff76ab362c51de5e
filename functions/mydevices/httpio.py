"""The HTTP edge: reading requests, writing JSON answers and cookies. The core never sees Flask.

Web clients carry their device id and tokens in cookies (`web_cookies.py`: HttpOnly, Secure,
SameSite=Strict, Path=/): script cannot read them and other sites cannot send them. Mobile
clients use `Authorization: Bearer` and `X-Device-Id`. Headers win over cookies. A cookie request
that changes state must also show it comes from our own page (`require_same_origin`).

Pages on other origins (MYDEVICES_CORS_ORIGINS) may call the API with bearer tokens: CORS
(`cors_headers`, `preflight`) lets them read the answers, and never with credentials, so the
cookies stay same-site only.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flask
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, MapAdapter, Rule

from . import app_check, dbsc, dpop, geo, web_cookies
from .config import settings
from .errors import ApiError, Code, Forbidden, InvalidRequest, NotFound, RateLimited, Unauthenticated, Unavailable
from .flows import validation
from .flows.issued import Issued

log = logging.getLogger(__name__)

DEVICE_HEADER = "X-Device-Id"
DRAIN_LIMIT = 1024 * 1024  # refused bodies up to this size are read, so the client sees the 413
MAX_JSON_DEPTH = 32
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# DPoP and DPoP-Nonce: a page on another origin binds its session to a WebCrypto key (clients/js), and
# its refreshes carry a proof and read the next nonce.
CORS_ALLOW_HEADERS = f"Authorization, Content-Type, {DEVICE_HEADER}, {app_check.HEADER}, {dpop.PROOF_HEADER}"
CORS_EXPOSE_HEADERS = f"{DEVICE_HEADER}, Retry-After, {dpop.NONCE_HEADER}"
CORS_MAX_AGE = 3600  # seconds a browser may reuse a preflight (Chromium caps it at 7200)
# What reading a request body raises when the client framed it wrong or stopped sending: the
# client's fault, so a 400, not a 500. gunicorn (functions-framework's server, in production
# too) decodes chunked bodies itself and raises its ParseException (InvalidChunkSize for `zz`
# or `-5`, ChunkMissingTerminator for a chunk longer than it declared, ...) and NoMoreData, an
# OSError, for a body cut off; werkzeug's own server (functions-framework --debug) raises
# OSError from its chunk decoder, and werkzeug ClientDisconnected for a body shorter than its
# Content-Length.
UNREADABLE_BODY = (ParseException, OSError, ClientDisconnected)

# What each code is in HTTP. Every Code is here (tests/unit/test_error_codes.py).
HTTP_STATUS: dict[Code, int] = {
    Code.INVALID_REQUEST: 400, Code.PRIVATE_KEY_SENT: 400, Code.UNSUPPORTED_KEY: 400,
    Code.UNAUTHENTICATED: 401, Code.INVALID_TOKEN: 401, Code.TOKEN_EXPIRED: 401, Code.SESSION_REVOKED: 401,
    Code.TOKEN_REUSED: 401, Code.DEVICE_PROOF_FAILED: 401, Code.UNKNOWN_DEVICE: 401,
    Code.REAUTHENTICATION_REQUIRED: 401, Code.APP_CHECK_FAILED: 401, Code.USE_DPOP_NONCE: 401,
    Code.INVALID_DPOP_PROOF: 401, Code.DEVICE_BINDING_REQUIRED: 401, Code.BOUND_COOKIE_REQUIRED: 401,
    Code.INVALID_DBSC_PROOF: 401,
    Code.FORBIDDEN: 403, Code.SESSION_TOO_NEW: 403, Code.CROSS_SITE_REQUEST: 403, Code.UNSUPPORTED_UID: 403,
    Code.DBSC_CHALLENGE: 403,
    Code.NOT_FOUND: 404,
    Code.METHOD_NOT_ALLOWED: 405,
    Code.CONFLICT: 409, Code.CANNOT_REVOKE_CURRENT: 409, Code.ALREADY_ANSWERED: 409, Code.SESSION_CLOSED: 409,
    Code.DEVICE_LIMIT_REACHED: 409,
    Code.PAYLOAD_TOO_LARGE: 413,
    Code.UNSUPPORTED_MEDIA_TYPE: 415,
    Code.RATE_LIMITED: 429,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503, Code.CONTENTION: 503,
}
INTERNAL_BODY = {"error": {"code": Code.INTERNAL, "message": "internal error"}}


def error_headers(error: ApiError) -> dict[str, str]:
    """The headers an error's facts call for, on the API, `require_session` and the callables alike:
    how long to wait, the DPoP nonce to use next, the DBSC challenge to sign."""
    headers = {}
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, Unauthenticated) and error.nonce is not None:
        headers[dpop.NONCE_HEADER] = error.nonce
    elif isinstance(error, Forbidden) and error.dbsc_session is not None:
        headers[dbsc.CHALLENGE_HEADER] = dbsc.challenge_header(error.dbsc_session)
    return headers


def finish(out: flask.Response, headers: Mapping[str, str]) -> flask.Response:
    """Every answer of ours, on the API, `require_session` and the callables: never stored by a
    cache (they name sessions and carry tokens), never sniffed as another type; then `headers`,
    which may relax the first (the JWKS is public)."""
    out.headers["Cache-Control"] = "no-store"
    out.headers["X-Content-Type-Options"] = "nosniff"
    out.headers.update(headers)
    return out


def cors_headers(request: flask.Request) -> dict[str, str]:
    """CORS for an answer: pages of MYDEVICES_CORS_ORIGINS may read it, other origins get nothing
    (so the browser hands their script an opaque network error). Never
    `Access-Control-Allow-Credentials`: a cross-origin page calls with a bearer token it holds,
    and no browser lets its script read an answer to a request that carried our cookies."""
    origins = settings().cors_origins
    if not origins:
        return {}
    headers = {"Vary": "Origin"}  # the answer depends on Origin (the JWKS is cacheable)
    origin = request.headers.get("Origin")
    if origin is not None and origin in origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    return headers


def from_cors_origin(request: flask.Request) -> bool:
    """Whether a page of another origin listed in MYDEVICES_CORS_ORIGINS sent this request. Such a
    page cannot use our cookies (no credentials cross-origin, SameSite=Strict cross-site), so its
    web login gets the tokens in the body, as a mobile app does (main.log_in)."""
    origin = request.headers.get("Origin")
    return (origin is not None and origin in settings().cors_origins
            and request.headers.get("Sec-Fetch-Site") != "same-origin")


def preflight(request: flask.Request, methods: Iterable[str]) -> flask.Response | None:
    """The answer to a CORS preflight (OPTIONS with Access-Control-Request-Method) from an allowed
    origin for a path served with `methods`; None for any other OPTIONS, which stays 405."""
    origin = request.headers.get("Origin")
    if (origin is None or origin not in settings().cors_origins
            or "Access-Control-Request-Method" not in request.headers):
        return None
    out = flask.Response(status=204)
    out.headers["Access-Control-Allow-Origin"] = origin
    out.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(set(methods)))
    out.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
    out.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
    out.headers["Vary"] = "Origin"
    return out


def open_preflight(request: flask.Request, max_age: int) -> flask.Response:
    """A preflight the callables answer for any origin: nothing of theirs rides on cookies. The
    SDK sends Authorization, Content-Type and, depending on set-up, App Check / instance-id /
    client-version headers: allow what the browser asks for."""
    out = flask.Response(status=204)
    out.headers["Access-Control-Allow-Origin"] = "*"
    out.headers["Access-Control-Allow-Methods"] = "POST"
    requested = request.headers.get("Access-Control-Request-Headers")
    out.headers["Access-Control-Allow-Headers"] = requested or "Authorization, Content-Type"
    out.headers["Access-Control-Max-Age"] = str(max_age)
    return out


def require_same_origin(request: flask.Request) -> None:
    """SameSite=Strict stops other sites from sending our cookies, not other origins of the same
    site: a page on a sibling subdomain (user content, a stale DNS entry taken over) can post a
    `text/plain` form or fetch, which needs no CORS preflight, with the user's cookies attached.
    So a cookie request that changes state must say it comes from our own page:
    `Sec-Fetch-Site: same-origin` (every current browser sends it), or an `Origin` listed in
    MYDEVICES_ALLOWED_ORIGINS (for a page on another origin, or a browser without Fetch Metadata).
    With neither it is refused: browsers send Origin on every POST, PUT and DELETE, so only a
    client that is not a browser lacks both, and one that uses cookies must send one of them.
    Runs before the body is read, so a cross-site body is refused whatever its type."""
    if request.method in SAFE_METHODS or not web_cookies.present(request.cookies):
        return
    if request.path in (dbsc.REGISTER_PATH, dbsc.REFRESH_PATH):
        # The browser itself calls these, not a page, and each needs a proof answering a challenge
        # only our own responses carried: no other origin can make one.
        return
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return
    origin = request.headers.get("Origin")
    if origin is not None and origin in settings().allowed_origins:
        return
    raise Forbidden("a request that uses the web cookies and changes state must come from this site's own page "
                    "(Sec-Fetch-Site: same-origin, or an allowed Origin)", code=Code.CROSS_SITE_REQUEST)


@dataclass
class ApiRequest:
    """A parsed request: who the device says it is, its token, its body, its address."""

    raw: flask.Request
    did: str
    signed_did: str
    new_device: bool
    from_cookie: bool

    @classmethod
    def parse(cls, request: flask.Request) -> ApiRequest:
        header_did = request.headers.get(DEVICE_HEADER)
        cookie_did = web_cookies.read(request.cookies, web_cookies.DEVICE)
        did, signed, new = validation.resolve_device(header_did or cookie_did)
        return cls(request, did, signed, new, from_cookie=header_did is None and cookie_did is not None)

    def cookie(self, part: str) -> str | None:
        return web_cookies.read(self.raw.cookies, part)

    @property
    def known_did(self) -> str | None:
        """The device id if the client presented a valid one (step 1, checked once in parse), else None."""
        return None if self.new_device else self.did

    def bearer(self) -> str | None:
        header = self.raw.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            # `DPoP <token>` is how RFC 9449 clients send a bound token: the same token to us.
            if scheme.lower() not in ("bearer", "dpop") or not token.strip():
                raise Unauthenticated("Authorization must be 'Bearer <token>'", code=Code.UNAUTHENTICATED)
            return token.strip()
        return self.cookie(web_cookies.ACCESS)

    def json(self, *, required: bool = True) -> dict[str, Any]:
        limit = settings().max_body_bytes
        if self.raw.content_length is not None and self.raw.content_length > limit:
            raise too_large(limit)
        try:
            data = self.raw.stream.read(limit + 1)
        except UNREADABLE_BODY:
            raise InvalidRequest("request body could not be read: malformed chunked encoding, "
                                 "or the body was cut off") from None
        if len(data) > limit:
            raise too_large(limit)
        if not data.strip():
            if required:
                raise InvalidRequest("a JSON body is required")
            return {}
        if self.raw.mimetype != "application/json":
            raise InvalidRequest("Content-Type must be application/json", code=Code.UNSUPPORTED_MEDIA_TYPE)
        try:
            text = data.decode("utf-8")
            body = json.loads(text)
        except UnicodeDecodeError:
            raise InvalidRequest("request body is not valid UTF-8") from None
        except (ValueError, RecursionError):
            raise InvalidRequest("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        if _depth(body) > MAX_JSON_DEPTH:
            raise InvalidRequest("request body is nested too deeply")
        if not is_utf8(json.dumps(body, ensure_ascii=False)):  # "\ud800": valid JSON, no UTF-8 text
            raise InvalidRequest("request body is not valid UTF-8 (lone surrogate escape)")
        return body

    def url(self) -> str:
        """This request's URL as the client called it, for a DPoP proof's `htu`: behind Hosting
        or a proxy the function sees another host, so MYDEVICES_PUBLIC_API_URL names the real one."""
        return (settings().public_api_url or self.raw.host_url.rstrip("/")) + self.raw.path

    @property
    def dpop_input(self) -> dpop.DpopInput:
        """The request's `DPoP` header with what a proof must name, for a flow to check."""
        return dpop.DpopInput(self.raw.headers.get(dpop.PROOF_HEADER), self.raw.method, self.url())

    def origin(self) -> str | None:
        """This API's origin as clients call it (MYDEVICES_PUBLIC_API_URL), or None when unknown:
        behind a proxy the function sees another host."""
        base = settings().public_api_url
        if base is None:
            return None
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{rest.partition('/')[0]}"

    def client_ip(self) -> str | None:
        return geo.client_ip(
            self.raw.remote_addr, self.raw.headers.get("X-Forwarded-For"), settings().trusted_proxies
        )

    def authenticate(self) -> validation.Caller:
        caller = validation.validate(self.bearer(), self.known_did)
        dbsc.require_cookie(caller.session, caller.sid, self.raw.cookies.get(dbsc.BOUND_COOKIE))
        return caller


def too_large(limit: int) -> InvalidRequest:
    return InvalidRequest(f"request body must be at most {limit} bytes", code=Code.PAYLOAD_TOO_LARGE)


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


@dataclass
class ApiResponse:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str | None] = field(default_factory=dict)  # web_cookies part -> value (None removes)
    bound_cookie: str | None = None  # a fresh DBSC-bound cookie (dbsc.py); "" removes it if the request had it


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


def is_utf8(text: str) -> bool:
    """False for text holding a lone surrogate (JSON's "\ud800"), which no UTF-8 can carry and
    libraries downstream choke on."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_text(body: Any) -> str:
    """An answer's JSON. Readable UTF-8, except when some text in it is no UTF-8 (a lone surrogate
    that came in with a request): then escaped, since the answer must go out whatever it carries."""
    text = json.dumps(body, ensure_ascii=False)
    return text if text.isascii() or is_utf8(text) else json.dumps(body)


def render(api_request: ApiRequest | None, response: ApiResponse) -> flask.Response:
    out = flask.Response(json_text(response.body), status=response.status, mimetype="application/json")
    declared = flask.request.content_length
    if response.status == HTTP_STATUS[Code.PAYLOAD_TOO_LARGE] and (declared is None or declared > DRAIN_LIMIT):
        # functions-framework reads the whole request body after every response that is not
        # streamed (its `read_request` hook), so a 10 MB body would be read just to be refused.
        # Streamed, the answer goes out at once and gunicorn drops the rest with the connection.
        # A body of a declared length up to DRAIN_LIMIT is still read: a client that is
        # mid-upload when the connection drops sees a reset instead of the 413.
        out.response = iter([out.get_data()])
    finish(out, {**response.headers, **cors_headers(flask.request)})
    changes = dict(response.cookies)
    if api_request is not None and api_request.new_device:
        # Step 1 hands a fresh id to a device whose id was missing or not ours.
        out.headers[DEVICE_HEADER] = api_request.signed_did
        if api_request.from_cookie or web_cookies.DEVICE in changes:
            changes[web_cookies.DEVICE] = api_request.signed_did
    current = api_request.raw.cookies if api_request is not None else {}
    for name, value, max_age in web_cookies.write(current, changes) if changes else []:
        out.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict")
    if response.bound_cookie or (response.bound_cookie == "" and dbsc.BOUND_COOKIE in current):
        out.set_cookie(dbsc.BOUND_COOKIE, response.bound_cookie, path="/", secure=True, httponly=True,
                       samesite="Strict", max_age=settings().dbsc_cookie_seconds if response.bound_cookie else 0)
    return out


def error_response(error: ApiError) -> ApiResponse:
    return ApiResponse(error.body(), HTTP_STATUS[error.code], error_headers(error))


Handler = Callable[[ApiRequest, dict[str, str]], ApiResponse]


class SessionId(BaseConverter):
    """Exactly the shape of the session ids login makes (128 bits, base64url), so the literal
    siblings (`refresh`, `current`, `logout`...) are never read as one and each path has one set
    of methods."""

    regex = "[A-Za-z0-9_-]{22}"


def routes(*table: tuple[str, str, Handler]) -> MapAdapter:
    """(method, path, handler) rules; `<sid:sid>` in a path is a session id (SessionId)."""
    rules = []
    for method, path, handler in table:
        rule = Rule(path, methods=[method], endpoint=handler)
        rule.methods = {method}  # werkzeug adds HEAD to every GET rule: ours answer HEAD with 405
        rules.append(rule)
    return Map(rules, converters={"sid": SessionId}, merge_slashes=False).bind("api")


@functools.lru_cache(maxsize=1024)
def _match(table: MapAdapter, path: str, method: str) -> tuple[Handler, dict[str, str]]:
    """werkzeug's match, remembered: a few paths take nearly every request, and werkzeug's matcher
    costs three times the old regular expressions (25 µs); a refusal raises, so it is not kept."""
    return table.match(path, method)  # type: ignore[return-value]  # endpoints are the Handlers of routes()


def dispatch(request: flask.Request, table: MapAdapter, *,
             without_app_check: frozenset[Handler] = frozenset()) -> flask.Response:
    """Find the route, run it, and answer in JSON whatever happens. Every route but those of
    `without_app_check` (public documents such as the JWKS) applies MYDEVICES_APP_CHECK."""
    api_request: ApiRequest | None = None
    try:
        limit = settings().max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)  # on any path, unread
        try:
            handler, params = _match(table, request.path, request.method)
        except MethodNotAllowed as refused:
            allowed = refused.valid_methods or []
            if request.method == "OPTIONS" and (answer := preflight(request, allowed)) is not None:
                return answer
            response = error_response(InvalidRequest("method not allowed", code=Code.METHOD_NOT_ALLOWED))
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return render(None, response)
        except HTTPException:  # werkzeug's NotFound
            raise NotFound("no such endpoint") from None
        if handler not in without_app_check:
            app_check.check(request.headers.get(app_check.HEADER))
        require_same_origin(request)  # before the handler reads the body
        api_request = ApiRequest.parse(request)
        return render(api_request, handler(api_request, params))
    except ApiError as error:
        return render(api_request, error_response(error))
    except Exception:  # a bug: log it, but never show a stack trace to a client
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render(api_request, ApiResponse(INTERNAL_BODY, 500))


_FRAMEWORK_REFUSALS = {404: Code.NOT_FOUND, 405: Code.METHOD_NOT_ALLOWED, 413: Code.PAYLOAD_TOO_LARGE,
                       415: Code.UNSUPPORTED_MEDIA_TYPE}


@dataclass(frozen=True)
class Refusal:
    """A 4xx werkzeug raised before any function ran, as an error of ours with werkzeug's status."""

    error: ApiError
    status: int
    headers: dict[str, str]


def framework_refusal(error: HTTPException) -> Refusal | None:
    """The Refusal for a 4xx werkzeug raised before any function ran: functions-framework's
    router matches no path with a newline in it (`/v1/sessions/current%0a`) and refuses
    /robots.txt and /favicon.ico itself, in HTML. A client must not tell those paths from our
    own 404s, nor read HTML where it expects our JSON. None for a 5xx: not a refusal."""
    status = error.code or 500
    if status >= 500:
        return None
    kind = _FRAMEWORK_REFUSALS.get(status, Code.INVALID_REQUEST)
    message = "no such endpoint" if kind == Code.NOT_FOUND else (error.description or error.name)
    headers = {name: value for name, value in error.get_headers() if name in ("Allow", "Retry-After")}
    return Refusal(InvalidRequest(message, code=kind), status, headers)


def render_framework_error(error: HTTPException) -> flask.Response | HTTPException:
    """`framework_refusal` as the API answers it (functions-framework's errorhandler, main.py)."""
    refusal = framework_refusal(error)
    if refusal is None:
        return error
    return render(None, ApiResponse(refusal.error.body(), refusal.status, refusal.headers))
