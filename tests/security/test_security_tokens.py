"""Hostile tokens against the live `api` function: forged, confused, stale, oversized and
borrowed access tokens, refresh tokens and device ids. Each must get its specific JSON 4xx (the
error table of docs/api.md) and never a 500; a few controls show the same request passes when only the
hostile part is taken away, so a refusal is for the reason the case names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.local.stack import Stack
from mydevices.tokens import access, device_id
from mydevices.tokens.keys import Keyring, b64url, new_hmac_entry, parse_keyring
from support.devices import IPHONE, PIXEL, Device
from support.serving import serving

CURRENT = "/v1/sessions/current"


@dataclass
class World:
    """Two users, each signed in on one phone, and the keyring the api signs with."""

    api: str
    ring: Keyring
    keys_doc: dict[str, Any]
    issuer: str
    audience: str
    alice: Device
    alice_uid: str
    bob: Device
    bob_uid: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Alice's genuine access-token claims, with `overrides` (None removes a claim)."""
        genuine = jwt.decode(self.alice.access_token, options={"verify_signature": False})
        return {k: v for k, v in {**genuine, **overrides}.items() if v is not None}

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None,
             key: Ed25519PrivateKey | None = None) -> str:
        headers = {"kid": self.ring.current_signing.kid} if headers is None else headers
        return jwt.encode(claims, key or self.ring.current_signing.private, algorithm="EdDSA", headers=headers)

    def issue(self, uid: str, sid: str, did: str, iat: int | None = None) -> str:
        """A token the api itself would mint (same key, issuer, audience): only the claims are borrowed."""
        iat = int(time.time()) if iat is None else iat
        claims = access.AccessClaims(uid=uid, sid=sid, did=did, iat=iat, exp=iat + 600)
        return access.issue(self.ring, issuer=self.issuer, audience=self.audience, claims=claims)


@pytest.fixture(scope="module")
def world(api: str, stack: Stack) -> World:
    keys_doc = json.loads(Path(stack.env["MYDEVICES_KEYS_FILE"]).read_text(encoding="utf-8"))
    alice_uid, alice_token = stack.auth.sign_up()
    bob_uid, bob_token = stack.auth.sign_up()
    alice, bob = Device(api, dict(IPHONE)), Device(api, dict(PIXEL))
    alice.login(alice_token)
    bob.login(bob_token)
    payload = jwt.decode(alice.access_token, options={"verify_signature": False})
    return World(api, parse_keyring(keys_doc), keys_doc, payload["iss"], payload["aud"], alice, alice_uid, bob,
                 bob_uid)


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def part(value: dict[str, Any]) -> str:
        return b64url(json.dumps(value, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}.{b64url(signature)}"


def _jws(world: World, header: dict[str, Any], claims: dict[str, Any] | None = None) -> str:
    """Signed with the real key, whatever the header says (PyJWT refuses to write some headers)."""
    unsigned = _unsigned({"alg": "EdDSA", **header}, claims or world.claims()).rsplit(".", 1)[0]
    return f"{unsigned}.{b64url(world.ring.current_signing.private.sign(unsigned.encode()))}"


def _hs256(world: World, secret: bytes, kid: str | None = None) -> str:
    """The classic key-confusion forgery: HMAC-SHA256 keyed with the *public* key."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid or world.ring.current_signing.kid}
    unsigned = _unsigned(header, world.claims()).rsplit(".", 1)[0]
    return f"{unsigned}.{b64url(hmac.new(secret, unsigned.encode(), hashlib.sha256).digest())}"


def _public(world: World, encoding: serialization.Encoding, fmt: serialization.PublicFormat) -> bytes:
    return world.ring.current_signing.public.public_bytes(encoding, fmt)


def _jwks_x(world: World) -> bytes:
    """The public key exactly as /.well-known/jwks.json publishes it."""
    keys = requests.get(f"{world.api}/.well-known/jwks.json", timeout=10).json()["keys"]
    return str(keys[0]["x"]).encode()


def _flip_last_signature_char(token: str) -> str:
    head, _, signature = token.rpartition(".")
    return f"{head}.{signature[:-2]}{'B' if signature[-2] == 'A' else 'A'}{signature[-1]}"


ATTACKER = Ed25519PrivateKey.generate()
NOW = int(time.time())
Forge = Callable[[World], str]

# name -> (forge the token, expected status, expected code)
HOSTILE_ACCESS_TOKENS: dict[str, tuple[Forge, int, str]] = {
    "alg-none-real-kid": (lambda w: _unsigned({"alg": "none", "kid": w.ring.current_signing.kid}, w.claims()),
                          401, "invalid_token"),
    "alg-none-no-kid": (lambda w: _unsigned({"alg": "none"}, w.claims()), 401, "invalid_token"),
    "alg-None-capitalised": (lambda w: _unsigned({"alg": "None", "kid": w.ring.current_signing.kid}, w.claims()),
                             401, "invalid_token"),
    "alg-none-with-signature-kept": (
        lambda w: _unsigned({"alg": "none", "kid": w.ring.current_signing.kid}, w.claims())
        + w.alice.access_token.rsplit(".", 1)[1], 401, "invalid_token"),
    "hs256-keyed-with-jwks-x": (lambda w: _hs256(w, _jwks_x(w)), 401, "invalid_token"),
    "hs256-keyed-with-raw-public-key": (
        lambda w: _hs256(w, _public(w, serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
        401, "invalid_token"),
    "hs256-keyed-with-pem-public-key": (
        lambda w: _hs256(w, _public(w, serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
        401, "invalid_token"),
    "rs256-header": (lambda w: _unsigned({"alg": "RS256", "kid": w.ring.current_signing.kid}, w.claims(), b"x" * 256),
                     401, "invalid_token"),
    "unknown-kid-attacker-key": (lambda w: w.sign(w.claims(), {"kid": "sig-attacker"}, ATTACKER), 401,
                                 "invalid_token"),
    "real-kid-attacker-key": (lambda w: w.sign(w.claims(), key=ATTACKER), 401, "invalid_token"),
    "embedded-jwk-attacker-key": (
        lambda w: w.sign(w.claims(), {"kid": "sig-attacker", "jwk": {
            "kty": "OKP", "crv": "Ed25519", "kid": "sig-attacker",
            "x": b64url(ATTACKER.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
        }}, ATTACKER), 401, "invalid_token"),
    "jku-pointing-elsewhere": (
        lambda w: w.sign(w.claims(), {"kid": w.ring.current_signing.kid, "jku": "http://127.0.0.1:9/jwks.json"},
                         ATTACKER), 401, "invalid_token"),
    "kid-path-traversal": (lambda w: w.sign(w.claims(), {"kid": "../../../../../../etc/passwd"}), 401,
                           "invalid_token"),
    "kid-dev-null": (lambda w: w.sign(w.claims(), {"kid": "/dev/null"}, ATTACKER), 401, "invalid_token"),
    "kid-sql-tautology": (lambda w: w.sign(w.claims(), {"kid": "' OR '1'='1"}), 401, "invalid_token"),
    "kid-sql-union": (lambda w: w.sign(w.claims(), {"kid": "x' UNION SELECT 'key' --"}), 401, "invalid_token"),
    "kid-number": (lambda w: _jws(w, {"kid": 1}), 401, "invalid_token"),
    "kid-null": (lambda w: _jws(w, {"kid": None}), 401, "invalid_token"),
    "kid-object": (lambda w: _jws(w, {"kid": {"$ne": ""}}), 401, "invalid_token"),
    "kid-list": (lambda w: _jws(w, {"kid": [w.ring.current_signing.kid]}), 401, "invalid_token"),
    "wrong-issuer": (lambda w: w.sign(w.claims(iss="https://evil.example")), 401, "invalid_token"),
    "wrong-audience": (lambda w: w.sign(w.claims(aud="another-api")), 401, "invalid_token"),
    "no-audience": (lambda w: w.sign(w.claims(aud=None)), 401, "invalid_token"),
    "no-session-claim": (lambda w: w.sign(w.claims(sid=None)), 401, "invalid_token"),
    "session-claim-a-path": (lambda w: w.sign(w.claims(sid="../sessions/x")), 401, "invalid_token"),
    "session-claim-a-number": (lambda w: w.sign(w.claims(sid=12345)), 401, "invalid_token"),
    "expired": (lambda w: w.sign(w.claims(iat=NOW - 7200, exp=NOW - 3600)), 401, "token_expired"),
    "expired-beyond-leeway": (lambda w: w.sign(w.claims(iat=NOW - 700, exp=int(time.time()) - 60)), 401,
                              "token_expired"),
    "issued-in-the-future": (lambda w: w.sign(w.claims(iat=int(time.time()) + 600, exp=int(time.time()) + 1200)),
                             401, "invalid_token"),
    "not-before-in-the-future": (lambda w: w.sign(w.claims(nbf=int(time.time()) + 600)), 401, "invalid_token"),
    "exp-not-a-number": (lambda w: w.sign(w.claims(exp="tomorrow")), 401, "invalid_token"),
    "truncated-signature": (lambda w: w.alice.access_token[:-10], 401, "invalid_token"),
    "truncated-to-two-parts": (lambda w: w.alice.access_token.rsplit(".", 1)[0], 401, "invalid_token"),
    "truncated-to-the-header": (lambda w: w.alice.access_token.split(".", 1)[0], 401, "invalid_token"),
    "signature-bit-flipped": (lambda w: _flip_last_signature_char(w.alice.access_token), 401, "invalid_token"),
    "claims-swapped-signature-kept": (
        lambda w: ".".join([w.alice.access_token.split(".")[0], _unsigned({}, w.claims(sub=w.bob_uid)).split(".")[1],
                            w.alice.access_token.split(".")[2]]), 401, "invalid_token"),
    "garbage": (lambda w: "not.a.jwt", 401, "invalid_token"),
    "six-kilobytes": (lambda w: w.alice.access_token + "A" * 6000, 401, "invalid_token"),
    # Borrowed claims: genuinely signed tokens whose claims point at someone else.
    "alice-with-bobs-session-id": (lambda w: w.issue(w.alice_uid, w.bob.session_id, _raw(w.alice.device_id)), 401,
                                   "invalid_token"),
    "bob-with-alices-device": (lambda w: w.issue(w.bob_uid, w.bob.session_id, _raw(w.alice.device_id)), 401,
                               "invalid_token"),
    "alice-with-bobs-device": (lambda w: w.issue(w.alice_uid, w.alice.session_id, _raw(w.bob.device_id)), 401,
                               "invalid_token"),
}

# The same requests with nothing hostile left pass: the refusals above are for what they name.
CONTROLS: dict[str, Forge] = {
    "genuine": lambda w: w.alice.access_token,
    "expired-within-leeway": lambda w: w.sign(w.claims(exp=int(time.time()) - 5)),
    "issued-within-leeway": lambda w: w.sign(w.claims(iat=int(time.time()) + 10)),
    "hand-made-with-the-real-kid": lambda w: _jws(w, {"kid": w.ring.current_signing.kid, "typ": "JWT"}),
    "reissued-with-the-same-claims": lambda w: w.issue(w.alice_uid, w.alice.session_id, _raw(w.alice.device_id)),
}


def _raw(signed_device_id: str) -> str:
    return signed_device_id.split(".", 1)[0]


def _expect(response: requests.Response, status: int, code: str) -> None:
    assert (response.status_code, response.headers.get("Content-Type")) == (status, "application/json"), \
        response.text[:300]
    assert response.json()["error"]["code"] == code, response.text[:300]


@pytest.mark.parametrize(("forge", "status", "code"), HOSTILE_ACCESS_TOKENS.values(),
                         ids=HOSTILE_ACCESS_TOKENS.keys())
def test_hostile_access_tokens_are_refused_with_their_code(world: World, forge: Forge, status: int, code: str) -> None:
    token = forge(world)
    response = requests.get(f"{world.api}{CURRENT}", timeout=30,
                            headers={"Authorization": f"Bearer {token}", "X-Device-Id": world.alice.device_id})
    _expect(response, status, code)
    # The same token in the web cookie meets the same checks.
    cookie = requests.get(f"{world.api}{CURRENT}", timeout=30, cookies={
        "__Host-mydevices-at": token, "__Host-mydevices-did": world.alice.device_id})
    _expect(cookie, status, code)


@pytest.mark.parametrize("forge", CONTROLS.values(), ids=CONTROLS.keys())
def test_controls_pass(world: World, forge: Forge) -> None:
    response = requests.get(f"{world.api}{CURRENT}", timeout=30,
                            headers={"Authorization": f"Bearer {forge(world)}", "X-Device-Id": world.alice.device_id})
    assert response.status_code == 200, response.text
    assert response.json()["sessionId"] == world.alice.session_id


def test_a_100_kb_token_is_refused_by_the_server_before_our_code_and_never_echoed(world: World) -> None:
    token = world.alice.access_token + "A" * 100_000
    as_header = requests.get(f"{world.api}{CURRENT}", timeout=30,
                             headers={"Authorization": f"Bearer {token}", "X-Device-Id": world.alice.device_id})
    as_cookie = requests.get(f"{world.api}{CURRENT}", timeout=30, cookies={"__Host-mydevices-at": token})
    for response in (as_header, as_cookie):
        # gunicorn (functions-framework's server, in production too) caps a header at 8190 bytes.
        assert response.status_code == 431, response.text[:300]
        assert len(response.content) < 1000 and b"AAAAAAAAAA" not in response.content
    body = requests.post(f"{world.api}/v1/sessions/refresh", json={"refreshToken": "A" * 100_000}, timeout=30,
                         headers={"X-Device-Id": world.alice.device_id})
    _expect(body, 413, "payload_too_large")


BAD_AUTHORIZATION = {
    "empty-bearer": "Bearer ",
    "basic": "Basic YWxpY2U6c2VjcmV0",
    "no-scheme": "eyJhbGciOiJFZERTQSJ9.e30.x",
    "token-scheme": "Token abc",
}


@pytest.mark.parametrize("value", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
def test_an_authorization_header_that_is_not_bearer_is_unauthenticated(world: World, value: str) -> None:
    response = requests.get(f"{world.api}{CURRENT}", timeout=30,
                            headers={"Authorization": value, "X-Device-Id": world.alice.device_id})
    _expect(response, 401, "unauthenticated")


# --- device ids ----------------------------------------------------------------------------------


def _tamper(signed: str, part: int) -> str:
    pieces = signed.split(".")
    text = pieces[part]
    pieces[part] = text[:-1] + ("A" if text[-1] != "A" else "B")
    return ".".join(pieces)


HOSTILE_DEVICE_IDS: dict[str, Callable[[World], str]] = {
    "id-tampered": lambda w: _tamper(w.alice.device_id, 0),
    "key-id-tampered": lambda w: _tamper(w.alice.device_id, 1),
    "mac-tampered": lambda w: _tamper(w.alice.device_id, 2),
    "mac-removed": lambda w: w.alice.device_id.rsplit(".", 1)[0],
    "mac-of-another-id": lambda w: ".".join([_raw(w.bob.device_id), *w.alice.device_id.split(".")[1:]]),
    "path-traversal": lambda w: "../../users/x/devices/y.mac.z",
    "sql": lambda w: "' OR 1=1 --.mac-x.y",
    "one-kilobyte": lambda w: w.alice.device_id + "A" * 1000,
    "empty": lambda w: "",
}


@pytest.mark.parametrize("forge", HOSTILE_DEVICE_IDS.values(), ids=HOSTILE_DEVICE_IDS.keys())
def test_a_tampered_device_id_is_an_unknown_device_and_gets_a_fresh_one(world: World,
                                                                           forge: Callable[[World], str]) -> None:
    forged = forge(world)
    response = requests.get(f"{world.api}{CURRENT}", timeout=30,
                            headers={"Authorization": f"Bearer {world.alice.access_token}", "X-Device-Id": forged})
    _expect(response, 401, "unknown_device")
    fresh = response.headers["X-Device-Id"]
    assert device_id.verify(world.ring, fresh) not in (None, _raw(world.alice.device_id))
    refresh = requests.post(f"{world.api}/v1/sessions/refresh", json={"refreshToken": world.alice.refresh_token},
                            headers={"X-Device-Id": forged}, timeout=30)
    _expect(refresh, 401, "unknown_device")


def test_a_token_carried_to_another_users_device_is_refused(world: World) -> None:
    response = requests.get(f"{world.api}{CURRENT}", timeout=30, headers={
        "Authorization": f"Bearer {world.alice.access_token}", "X-Device-Id": world.bob.device_id})
    _expect(response, 401, "invalid_token")


# --- refresh tokens --------------------------------------------------------------------------------


def _with_secret(token: str, secret: str) -> str:
    return token.rsplit(".", 1)[0] + "." + secret


HOSTILE_REFRESH_TOKENS: dict[str, tuple[Callable[[World], Any], int, str]] = {
    "bobs-session-alices-secret": (lambda w: _with_secret(w.bob.refresh_token, w.alice.refresh_token.rsplit(".")[2]),
                                   401, "invalid_token"),
    "generation-bumped": (lambda w: w.alice.refresh_token.replace(".0.", ".1.", 1), 401, "invalid_token"),
    "generation-huge": (lambda w: w.alice.refresh_token.replace(".0.", ".999999999.", 1), 401, "invalid_token"),
    "secret-truncated": (lambda w: w.alice.refresh_token[:-5], 401, "invalid_token"),
    "firestore-reserved-session-id": (lambda w: "__" + "A" * 18 + "__.0." + "A" * 43, 401, "invalid_token"),
    "path-traversal": (lambda w: "../../sessionSecrets/x.0." + "A" * 43, 401, "invalid_token"),
    "sql": (lambda w: "' OR '1'='1", 401, "invalid_token"),
    "six-kilobytes": (lambda w: "A" * 6000, 401, "invalid_token"),
    "empty": (lambda w: "", 401, "unauthenticated"),
    "number": (lambda w: 12345, 400, "invalid_request"),
    "object": (lambda w: {"$gt": ""}, 400, "invalid_request"),
}


@pytest.mark.parametrize(("forge", "status", "code"), HOSTILE_REFRESH_TOKENS.values(),
                         ids=HOSTILE_REFRESH_TOKENS.keys())
def test_hostile_refresh_tokens_are_refused_with_their_code(world: World, forge: Callable[[World], Any], status: int,
                                                            code: str) -> None:
    response = requests.post(f"{world.api}/v1/sessions/refresh", json={"refreshToken": forge(world)},
                             headers={"X-Device-Id": world.alice.device_id}, timeout=30)
    _expect(response, status, code)


def test_a_refresh_token_presented_with_another_users_device_id_is_refused(world: World, stack: Stack) -> None:
    _, id_token = stack.auth.sign_up()
    carol = Device(world.api, dict(IPHONE))
    carol.login(id_token)
    stolen = requests.post(f"{world.api}/v1/sessions/refresh", json={"refreshToken": carol.refresh_token},
                           headers={"X-Device-Id": world.bob.device_id}, timeout=30)
    _expect(stolen, 401, "invalid_token")
    assert carol.refresh().status_code == 200  # not used up by the attempt: its own device still refreshes


# --- a device id signed with a key that has been rotated out ---------------------------------------


@pytest.fixture(scope="module")
def rotated_api(world: World, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Keyring]]:
    """A second api whose keyring keeps the signing key but replaced the HMAC key (old one gone)."""
    doc = {"signing": world.keys_doc["signing"], "hmac": [new_hmac_entry()]}
    path = tmp_path_factory.mktemp("rotated") / "keys.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with serving(stack, "api", {"MYDEVICES_KEYS_FILE": str(path)}) as server:
        yield server.url, parse_keyring(doc)


def test_a_device_id_signed_with_a_retired_key_is_an_unknown_device(world: World,
                                                                     rotated_api: tuple[str, Keyring]) -> None:
    url, ring = rotated_api
    bearer = {"Authorization": f"Bearer {world.alice.access_token}"}
    old = requests.get(f"{url}{CURRENT}", headers={**bearer, "X-Device-Id": world.alice.device_id}, timeout=30)
    _expect(old, 401, "unknown_device")
    assert old.headers["X-Device-Id"].split(".")[1] == ring.current_hmac_kid  # the fresh id uses the new key
    refresh = requests.post(f"{url}/v1/sessions/refresh", json={"refreshToken": world.alice.refresh_token},
                            headers={"X-Device-Id": world.alice.device_id}, timeout=30)
    _expect(refresh, 401, "unknown_device")
    # Control: the same device id signed with the new key is accepted by that server.
    resigned = device_id.sign(ring, _raw(world.alice.device_id))
    ok = requests.get(f"{url}{CURRENT}", headers={**bearer, "X-Device-Id": resigned}, timeout=30)
    assert ok.status_code == 200, ok.text


def test_a_login_with_a_retired_device_id_gets_a_new_device_id(world: World, stack: Stack,
                                                               rotated_api: tuple[str, Keyring]) -> None:
    url, ring = rotated_api
    _, id_token = stack.auth.sign_up()
    phone = Device(url, dict(IPHONE), device_id=world.alice.device_id)
    phone.login(id_token)
    assert _raw(phone.device_id) != _raw(world.alice.device_id)
    assert device_id.verify(ring, phone.device_id) == _raw(phone.device_id)


# --- action tokens (the "Was that you?" answer) -----------------------------------------------------

HOSTILE_ACTION_TOKENS: dict[str, tuple[Callable[[World], Any], int, str]] = {
    "an-access-token": (lambda w: w.alice.access_token, 401, "invalid_token"),
    "alg-none": (lambda w: _unsigned({"alg": "none", "kid": next(iter(w.ring.hmac))}, {
        "iss": w.issuer, "aud": "mydevices-alert", "sub": w.alice_uid, "sid": w.alice.session_id,
        "nsid": w.bob.session_id, "jti": "x", "iat": NOW, "exp": NOW + 600}), 401, "invalid_token"),
    "hs256-with-the-raw-hmac-key": (lambda w: jwt.encode(
        {"iss": w.issuer, "aud": "mydevices-alert", "sub": w.alice_uid, "sid": w.alice.session_id,
         "nsid": w.bob.session_id, "jti": "x", "iat": NOW, "exp": NOW + 600},
        w.ring.current_hmac, algorithm="HS256", headers={"kid": w.ring.current_hmac_kid}), 401, "invalid_token"),
    "lone-surrogate": (lambda w: "\ud800.x.y", 400, "invalid_request"),
    "three-kilobytes": (lambda w: "A" * 3000, 401, "invalid_token"),
    "number": (lambda w: 1, 400, "invalid_request"),
}


@pytest.mark.parametrize(("forge", "status", "code"), HOSTILE_ACTION_TOKENS.values(),
                         ids=HOSTILE_ACTION_TOKENS.keys())
def test_hostile_action_tokens_are_refused_with_their_code(world: World, forge: Callable[[World], Any], status: int,
                                                           code: str) -> None:
    body = json.dumps({"actionToken": forge(world), "answer": "no"}).encode()  # json escapes the surrogate
    response = requests.post(f"{world.api}/v1/alerts/respond", data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    _expect(response, status, code)


# --- Firebase users whose uid cannot name a Firestore document ---------------------------------


def _id_token_of_new_user(stack: Stack, uid: str) -> str:
    """A user created with this exact uid (accounts:signUp picks its own), signed in as the
    Firebase SDK would: a custom token exchanged at the Auth emulator."""
    from firebase_admin import auth

    from mydevices.firebase_app import app

    auth.create_user(uid=uid, app=app())
    custom = auth.create_custom_token(uid, app=app())
    answer = requests.post(
        f"http://{stack.auth.host}/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=any",
        json={"token": custom.decode() if isinstance(custom, bytes) else custom, "returnSecureToken": True},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["idToken"])


RESERVED_UIDS = {"dunder": "__x__", "dunder-long": "__reserved_by_firestore__", "dot": ".", "dot-dot": "..",
                 "slash": "a/b", "slash-first": "/x"}


@pytest.mark.parametrize("uid", RESERVED_UIDS.values(), ids=RESERVED_UIDS.keys())
def test_a_user_whose_uid_firestore_reserves_gets_a_clear_403_at_login(api: str, stack: Stack, uid: str) -> None:
    id_token = _id_token_of_new_user(stack, uid)  # each stack has its own Auth emulator: a new user
    answer = requests.post(f"{api}/v1/sessions", json={"device": IPHONE},
                           headers={"Authorization": f"Bearer {id_token}"}, timeout=30)
    assert (answer.status_code, answer.headers["Content-Type"]) == (403, "application/json"), answer.text
    assert answer.json()["error"]["code"] == "unsupported_uid"


def test_a_uid_of_the_longest_length_firebase_allows_signs_in(api: str, stack: Stack) -> None:
    """128 characters is Firebase's own limit (it refuses to create a longer uid); it names a
    document fine, so it must not be refused along with the reserved ones."""
    from firebase_admin import auth

    from mydevices.firebase_app import app

    uid = hashlib.sha256(str(time.time()).encode()).hexdigest() * 2
    assert len(uid) == 128
    answer = requests.post(f"{api}/v1/sessions", json={"device": IPHONE},
                           headers={"Authorization": f"Bearer {_id_token_of_new_user(stack, uid)}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    with pytest.raises(ValueError, match="128"):
        auth.create_user(uid=uid + "x", app=app())
