"""One stack's clock: the file every function reads through `MYDEVICES_CLOCK_FILE`
(functions/mydevices/clock.py) and the Auth emulator runs on through libfaketime.

A test lets a night or a month pass with `stack.clock.advance(hours=8)`: the next request of any
function sees the new time, and so does Firebase Auth (the `auth_time` of a sign-in made after the
move, the `tokensValidAfterTime` a password reset sets). The Firestore and Pub/Sub emulators keep
the real time: the product stores its own times and never compares them with theirs.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

FAKETIME_GLOB = "/usr/lib/*-linux-gnu/faketime/libfaketimeMT.so.1"  # Debian's libfaketime


def faketime_library() -> str | None:
    found = sorted(glob.glob(FAKETIME_GLOB))
    return found[0] if found else None


class StackClock:
    """The offset, in whole seconds, of one stack's time from the machine's."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = 0
        self.set(offset)

    def now(self) -> float:
        """The stack's time, as its functions read it."""
        return time.time() + self.offset

    def set(self, offset: int) -> None:
        """Replace the file by a rename (a new inode: readers notice every change, however quick)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".new")
        temporary.write_text(f"{int(offset):+d}\n", encoding="ascii")
        os.replace(temporary, self.path)
        self.offset = int(offset)

    def advance(self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0) -> None:
        self.set(self.offset + round(seconds + 60 * minutes + 3600 * hours + 86400 * days))

    def faketime_env(self) -> dict[str, str]:
        """What runs a process (the Auth emulator) on this clock, or nothing without libfaketime.

        The file is read again at every reading (`FAKETIME_NO_CACHE`: about 5 µs each in Node), and
        the monotonic clock stays real, so timers and timeouts keep their meaning."""
        library = faketime_library()
        if library is None:
            return {}
        return {
            "LD_PRELOAD": library,
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
