"""One activity entry in words, the same for the API, the callable and the page.

Device names are the devices' own claims and support notes are an agent's free text: both are
shown as quoted, cleaned data (push/alert_copy.alert_name: no control, format or bidi characters,
no quotation marks, bounded) or, for a note, cleaned and bounded plain text after our own words.
The sentence is built by the server and sent as text: clients put it in with textContent (or a
Text composable / SwiftUI Text), never as HTML.

Closures are worded by `closedBy.kind`, generically: a kind this module has no words for (say a
newer server's) still reads "Closed", never fails.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .. import account, lifetimes
from ..push.alert_copy import alert_name
from . import record

MAX_NOTE_SHOWN = 200
ANSWERS = {"yes": "\u201cYes, it was me\u201d", "no": "\u201cNo, close this session\u201d"}
ACCOUNT = {account.CREDENTIALS_REVOKED: "Closed when your password was reset or your sign-ins were revoked",
           account.DISABLED: "Closed because your account was disabled",
           account.DELETED: "Closed because your account was deleted"}
EXPIRY = {lifetimes.EXPIRED_IDLE: "Expired: not used for too long",
          lifetimes.EXPIRED_MAX_AGE: "Expired: it reached its maximum age"}


def device(name: Any) -> str:
    cleaned = alert_name(name if isinstance(name, str) else None)
    return f"\u201c{cleaned}\u201d" if cleaned else "an unnamed device"


def plain(text: Any, limit: int = MAX_NOTE_SHOWN) -> str | None:
    """Free text (a support note) made inert: no control, format or private characters, whitespace
    collapsed, bounded. None when nothing printable is left."""
    if not isinstance(text, str):
        return None
    kept = [" " if char.isspace() else char for char in text
            if char.isspace() or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")]
    cleaned = " ".join("".join(kept).split())
    if len(cleaned) > limit:
        cleaned = cleaned[:limit - 1].rstrip() + "\u2026"
    return cleaned or None


def closed_by(entry: dict[str, Any], current_sid: str | None = None) -> str:
    """Who closed the session, as "Closed by ...": the user (on which device), their "No", support,
    the account, a copied token, expiry, the same device signing in again, a logout."""
    by = entry.get("closedBy") or {}
    kind, reason = by.get("kind"), entry.get("reason")
    if kind == "user":
        where = "this device" if current_sid and by.get("sessionId") == current_sid else device(by.get("deviceName"))
        return f"Closed by you on {where}"
    if kind == "alert_answer":
        return "Closed by your \u201cNo\u201d to \u201cWas that you?\u201d"
    if kind == "support":
        note = plain(by.get("note"))
        return f"Closed by support: {note}" if note else "Closed by support"
    if kind == "account":
        return ACCOUNT.get(str(reason), "Closed by a change to your account")
    if kind == "copied_token":
        return "Closed because a copy of its sign-in was used elsewhere"
    if kind == "expiry":
        return EXPIRY.get(str(reason), "Expired")
    if kind == "same_device":
        return "Replaced by a new sign-in on the same device"
    if kind == "logout":
        return "Signed out on the device itself"
    return "Closed"


def sentence(entry: dict[str, Any], current_sid: str | None = None) -> str:
    kind, name = entry.get("kind"), device(entry.get("deviceName"))
    if kind == record.SIGNED_IN:
        place = entry.get("location") if isinstance(entry.get("location"), str) and entry.get("location") else None
        said = f"Signed in on {name} from {place or 'an unknown location'}"
        return said + (". Your other devices were asked \u201cWas that you?\u201d" if entry.get("alerted") else "")
    if kind == record.CLOSED:
        return f"Session on {name} ended. {closed_by(entry, current_sid)}"
    if kind == record.COPIED_TOKEN:
        return f"A copy of the sign-in of {name} was used: its session was closed"
    if kind == record.ALERT_ANSWERED:
        answer = ANSWERS.get(str(entry.get("answer")), "an answer")
        return f"You answered {answer} to the sign-in on {name}"
    return "Security activity"
