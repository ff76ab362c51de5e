"""Sending through FCM and sorting each failure into: dead token, try again later, or give up.

The sort decides what happens next, so it follows FCM's documented meanings:
- dead token (remove it, never use it again): UNREGISTERED, SENDER_ID_MISMATCH, and
  INVALID_ARGUMENT whose FcmError detail is about the token. A payload error is also
  INVALID_ARGUMENT, but carries a google.rpc.BadRequest naming a message field other than
  the token: that is our bug, not the device's, and must not cost the device its token;
- transient (fail so Pub/Sub redelivers): 5xx, 429 / quota, timeouts, connection failures;
- anything else (payload error, APNs credentials, permission) is permanent: logged, not retried.
firebase-admin already retries 500/503 itself (up to 4 times, with back-off) before reporting.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from firebase_admin import exceptions, messaging

from .. import firebase_app

log = logging.getLogger(__name__)

SEND_LIMIT = 500  # send_each refuses more in one call
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_TRANSIENT = (
    exceptions.UnavailableError,
    exceptions.InternalError,
    exceptions.ResourceExhaustedError,  # includes messaging.QuotaExceededError
    exceptions.DeadlineExceededError,
    exceptions.UnknownError,  # unmapped statuses such as 502/504, and transport failures
)


@dataclass(frozen=True)
class Outgoing:
    """One message for one session's device; `key` (the session id) is what dedupe remembers."""

    key: str
    token: str
    message: messaging.Message


@dataclass
class Outcome:
    sent: list[Outgoing] = field(default_factory=list)
    dead: list[Outgoing] = field(default_factory=list)
    transient: list[tuple[Outgoing, Exception]] = field(default_factory=list)
    failed: list[tuple[Outgoing, Exception]] = field(default_factory=list)


def message(token: str, **parts: Any) -> messaging.Message:
    """A Message to a registration token.

    firebase-admin 7.5+ flags `token=` as deprecated in favour of installation ids (`fid=`), but
    apps hand us registration tokens and FCM v1's `token` field is what takes them; the library
    silences the same warning in its own multicast path.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(token=token, **parts)


def _error_details(exc: exceptions.FirebaseError) -> list[dict[str, Any]]:
    response = exc.http_response
    if response is None:
        return []
    try:
        details = response.json().get("error", {}).get("details", [])
    except (ValueError, AttributeError):
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def is_dead_token(exc: BaseException) -> bool:
    if isinstance(exc, (messaging.UnregisteredError, messaging.SenderIdMismatchError)):
        return True
    if not isinstance(exc, exceptions.InvalidArgumentError):
        return False
    details = _error_details(exc)
    about_token = any(d.get("@type") == _FCM_ERROR and d.get("errorCode") == "INVALID_ARGUMENT" for d in details)
    violations = [
        v.get("field")
        for d in details if d.get("@type") == _BAD_REQUEST
        for v in d.get("fieldViolations") or [] if isinstance(v, dict)
    ]
    return about_token and all(name == "message.token" for name in violations)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT):
        return True
    response = getattr(exc, "http_response", None)
    status = getattr(response, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 429)


def send(outgoing: Sequence[Outgoing]) -> Outcome:
    """Send everything, at most SEND_LIMIT per send_each call, and sort the results.

    A whole call failing (rather than single messages) counts as transient for its messages, so
    what earlier calls delivered is still reported and not sent again on redelivery.
    """
    outcome = Outcome()
    app = firebase_app.app()
    for start in range(0, len(outgoing), SEND_LIMIT):
        chunk = list(outgoing[start:start + SEND_LIMIT])
        try:
            batch = messaging.send_each([item.message for item in chunk], app=app)
        except exceptions.FirebaseError as exc:
            log.warning("send_each failed as a whole for %d messages: %s", len(chunk), exc)
            outcome.transient.extend((item, exc) for item in chunk)
            continue
        for item, response in zip(chunk, batch.responses, strict=True):
            error = response.exception
            if response.success or error is None:
                outcome.sent.append(item)
            elif is_dead_token(error):
                outcome.dead.append(item)
            elif is_transient(error):
                outcome.transient.append((item, error))
            else:
                outcome.failed.append((item, error))
                log.error("FCM refused the message for session %s for good: %s %s", item.key,
                          type(error).__name__, _error_details(error) or error)
    return outcome
