"""`require_session`: the same three-step validation for any other functions-framework function.

    @functions_framework.http
    @require_session
    def orders(request: flask.Request, caller: Caller) -> flask.typing.ResponseReturnValue:
        return {"uid": caller.uid}

A request that fails validation never reaches the function: it gets the same JSON 401/403/503
answers (and a fresh device id when its own was missing) as the sessions API itself, the
same-origin check on cookie requests that change state included, and App Check as the function's
own MYDEVICES_APP_CHECK says (mydevices/app_check.py; off unless set).

The bearer token may be our access token (with the signed device id) or the Firebase ID token of
an app signed in with its login's custom token: its `did` claim binds it to the device, so no
device id is needed, and one sent anyway must match (flows/validation.py).

`@require_session(require_proof=True)` also demands proof of possession on every request: the
session must be bound to a device key (a login with `devicePublicKey`), and the request must
carry a `DPoP` proof (RFC 9449) that key signed for this method and URL, within the last
minute, with `ath` the hash of the access token sent with it. Without it a copied access token
works for its ten minutes; with it, not at all. A Firebase ID token of a bound session passes
too, with the proof (the session names the key, not the token). Replays of one proof within its minute
are not tracked here (that would cost a write per request): `ath` and the minute bound them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import flask

from .. import app_check, lifetimes
from ..errors import Code, Refusal
from ..flows.validation import Caller
from .cors import require_same_origin
from .render import INTERNAL, refusal_for, refused, render
from .request import ApiRequest

log = logging.getLogger(__name__)
Wrapped = Callable[[flask.Request, Caller], Any]
Guarded = Callable[[flask.Request], Any]


def require_session(func: Wrapped | None = None, *, require_proof: bool = False,
                    max_auth_age: int | None = None) -> Any:
    """`@require_session`, `@require_session(require_proof=True)` (see the module's doc), or
    `@require_session(max_auth_age=600)`: the session's user must have proved who they are (signed in,
    or re-verified with POST /v1/sessions/current/reauthenticate) within that many seconds, else 403
    `recent_sign_in_required` with `maxAge` (lifetimes.py)."""

    def decorate(inner: Wrapped) -> Guarded:
        @functools.wraps(inner)
        def wrapper(request: flask.Request) -> Any:
            api_request: ApiRequest | None = None
            try:
                app_check.check(request.headers.get(app_check.HEADER))
                require_same_origin(request)  # the web cookies authenticate here too
                api_request = ApiRequest.parse(request)
                caller = api_request.authenticate()
                if require_proof:
                    _require_possession(api_request, caller)
                lifetimes.require_recent_sign_in(caller.session, max_auth_age)
            except Exception as failure:
                refusal = refusal_for(failure)
                if refusal is None:  # a bug of ours: the app's function still answers our JSON, no trace
                    log.exception("unhandled error in require_session on %s %s", request.method, request.path)
                    refusal = INTERNAL
                return render(api_request, refused(refusal))
            return inner(request, caller)

        return wrapper

    return decorate(func) if func is not None else decorate


def _require_possession(api_request: ApiRequest, caller: Caller) -> None:
    jkt = caller.session.get("dpopJkt")
    if not isinstance(jkt, str):
        raise Refusal(Code.DEVICE_BINDING_REQUIRED,
                      "this endpoint needs a session bound to a device key (log in with devicePublicKey)")
    checked = api_request.dpop_input.check(access_token=api_request.bearer() or "", require_nonce=False)
    if checked.jkt != jkt:
        raise Refusal(Code.INVALID_DPOP_PROOF, "this endpoint needs a DPoP proof signed by the session's device key",
                      reason="missing" if not checked.present else "wrong_key")
    if checked.fault is not None:
        raise checked.fault
