"""Bodies no route can use, shared by the in-process tests (tests/unit/test_request_bodies.py) and
the live ones for the route that reads its body after validation (tests/security)."""

from __future__ import annotations

WRONG_CONTENT_TYPES = [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
    "application/json-patch+json", None,  # none at all
]
BAD_BYTES = {
    "invalid-byte": b'{"refreshToken": "\xff\xfe"}',
    "overlong-slash": b'{"refreshToken": "\xc0\xaf"}',
    "utf8-encoded-surrogate": b'{"refreshToken": "\xed\xa0\x80"}',
    "truncated-sequence": b'{"refreshToken": "\xe2\x82"}',
    "escaped-lone-surrogate": b'{"refreshToken": "\\ud800"}',
    "latin1-name": '{"device": {"name": "Jos\xe9", "platform": "ios"}}'.encode("latin-1"),
    "utf16": '{"refreshToken": "x"}'.encode("utf-16"),
}


def nested(depth: int) -> bytes:
    """A login body whose JSON nests `depth` levels deep."""
    return b'{"device": ' + b'{"a": ' * (depth - 2) + b"1" + b"}" * (depth - 1)
