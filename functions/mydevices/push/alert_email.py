""""Signed in on <device> from <place>. Was that you?" by email, for a user the push cannot reach.

A user whose only other device has no push token (a web browser, an app without notification
permission) would never hear of an intruder's login. MYDEVICES_ALERT_EMAIL says when the email
goes: `fallback` (the default once an SMTP relay is configured) when no push for this login was
accepted by FCM, in this delivery or an earlier one; `always` for every login that alerts; `off`.
fanout.py decides with the push outcome in hand and records the email as one more served target
of the event's claim (`KEY`), so a redelivery never sends it twice.

What the email carries is the same capability the push does: the action token of the pair
(alerted session, new session) from `action.pair_token`, bound to the oldest earlier active
session, the one most likely to be the owner's and old enough to speak for the account
(fresh_sessions.py). Its jti is the push's for that pair, so one answer, by email or by push,
uses up both. It expires with the push's (MYDEVICES_ACTION_TOKEN_TTL_SECONDS after the login).
The link opens a page that acts on nothing (GET /v1/alerts/email, http/email_page.py): mail
scanners fetch links, so only the page's form, posted by a person, answers.

The words: plain text only, so no markup of ours can be bent by a device name. The name is the
new device's own claim; alert_copy cleans it as for the push, and `inert_name` then breaks what
mail clients turn into links by themselves (`evil.example`, `http://`, `a@b`): a name must not
become a link the attacker chose next to ours. The subject is fixed: no user text in headers.
The address is the Firebase Auth user's, and only a verified one: an unverified address may be
anyone's (a typo, or an attacker's account-creation), and the link can close a session.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from ..config import settings
from ..firebase_app import app
from ..tokens import action
from . import alert_copy, smtp

log = logging.getLogger(__name__)

KEY = "email"  # the claim's served-target key: never a session id (those are 22 characters)
SUBJECT = "New sign-in to your account"
# Characters mail clients read as parts of links, each replaced by a look-alike they do not.
_LINK_PARTS = str.maketrans({".": "\u2024", "@": "\uff20", "/": "\u2215", ":": "\ua789"})


@dataclass(frozen=True)
class Alerted:
    """Whom the email speaks to: the oldest earlier active session (the one most likely to be the
    owner's and old enough to speak for the account) and the new session's createdAt. The push
    fan-out finds both with the reads it makes for the push anyway (fanout._new_login_targets)."""

    session_id: str
    new_session_created: Any


class NotYet(Exception):
    """The relay or Firebase Auth could not be reached: the fan-out retries the event later."""


def due(event: dict[str, Any], already_sent: frozenset[str], *, reached: bool, waiting: bool) -> bool:
    """Whether this delivery of a new_login event should send the email now.

    `reached`: a push for this login was accepted by FCM (now or in an earlier delivery);
    `waiting`: some pushes failed transiently and will be tried again, so whether push reaches
    is not known yet (fallback waits for that redelivery)."""
    mode = settings().alert_email
    if event.get("type") != "new_login" or mode == "off" or KEY in already_sent:
        return False
    return mode == "always" or (not reached and not waiting)


def inert_name(device_name: Any) -> str | None:
    """The device name as the email may show it: alert_copy's cleaning, then no link parts."""
    name = alert_copy.alert_name(device_name if isinstance(device_name, str) else None)
    return name.translate(_LINK_PARTS) if name is not None else None


def verified_address(uid: str) -> str | None:
    """The user's verified email address in Firebase Auth, or None."""
    from firebase_admin import auth, exceptions
    from google.auth.exceptions import GoogleAuthError

    try:
        user = auth.get_user(uid, app=app())
    except auth.UserNotFoundError:
        return None
    except (exceptions.FirebaseError, GoogleAuthError) as failure:
        raise NotYet(f"Firebase Auth: {type(failure).__name__}") from None
    email = getattr(user, "email", None)
    return email if isinstance(email, str) and email and getattr(user, "email_verified", False) else None


def link(token: str) -> str:
    return f"{settings().email_page}?token={quote(token, safe='')}"


def compose(to: str, event: dict[str, Any], token: str, expires_at: int, event_id: str) -> EmailMessage:
    """The email: plain text, the push's sentence, and the link to the page with the button."""
    copy = alert_copy.Copy.of(inert_name(event.get("deviceName")), event.get("location"))
    until = datetime.fromtimestamp(expires_at, UTC).strftime("%d %B %Y, %H:%M UTC")
    message = EmailMessage()
    message["From"] = settings().email_from or ""
    message["To"] = to
    message["Subject"] = SUBJECT
    message["Date"] = formatdate(usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:32]
    message["Message-ID"] = f"<new-login-{digest}@mydevices>"  # the same on a resend: mail systems dedupe
    message.set_content(
        f"{copy.text}\n\n"
        "If it was not you, open this page and press \"No, close this session\":\n\n"
        f"{link(token)}\n\n"
        f"The page works once, until {until}. Opening it changes nothing by itself.\n"
        "If it was you, there is nothing to do.\n"
    )
    return message


def send(event: dict[str, Any], event_id: str, alerted: Alerted) -> bool:
    """Email the user about this login on behalf of `alerted`; True when sent, False when there is
    nothing to send (no verified address, or the relay refused it for good).
    Raises NotYet when it should be tried again."""
    uid, new_sid = event["uid"], event["sessionId"]
    to = verified_address(uid)
    if to is None:
        log.info("no verified email address for user %s: the new-login email is not sent", uid)
        return False
    token, expires_at = action.pair_token(uid, alerted.session_id, new_sid, alerted.new_session_created)
    try:
        smtp.send(compose(to, event, token, expires_at, event_id), settings().smtp_url or "")
    except smtp.Rejected as rejected:
        log.warning("new-login email for session %s not sent: %s", new_sid, rejected)
        return False
    except (OSError, smtplib.SMTPException) as failure:
        raise NotYet(f"SMTP: {_smtp_failure(failure)}") from None
    return True


def _smtp_failure(failure: Exception) -> str:
    """What went wrong, for the logs: codes, never the relay's text (a refused recipient's names
    the user's address)."""
    name = type(failure).__name__
    if isinstance(failure, smtplib.SMTPRecipientsRefused):
        return f"{name} {sorted(code for code, _ in failure.recipients.values())}"
    if isinstance(failure, smtplib.SMTPResponseException):
        return f"{name} {failure.smtp_code}"
    return name if isinstance(failure, smtplib.SMTPException) else f"{name}: {failure}"
