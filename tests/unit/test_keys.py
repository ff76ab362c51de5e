"""The keyring: what a keys file must hold, and what the JWKS publishes of it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mydevices.tokens import keys
from support import ROOT

FUNCTIONS = ROOT / "functions"


def test_a_generated_keyring_parses_with_its_first_entries_current() -> None:
    doc = keys.generate_keyring_doc()
    ring = keys.parse_keyring(doc)
    assert ring.current_signing.kid == doc["signing"][0]["kid"]
    assert ring.current_hmac_kid == doc["hmac"][0]["kid"]
    assert len(ring.current_hmac) == 32


def test_the_jwks_publishes_public_keys_only() -> None:
    ring = keys.parse_keyring(keys.generate_keyring_doc())
    (jwk,) = ring.jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == ("OKP", "Ed25519", "EdDSA", ring.current_signing.kid)


def test_public_key_finds_only_known_kids() -> None:
    ring = keys.parse_keyring(keys.generate_keyring_doc())
    assert ring.public_key(ring.current_signing.kid) is not None
    assert ring.public_key("sig-unknown") is None


@pytest.mark.parametrize("doc", [
    {}, {"signing": []}, {"hmac": [keys.new_hmac_entry()]}, {"signing": [keys.new_signing_entry()]},
    {"signing": [keys.new_signing_entry()], "hmac": [{"kid": "short", "secret": keys.b64url(b"x" * 31)}]},
])
def test_a_keyring_without_both_kinds_of_key_or_with_a_short_secret_is_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        keys.parse_keyring(doc)


def test_a_signing_key_that_is_not_ed25519_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="Ed25519"):
        keys.parse_keyring({"signing": [{"kid": "ec", "privateKeyPem": pem}], "hmac": [keys.new_hmac_entry()]})


def test_the_keyring_comes_from_json_before_the_file(configure: Callable[..., Any], tmp_path: Path) -> None:
    doc = keys.generate_keyring_doc()
    configure(MYDEVICES_KEYS_JSON=json.dumps(doc))
    assert keys.keyring().current_hmac_kid == doc["hmac"][0]["kid"]


def test_no_keys_configured_stops_the_function(configure: Callable[..., Any]) -> None:
    configure(MYDEVICES_KEYS_FILE=None, MYDEVICES_KEYS_JSON=None)
    with pytest.raises(RuntimeError, match="no keys configured"):
        keys.keyring()


def test_b64url_round_trips_without_padding() -> None:
    for size in range(6):
        data = bytes(range(size))
        assert "=" not in keys.b64url(data)
        assert keys.b64url_decode(keys.b64url(data)) == data


def test_the_generate_command_writes_a_private_keyring_once(tmp_path: Path) -> None:
    path = tmp_path / "generated" / "keys.json"
    command = [sys.executable, "-m", "mydevices.tokens.keys", "generate", str(path)]
    subprocess.run(command, check=True, cwd=FUNCTIONS)
    written = path.read_text()
    subprocess.run(command, check=True, cwd=FUNCTIONS)
    assert path.read_text() == written  # a second run keeps the keys the first wrote
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.parse_keyring(json.loads(written)).current_signing.kid.startswith("sig-")
