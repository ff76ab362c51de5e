"""App Check offline: a local RSA key stands in for Google's, as the FCM stand-in stands in for FCM.

There is no App Check emulator. firebase-admin verifies App Check tokens against the JWKS at
`https://firebaseappcheck.googleapis.com/v1/jwks`; the stack writes a key pair here, the FCM
stand-in serves its public half at `/v1/jwks` (`--app-check-jwks`), and the functions get
MYDEVICES_APP_CHECK_JWKS_URL pointing there. `mint` signs tokens shaped like App Check's own
(RS256, `typ: JWT`, `kid`, issuer `https://firebaseappcheck.googleapis.com/<project number>`,
audience `[projects/<number>, projects/<id>]`, `sub` the Firebase app id), so tests and the
JS SDK's `CustomProvider` present what a real app would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT_NUMBER = "123456789012"  # a made-up project number for the demo- project
APP_ID = f"1:{PROJECT_NUMBER}:web:0123456789abcdef"  # a Firebase app id of that shape
ISSUER = f"https://firebaseappcheck.googleapis.com/{PROJECT_NUMBER}"
KEY_ID = "local-app-check-1"
PRIVATE_KEY_FILE = "app-check-key.pem"
JWKS_FILE = "app-check-jwks.json"


def ensure_keys(folder: Path) -> Path:
    """The key pair in `folder` (made if missing): returns the JWKS file the stand-in serves."""
    folder.mkdir(parents=True, exist_ok=True)
    private_path, jwks_path = folder / PRIVATE_KEY_FILE, folder / JWKS_FILE
    if not (private_path.exists() and jwks_path.exists()):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        private_path.chmod(0o600)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwks_path.write_text(json.dumps({"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}))
    return jwks_path


def mint(folder: Path, project: str, *, ttl: int = 3600, app_id: str = APP_ID, key_id: str = KEY_ID,
         **claims: Any) -> str:
    """An App Check token for `project` signed with the key in `folder`; `claims` override any claim
    (e.g. `aud=...`, `exp=...`) to make a wrong one."""
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": app_id, "aud": [f"projects/{PROJECT_NUMBER}", f"projects/{project}"],
               "iat": now, "exp": now + ttl, **claims}
    key = (folder / PRIVATE_KEY_FILE).read_bytes()
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": key_id, "typ": "JWT"})
