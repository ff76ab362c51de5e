"""What can go wrong, in the core's terms: a stable `Code` and the facts a client acts on.

An error says what happened (which reason, until when, how long to wait, which nonce to use
next), never how a protocol answers it: each edge has one table from `Code` to its own status
(httpio.HTTP_STATUS, callable.STATUS) and builds its headers from the facts (httpio.error_headers).
The codes are the wire's: a client branches on them, so a value never changes once sent.
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


class ApiError(Exception):
    """A refusal: `code` says which, `message` says it to a person."""

    code: Code = Code.INVALID_REQUEST

    def __init__(self, message: str, *, code: Code | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def facts(self) -> dict[str, str]:
        """The machine-readable facts an app acts on, carried beside `code` in every answer."""
        return {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, **self.facts()}}


class InvalidRequest(ApiError):
    code = Code.INVALID_REQUEST


class Unauthenticated(ApiError):
    """The caller is not who it must be; `code` says why. `reason` says more where a client
    needs it (why Firebase Auth ended the session, what is wrong with a DPoP proof); `nonce`
    is the DPoP nonce the next proof must carry (RFC 9449 §8)."""

    code = Code.UNAUTHENTICATED

    def __init__(self, message: str, *, code: Code | None = None, reason: str | None = None,
                 nonce: str | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason
        self.nonce = nonce

    def facts(self) -> dict[str, str]:
        return {} if self.reason is None else {"reason": self.reason}


class Forbidden(ApiError):
    """The caller may not do this; `code` says why. `allowed_at` (ISO 8601): from when a session
    too new for it may; `dbsc_session`: the session whose DBSC challenge the browser must sign."""

    code = Code.FORBIDDEN

    def __init__(self, message: str, *, code: Code | None = None, allowed_at: str | None = None,
                 dbsc_session: str | None = None) -> None:
        super().__init__(message, code=code)
        self.allowed_at = allowed_at
        self.dbsc_session = dbsc_session

    def facts(self) -> dict[str, str]:
        return {} if self.allowed_at is None else {"allowedAt": self.allowed_at}


class NotFound(ApiError):
    code = Code.NOT_FOUND


class Conflict(ApiError):
    """The account's state does not allow it; `code` says which state."""

    code = Code.CONFLICT


class RateLimited(ApiError):
    """Too many requests of one kind (rate_limits.py): `retry_after` seconds until the window ends."""

    code = Code.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ApiError):
    """A dependency (Firestore, Pub/Sub) cannot be reached: retry after `retry_after` seconds."""

    code = Code.UNAVAILABLE

    def __init__(self, message: str = "a backing service is unavailable, retry shortly", retry_after: int = 2,
                 *, code: Code | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


def contention() -> Unavailable:
    """Firestore is up, but too many writes to the same documents met at once (`contention`):
    retrying after a moment succeeds, which an outage's `unavailable` does not promise."""
    return Unavailable("too many changes to this account at once; retry in a moment", retry_after=1,
                       code=Code.CONTENTION)
