"""Settings as the environment gives them, and the client address a limit counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mydevices import rate_limits
from mydevices.config import Rate, Settings


@pytest.mark.parametrize(("ip", "key"), [
    (None, None), ("", None), ("203.0.113.7", "203.0.113.7"), (" 203.0.113.7 ", "203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"), ("[2001:db8::1]", "2001:db8::/64"),
    ("::ffff:198.51.100.9", "198.51.100.9"), ("not-an-address", "not-an-address"),
])
def test_an_address_is_counted_by_itself_and_ipv6_by_its_network(ip: str | None, key: str | None) -> None:
    assert rate_limits.address_key(ip) == key


def test_the_ipv6_prefix_is_configurable_and_bounded(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_IPV6_RATE_PREFIX="48")
    assert rate_limits.address_key("2001:db8:1:2::1") == "2001:db8:1::/48"
    configure(MYDEVICES_IPV6_RATE_PREFIX="999")
    assert rate_limits.address_key("2001:db8::1") == "2001:db8::1/128"


def test_defaults_without_any_environment(configure: Callable[..., Any]) -> None:
    conf = configure(MYDEVICES_ACCESS_TTL_SECONDS=None, MYDEVICES_LOGIN_RATE_PER_IP=None, MYDEVICES_WEB_COOKIE=None,
                     MYDEVICES_APP_CHECK=None, MYDEVICES_REUSE_POLICY=None)
    assert (conf.access_ttl, conf.login_rate_per_ip, conf.web_cookie, conf.app_check, conf.reuse_policy) == (
        600, Rate(20, 60), "host", "off", "revoke_all")


@pytest.mark.parametrize(("raw", "rate"), [("5/10", Rate(5, 10)), (" 7/60 ", Rate(7, 60)), ("off", None),
                                           ("OFF", None), ("", Rate(20, 60))])
def test_a_rate_is_count_per_seconds_or_off(configure: Callable[..., Any], raw: str, rate: Rate | None) -> None:
    assert configure(MYDEVICES_LOGIN_RATE_PER_IP=raw).login_rate_per_ip == rate


@pytest.mark.parametrize(("name", "raw"), [
    ("MYDEVICES_LOGIN_RATE_PER_IP", "0/60"), ("MYDEVICES_LOGIN_RATE_PER_IP", "ten/60"),
    ("MYDEVICES_LOGIN_RATE_PER_IP", "10"), ("MYDEVICES_REUSE_POLICY", "forgive"),
    ("MYDEVICES_WEB_COOKIE", "jar"), ("MYDEVICES_APP_CHECK", "on"),
    ("MYDEVICES_ALLOWED_ORIGINS", "https://app.example.com/path"), ("MYDEVICES_CORS_ORIGINS", "HTTPS://UPPER.example"),
    ("MYDEVICES_CORS_ORIGINS", "app.example.com"),
])
def test_a_setting_that_would_silently_mean_something_else_stops_the_start(
    configure: Callable[..., Any], name: str, raw: str
) -> None:
    with pytest.raises(ValueError, match=name):
        configure(**{name: raw})


def test_origins_are_a_comma_separated_set(configure: Callable[..., Any]) -> None:
    conf = configure(MYDEVICES_CORS_ORIGINS="https://a.example, http://localhost:5000,,https://[::1]:8443")
    assert conf.cors_origins == {"https://a.example", "http://localhost:5000", "https://[::1]:8443"}


def test_the_public_api_url_loses_its_trailing_slash(configure: Callable[..., Any]) -> None:
    assert configure(MYDEVICES_PUBLIC_API_URL="https://api.example.com/").public_api_url == "https://api.example.com"
    assert configure(MYDEVICES_PUBLIC_API_URL="").public_api_url is None


def test_the_project_comes_from_either_google_variable(configure: Callable[..., Any]) -> None:
    assert configure(GOOGLE_CLOUD_PROJECT=None, GCLOUD_PROJECT="demo-x").project == "demo-x"
    assert configure(GOOGLE_CLOUD_PROJECT="demo-y").project == "demo-y"


def test_limits_are_configured_as_count_per_seconds_or_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MYDEVICES_LOGIN_RATE_PER_IP", "MYDEVICES_LOGIN_RATE_PER_USER_ADDRESS",
                 "MYDEVICES_LOGIN_RATE_PER_USER", "MYDEVICES_REFRESH_RATE_PER_IP", "MYDEVICES_REFRESH_RATE_PER_SESSION",
                 "MYDEVICES_MAX_ACTIVE_SESSIONS"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings.from_env()
    assert (defaults.login_rate_per_ip, defaults.login_rate_per_user_address, defaults.login_rate_per_user) == (
        Rate(20, 60), Rate(20, 3600), Rate(200, 3600))
    assert (defaults.refresh_rate_per_ip, defaults.refresh_rate_per_session) == (Rate(120, 60), Rate(30, 60))
    assert defaults.max_active_sessions == 50
    monkeypatch.setenv("MYDEVICES_LOGIN_RATE_PER_IP", "5/30")
    monkeypatch.setenv("MYDEVICES_REFRESH_RATE_PER_SESSION", "off")
    chosen = Settings.from_env()
    assert (chosen.login_rate_per_ip, chosen.refresh_rate_per_session) == (Rate(5, 30), None)
    for bad in ("5", "5/0", "0/60", "-1/60", "five/60", "5/60s", "5/60/1"):
        monkeypatch.setenv("MYDEVICES_LOGIN_RATE_PER_IP", bad)
        with pytest.raises(ValueError, match="MYDEVICES_LOGIN_RATE_PER_IP must be COUNT/SECONDS"):
            Settings.from_env()


ALLOWED = "https://app.example.com"


@pytest.mark.parametrize("value", ["https://app.example.com/", "app.example.com", "https://app.example.com/path",
                                   "HTTPS://APP.EXAMPLE.COM", "*", "null"])
def test_a_misspelt_allowed_origin_stops_the_function_instead_of_matching_nothing(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MYDEVICES_ALLOWED_ORIGINS", f"{ALLOWED},{value}")
    with pytest.raises(ValueError, match="MYDEVICES_ALLOWED_ORIGINS"):
        Settings.from_env()
    monkeypatch.setenv("MYDEVICES_ALLOWED_ORIGINS", f" {ALLOWED} ,http://localhost:5000,,")
    assert Settings.from_env().allowed_origins == {ALLOWED, "http://localhost:5000"}
