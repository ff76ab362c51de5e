"""Waiting for what the stack does in the background (a trigger, a push, a process), without a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """The first truthy value of `predicate()`, or its last value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def next_second(stack: Any) -> None:
    """Move the stack's clock (the functions' and the Auth emulator's) past the current second, as
    a sign-in after a closure must be: Firebase keeps `auth_time` and `tokensValidAfterTime` in
    whole seconds, so a sign-in in the second of a closure does not count as after it."""
    stack.clock.advance(1)
