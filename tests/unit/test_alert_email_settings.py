"""MYDEVICES_ALERT_EMAIL and what it needs (config.py): on by default once a relay is configured,
and a start refused when email is asked for without the relay, the sender or the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

NONE = {"MYDEVICES_ALERT_EMAIL": None, "MYDEVICES_SMTP_URL": None, "MYDEVICES_EMAIL_FROM": None,
        "MYDEVICES_EMAIL_PAGE_URL": None, "MYDEVICES_PUBLIC_API_URL": None}
RELAY = {"MYDEVICES_SMTP_URL": "smtp+starttls://u:p@smtp.example.com:587",
         "MYDEVICES_EMAIL_FROM": "My Devices <no-reply@example.com>"}


def test_off_without_a_relay_and_fallback_with_one(configure: Callable[..., Any]) -> None:
    assert configure(**NONE).alert_email == "off"
    conf = configure(**RELAY, MYDEVICES_PUBLIC_API_URL="https://api.example.com/")
    assert (conf.alert_email, conf.email_page) == ("fallback", "https://api.example.com/v1/alerts/email")
    assert configure(MYDEVICES_ALERT_EMAIL="off").alert_email == "off"


@pytest.mark.parametrize(("env", "missing"), [
    ({"MYDEVICES_ALERT_EMAIL": "always"}, "MYDEVICES_SMTP_URL"),
    ({"MYDEVICES_SMTP_URL": "smtp://127.0.0.1:2525"}, "MYDEVICES_EMAIL_FROM"),
    (RELAY, "MYDEVICES_EMAIL_PAGE_URL"),
    ({**RELAY, "MYDEVICES_EMAIL_PAGE_URL": "https://api.example.com/v1/alerts/email?x=1"}, "MYDEVICES_EMAIL_PAGE_URL"),
    ({**RELAY, "MYDEVICES_ALERT_EMAIL": "sometimes"}, "MYDEVICES_ALERT_EMAIL"),
])
def test_asking_for_email_without_what_it_needs_stops_the_start(
        configure: Callable[..., Any], env: dict[str, str], missing: str) -> None:
    configure(**NONE)
    with pytest.raises(ValueError, match=missing):
        configure(**env)
