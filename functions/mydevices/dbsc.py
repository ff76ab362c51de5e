"""Device Bound Session Credentials (W3C DBSC) for the web: the browser's key holds the session.

The flow (wire format: /work/shared/platform-notes.md, verified with Chromium 156):
1. a web login answers `Secure-Session-Registration: (ES256);path=...;challenge=...`; a browser
   without DBSC ignores it and keeps working exactly as before (the session stays unbound);
2. the browser makes a key and posts a `dbsc+jwt` (ES256, its public key in the header, payload
   `{"jti": challenge}`) to the registration path: `register` checks it against a challenge we
   made for this session, stores the key on the session (`dbscJwk`, `deviceBound`), and answers
   the session instructions plus the bound cookie, short-lived (MYDEVICES_DBSC_COOKIE_SECONDS);
   only once: a session keeps its first key for its life (a second registration is refused);
3. from then on every request of the session must carry a valid bound cookie (`require_cookie`);
   when it has expired the browser holds the page's request and calls the refresh URL: a first
   call without a proof gets 403 `Secure-Session-Challenge`, the retry with a proof signed by the
   stored key gets a fresh cookie (`refresh`);
4. a proof another key signed, presented with the session's genuine credentials (the cookies a
   copy of the cookie jar carries), is a copied-credential incident (flows/copied_token.py):
   the user is alerted and signed out as for a copied token, and the browser gets 401, which ends
   its DBSC session. A stranger who knows only a session id gets 401 and closes nothing.

Challenges and the bound cookie are stateless: HMACs under keys derived for each purpose from
the keyring (like tokens/action.py), over the session id and a time window or an expiry.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from . import clock, dpop, store
from .config import settings
from .errors import Code, Refusal
from .tokens.keys import b64url, keyring, purpose_key, same

TYPE = "dbsc+jwt"
REGISTER_PATH = "/v1/sessions/dbsc/register"
REFRESH_PATH = "/v1/sessions/dbsc/refresh"
RESPONSE_HEADER = "Secure-Session-Response"
REGISTRATION_HEADER = "Secure-Session-Registration"
CHALLENGE_HEADER = "Secure-Session-Challenge"
SESSION_ID_HEADER = "Sec-Secure-Session-Id"
CHALLENGE_WINDOW = 300  # a challenge is good for its window and the next
_CHALLENGE_PURPOSE = b"mydevices/dbsc-challenge/v1"
_COOKIE_PURPOSE = b"mydevices/dbsc-cookie/v1"


def _key(purpose: bytes) -> bytes:
    return purpose_key(keyring().current_hmac, purpose)


def _challenge_for(sid: str, window: int) -> str:
    mac = hmac.new(_key(_CHALLENGE_PURPOSE), f"{sid}:{window}".encode(), hashlib.sha256).digest()[:18]
    return f"{window}.{b64url(mac)}"


def challenge(sid: str, now: float | None = None) -> str:
    """A challenge only this session's registration or refresh can answer, for ten minutes at most."""
    return _challenge_for(sid, int((clock.now() if now is None else now) // CHALLENGE_WINDOW))


def _challenge_valid(sid: str, value: Any, now: float | None = None) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    window = int((clock.now() if now is None else now) // CHALLENGE_WINDOW)
    return any(same(value, _challenge_for(sid, w)) for w in (window, window - 1))


def registration_header(sid: str) -> str:
    return f'(ES256);path="{REGISTER_PATH}";challenge="{challenge(sid)}"'


def challenge_header(sid: str) -> str:
    return f'"{challenge(sid)}";id="{sid}"'


# --- the bound cookie ----------------------------------------------------------------------


def cookie_value(sid: str, now: float | None = None) -> str:
    expires = int(clock.now() if now is None else now) + settings().dbsc_cookie_seconds
    mac = hmac.new(_key(_COOKIE_PURPOSE), f"{sid}:{expires}".encode(), hashlib.sha256).digest()
    return f"{expires}.{b64url(mac)}"


def cookie_valid(sid: str, value: str | None, now: float | None = None) -> bool:
    if not value or len(value) > 100:
        return False
    stamp, _, mac = value.partition(".")
    if not (stamp.isascii() and stamp.isdigit()) or int(stamp) < (clock.now() if now is None else now):
        return False
    want = b64url(hmac.new(_key(_COOKIE_PURPOSE), f"{sid}:{stamp}".encode(), hashlib.sha256).digest())
    return same(mac, want)


def require_cookie(session: dict[str, Any], sid: str, value: str | None) -> None:
    """A session registered with DBSC is used only with a fresh bound cookie: a copy of the cookie
    jar works until that cookie expires (minutes), then only the browser holding the key can get
    another. 401 `bound_cookie_required` (a DBSC browser refreshes before it ever sees this)."""
    if session.get("dbscJwk") is not None and not cookie_valid(sid, value):
        raise Refusal(Code.BOUND_COOKIE_REQUIRED,
                      "this session is bound to its browser: the bound cookie is missing or expired")


# --- proofs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    jwk: dict[str, str] | None  # the key in the header (registration), or None
    jti: Any
    signature: bytes
    signed: bytes


def parse_proof(text: str | None) -> Proof | None:
    """The `Secure-Session-Response` JWT, unverified; None when absent or not a dbsc+jwt."""
    if not text or len(text) > dpop.MAX_PROOF_LENGTH:
        return None
    found = dpop.segments(text.strip())
    if found is None:
        return None
    header, payload, signature, signed = found
    if header.get("typ") != TYPE or header.get("alg") != dpop.ALGORITHM:
        return None
    jwk = header.get("jwk")
    return Proof(jwk if isinstance(jwk, dict) else None, payload.get("jti"), signature, signed)


def instructions(sid: str, origin: str | None) -> dict[str, Any]:
    """The session instructions (the JSON the browser keeps): which cookie is bound, and where
    to refresh it. Scope: our origin only. Without MYDEVICES_PUBLIC_API_URL the origin is left
    out, so the browser takes the registration's own: behind a proxy (Hosting, the local
    stand-in) the function does not see the origin the browser called."""
    scope: dict[str, Any] = {"include_site": False, "scope_specification": []}
    if origin is not None:
        scope["origin"] = origin
    return {
        "session_identifier": sid,
        "refresh_url": REFRESH_PATH,
        "scope": scope,
        "credentials": [{"type": "cookie", "name": BOUND_COOKIE,
                         "attributes": "Path=/; Secure; HttpOnly; SameSite=Strict"}],
    }


BOUND_COOKIE = "__Host-mydevices-bound"


def register(uid: str, sid: str, proof_text: str | None, origin: str | None) -> dict[str, Any]:
    """Bind the caller's session to the key in the registration proof; the instructions to answer.

    A session has one key for its life: registration is only for a session that has none (no
    DBSC key, no DPoP key). The challenge is no secret from whoever holds the session's cookies
    (the refresh URL hands one out), so a copied jar could otherwise put its own key in place of
    the browser's, refresh the bound cookie with it, and make the owner's next refresh look like
    the copy (a sign-out everywhere). A registration with another key is refused with 401
    `device_proof_failed`, closes nothing, and the first key stays. The same key again is the
    browser retrying a registration whose answer it lost (and with it the bound cookie): it gets
    the instructions and a cookie again, or it could never use its session. The check and the
    write are one transaction, so of two registrations at once exactly one binds."""
    proof = parse_proof(proof_text)
    # 401 for every bad proof: it is what authenticates the key, and a browser gives up on a 401.
    if proof is None or proof.jwk is None:
        raise Refusal(Code.INVALID_DBSC_PROOF,
                      f"{RESPONSE_HEADER} must be a dbsc+jwt with the public key in its header")
    try:
        jwk = dpop.parse_public_jwk(proof.jwk, "the proof's jwk")
    except Refusal:
        raise Refusal(Code.INVALID_DBSC_PROOF, "the registration key must be an EC P-256 public key") from None
    if not dpop.signed_by(jwk, proof.signature, proof.signed):
        raise Refusal(Code.INVALID_DBSC_PROOF, "the registration proof is not signed by its key")
    if not _challenge_valid(sid, proof.jti):
        raise Refusal(Code.INVALID_DBSC_PROOF, "the registration proof does not answer this session's challenge")
    if not store.update_if(store.session_ref(uid, sid), lambda session: _first_key(session, jwk)):
        raise Refusal(Code.INVALID_TOKEN, "no such session")
    return instructions(sid, origin)


def _first_key(session: dict[str, Any], jwk: dict[str, str]) -> dict[str, Any]:
    """The fields that bind `session` to `jwk`, read in the registration's transaction; nothing
    for its own key again, refused for any other (see register)."""
    bound = session.get("dbscJwk")
    if isinstance(bound, dict) and session.get("dpopJkt") is None and dpop.thumbprint(bound) == dpop.thumbprint(jwk):
        return {}
    if bound is not None or session.get("dpopJkt") is not None:
        raise Refusal(Code.DEVICE_PROOF_FAILED, "this session is bound to a key already; a session keeps its first key")
    return {"dbscJwk": jwk, "deviceBound": True}


def verify_refresh(session: dict[str, Any], sid: str, proof_text: str | None) -> str:
    """'ok', 'challenge' (no proof yet: answer 403 with a challenge) or 'wrong' (a proof the
    session's key did not sign, or one for no challenge of ours)."""
    jwk = session.get("dbscJwk")
    if not isinstance(jwk, dict):
        return "wrong"
    proof = parse_proof(proof_text)
    if proof_text is None or not proof_text.strip():
        return "challenge"
    if proof is None or not dpop.signed_by(jwk, proof.signature, proof.signed):
        return "wrong"
    return "ok" if _challenge_valid(sid, proof.jti) else "challenge"
