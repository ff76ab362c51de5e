"""The one clock the product reads: every expiry, window, interval and stored time comes from here.

Sessions live for weeks while a test lives for seconds, so the tests must be able to let time pass
without waiting for it. In production this is the system clock and nothing else. Two ways move it:

- in-process, `shift(seconds)` (the unit tier; `reset()` puts it back);
- for a whole local stack, `MYDEVICES_CLOCK_FILE`: a file holding an offset in seconds (`+86400`),
  read again whenever it changes, so a test moves every function of the stack at once. The stack
  runs the Auth emulator under libfaketime on the same file, which keeps Firebase's sign-in times
  (`auth_time`, `tokensValidAfterTime`) on the same time line as ours. Settings refuse the file
  outside a `demo-` project: a deployed function cannot be talked into another time.

Process-local throttles (how often to sweep, to re-open a database file) use `time.monotonic()`
directly: they measure this process's own waiting, not the product's time.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from .config import settings

CENTURY = 100 * 365 * 86400  # the farthest a stack's clock may be moved: datetimes stay in range
_shift = 0.0
_file_offset: tuple[str, int, int, int, float] | None = None  # (path, inode, mtime_ns, size, offset)


def now() -> float:
    """Seconds since the epoch, as the product sees them."""
    return time.time() + _shift + _offset_from_file()


def seconds() -> int:
    """`now()` in whole seconds, as JWT claims and stored stamps carry them."""
    return int(now())


def utcnow() -> datetime:
    """`now()` as an aware UTC datetime, as Firestore stores times."""
    return datetime.fromtimestamp(now(), UTC)


def whole_seconds(value: object) -> int | None:
    """A time claim from a token (`iat`, `exp`, `auth_time`...), or None unless it is a whole
    number of seconds: JSON's `true`, `1.5` and `"1"` are not."""
    return value if type(value) is int else None


def passed(moment: float, leeway: float = 0) -> bool:
    """Whether `moment` (an `exp`, say) is past, allowing `leeway` seconds of skew."""
    return moment <= now() - leeway


def ahead(moment: float, leeway: float = 0) -> bool:
    """Whether `moment` (an `iat`, say) is still to come, allowing `leeway` seconds of skew."""
    return moment > now() + leeway


def shift(by: float) -> None:
    """Move this process's clock `by` seconds (tests only; it adds up)."""
    global _shift
    _shift += by


def reset() -> None:
    global _shift
    _shift = 0.0


def _offset_from_file() -> float:
    """The local stack's offset, read again only when the file changed (one stat per reading).

    Its writer replaces it by a rename, a new inode each time; a person's `echo +90000 > clock`
    truncates then writes. So an empty file is a write under way, and a text that is no number of
    seconds within a century is a mistake: the last good offset stands for both (0 at first)."""
    global _file_offset
    path = settings().clock_file
    if not path:
        return 0.0
    try:
        stat = os.stat(path)
        known = _file_offset
        if known is not None and known[:4] == (path, stat.st_ino, stat.st_mtime_ns, stat.st_size):
            return known[4]
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return 0.0
    last = known[4] if known is not None and known[0] == path else 0.0
    try:
        offset = float(text)
    except ValueError:
        return last
    if not abs(offset) <= CENTURY:  # also nan and inf
        return last
    _file_offset = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size, offset)
    return offset
