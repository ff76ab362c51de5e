"""Hostile requests against the live `support_api` function, from docs/openapi-support.yaml: every
generated request (valid and invalid, deterministic, bounded), made as a support agent so that it
reaches past the role check, gets a status the document lists for its operation, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from firebase_admin import auth

from infra.local.stack import Stack
from mydevices.firebase_app import app
from support import ROOT
from support.serving import serving

schema = schemathesis.openapi.from_path(
    ROOT / "docs" / "openapi-support.yaml",
    config=schemathesis.Config.from_dict({
        "generation": {"mode": "all", "max-examples": 15, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422]}},
    }),
)


@pytest.fixture(scope="module")
def agent(stack: Stack) -> Iterator[dict[str, Any]]:
    email = "fuzzing-agent@example.com"
    try:
        uid = auth.get_user_by_email(email, app=app()).uid
    except auth.UserNotFoundError:
        uid, _ = stack.auth.sign_up(email)
    auth.set_custom_user_claims(uid, {"mydevicesSupport": True}, app=app())
    with serving(stack, "support_api", signature_type="http", own_port=True) as server:
        yield {"url": server.url, "token": stack.auth.sign_in(email)[1]}


@schema.parametrize()
def test_every_generated_request_gets_a_documented_answer(case: schemathesis.Case, agent: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {agent['token']}"}
    response = case.call(base_url=agent["url"], headers=headers, timeout=30)
    assert response.status_code < 500, response.text
    documented = case.operation.definition.raw.get("responses", {})
    if case.method.upper() == case.operation.method.upper():
        assert str(response.status_code) in documented, (case.method, case.path, response.status_code, response.text)
    else:
        assert response.status_code == 405, response.text
    assert response.headers["content-type"] == ["application/json"]  # schemathesis: lower case, lists
