"""A device registers the push token its OS gave it, or a new one after the OS rotated it."""

from __future__ import annotations

from .. import store
from ..model import PushTarget
from .validation import Caller


@store.guarded
def set_push_token(caller: Caller, push: PushTarget) -> None:
    store.secret_ref(caller.sid).update({"pushToken": push.token, "pushProvider": push.provider})
