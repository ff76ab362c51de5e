"""Settings, read once from the environment so every module sees the same values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    project: str
    keys_file: str | None
    keys_json: str | None
    issuer: str
    audience: str
    access_ttl: int
    refresh_grace: int
    reuse_policy: str  # "revoke_all" or "revoke_session"
    trusted_proxies: int
    geoip_db: str | None
    last_active_interval: int
    revoked_retention_days: int
    firestore_timeout: float
    max_body_bytes: int
    session_events_topic: str = "session-events"
    action_token_ttl: int = 24 * 3600

    @classmethod
    def from_env(cls) -> Settings:
        policy = os.environ.get("MYDEVICES_REUSE_POLICY", "revoke_all")
        if policy not in ("revoke_all", "revoke_session"):
            raise ValueError(f"MYDEVICES_REUSE_POLICY must be revoke_all or revoke_session, not {policy!r}")
        return cls(
            project=os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT") or "demo-mydevices",
            keys_file=os.environ.get("MYDEVICES_KEYS_FILE") or None,
            keys_json=os.environ.get("MYDEVICES_KEYS_JSON") or None,
            issuer=os.environ.get("MYDEVICES_ISSUER", "mydevices"),
            audience=os.environ.get("MYDEVICES_AUDIENCE", "mydevices-api"),
            access_ttl=_int("MYDEVICES_ACCESS_TTL_SECONDS", 600),
            refresh_grace=_int("MYDEVICES_REFRESH_GRACE_SECONDS", 30),
            reuse_policy=policy,
            trusted_proxies=_int("MYDEVICES_TRUSTED_PROXIES", 0),
            geoip_db=os.environ.get("MYDEVICES_GEOIP_DB") or None,
            last_active_interval=_int("MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS", 300),
            revoked_retention_days=_int("MYDEVICES_REVOKED_RETENTION_DAYS", 30),
            firestore_timeout=float(os.environ.get("MYDEVICES_FIRESTORE_TIMEOUT_SECONDS", "5")),
            max_body_bytes=_int("MYDEVICES_MAX_BODY_BYTES", 16 * 1024),
            session_events_topic=os.environ.get("MYDEVICES_SESSION_EVENTS_TOPIC") or "session-events",
            action_token_ttl=_int("MYDEVICES_ACTION_TOKEN_TTL_SECONDS", 24 * 3600),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
