"""The push contract as code: what a message sent to FCM must satisfy (docs/push-messages.md).

Three authorities, checked independently, so a mistake in one cannot hide behind another:
- our own schemas (docs/push/<type>.{fcm,android,ios}.json): the FCM message as sent, and what
  the Android and iOS apps receive from it (FCM's documented delivery: an Android data message
  hands `data` to onMessageReceived; on iOS the data keys sit beside `aps` in the APNs payload);
- FCM's own HTTP v1 `Message` schema, from the discovery document google-api-python-client ships
  (`fcm.v1.json`, which nobody here wrote), turned into a JSON Schema that refuses unknown fields;
- Apple's rules for APNs requests (`check_apple`), from Apple's "Generating a remote notification"
  and "Sending notification requests to APNs" pages.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs

from mydevices.push import alert_copy

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "push"
SCHEMA_BASE = "https://github.com/mydevices/mydevices/docs/push/"
TYPES = ("force_logout", "new_login_alert")
PLATFORMS = ("fcm", "android", "ios")
_CLIENT = importlib.util.find_spec("googleapiclient")  # google-api-python-client, requirements-dev.txt
assert _CLIENT is not None and _CLIENT.origin is not None, "google-api-python-client is not installed"
FCM_DISCOVERY = Path(_CLIENT.origin).parent / "discovery_cache" / "documents" / "fcm.v1.json"

# Apple's payload key reference: the keys of `aps` and of `aps.alert` a notification may carry.
APS_KEYS = frozenset({"alert", "badge", "sound", "thread-id", "category", "content-available", "mutable-content",
                      "target-content-id", "interruption-level", "relevance-score", "filter-criteria",
                      "stale-date", "content-state", "timestamp", "event", "dismissal-date"})
ALERT_KEYS = frozenset({"title", "subtitle", "body", "launch-image", "title-loc-key", "title-loc-args",
                        "subtitle-loc-key", "subtitle-loc-args", "loc-key", "loc-args"})
PUSH_TYPES = frozenset({"alert", "background", "location", "voip", "complication", "fileprovider", "mdm",
                        "liveactivity", "pushtotalk"})
APNS_PAYLOAD_LIMIT = 4096  # bytes, for every push type but VoIP
FCM_DATA_LIMIT = 4096  # bytes of data keys and values (FCM's limit for a data message)
FCM_RESERVED_DATA = frozenset({"from", "notification", "message_type"})
FCM_RESERVED_PREFIXES = ("google", "gcm")


def _retrieve(uri: str) -> Any:
    if not uri.startswith(SCHEMA_BASE):
        raise ValueError(f"no schema at {uri}")
    return json.loads((SCHEMAS / uri.removeprefix(SCHEMA_BASE)).read_text())


def schema(kind: str, platform: str) -> Any:
    return json.loads((SCHEMAS / f"{kind}.{platform}.json").read_text())


def ours(kind: str, platform: str) -> Any:
    """A validator for docs/push/<kind>.<platform>.json, its cross-file $refs resolved locally."""
    return jsonschema_rs.validator_for(schema(kind, platform), retriever=_retrieve)


# --- FCM's discovery document as a JSON Schema ------------------------------------------------

_DURATION = r"^-?[0-9]+(\.[0-9]{1,9})?s$"


def _convert(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    kind = node.get("type")
    if kind == "object":
        if "properties" in node:  # a message type: its fields, and nothing else
            return {"type": "object", "additionalProperties": False,
                    "properties": {name: _convert(sub) for name, sub in node["properties"].items()}}
        extra = node.get("additionalProperties", {})
        return {"type": "object", "additionalProperties": {} if extra.get("type") == "any" else _convert(extra)}
    if kind == "array":
        return {"type": "array", "items": _convert(node.get("items", {}))}
    if kind == "string":
        out: dict[str, Any] = {"type": "string"}
        if "enum" in node:
            out["enum"] = node["enum"]
        if node.get("format") == "google-duration":
            out["pattern"] = _DURATION
        if node.get("format") in ("int64", "uint64"):
            out["pattern"] = r"^-?[0-9]+$"
        return out
    if kind in ("integer", "number", "boolean"):
        return {"type": kind}
    return {}


def fcm_discovery() -> dict[str, Any]:
    return dict(json.loads(FCM_DISCOVERY.read_text()))


def fcm_message_schema() -> dict[str, Any]:
    schemas = fcm_discovery()["schemas"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/$defs/Message",
            "$defs": {name: _convert(node) for name, node in schemas.items()}}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def as_proto_json(value: Any, node: dict[str, Any], schemas: dict[str, Any]) -> Any:
    """The message as FCM's JSON parser reads it: proto3 JSON accepts a field's proto name
    (snake_case, what firebase-admin sends) as well as its lowerCamelCase JSON name, and FCM
    takes enum values in lower case (firebase-admin sends `"priority": "high"`). Free-form maps
    (data, headers, the APNs payload) are left alone."""
    node = schemas[node["$ref"]] if "$ref" in node else node
    if isinstance(value, dict) and "properties" in node:
        out = {}
        for key, sub in value.items():
            name = key if key in node["properties"] else _camel(key)
            field = node["properties"].get(name)
            out[name] = sub if field is None else as_proto_json(sub, field, schemas)
        return out
    if isinstance(value, list) and node.get("type") == "array":
        return [as_proto_json(item, node.get("items", {}), schemas) for item in value]
    if isinstance(value, str) and "enum" in node and value.upper() in node["enum"]:
        return value.upper()
    return value


def fcm_errors(message: dict[str, Any]) -> list[str]:
    """What FCM's own Message schema refuses in `message` (empty when it is accepted)."""
    schemas = fcm_discovery()["schemas"]
    normalized = as_proto_json(message, schemas["Message"], schemas)
    validator = jsonschema_rs.validator_for(fcm_message_schema())
    return [f"{list(error.instance_path)}: {error.message}" for error in validator.iter_errors(normalized)]


# --- Apple's rules ----------------------------------------------------------------------------


def apns_payload_as_delivered(message: dict[str, Any]) -> dict[str, Any]:
    """The APNs payload the device gets: FCM puts the message's data keys beside `aps`."""
    return {**message.get("data", {}), **message["apns"]["payload"]}


def apple_errors(message: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    apns = message.get("apns")
    if not isinstance(apns, dict):
        return ["no apns block: iOS would get FCM's defaults (a background push with no push type)"]
    headers, payload = apns.get("headers", {}), apns.get("payload", {})
    aps = payload.get("aps")
    push_type, priority = headers.get("apns-push-type"), headers.get("apns-priority")
    if push_type not in PUSH_TYPES:
        errors.append(f"apns-push-type {push_type!r}: Apple requires it on every request")
    if not isinstance(aps, dict):
        return [*errors, "no aps dictionary"]
    if unknown := set(aps) - APS_KEYS:
        errors.append(f"aps keys Apple does not define: {sorted(unknown)}")
    if push_type == "background":
        if aps != {"content-available": 1}:
            errors.append(f"a background push carries content-available alone, not {sorted(aps)}")
        if priority != "5":
            errors.append(f"a background push must be sent with apns-priority 5, not {priority!r}")
    if push_type == "alert":
        alert = aps.get("alert")
        if not isinstance(alert, (dict, str)) or not alert:
            errors.append("an alert push needs aps.alert")
        if isinstance(alert, dict):
            if unknown := set(alert) - ALERT_KEYS:
                errors.append(f"aps.alert keys Apple does not define: {sorted(unknown)}")
            errors.extend(_loc_errors(alert))
        if priority not in ("10", "5", "1"):
            errors.append(f"apns-priority {priority!r}")
        if "content-available" in aps:
            errors.append("an alert must not be content-available (it would also wake the app silently)")
    expiration = headers.get("apns-expiration")
    if expiration is not None and not re.fullmatch(r"[0-9]+", str(expiration)):
        errors.append(f"apns-expiration {expiration!r} is not a UNIX time")
    collapse = headers.get("apns-collapse-id")
    if collapse is not None and len(str(collapse).encode()) > 64:
        errors.append("apns-collapse-id is over 64 bytes")
    size = len(json.dumps(apns_payload_as_delivered(message), ensure_ascii=False, separators=(",", ":")).encode())
    if size > APNS_PAYLOAD_LIMIT:
        errors.append(f"the APNs payload is {size} bytes, over {APNS_PAYLOAD_LIMIT}")
    return errors


def _loc_errors(alert: dict[str, Any]) -> list[str]:
    key = alert.get("loc-key")
    if key is None:
        return []
    args = alert.get("loc-args", [])
    english = alert_copy.ENGLISH.get(key)
    if english is None:
        return [f"loc-key {key!r} has no English string the apps ship"]
    wanted = len(set(re.findall(r"%([0-9])\$s", english)))
    if not isinstance(args, list) or len(args) != wanted or not all(isinstance(a, str) for a in args):
        return [f"loc-key {key!r} takes {wanted} string arguments, got {args!r}"]
    return []


# --- Android (FCM data messages) ---------------------------------------------------------------


def android_errors(message: dict[str, Any]) -> list[str]:
    errors = []
    if "notification" in message or "notification" in message.get("android", {}):
        errors.append("a notification message: Android's tray would show it without our action buttons")
    data = {**message.get("data", {}), **message.get("android", {}).get("data", {})}
    for key, value in data.items():
        if key in FCM_RESERVED_DATA or key.startswith(FCM_RESERVED_PREFIXES):
            errors.append(f"data key {key!r} is reserved by FCM")
        if not isinstance(value, str):
            errors.append(f"data value of {key!r} is not a string")
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in data.items())
    if size > FCM_DATA_LIMIT:
        errors.append(f"data is {size} bytes, over FCM's {FCM_DATA_LIMIT}")
    return errors


def kind_of(message: dict[str, Any]) -> str:
    return str(message.get("data", {}).get("action"))


def contract_errors(message: dict[str, Any]) -> list[str]:
    """Everything wrong with one message as the FCM stand-in received it; empty when it holds."""
    kind = kind_of(message)
    if kind not in TYPES:
        return [f"unknown message type {kind!r}: add it to docs/push-messages.md and docs/push/"]
    errors = [f"ours/fcm {e.instance_path}: {e.message}" for e in ours(kind, "fcm").iter_errors(message)]
    android = {**message.get("data", {}), **message.get("android", {}).get("data", {})}
    errors += [f"ours/android {e.instance_path}: {e.message}" for e in ours(kind, "android").iter_errors(android)]
    ios = apns_payload_as_delivered(message) if isinstance(message.get("apns"), dict) else {}
    errors += [f"ours/ios {e.instance_path}: {e.message}" for e in ours(kind, "ios").iter_errors(ios)]
    errors += [f"FCM v1 Message: {e}" for e in fcm_errors(message)]
    errors += [f"Apple: {e}" for e in apple_errors(message)]
    errors += [f"Android: {e}" for e in android_errors(message)]
    return errors
