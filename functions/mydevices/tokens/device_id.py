"""Signed device ids.

The id itself is random and says nothing; the MAC is what lets the server tell its own ids from
forged or tampered ones without storing them. A key that has been dropped from the keyring no
longer verifies, so retiring a key re-identifies every device that still carries it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from .keys import Keyring, b64url, same

_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


def new_device_id() -> str:
    """128 random bits, never in the `__x__` shape Firestore reserves (these ids name documents;
    about one draw in 17 million would otherwise make a login fail)."""
    while True:
        candidate = secrets.token_urlsafe(16)
        if not (candidate.startswith("__") and candidate.endswith("__")):
            return candidate


def _mac(key: bytes, device_id: str) -> str:
    return b64url(hmac.new(key, b"device-id:" + device_id.encode(), hashlib.sha256).digest())


def sign(ring: Keyring, device_id: str) -> str:
    return f"{device_id}.{ring.current_hmac_kid}.{_mac(ring.current_hmac, device_id)}"


def verify(ring: Keyring, signed: str | None) -> str | None:
    """The device id inside `signed`, or None when it is missing, malformed or not ours."""
    if not signed or len(signed) > 200:
        return None
    parts = signed.split(".")
    if len(parts) != 3 or not _ID.match(parts[0]):
        return None
    device_id, kid, mac = parts
    key = ring.hmac.get(kid)
    if key is None or not same(mac, _mac(key, device_id)):
        return None
    return device_id


def resolve(ring: Keyring, signed: str | None) -> tuple[str, str, bool]:
    """Step 1 of validation, once per request at the edge: (device id, its signed form, whether
    it is new). A missing or forged id is replaced, not refused: the device gets a fresh one."""
    device_id = verify(ring, signed)
    if device_id is not None:
        assert signed is not None
        return device_id, signed, False
    device_id = new_device_id()
    return device_id, sign(ring, device_id), True
