"""MYDEVICES_GEOIP_DB as a Cloud Storage object: copied once per instance, failures only cost the location.

Cloud Storage itself is out of reach here, so a small stand-in on loopback answers the JSON API's
media download (`GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`) and google-cloud-storage
is pointed at it with its own STORAGE_EMULATOR_HOST switch (which also makes it anonymous). What this
cannot show offline: real credentials, IAM (the function's service account reading the bucket) and
Google's checksum headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.devices import IPHONE, LONDON_IP, PIXEL, Device
from support.gcs_standin import BUCKET, OBJECT, URI, GcsStandin, city_db_bytes, gcs

__all__ = ["city_db_bytes", "gcs"]  # fixtures


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
