"""What a new-login alert says: the device's own name cannot pass for our words."""

from __future__ import annotations

import pytest

from mydevices.push import alert_copy
from mydevices.push.alert_copy import Copy


@pytest.mark.parametrize(("given", "shown"), [
    ("Pixel 8", "Pixel 8"),
    ("  Pixel \t\n 8  ", "Pixel 8"),
    ("iPhone\u202e8 enohP", "iPhone8 enohP"),  # a bidi override would reorder what the user reads
    ("Pix\u200bel", "Pixel"),  # zero-width
    ('"Support" says', "Support says"),
    ("\u201cOfficial\u201d", "Official"),
    ("bell\x07", "bell"),
])
def test_names_lose_control_format_and_quote_characters(given: str, shown: str) -> None:
    assert alert_copy.alert_name(given) == shown


@pytest.mark.parametrize("given", [None, "", "   ", "\u200b\u202e", '""'])
def test_a_name_with_nothing_printable_is_no_name(given: str | None) -> None:
    assert alert_copy.alert_name(given) is None


def test_a_long_name_is_cut_with_an_ellipsis() -> None:
    shown = alert_copy.alert_name("x" * 100)
    assert shown is not None and len(shown) == alert_copy.MAX_ALERT_NAME and shown.endswith("\u2026")


def test_the_text_names_device_and_place_and_says_the_place_comes_from_us() -> None:
    text = alert_copy.alert_text("Pixel 8", "London, United Kingdom")
    assert "Pixel 8" in text and "London, United Kingdom" in text


@pytest.mark.parametrize(("name", "place", "args"), [
    ("Pixel", "Paris", ("Pixel", "Paris")), ("Pixel", None, ("Pixel",)), (None, "Paris", ("Paris",)), (None, None, ()),
])
def test_each_combination_has_its_own_localization_key(name: str | None, place: str | None,
                                                        args: tuple[str, ...]) -> None:
    copy = Copy.of(name, place)
    assert copy.loc_key == alert_copy.BODY_LOC_KEYS[(name is not None, place is not None)]
    assert copy.loc_args == args
    assert copy.as_json() == {"title": alert_copy.TITLE, "text": copy.text, "locKey": copy.loc_key,
                              "locArgs": list(args)}


def test_a_name_that_reads_like_a_placeholder_stays_text() -> None:
    assert "Paris" not in Copy.of("%2$s", None).text
    assert "%2$s" in Copy.of("%2$s", "Paris").text


def test_the_four_keys_are_distinct_and_all_have_english() -> None:
    assert len(set(alert_copy.BODY_LOC_KEYS.values())) == 4
    assert all(key in alert_copy.ENGLISH for key in alert_copy.BODY_LOC_KEYS.values())
