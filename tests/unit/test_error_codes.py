"""Every error code the API can send has one row in the wire table and a line in the contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mydevices.errors import Code
from mydevices.http.render import WIRE

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# The callable protocol pairs each canonical status with one HTTP status (Firebase's https_fn).
CALLABLE_HTTP = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401,
                 "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500,
                 "UNAVAILABLE": 503}


@pytest.mark.parametrize("code", list(Code))
def test_every_code_has_a_wire_row_and_a_place_in_the_contract(code: Code) -> None:
    assert code in WIRE
    assert f"`{code}`" in SPEC.read_text(), f"docs/openapi.yaml names no `{code}`"


def test_the_table_holds_codes_only_and_the_callable_pairs_of_firebase() -> None:
    assert set(WIRE) == set(Code)
    assert {(wire.callable, wire.callable_http) for wire in WIRE.values()} <= set(CALLABLE_HTTP.items())


def test_the_api_status_says_the_same_class_of_failure_as_the_callable_status() -> None:
    for code, wire in WIRE.items():
        assert wire.http // 100 == wire.callable_http // 100, code


def test_codes_keep_the_wire_shape() -> None:
    assert all(re.fullmatch(r"[a-z_]+", code) for code in Code)
