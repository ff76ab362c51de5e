"""What clients get back about a session: the DeviceSession, and times as the API writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


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
