"""The words of "Signed in on <device> from <place>. Was that you?", in every form they travel.

One module, so the push (APNs alert, Android data), the pending-alerts endpoint and the web page
cannot drift apart: each form says the same sentence, built from the same cleaned device name and
the same server-side place. It imports nothing heavy, so the `api` function can use it without
paying for firebase-admin's messaging at cold start.

Localization: the sentence has four shapes (name known or not, place known or not), each a
localization key whose arguments are only the cleaned name and the server's place. The quotation
marks belong to the translated string, not to the argument, and `alert_name` removes every
quotation mark from the name, so a name can never close the quote and write the rest itself.
The English text goes with every key as the fallback (`docs/push-messages.md`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

MAX_ALERT_NAME = 40  # characters of the device name shown in an alert
# Quotation marks of every script: a name holding one could close our quote and write the rest
# of the sentence itself.
QUOTES = frozenset("\"'`\u00ab\u00bb\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2039\u203a"
                   "\u2e42\u300c\u300d\u300e\u300f\u301d\u301e\u301f\uff02\uff07\uff62\uff63")

TITLE = "New sign-in"
TITLE_LOC_KEY = "mydevices_new_login_title"
# (name known, place known) -> the key; the arguments are [name, place] minus the unknown ones.
BODY_LOC_KEYS = {
    (True, True): "mydevices_new_login_body",
    (False, True): "mydevices_new_login_body_unnamed",
    (True, False): "mydevices_new_login_body_unknown_place",
    (False, False): "mydevices_new_login_body_unnamed_unknown_place",
}
# The English strings an app ships for those keys (iOS Localizable.strings uses %1$@ for %1$s).
ENGLISH = {
    TITLE_LOC_KEY: TITLE,
    "mydevices_new_login_body": "Signed in on \u201c%1$s\u201d from %2$s. Was that you?",
    "mydevices_new_login_body_unnamed": "Signed in on an unnamed device from %1$s. Was that you?",
    "mydevices_new_login_body_unknown_place": "Signed in on \u201c%1$s\u201d from an unknown location. Was that you?",
    "mydevices_new_login_body_unnamed_unknown_place": "Signed in on an unnamed device from an unknown location. "
                                                      "Was that you?",
}
CATEGORY = "MYDEVICES_NEW_LOGIN"  # the iOS notification category (and Android's action set)
ACTION_NO = "MYDEVICES_NO"  # "No, close this session": destructive
ACTION_YES = "MYDEVICES_YES"  # "Yes, it was me"
_ARG = re.compile(r"%(\d)\$s")


def alert_name(device_name: str | None) -> str | None:
    """The device name as an alert may show it. The name is the new device's own claim, so it
    must not be able to pass for our words: no control or format characters (bidi overrides and
    isolates, zero-width ones: they reorder or hide what the user reads), no quotation marks,
    whitespace collapsed, and bounded. None when nothing printable is left."""
    kept = []
    for char in device_name or "":
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn") and char not in QUOTES:
            kept.append(char)
    name = " ".join("".join(kept).split())
    if len(name) > MAX_ALERT_NAME:
        name = name[:MAX_ALERT_NAME - 1].rstrip() + "\u2026"
    return name or None


def alert_text(device_name: str | None, location: str | None) -> str:
    """The place is always said, and only the server's lookup says it: a name like
    "iPhone 15 from London, United Kingdom" then reads as what it is, a quoted claim."""
    return Copy.of(device_name, location).text


@dataclass(frozen=True)
class Copy:
    """One alert's words: the English text, and the localization key with its arguments."""

    name: str | None  # the cleaned device name
    location: str | None  # the server's lookup, never the client's claim
    loc_key: str
    loc_args: tuple[str, ...]

    @classmethod
    def of(cls, device_name: str | None, location: str | None) -> Copy:
        name = alert_name(device_name)
        place = location if isinstance(location, str) and location else None
        key = BODY_LOC_KEYS[(name is not None, place is not None)]
        return cls(name, place, key, tuple(arg for arg in (name, place) if arg is not None))

    @property
    def text(self) -> str:
        """The English fallback: the key's English string with the arguments put in."""
        # One pass: a name that itself reads "%2$s" stays that text, it never pulls the place in.
        return _ARG.sub(lambda match: self.loc_args[int(match[1]) - 1], ENGLISH[self.loc_key])

    def as_json(self) -> dict[str, Any]:
        return {"title": TITLE, "text": self.text, "locKey": self.loc_key, "locArgs": list(self.loc_args)}
