"""The GeoIP database copied from Cloud Storage (mydevices/geoip_source.py), in process against a
Cloud Storage stand-in on loopback; tests/api/test_geoip_source.py shows it through the API."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mydevices import geoip_source
from support.gcs_standin import BUCKET, OBJECT, URI, GcsStandin, city_db_bytes, gcs

__all__ = ["city_db_bytes", "gcs"]  # fixtures


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    """The instance's own folder for its copy (tmp_path also holds the test's keyring)."""
    folder = tmp_path / "geoip"
    folder.mkdir()
    return folder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_missing_object_gives_no_location_and_is_retried_only_after_the_interval(
    gcs: GcsStandin, city_db_bytes: bytes, cache_dir: Path
) -> None:
    clock = Clock()
    copy = geoip_source.GcsCopy(URI, cache_dir=cache_dir, retry_after=300, clock=clock)
    assert copy.local_path() is None
    assert copy.local_path() is None  # within the interval: Cloud Storage is not asked again
    assert gcs.downloads == [(BUCKET, OBJECT)]
    gcs.objects[(BUCKET, OBJECT)] = city_db_bytes
    clock.now += 301
    path = copy.local_path()
    assert path is not None and Path(path).read_bytes() == city_db_bytes
    assert len(gcs.downloads) == 2
    assert [p.name for p in cache_dir.iterdir()] == [Path(path).name]  # no partial file left behind


def test_an_empty_object_is_not_taken_for_a_database(gcs: GcsStandin, cache_dir: Path) -> None:
    gcs.objects[(BUCKET, OBJECT)] = b""
    assert geoip_source.GcsCopy(URI, cache_dir=cache_dir).local_path() is None
    assert list(cache_dir.iterdir()) == []


def test_logins_during_the_download_do_not_wait_for_it(cache_dir: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(bucket: str, name: str, destination: Path) -> None:
        started.set()
        release.wait(10)
        destination.write_bytes(b"db")

    copy = geoip_source.GcsCopy(URI, cache_dir=cache_dir, downloader=slow)
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
