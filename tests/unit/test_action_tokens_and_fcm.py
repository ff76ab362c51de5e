"""Alert action tokens (what lets an alerted device answer) and how FCM's errors are sorted."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from firebase_admin import exceptions, messaging

from mydevices.config import Settings
from mydevices.errors import Refusal
from mydevices.push import fcm
from mydevices.tokens import action, keys


def refused(token: Any) -> str:
    with pytest.raises(Refusal) as raised:
        action.verify(token)
    return str(raised.value.code)


def test_an_action_token_names_the_user_the_alerted_and_the_new_session() -> None:
    claims = action.verify(action.issue("alice", "s-alerted", "s-new"))
    assert (claims["sub"], claims["sid"], claims["nsid"], claims["aud"]) == ("alice", "s-alerted", "s-new",
                                                                            action.AUDIENCE)


def test_an_expired_action_token_says_so() -> None:
    assert refused(action.issue("alice", "a", "b", now=int(time.time()) - 3 * 24 * 3600)) == "token_expired"


def test_an_action_token_of_another_keyring_is_refused() -> None:
    ring = keys.parse_keyring(keys.generate_keyring_doc())
    forged = jwt.encode({"sub": "alice"}, ring.current_hmac, algorithm="HS256",
                        headers={"kid": ring.current_hmac_kid})
    assert refused(forged) == "invalid_token"


def test_an_action_token_signed_with_the_raw_hmac_key_is_refused(ring: keys.Keyring) -> None:
    now = int(time.time())
    forged = jwt.encode({"iss": "mydevices", "aud": action.AUDIENCE, "sub": "alice", "sid": "a", "nsid": "b",
                         "jti": "j", "iat": now, "exp": now + 60}, ring.current_hmac, algorithm="HS256",
                        headers={"kid": ring.current_hmac_kid})
    assert refused(forged) == "invalid_token"


def test_an_access_token_is_not_an_action_token(ring: keys.Keyring) -> None:
    from mydevices.tokens import access

    now = int(time.time())
    token = access.issue(ring, issuer="mydevices", audience="mydevices-api",
                                claims=access.AccessClaims("alice", "a", "d", now, now + 60))
    assert refused(token) == "invalid_token"


@pytest.mark.parametrize("token", [None, "", 42, "garbage", "a.b.c", "x" * (action.MAX_TOKEN_LENGTH + 1)])
def test_malformed_action_tokens_are_refused(token: Any) -> None:
    assert refused(token) == "invalid_token"


# --- moved from the emulator tier: they never needed it ---------------------------------------


def test_a_token_is_bound_to_user_alerted_session_and_new_session() -> None:
    claims = action.verify(action.issue("alice", "phone", "new"))
    assert (claims["sub"], claims["sid"], claims["nsid"]) == ("alice", "phone", "new")
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert jwt.get_unverified_header(action.issue("alice", "phone", "new"))["alg"] == "HS256"
    assert action.verify(action.issue("alice", "phone", "new"))["jti"] != claims["jti"]


def test_the_lifetime_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYDEVICES_ACTION_TOKEN_TTL_SECONDS", "60")
    assert Settings.from_env().action_token_ttl == 60


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-3] + ("aaa" if not t.endswith("aaa") else "bbb"),  # signature
    lambda t: t.split(".")[0] + "." + jwt.utils.base64url_encode(b'{"sub":"mallory"}').decode() + "." + t.split(".")[2],
    lambda t: "not-a-token",
    lambda t: "",
    lambda t: None,
    lambda t: 42,
    lambda t: "x" * 5000,
])
def test_a_malformed_or_tampered_token_is_invalid(mangle: Any) -> None:
    token = mangle(action.issue("alice", "phone", "new"))
    assert refused(token) == "invalid_token"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 with a 32-byte key, on purpose
def test_other_algorithms_and_other_tokens_are_refused() -> None:
    ring = keys.keyring()
    claims = jwt.decode(action.issue("alice", "phone", "new"), options={"verify_signature": False})
    header = {"kid": ring.current_hmac_kid}
    unsigned = jwt.encode(claims, "", algorithm="none", headers=header)
    raw_key = jwt.encode(claims, ring.current_hmac, algorithm="HS256", headers=header)  # not the derived key
    hs512 = jwt.encode(claims, action._key(ring.current_hmac), algorithm="HS512", headers=header)
    access_like = jwt.encode(claims, ring.current_signing.private, algorithm="EdDSA", headers=header)
    other_audience = jwt.encode({**claims, "aud": "mydevices-api"}, action._key(ring.current_hmac), algorithm="HS256",
                                headers=header)
    for token in (unsigned, raw_key, hs512, access_like, other_audience):
        assert refused(token) == "invalid_token"


def test_tokens_survive_a_key_rotation_and_die_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    old_ring = keys.keyring()
    token = action.issue("alice", "phone", "new")
    fresh_key = keys.new_hmac_entry()
    rotated = keys.Keyring(old_ring.signing, {fresh_key["kid"]: keys.b64url_decode(fresh_key["secret"]),
                                              **old_ring.hmac}, fresh_key["kid"])
    monkeypatch.setattr(action, "keyring", lambda: rotated)
    assert action.verify(token)["sid"] == "phone"
    assert jwt.get_unverified_header(action.issue("alice", "phone", "new"))["kid"] == fresh_key["kid"]
    retired = keys.Keyring(old_ring.signing, {fresh_key["kid"]: keys.b64url_decode(fresh_key["secret"])},
                           fresh_key["kid"])
    monkeypatch.setattr(action, "keyring", lambda: retired)
    assert refused(token) == "invalid_token"


def test_only_sessions_older_than_the_new_one_are_asked_about_it() -> None:
    from datetime import UTC, datetime, timedelta

    new = datetime.now(UTC)
    assert action.earlier(new - timedelta(seconds=1), new)
    assert not action.earlier(new, new)
    assert not action.earlier(new + timedelta(seconds=1), new)
    assert not action.earlier(None, new)


# --- FCM errors ------------------------------------------------------------------------------------


class Answer:
    """What firebase-admin keeps of FCM's HTTP answer: its status and its JSON body."""

    def __init__(self, status: int, details: list[dict[str, Any]]) -> None:
        self.status_code = status
        self._body = {"error": {"details": details}}

    def json(self) -> dict[str, Any]:
        return self._body


FCM_INVALID = {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"}


def violation(field: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": field}]}


def invalid(*details: dict[str, Any]) -> exceptions.InvalidArgumentError:
    return exceptions.InvalidArgumentError("bad", http_response=Answer(400, list(details)))


@pytest.mark.parametrize(("error", "dead"), [
    (messaging.UnregisteredError("gone"), True),
    (messaging.SenderIdMismatchError("other project"), True),
    (invalid(FCM_INVALID), True),
    (invalid(FCM_INVALID, violation("message.token")), True),
    (invalid(FCM_INVALID, violation("message.data")), False),  # our payload's fault, not the token's
    (invalid(violation("message.token")), False),
    (exceptions.InvalidArgumentError("bad"), False),
    (exceptions.UnavailableError("down"), False),
    (ValueError("x"), False),
])
def test_only_errors_about_the_token_make_it_dead(error: BaseException, dead: bool) -> None:
    assert fcm.is_dead_token(error) is dead


@pytest.mark.parametrize(("error", "transient"), [
    (exceptions.UnavailableError("down"), True),
    (exceptions.InternalError("oops"), True),
    (exceptions.ResourceExhaustedError("quota", http_response=Answer(429, [])), True),
    (exceptions.UnknownError("?", http_response=Answer(502, [])), True),
    (messaging.UnregisteredError("gone"), False),
    (invalid(FCM_INVALID), False),
    (exceptions.PermissionDeniedError("no", http_response=Answer(403, [])), False),
])
def test_transient_errors_are_the_ones_worth_retrying(error: BaseException, transient: bool) -> None:
    assert fcm.is_transient(error) is transient
