"""The documents we write, their fields named once: the code builds them here and the tests seed
them from here, so a field added to a session cannot be missing from one of the two.

    users/{uid}/sessions/{sid}   a session: what the owner's devices may read (firestore.rules)
    sessionSecrets/{sid}         its refresh-token hashes and push token: server only
    users/{uid}/devices/{did}    the device's pointer to its current session, and `untrustedAt`
    users/{uid}                  server-only facts about the account: `reauthAfter`

A session's `status` is ACTIVE until it is closed, for a `revokedReason` below (or one of
account.py's, when Firebase Auth ends it); closed sessions are kept `revoked_retention_days`
for the list of recent closures and the copied-token check, then the TTL on `expireAt` drops them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import lifetimes
from .bodies import DeviceInfo, PushTarget
from .config import settings

ACTIVE, REVOKED = "active", "revoked"

# Why a session was closed (`revokedReason`).
REPLACED = "replaced"  # its device logged in again
LOGOUT = "logout"
USER_REVOKED = "user_revoked"  # closed from another of the user's devices
REVOKE_OTHERS = "revoke_others"
REJECTED_BY_USER = "rejected_by_user"  # "No, that wasn't me"
TOKEN_REUSED = "token_reused"  # the copied-token response
CLOSED_BY_SUPPORT = lifetimes.CLOSED_BY_SUPPORT  # by the app's support: `revokedNote` says why, to the user
MAX_NOTE = 500  # `revokedNote`: plain text, never markup (bodies.SupportClosure)
# Ended by the device itself: its next login is a return, not news for the user's other devices.
SELF_ENDED = frozenset({LOGOUT, REPLACED})

IDLE_LIMIT = timedelta(days=90)  # a refresh token unused this long is gone (TTL on sessionSecrets)


def session(uid: str, did: str, device: DeviceInfo, location: str | None, now: datetime, *,
            jkt: str | None = None, alert_reason: str | None = None) -> dict[str, Any]:
    """A new session. `jkt` is the thumbprint of the device key it is bound to (dpop.py): public,
    so it may sit where the owner can read it."""
    return {
        "uid": uid,
        "deviceId": did,
        "deviceName": device.name,
        "deviceType": device.device_type,
        "model": device.model,
        "osVersion": device.os_version,
        "appVersion": device.app_version,
        "location": location,
        "status": ACTIVE,
        "createdAt": now,
        "lastActiveAt": now,
        "revokedAt": None,
        "revokedReason": None,
        "replacedBy": None,
        "confirmedAt": None,
        "alertReason": alert_reason,
        "expireAt": None,
        "deviceBound": jkt is not None,
        "dpopJkt": jkt,
        # lifetimes.py: login sets them (None: no such limit, no proof time known)
        "authTime": None,
        "autoCloseDays": None,
        "idleExpiresAt": None,
        "absoluteExpiresAt": None,
    }


def activity(session: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The one update a sign of activity makes to a session document: `lastActiveAt` and the idle
    deadline it moves (lifetimes.renewed), once the recorded activity is `last_active_interval`
    old (an hour by default) or the idle deadline is near enough to pass before then; else
    nothing ({}).

    The refresh makes it, in its rotation's transaction (flows/refresh.py): a device in use renews
    its access token every `access_ttl` anyway, so `lastActiveAt` is behind the true last activity
    by at most `last_active_interval` + `access_ttl` (70 minutes by default), and validation writes
    nothing. An idle timeout shorter than that is renewed at every refresh, so a session in use
    never meets it. Only a caller that never renews with us, a Firebase ID token (validation.py),
    has its activity recorded by validation, by the same rule. Each such write also runs the
    session trigger once (push/events.py), so the interval prices two things: a write and a run."""
    conf = settings()
    last, idle_deadline = session.get("lastActiveAt"), session.get("idleExpiresAt")
    recent = isinstance(last, datetime) and (now - last).total_seconds() < conf.last_active_interval
    near = (isinstance(idle_deadline, datetime)
            and (idle_deadline - now).total_seconds() < conf.last_active_interval + conf.access_ttl)
    if recent and not near:
        return {}
    return {"lastActiveAt": now, **lifetimes.renewed(session, now)}


def secret(uid: str, refresh_hash: str, hmac_kid: str, now: datetime, push: PushTarget | None) -> dict[str, Any]:
    """A new session's secrets: the first refresh token's hash (never the token) and the push token.
    Each refresh adds the session's refresh budget (rate_limits.refresh_budget: `refreshWindowEnd`,
    `refreshCount`)."""
    return {
        "uid": uid,
        "refreshHash": refresh_hash,
        "prevRefreshHash": None,
        "refreshKid": hmac_kid,
        "generation": 0,
        "rotatedAt": int(now.timestamp()),
        "pushToken": push.token if push else None,
        "pushProvider": push.provider if push else None,
        "expireAt": now + IDLE_LIMIT,
    }


def revocation(reason: str, now: datetime, by: str | None = None, **extra: Any) -> dict[str, Any]:
    """The fields that close a session. `revokedBy` is the session that acted, when one did (the
    user's from another device; for a copied token, the session whose old token was replayed; for a
    "No", the session the alert asked about), so
    the app's backend can be told who closed it (app_events/envelope.py)."""
    retention = timedelta(days=settings().revoked_retention_days)
    return {"status": REVOKED, "revokedAt": now, "revokedReason": reason, "revokedBy": by,
            "expireAt": now + retention, **extra}
