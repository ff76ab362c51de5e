"""firebase-admin's retries of FCM 500/503 answers, without their waits: the tests keep the retries
(and their count) but not the 0, 1, 2 and 4 s of back-off between them.

No public way: firebase-admin takes no retry setting per app; its messaging client shares one
module-level Retry object, whose back-off factor this zeroes for as long as the block lasts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from firebase_admin import _http_client


@contextmanager
def without_backoff() -> Iterator[None]:
    saved = _http_client.DEFAULT_RETRY_CONFIG.backoff_factor
    _http_client.DEFAULT_RETRY_CONFIG.backoff_factor = 0
    try:
        yield
    finally:
        _http_client.DEFAULT_RETRY_CONFIG.backoff_factor = saved
