"""Access tokens as a client and a forger see them: what verifies, and how everything else is refused."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from mydevices.errors import Refusal
from mydevices.tokens import access, keys
from mydevices.tokens.access import AccessClaims

ISS, AUD = "mydevices", "mydevices-api"


def claims(**changes: object) -> AccessClaims:
    now = int(time.time())
    fields: dict[str, object] = {"uid": "u1", "sid": "s1", "did": "d1", "iat": now, "exp": now + 600}
    fields.update(changes)
    return AccessClaims(**fields)  # type: ignore[arg-type]


def issued(ring: keys.Keyring, **changes: object) -> str:
    return access.issue(ring, issuer=ISS, audience=AUD, claims=claims(**changes))


def refused(ring: keys.Keyring, token: str, **how: object) -> str:
    with pytest.raises(Refusal) as raised:
        access.verify(ring, token, issuer=str(how.get("issuer", ISS)), audience=str(how.get("audience", AUD)))
    return str(raised.value.code)


def test_a_token_verifies_to_the_claims_it_was_issued_with(ring: keys.Keyring) -> None:
    given = claims(jkt="thumb")
    token = access.issue(ring, issuer=ISS, audience=AUD, claims=given)
    assert access.verify(ring, token, issuer=ISS, audience=AUD) == given


def test_the_same_claims_give_the_same_token(ring: keys.Keyring) -> None:
    given = claims()
    first = access.issue(ring, issuer=ISS, audience=AUD, claims=given)
    assert access.issue(ring, issuer=ISS, audience=AUD, claims=given) == first


def test_a_bound_session_s_token_carries_its_key_thumbprint_for_other_backends(ring: keys.Keyring) -> None:
    payload = jwt.decode(issued(ring, jkt="abc"), options={"verify_signature": False})
    assert payload["cnf"] == {"jkt": "abc"}
    assert "cnf" not in jwt.decode(issued(ring), options={"verify_signature": False})


def test_an_expired_token_says_token_expired(ring: keys.Keyring) -> None:
    past = int(time.time()) - 3600
    assert refused(ring, issued(ring, iat=past, exp=past + 60)) == "token_expired"


def test_an_expired_token_still_verifies_where_expiry_is_allowed(ring: keys.Keyring) -> None:
    past = int(time.time()) - 3600
    token = issued(ring, iat=past, exp=past + 60)
    assert access.verify(ring, token, issuer=ISS, audience=AUD, expired_ok=True).uid == "u1"


def test_a_token_expired_within_the_leeway_still_passes(ring: keys.Keyring) -> None:
    now = int(time.time())
    assert access.verify(ring, issued(ring, exp=now - 10), issuer=ISS, audience=AUD).sid == "s1"


@pytest.mark.parametrize("how", [{"issuer": "someone-else"}, {"audience": "another-api"}])
def test_another_issuer_or_audience_is_refused(ring: keys.Keyring, how: dict[str, str]) -> None:
    assert refused(ring, issued(ring), **how) == "invalid_token"


def test_a_token_of_another_keyring_is_refused_as_an_unknown_key(ring: keys.Keyring) -> None:
    other = keys.parse_keyring(keys.generate_keyring_doc())
    assert refused(ring, issued(other)) == "invalid_token"


def test_a_tampered_payload_is_refused(ring: keys.Keyring) -> None:
    head, _, sig = issued(ring).split(".")
    forged = keys.b64url(json.dumps({"iss": ISS, "aud": AUD, "sub": "admin", "sid": "s", "did": "d",
                                     "iat": 1, "exp": 2**40}).encode())
    assert refused(ring, f"{head}.{forged}.{sig}") == "invalid_token"


def test_an_hs256_token_keyed_with_the_public_key_is_refused(ring: keys.Keyring) -> None:
    public = ring.current_signing.jwk()["x"]
    forged = jwt.encode({"iss": ISS, "aud": AUD, "sub": "u", "sid": "s", "did": "d", "iat": 1, "exp": 2**40},
                        public, algorithm="HS256", headers={"kid": ring.current_signing.kid})
    assert refused(ring, forged) == "invalid_token"


def test_an_unsigned_token_is_refused(ring: keys.Keyring) -> None:
    head = keys.b64url(json.dumps({"alg": "none", "kid": ring.current_signing.kid}).encode())
    body = keys.b64url(json.dumps({"iss": ISS, "aud": AUD, "sub": "u", "sid": "s", "did": "d",
                                   "iat": 1, "exp": 2**40}).encode())
    assert refused(ring, f"{head}.{body}.") == "invalid_token"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "....", "e30.e30.", "W10.e30.sig"])
def test_malformed_tokens_are_refused(ring: keys.Keyring, token: str) -> None:
    assert refused(ring, token) == "invalid_token"


def test_an_oversized_token_is_refused_before_it_is_parsed(ring: keys.Keyring) -> None:
    assert refused(ring, "a" * (access.MAX_TOKEN_LENGTH + 1)) == "invalid_token"


def test_a_header_nested_too_deeply_is_refused_not_a_crash(ring: keys.Keyring) -> None:
    head = keys.b64url(("[" * 100_000).encode())
    assert refused(ring, f"{head}.e30.sig") == "invalid_token"


@pytest.mark.parametrize("field", ["uid", "sid", "did"])
def test_a_claim_with_a_slash_cannot_name_another_document(ring: keys.Keyring, field: str) -> None:
    assert refused(ring, issued(ring, **{field: "../other"})) == "invalid_token"


def test_a_missing_claim_is_refused(ring: keys.Keyring) -> None:
    key = ring.current_signing
    token = jwt.encode({"iss": ISS, "aud": AUD, "sub": "u", "sid": "s", "iat": 1, "exp": 2**40},
                       key.private, algorithm="EdDSA", headers={"kid": key.kid})
    assert refused(ring, token) == "invalid_token"


def test_names_our_key_tells_our_tokens_from_others(ring: keys.Keyring) -> None:
    other = keys.parse_keyring(keys.generate_keyring_doc())
    assert access.names_our_key(ring, issued(ring))
    assert not access.names_our_key(ring, issued(other))
    assert not access.names_our_key(ring, "not-a-jwt")
    assert not access.names_our_key(ring, "a" * 5000)


def test_a_token_signed_with_a_retired_but_kept_key_still_verifies(ring: keys.Keyring) -> None:
    old = keys.parse_keyring(keys.generate_keyring_doc())
    token = issued(old)
    rotated = keys.Keyring((ring.current_signing, *old.signing), ring.hmac, ring.current_hmac_kid)
    assert access.verify(rotated, token, issuer=ISS, audience=AUD).uid == "u1"
