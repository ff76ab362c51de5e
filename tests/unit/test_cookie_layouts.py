"""The cookies a web client holds, in both layouts: what is set, read back and cleared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mydevices import web_cookies
from mydevices.web_cookies import ACCESS, DEVICE, REFRESH


def test_host_layout_sets_one_host_cookie_per_part_with_its_own_age(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE=None, MYDEVICES_ACCESS_TTL_SECONDS="600")
    written = web_cookies.write({}, {DEVICE: "d", ACCESS: "a", REFRESH: "r"})
    assert written == [("__Host-mydevices-did", "d", web_cookies.DEVICE_AGE), ("__Host-mydevices-at", "a", 600),
                       ("__Host-mydevices-rt", "r", web_cookies.REFRESH_AGE)]


def test_host_layout_clears_a_removed_part_with_max_age_zero(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE="host")
    assert web_cookies.write({}, {ACCESS: None}) == [("__Host-mydevices-at", "", 0)]


def test_host_layout_reads_and_detects_its_cookies(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE="host")
    jar = {"__Host-mydevices-rt": "r", "other": "x"}
    assert web_cookies.read(jar, REFRESH) == "r"
    assert web_cookies.read(jar, DEVICE) is None
    assert web_cookies.present(jar)
    assert not web_cookies.present({"other": "x", "__session": "did=d"})


def test_session_layout_keeps_every_part_in_the_one_cookie_hosting_lets_through(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE="session")
    ((name, value, age),) = web_cookies.write({}, {DEVICE: "d", ACCESS: "a"})
    assert (name, age) == ("__session", web_cookies.DEVICE_AGE)
    jar = {name: value}
    assert (web_cookies.read(jar, DEVICE), web_cookies.read(jar, ACCESS), web_cookies.read(jar, REFRESH)) == (
        "d", "a", None)
    assert web_cookies.present(jar)
    assert not web_cookies.present({"__Host-mydevices-did": "d"})


def test_session_layout_updates_parts_and_keeps_the_others(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE="session")
    jar = {"__session": "did=d&at=old&rt=r"}
    ((_, value, _),) = web_cookies.write(jar, {ACCESS: "new", REFRESH: None})
    assert web_cookies.read({"__session": value}, ACCESS) == "new"
    assert web_cookies.read({"__session": value}, DEVICE) == "d"
    assert web_cookies.read({"__session": value}, REFRESH) is None


def test_session_layout_deletes_the_cookie_once_nothing_is_left(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE="session")
    assert web_cookies.write({"__session": "did=d"}, {DEVICE: None}) == [("__session", "", 0)]


def test_session_layout_ignores_parts_it_does_not_own(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_WEB_COOKIE="session")
    jar = {"__session": "evil=x&did=&at=a&rt"}
    assert (web_cookies.read(jar, DEVICE), web_cookies.read(jar, ACCESS), web_cookies.read(jar, REFRESH)) == (
        None, "a", None)
