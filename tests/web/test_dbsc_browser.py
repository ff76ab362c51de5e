"""DBSC in a real browser: Debian's Chromium with Device Bound Session Credentials on (software
keys), over HTTPS from the Hosting stand-in with the stack's self-signed certificate
(infra/local/tls.py). The key code is Chromium's; the server's is ours.

What it shows: a web login gets bound by the browser itself; when the bound cookie expires the
browser refreshes it by itself (403 challenge, then a proof) and the page's request succeeds; a
copy of the cookies in a second profile loses the session once the cookie expires while the first
keeps it; and when the server rejects the browser's proof, the browser ends its DBSC session.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore
from playwright.sync_api import BrowserContext, Page, sync_playwright

from infra.local.stack import REPO_ROOT, Stack, free_port
from infra.local.tls import chromium_switches, ensure_certificate
from support.browser import CHROMIUM
from support.serving import serving

COOKIE_SECONDS = 4


@pytest.fixture(scope="module")
def https_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def short_cookie_api(stack: Stack, https_port: int) -> Iterator[str]:
    """An api whose bound cookie lives a few seconds, so expiry can be waited for, and which
    knows the origin the browser calls it by (DPoP proofs name it)."""
    env = {"MYDEVICES_DBSC_COOKIE_SECONDS": str(COOKIE_SECONDS),
           "MYDEVICES_PUBLIC_API_URL": f"https://localhost:{https_port}"}
    with serving(stack, "api", env, own_port=True) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def https_site(stack: Stack, short_cookie_api: str, https_port: int,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("dbsc")
    cert = ensure_certificate(folder / "tls")
    port = https_port
    log = folder / "hosting.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "infra" / "local" / "hosting.py"), "--port", str(port),
                                 "--api", short_cookie_api, "--auth-emulator", f"http://{stack.auth.host}",
                                 "--project", stack.project, "--tls-cert", str(cert.cert), "--tls-key", str(cert.key)],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while "hosting " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield {"url": f"https://localhost:{port}", "cert": cert, "log": log, "folder": folder}
    finally:
        proc.terminate()
        proc.wait(10)


def _fetch(page: Page, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, str]:
    result = page.evaluate("""async ([method, path, body, token]) => {
        const headers = {'Content-Type': 'application/json'};
        if (token) headers['Authorization'] = 'Bearer ' + token;
        const r = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
        return [r.status, await r.text()];
    }""", [method, path, body, token])
    return int(result[0]), str(result[1])


def _refreshes(site: dict[str, Any]) -> int:
    return sum('"POST /v1/sessions/dbsc/refresh HTTP/1.1" 200' in line for line in site["log"].read_text().splitlines())


def _bound(db: firestore.Client, uid: str) -> list[Any]:
    return [(d.id, (d.to_dict() or {}).get("deviceBound"), (d.to_dict() or {}).get("status"))
            for d in db.collection(f"users/{uid}/sessions").stream()]


def _wait(check: Any, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _context(playwright: Any, site: dict[str, Any], name: str) -> BrowserContext:
    switches = chromium_switches(site["cert"], site["folder"] / name)[:2]  # the profile is the context's
    context: BrowserContext = playwright.chromium.launch_persistent_context(
        str(site["folder"] / name), executable_path=str(CHROMIUM), headless=True, args=switches)
    return context


def test_chromium_binds_refreshes_and_a_copied_profile_loses_the_session(
    https_site: dict[str, Any], stack: Stack, db: firestore.Client
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: infra/local/bootstrap --browser installs Debian's chromium")
    uid, token = stack.auth.sign_up()
    with sync_playwright() as playwright:
        owner = _context(playwright, https_site, "owner")
        page = owner.new_page()
        page.goto(https_site["url"] + "/")
        status, _ = _fetch(page, "POST", "/v1/sessions", {"device": {"name": "Chromium", "platform": "web"}}, token)
        assert status == 201
        assert _wait(lambda: any(bound for _, bound, _ in _bound(db, uid))), "Chromium did not register DBSC"
        status, text = _fetch(page, "GET", "/v1/sessions/current")
        assert status == 200 and '"deviceBound": true' in text

        copy = _context(playwright, https_site, "copy")
        copy.add_cookies(owner.cookies())  # type: ignore[arg-type]  # the cookie jar, copied into another profile
        copy_page = copy.new_page()
        copy_page.goto(https_site["url"] + "/")
        assert _fetch(copy_page, "GET", "/v1/sessions/current")[0] == 200  # until the bound cookie expires

        before = _refreshes(https_site)
        time.sleep(COOKIE_SECONDS + 1)
        status, _ = _fetch(page, "GET", "/v1/sessions/current")  # the owner's browser refreshes by itself
        assert status == 200 and _refreshes(https_site) > before
        status, text = _fetch(copy_page, "GET", "/v1/sessions/current")
        assert status == 401 and "bound_cookie_required" in text
        assert _fetch(page, "POST", "/v1/sessions/refresh")[0] == 200  # the owner's tokens rotate as before

        # The server now rejects the browser's proofs (its stored key is another one): the next
        # refresh is a copied-credential incident, the 401 ends the DBSC session in the browser.
        sid = next(sid for sid, _, _ in _bound(db, uid))
        other = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                 "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        db.document(f"users/{uid}/sessions/{sid}").update({"dbscJwk": other})
        time.sleep(COOKIE_SECONDS + 1)
        status, text = _fetch(page, "GET", "/v1/sessions/current")
        assert status == 401, text
        assert _wait(lambda: _bound(db, uid)[0][2] == "revoked")
        after = _refreshes(https_site)
        time.sleep(1)
        _fetch(page, "GET", "/v1/sessions/current")
        assert _refreshes(https_site) == after  # the browser no longer tries
        copy.close()
        owner.close()


WEBCRYPTO_DPOP = """async (idToken) => {
  const { subtle } = crypto;
  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const text = (value) => b64(new TextEncoder().encode(JSON.stringify(value)));
  const keys = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  let privateExportRefused = false;
  try { await subtle.exportKey("jwk", keys.privateKey); } catch { privateExportRefused = true; }
  const { kty, crv, x, y } = await subtle.exportKey("jwk", keys.publicKey);
  const jwk = { kty, crv, x, y };
  const login = await fetch("/v1/sessions", { method: "POST",
    headers: { Authorization: "Bearer " + idToken, "Content-Type": "application/json" },
    body: JSON.stringify({ device: { name: "Chromium WebCrypto", platform: "android" }, devicePublicKey: jwk }) });
  const session = await login.json();
  let nonce = login.headers.get("DPoP-Nonce");
  const statuses = [];
  let refreshToken = session.refreshToken;
  for (let i = 0; i < 2; i += 1) {
    const htu = location.origin + "/v1/sessions/refresh";
    const input = text({ typ: "dpop+jwt", alg: "ES256", jwk }) + "." + text({ jti: crypto.randomUUID(),
      htm: "POST", htu, iat: Math.floor(Date.now() / 1000), nonce });
    const signature = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey,
      new TextEncoder().encode(input));
    const answer = await fetch("/v1/sessions/refresh", { method: "POST",
      headers: { "X-Device-Id": session.deviceId, "Content-Type": "application/json",
                 DPoP: input + "." + b64(signature) },
      body: JSON.stringify({ refreshToken }) });
    const body = await answer.json();
    statuses.push(answer.status);
    nonce = answer.headers.get("DPoP-Nonce") || nonce;
    refreshToken = body.refreshToken || refreshToken;
  }
  return { loginStatus: login.status, deviceBound: session.session && session.session.deviceBound,
           privateExportRefused, statuses };
}"""


def test_a_webcrypto_dpop_client_in_chromium(https_site: dict[str, Any], stack: Stack) -> None:
    """The app flow with Chromium's WebCrypto holding a non-extractable key (the proofs' `htu` is
    the HTTPS origin the browser calls, MYDEVICES_PUBLIC_API_URL)."""
    _, token = stack.auth.sign_up()
    with sync_playwright() as playwright:
        context = _context(playwright, https_site, "webcrypto")
        page = context.new_page()
        page.goto(https_site["url"] + "/")
        seen = page.evaluate(WEBCRYPTO_DPOP, token)
        context.close()
    assert seen == {"loginStatus": 201, "deviceBound": True, "privateExportRefused": True, "statuses": [200, 200]}
