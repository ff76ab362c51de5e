"""CAEP `session-revoked` Security Event Tokens for receivers that speak the Shared Signals Framework.

Some backends (identity providers, zero-trust proxies, SaaS tenants) do not read our webhooks but
accept Security Event Tokens: a JWT (RFC 8417) signed by the transmitter, pushed as
`application/secevent+jwt` (RFC 8935), answered 202. For each `session.closed` app event, every
configured receiver gets one SET of the OpenID CAEP 1.0 type `session-revoked`, signed with the
product's own signing key (the access tokens' keyring), so a receiver verifies it against the JWKS
the api already publishes (`/.well-known/jwks.json`), with `iss` our issuer.

Delivery is the webhooks' (webhooks.py), not a copy of it: one ordered Pub/Sub push subscription
per receiver on the app's topic, named `caep-<receiver>`, pushing to the same `deliver_webhook`
function, which tells the two kinds apart by the subscription's name; retries with back-off, in
order per user, and dead deliveries kept in `deadWebhooks` under the destination `caep-<receiver>`.
Other app event types are acknowledged without a request.

`jti` is derived from the app event id and the receiver, so a redelivery carries the same `jti`
(a receiver drops one it has seen) while two receivers never share one. The subject is a complex
subject of opaque ids (the Firebase uid, our session id); the user's email goes in only for a
receiver configured with `"subjectEmail": true` (then one Firebase Auth lookup per SET).

Receivers come from `MYDEVICES_CAEP_RECEIVERS_JSON`:
`{"<name>": {"url": "https://...", "audience": "https://receiver.example", "subjectEmail": false,
"maxAttempts": 20}}` (the last two optional).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt

from .. import clock
from ..config import settings
from ..tokens.keys import keyring
from . import envelope, webhooks

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CONTENT_TYPE = "application/secevent+jwt"
TYP = "secevent+jwt"
SUBSCRIPTION_PREFIX = "caep-"

# closedBy.kind -> CAEP initiating_entity: the person, a rule of ours (expiry, a copied token), or
# Firebase Auth's word on the account (a password reset, disabled or deleted: system).
INITIATED_BY = {"user": "user", "alert_answer": "user", "logout": "user", "same_device": "user",
                "copied_token": "policy", "expiry": "policy", "account": "system"}


@dataclass(frozen=True)
class Receiver:
    name: str  # `caep-<configured name>`: its subscription's name, and its dead deliveries'
    url: str
    audience: str
    subject_email: bool = False
    max_attempts: int | None = None

    def deliver(self, event_id: str, payload: str) -> str | None:
        event = json.loads(payload)
        if event.get("type") != envelope.SESSION_CLOSED_TYPE:
            return None  # nothing for a CAEP receiver
        try:
            token = security_event_token(event, self)
        except LookupError as failure:  # the email subject could not be looked up yet
            return str(failure)
        return webhooks.send(self.url, token.encode(), {"content-type": CONTENT_TYPE, "accept": "application/json"})


@lru_cache(maxsize=4)
def _receivers(raw: str | None) -> dict[str, Receiver]:
    return {name: Receiver(f"{SUBSCRIPTION_PREFIX}{name}", spec["url"], spec["audience"],
                           spec.get("subjectEmail") is True, spec["maxAttempts"])
            for name, spec in webhooks.configured(raw, "MYDEVICES_CAEP_RECEIVERS_JSON", ("url", "audience")).items()}


def receiver_for(subscription: str) -> Receiver | None:
    """`projects/P/subscriptions/caep-<name>` -> the receiver named <name>."""
    return _receivers(settings().caep_receivers_json).get(webhooks.configured_name(subscription, SUBSCRIPTION_PREFIX))


def jti(event_id: str, receiver: Receiver) -> str:
    return hashlib.sha256(f"{receiver.name}\n{event_id}".encode()).hexdigest()[:32]


def _subject(data: dict[str, Any], receiver: Receiver) -> dict[str, Any]:
    user: dict[str, Any] = {"format": "opaque", "id": data["uid"]}
    if receiver.subject_email:
        from ..push import alert_email

        try:
            address = alert_email.verified_address(data["uid"])
        except alert_email.NotYet as failure:
            raise LookupError(str(failure)) from None
        if address is not None:
            user = {"format": "email", "email": address}
    return {"format": "complex", "user": user, "session": {"format": "opaque", "id": data["sessionId"]}}


def _seconds(timestamp: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return clock.seconds()


def security_event_token(event: dict[str, Any], receiver: Receiver) -> str:
    """The signed SET for one session.closed app event, for this receiver."""
    data = event["data"]
    closed_by = data.get("closedBy") or {}
    claims = {
        "iss": settings().issuer, "aud": receiver.audience, "iat": clock.seconds(),
        "jti": jti(event["id"], receiver), "sub_id": _subject(data, receiver),
        "events": {SESSION_REVOKED: {
            "event_timestamp": _seconds(event.get("timestamp")),
            "initiating_entity": INITIATED_BY.get(str(closed_by.get("kind")), "system"),
            "reason_admin": {"en": str(data.get("reason"))},
        }},
    }
    key = keyring().current_signing
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": TYP})
