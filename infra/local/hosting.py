"""A local stand-in for Firebase Hosting: the web page and the API on one origin.

The page's cookies are ``__Host-`` cookies with SameSite=Strict, so the page and the API must
share an origin; in production Firebase Hosting gives them one (its ``rewrites`` send ``/v1/**``
and ``/.well-known/**`` to the ``api`` function). This server does the same from the same
``firebase.json``: it serves ``hosting.public``, applies ``hosting.headers``, and proxies every
path a ``rewrites`` entry sends to a function to ``--api``. It also answers Hosting's reserved
``/__/firebase/init.json`` (the page reads its web config there), adding ``authEmulatorUrl`` so
the page signs in against the Auth emulator instead of Google.

Differences from production, on purpose:

* ``connect-src`` of a Content-Security-Policy also allows the Auth emulator's origin.
* Cookies reach the function untouched. Firebase Hosting forwards only a cookie named
  ``__session`` to functions and strips the others
  (https://firebase.google.com/docs/hosting/manage-cache#using_cookies); the deployed ``api``
  therefore runs with ``MYDEVICES_WEB_COOKIE=session`` (one ``__session`` cookie, see
  ``functions/mydevices/web_cookies.py``), while the local stack keeps the ``__Host-`` layout.
* Proxying appends the caller's address to ``X-Forwarded-For``, as one proxy hop does.

Browsers treat ``http://localhost`` as a secure context and keep Secure cookies from it
(verified with Chromium 156), so the page works over plain HTTP on loopback; open it as
``http://localhost:PORT``. Device Bound Session Credentials, though, run only over HTTPS: with
``--tls-cert``/``--tls-key`` (the certificate infra/local/tls.py makes) it serves HTTPS.

Stdlib only: ``python3 infra/local/hosting.py --port 5000 --api http://127.0.0.1:8080``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import ssl
import sys
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FIREBASE_JSON = REPO_ROOT / "firebase.json"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# Hop-by-hop headers (RFC 9110 7.6.1) and the ones this proxy sets itself.
_NOT_FORWARDED = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
}
MAX_BODY = 1 << 20  # the API refuses far less; this only bounds what the proxy buffers
PROXY_TIMEOUT = 30.0


def glob_regex(glob: str) -> re.Pattern[str]:
    """Firebase Hosting's glob (``**``, ``*``, ``?``, ``@(a|b)``) as a regex over the URL path."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob.startswith("@(", i) and ")" in glob[i:]:
            end = glob.index(")", i)
            out.append("(?:" + "|".join(re.escape(alt) for alt in glob[i + 2 : end].split("|")) + ")")
            i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    pattern = "".join(out)
    # "**/x" also matches "/x" and "x"; a glob without a leading slash matches from any depth.
    pattern = pattern.removeprefix(".*/")
    if glob.startswith("**/") or not glob.startswith("/"):
        pattern = "/?(?:.*/)?" + pattern
    return re.compile("^" + pattern + "$")


@dataclass
class Site:
    """What ``firebase.json``'s ``hosting`` block says, plus where the local pieces listen."""

    public: Path
    api_url: str
    init: dict[str, Any]
    function_paths: list[re.Pattern[str]] = field(default_factory=list)
    headers: list[tuple[re.Pattern[str], list[tuple[str, str]]]] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Path, api_url: str, auth_emulator_url: str | None, project: str) -> Site:
        hosting = json.loads(config.read_text(encoding="utf-8"))["hosting"]
        public = (config.parent / hosting["public"]).resolve()
        extra_connect = [_origin(auth_emulator_url)] if auth_emulator_url else []
        site = cls(public=public, api_url=api_url.rstrip("/"), init=_init_json(project, auth_emulator_url))
        for rewrite in hosting.get("rewrites", []):
            if "function" in rewrite or "run" in rewrite:
                site.function_paths.append(glob_regex(rewrite["source"]))
        for rule in hosting.get("headers", []):
            pairs = [(h["key"], _with_connect_src(h["key"], h["value"], extra_connect)) for h in rule["headers"]]
            site.headers.append((glob_regex(rule["source"]), pairs))
        return site

    def proxied(self, path: str) -> bool:
        return any(pattern.match(path) for pattern in self.function_paths)

    def headers_for(self, path: str) -> list[tuple[str, str]]:
        chosen: dict[str, tuple[str, str]] = {}
        for pattern, pairs in self.headers:
            if pattern.match(path):
                for key, value in pairs:
                    chosen[key.lower()] = (key, value)  # a later rule wins, as on Hosting
        return list(chosen.values())

    def file_for(self, path: str) -> Path | None:
        """The file under ``public`` a URL path names (``/`` -> index.html); None outside it."""
        relative = urllib.parse.unquote(path).lstrip("/")
        if relative == "" or relative.endswith("/"):
            relative += "index.html"
        candidate = (self.public / relative).resolve()
        if not candidate.is_relative_to(self.public) or not candidate.is_file():
            return None
        if any(part.startswith(".") for part in candidate.relative_to(self.public).parts):
            return None  # firebase.json ignores dotfiles: they are never deployed
        return candidate


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_connect_src(key: str, value: str, extra: list[str]) -> str:
    if key.lower() != "content-security-policy" or not extra:
        return value
    return re.sub(r"(connect-src[^;]*)", lambda m: " ".join([m.group(1), *extra]), value, count=1)


def _init_json(project: str, auth_emulator_url: str | None) -> dict[str, Any]:
    """Hosting's ``/__/firebase/init.json`` for a demo project (any API key works on the emulator)."""
    init: dict[str, Any] = {"projectId": project, "apiKey": f"{project}-local-key", "authDomain": "localhost"}
    if auth_emulator_url:
        init["authEmulatorUrl"] = auth_emulator_url.rstrip("/")
    return init


class HostingHandler(BaseHTTPRequestHandler):
    server_version = "mydevices-hosting"
    protocol_version = "HTTP/1.1"
    site: Site  # set on the subclass built by make_server

    def _handle(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if self.site.proxied(path):
            self._proxy(path)
        elif self.command not in ("GET", "HEAD"):
            self.close_connection = True  # its body is unread: the connection cannot carry another request
            self._send(405, b"method not allowed\n", "text/plain; charset=utf-8", path,
                       [("Allow", "GET, HEAD"), ("Connection", "close")])
        elif path == "/__/firebase/init.json":
            self._send(200, json.dumps(self.site.init).encode(), "application/json", path)
        else:
            self._static(path)

    def _static(self, path: str) -> None:
        found = self.site.file_for(path)
        if found is None:
            not_found = self.site.file_for("/404.html")
            body = not_found.read_bytes() if not_found else b"not found\n"
            self._send(404, body, CONTENT_TYPES[".html" if not_found else ".txt"], path)
            return
        content_type = CONTENT_TYPES.get(found.suffix, "application/octet-stream")
        self._send(200, found.read_bytes(), content_type, path)

    # BaseHTTPRequestHandler calls do_<METHOD>; every method takes the same route.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _proxy(self, path: str) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._api_error(411, "length_required", "send the body with a Content-Length", path,
                            [("Connection", "close")])
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._api_error(400, "invalid_request", "Content-Length is not a number", path, [("Connection", "close")])
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._api_error(413, "payload_too_large", "request body is too large", path, [("Connection", "close")])
            return
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
        forwarded = self.headers.get("X-Forwarded-For")
        client = self.client_address[0]
        headers["X-Forwarded-For"] = f"{forwarded}, {client}" if forwarded else client
        headers["X-Forwarded-Host"] = self.headers.get("Host", "")
        headers["X-Forwarded-Proto"] = "http"
        upstream = urllib.parse.urlsplit(self.site.api_url)
        connection = http.client.HTTPConnection(upstream.netloc, timeout=PROXY_TIMEOUT)
        try:
            connection.request(self.command, upstream.path + self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
        except (OSError, http.client.HTTPException):
            self._api_error(503, "unavailable", "the API function is not reachable, retry shortly", path,
                            [("Retry-After", "2")])
            return
        finally:
            connection.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():  # a list: several Set-Cookie headers all survive
            if key.lower() not in _NOT_FORWARDED:
                self.send_header(key, value)
        self._finish(payload, path, skip={k.lower() for k, _ in answer.getheaders()})

    def _api_error(self, status: int, code: str, message: str, path: str,
                   extra: list[tuple[str, str]] | None = None) -> None:
        """Answer like the API would (JSON error), so the page has one error shape to read."""
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self._send(status, body, "application/json", path, extra)

    def _send(self, status: int, body: bytes, content_type: str, path: str,
              extra: list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in extra or []:
            self.send_header(key, value)
        self._finish(body, path)

    def _finish(self, body: bytes, path: str, skip: set[str] | None = None) -> None:
        for key, value in self.site.headers_for(path):
            if key.lower() not in (skip or set()):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stdout.write(f"{self.log_date_time_string()} {format % args}\n")
        sys.stdout.flush()


def make_server(host: str, port: int, site: Site) -> ThreadingHTTPServer:
    handler = type("Handler", (HostingHandler,), {"site": site})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--api", required=True, help="base URL of the api function, e.g. http://127.0.0.1:8080")
    parser.add_argument("--auth-emulator", help="base URL of the Auth emulator, e.g. http://127.0.0.1:9099")
    parser.add_argument("--project", default="demo-mydevices")
    parser.add_argument("--config", type=Path, default=FIREBASE_JSON, help="the firebase.json to follow")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate (infra/local/tls.py)")
    parser.add_argument("--tls-key", type=Path, help="its PEM private key")
    args = parser.parse_args(argv)
    site = Site.from_config(args.config, args.api, args.auth_emulator, args.project)
    server = make_server(args.host, args.port, site)
    scheme = "http"
    if args.tls_cert is not None:
        # Chromium runs DBSC only over HTTPS without a certificate error (infra/local/tls.py).
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print(f"hosting {site.public} on {scheme}://localhost:{args.port} (API {site.api_url})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
