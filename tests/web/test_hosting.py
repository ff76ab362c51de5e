"""infra/local/hosting.py, the local Firebase Hosting: what it serves, proxies and refuses.

In-process and without emulators: the server follows the real firebase.json, and its "api" is
either a tiny recording server or a port nobody listens on.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.local.hosting import FIREBASE_JSON, Site, glob_regex, make_server
from infra.local.stack import free_port

AUTH = "http://127.0.0.1:9099"


class _Upstream(BaseHTTPRequestHandler):
    """Stands for the api function: records what arrived, answers with two cookies."""

    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        payload = b'{"ok": true}'
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "__Host-a=1; Secure; HttpOnly; Path=/; SameSite=Strict")
        self.send_header("Set-Cookie", "__Host-b=2; Secure; HttpOnly; Path=/; SameSite=Strict")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serve(server: ThreadingHTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    with _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)) as port:
        yield port


def _hosting(api_url: str) -> contextlib.AbstractContextManager[int]:
    return _serve(make_server("127.0.0.1", 0, Site.from_config(FIREBASE_JSON, api_url, AUTH, "demo-x")))


@pytest.fixture(scope="module")
def hosting(upstream: int) -> Iterator[int]:
    with _hosting(f"http://127.0.0.1:{upstream}") as port:
        yield port


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """A raw request: the path goes out exactly as written (no `..` clean-up by a client library)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return response


def body_of(port: int, path: str) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    return response, response.read()


def test_firebase_globs_match_like_hosting() -> None:
    api = glob_regex("/v1/**")
    assert api.match("/v1/sessions") and api.match("/v1/sessions/abc/def")
    assert not api.match("/v10/sessions") and not api.match("/app.js")
    assets = glob_regex("**/*.@(html|js|css)")
    assert assets.match("/app.js") and assets.match("/a/b/style.css") and assets.match("/index.html")
    assert not assets.match("/app.json") and not assets.match("/")


def test_serves_the_page_files_with_types_and_hosting_headers(hosting: int) -> None:
    response, page = body_of(hosting, "/")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b'<script type="module" src="/app.js">' in page
    csp = response.getheader("Content-Security-Policy") or ""
    assert "script-src 'self'" in csp and "require-trusted-types-for 'script'" in csp
    assert f"connect-src 'self' https://identitytoolkit.googleapis.com {AUTH}" in csp  # the one local difference
    for module in ("app.js", "mydevices.js", "auth.js", "format.js", "view.js"):
        response, _ = body_of(hosting, f"/{module}")
        assert response.status == 200, module
        assert response.getheader("Content-Type") == "text/javascript; charset=utf-8"  # modules need a JS type
        assert response.getheader("Cache-Control") == "no-cache"


def test_answers_hostings_reserved_init_json_with_the_auth_emulator(hosting: int) -> None:
    response, body = body_of(hosting, "/__/firebase/init.json")
    assert response.status == 200
    init = json.loads(body)
    assert init["projectId"] == "demo-x" and init["authEmulatorUrl"] == AUTH and init["apiKey"]


@pytest.mark.parametrize("path", ["/../firebase.json", "/%2e%2e/firebase.json", "/..%2ffirebase.json",
                                  "/missing.html"])
def test_nothing_outside_the_public_folder_or_missing_is_served(hosting: int, path: str) -> None:
    response, body = body_of(hosting, path)
    assert response.status == 404
    assert b"firestore" not in body


def test_other_methods_on_static_paths_are_refused(hosting: int) -> None:
    response = request(hosting, "POST", "/index.html", b"{}")
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"


def test_rewrites_proxy_to_the_api_keeping_body_cookies_and_adding_one_hop(hosting: int) -> None:
    _Upstream.seen.clear()
    response = request(hosting, "POST", "/v1/sessions?x=1", b'{"device": {}}', {
        "Content-Type": "application/json", "Cookie": "__Host-mydevices-did=abc", "X-Forwarded-For": "81.2.69.142",
        "Origin": "http://localhost:5000", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors",
    })
    assert response.status == 201
    assert response.headers.get_all("Set-Cookie") == [
        "__Host-a=1; Secure; HttpOnly; Path=/; SameSite=Strict",
        "__Host-b=2; Secure; HttpOnly; Path=/; SameSite=Strict",
    ]
    assert response.getheader("Cache-Control") == "no-store"  # the API's own, not the page's
    [seen] = _Upstream.seen
    assert seen["path"] == "/v1/sessions?x=1"
    assert seen["body"] == b'{"device": {}}'
    assert seen["headers"]["Cookie"] == "__Host-mydevices-did=abc"
    assert seen["headers"]["X-Forwarded-For"] == "81.2.69.142, 127.0.0.1"
    # The api's same-origin check on cookie requests reads these, as behind Firebase Hosting.
    assert (seen["headers"]["Origin"], seen["headers"]["Sec-Fetch-Site"], seen["headers"]["Sec-Fetch-Mode"]) == (
        "http://localhost:5000", "same-origin", "cors")


def test_an_unreachable_api_is_a_json_503_with_retry_after() -> None:
    with _hosting(f"http://127.0.0.1:{free_port()}") as port:
        response, body = body_of(port, "/v1/sessions")
        assert response.status == 503
        assert response.getheader("Retry-After") == "2"
        assert json.loads(body)["error"]["code"] == "unavailable"
