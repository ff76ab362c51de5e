"""Proof of possession for apps and other API clients: DPoP proofs (RFC 9449) of a device key.

A login may carry the device's public key (an ES256 JWK whose private half lives in the
Android Keystore or the iOS Secure Enclave). The session then belongs to that key: every
refresh must carry a `DPoP` header, a JWT the key signed over the request, so a copied refresh
token is useless without the device.

Split in two on purpose:
- `check` is stateless and runs before the refresh transaction (so a retried transaction does
  not verify twice): the signature against the key in the proof's own header, the method and
  URL, the age, and our nonce. It never raises: it says which key signed (`jkt`, or None when
  nothing was proven) and what else is wrong (`fault`), because the caller decides what a
  failure means only once it knows whether the refresh token is genuine (flows/refresh.py);
- replay (`jti` seen before) is checked inside the refresh transaction against a small set of
  recent ids kept in the session's secrets document (`remember`): the transaction reads that
  document anyway, so this costs no extra read or write, where a create-if-absent document per
  proof would cost a write (and a TTL'd document) per refresh.

Nonces are stateless: the HMAC of a time window under a key derived for this purpose alone
from the keyring (like tokens/action.py), so any instance can issue and check them with no storage.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from . import clock
from .errors import Code, Refusal
from .tokens.keys import b64url, keyring, purpose_key, same

TYPE = "dpop+jwt"
ALGORITHM = "ES256"
MAX_PROOF_LENGTH = 2048
MAX_JTI = 64
MAX_REMEMBERED = 64  # recent proof ids kept per session (see remember)
PROOF_MAX_AGE = 60  # seconds a proof is good for, either side of our clock (stale proofs are refused)
NONCE_WINDOW = 300  # a nonce is good for the window it was made in and the next one
NONCE_HEADER = "DPoP-Nonce"
PROOF_HEADER = "DPoP"
_NONCE_PURPOSE = b"mydevices/dpop-nonce/v1"
_P256_COORDINATE = 32


def _b64decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the device key ------------------------------------------------------------------------


def parse_public_jwk(value: Any, where: str = "devicePublicKey") -> dict[str, str]:
    """The device's public key as a login sends it: an EC P-256 JWK with `x` and `y` only
    (`kty`, `crv`, and the optional `alg`, `use`, `kid`, `key_ops`, `ext` that WebCrypto and the
    platforms' exporters add are accepted and dropped). A private part (`d`) is refused: a client
    that sends it has put its key somewhere it can be copied from."""
    if not isinstance(value, dict):
        raise Refusal(Code.INVALID_REQUEST, f"{where} must be a JSON object (an EC P-256 JWK)")
    if "d" in value:
        raise Refusal(Code.PRIVATE_KEY_SENT, f"{where} must be the public key only (it has a private part 'd')")
    if value.get("kty") != "EC" or value.get("crv") != "P-256":
        raise Refusal(Code.UNSUPPORTED_KEY, f"{where} must have kty EC and crv P-256 (ES256)")
    unknown = sorted(set(value) - {"kty", "crv", "x", "y", "alg", "use", "kid", "key_ops", "ext"})
    if unknown:
        raise Refusal(Code.INVALID_REQUEST, f"unknown field {where}.{unknown[0]}")
    if value.get("alg", ALGORITHM) != ALGORITHM:
        raise Refusal(Code.UNSUPPORTED_KEY, f"{where}.alg must be ES256")
    jwk = {"kty": "EC", "crv": "P-256", "x": value.get("x"), "y": value.get("y")}
    try:
        _public_key(jwk)
    except ValueError:
        raise Refusal(Code.UNSUPPORTED_KEY, f"{where} is not a point on P-256") from None
    return jwk  # type: ignore[return-value]  # _public_key checked x and y are strings


def _public_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    """The key, or ValueError for anything that is not a valid P-256 point."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 key")
    try:
        x, y = _b64decode(jwk["x"]), _b64decode(jwk["y"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise ValueError("bad coordinates") from None
    if len(x) != _P256_COORDINATE or len(y) != _P256_COORDINATE:
        raise ValueError("bad coordinates")
    numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
    return numbers.public_key()  # raises ValueError for a point off the curve


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (`jkt`): SHA-256 of the required members in lexicographic order."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
                           separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


# --- nonces --------------------------------------------------------------------------------


def _nonce_key() -> bytes:
    return purpose_key(keyring().current_hmac, _NONCE_PURPOSE)


def _nonce_for(window: int) -> str:
    mac = hmac.new(_nonce_key(), window.to_bytes(8, "big"), hashlib.sha256).digest()[:16]
    return f"{window}.{b64url(mac)}"


def nonce(now: float | None = None) -> str:
    """The nonce clients must put in their next proof (sent as `DPoP-Nonce` on every answer)."""
    return _nonce_for(int((clock.now() if now is None else now) // NONCE_WINDOW))


def nonce_valid(value: Any, now: float | None = None) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    window = int((clock.now() if now is None else now) // NONCE_WINDOW)
    return any(same(value, _nonce_for(w)) for w in (window, window - 1))


def nonce_error(message: str = "this request needs a proof with the server's current nonce") -> Refusal:
    """RFC 9449 §8: `use_dpop_nonce` with the nonce to use; the client retries at once."""
    return Refusal(Code.USE_DPOP_NONCE, message, nonce=nonce())


# --- proofs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """What `check` found. `jkt` is the thumbprint of the key that signed a well-formed proof
    (None: no proof, or nothing proven by it); `fault` is what is wrong with a proof the key
    did sign (stale, another URL, no nonce): the device's own mistake, not a copy."""

    present: bool
    jkt: str | None = None
    jti: str | None = None
    iat: int = 0
    fault: Refusal | None = None


ABSENT = Checked(present=False)


@dataclass(frozen=True)
class DpopInput:
    """What a request carries for a proof, as plain data: the `DPoP` header (None: absent), the
    request's method and its URL as the client called it. A flow checks it when its order says
    (refresh: after the per-address limit, so a flood of proofs costs no signature checks)."""

    header: str | None
    htm: str
    htu: str

    def check(self, access_token: str | None = None, *, require_nonce: bool = True) -> Checked:
        return check(self.header, htm=self.htm, htu=self.htu, access_token=access_token, require_nonce=require_nonce)


def segments(proof: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | None:
    parts = proof.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64decode(parts[0]))
        payload = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return header, payload, signature, f"{parts[0]}.{parts[1]}".encode("ascii")


def signed_by(jwk: Any, signature: bytes, signed: bytes) -> bool:
    if not isinstance(jwk, dict) or "d" in jwk or len(signature) != 2 * _P256_COORDINATE:
        return False
    try:
        key = _public_key(jwk)
        r = int.from_bytes(signature[:_P256_COORDINATE], "big")
        s = int.from_bytes(signature[_P256_COORDINATE:], "big")
        key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        return False
    return True


def _same_url(claimed: Any, expected: str) -> bool:
    """RFC 9449 §4.3: the URL without query and fragment; scheme and host compare case-blind."""
    if not isinstance(claimed, str):
        return False
    base = claimed.split("#", 1)[0].split("?", 1)[0]
    scheme, sep, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    want_scheme, _, want_rest = expected.partition("://")
    want_host, want_slash, want_path = want_rest.partition("/")
    return bool(sep) and (scheme.lower(), host.lower(), slash + path) == (
        want_scheme.lower(), want_host.lower(), want_slash + want_path)


def check(proof: str | None, *, htm: str, htu: str, access_token: str | None = None,
          now: float | None = None, require_nonce: bool = True) -> Checked:
    """Verify a `DPoP` header value as far as it can be without state. See `Checked`."""
    if proof is None or not proof.strip():
        return ABSENT
    if len(proof) > MAX_PROOF_LENGTH:
        return Checked(present=True)
    found = segments(proof.strip())
    if found is None:
        return Checked(present=True)
    header, payload, signature, signed = found
    if header.get("typ") != TYPE or header.get("alg") != ALGORITHM:
        return Checked(present=True)
    jwk = header.get("jwk")
    if not signed_by(jwk, signature, signed):
        return Checked(present=True)
    assert isinstance(jwk, dict)
    jkt = thumbprint(jwk)
    jti, iat = payload.get("jti"), clock.whole_seconds(payload.get("iat"))
    moment = clock.now() if now is None else now

    def fault(message: str, reason: str) -> Checked:
        error = Refusal(Code.INVALID_DPOP_PROOF, f"the DPoP proof is not valid for this request: {message}",
                        nonce=nonce(moment), reason=reason)
        return Checked(True, jkt, jti if isinstance(jti, str) else None, 0, error)

    # Printable ASCII: the jti is stored (remember), and Firestore cannot store a lone surrogate.
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI or not (jti.isascii() and jti.isprintable()):
        return fault("jti must be 1 to 64 printable ASCII characters", "bad_jti")
    if iat is None:
        return fault("iat must be a whole number of seconds", "bad_iat")
    if abs(int(moment) - iat) > PROOF_MAX_AGE:  # whole numbers: an iat of 10**309 is only stale
        return fault(f"iat is more than {PROOF_MAX_AGE} seconds from the server's clock", "stale")
    if payload.get("htm") != htm:
        return fault(f"htm must be {htm}", "wrong_method")
    if not _same_url(payload.get("htu"), htu):
        return fault(f"htu must be {htu}", "wrong_url")
    if access_token is not None:
        ath = b64url(hashlib.sha256(access_token.encode()).digest())
        if not same(payload.get("ath"), ath):
            return fault("ath must be the hash of the access token sent with it", "wrong_ath")
    if require_nonce and not nonce_valid(payload.get("nonce"), moment):
        return Checked(True, jkt, jti, iat, nonce_error())
    return Checked(True, jkt, jti, iat)


def remember(seen: Any, checked: Checked, now: float | None = None) -> list[str]:
    """The session's recent proofs (`"<iat> <jti>"`) with this one added, or
    `invalid_dpop_proof` (replayed) when its jti is among them.

    Only proofs that could still pass the age check are kept (iat no more than PROOF_MAX_AGE
    ago): a replay of an older one is refused as stale anyway. The per-session refresh limit
    (30 a minute by default) keeps that under MAX_REMEMBERED; past it (limits off) the oldest
    go first, so the document cannot grow without bound. A list of strings, not a map: a jti
    may be any text, and some texts are not Firestore field names."""
    moment = clock.now() if now is None else now
    recent: dict[str, int] = {}
    for entry in seen if isinstance(seen, list) else []:
        stamp, _, jti = str(entry).partition(" ")
        if stamp.isdigit() and int(stamp) >= moment - PROOF_MAX_AGE:
            recent[jti] = int(stamp)
    assert checked.jti is not None
    if checked.jti in recent:
        raise Refusal(Code.INVALID_DPOP_PROOF, "this DPoP proof was used before: make a new one for every request",
                      nonce=nonce(moment), reason="replayed")
    recent[checked.jti] = checked.iat
    kept = sorted(recent.items(), key=lambda item: item[1])[-MAX_REMEMBERED:]
    return [f"{stamp} {jti}" for jti, stamp in kept]
