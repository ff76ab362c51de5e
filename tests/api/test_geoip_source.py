"""MYDEVICES_GEOIP_DB as a Cloud Storage object: copied once per instance, failures only cost the location.

Cloud Storage itself is out of reach here, so a small stand-in on loopback answers the JSON API's
media download (`GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`) and google-cloud-storage
is pointed at it with its own STORAGE_EMULATOR_HOST switch (which also makes it anonymous). What this
cannot show offline: real credentials, IAM (the function's service account reading the bucket) and
Google's checksum headers.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mydevices import geoip_source
from support.devices import IPHONE, LONDON_IP, PIXEL, Device, build_city_db

BUCKET = "mydevices-geo"
OBJECT = "dbip/city.mmdb"
URI = f"gs://{BUCKET}/{OBJECT}"


class GcsStandin:
    """Serves `objects` ({(bucket, name): bytes}) as media downloads and counts them."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.downloads: list[tuple[str, str]] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parsed = urllib.parse.urlsplit(self.path)
                parts = parsed.path.split("/")
                # /download/storage/v1/b/<bucket>/o/<quoted name>
                if len(parts) == 8 and parts[1:4] == ["download", "storage", "v1"] and parts[4] == "b":
                    key = (parts[5], urllib.parse.unquote(parts[7]))
                    standin.downloads.append(key)
                    body = standin.objects.get(key)
                    if body is not None:
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                payload = b'{"error": {"code": 404, "message": "No such object"}}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsStandin]:
    standin = GcsStandin()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", standin.url)
    yield standin
    standin.close()


@pytest.fixture(scope="module")
def city_db_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return Path(build_city_db(str(tmp_path_factory.mktemp("geo") / "city.mmdb"))).read_bytes()


# --- through the API, as a user sees it ---------------------------------------------------------


def test_logins_get_a_location_from_a_cloud_storage_database_downloaded_once(
    stack: Any, sign_up: Any, gcs: GcsStandin, city_db_bytes: bytes, tmp_path: Path
) -> None:
    gcs.objects[(BUCKET, OBJECT)] = city_db_bytes
    server = stack.start_function("api", "http", {
        "MYDEVICES_GEOIP_DB": URI,
        "MYDEVICES_TRUSTED_PROXIES": "1",
        "STORAGE_EMULATOR_HOST": gcs.url,
        "TMPDIR": str(tmp_path),  # where the instance keeps its copy
    })
    try:
        _, id_token = sign_up()
        from_london = {"X-Forwarded-For": LONDON_IP}
        phone = Device(server.url, dict(IPHONE))
        assert phone.login(id_token, headers=from_london).json()["session"]["location"] == "London, United Kingdom"
        pixel = Device(server.url, dict(PIXEL))
        assert pixel.login(id_token, headers=from_london).json()["session"]["location"] == "London, United Kingdom"
        listed = {s["sessionId"]: s["location"] for s in phone.get("/v1/sessions").json()["sessions"]}
        assert listed == {phone.session_id: "London, United Kingdom", pixel.session_id: "London, United Kingdom"}
        assert gcs.downloads == [(BUCKET, OBJECT)]  # the second login used the instance's copy
        assert [p.read_bytes() for p in (tmp_path / "mydevices-geoip").iterdir()] == [city_db_bytes]
    finally:
        server.stop()


# --- the copy's rules, in process (same stand-in, no function server) --------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_missing_object_gives_no_location_and_is_retried_only_after_the_interval(
    gcs: GcsStandin, city_db_bytes: bytes, tmp_path: Path
) -> None:
    clock = Clock()
    copy = geoip_source.GcsCopy(URI, cache_dir=tmp_path, retry_after=300, clock=clock)
    assert copy.local_path() is None
    assert copy.local_path() is None  # within the interval: Cloud Storage is not asked again
    assert gcs.downloads == [(BUCKET, OBJECT)]
    gcs.objects[(BUCKET, OBJECT)] = city_db_bytes
    clock.now += 301
    path = copy.local_path()
    assert path is not None and Path(path).read_bytes() == city_db_bytes
    assert len(gcs.downloads) == 2
    assert [p.name for p in tmp_path.iterdir()] == [Path(path).name]  # no partial file left behind


def test_an_empty_object_is_not_taken_for_a_database(gcs: GcsStandin, tmp_path: Path) -> None:
    gcs.objects[(BUCKET, OBJECT)] = b""
    assert geoip_source.GcsCopy(URI, cache_dir=tmp_path).local_path() is None
    assert list(tmp_path.iterdir()) == []


def test_logins_during_the_download_do_not_wait_for_it(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(bucket: str, name: str, destination: Path) -> None:
        started.set()
        release.wait(10)
        destination.write_bytes(b"db")

    copy = geoip_source.GcsCopy(URI, cache_dir=tmp_path, downloader=slow)
    results: list[str | None] = []
    first = threading.Thread(target=lambda: results.append(copy.local_path()))
    first.start()
    assert started.wait(10)
    assert copy.local_path() is None  # a concurrent login: no location rather than a wait
    release.set()
    first.join(10)
    assert results == [str(copy.path)]
    assert copy.local_path() == str(copy.path)


@pytest.mark.parametrize("uri", ["gs://", "gs://bucket", "gs://bucket/", "gs:///object", "gs://bucket/dir/"])
def test_a_gs_setting_must_name_an_object(uri: str) -> None:
    with pytest.raises(ValueError, match="gs://BUCKET/OBJECT"):
        geoip_source.parse_gs_uri(uri)
    assert geoip_source.local_path(uri) is None  # a bad setting turns locations off, never fails a login


def test_object_names_keep_their_folders() -> None:
    assert geoip_source.parse_gs_uri("gs://b/geo/2024-05/city.mmdb") == ("b", "geo/2024-05/city.mmdb")


def test_a_plain_path_is_used_as_given() -> None:
    assert geoip_source.local_path("/srv/geo/city.mmdb") == "/srv/geo/city.mmdb"
    assert geoip_source.local_path(None) is None
    assert geoip_source.local_path("") is None
