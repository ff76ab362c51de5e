"""Hostile inputs at the edge (text where ids go, claims of the wrong type): each answers a 4xx of ours,
never a 500 or Flask's HTML page.

The API runs in-process (functions-framework's own app, Flask's test client); Firestore points at a
closed port, so a request that got as far as the database would answer 503, never one of these.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions as core_exceptions

from infra.bench.binding import HTU, DeviceKey
from mydevices import clock, config, dbsc, dpop, store
from mydevices.errors import Refusal
from mydevices.http.render import json_text
from mydevices.push import fanout
from support import GUARDED_APP

DEVICE_KEY = DeviceKey()
REFRESH_URL = HTU


def proof(**claims: Any) -> str:
    """A DPoP proof the device key really signed, with `claims` over the usual ones."""
    return DEVICE_KEY.proof(claims.pop("nonce", dpop.nonce()), **claims)


def a_device_id_with_an_accent(api: Any) -> str:
    device, kid, mac = api.get("/v1/sessions").headers["X-Device-Id"].split(".")
    return f"{device}.{kid}.é{mac[1:]}"  # the kid is public: every answer names it


def code(answer: Any) -> tuple[int, str]:
    assert answer.mimetype == "application/json", answer.get_data(as_text=True)[:200]
    return answer.status_code, answer.get_json()["error"]["code"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/sessions"), ("GET", "/.well-known/jwks.json"),
                                              ("POST", "/v1/alerts/respond")])
def test_a_device_id_with_non_ascii_text_is_an_unknown_device_not_a_500(api_client: Any, method: str,
                                                                        path: str) -> None:
    api = api_client()
    answer = api.open(path, method=method, headers={"X-Device-Id": a_device_id_with_an_accent(api)})
    assert answer.status_code < 500, answer.get_data(as_text=True)[:200]


def test_require_session_answers_our_json_for_a_device_id_with_non_ascii_text(api_client: Any) -> None:
    api, guarded = api_client(), api_client("orders", str(GUARDED_APP))
    answer = guarded.get("/", headers={"X-Device-Id": a_device_id_with_an_accent(api), "Authorization": "Bearer x"})
    assert code(answer) == (401, "invalid_token")


@pytest.mark.parametrize("claims", [{"nonce": "é"}, {"iat": 10**309}, {"iat": -(10**309)}, {"ath": "é"}])
def test_a_signed_dpop_proof_with_hostile_claims_is_refused_as_a_proof(api_client: Any, claims: dict[str, Any]) -> None:
    api = api_client()
    device = api.get("/v1/sessions").headers["X-Device-Id"]
    answer = api.post("/v1/sessions/refresh", json={"refreshToken": "A" * 22 + ".0." + "B" * 43},
                      headers={"X-Device-Id": device, "DPoP": proof(**claims)})
    assert answer.status_code != 500, answer.get_data(as_text=True)[:200]
    assert answer.mimetype == "application/json"


def test_a_dpop_jti_that_firestore_cannot_store_is_a_bad_jti(configure: Callable[..., config.Settings]) -> None:
    configure()
    checked = dpop.check(proof(jti="\ud800"), htm="POST", htu=REFRESH_URL, require_nonce=False)
    assert checked.fault is not None and checked.fault.reason == "bad_jti"


@pytest.mark.parametrize("cookie", ["²." + "x" * 10, "9999999999.é", "١٢٣٤٥٦٧٨٩٠.abc"])
def test_a_bound_cookie_with_unicode_digits_or_text_is_not_valid(configure: Callable[..., config.Settings],
                                                                 cookie: str) -> None:
    configure()
    assert dbsc.cookie_valid("a-session", cookie) is False


def test_a_dbsc_challenge_with_non_ascii_text_is_not_valid(configure: Callable[..., config.Settings]) -> None:
    configure()
    assert dbsc._challenge_valid("a-session", "é" * 10) is False


def test_an_answer_carrying_a_lone_surrogate_still_goes_out_as_json() -> None:
    text = json_text({"error": {"message": "kid \ud800 is unknown"}})
    assert json.loads(text)["error"]["message"] == "kid \ud800 is unknown"
    text.encode("utf-8")  # what Flask does with it


def test_a_pubsub_message_nested_too_deeply_is_malformed_not_a_crash() -> None:
    nested = ("[" * 100_000 + "]" * 100_000).encode()
    assert fanout.parse({"message": {"data": base64.b64encode(nested).decode(), "messageId": "1"}}) is None


@pytest.mark.parametrize("refusal", [core_exceptions.FailedPrecondition("The query requires an index"),
                                     core_exceptions.PermissionDenied("no"), core_exceptions.Cancelled("gone")])
def test_firestore_refusing_a_call_is_an_outage_not_a_500(refusal: Exception) -> None:
    outage = store.outage(refusal)
    assert outage is not None and (outage.code, outage.retry_after) == ("unavailable", 2)


def test_the_functions_own_credentials_failing_is_an_outage(configure: Callable[..., config.Settings],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from firebase_admin import auth
    from google.auth.exceptions import RefreshError

    from mydevices import account
    from mydevices.tokens import firebase

    configure(FIREBASE_AUTH_EMULATOR_HOST=None)

    def refused(*_: Any, **__: Any) -> None:
        raise RefreshError("the metadata server did not answer")

    monkeypatch.setattr(auth, "get_user", refused)
    monkeypatch.setattr(auth, "create_custom_token", refused)
    with pytest.raises(Refusal) as outage:
        account.why_ended("uid", clock.utcnow())
    assert outage.value.code == "unavailable"
    with pytest.raises(Refusal) as outage:
        firebase.custom_token("uid", "sid", "did", 0)
    assert outage.value.code == "unavailable"
