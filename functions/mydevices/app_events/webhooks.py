"""Signed webhooks (Standard Webhooks, standardwebhooks.com) to the URLs in configuration.

Mechanism: one ordered Pub/Sub push subscription per endpoint on the app's topic, named
`webhook-<endpoint name>`, pushing to the `deliver_webhook` function, which signs and POSTs one
event and answers Pub/Sub by the receiver's answer. Pub/Sub then does what a webhook queue must:
retries with exponential back-off (the subscription's retry policy), at least once, and in order
per user (ordering key uid: the next event of a user is not pushed before this one is acked).
No queue of our own to poll, lease or bill for reads; each endpoint is independent, so one
receiver that is down holds up only its own deliveries.

When the receiver has failed `MYDEVICES_WEBHOOK_MAX_ATTEMPTS` times, the event is dead: kept in
`deadWebhooks` (with the receiver's last answer) and logged at ERROR, then acknowledged, so the
user's later events go on. Failures are counted in `webhookFailures/{endpoint}-{id}` (one write and
one read per failed attempt, none on success), because Pub/Sub's own `deliveryAttempt` is missing
from the emulator's pushes (and from any subscription without a dead-letter policy); the larger
of the two counts. The subscription's dead-letter topic keeps what this function itself
could not handle (say, Firestore down while recording a dead event).

Endpoints and their secrets come from `MYDEVICES_WEBHOOKS_JSON` (Secret Manager in production):
`{"<name>": {"url": "https://...", "secret": "whsec_...", "maxAttempts": 20}}` (maxAttempts optional);
nothing of it is committed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Protocol

from google.cloud import firestore
from standardwebhooks import Webhook

from .. import clock, store
from ..config import settings
from ..push import claims

log = logging.getLogger(__name__)

SUBSCRIPTION_PREFIX = "webhook-"
DEAD = "deadWebhooks"
FAILURES = "webhookFailures"
DEAD_RETENTION = timedelta(days=30)


class Destination(Protocol):
    """Where one subscription's events go: a webhook endpoint here, a CAEP receiver (caep.py)."""

    @property
    def name(self) -> str: ...  # names its failure counts and dead deliveries

    @property
    def max_attempts(self) -> int | None: ...  # its own limit (its subscription's), else the setting

    def deliver(self, event_id: str, payload: str) -> str | None:
        """Hand over one event; None when taken (or nothing to send), else what went wrong."""
        ...


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    secret: str
    max_attempts: int | None = None  # this endpoint's own limit (its subscription's), else the setting

    def deliver(self, event_id: str, payload: str) -> str | None:
        return post(self, event_id, payload)


def configured(raw: str | None, setting: str, needs: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`{"<name>": {...}}` from a setting, each with the text fields it `needs`; maxAttempts, when
    given, a whole number (else None)."""
    found = json.loads(raw) if raw else {}
    if not isinstance(found, dict):
        raise ValueError(f"{setting} must be an object of name -> {{{', '.join(needs)}}}")
    for name, spec in found.items():
        if not (isinstance(spec, dict) and all(isinstance(spec.get(field), str) for field in needs)):
            raise ValueError(f"{setting}: {name!r} needs {' and '.join(needs)}")
        if not isinstance(spec.get("maxAttempts"), int):
            spec["maxAttempts"] = None
    return found


@lru_cache(maxsize=4)
def _endpoints(raw: str | None) -> dict[str, Endpoint]:
    out = {}
    for name, spec in configured(raw, "MYDEVICES_WEBHOOKS_JSON", ("url", "secret")).items():
        Webhook(spec["secret"])  # a malformed secret stops the function here, not at the first event
        out[name] = Endpoint(name, spec["url"], spec["secret"], spec["maxAttempts"])
    return out


def endpoints() -> dict[str, Endpoint]:
    return _endpoints(settings().webhooks_json)


def configured_name(subscription: str, prefix: str) -> str:
    """`projects/P/subscriptions/<prefix><name>` -> <name>; "" for a subscription of another kind."""
    short = subscription.rsplit("/", 1)[-1]
    return short[len(prefix):] if short.startswith(prefix) else ""


def endpoint_for(subscription: str) -> Endpoint | None:
    """`projects/P/subscriptions/webhook-<name>` -> the endpoint named <name>."""
    return endpoints().get(configured_name(subscription, SUBSCRIPTION_PREFIX))


def destination_for(subscription: str) -> Destination | None:
    """A `webhook-<name>` subscription's endpoint, or a `caep-<name>` one's CAEP receiver (caep.py):
    both are served by this one function."""
    from . import caep  # it builds on this module

    return endpoint_for(subscription) or caep.receiver_for(subscription)


def headers(endpoint: Endpoint, event_id: str, payload: str) -> dict[str, str]:
    """The three Standard Webhooks headers; `webhook-timestamp` is the time of this attempt."""
    now = clock.utcnow()
    return {"webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(endpoint.secret).sign(event_id, now, payload),
            "content-type": "application/json"}


def post(endpoint: Endpoint, event_id: str, payload: str) -> str | None:
    """POST one event; None when the receiver took it (2xx), else what went wrong."""
    return send(endpoint.url, payload.encode(), headers(endpoint, event_id, payload))


def send(url: str, body: bytes, with_headers: dict[str, str]) -> str | None:
    """One POST to a configured URL; None on a 2xx answer within the timeout, else what went wrong."""
    request = urllib.request.Request(url, data=body, method="POST", headers=with_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=settings().webhook_timeout) as answer:  # noqa: S310
            return None if 200 <= answer.status < 300 else f"HTTP {answer.status}"
    except urllib.error.HTTPError as failure:
        return f"HTTP {failure.code}"
    except (OSError, ValueError) as failure:  # refused, reset, timed out, a bad URL
        return f"{type(failure).__name__}: {failure}"


def failed(endpoint: Destination, event_id: str, error: str, delivery_attempt: int) -> int:
    """Count one more failed attempt; returns how many there have been. One endpoint's deliveries
    of one user's events are sequential (ordering key), so the count is not contended."""
    now = clock.utcnow()
    ref = store.db().collection(FAILURES).document(claims.doc_id(f"{endpoint.name}-{event_id}"))
    ref.set({"failures": firestore.Increment(1), "lastError": error, "at": now, "expireAt": now + DEAD_RETENTION},
            merge=True)
    counted = (store.read(ref) or {}).get("failures")
    return max(delivery_attempt, counted if isinstance(counted, int) else 1)


def bury(endpoint: Destination, event_id: str, payload: str, attempts: int, error: str) -> None:
    """Keep a dead delivery where operators look (deadWebhooks) and say so in the log."""
    now = clock.utcnow()
    event = json.loads(payload)
    store.db().collection(DEAD).document(claims.doc_id(f"{endpoint.name}-{event_id}")).set({
        "endpoint": endpoint.name, "eventId": event_id, "type": event.get("type"),
        "uid": (event.get("data") or {}).get("uid"), "payload": payload, "attempts": attempts,
        "lastError": error, "deadAt": now, "expireAt": now + DEAD_RETENTION,
    })
    log.error("webhook %s: event %s is dead after %d attempts (%s); kept in %s", endpoint.name, event_id,
              attempts, error, DEAD)


def handle(body: Any, resolve: Callable[[str], Destination | None] = destination_for) -> bool:
    """One Pub/Sub push; True acknowledges it (delivered, dead, or malformed), False asks again."""
    try:
        message, subscription = body["message"], str(body["subscription"])
        payload = base64.b64decode(message.get("data") or "", validate=True).decode()
        event_id = (message.get("attributes") or {}).get("id") or json.loads(payload)["id"]
        attempt = int(body.get("deliveryAttempt") or 1)
    except (KeyError, TypeError, AttributeError, ValueError, binascii.Error, UnicodeDecodeError):
        log.error("webhook: dropping a malformed push: %.500r", body)
        return True
    endpoint = resolve(subscription)
    if endpoint is None:
        log.error("webhook: nothing configured for subscription %s; event %s waits", subscription, event_id)
        return False
    error = endpoint.deliver(event_id, payload)
    if error is None:
        log.info("webhook %s: delivered %s (attempt %d)", endpoint.name, event_id, attempt)
        return True
    attempt = failed(endpoint, event_id, error, attempt)
    if attempt >= (endpoint.max_attempts or settings().webhook_max_attempts):
        bury(endpoint, event_id, payload, attempt, error)
        return True
    log.warning("webhook %s: event %s attempt %d failed (%s); Pub/Sub retries it", endpoint.name, event_id,
                attempt, error)
    return False
