"""What one validated call costs, against the floors a hand-written check could not go below.

1. Strict validation (`validation.validate`: device id MAC, JWT verification, one Firestore read)
   against a bare PyJWT decode of the same token plus a bare `DocumentReference.get()` of the
   same document, on a plain client of its own.
2. Local verification by another backend: PyJWT's `PyJWKClient` on our JWKS URL (fetched once,
   then cached) against a bare decode with a fixed key.
3. What a Firebase developer would write instead: firebase-admin's
   `auth.verify_id_token(token, check_revoked=True)` against the Auth emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from google.cloud import firestore

from infra.bench import stats


@dataclass(frozen=True)
class SignedIn:
    """A session the api issued: what its device sends, and where its document lives."""

    access_token: str
    signed_device_id: str
    uid: str
    sid: str

    @classmethod
    def from_login(cls, access_token: str, signed_device_id: str) -> SignedIn:
        claims = jwt.decode(access_token, options={"verify_signature": False})
        return cls(access_token, signed_device_id, str(claims["sub"]), str(claims["sid"]))

    @property
    def document_path(self) -> str:
        return f"users/{self.uid}/sessions/{self.sid}"


def _issuer_audience() -> tuple[str, str]:
    from mydevices.config import settings

    conf = settings()
    return conf.issuer, conf.audience


def _public_key() -> Any:
    from mydevices.tokens.keys import keyring

    return keyring().current_signing.public


def strict_validation(signed_in: SignedIn, project: str, iterations: int, warmup: int) -> dict[str, Any]:
    from mydevices.flows import validation
    from mydevices.tokens import device_id
    from mydevices.tokens.keys import keyring

    issuer, audience = _issuer_audience()
    public = _public_key()
    plain = firestore.Client(project=project)
    document = plain.document(signed_in.document_path)

    def ours() -> None:
        validation.validate(signed_in.access_token, device_id.verify(keyring(), signed_in.signed_device_id))

    def floor() -> None:
        jwt.decode(signed_in.access_token, public, algorithms=["EdDSA"], issuer=issuer, audience=audience)
        if not document.get().exists:
            raise RuntimeError(f"{signed_in.document_path} is missing")

    samples = stats.interleaved({"ours": ours, "floor": floor}, iterations, warmup)
    plain.close()  # type: ignore[no-untyped-call]
    result: dict[str, Any] = {"ours": stats.summary(samples["ours"]), "floor": stats.summary(samples["floor"])}
    median = stats.ratio(result["ours"]["medianMs"], result["floor"]["medianMs"])
    result["median"] = stats.verdict(median, 1.2)
    result["p99Ratio"] = stats.ratio(result["ours"]["p99Ms"], result["floor"]["p99Ms"])
    return result


class CountingJWKClient(jwt.PyJWKClient):
    """PyJWKClient that counts its fetches of the JWKS document, to show keys are not refetched."""

    fetches = 0

    def fetch_data(self) -> Any:
        self.fetches += 1
        return super().fetch_data()


def jwks_verification(signed_in: SignedIn, jwks_url: str, iterations: int, warmup: int) -> dict[str, Any]:
    issuer, audience = _issuer_audience()
    public = _public_key()
    token = signed_in.access_token
    client = CountingJWKClient(jwks_url, cache_keys=True, lifespan=3600)

    def with_jwks() -> None:
        key = client.get_signing_key_from_jwt(token)
        jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer, audience=audience)

    def fixed_key() -> None:
        jwt.decode(token, public, algorithms=["EdDSA"], issuer=issuer, audience=audience)

    samples = stats.interleaved({"jwks": with_jwks, "fixedKey": fixed_key}, iterations, warmup)
    result: dict[str, Any] = {
        "jwks": stats.microseconds(samples["jwks"]),
        "fixedKey": stats.microseconds(samples["fixedKey"]),
        "jwksFetches": client.fetches,
        "calls": iterations + warmup,
    }
    result["median"] = stats.verdict(stats.ratio(result["jwks"]["medianUs"], result["fixedKey"]["medianUs"]), 1.5)
    return result


def versus_firebase_admin(signed_in: SignedIn, id_token: str, iterations: int, warmup: int) -> dict[str, Any]:
    """Ours (strict validation) and firebase-admin's revocation-checked ID token check, interleaved."""
    from firebase_admin import auth

    from mydevices import firebase_app
    from mydevices.flows import validation
    from mydevices.tokens import device_id
    from mydevices.tokens.keys import keyring

    app = firebase_app.app()

    def ours() -> None:
        validation.validate(signed_in.access_token, device_id.verify(keyring(), signed_in.signed_device_id))

    def theirs() -> None:
        auth.verify_id_token(id_token, app=app, check_revoked=True)

    samples = stats.interleaved({"ours": ours, "firebaseAdmin": theirs}, iterations, warmup)
    result: dict[str, Any] = {name: stats.summary(values) for name, values in samples.items()}
    result["oursOverTheirs"] = stats.ratio(result["ours"]["medianMs"], result["firebaseAdmin"]["medianMs"])
    result["p99OursOverTheirs"] = stats.ratio(result["ours"]["p99Ms"], result["firebaseAdmin"]["p99Ms"])
    return result
