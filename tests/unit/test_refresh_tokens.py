"""Refresh tokens: the chain a device rotates through, and what a copied or forged token proves."""

from __future__ import annotations

import secrets

import pytest

from mydevices.tokens import refresh
from mydevices.tokens.refresh import RefreshToken

KEY = secrets.token_bytes(32)
SID = "A" * 22


def test_a_token_reads_back_as_itself() -> None:
    token = refresh.first(SID)
    assert refresh.parse(str(token)) == token


def test_first_tokens_are_random() -> None:
    assert refresh.first(SID).secret != refresh.first(SID).secret


def test_a_child_is_the_next_generation_and_is_the_same_on_a_retry() -> None:
    parent = refresh.first(SID)
    child = refresh.child(KEY, parent)
    assert (child.sid, child.generation) == (SID, 1)
    assert refresh.child(KEY, parent) == child
    assert child.secret != parent.secret


def test_another_key_derives_another_child() -> None:
    parent = refresh.first(SID)
    assert refresh.child(secrets.token_bytes(32), parent) != refresh.child(KEY, parent)


def test_only_the_hash_is_what_is_stored_and_it_is_not_the_secret() -> None:
    token = refresh.first(SID)
    assert token.hash == refresh.hash_secret(token.secret)
    assert token.secret not in token.hash and len(token.hash) == 64


@pytest.mark.parametrize("text", [
    "", "x", f"{SID}.0", f"{SID}.-1.{'a' * 43}", f"{SID}.1234567890.{'a' * 43}", f"{'A' * 21}.0.{'a' * 43}",
    f"{SID}.0.{'a' * 42}", f"{SID}.0.{'a' * 43}.extra", f"{SID}.0.{'+' * 43}", f" {SID}.0.{'a' * 43}",
])
def test_malformed_tokens_do_not_parse(text: str) -> None:
    assert refresh.parse(text) is None


def chain(length: int) -> list[RefreshToken]:
    tokens = [refresh.first(SID)]
    for _ in range(length):
        tokens.append(refresh.child(KEY, tokens[-1]))
    return tokens


def test_an_earlier_generation_is_proved_genuine_against_the_current_hash() -> None:
    tokens = chain(5)
    current = tokens[-1]
    assert all(refresh.is_ancestor(KEY, t, current.generation, current.hash) for t in tokens[:-1])


def test_the_current_token_is_not_its_own_ancestor() -> None:
    current = chain(2)[-1]
    assert not refresh.is_ancestor(KEY, current, current.generation, current.hash)


def test_a_forged_token_of_an_earlier_generation_is_not_an_ancestor() -> None:
    current = chain(3)[-1]
    forged = RefreshToken(SID, 1, "b" * 43)
    assert not refresh.is_ancestor(KEY, forged, current.generation, current.hash)


def test_a_proof_further_back_than_the_limit_is_not_attempted() -> None:
    start = refresh.first(SID)
    far = RefreshToken(SID, refresh.MAX_PROOF_STEPS + 1, "x")
    assert not refresh.is_ancestor(KEY, start, far.generation, "any")
