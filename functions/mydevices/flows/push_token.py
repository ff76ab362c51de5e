"""A device registers the push token its OS gave it, or a new one after the OS rotated it."""

from __future__ import annotations

from google.api_core import exceptions as core_exceptions

from .. import store
from ..bodies import PushTarget
from ..errors import Code, Refusal
from .validation import Caller


def set_push_token(caller: Caller, push: PushTarget) -> None:
    """The token lives beside the refresh token: a session whose refresh token went unused until
    its retention removed it (documents.IDLE_LIMIT) can neither refresh nor be reached."""
    try:
        store.secret_ref(caller.sid).update({"pushToken": push.token, "pushProvider": push.provider})
    except core_exceptions.NotFound:
        raise Refusal(Code.SESSION_REVOKED, "this session can no longer be refreshed; sign in again") from None
