"""Signed device ids: the server knows its own ids from forged, tampered and retired ones."""

from __future__ import annotations

import pytest

from mydevices.tokens import device_id, keys


def test_a_signed_id_verifies_to_the_id(ring: keys.Keyring) -> None:
    did = device_id.new_device_id()
    assert device_id.verify(ring, device_id.sign(ring, did)) == did


def test_new_ids_are_random_and_never_firestore_reserved_names() -> None:
    drawn = {device_id.new_device_id() for _ in range(200)}
    assert len(drawn) == 200
    assert not any(d.startswith("__") and d.endswith("__") for d in drawn)
    assert all(len(d) == 22 for d in drawn)


def test_an_id_signed_by_another_keyring_is_not_ours(ring: keys.Keyring) -> None:
    other = keys.parse_keyring(keys.generate_keyring_doc())
    assert device_id.verify(ring, device_id.sign(other, device_id.new_device_id())) is None


def test_a_tampered_id_or_mac_is_refused(ring: keys.Keyring) -> None:
    signed = device_id.sign(ring, device_id.new_device_id())
    did, kid, mac = signed.split(".")
    other = device_id.new_device_id()
    assert device_id.verify(ring, f"{other}.{kid}.{mac}") is None
    assert device_id.verify(ring, f"{did}.{kid}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}") is None


def test_an_id_whose_key_was_retired_is_no_longer_ours(ring: keys.Keyring) -> None:
    signed = device_id.sign(ring, device_id.new_device_id())
    fresh = keys.new_hmac_entry()
    rotated = keys.Keyring(ring.signing, {fresh["kid"]: keys.b64url_decode(fresh["secret"])}, fresh["kid"])
    assert device_id.verify(rotated, signed) is None


def test_an_id_signed_with_a_kept_older_key_still_verifies(ring: keys.Keyring) -> None:
    did = device_id.new_device_id()
    signed = device_id.sign(ring, did)
    fresh = keys.new_hmac_entry()
    rotated = keys.Keyring(ring.signing, {fresh["kid"]: keys.b64url_decode(fresh["secret"]), **ring.hmac},
                           fresh["kid"])
    assert device_id.verify(rotated, signed) == did
    assert device_id.sign(rotated, did) != signed  # new signatures use the new key


@pytest.mark.parametrize("signed", [None, "", "abc", "a.b", "a.b.c.d", "x" * 201, "short.kid.mac",
                                    "AAAAAAAAAAAAAAAAAAAAA/.kid.mac"])
def test_malformed_ids_are_refused(ring: keys.Keyring, signed: str | None) -> None:
    assert device_id.verify(ring, signed) is None
