"""Routing: from a method and a path to the route that serves it, and an answer in JSON whatever
happens on the way.

Routes are werkzeug `Rule`s in a `Map`, with a converter for session ids, so 404 and 405 with
`Allow` are werkzeug's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import BaseConverter, Map, MapAdapter, Rule

from .. import app_check
from ..config import settings
from ..errors import Code, Refusal
from . import cors
from .render import INTERNAL, ApiResponse, refusal_for, refused, render
from .request import ApiRequest, too_large

log = logging.getLogger(__name__)

Route = Callable[[ApiRequest, dict[str, str]], ApiResponse]


class SessionId(BaseConverter):
    """Exactly the shape of the session ids login makes (128 bits, base64url), so the literal
    siblings (`refresh`, `current`, `logout`...) are never read as one and each path has one set
    of methods."""

    regex = "[A-Za-z0-9_-]{22}"


def routes(*table: tuple[str, str, Route]) -> MapAdapter:
    """(method, path, route) rules; `<sid:sid>` in a path is a session id (SessionId)."""
    rules = []
    for method, path, route in table:
        rule = Rule(path, methods=[method], endpoint=route)
        rule.methods = {method}  # werkzeug adds HEAD to every GET rule: ours answer HEAD with 405
        rules.append(rule)
    return Map(rules, converters={"sid": SessionId}, merge_slashes=False).bind("api")


@functools.lru_cache(maxsize=1024)
def _match(table: MapAdapter, path: str, method: str) -> tuple[Route, dict[str, str]]:
    """werkzeug's match, remembered: a few paths take nearly every request, and werkzeug's matcher
    costs three times the old regular expressions (25 µs); a refusal raises, so it is not kept."""
    return table.match(path, method)  # type: ignore[return-value]  # endpoints are the Routes of routes()


def dispatch(request: flask.Request, table: MapAdapter, *,
             without_app_check: frozenset[Route] = frozenset()) -> flask.Response:
    """Find the route, run it, and answer in JSON whatever happens. Every route but those of
    `without_app_check` (public documents such as the JWKS) applies MYDEVICES_APP_CHECK."""
    api_request: ApiRequest | None = None
    try:
        limit = settings().max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)  # on any path, unread
        try:
            route, params = _match(table, request.path, request.method)
        except MethodNotAllowed as not_allowed:
            allowed = not_allowed.valid_methods or []
            if request.method == "OPTIONS" and (answer := cors.preflight(request, allowed)) is not None:
                return answer
            response = refused(Refusal(Code.METHOD_NOT_ALLOWED, "method not allowed"))
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return render(None, response)
        except HTTPException:  # werkzeug's NotFound
            raise Refusal(Code.NOT_FOUND, "no such endpoint") from None
        if route not in without_app_check:
            app_check.check(request.headers.get(app_check.HEADER))
        cors.require_same_origin(request)  # before the route reads the body
        api_request = ApiRequest.parse(request)
        return render(api_request, route(api_request, params))
    except Exception as failure:
        refusal = refusal_for(failure)
        if refusal is None:  # a bug: log it, but never show a stack trace to a client
            log.exception("unhandled error on %s %s", request.method, request.path)
            refusal = INTERNAL
        return render(api_request, refused(refusal))
