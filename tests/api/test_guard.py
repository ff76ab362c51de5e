"""`require_session` protects another team's functions-framework function with the same three steps."""

from __future__ import annotations

from typing import Any

import requests

from support.devices import PIXEL, Device, error_code


def test_a_valid_session_reaches_the_function_and_a_closed_one_does_not(
    guarded_url: str, api: str, sign_up: Any
) -> None:
    uid, id_token = sign_up()
    phone = Device(api)
    phone.login(id_token)
    pixel = Device(api, dict(PIXEL))
    pixel.login(id_token)
    as_phone = requests.get(f"{guarded_url}/orders", headers=phone.headers(), timeout=10)
    assert as_phone.status_code == 200
    assert as_phone.json() == {"uid": uid, "sessionId": phone.session_id, "path": "/orders"}
    assert error_code(requests.get(f"{guarded_url}/orders", timeout=10)) == "unauthenticated"
    assert phone.delete(f"/v1/sessions/{pixel.session_id}").status_code == 200
    refused = requests.get(f"{guarded_url}/orders", headers=pixel.headers(), timeout=10)
    assert (refused.status_code, error_code(refused)) == (401, "session_revoked")
