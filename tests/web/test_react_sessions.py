"""<ActiveSessions/> (clients/react) in Debian's Chromium against the real local stack: a scratch app
(clients/react/test/browser-app.js, bundled by esbuild with React and the built packages) served on the
API's origin by the Hosting stand-in, signed in in cookie mode, while other devices of the same user
sign in and are closed from the Python side."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from infra.local.hosting import Site, make_server
from infra.local.stack import REPO_ROOT, Stack, free_port
from support.browser import chromium
from support.devices import GALAXY, PIXEL, Device

REACT = REPO_ROOT / "clients" / "react"
IPAD = {"name": "iPad", "model": "iPad14,1", "platform": "ios", "osVersion": "18.1", "appVersion": "2.3.0"}


@pytest.fixture(scope="module")
def app_url(stack: Stack, api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundled scratch app behind the Hosting stand-in (its /v1/** rewrite to the api)."""
    site_dir = tmp_path_factory.mktemp("react-app")
    esbuild = REACT / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        pytest.fail("clients/react/node_modules is missing: infra/local/bootstrap --js-packages installs it (npm ci)")
    subprocess.run(["npm", "run", "--silent", "build"], cwd=REACT, check=True, timeout=120)
    subprocess.run([str(esbuild), "test/browser-app.js", "--bundle", "--format=esm", "--log-level=warning",
                    "--define:process.env.NODE_ENV=\"production\"", f"--outfile={site_dir / 'app.js'}"],
                   cwd=REACT, check=True, timeout=120)
    (site_dir / "index.html").write_text('<!doctype html><meta charset="utf-8"><title>Devices</title>'
                                         '<div id="root"></div><script type="module" src="/app.js"></script>')
    config = site_dir / "firebase.json"
    config.write_text(json.dumps({"hosting": {"public": ".", "rewrites": [
        {"source": "/v1/**", "function": {"functionId": "api"}}]}}))
    server = make_server("127.0.0.1", free_port(), Site.from_config(config, api, None, stack.project))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def row(page: Page, name: str) -> Any:
    return page.locator("li.mydevices-session", has_text=name)


def test_the_sessions_component_against_the_stack(stack: Stack, api: str, app_url: str, browser: Browser) -> None:
    _, id_token = stack.auth.sign_up()
    errors: list[str] = []
    page = browser.new_context().new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{app_url}#idToken={id_token}")
    rows = page.locator("li.mydevices-session")
    expect(rows).to_have_count(1)
    this = row(page, "Chrome on Linux")
    expect(this.locator(".mydevices-badge")).to_have_text("This device")
    expect(this.locator("button")).to_have_count(0)  # this device cannot be closed here
    expect(page.get_by_text("Sign out from all other sessions")).to_have_count(0)

    devices = {}
    for spec in (PIXEL, GALAXY, IPAD):
        devices[spec["name"]] = Device(api, dict(spec))
        devices[spec["name"]].login(id_token)
    expect(rows).to_have_count(4)
    expect(page.locator(".mydevices-alert")).to_have_count(3)  # "Was that you?" for each newer sign-in
    expect(page.get_by_role("button", name="Sign out from all other sessions")).to_be_visible()

    # Closing asks first; Cancel sends nothing.
    page.get_by_role("button", name="Close the session on iPad").click()
    expect(row(page, "iPad")).to_contain_text("Close the session on “iPad”?")
    row(page, "iPad").get_by_role("button", name="Cancel").click()
    expect(row(page, "iPad").get_by_role("button", name="Close the session on iPad")).to_be_visible()
    assert devices["iPad"].get("/v1/sessions/current").status_code == 200
    page.get_by_role("button", name="Close the session on iPad").click()
    row(page, "iPad").get_by_role("button", name="Close", exact=True).click()
    expect(rows).to_have_count(3)
    assert devices["iPad"].get("/v1/sessions/current").json()["error"]["code"] == "session_revoked"

    # "Was that you?": yes keeps the Galaxy, no closes the Pixel and advises a new password.
    galaxy_alert = page.locator(".mydevices-alert", has_text=GALAXY["name"])
    galaxy_alert.get_by_role("button", name="Yes, it was me").click()
    expect(galaxy_alert).to_have_count(0)
    pixel_alert = page.locator(".mydevices-alert", has_text=PIXEL["name"])
    expect(pixel_alert).to_contain_text("Was that you?")
    pixel_alert.get_by_role("button", name="No, close this session").click()
    expect(page.locator(".mydevices-alert-result")).to_contain_text("We closed that session.")
    expect(page.get_by_role("link", name="change your password")).to_have_attribute("href", "/password")
    expect(rows).to_have_count(2)
    expect(page.locator(".mydevices-alert")).to_have_count(0)
    expect(page.get_by_text("Sign out from all other sessions")).to_have_count(0)  # one other left
    assert devices[PIXEL["name"]].get("/v1/sessions/current").json()["error"]["code"] == "session_revoked"

    # Closed from the Galaxy: the page hears it through useSignedOut.
    page_sid = page.locator("li.mydevices-current").get_attribute("data-session-id")
    assert devices[GALAXY["name"]].delete(f"/v1/sessions/{page_sid}").status_code == 200
    expect(page.locator("body")).to_have_attribute("data-signed-out", "session_revoked", timeout=10000)
    assert errors == [], errors


def test_sign_out_from_all_other_sessions_asks_then_closes_them(
    stack: Stack, api: str, app_url: str, browser: Browser
) -> None:
    _, id_token = stack.auth.sign_up()
    page = browser.new_context().new_page()
    page.goto(f"{app_url}#idToken={id_token}")
    expect(page.locator("li.mydevices-session")).to_have_count(1)
    others = [Device(api, dict(spec)) for spec in (PIXEL, GALAXY)]
    for device in others:
        device.login(id_token)
    expect(page.locator("li.mydevices-session")).to_have_count(3)
    page.get_by_role("button", name="Sign out from all other sessions").click()
    expect(page.get_by_text("Sign out from all 2 other sessions?")).to_be_visible()
    page.get_by_role("button", name="Sign out all").click()
    expect(page.locator("li.mydevices-session")).to_have_count(1)
    assert [d.get("/v1/sessions/current").json()["error"]["code"] for d in others] == ["session_revoked"] * 2


