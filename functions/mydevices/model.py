"""What a client sends about its device, and the DeviceSession it gets back.

Input is checked strictly (known fields, known platforms, bounded lengths, no control
characters) because device names end up on other devices' screens and in push notifications.
Text is kept exactly as sent — emoji and right-to-left names included — and never interpreted.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidRequest

PLATFORMS = {"ios": "IOS", "android": "ANDROID", "web": "WEB"}
PUSH_PROVIDERS = ("fcm",)
MAX_NAME = 100
MAX_FIELD = 64
MAX_PUSH_TOKEN = 4096


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    platform: str  # "ios" | "android" | "web"
    model: str | None = None
    os_version: str | None = None
    app_version: str | None = None

    @property
    def device_type(self) -> str:
        return PLATFORMS[self.platform]


@dataclass(frozen=True)
class PushTarget:
    token: str
    provider: str = "fcm"


def _object(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidRequest(f"unknown field {where}.{unknown[0]}")
    return value


def _text(value: Any, where: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidRequest(f"{where} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string")
    # Length and control characters first: a blank value is not exempt from them.
    if len(value) > limit:
        raise InvalidRequest(f"{where} must be at most {limit} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise InvalidRequest(f"{where} must not contain control characters")
    if not value.strip():
        if required:
            raise InvalidRequest(f"{where} must not be empty")
        return None
    return value


def parse_device(value: Any) -> DeviceInfo:
    raw = _object(value, "device", {"name", "model", "platform", "osVersion", "appVersion"})
    platform = raw.get("platform")
    if not isinstance(platform, str) or platform not in PLATFORMS:  # a dict key: [] or {} would raise
        raise InvalidRequest("device.platform must be one of ios, android, web")
    name = _text(raw.get("name"), "device.name", MAX_NAME, required=True)
    assert name is not None
    return DeviceInfo(
        name=name,
        platform=platform,
        model=_text(raw.get("model"), "device.model", MAX_FIELD, required=False),
        os_version=_text(raw.get("osVersion"), "device.osVersion", MAX_FIELD, required=False),
        app_version=_text(raw.get("appVersion"), "device.appVersion", MAX_FIELD, required=False),
    )


def parse_push(value: Any) -> PushTarget | None:
    if value is None:
        return None
    raw = _object(value, "push", {"token", "provider"})
    token = _text(raw.get("token"), "push.token", MAX_PUSH_TOKEN, required=True)
    assert token is not None
    provider = raw.get("provider", "fcm")
    if provider not in PUSH_PROVIDERS:
        raise InvalidRequest("push.provider must be fcm")
    return PushTarget(token, provider)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def device_session(sid: str, doc: dict[str, Any], current_sid: str | None) -> dict[str, Any]:
    """The DeviceSession a client sees. Built field by field so nothing secret can leak into it."""
    return {
        "sessionId": sid,
        "deviceName": doc.get("deviceName"),
        "deviceType": doc.get("deviceType"),
        "model": doc.get("model"),
        "osVersion": doc.get("osVersion"),
        "appVersion": doc.get("appVersion"),
        "location": doc.get("location"),
        "lastActiveAt": iso(doc.get("lastActiveAt")),
        "createdAt": iso(doc.get("createdAt")),
        "isCurrentDevice": sid == current_sid,
        "deviceBound": bool(doc.get("deviceBound")),
    }
