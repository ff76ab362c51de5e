"""docs/openapi.yaml against the code: the same routes, and the limits the code enforces.
(tests/security/test_security_requests.py then fuzzes the live API from the same document.)"""

from __future__ import annotations

import re
from typing import Any

import yaml  # PyYAML, installed with schemathesis
from werkzeug.routing import Rule

import main
from mydevices import bodies
from mydevices.config import Settings
from mydevices.errors import Refusal
from support import ROOT

SPEC = ROOT / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return spec


def _template(rule: Rule) -> tuple[str, dict[str, str]]:
    """`/v1/sessions/<sid:sid>` -> (`/v1/sessions/{}`, {"0": "[A-Za-z0-9_-]{22}"}: the converter's regex)."""
    groups: dict[str, str] = {}

    def hole(match: re.Match[str]) -> str:
        groups[str(len(groups))] = main.ROUTES.map.converters[match.group(1)].regex
        return "{}"

    return re.sub(r"<(\w+):\w+>", hole, rule.rule), groups


def test_the_openapi_document_lists_exactly_the_routes_of_main() -> None:
    implemented: dict[str, set[str]] = {}
    patterns: dict[str, dict[str, str]] = {}
    for rule in main.ROUTES.map.iter_rules():
        path, groups = _template(rule)
        implemented.setdefault(path, set()).update(method.lower() for method in rule.methods or ())
        patterns[path] = groups
    documented: dict[str, set[str]] = {}
    documented_patterns: dict[str, dict[str, str]] = {}
    for path, item in _spec()["paths"].items():
        normalized = re.sub(r"\{\w+\}", "{}", path)
        documented[normalized] = {name for name in item if name in METHODS}
        params = [p for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]
        documented_patterns[normalized] = {
            str(i): p["schema"]["pattern"].removeprefix("^").removesuffix("$")
            for i, p in enumerate(param for param in params if param["in"] == "path")
        }
    assert documented == implemented
    assert documented_patterns == patterns


def test_the_openapi_document_states_the_limits_the_code_enforces() -> None:
    schemas = _spec()["components"]["schemas"]
    device = schemas["DeviceInfo"]["properties"]
    assert device["name"]["allOf"][1]["maxLength"] == bodies.MAX_NAME
    assert schemas["OptionalText"]["maxLength"] == bodies.MAX_FIELD
    assert schemas["PushTarget"]["properties"]["token"]["allOf"][1]["maxLength"] == bodies.MAX_PUSH_TOKEN
    assert device["platform"]["enum"] == list(bodies.PLATFORMS)
    assert schemas["PushTarget"]["properties"]["provider"]["enum"] == list(bodies.PUSH_PROVIDERS)
    assert f"{Settings.from_env().max_body_bytes // 1024} KiB" in _spec()["info"]["description"]
    # The text patterns say exactly what bodies._text accepts (checked character by character).
    required = re.compile(schemas["RequiredText"]["pattern"])
    optional = re.compile(schemas["OptionalText"]["pattern"])
    for code_point in [*range(0x250), *range(0x1680, 0x1681), *range(0x2000, 0x2070), 0x3000, 0xFEFF]:
        char = chr(code_point)
        for text in (char, f"a{char}b", char * 3):
            assert bool(required.fullmatch(text)) == _accepted(text, required=True), repr(text)
            assert bool(optional.fullmatch(text)) == _accepted(text, required=False), repr(text)


def _accepted(text: str, *, required: bool) -> bool:
    try:
        bodies._text(text, "field", 10_000, required=required)
    except Refusal:
        return False
    return True


def test_the_support_openapi_document_lists_exactly_the_support_routes() -> None:
    """docs/openapi-support.yaml against main.SUPPORT_ROUTES (the `support_api` function), and the
    reason's limit against bodies.SupportClosure."""
    spec = yaml.safe_load((ROOT / "docs" / "openapi-support.yaml").read_text(encoding="utf-8"))
    implemented: dict[str, set[str]] = {}
    for rule in main.SUPPORT_ROUTES.map.iter_rules():
        path = re.sub(r"<(?:\w+:)?\w+>", "{}", rule.rule)
        implemented.setdefault(path, set()).update(method.lower() for method in rule.methods or ())
    documented = {re.sub(r"\{\w+\}", "{}", path): {name for name in item if name in METHODS}
                  for path, item in spec["paths"].items()}
    assert documented == implemented
    assert spec["components"]["schemas"]["SupportClosure"]["properties"]["reason"]["maxLength"] == \
        bodies.MAX_SUPPORT_REASON
