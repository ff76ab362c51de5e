"""A Cloud Storage stand-in on loopback for the GeoIP copy (mydevices/geoip_source.py): it serves
objects as media downloads and counts them, where STORAGE_EMULATOR_HOST points the client."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.devices import build_city_db

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
