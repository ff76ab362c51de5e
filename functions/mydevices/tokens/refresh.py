"""Refresh tokens, stored only as hashes.

A token reads `<sid>.<generation>.<secret>`. Generation 0's secret is 256 random bits; every
rotation derives the next secret with a keyed hash of the previous one. That gives two things
without keeping any token in plain text: a retry with the just-replaced token can be answered
with the very same child (the grace window), and an older token can be proved genuine by
deriving forward to the stored hash (which makes it a copied token, not garbage).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from .keys import b64url

_TOKEN = re.compile(r"^([A-Za-z0-9_-]{22})\.(\d{1,9})\.([A-Za-z0-9_-]{43})$")
MAX_PROOF_STEPS = 1000


@dataclass(frozen=True)
class RefreshToken:
    sid: str
    generation: int
    secret: str

    def __str__(self) -> str:
        return f"{self.sid}.{self.generation}.{self.secret}"

    @property
    def hash(self) -> str:
        return hash_secret(self.secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def first(sid: str) -> RefreshToken:
    return RefreshToken(sid, 0, secrets.token_urlsafe(32))


def child(key: bytes, parent: RefreshToken) -> RefreshToken:
    generation = parent.generation + 1
    message = f"refresh:{parent.sid}:{generation}:{parent.secret}".encode()
    return RefreshToken(parent.sid, generation, b64url(hmac.new(key, message, hashlib.sha256).digest()))


def parse(text: str) -> RefreshToken | None:
    match = _TOKEN.match(text)
    if not match:
        return None
    return RefreshToken(match.group(1), int(match.group(2)), match.group(3))


def is_ancestor(key: bytes, token: RefreshToken, generation: int, current_hash: str) -> bool:
    """True when `token` is a genuine earlier generation of the chain whose current hash is given."""
    steps = generation - token.generation
    if steps <= 0 or steps > MAX_PROOF_STEPS:
        return False
    for _ in range(steps):
        token = child(key, token)
    return hmac.compare_digest(token.hash, current_hash)
