"""What a login or a refresh hands to the client: shown once, never stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import settings
from ..tokens import access
from ..tokens.keys import keyring


@dataclass(frozen=True)
class Issued:
    uid: str
    sid: str
    signed_device_id: str
    access_token: str
    access_expires_at: int
    refresh_token: str
    session: dict[str, Any] | None = None
    firebase_custom_token: str | None = None  # login only: see tokens/firebase.py


def access_token(uid: str, sid: str, did: str, issued_at: int, jkt: str | None = None,
                 deadline: int | None = None) -> tuple[str, int]:
    """An access token and when it expires: never after the session's `deadline` (lifetimes.py).
    `jkt` binds it to the device key (dpop.py)."""
    conf = settings()
    exp = issued_at + conf.access_ttl if deadline is None else min(issued_at + conf.access_ttl, deadline)
    claims = access.AccessClaims(uid=uid, sid=sid, did=did, iat=issued_at, exp=exp, jkt=jkt)
    return access.issue(keyring(), issuer=conf.issuer, audience=conf.audience, claims=claims), claims.exp
