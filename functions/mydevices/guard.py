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
device id is needed, and one sent anyway must match (sessions.validate_firebase).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flask

from . import app_check
from .errors import ApiError
from .httpio import ApiRequest, error_response, render, require_same_origin
from .sessions import Caller

Wrapped = Callable[[flask.Request, Caller], Any]


def require_session(func: Wrapped) -> Callable[[flask.Request], Any]:
    @functools.wraps(func)
    def wrapper(request: flask.Request) -> Any:
        api_request: ApiRequest | None = None
        try:
            app_check.check(request.headers.get(app_check.HEADER))
            require_same_origin(request)  # the web cookies authenticate here too
            api_request = ApiRequest.parse(request)
            caller = api_request.authenticate()
        except ApiError as error:
            return render(api_request, error_response(error))
        return func(request, caller)

    return wrapper
