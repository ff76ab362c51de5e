"""Who may call from a page: CORS for pages of other origins, and the same-origin check that keeps
cookie requests to our own page.

Web clients carry their device id and tokens in cookies (`web_cookies.py`: HttpOnly, Secure,
SameSite=Strict, Path=/): script cannot read them and other sites cannot send them. Pages on other
origins (MYDEVICES_CORS_ORIGINS) may call the API with bearer tokens: CORS lets them read the
answers, and never with credentials, so the cookies stay same-site only.
"""

from __future__ import annotations

from collections.abc import Iterable

import flask

from .. import app_check, dbsc, dpop, web_cookies
from ..config import settings
from ..errors import Code, Refusal

DEVICE_HEADER = "X-Device-Id"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# DPoP and DPoP-Nonce: a page on another origin binds its session to a WebCrypto key (clients/js), and
# its refreshes carry a proof and read the next nonce.
ALLOW_HEADERS = f"Authorization, Content-Type, {DEVICE_HEADER}, {app_check.HEADER}, {dpop.PROOF_HEADER}"
EXPOSE_HEADERS = f"{DEVICE_HEADER}, Retry-After, {dpop.NONCE_HEADER}"
MAX_AGE = 3600  # seconds a browser may reuse a preflight (Chromium caps it at 7200)


def headers_for(request: flask.Request) -> dict[str, str]:
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
        headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
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
    out.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    out.headers["Access-Control-Max-Age"] = str(MAX_AGE)
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
    raise Refusal(Code.CROSS_SITE_REQUEST, "a request that uses the web cookies and changes state must come from "
                  "this site's own page (Sec-Fetch-Site: same-origin, or an allowed Origin)")
