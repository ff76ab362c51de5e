"""Settings, read once from the environment so every module sees the same values."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _duration(name: str, default: int | None) -> int | None:
    """Whole seconds, or `off` (None): a lifetime that is explicitly not limited."""
    given = (os.environ.get(name) or "").strip().lower()
    if not given:
        return default
    if given == "off":
        return None
    if not given.isdigit() or int(given) <= 0:
        raise ValueError(f"{name} must be a number of seconds or off, not {given!r}")
    return int(given)


@dataclass(frozen=True)
class Rate:
    """At most `count` requests per fixed window of `seconds`."""

    count: int
    seconds: int


def _rate(name: str, default: Rate | None) -> Rate | None:
    """`COUNT/SECONDS` (e.g. `20/60`), or `off` for no limit."""
    given = os.environ.get(name)
    if not given:
        return default
    raw = given.strip().lower()
    if raw == "off":
        return None
    count, _, seconds = raw.partition("/")
    if not (count.isdigit() and seconds.isdigit() and int(count) > 0 and int(seconds) > 0):
        raise ValueError(f"{name} must be COUNT/SECONDS (e.g. 20/60) or off, not {raw!r}")
    return Rate(int(count), int(seconds))


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
    # session events for the app's backend (app_events/): its topic, and the webhooks' delivery
    events_topic: str = "mydevices-events"
    webhooks_json: str | None = None  # {"name": {"url": ..., "secret": "whsec_..."}}, from a secret
    webhook_timeout: float = 10.0
    webhook_max_attempts: int = 20  # as the subscription's dead-letter policy says (infra/terraform)
    caep_receivers_json: str | None = None  # {"name": {"url", "audience"}}: CAEP SETs (app_events/caep.py)
    action_token_ttl: int = 24 * 3600
    # abuse limits (rate_limits.py): None is no limit
    login_rate_per_ip: Rate | None = Rate(20, 60)
    login_rate_per_user_address: Rate | None = Rate(20, 3600)  # per (user, client address)
    login_rate_per_user: Rate | None = Rate(200, 3600)  # the ceiling per sign-in, whatever the address
    refresh_rate_per_ip: Rate | None = Rate(120, 60)
    refresh_rate_per_session: Rate | None = Rate(30, 60)
    export_rate_per_user: Rate | None = Rate(10, 3600)  # each export reads every document of the user
    max_active_sessions: int = 50
    publish_timeout: float = 30.0
    outbox_sweep_interval: int = 60
    web_cookie: str = "host"  # "host" (__Host- cookies) or "session" (one __session cookie)
    allowed_origins: frozenset[str] = frozenset()  # besides same-origin, who may send cookie requests (http/cors.py)
    ipv6_rate_prefix: int = 64  # IPv6 client addresses are counted per network of this prefix
    fresh_session_hours: int = 24  # a younger session cannot close others (0: off)
    app_check: str = "off"  # App Check on the API and callables (app_check.py): off, report or enforce
    app_check_jwks_url: str | None = None  # dev and tests: the stand-in's JWKS instead of Google's
    cors_origins: frozenset[str] = frozenset()  # other origins whose pages may call the API with bearer tokens
    dbsc_cookie_seconds: int = 300  # the DBSC-bound cookie's life: how long a copied cookie jar works
    public_api_url: str | None = None  # the API's origin as clients call it: DPoP proofs name it (htu)
    clock_file: str | None = None  # a local stack's moved clock (clock.py); demo- projects only
    # session lifetimes (lifetimes.py), seconds; None is off. "app" is iOS and Android.
    idle_timeout_web: int | None = 90 * 86400  # as long as an unused refresh token is kept (IDLE_LIMIT)
    idle_timeout_app: int | None = 90 * 86400
    max_session_age_web: int | None = None
    max_session_age_app: int | None = None
    # how recent a sign-in closing other sessions and widening auto-close need (None: off)
    recent_sign_in_seconds: int | None = None
    # the "Was that you?" email (push/alert_email.py): off, fallback (when no push reached) or always
    alert_email: str = "off"
    smtp_url: str | None = None  # smtp://, smtp+starttls:// or smtps://[user:password@]host[:port] (a secret)
    email_from: str | None = None  # the From header, e.g. `My Devices <no-reply@example.com>`
    email_page_url: str | None = None  # the page the email links to (else public_api_url + /v1/alerts/email)
    # the support API (flows/support.py): how recent an agent's sign-in must be, and how long its audit is kept
    support_max_auth_age: int = 3600
    support_audit_days: int = 400

    @classmethod
    def from_env(cls) -> Settings:
        policy = os.environ.get("MYDEVICES_REUSE_POLICY", "revoke_all")
        if policy not in ("revoke_all", "revoke_session"):
            raise ValueError(f"MYDEVICES_REUSE_POLICY must be revoke_all or revoke_session, not {policy!r}")
        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT") or "demo-mydevices"
        clock_file = os.environ.get("MYDEVICES_CLOCK_FILE") or None
        if clock_file and not project.startswith("demo-"):
            raise ValueError("MYDEVICES_CLOCK_FILE moves the clock of a local stack; a demo- project only")
        return cls(
            project=project,
            keys_file=os.environ.get("MYDEVICES_KEYS_FILE") or None,
            keys_json=os.environ.get("MYDEVICES_KEYS_JSON") or None,
            issuer=os.environ.get("MYDEVICES_ISSUER", "mydevices"),
            audience=os.environ.get("MYDEVICES_AUDIENCE", "mydevices-api"),
            access_ttl=_int("MYDEVICES_ACCESS_TTL_SECONDS", 600),
            refresh_grace=_int("MYDEVICES_REFRESH_GRACE_SECONDS", 30),
            reuse_policy=policy,
            trusted_proxies=_int("MYDEVICES_TRUSTED_PROXIES", 0),
            geoip_db=os.environ.get("MYDEVICES_GEOIP_DB") or None,
            last_active_interval=_int("MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS", 3600),
            revoked_retention_days=_int("MYDEVICES_REVOKED_RETENTION_DAYS", 30),
            firestore_timeout=float(os.environ.get("MYDEVICES_FIRESTORE_TIMEOUT_SECONDS", "5")),
            max_body_bytes=_int("MYDEVICES_MAX_BODY_BYTES", 16 * 1024),
            session_events_topic=os.environ.get("MYDEVICES_SESSION_EVENTS_TOPIC") or cls.session_events_topic,
            events_topic=os.environ.get("MYDEVICES_EVENTS_TOPIC") or cls.events_topic,
            webhooks_json=os.environ.get("MYDEVICES_WEBHOOKS_JSON") or None,
            webhook_timeout=float(os.environ.get("MYDEVICES_WEBHOOK_TIMEOUT_SECONDS") or cls.webhook_timeout),
            webhook_max_attempts=_int("MYDEVICES_WEBHOOK_MAX_ATTEMPTS", cls.webhook_max_attempts),
            caep_receivers_json=os.environ.get("MYDEVICES_CAEP_RECEIVERS_JSON") or None,
            action_token_ttl=_int("MYDEVICES_ACTION_TOKEN_TTL_SECONDS", cls.action_token_ttl),
            login_rate_per_ip=_rate("MYDEVICES_LOGIN_RATE_PER_IP", cls.login_rate_per_ip),
            login_rate_per_user_address=_rate("MYDEVICES_LOGIN_RATE_PER_USER_ADDRESS",
                                              cls.login_rate_per_user_address),
            login_rate_per_user=_rate("MYDEVICES_LOGIN_RATE_PER_USER", cls.login_rate_per_user),
            refresh_rate_per_ip=_rate("MYDEVICES_REFRESH_RATE_PER_IP", cls.refresh_rate_per_ip),
            refresh_rate_per_session=_rate("MYDEVICES_REFRESH_RATE_PER_SESSION", cls.refresh_rate_per_session),
            export_rate_per_user=_rate("MYDEVICES_EXPORT_RATE_PER_USER", cls.export_rate_per_user),
            max_active_sessions=_int("MYDEVICES_MAX_ACTIVE_SESSIONS", cls.max_active_sessions),
            publish_timeout=float(os.environ.get("MYDEVICES_PUBLISH_TIMEOUT_SECONDS") or cls.publish_timeout),
            outbox_sweep_interval=_int("MYDEVICES_OUTBOX_SWEEP_SECONDS", cls.outbox_sweep_interval),
            web_cookie=_choice("MYDEVICES_WEB_COOKIE", ("host", "session")),
            allowed_origins=_origins("MYDEVICES_ALLOWED_ORIGINS"),
            ipv6_rate_prefix=_int("MYDEVICES_IPV6_RATE_PREFIX", cls.ipv6_rate_prefix),
            fresh_session_hours=_int("MYDEVICES_FRESH_SESSION_HOURS", cls.fresh_session_hours),
            app_check=_choice("MYDEVICES_APP_CHECK", ("off", "report", "enforce")),
            app_check_jwks_url=os.environ.get("MYDEVICES_APP_CHECK_JWKS_URL") or None,
            cors_origins=_origins("MYDEVICES_CORS_ORIGINS"),
            dbsc_cookie_seconds=_int("MYDEVICES_DBSC_COOKIE_SECONDS", cls.dbsc_cookie_seconds),
            public_api_url=(os.environ.get("MYDEVICES_PUBLIC_API_URL") or "").rstrip("/") or None,
            clock_file=clock_file,
            idle_timeout_web=_duration("MYDEVICES_IDLE_TIMEOUT_WEB", cls.idle_timeout_web),
            idle_timeout_app=_duration("MYDEVICES_IDLE_TIMEOUT_APP", cls.idle_timeout_app),
            max_session_age_web=_duration("MYDEVICES_MAX_SESSION_AGE_WEB", cls.max_session_age_web),
            max_session_age_app=_duration("MYDEVICES_MAX_SESSION_AGE_APP", cls.max_session_age_app),
            recent_sign_in_seconds=_duration("MYDEVICES_RECENT_SIGN_IN_SECONDS", cls.recent_sign_in_seconds),
            alert_email=_alert_email_mode("MYDEVICES_ALERT_EMAIL", bool(os.environ.get("MYDEVICES_SMTP_URL"))),
            smtp_url=os.environ.get("MYDEVICES_SMTP_URL") or None,
            email_from=os.environ.get("MYDEVICES_EMAIL_FROM") or None,
            email_page_url=os.environ.get("MYDEVICES_EMAIL_PAGE_URL") or None,
            support_max_auth_age=_int("MYDEVICES_SUPPORT_MAX_AUTH_AGE_SECONDS", cls.support_max_auth_age),
            support_audit_days=_int("MYDEVICES_SUPPORT_AUDIT_DAYS", cls.support_audit_days),
        )

    def __post_init__(self) -> None:
        """Asking for the alert email without a relay, a sender or the page's URL stops the
        function from starting, instead of every alert failing later."""
        if self.alert_email == "off":
            return
        missing = [name for name, value in (("MYDEVICES_SMTP_URL", self.smtp_url),
                                            ("MYDEVICES_EMAIL_FROM", self.email_from),
                                            ("MYDEVICES_EMAIL_PAGE_URL", self.email_page or None)) if value is None]
        if missing:
            raise ValueError(f"MYDEVICES_ALERT_EMAIL={self.alert_email} needs {', '.join(missing)}")
        if not re.fullmatch(r"https?://[^\s?#]+", self.email_page):
            raise ValueError(f"MYDEVICES_EMAIL_PAGE_URL must be an http(s) URL without a query: {self.email_page!r}")

    @property
    def email_page(self) -> str:
        """Where the alert email links: MYDEVICES_EMAIL_PAGE_URL, else the public API URL's page."""
        if self.email_page_url is not None:
            return self.email_page_url
        return f"{self.public_api_url}/v1/alerts/email" if self.public_api_url else ""


def _origins(name: str) -> frozenset[str]:
    """Comma-separated exact origins (`https://app.example.com`). A typo would silently match
    nothing, so anything that is not scheme://host[:port] stops the function from starting."""
    origins = frozenset(item.strip() for item in (os.environ.get(name) or "").split(",") if item.strip())
    for origin in origins:
        if not re.fullmatch(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?", origin):
            raise ValueError(f"{name} must list origins like https://app.example.com (lowercase, no path), "
                             f"not {origin!r}")
    return origins


def _alert_email_mode(name: str, relay: bool) -> str:
    """MYDEVICES_ALERT_EMAIL: without a setting, `fallback` when an SMTP relay is configured and
    `off` otherwise (Settings.__post_init__ then checks that the rest it needs is there)."""
    return _choice(name, ("fallback", "off", "always") if relay else ("off", "fallback", "always"))


def _choice(name: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name) or allowed[0]
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
