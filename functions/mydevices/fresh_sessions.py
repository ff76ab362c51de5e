"""The fresh-session rule: a session younger than MYDEVICES_FRESH_SESSION_HOURS cannot act against
the account's other sessions (close them, answer alerts about them, sign them all out as a
copied-token response).

Like Telegram's rule: an intruder with the password gets a fresh session, and must not be able
to close the owner's older sessions (and with them the owner's "No") before the owner has seen
the alert. A session the owner confirmed ("Yes" from another device) is settled at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import clock
from .config import settings
from .errors import Code, Refusal
from .views import iso


def may_act_from(session: dict[str, Any]) -> datetime | None:
    """When `session` may act against the account's other sessions; None if it may now."""
    hours = settings().fresh_session_hours
    began = session.get("createdAt")
    if hours <= 0 or not isinstance(began, datetime) or session.get("confirmedAt") is not None:
        return None
    allowed = began + timedelta(hours=hours)
    return allowed if allowed > clock.utcnow() else None


def require_may_act(session: dict[str, Any], doing: str = "close other sessions") -> None:
    allowed = may_act_from(session)
    if allowed is not None:
        raise Refusal(Code.SESSION_TOO_NEW, f"this session is too new to {doing}; it may from {iso(allowed)}",
                      allowed_at=iso(allowed) or "")
