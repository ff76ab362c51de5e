"""Abuse limits: fixed-window request counters kept in Firestore, so every instance shares them.

Why this shape:
- One counter document per (limit, key, window): `rateLimits/{kind}-{hash(key)}-{window}`. A
  request adds one with a field transform (`Increment`) and the commit answers with the
  counter's new value, so a counted request costs exactly one write and no read, needs no
  transaction, and concurrent requests on many instances never contend: each sees its own
  position in the window, so at most `count` of them pass.
- Windows are fixed (aligned to multiples of `seconds`): a client can get up to twice the limit
  across a window boundary, which is fine for abuse limits and keeps one document per window.
- Once an instance has seen a counter over its limit it refuses the rest of that window from
  memory, without writing: a flood costs at most about `count` + (instances) writes per window.
- Documents carry `expireAt` (the window's end plus a day) for a Firestore TTL policy, and only a
  hash of the key: no IP address or user id is stored.
- One document sustains about one write per second, so a limit's window should not be expected
  to take much more than `seconds` requests per second; the defaults are far below that.

Refreshes pay no counter write when they succeed (issue 24): the per-address limit counts only
refreshes that fail (`refresh_failures_from_address`), and the per-session budget is kept in the
session's secret document, which the rotation writes anyway (`refresh_budget`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from . import clock, store
from .config import Rate, settings
from .errors import Code, Refusal

COLLECTION = "rateLimits"
KEEP_AFTER_WINDOW = timedelta(days=1)
_MEMO_LIMIT = 10_000

_over_lock = threading.Lock()
_over: dict[str, float] = {}  # counter document id -> end of its window, for counters over the limit


def counter_id(kind: str, key: str, window: int) -> str:
    """The counter document of `key` for `kind` in `window` (the key itself only hashed)."""
    digest = hashlib.sha256(f"{kind}\0{key}".encode()).hexdigest()[:32]
    return f"{kind}-{digest}-{window}"


def _refuse(kind: str, window_end: float, now: float) -> Refusal:
    wait = max(1, math.ceil(window_end - now))
    return Refusal(Code.RATE_LIMITED, f"too many requests ({kind}); retry in {wait} s", retry_after=wait)


def _known_over(doc_id: str, now: float) -> bool:
    with _over_lock:
        end = _over.get(doc_id)
        if end is not None and end <= now:
            del _over[doc_id]
            return False
        return end is not None


def _remember_over(doc_id: str, window_end: float, now: float) -> None:
    with _over_lock:
        if len(_over) >= _MEMO_LIMIT:
            for stale in [key for key, end in _over.items() if end <= now]:
                del _over[stale]
        if len(_over) < _MEMO_LIMIT:
            _over[doc_id] = window_end


def hit(kind: str, key: str | None, rate: Rate | None) -> None:
    """Count one request of `kind` for `key`; raise RateLimited (429) past `rate`.

    No key (an unknown client address) or no rate (limit off) counts nothing.
    """
    if rate is None or not key:
        return
    now = clock.now()
    window = int(now // rate.seconds)
    window_end = float((window + 1) * rate.seconds)
    doc_id = counter_id(kind, key, window)
    if _known_over(doc_id, now):
        raise _refuse(kind, window_end, now)
    result = store.db().collection(COLLECTION).document(doc_id).set(
        {
            "count": firestore.Increment(1),
            "kind": kind,
            "expireAt": datetime.fromtimestamp(window_end, UTC) + KEEP_AFTER_WINDOW,
        },
        merge=True,
    )
    count = int(result.transform_results[0].integer_value)
    if count > rate.count:
        _remember_over(doc_id, window_end, now)
        raise _refuse(kind, window_end, now)


def address_key(ip: str | None) -> str | None:
    """The client address as it is counted: an IPv6 address by its network (a /64 by default:
    one subscriber usually holds a whole /64, and would otherwise get a bucket per address)."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        prefix = min(max(settings().ipv6_rate_prefix, 1), 128)
        return str(ipaddress.IPv6Network((address, prefix), strict=False))
    return str(address)


def login_from_address(ip: str | None) -> None:
    """Before the ID token is verified: a flood of bad tokens is cut off before any Auth lookup."""
    hit("login-ip", address_key(ip), settings().login_rate_per_ip)


def login_of_user(uid: str, signed_in_at: int, ip: str | None) -> None:
    """Every login alerts the user's other devices: this bounds that noise, whoever causes it.

    Counted per (user, address) first, so someone signing in again and again from their own
    address uses up only that address's allowance, never the owner's on another network. The
    ceiling, far higher, is per sign-in (user, auth_time): it stops a spread-out attack with one
    Firebase sign-in (a copied app's SDK, say), and the owner's own sign-in never shares it."""
    conf = settings()
    address = address_key(ip)
    if address:
        hit("login-user-ip", f"{uid}\0{address}", conf.login_rate_per_user_address)
    hit("login-sign-in", f"{uid}\0{signed_in_at}", conf.login_rate_per_user)


def reauthentication_of_session(sid: str) -> None:
    """Each re-verification asks Firebase Auth about the account, like a login: bounded per session
    by the login's per-(user, address) allowance, before the ID token is looked at."""
    hit("reauth-session", sid, settings().login_rate_per_user_address)


# Refusals that are no sign of abuse: we failed. A DPoP nonce challenge is charged: a device that
# follows the protocol meets one at most once per resume, a replayed nonce-less proof at every try.
_NOT_CHARGED = frozenset({Code.UNAVAILABLE, Code.CONTENTION, Code.INTERNAL})


@contextmanager
def refresh_failures_from_address(ip: str | None) -> Iterator[None]:
    """Around a refresh: only a refresh that fails (a made-up, malformed or stale token, a proof
    its key did not sign, a session over its budget) is counted per client address, which is what
    the limit exists to stop; a genuine refresh pays no counter write. An address this instance
    has seen over the limit is refused from memory before any work (no read, no signature check);
    the failure that takes the count over the limit is answered 429 in place of its own refusal.
    So a flood from one address gets at most `count` + (instances) refreshes worked on per window,
    each costing one counter write, as before. Our own failures (an outage) are not counted."""
    rate = settings().refresh_rate_per_ip
    key = address_key(ip)
    if rate is not None and key:
        now = clock.now()
        window = int(now // rate.seconds)
        if _known_over(counter_id("refresh-ip", key, window), now):
            raise _refuse("refresh-ip", float((window + 1) * rate.seconds), now)
    try:
        yield
    except Refusal as refusal:
        if refusal.code not in _NOT_CHARGED:
            hit("refresh-ip", key, rate)
        raise


def refresh_budget(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The session's refresh budget, kept in its secret document: raise 429 past it, else the
    fields that count this refresh, to be written with the rotation (one write, no counter
    document). Asked only once the refresh token is proven genuine (flows/refresh.py): anyone can
    present a made-up secret with a victim's session id, and must not spend the victim's budget.
    Per session, not per user: an intruder's own genuine session spends only its own. Read and
    written in the rotation's transaction, so it holds exactly across instances."""
    rate = settings().refresh_rate_per_session
    if rate is None:
        return {}
    now = clock.now()
    window_end = (int(now // rate.seconds) + 1) * rate.seconds
    used = secret.get("refreshCount") if secret.get("refreshWindowEnd") == window_end else 0
    used = used if isinstance(used, int) else 0
    if used >= rate.count:
        raise _refuse("refresh-session", float(window_end), now)
    return {"refreshWindowEnd": window_end, "refreshCount": used + 1}
