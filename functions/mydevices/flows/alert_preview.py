"""What an action token is about, without answering: the email link's page shows it before the
user decides (http/email_page.py).

Reading changes nothing, by design: mail scanners and link previews fetch every link in an email,
so whatever a GET of the link does, a machine will do. The token is verified (bad or expired:
the usual 401s), the sentence is the push's (alert_copy.py), and `answered` tells the page to
say so instead of offering buttons that would meet `already_answered`.
"""

from __future__ import annotations

from typing import Any

from .. import store
from ..documents import ACTIVE
from ..push import alert_copy
from ..tokens import action
from .alert_answer import USED_TOKENS


def preview(action_token: Any) -> dict[str, Any]:
    """`{"text", "sessionId", "active", "answered", "expiresAt"}` about the token's new session."""
    claims = action.verify(action_token)
    uid, new_sid = claims["sub"], claims["nsid"]
    session = store.read(store.session_ref(uid, new_sid)) if store.valid_id(new_sid) else None
    session = session or {}
    copy = alert_copy.Copy.of(session.get("deviceName"), session.get("location"))
    used = store.read(store.db().collection(USED_TOKENS).document(claims["jti"]))
    return {"text": copy.text, "sessionId": new_sid, "active": session.get("status") == ACTIVE,
            "answered": used is not None, "expiresAt": int(claims["exp"])}
