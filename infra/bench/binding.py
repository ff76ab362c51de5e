"""9. Device binding: what a DPoP-bound refresh costs against an unbound one, side by side.

Both sides are the api's real refresh path in this process (routing, parsing, the refresh
transaction with its Auth lookup, the emulated Firestore), interleaved call for call
(stats.interleaved), so the ratio is what binding adds: the proof's ES256 verification, the
nonce HMAC and the replay list kept in the sessionSecrets document the transaction writes
anyway. The client's signing is not timed: every proof is made before the timed calls (a
phone's Keystore signs on the device, not on our server). Also timed alone, in microseconds:
`dpop.check`, the replay list (`dpop.remember`), and, for the choice between them, the
alternative replay check: a create-if-absent document per proof (a write round trip of its own).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from infra.bench import stats
from infra.bench.inproc_api import Device, InProcessApi
from infra.local.stack import IPHONE, Stack

TARGET = 1.1  # a bound refresh within 1.1x an unbound one
SESSIONS = 20  # sessions of each kind the timed refreshes take turns on
REFRESH = "/v1/sessions/refresh"
HTU = "http://localhost" + REFRESH  # the Flask test client's host


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DeviceKey:
    """An ES256 key made by `cryptography`, signing DPoP proofs as a device would."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {"kty": "EC", "crv": "P-256", "x": _b64(numbers.x.to_bytes(32, "big")),
                    "y": _b64(numbers.y.to_bytes(32, "big"))}

    def proof(self, nonce: str, htu: str = HTU, htm: str = "POST", **claims: Any) -> str:
        """A proof of this key; `claims` replace or add to the usual ones (a hostile client's)."""
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}
        payload = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time()), "nonce": nonce,
                   **claims}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _bound_device(api: InProcessApi, id_token: str, key: DeviceKey) -> Device:
    device = Device(api, dict(IPHONE))
    answer = api.call("POST", "/v1/sessions", body={"device": device.info, "devicePublicKey": key.jwk},
                      headers={"Authorization": f"Bearer {id_token}"}, expect=201)
    device.device_id = answer.body["deviceId"]
    device.access_token = answer.body["accessToken"]
    device.refresh_token = answer.body["refreshToken"]
    return device


def device_binding(stack: Stack, iterations: int, warmup: int) -> dict[str, Any]:
    from mydevices import dpop

    api = InProcessApi()
    nonce = dpop.nonce()
    # Many sessions, each refreshed a few times, as in production (a device refreshes once per
    # access-token lifetime): one session refreshed back to back would keep its replay list at
    # its cap, a state no device reaches (refreshes are limited to 30 a minute per session),
    # and measure that list's size instead (1.13x at 64 entries, 1.05x at 2, on a quiet machine).
    plains, bounds, keys = [], [], []
    for _ in range(SESSIONS):
        _, id_token = stack.auth.sign_up()
        plain = Device(api, dict(IPHONE))
        plain.login(id_token)
        plains.append(plain)
        key = DeviceKey()
        keys.append(key)
        bounds.append(_bound_device(api, id_token, key))
    proofs = iter([keys[n % SESSIONS].proof(nonce) for n in range(iterations + warmup)])
    turn = {"unbound": 0, "bound": 0}

    def unbound_refresh() -> None:
        plains[turn["unbound"] % SESSIONS].refresh()
        turn["unbound"] += 1

    def bound_refresh() -> None:
        bound = bounds[turn["bound"] % SESSIONS]
        turn["bound"] += 1
        answer = api.call("POST", REFRESH, body={"refreshToken": bound.refresh_token},
                          headers={"X-Device-Id": bound.device_id, "DPoP": next(proofs)})
        bound.refresh_token = answer.body["refreshToken"]

    samples = stats.interleaved({"unbound": unbound_refresh, "bound": bound_refresh}, iterations, warmup)
    unbound_s, bound_s = stats.summary(samples["unbound"]), stats.summary(samples["bound"])
    median = stats.ratio(bound_s["medianMs"], unbound_s["medianMs"])

    # The server's share alone: the stateless check, and the replay list at two minutes of refreshes.
    checks = [keys[0].proof(nonce) for _ in range(max(iterations, 50))]
    pending = iter(checks)
    checked = dpop.check(checks[0], htm="POST", htu=HTU)
    seen = [f"{int(time.time())} {secrets.token_urlsafe(16)}" for _ in range(8)]
    # The alternative to the list, for the record: a create-if-absent document per proof (with a
    # TTL field), one more write round trip per refresh.
    from mydevices import store

    proof_docs = store.db().collection("benchDpopProofs")
    expire = datetime.now(UTC) + timedelta(minutes=2)
    per_proof = stats.interleaved({"create": lambda: proof_docs.document(secrets.token_urlsafe(16)).create(
        {"expireAt": expire})}, max(iterations // 3, 5))["create"]
    micro = stats.interleaved({
        "check": lambda: dpop.check(next(pending), htm="POST", htu=HTU),
        "remember": lambda: dpop.remember(seen, checked),
        "nonce": dpop.nonce,
    }, len(checks) - 1)
    dbsc_figures = dbsc_endpoints(stack, max(5, iterations // 10))
    return {
        "dbsc": dbsc_figures,
        "unbound": unbound_s,
        "bound": bound_s,
        "median": stats.verdict(median, TARGET),
        "p99Ratio": stats.ratio(bound_s["p99Ms"], unbound_s["p99Ms"]),
        "proofCheck": stats.microseconds(micro["check"]),
        "replayList": stats.microseconds(micro["remember"]),
        "nonce": stats.microseconds(micro["nonce"]),
        "proofDocument": stats.summary(per_proof),
        "proofBytes": len(checks[0]),
    }


# --- DBSC (web): the registration and the refresh endpoints ---------------------------------


def _cookies(response: Any, jar: dict[str, str]) -> None:
    for line in response.headers.getlist("Set-Cookie"):
        name, _, rest = line.partition("=")
        value = rest.split(";", 1)[0]
        if value:
            jar[name] = value
        else:
            jar.pop(name, None)


def _dbsc_jwt(key: DeviceKey, challenge: str, *, with_jwk: bool) -> str:
    header: dict[str, Any] = {"alg": "ES256", "typ": "dbsc+jwt"}
    if with_jwk:
        header["jwk"] = key.jwk
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps({'jti': challenge}).encode())}"
    r, s = decode_dss_signature(key.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def dbsc_endpoints(stack: Stack, iterations: int) -> dict[str, Any]:
    """The registration (time of the register call alone, each on a fresh web login), and a
    bound-cookie refresh the way Chromium makes most of them (one round trip: it kept the
    challenge of the previous answer), side by side with the web refresh of our tokens."""
    import functions_framework

    from infra.local.stack import MAIN_PY
    from mydevices import dbsc

    app = functions_framework.create_app(target="api", source=str(MAIN_PY), signature_type="http")  # type: ignore[no-untyped-call]
    client = app.test_client(use_cookies=False)
    _, id_token = stack.auth.sign_up()
    web = {"name": "Chromium", "platform": "web"}

    def send(path: str, jar: dict[str, str], headers: dict[str, str] | None = None, body: Any = None) -> Any:
        cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
        response = client.post(path, json=body, headers={"Cookie": cookie, "Sec-Fetch-Site": "same-origin",
                                                           **(headers or {})})
        _cookies(response, jar)
        return response

    def login() -> tuple[dict[str, str], str]:
        jar: dict[str, str] = {}
        answer = send("/v1/sessions", jar, {"Authorization": f"Bearer {id_token}"}, {"device": web})
        return jar, answer.get_json()["session"]["sessionId"]

    key = DeviceKey()
    register_samples = []
    for _ in range(iterations):
        jar, sid = login()
        proof = _dbsc_jwt(key, dbsc.challenge(sid), with_jwk=True)
        started = time.perf_counter()
        answer = send(dbsc.REGISTER_PATH, jar, {dbsc.RESPONSE_HEADER: proof})
        register_samples.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.get_data(as_text=True)

    bound_jar, bound_sid = jar, sid
    plain_jar, _ = login()
    proofs = iter([_dbsc_jwt(key, dbsc.challenge(bound_sid), with_jwk=False) for _ in range(iterations * 3 + 3)])

    def cookie_refresh() -> None:
        answer = send(dbsc.REFRESH_PATH, bound_jar, {dbsc.SESSION_ID_HEADER: bound_sid,
                                                     dbsc.RESPONSE_HEADER: next(proofs)})
        assert answer.status_code == 200, answer.get_data(as_text=True)

    def challenge_only() -> None:
        answer = send(dbsc.REFRESH_PATH, bound_jar, {dbsc.SESSION_ID_HEADER: bound_sid})
        assert answer.status_code == 403

    def token_refresh() -> None:
        answer = send("/v1/sessions/refresh", plain_jar)
        assert answer.status_code == 200, answer.get_data(as_text=True)

    samples = stats.interleaved({"dbscRefresh": cookie_refresh, "challenge": challenge_only,
                                 "tokenRefresh": token_refresh}, iterations * 3, 2)
    return {
        "register": stats.summary(register_samples),
        "dbscRefresh": stats.summary(samples["dbscRefresh"]),
        "challenge": stats.summary(samples["challenge"]),
        "tokenRefresh": stats.summary(samples["tokenRefresh"]),
        "refreshRatio": stats.ratio(stats.summary(samples["dbscRefresh"])["medianMs"],
                                    stats.summary(samples["tokenRefresh"])["medianMs"]),
    }
