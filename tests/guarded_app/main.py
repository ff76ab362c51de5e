"""Another team's function, protected by My Devices' `require_session` (used by the tests)."""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from mydevices.flows.validation import Caller
from mydevices.http.require_session import require_session


@functions_framework.http
@require_session
def orders(request: flask.Request, caller: Caller) -> Any:
    return {"uid": caller.uid, "sessionId": caller.sid, "path": request.path}


@functions_framework.http
@require_session(require_proof=True)
def bound_orders(request: flask.Request, caller: Caller) -> Any:
    """The same, for sessions bound to a device key only, with a DPoP proof on every request."""
    return {"uid": caller.uid, "sessionId": caller.sid, "path": request.path}


@functions_framework.http
@require_session(max_auth_age=600)
def payments(request: flask.Request, caller: Caller) -> Any:
    """A sensitive function: the session's user must have signed in (or re-verified) within 10 minutes."""
    return {"uid": caller.uid, "sessionId": caller.sid, "path": request.path}
