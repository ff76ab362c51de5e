"""One request as a route reads it: who the device says it is, its tokens, cookies, DBSC and DPoP
headers, and its body, as plain values. A route never sees Flask.

Mobile clients send `Authorization: Bearer` and `X-Device-Id`; web clients the same things in
cookies (`web_cookies.py`). Headers win over cookies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import flask
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import ClientDisconnected

from .. import dbsc, dpop, geo, web_cookies
from ..config import settings
from ..errors import Code, Refusal
from ..flows import validation
from ..tokens import device_id
from ..tokens.keys import keyring
from . import cors

MAX_JSON_DEPTH = 32
# What reading a request body raises when the client framed it wrong or stopped sending: the
# client's fault, so a 400, not a 500. gunicorn (functions-framework's server, in production
# too) decodes chunked bodies itself and raises its ParseException (InvalidChunkSize for `zz`
# or `-5`, ChunkMissingTerminator for a chunk longer than it declared, ...) and NoMoreData, an
# OSError, for a body cut off; werkzeug's own server (functions-framework --debug) raises
# OSError from its chunk decoder, and werkzeug ClientDisconnected for a body shorter than its
# Content-Length.
UNREADABLE_BODY = (ParseException, OSError, ClientDisconnected)


@dataclass
class ApiRequest:
    did: str
    signed_did: str
    new_device: bool  # the id presented was missing or not ours: `did` is a fresh one
    from_cookie: bool
    _request: flask.Request = field(repr=False)

    @classmethod
    def parse(cls, request: flask.Request) -> ApiRequest:
        """Step 1 of validation happens here, once: the device id is verified (or replaced)."""
        header_did = request.headers.get(cors.DEVICE_HEADER)
        cookie_did = web_cookies.read(request.cookies, web_cookies.DEVICE)
        did, signed, new = device_id.resolve(keyring(), header_did or cookie_did)
        return cls(did, signed, new, header_did is None and cookie_did is not None, request)

    @property
    def known_did(self) -> str | None:
        """The device id if the client presented a valid one, else None."""
        return None if self.new_device else self.did

    @property
    def cookies(self) -> Mapping[str, str]:
        return self._request.cookies

    def query(self, name: str) -> str | None:
        """One query parameter (its first value): the email link's token (http/email_page.py)."""
        return self._request.args.get(name)

    def cookie(self, part: str) -> str | None:
        """One part of the web session (web_cookies: DEVICE, ACCESS, REFRESH), in either layout."""
        return web_cookies.read(self._request.cookies, part)

    @property
    def bound_cookie(self) -> str | None:
        """The DBSC-bound cookie (dbsc.py), which only the browser holding the session's key keeps fresh."""
        return self._request.cookies.get(dbsc.BOUND_COOKIE)

    @property
    def dbsc_response(self) -> str | None:
        """The browser's signed answer to a DBSC challenge (`Secure-Session-Response`)."""
        return self._request.headers.get(dbsc.RESPONSE_HEADER)

    @property
    def dbsc_session_id(self) -> str:
        return self._request.headers.get(dbsc.SESSION_ID_HEADER, "").strip().strip('"')

    @property
    def from_cors_origin(self) -> bool:
        return cors.from_cors_origin(self._request)

    def bearer(self) -> str | None:
        header = self._request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            # `DPoP <token>` is how RFC 9449 clients send a bound token: the same token to us.
            if scheme.lower() not in ("bearer", "dpop") or not token.strip():
                raise Refusal(Code.UNAUTHENTICATED, "Authorization must be 'Bearer <token>'")
            return token.strip()
        return self.cookie(web_cookies.ACCESS)

    def _body(self) -> bytes:
        raw = self._request
        limit = settings().max_body_bytes
        if raw.content_length is not None and raw.content_length > limit:
            raise too_large(limit)
        try:
            data: bytes = raw.stream.read(limit + 1)
        except UNREADABLE_BODY:
            raise Refusal(Code.INVALID_REQUEST, "request body could not be read: malformed chunked encoding, "
                          "or the body was cut off") from None
        if len(data) > limit:
            raise too_large(limit)
        return data

    def form(self) -> dict[str, str]:
        """An HTML form's fields: the email link's page posts its button as one (http/email_page.py),
        since a page that runs no script cannot send JSON. A repeated field keeps its first value."""
        if self._request.mimetype != "application/x-www-form-urlencoded":
            raise Refusal(Code.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(self._body().decode("utf-8"), max_num_fields=20, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise Refusal(Code.INVALID_REQUEST, "request body is not a valid form") from None
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name, value)
        return fields

    def json(self, *, required: bool = True) -> dict[str, Any]:
        raw = self._request
        data = self._body()
        if not data.strip():
            if required:
                raise Refusal(Code.INVALID_REQUEST, "a JSON body is required")
            return {}
        if raw.mimetype != "application/json":
            raise Refusal(Code.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json")
        try:
            text = data.decode("utf-8")
            body = json.loads(text)
        except UnicodeDecodeError:
            raise Refusal(Code.INVALID_REQUEST, "request body is not valid UTF-8") from None
        except (ValueError, RecursionError):
            raise Refusal(Code.INVALID_REQUEST, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Refusal(Code.INVALID_REQUEST, "request body must be a JSON object")
        if _depth(body) > MAX_JSON_DEPTH:
            raise Refusal(Code.INVALID_REQUEST, "request body is nested too deeply")
        if not is_utf8(json.dumps(body, ensure_ascii=False)):  # "\ud800": valid JSON, no UTF-8 text
            raise Refusal(Code.INVALID_REQUEST, "request body is not valid UTF-8 (lone surrogate escape)")
        return body

    def url(self) -> str:
        """This request's URL as the client called it, for a DPoP proof's `htu`: behind Hosting
        or a proxy the function sees another host, so MYDEVICES_PUBLIC_API_URL names the real one."""
        return (settings().public_api_url or self._request.host_url.rstrip("/")) + self._request.path

    @property
    def dpop_input(self) -> dpop.DpopInput:
        """The request's `DPoP` header with what a proof must name, for a flow to check."""
        return dpop.DpopInput(self._request.headers.get(dpop.PROOF_HEADER), self._request.method, self.url())

    def origin(self) -> str | None:
        """This API's origin as clients call it (MYDEVICES_PUBLIC_API_URL), or None when unknown:
        behind a proxy the function sees another host."""
        base = settings().public_api_url
        if base is None:
            return None
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{rest.partition('/')[0]}"

    def client_ip(self) -> str | None:
        return geo.client_ip(self._request.remote_addr, self._request.headers.get("X-Forwarded-For"),
                             settings().trusted_proxies)

    def authenticate(self) -> validation.Caller:
        """Steps 2 and 3 of validation, and the bound cookie of a DBSC session."""
        caller = validation.validate(self.bearer(), self.known_did)
        dbsc.require_cookie(caller.session, caller.sid, self.bound_cookie)
        return caller


def too_large(limit: int) -> Refusal:
    return Refusal(Code.PAYLOAD_TOO_LARGE, f"request body must be at most {limit} bytes")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def is_utf8(text: str) -> bool:
    """False for text holding a lone surrogate (JSON's "\\ud800"), which no UTF-8 can carry and
    libraries downstream choke on."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
