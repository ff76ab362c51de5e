"""What can go wrong, in the core's terms: one exception, `Refusal`, with a stable `Code` and the
facts a client acts on.

A refusal says what happened (which reason, until when, how long to wait, which nonce to use
next), never how a protocol answers it: the edge's one wire table (`http/wire.py`) gives each
`Code` its HTTP status and its callable status, and builds headers from the facts. The codes are
the wire's: a client branches on them, so a value never changes once sent.
"""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    # the request itself
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PRIVATE_KEY_SENT = "private_key_sent"
    UNSUPPORTED_KEY = "unsupported_key"
    # who is calling
    UNAUTHENTICATED = "unauthenticated"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    SESSION_REVOKED = "session_revoked"
    SESSION_EXPIRED = "session_expired"
    TOKEN_REUSED = "token_reused"
    DEVICE_PROOF_FAILED = "device_proof_failed"
    UNKNOWN_DEVICE = "unknown_device"
    REAUTHENTICATION_REQUIRED = "reauthentication_required"
    APP_CHECK_FAILED = "app_check_failed"
    USE_DPOP_NONCE = "use_dpop_nonce"
    INVALID_DPOP_PROOF = "invalid_dpop_proof"
    DEVICE_BINDING_REQUIRED = "device_binding_required"
    BOUND_COOKIE_REQUIRED = "bound_cookie_required"
    INVALID_DBSC_PROOF = "invalid_dbsc_proof"
    # what the caller may do
    FORBIDDEN = "forbidden"
    SESSION_TOO_NEW = "session_too_new"
    RECENT_SIGN_IN_REQUIRED = "recent_sign_in_required"
    CROSS_SITE_REQUEST = "cross_site_request"
    UNSUPPORTED_UID = "unsupported_uid"
    DBSC_CHALLENGE = "dbsc_challenge"
    # the state of the account
    CONFLICT = "conflict"
    CANNOT_REVOKE_CURRENT = "cannot_revoke_current"
    ALREADY_ANSWERED = "already_answered"
    SESSION_CLOSED = "session_closed"
    DEVICE_LIMIT_REACHED = "device_limit_reached"
    # try again later
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    CONTENTION = "contention"
    INTERNAL = "internal"


class Refusal(Exception):
    """Why the product will not do what was asked, now: `code` says which, `message` says it to a
    person, and the facts say what a client needs to act on it:

    - `reason`: more than the code, where a client branches on it (why Firebase Auth ended the
      session, what is wrong with a DPoP proof);
    - `allowed_at` (ISO 8601): from when a session too new for an action may take it;
    - `max_age`: how recent (seconds) a sign-in an action needs (`recent_sign_in_required`);
    - `retry_after`: seconds until trying again can succeed (rate limits, outages);
    - `nonce`: the DPoP nonce the next proof must carry (RFC 9449 §8);
    - `dbsc_session`: the session whose DBSC challenge the browser must sign.
    """

    def __init__(self, code: Code, message: str, *, reason: str | None = None, allowed_at: str | None = None,
                 retry_after: int | None = None, nonce: str | None = None, dbsc_session: str | None = None,
                 max_age: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.allowed_at = allowed_at
        self.retry_after = retry_after
        self.nonce = nonce
        self.dbsc_session = dbsc_session
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"Refusal({self.code.value!r}, {self.message!r})"

    def wire_facts(self) -> dict[str, str | int]:
        """The facts every answer carries beside `code` in its body (headers carry the others)."""
        wire: dict[str, str | int | None] = {"reason": self.reason, "allowedAt": self.allowed_at,
                                             "maxAge": self.max_age}
        return {name: value for name, value in wire.items() if value is not None}

    def body(self) -> dict[str, dict[str, str | int]]:
        return {"error": {"code": self.code, "message": self.message, **self.wire_facts()}}


def unavailable(message: str = "a backing service is unavailable, retry shortly") -> Refusal:
    """A dependency (Firestore, Pub/Sub, Firebase Auth) cannot be reached: 503, retry in 2 s."""
    return Refusal(Code.UNAVAILABLE, message, retry_after=2)


def contention() -> Refusal:
    """Firestore is up, but too many writes to the same documents met at once (`contention`):
    retrying after a moment succeeds, which an outage's `unavailable` does not promise."""
    return Refusal(Code.CONTENTION, "too many changes to this account at once; retry in a moment", retry_after=1)
