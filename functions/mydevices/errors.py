"""Errors with stable codes: the core raises them, the HTTP edge renders them as JSON."""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None,
                 details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.details = details or {}  # machine-readable facts an app acts on (e.g. allowedAt)

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(ApiError):
    status, code = 400, "invalid_request"


class Unauthenticated(ApiError):
    """401; `code` says why: unauthenticated, invalid_token, token_expired, session_revoked,
    token_reused, unknown_device."""

    status, code = 401, "unauthenticated"


class Forbidden(ApiError):
    """403; `code` says why: session_too_new (the caller's session is younger than the
    fresh-session window; `allowed_at` says when it may), cross_site_request, unsupported_uid
    (a Firebase user whose uid Firestore reserves or cannot name a document with)."""

    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    """409; `code` says why: cannot_revoke_current, already_answered, session_closed,
    device_limit_reached (a new device past the user's cap of active sessions)."""

    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(ApiError):
    """429 `rate_limited` (rate_limits.py), with Retry-After: the seconds until the window ends."""

    status, code = 429, "rate_limited"


class Unavailable(ApiError):
    """A dependency (Firestore, Pub/Sub) cannot be reached: the caller should retry."""

    status, code = 503, "unavailable"

    def __init__(self, message: str = "a backing service is unavailable, retry shortly", retry_after: int = 2,
                 *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(retry_after)})


def contention() -> Unavailable:
    """Firestore is up, but too many writes to the same documents met at once (503 `contention`):
    retrying after a moment succeeds, which an outage's `unavailable` does not promise."""
    return Unavailable("too many changes to this account at once; retry in a moment", retry_after=1,
                       code="contention")
