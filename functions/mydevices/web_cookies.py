"""Where a web client keeps its device id and tokens: cookies that script cannot read.

One contract, two layouts, both HttpOnly, Secure, SameSite=Strict, Path=/, no Domain:
- `host` (default): three `__Host-` cookies, the strictest a browser offers (it refuses them
  unless they are Secure, host-only and Path=/, so no sibling subdomain can plant one);
- `session`: the same three values in one `__session` cookie, for an API served through
  Firebase Hosting rewrites, which strip every cookie but `__session` before the function runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import settings

DEVICE, ACCESS, REFRESH = "did", "at", "rt"
HOST_NAMES = {DEVICE: "__Host-mydevices-did", ACCESS: "__Host-mydevices-at", REFRESH: "__Host-mydevices-rt"}
SESSION_NAME = "__session"
DEVICE_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie
REFRESH_AGE = 90 * 24 * 3600

Cookie = tuple[str, str, int]  # name, value, max-age (0 deletes)


def _unpack(value: str | None) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in (value or "").split("&"):
        name, _, part = item.partition("=")
        if name in HOST_NAMES and part:
            parts[name] = part
    return parts


def read(cookies: Mapping[str, str], part: str) -> str | None:
    if settings().web_cookie == "session":
        return _unpack(cookies.get(SESSION_NAME)).get(part)
    return cookies.get(HOST_NAMES[part])


def present(cookies: Mapping[str, str]) -> bool:
    """Whether the request carries any of our cookies: the browser attached them, so it may be
    acting on a page's behalf without the user's intent (the same-origin check, http/cors.py)."""
    if settings().web_cookie == "session":
        return SESSION_NAME in cookies
    return any(name in cookies for name in HOST_NAMES.values())


def write(cookies: Mapping[str, str], changes: Mapping[str, str | None]) -> list[Cookie]:
    """The cookies to set so the client holds `changes` (a None part is removed)."""
    if settings().web_cookie == "session":
        parts = _unpack(cookies.get(SESSION_NAME))
        parts.update({name: value for name, value in changes.items() if value})
        for name in [name for name, value in changes.items() if not value]:
            parts.pop(name, None)
        if not parts:
            return [(SESSION_NAME, "", 0)]
        return [(SESSION_NAME, "&".join(f"{name}={value}" for name, value in parts.items()), DEVICE_AGE)]
    ages = {DEVICE: DEVICE_AGE, ACCESS: settings().access_ttl, REFRESH: REFRESH_AGE}
    return [(HOST_NAMES[name], value or "", ages[name] if value else 0) for name, value in changes.items()]
