"""This process as a function instance on the benchmark's stack.

Several measurements call the product in-process (validation, the cost counters), so this
process needs what a deployed instance gets: `functions/` importable, the stack's environment,
and none of the clients and settings the product caches per process left over from another
environment. `product_environment` sets that up and puts everything back afterwards, so the
benchmark can also run inside the test session without disturbing other tests.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from infra.local.stack import FUNCTIONS_DIR, environ


def ensure_importable() -> None:
    if str(FUNCTIONS_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS_DIR))


def forget_cached_state() -> None:
    """Drop every per-process cache of the product, so the next use reads the environment afresh."""
    ensure_importable()
    import firebase_admin

    from mydevices import config, store
    from mydevices.tokens import keys

    config.settings.cache_clear()
    keys.keyring.cache_clear()
    store._forget_client()
    session_events: Any = sys.modules.get("mydevices.push.events")
    if session_events is not None and hasattr(session_events, "_publisher"):
        session_events._publisher = None
    with contextlib.suppress(ValueError):
        firebase_admin.delete_app(firebase_admin.get_app())


@contextlib.contextmanager
def environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them and the caches afterwards."""
    try:
        with environ(values):
            forget_cached_state()
            yield
    finally:
        forget_cached_state()


def product_environment(stack_env: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
    """The stack's environment for in-process calls (the emulators, its keys, the FCM stand-in)."""
    return environment(dict(stack_env))
