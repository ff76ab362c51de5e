"""What clients send, as declared types.

Each request body is a msgspec Struct, decoded strictly (`decode`: known fields of known types,
known platforms); the text rules msgspec has no words for (bounded lengths, no control
characters, not blank) are `_text`'s, run as the Struct is made, because device names end up on
other devices' screens and in push notifications. Text is kept exactly as sent — emoji and
right-to-left names included — and never interpreted. The messages are the API's own, whatever
msgspec would say: `decode` says them from where the fault is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

import msgspec
from msgspec.structs import force_setattr

from .errors import Code, Refusal

Platform = Literal["ios", "android", "web"]
PLATFORMS = {platform: platform.upper() for platform in get_args(Platform)}
PushProvider = Literal["fcm"]
PUSH_PROVIDERS = get_args(PushProvider)
MAX_NAME = 100
MAX_FIELD = 64
MAX_PUSH_TOKEN = 4096


class Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """A request body (or part of one). `INVALID`: the message for a wrong value at a path (a
    dotted path from the body); `ABSENT`: for a missing one; any other fault gets `decode`'s words."""

    INVALID: ClassVar[Mapping[str, str]] = {}
    ABSENT: ClassVar[Mapping[str, str]] = {}


class DeviceInfo(Body, frozen=True):
    name: str
    platform: Platform
    model: str | None = None
    os_version: str | None = None
    app_version: str | None = None

    def __post_init__(self) -> None:
        force_setattr(self, "name", _text(self.name, "device.name", MAX_NAME, required=True))
        for field, where in (("model", "model"), ("os_version", "osVersion"), ("app_version", "appVersion")):
            force_setattr(self, field, _text(getattr(self, field), f"device.{where}", MAX_FIELD, required=False))

    @property
    def device_type(self) -> str:
        return PLATFORMS[self.platform]


class PushTarget(Body, frozen=True):
    """A login's `push`, and the body of PUT push-token (decoded `where="push"`)."""

    token: str
    provider: Any = "fcm"  # checked after the token: a body with both wrong names the token

    def __post_init__(self) -> None:
        force_setattr(self, "token", _text(self.token, "push.token", MAX_PUSH_TOKEN, required=True))
        if self.provider not in PUSH_PROVIDERS:
            raise Refusal(Code.INVALID_REQUEST, "push.provider must be fcm")


_DEVICE = "device must be a JSON object"
_PLATFORM = "device.platform must be one of ios, android, web"


class Login(Body, frozen=True):
    device: DeviceInfo
    push: PushTarget | None = None
    firebase_custom_token: bool | msgspec.UnsetType = msgspec.UNSET
    device_public_key: Any = None  # dpop.parse_public_jwk: its faults have codes of their own
    # "keep me signed in" unticked: this session lives at most this long (never longer than the setting).
    # A whole number, which JSON may also write 4187.0 (JavaScript's numbers): taken as the int it is.
    session_lifetime_seconds: Annotated[float, msgspec.Meta(ge=60, le=10 * 365 * 86400)] | None = None

    INVALID: ClassVar[Mapping[str, str]] = {
        "device": _DEVICE, "device.platform": _PLATFORM,
        "firebaseCustomToken": "firebaseCustomToken must be true or false",
        "sessionLifetimeSeconds": "sessionLifetimeSeconds must be a whole number of seconds from 60 to 10 years",
    }
    ABSENT: ClassVar[Mapping[str, str]] = {"device": _DEVICE, "device.platform": _PLATFORM}

    def __post_init__(self) -> None:
        seconds = self.session_lifetime_seconds
        if isinstance(seconds, float) and not seconds.is_integer():
            raise Refusal(Code.INVALID_REQUEST, self.INVALID["sessionLifetimeSeconds"])

    @property
    def lifetime(self) -> int | None:
        """`sessionLifetimeSeconds` as whole seconds."""
        return None if self.session_lifetime_seconds is None else int(self.session_lifetime_seconds)


class Reauthenticate(Body, frozen=True):
    id_token: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]

    INVALID: ClassVar[Mapping[str, str]] = {"idToken": "idToken must be a Firebase ID token",
                                            "data.idToken": "data.idToken must be a Firebase ID token"}
    ABSENT: ClassVar[Mapping[str, str]] = {"idToken": "idToken is required", "data.idToken": "data.idToken is required"}


class AutoClose(Body, frozen=True):
    after_days: Literal[7, 30, 90, 180] | None

    INVALID: ClassVar[Mapping[str, str]] = {"afterDays": "afterDays must be 7, 30, 90, 180 or null",
                                            "data.afterDays": "data.afterDays must be 7, 30, 90, 180 or null"}
    ABSENT: ClassVar[Mapping[str, str]] = {"afterDays": "afterDays is required (7, 30, 90, 180 or null)",
                                           "data.afterDays": "data.afterDays is required (7, 30, 90, 180 or null)"}


class Refresh(Body, frozen=True):
    refresh_token: str | None = None


class AlertAnswer(Body, frozen=True):
    action_token: Any = None  # alert_answer.respond checks both, the token first
    answer: Any = None


# The callables' arguments (`data`, decoded `where="data"`).


class NoArguments(Body, frozen=True):
    INVALID: ClassVar[Mapping[str, str]] = {"data": "data must be null or {}"}


class RevokeArguments(Body, frozen=True):
    session_id: Annotated[str, msgspec.Meta(pattern=r"\A[A-Za-z0-9_-]{1,64}\Z")]

    INVALID: ClassVar[Mapping[str, str]] = {"data": "data must be an object",
                                            "data.sessionId": "data.sessionId is not valid"}


class ActivityArguments(Body, frozen=True):
    """sessions_activity's `data`: the same paging as GET /v1/activity (flows/activity.py)."""

    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    cursor: str | None = None

    INVALID: ClassVar[Mapping[str, str]] = {"data": "data must be an object",
                                            "data.limit": "data.limit must be a whole number from 1 to 100",
                                            "data.cursor": "data.cursor is not valid"}


class SupportClosure(Body, frozen=True):
    """A support agent's closure (flows/support.py): `reason` is shown to the user, as plain text,
    so it follows a device name's rules (bounded, no control characters, kept exactly as sent)."""

    reason: Any = None

    def __post_init__(self) -> None:
        force_setattr(self, "reason", _text(self.reason, "reason", MAX_SUPPORT_REASON, required=True))


MAX_SUPPORT_REASON = 500  # documents.MAX_NOTE

T = TypeVar("T", bound=Body)
# DOTALL: a field name is the client's, newlines and backticks included.
_FAULT = re.compile(r"(?:Object contains unknown field `(?P<unknown>.*?)`|Object missing required field "
                    r"`(?P<missing>.*?)`|Expected `(?P<expected>[^`]*)`.*?|.*?)(?: - at `\$(?P<path>[^`]*)`)?",
                    re.DOTALL)


def decode(value: Any, kind: type[T], where: str = "") -> T:
    """`value` (decoded JSON) as `kind`, or an `invalid_request` Refusal saying what is wrong and where (paths
    from `where`: "data" for a callable's arguments, nothing for a request body)."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as error:
        fault = _FAULT.fullmatch(str(error))
        assert fault is not None  # the last alternative matches any text
        path = ".".join(part for part in (where, (fault["path"] or "").lstrip("."),
                                          fault["unknown"] or fault["missing"]) if part)
        if fault["unknown"] is not None:
            message = f"unknown field {path}"
        elif fault["missing"] is not None:
            message = kind.ABSENT.get(path, f"{path} is required")
        elif path in kind.INVALID:
            message = kind.INVALID[path]
        elif fault["expected"] == "str" and "got `null`" in str(error):  # a null text is a missing one
            message = kind.ABSENT.get(path, f"{path} is required")
        elif "object" in (fault["expected"] or ""):
            message = f"{path} must be a JSON object"
        elif (fault["expected"] or "").startswith("str"):
            message = f"{path} must be a string"
        else:
            message = f"{path} is not valid"
        raise Refusal(Code.INVALID_REQUEST, message) from None


def _text(value: Any, where: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise Refusal(Code.INVALID_REQUEST, f"{where} is required")
        return None
    if not isinstance(value, str):
        raise Refusal(Code.INVALID_REQUEST, f"{where} must be a string")
    # Length and control characters first: a blank value is not exempt from them.
    if len(value) > limit:
        raise Refusal(Code.INVALID_REQUEST, f"{where} must be at most {limit} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise Refusal(Code.INVALID_REQUEST, f"{where} must not contain control characters")
    if not value.strip():
        if required:
            raise Refusal(Code.INVALID_REQUEST, f"{where} must not be empty")
        return None
    return value
