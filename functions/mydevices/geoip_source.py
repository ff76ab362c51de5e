"""Where the GeoIP City database file comes from: a local path, or a Cloud Storage object.

The database is about 100 MB, refreshed monthly and licensed apart from our code, so it does not
belong in the deployed source. Production may therefore set `MYDEVICES_GEOIP_DB=gs://bucket/object`:
the first login on an instance copies the object to /tmp and every later lookup reads that copy.
On Cloud Functions /tmp lives in the instance's memory, so the function needs room for it.

Only one request per instance pays for the copy; logins arriving meanwhile simply get no location
(location is a courtesy, never a reason to make a login wait). A failed copy is not retried on every
login but after `retry_after` seconds, so an unreachable bucket costs one slow login per interval
rather than all of them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

GS_PREFIX = "gs://"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "mydevices-geoip"
DOWNLOAD_TIMEOUT_SECONDS = 120.0
RETRY_AFTER_SECONDS = 300.0

# (bucket, object name, destination file): writes the object's bytes to the destination.
Downloader = Callable[[str, str, Path], None]


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/path/to/object` -> (bucket, object name); ValueError for anything less."""
    if not uri.startswith(GS_PREFIX):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[len(GS_PREFIX) :].partition("/")
    if not bucket or not name or name.endswith("/"):
        raise ValueError(f"a GeoIP Cloud Storage location must name an object: gs://BUCKET/OBJECT, not {uri!r}")
    return bucket, name


def download_from_gcs(bucket: str, name: str, destination: Path) -> None:
    """The production downloader, with the runtime's default credentials."""
    from google.cloud.storage import Client  # imported here: only a gs:// setting needs it

    client = Client()
    client.bucket(bucket).blob(name).download_to_filename(str(destination), timeout=DOWNLOAD_TIMEOUT_SECONDS)


class GcsCopy:
    """The local copy of one gs:// object: fetched at most once per process, failures retried later."""

    def __init__(
        self,
        uri: str,
        *,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        downloader: Downloader = download_from_gcs,
        retry_after: float = RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = uri
        self.bucket, self.name = parse_gs_uri(uri)
        digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
        # The digest keeps two settings with the same file name apart; the name keeps it readable.
        self.path = Path(cache_dir) / f"{digest}-{Path(self.name).name}"
        self._downloader = downloader
        self._retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failed_at: float | None = None

    def local_path(self) -> str | None:
        """The copy's path once it exists; None while another thread fetches it or after a recent failure."""
        if self.path.is_file():
            return str(self.path)
        if not self._lock.acquire(blocking=False):
            return None  # somebody else is fetching it right now
        try:
            if self.path.is_file():
                return str(self.path)
            if self._failed_at is not None and self._clock() - self._failed_at < self._retry_after:
                return None
            return self._fetch()
        finally:
            self._lock.release()

    def _fetch(self) -> str | None:
        partial: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Download beside the final name, then rename: a reader never sees half a database.
            fd, partial = tempfile.mkstemp(dir=self.path.parent, prefix=".partial-")
            os.close(fd)
            self._downloader(self.bucket, self.name, Path(partial))
            if os.path.getsize(partial) == 0:
                raise ValueError("the object is empty")
            os.replace(partial, self.path)
        except Exception:  # whatever went wrong, a login must go on without a location
            self._failed_at = self._clock()
            log.warning(
                "could not copy the GeoIP database %s: locations are off for %.0f s",
                self.uri,
                self._retry_after,
                exc_info=True,
            )
            return None
        finally:
            if partial is not None and os.path.exists(partial):
                os.unlink(partial)
        self._failed_at = None
        log.info("copied the GeoIP database %s to %s", self.uri, self.path)
        return str(self.path)


_copies: dict[str, GcsCopy | None] = {}  # setting -> its copy (None: not a usable gs:// URI)
_copies_lock = threading.Lock()


def local_path(setting: str | None) -> str | None:
    """The file to open for `MYDEVICES_GEOIP_DB`: a path as given, a gs:// object via its local copy."""
    if not setting:
        return None
    if not setting.startswith(GS_PREFIX):
        return setting
    with _copies_lock:
        if setting not in _copies:
            try:
                _copies[setting] = GcsCopy(setting)
            except ValueError:
                log.warning("MYDEVICES_GEOIP_DB=%r is not gs://BUCKET/OBJECT: locations are off", setting)
                _copies[setting] = None
        copy = _copies[setting]
    return copy.local_path() if copy is not None else None
