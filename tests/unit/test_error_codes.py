"""Every error code the API can send has an answer at both edges and a line in the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mydevices import callable as callable_protocol
from mydevices import httpio
from mydevices.errors import Code

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


@pytest.mark.parametrize("code", list(Code))
def test_every_code_has_an_http_status_a_callable_status_and_a_place_in_the_contract(code: Code) -> None:
    assert code in httpio.HTTP_STATUS
    assert code in callable_protocol.STATUS
    assert f"`{code}`" in SPEC.read_text(), f"docs/openapi.yaml names no `{code}`"


def test_the_tables_hold_codes_only() -> None:
    assert set(httpio.HTTP_STATUS) == set(Code) == set(callable_protocol.STATUS)
    assert set(callable_protocol.STATUS.values()) <= set(callable_protocol.HTTP_STATUS)


def test_codes_keep_the_wire_shape() -> None:
    assert all(re.fullmatch(r"[a-z_]+", code) for code in Code)
