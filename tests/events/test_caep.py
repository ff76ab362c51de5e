"""CAEP session-revoked Security Event Tokens, end to end: real logins and closures through the api,
the trigger, the relay, one `caep-<name>` push subscription per receiver, deliver_webhook, and SSF
push receivers on loopback (RFC 8935: they take `application/secevent+jwt` and answer 202) that
verify every SET with PyJWT's PyJWKClient against the JWKS the running api publishes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from infra.local.stack import Stack
from mydevices.config import settings
from support.app_event_pipeline import delivering
from support.devices import IPAD, IPHONE, Device, signed_in
from support.push import EventFunctions
from support.waiting import wait_for

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


@dataclass
class SsfReceiver:
    """A push receiver: keeps every request (content type, SET), answers 500 to the first `failures`
    attempts of each SET (told apart by jti), then 202."""

    audience: str
    failures: int = 0
    got: list[tuple[str, str, int]] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                jti = str(jwt.decode(body, options={"verify_signature": False}).get("jti"))
                with owner.lock:
                    owner.tries[jti] = owner.tries.get(jti, 0) + 1
                    status = 500 if owner.tries[jti] <= owner.failures else 202
                    owner.got.append((self.headers.get("content-type") or "", body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ssf/push"

    def requests(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.got)


@pytest.fixture(scope="module")
def receivers(stack: Stack, event_functions: EventFunctions) -> Iterator[dict[str, SsfReceiver]]:
    found = {"idp": SsfReceiver("https://idp.example/ssf"), "flaky": SsfReceiver("https://proxy.example", 2)}
    config = {name: {"url": r.url, "audience": r.audience} for name, r in found.items()}
    env = {"MYDEVICES_CAEP_RECEIVERS_JSON": json.dumps(config), "MYDEVICES_WEBHOOK_TIMEOUT_SECONDS": "2"}
    with delivering(stack, env, "session-events-app-caep", {f"caep-{name}": 100 for name in found}):
        yield found
    for receiver in found.values():
        receiver.server.shutdown()
        receiver.server.server_close()


def verified(api: str, receiver: SsfReceiver, uid: str) -> list[tuple[dict[str, Any], dict[str, Any], int]]:
    """(header, claims, status answered) of every SET about this user, each verified with PyJWKClient
    against the api's published JWKS, for this receiver's audience and our issuer."""
    keys = jwt.PyJWKClient(f"{api}/.well-known/jwks.json")
    out = []
    for content_type, token, status in receiver.requests():
        assert content_type == "application/secevent+jwt"
        claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["EdDSA"],
                            audience=receiver.audience, issuer=settings().issuer,
                            options={"require": ["iss", "aud", "iat", "jti"]})
        if claims["sub_id"]["user"].get("id") == uid:
            out.append((jwt.get_unverified_header(token), claims, status))
    return out


def two_closures(api: str, sign_up: Callable[..., tuple[str, str]]) -> tuple[str, Device, Device]:
    """A user whose phone closes the tablet's session, then logs out: (uid, phone, tablet)."""
    uid, id_token = sign_up()
    phone = signed_in(api, id_token, IPHONE)
    tablet = signed_in(api, id_token, IPAD)
    assert phone.delete(f"/v1/sessions/{tablet.session_id}").status_code == 200
    assert phone.post("/v1/sessions/logout").status_code == 200
    return uid, phone, tablet


def test_each_closed_session_reaches_every_receiver_as_a_signed_session_revoked_set(
        api: str, receivers: dict[str, SsfReceiver], sign_up: Callable[..., tuple[str, str]]) -> None:
    uid, phone, tablet = two_closures(api, sign_up)
    idp = receivers["idp"]
    assert wait_for(lambda: len(verified(api, idp, uid)) >= 2, 60)
    sets = verified(api, idp, uid)
    assert len(sets) == 2  # the closures only: the logins send nothing
    for header, _, status in sets:
        assert (header["typ"], header["alg"], status) == ("secevent+jwt", "EdDSA", 202)
    (_, closed, _), (_, logout, _) = sets
    assert closed["sub_id"] == {"format": "complex", "user": {"format": "opaque", "id": uid},
                                "session": {"format": "opaque", "id": tablet.session_id}}
    assert logout["sub_id"]["session"] == {"format": "opaque", "id": phone.session_id}
    assert list(closed["events"]) == [SESSION_REVOKED]
    event = closed["events"][SESSION_REVOKED]
    assert (event["initiating_entity"], event["reason_admin"]) == ("user", {"en": "user_revoked"})
    assert isinstance(event["event_timestamp"], int) and abs(event["event_timestamp"] - closed["iat"]) < 60
    assert logout["events"][SESSION_REVOKED]["reason_admin"] == {"en": "logout"}
    assert closed["jti"] != logout["jti"]
    assert "@" not in json.dumps(closed)  # no email in the subject unless configured


def test_a_receiver_that_fails_gets_the_same_sets_in_order_with_the_same_jti_once_it_answers_202(
        api: str, receivers: dict[str, SsfReceiver], sign_up: Callable[..., tuple[str, str]]) -> None:
    uid, phone, tablet = two_closures(api, sign_up)
    flaky, idp = receivers["flaky"], receivers["idp"]
    assert wait_for(lambda: sum(status == 202 for _, _, status in verified(api, flaky, uid)) >= 2, 90)
    attempts = [(claims["jti"], claims["sub_id"]["session"]["id"], status)
                for _, claims, status in verified(api, flaky, uid)]
    first_jti = attempts[0][0]
    # each closure failed twice, then was taken, the same SET (same jti) every time; in order
    assert [(session, status) for _, session, status in attempts] == \
        [(sid, status) for sid in (tablet.session_id, phone.session_id) for status in (500, 500, 202)]
    assert [jti for jti, _, _ in attempts[:3]] == [first_jti] * 3
    assert len({jti for jti, _, _ in attempts[3:]} - {first_jti}) == 1
    # another receiver gets its own jti for the same event
    assert wait_for(lambda: len(verified(api, idp, uid)) >= 2, 30)
    assert first_jti not in {claims["jti"] for _, claims, _ in verified(api, idp, uid)}
