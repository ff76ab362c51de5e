"""DPoP proofs (device-bound sessions) and DBSC registration proofs, as a device and a thief send them."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from infra.bench import binding
from mydevices import dbsc, dpop
from mydevices.errors import Refusal
from mydevices.tokens.keys import b64url

HTU = "https://api.example.com/v1/sessions/refresh"


class DeviceKey(binding.DeviceKey):
    """The benchmark's device key, signing any header and payload (a forger's too)."""

    def sign(self, header: dict[str, Any], payload: dict[str, Any]) -> str:
        signed = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.private.sign(signed.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signed}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def claim(self, *, typ: str = dpop.TYPE, **claims: Any) -> str:
        payload = {"jti": uuid.uuid4().hex, "iat": int(time.time()), "htm": "POST", "htu": HTU,
                   "nonce": dpop.nonce(), **claims}
        return self.sign({"typ": typ, "alg": "ES256", "jwk": self.jwk}, {k: v for k, v in payload.items()
                                                                         if v is not None})


def reason(checked: dpop.Checked) -> str | None:
    return checked.fault.reason if checked.fault else None


def test_a_good_proof_proves_its_key() -> None:
    key = DeviceKey()
    checked = dpop.check(key.claim(), htm="POST", htu=HTU)
    assert (checked.present, checked.jkt, checked.fault) == (True, dpop.thumbprint(key.jwk), None)


def test_no_proof_is_absent_not_wrong() -> None:
    assert dpop.check(None, htm="POST", htu=HTU) == dpop.ABSENT
    assert dpop.check("  ", htm="POST", htu=HTU) == dpop.ABSENT


@pytest.mark.parametrize(("claims", "why"), [
    ({"htm": "GET"}, "wrong_method"), ({"htu": "https://evil.example.com/v1/sessions/refresh"}, "wrong_url"),
    ({"iat": int(time.time()) - 3600}, "stale"), ({"iat": "now"}, "bad_iat"), ({"iat": True}, "bad_iat"),
    ({"jti": ""}, "bad_jti"), ({"jti": "x" * 65}, "bad_jti"),
])
def test_a_proof_the_key_signed_for_another_request_is_the_device_s_fault(claims: dict[str, Any], why: str) -> None:
    checked = dpop.check(DeviceKey().claim(**claims), htm="POST", htu=HTU)
    assert checked.jkt is not None and reason(checked) == why
    assert checked.fault is not None and checked.fault.code == "invalid_dpop_proof"


def test_the_url_compares_without_query_and_case_blind_in_scheme_and_host() -> None:
    proof = DeviceKey().claim(htu="HTTPS://API.example.com/v1/sessions/refresh?x=1#f")
    assert dpop.check(proof, htm="POST", htu=HTU).fault is None
    assert reason(dpop.check(DeviceKey().claim(htu=HTU.upper()), htm="POST", htu=HTU)) == "wrong_url"


def test_a_proof_with_an_access_token_must_carry_its_hash() -> None:
    key = DeviceKey()
    ath = b64url(hashlib.sha256(b"the-token").digest())
    assert dpop.check(key.claim(ath=ath), htm="POST", htu=HTU, access_token="the-token").fault is None
    assert reason(dpop.check(key.claim(ath=ath), htm="POST", htu=HTU, access_token="another")) == "wrong_ath"
    assert reason(dpop.check(key.claim(), htm="POST", htu=HTU, access_token="the-token")) == "wrong_ath"


def test_a_proof_without_the_current_nonce_asks_for_it() -> None:
    checked = dpop.check(DeviceKey().claim(nonce=None), htm="POST", htu=HTU)
    assert checked.fault is not None and checked.fault.code == "use_dpop_nonce"
    assert dpop.nonce_valid(checked.fault.nonce or "")
    assert dpop.check(DeviceKey().claim(nonce=None), htm="POST", htu=HTU, require_nonce=False).fault is None


def test_a_nonce_lasts_its_window_and_the_next_only() -> None:
    now = 1_000_000.0
    issued = dpop.nonce(now)
    assert dpop.nonce_valid(issued, now + dpop.NONCE_WINDOW)
    assert not dpop.nonce_valid(issued, now + 2 * dpop.NONCE_WINDOW)
    assert not dpop.nonce_valid("1.forged", now) and not dpop.nonce_valid(None, now)


def test_a_proof_signed_by_another_key_than_its_header_names_proves_nothing() -> None:
    key, thief = DeviceKey(), DeviceKey()
    forged = thief.sign({"typ": dpop.TYPE, "alg": "ES256", "jwk": key.jwk},
                        {"jti": "j", "iat": int(time.time()), "htm": "POST", "htu": HTU})
    assert dpop.check(forged, htm="POST", htu=HTU) == dpop.Checked(present=True)


@pytest.mark.parametrize("proof", ["garbage", "a.b.c", "x" * (dpop.MAX_PROOF_LENGTH + 1), "e30.e30.e30"])
def test_malformed_proofs_are_present_but_prove_nothing(proof: str) -> None:
    assert dpop.check(proof, htm="POST", htu=HTU) == dpop.Checked(present=True)


def test_another_type_or_a_private_key_in_the_header_proves_nothing() -> None:
    key = DeviceKey()
    assert dpop.check(key.claim(typ="JWT"), htm="POST", htu=HTU).jkt is None
    leaked = {**key.jwk, "d": b64url(key.private.private_numbers().private_value.to_bytes(32, "big"))}
    proof = key.sign({"typ": dpop.TYPE, "alg": "ES256", "jwk": leaked}, {"jti": "j", "iat": int(time.time())})
    assert dpop.check(proof, htm="POST", htu=HTU).jkt is None


def test_a_replayed_proof_is_refused_and_old_ones_are_forgotten() -> None:
    now = time.time()
    checked = dpop.check(DeviceKey().claim(), htm="POST", htu=HTU, now=now)
    seen = dpop.remember([f"{int(now) - 3600} old"], checked, now)
    assert seen == [f"{checked.iat} {checked.jti}"]
    with pytest.raises(Refusal) as raised:
        dpop.remember(seen, checked, now)
    assert raised.value.code == "invalid_dpop_proof"


def test_a_login_key_is_a_public_p256_jwk() -> None:
    key = DeviceKey()
    assert dpop.parse_public_jwk({**key.jwk, "alg": "ES256", "ext": True, "key_ops": ["verify"]}) == key.jwk


@pytest.mark.parametrize(("change", "code"), [
    ({"d": "secret"}, "private_key_sent"), ({"crv": "P-384"}, "unsupported_key"), ({"kty": "RSA"}, "unsupported_key"),
    ({"alg": "RS256"}, "unsupported_key"), ({"x": b64url(b"\x01" * 32)}, "unsupported_key"),
    ({"extra": 1}, "invalid_request"),
])
def test_a_login_key_that_is_not_a_public_p256_point_is_refused(change: dict[str, Any], code: str) -> None:
    with pytest.raises(Refusal) as raised:
        dpop.parse_public_jwk({**DeviceKey().jwk, **change})
    assert raised.value.code == code


# --- DBSC -------------------------------------------------------------------------------------------


def dbsc_proof(key: DeviceKey, jti: Any, jwk: dict[str, str] | None = None) -> str:
    return key.sign({"typ": dbsc.TYPE, "alg": "ES256", **({"jwk": jwk} if jwk else {})}, {"jti": jti})


def test_a_refresh_answering_the_session_s_challenge_with_its_key_is_ok() -> None:
    key = DeviceKey()
    session = {"dbscJwk": key.jwk}
    assert dbsc.verify_refresh(session, "sid1", dbsc_proof(key, dbsc.challenge("sid1"))) == "ok"


def test_a_refresh_without_a_proof_gets_a_challenge_and_a_stale_one_another() -> None:
    key = DeviceKey()
    session = {"dbscJwk": key.jwk}
    assert dbsc.verify_refresh(session, "sid1", None) == "challenge"
    old = dbsc.challenge("sid1", time.time() - 3 * dbsc.CHALLENGE_WINDOW)
    assert dbsc.verify_refresh(session, "sid1", dbsc_proof(key, old)) == "challenge"
    assert dbsc.verify_refresh(session, "sid1", dbsc_proof(key, dbsc.challenge("another-sid"))) == "challenge"


def test_a_refresh_signed_by_another_key_or_for_an_unbound_session_is_wrong() -> None:
    key, thief = DeviceKey(), DeviceKey()
    proof = dbsc_proof(thief, dbsc.challenge("sid1"))
    assert dbsc.verify_refresh({"dbscJwk": key.jwk}, "sid1", proof) == "wrong"
    assert dbsc.verify_refresh({}, "sid1", proof) == "wrong"
    assert dbsc.verify_refresh({"dbscJwk": key.jwk}, "sid1", "not-a-jwt") == "wrong"


def test_a_registration_proof_carries_its_key_and_only_a_dbsc_jwt_parses() -> None:
    key = DeviceKey()
    parsed = dbsc.parse_proof(dbsc_proof(key, "c", key.jwk))
    assert parsed is not None and parsed.jwk == key.jwk and parsed.jti == "c"
    assert dbsc.parse_proof(key.claim()) is None  # a DPoP proof is not a DBSC one
    assert dbsc.parse_proof(None) is None and dbsc.parse_proof("x" * 5000) is None


def test_the_bound_cookie_is_for_its_session_and_expires(configure: Any) -> None:
    configure(MYDEVICES_DBSC_COOKIE_SECONDS="300")
    now = time.time()
    value = dbsc.cookie_value("sid1", now)
    assert dbsc.cookie_valid("sid1", value, now + 299)
    assert not dbsc.cookie_valid("sid1", value, now + 301)
    assert not dbsc.cookie_valid("sid2", value, now)
    assert not dbsc.cookie_valid("sid1", value[:-2] + "AA", now)


def test_a_bound_session_needs_its_fresh_cookie_an_unbound_one_does_not() -> None:
    dbsc.require_cookie({}, "sid1", None)
    dbsc.require_cookie({"dbscJwk": {"kty": "EC"}}, "sid1", dbsc.cookie_value("sid1"))
    with pytest.raises(Refusal) as raised:
        dbsc.require_cookie({"dbscJwk": {"kty": "EC"}}, "sid1", None)
    assert raised.value.code == "bound_cookie_required"
