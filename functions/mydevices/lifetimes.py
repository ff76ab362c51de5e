"""Session lifetimes: how long a session may live, and since when its user last proved who they are.

A session ends at the earlier of two deadlines, both stored on its document so that everything that
reads it (validation, refresh, the list, `hasActiveSession()` in firestore.rules) judges it the same
way without another read:

- `idleExpiresAt`: the last activity plus the idle timeout. Renewed by every refresh (the refresh's
  one `transaction.update` of the session, flows/refresh.py); the idle timeout is the platform's
  (MYDEVICES_IDLE_TIMEOUT_WEB / _APP) or the user's own auto-close choice (`autoCloseDays` on
  the session, copied from `users/{uid}`), whichever is shorter.
- `absoluteExpiresAt`: the login plus the absolute lifetime (MYDEVICES_MAX_SESSION_AGE_WEB / _APP),
  or the shorter lifetime the app asked for at login (`sessionLifetimeSeconds`: "keep me signed in"
  unticked). Never moved.

Null means off. A session past either is over: refresh and validation refuse it with 401
`session_expired` and the `reason` (`idle` or `max_age`), the first of them to see it closes its
document with that reason (`expired_idle` / `expired_max_age`: no `force_logout` push, nobody uses
it), and the list leaves it out. Access tokens are never issued past the earlier deadline.

`authTime` is when the session's user last proved who they are: the Firebase sign-in's auth_time at
login, renewed by re-verification (flows/reauthentication.py); `require_recent_sign_in` refuses a
proof older than an action allows with 403 `recent_sign_in_required` and `maxAge`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from . import clock
from .config import settings
from .errors import Code, Refusal

IDLE, MAX_AGE = "idle", "max_age"
EXPIRED_IDLE, EXPIRED_MAX_AGE = "expired_idle", "expired_max_age"  # a closed session's `revokedReason`
EXPIRED = frozenset({EXPIRED_IDLE, EXPIRED_MAX_AGE})
# Not a lifetime, but told to the device the same way: a closure by the app's support
# (flows/support.py) is `session_revoked` with this reason, so the app can say who signed it out.
CLOSED_BY_SUPPORT = "closed_by_support"
CLOSED_AS = {IDLE: EXPIRED_IDLE, MAX_AGE: EXPIRED_MAX_AGE}
REASON_OF = {closed: reason for reason, closed in CLOSED_AS.items()}
AUTO_CLOSE_DAYS = (7, 30, 90, 180)  # the user's choices (Telegram's: 1 week, 1, 3 or 6 months)


def _web(device_type: object) -> bool:
    return device_type == "WEB"


def idle_seconds(device_type: object, auto_close_days: object = None) -> int | None:
    """The idle timeout of a session on this platform with this user choice; None: no idle timeout."""
    conf = settings()
    limits = [conf.idle_timeout_web if _web(device_type) else conf.idle_timeout_app]
    if isinstance(auto_close_days, int) and auto_close_days in AUTO_CLOSE_DAYS:
        limits.append(auto_close_days * 86400)
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


def max_age_seconds(device_type: object, requested: int | None = None) -> int | None:
    """The absolute lifetime of a new session: the platform's, or the shorter one the app asked for."""
    conf = settings()
    limit = conf.max_session_age_web if _web(device_type) else conf.max_session_age_app
    if requested is not None and (limit is None or requested < limit):
        return requested
    return limit


def at_login(device_type: str, now: datetime, auth_time: int, auto_close_days: object,
             requested: int | None) -> dict[str, Any]:
    """A new session's lifetime fields."""
    idle = idle_seconds(device_type, auto_close_days)
    age = max_age_seconds(device_type, requested)
    return {
        "authTime": datetime.fromtimestamp(auth_time, UTC),
        "autoCloseDays": auto_close_days if auto_close_days in AUTO_CLOSE_DAYS else None,
        "idleExpiresAt": now + timedelta(seconds=idle) if idle is not None else None,
        "absoluteExpiresAt": now + timedelta(seconds=age) if age is not None else None,
    }


def renewed(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The idle deadline a refresh writes: activity now, the session's idle timeout from here."""
    idle = idle_seconds(doc.get("deviceType"), doc.get("autoCloseDays"))
    return {"idleExpiresAt": now + timedelta(seconds=idle) if idle is not None else None}


def expired(doc: dict[str, Any], now: datetime | None = None) -> str | None:
    """Why the session `doc` is over (`idle` or `max_age`), or None while it is not."""
    moment = now or clock.utcnow()
    absolute = doc.get("absoluteExpiresAt")
    if isinstance(absolute, datetime) and absolute <= moment:
        return MAX_AGE
    idle = doc.get("idleExpiresAt")
    if isinstance(idle, datetime) and idle <= moment:
        return IDLE
    return None


def deadline(doc: dict[str, Any]) -> int | None:
    """The earlier deadline in whole seconds (what caps an access token's `exp`), None if none."""
    moments = [doc.get(name) for name in ("idleExpiresAt", "absoluteExpiresAt")]
    given = [int(moment.timestamp()) for moment in moments if isinstance(moment, datetime)]
    return min(given) if given else None


def refusal(reason: str) -> Refusal:
    what = "it was not used for too long" if reason == IDLE else "it reached its maximum lifetime"
    return Refusal(Code.SESSION_EXPIRED, f"this session has expired ({what}); sign in again", reason=reason)


def closed_refusal(doc: dict[str, Any]) -> Refusal | None:
    """For a closed session: `session_expired` when it was closed for expiring, `session_revoked`
    with reason `closed_by_support` when support closed it, else None."""
    if doc.get("revokedReason") == CLOSED_BY_SUPPORT:
        return Refusal(Code.SESSION_REVOKED, "this session was closed by support", reason=CLOSED_BY_SUPPORT)
    reason = REASON_OF.get(str(doc.get("revokedReason")))
    return refusal(reason) if reason is not None else None


def require_recent_sign_in(session: dict[str, Any], max_age: int | None) -> None:
    """Refuse unless the session's user proved who they are within `max_age` seconds (None: no limit)."""
    if max_age is None:
        return
    proved = session.get("authTime")
    if isinstance(proved, datetime) and (clock.utcnow() - proved).total_seconds() <= max_age:
        return
    raise Refusal(Code.RECENT_SIGN_IN_REQUIRED,
                  f"sign in again to do this: it needs a sign-in within the last {max_age} seconds",
                  max_age=max_age)
