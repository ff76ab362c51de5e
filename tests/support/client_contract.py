"""The client contract's vectors (clients/contract/*.json) and the reference rules they encode.

Shared by tests/clients/test_contract.py (which holds the vectors to the real stack and runs the JS
client over them) and tests/clients/test_kotlin.py (which runs the Kotlin core over them)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from infra.local.stack import REPO_ROOT

CONTRACT = REPO_ROOT / "clients" / "contract"
CHANNEL = "mydevices_security"


def load(name: str) -> Any:
    return json.loads((CONTRACT / name).read_text(encoding="utf-8"))


def write(name: str, value: Any) -> None:
    (CONTRACT / name).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def notification_id(new_session_id: str) -> int:
    """The Android notification id of an alert: the first four bytes of SHA-256(newSessionId),
    big-endian, as a non-negative 31-bit int (unique per alert; the same on every platform)."""
    return int.from_bytes(hashlib.sha256(new_session_id.encode()).digest()[:4], "big") & 0x7FFFFFFF


def parsed_event(data: dict[str, str]) -> dict[str, Any] | None:
    """The typed event a push's data map turns into (the reference for the vectors' `parsed`)."""
    action = data.get("action")
    if action == "force_logout" and data.get("sessionId"):
        return {"type": "forceLogout", "sessionId": data["sessionId"], "reason": _or(data.get("reason"), "unknown")}
    if action != "new_login_alert" or not data.get("actionToken") or not data.get("newSessionId"):
        return None
    try:
        args = json.loads(data.get("body_loc_args") or "[]")
    except ValueError:
        args = []
    if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        args = []
    expires = data.get("expiresAt", "")
    return {"type": "newLoginAlert", "sessionId": data.get("sessionId") or None,
            "newSessionId": data["newSessionId"], "actionToken": data["actionToken"],
            "title": _or(data.get("title"), "New sign-in"), "text": _or(data.get("body"), ""),
            "locKey": data.get("body_loc_key"), "locArgs": args,
            "deviceName": data.get("deviceName") or None, "location": data.get("location") or None,
            "expiresAt": int(expires) if expires.isdigit() and int(expires) > 0 else None}


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


def notification(event: dict[str, Any]) -> dict[str, Any]:
    """What the app shows for a newLoginAlert (Android builds it; iOS shows the APNs alert with the
    same category): both answers, each with its own URI so that two alerts never share an intent."""
    sid = event["newSessionId"]
    return {
        "tag": f"new-login-{sid}", "id": notification_id(sid), "channelId": CHANNEL, "category": "MYDEVICES_NEW_LOGIN",
        "title": event["title"], "titleLocKey": "mydevices_new_login_title",
        "body": event["text"], "bodyLocKey": event["locKey"], "bodyLocArgs": event["locArgs"],
        "expiresAt": event["expiresAt"],
        "actions": [
            {"answer": "no", "identifier": "MYDEVICES_NO", "titleKey": "mydevices_no",
             "title": "No, close this session",
             "destructive": True, "authenticationRequired": False, "uri": f"mydevices://alert/{sid}/no"},
            {"answer": "yes", "identifier": "MYDEVICES_YES", "titleKey": "mydevices_yes", "title": "Yes, it was me",
             "destructive": False, "authenticationRequired": True, "uri": f"mydevices://alert/{sid}/yes"},
        ],
    }


def expectation(data: dict[str, str], current_session_id: str | None) -> dict[str, Any]:
    parsed = parsed_event(data)
    # An alert names the recipient's session (sessionId); one without it is taken as this session's.
    mine = (parsed is not None and current_session_id is not None
            and parsed.get("sessionId") in (current_session_id, None))
    handled = {"event": parsed["type"] if parsed and mine else None,
               "signedOut": "force_logout" if parsed and mine and parsed["type"] == "forceLogout" else None}
    out: dict[str, Any] = {"parsed": parsed, "handled": handled}
    if parsed and parsed["type"] == "newLoginAlert":
        out["notification"] = notification(parsed)
    return out

