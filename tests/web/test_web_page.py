"""The web "My devices" page in a real browser: Debian's Chromium, driven by Playwright.

Two browser contexts are two devices (separate cookie jars). The page is served the way
`infra/local/run` serves it: infra/local/hosting.py (Firebase Hosting's stand-in) gives the page and
the api function one origin, and the page signs in against the Auth emulator's REST API.

The api function here trusts two proxies and has a small GeoIP database, so a browser can
claim an address through `X-Forwarded-For` (the hosting proxy appends the real one): the
screenshot then shows places, as a deployed page would.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Dialog, Locator, Page, Request, Route, expect

from infra.local.stack import REPO_ROOT, HostingServer, Stack, free_port
from support.browser import chromium
from support.devices import LONDON_IP, Device, build_city_db
from support.serving import serving

SCREENSHOT = REPO_ROOT / "docs" / "my-devices.png"

MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")
WINDOWS_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0")
SWEDEN_IP = "2001:db9::1"  # in support.devices.build_city_db's Swedish network
XSS_NAME = "<img src=x onerror=alert(1)>"
PASSWORD = "correct-horse-9"
# How long a page may take to notice a change made elsewhere: it polls every 2 s, and a loaded CI
# machine may take a few more to answer. Every other wait has the same bound (set in `browser`).
NOTICED_WITHIN_MS = 15_000
# Where "change your password" leads after a "No" (the href of index.html's #change-password).
CHANGE_PASSWORD_URL = "/account"


@pytest.fixture(scope="module")
def web_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = build_city_db(str(tmp_path_factory.mktemp("web-geo") / "city.mmdb"))
    env = {"MYDEVICES_GEOIP_DB": db, "MYDEVICES_TRUSTED_PROXIES": "2"}
    with serving(stack, "api", env, own_port=True) as server:
        yield server.url


@pytest.fixture(scope="module")
def hosting(stack: Stack, web_api: str) -> Iterator[HostingServer]:
    server = stack.start_hosting(web_api, port=free_port())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=NOTICED_WITHIN_MS)
    with chromium() as launched:
        yield launched


def open_device(browser: Browser, user_agent: str, address: str, dialogs: list[str]) -> Page:
    """A new device (its own cookie jar) whose requests claim `address` through one proxy hop."""
    context = browser.new_context(
        user_agent=user_agent,
        extra_http_headers={"X-Forwarded-For": address},
        viewport={"width": 920, "height": 640},
        locale="en-GB",
        timezone_id="Europe/London",
    )
    page = context.new_page()

    def record(dialog: Dialog) -> None:  # an alert() would mean injected script ran
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return page


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.locator("#signin-form").get_by_label("Email").fill(email)
    page.locator("#signin-form").get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def rows(page: Page) -> Locator:
    return page.locator("#sessions > li")


def row(page: Page, name: str) -> Locator:
    return page.locator("#sessions > li", has=page.locator(".device-name", has_text=name))


def test_two_devices_see_each_other_close_each_other_and_get_signed_out(
    stack: Stack, web_api: str, hosting: HostingServer, browser: Browser
) -> None:
    email = f"web-{secrets.token_hex(4)}@example.com"
    _, id_token = stack.auth.sign_up(email, PASSWORD)
    dialogs: list[str] = []
    mac = open_device(browser, MAC_CHROME, LONDON_IP, dialogs)
    pc = open_device(browser, WINDOWS_EDGE, SWEDEN_IP, dialogs)

    # The Mac: a wrong password is refused, the right one lists this device alone.
    mac.goto(hosting.page_url)
    sign_in(mac, email, "not-the-password")
    expect(mac.locator("#signin-error")).to_have_text("Wrong email or password.")
    sign_in(mac, email)
    expect(rows(mac)).to_have_count(1)
    this_mac = mac.locator("#sessions > li.current")
    expect(this_mac.locator(".device-name")).to_have_text("Chrome on macOS")
    expect(this_mac.locator(".badge")).to_have_text("This device")
    expect(this_mac).to_contain_text("Web browser · London, United Kingdom")
    expect(this_mac).to_contain_text("Active now")
    expect(this_mac.get_by_role("button")).to_have_count(0)
    expect(mac.locator("#only-device")).to_be_visible()
    expect(mac.get_by_role("button", name="Close all other sessions")).to_be_hidden()

    # The PC signs in: it sees both, itself marked; the Mac sees it appear without a reload.
    pc.goto(hosting.page_url)
    sign_in(pc, email)
    expect(rows(pc)).to_have_count(2)
    expect(pc.locator("#sessions > li.current .device-name")).to_have_text("Edge on Windows")
    mac_on_pc = row(pc, "Chrome on macOS")
    expect(mac_on_pc.get_by_role("button", name="Close the session on Chrome on macOS")).to_be_visible()
    expect(rows(mac)).to_have_count(2, timeout=NOTICED_WITHIN_MS)
    expect(mac.locator("#sessions > li.current .device-name")).to_have_text("Chrome on macOS")
    pc_on_mac = row(mac, "Edge on Windows")
    expect(pc_on_mac).to_contain_text("Sweden")
    expect(pc_on_mac).to_contain_text(re.compile(r"Active (just now|\d+ minutes? ago)"))
    expect(pc_on_mac).to_contain_text("Signed in ")
    expect(mac.locator("#only-device")).to_be_hidden()
    expect(mac.get_by_role("button", name="Close all other sessions")).to_be_hidden()  # one other

    # A phone signs in through the API: three sessions, so "close all other sessions" shows.
    phone = Device(web_api, device={"name": "Pixel 8", "platform": "android", "osVersion": "14"})
    phone.login(id_token, headers={"X-Forwarded-For": LONDON_IP})
    expect(rows(mac)).to_have_count(3, timeout=NOTICED_WITHIN_MS)
    expect(row(mac, "Pixel 8")).to_contain_text("Android app · London, United Kingdom")
    expect(mac.get_by_role("button", name="Close all other sessions")).to_be_visible()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    mac.screenshot(path=str(SCREENSHOT), full_page=True)

    # A device whose name is HTML: it is shown as text, and nothing of it runs.
    intruder = Device(web_api, device={"name": XSS_NAME, "model": "iPad13,1", "platform": "ios"})
    intruder.login(id_token)
    expect(rows(mac)).to_have_count(4, timeout=NOTICED_WITHIN_MS)
    expect(row(mac, XSS_NAME).locator(".device-name")).to_have_text(XSS_NAME)
    expect(row(mac, XSS_NAME)).to_contain_text("iPhone or iPad app · iPad13,1 · Location unknown")
    expect(mac.locator("#sessions img")).to_have_count(0)

    # The Mac closes the PC: its row goes, and the PC's page says it was signed out.
    pc_on_mac.get_by_role("button", name="Close the session on Edge on Windows").click()
    pc_on_mac.get_by_role("button", name="Close", exact=True).click()  # it asks first
    expect(rows(mac)).to_have_count(3)
    expect(pc.locator("#signin-notice")).to_have_text(
        "You were signed out: this device's session was closed from another device.", timeout=NOTICED_WITHIN_MS
    )
    expect(pc.locator("#signin-form").get_by_label("Email")).to_be_visible()

    # The HTML-named device signs out by itself: its row leaves the Mac's page without a reload.
    assert intruder.post("/v1/sessions/logout").status_code == 200
    expect(rows(mac)).to_have_count(2, timeout=NOTICED_WITHIN_MS)
    expect(row(mac, XSS_NAME)).to_have_count(0)

    # The PC comes back; "Close all other sessions" closes it and the phone.
    sign_in(pc, email)
    expect(rows(pc)).to_have_count(3)
    expect(rows(mac)).to_have_count(3, timeout=NOTICED_WITHIN_MS)
    mac.get_by_role("button", name="Close all other sessions").click()
    mac.get_by_role("button", name="Close all", exact=True).click()  # it asks first
    expect(rows(mac)).to_have_count(1)
    expect(mac.locator("#only-device")).to_be_visible()
    expect(mac.get_by_role("button", name="Close all other sessions")).to_be_hidden()
    expect(pc.locator("#signin-notice")).to_contain_text("You were signed out", timeout=NOTICED_WITHIN_MS)
    assert phone.get("/v1/sessions").status_code == 401

    # No script ever held a token: they live in HttpOnly cookies, and nothing is in storage.
    cookies = {cookie["name"]: cookie for cookie in mac.context.cookies()}
    for name in ("__Host-mydevices-did", "__Host-mydevices-at", "__Host-mydevices-rt"):
        assert cookies[name]["httpOnly"] and cookies[name]["secure"] and cookies[name]["sameSite"] == "Strict"
    assert mac.evaluate("document.cookie") == ""
    assert mac.evaluate("localStorage.length + sessionStorage.length") == 0

    # The connection drops: the list stays with a banner saying so, which goes when calls get through.
    mac.route("**/v1/sessions", lambda route: route.abort())
    expect(mac.locator("#banner")).to_have_text(
        "Can't reach the server. Check your connection. Retrying…", timeout=NOTICED_WITHIN_MS
    )
    expect(rows(mac)).to_have_count(1)
    mac.unroute("**/v1/sessions")
    expect(mac.locator("#banner")).to_be_hidden(timeout=NOTICED_WITHIN_MS)

    # The Mac signs out; a reload finds it still signed out.
    mac.locator("#logout").click()
    expect(mac.locator("#signin-notice")).to_have_text("You signed out.")
    mac.reload()
    expect(mac.locator("#signin-form").get_by_label("Email")).to_be_visible()
    expect(mac.locator("#signin-notice")).to_be_hidden()
    assert dialogs == []
    mac.context.close()
    pc.context.close()


def test_a_sign_in_elsewhere_asks_was_that_you_and_no_closes_it(
    stack: Stack, web_api: str, hosting: HostingServer, browser: Browser
) -> None:
    """The web page answers alerts as the push's buttons do: live, with the server's sentence, and
    "No" closes the new session (GET /v1/alerts, POST /v1/alerts/respond)."""
    email = f"alert-{secrets.token_hex(4)}@example.com"
    stack.auth.sign_up(email, PASSWORD)
    dialogs: list[str] = []
    mac = open_device(browser, MAC_CHROME, LONDON_IP, dialogs)
    pc = open_device(browser, WINDOWS_EDGE, SWEDEN_IP, dialogs)
    mac.goto(hosting.page_url)
    sign_in(mac, email)
    expect(rows(mac)).to_have_count(1)
    expect(mac.locator("#alerts > li")).to_have_count(0)
    pc.goto(hosting.page_url)
    sign_in(pc, email)
    expect(rows(pc)).to_have_count(2)
    alert = mac.locator("#alerts > li")
    expect(alert).to_have_count(1, timeout=NOTICED_WITHIN_MS)
    expect(alert.locator(".alert-text")).to_have_text(re.compile(
        r"^Signed in on “Edge on Windows” from .*Sweden\. Was that you\?$"))
    expect(pc.locator("#alerts > li")).to_have_count(0)  # never asked of the newer session
    alert.get_by_role("button", name="No, close this session").click()
    expect(alert).to_have_count(0)
    expect(mac.locator("#alert-result")).to_contain_text("We closed that session")
    advice = mac.locator("#alert-result").get_by_role("link", name="change your password")
    expect(advice).to_have_attribute("href", CHANGE_PASSWORD_URL)
    expect(rows(mac)).to_have_count(1)
    expect(pc.locator("#signin-notice")).to_contain_text("You were signed out", timeout=NOTICED_WITHIN_MS)
    assert dialogs == []
    mac.context.close()
    pc.context.close()


def new_account(stack: Stack, prefix: str) -> tuple[str, str]:
    """A fresh account: its email and a Firebase ID token for API logins."""
    email = f"{prefix}-{secrets.token_hex(4)}@example.com"
    _, id_token = stack.auth.sign_up(email, PASSWORD)
    return email, id_token


def signed_in_mac(browser: Browser, hosting: HostingServer, email: str) -> Page:
    mac = open_device(browser, MAC_CHROME, LONDON_IP, [])
    mac.goto(hosting.page_url)
    sign_in(mac, email)
    expect(rows(mac)).to_have_count(1)
    return mac


def test_sign_out_is_for_this_device_and_close_session_for_the_others(
    stack: Stack, web_api: str, hosting: HostingServer, browser: Browser
) -> None:
    """One word per action: the top bar's "Sign out" signs this device out; another device's row says
    "Close session" (named after that device for a screen reader), and so does the button that closes
    all the others; this device's own row has no button."""
    email, id_token = new_account(stack, "words")
    mac = signed_in_mac(browser, hosting, email)
    for name in ("Pixel 8", "Galaxy Tab"):
        Device(web_api, device={"name": name, "platform": "android"}).login(id_token)
    expect(rows(mac)).to_have_count(3, timeout=NOTICED_WITHIN_MS)
    expect(mac.get_by_role("button", name=re.compile("sign out", re.IGNORECASE))).to_have_count(1)
    expect(mac.locator("#logout")).to_have_text("Sign out")
    pixel = row(mac, "Pixel 8")
    expect(pixel.get_by_role("button")).to_have_text(["Close session"])
    expect(pixel.get_by_role("button", name="Close the session on Pixel 8", exact=True)).to_be_visible()
    expect(mac.locator("#sessions > li.current").get_by_role("button")).to_have_count(0)
    expect(mac.locator("#revoke-others")).to_have_text("Close all other sessions")
    mac.context.close()


def test_closing_asks_first_in_the_page_and_only_yes_sends_the_request(
    stack: Stack, web_api: str, hosting: HostingServer, browser: Browser
) -> None:
    """A row's close button and "close all other sessions" each turn into an in-page question (no
    window.confirm): nothing is sent until its confirming button is pressed, and Cancel sends nothing."""
    email, id_token = new_account(stack, "confirm")
    mac = signed_in_mac(browser, hosting, email)
    closing: list[str] = []
    mac.on("request", lambda request: closing.append(f"{request.method} {request.url}")
           if request.method == "DELETE" or request.url.endswith("/v1/sessions/revoke-others") else None)
    devices = {name: Device(web_api, device={"name": name, "platform": "android"}) for name in
               ("Pixel 8", "Galaxy Tab", "Moto G")}
    for device in devices.values():
        device.login(id_token)
    expect(rows(mac)).to_have_count(4, timeout=NOTICED_WITHIN_MS)

    pixel = row(mac, "Pixel 8")
    pixel.locator("button.close").click()
    mac.wait_for_timeout(500)
    assert closing == []
    expect(pixel).to_contain_text("Close the session on “Pixel 8”?")
    expect(pixel.get_by_role("button", name="Cancel")).to_be_focused()
    pixel.get_by_role("button", name="Cancel").click()
    expect(pixel.get_by_role("button", name="Close the session on Pixel 8", exact=True)).to_be_focused()
    expect(pixel.get_by_role("button", name="Cancel")).to_have_count(0)
    mac.wait_for_timeout(500)
    assert closing == []
    pixel.locator("button.close").click()
    pixel.get_by_role("button", name="Close", exact=True).click()
    expect(rows(mac)).to_have_count(3)
    assert len(closing) == 1 and closing[0].startswith("DELETE ")
    assert closing[0].endswith(f"/v1/sessions/{devices['Pixel 8'].session_id}")
    assert devices["Pixel 8"].get("/v1/sessions").status_code == 401

    others = mac.locator("#revoke-others")
    others.click()
    expect(mac.locator("#view-devices")).to_contain_text("Close all 2 other sessions?")
    mac.wait_for_timeout(500)
    assert len(closing) == 1
    mac.get_by_role("button", name="Cancel").click()
    expect(others).to_be_focused()
    mac.wait_for_timeout(500)
    assert len(closing) == 1
    others.click()
    mac.get_by_role("button", name="Close all", exact=True).click()
    expect(rows(mac)).to_have_count(1)
    assert len(closing) == 2 and closing[1].endswith("/v1/sessions/revoke-others")
    assert devices["Moto G"].get("/v1/sessions").status_code == 401
    mac.context.close()


ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/156.0.0.0 Mobile Safari/537.36")


def test_a_device_icon_follows_the_device_not_only_the_app_kind(
    stack: Stack, web_api: str, hosting: HostingServer, browser: Browser
) -> None:
    """A web browser on a phone shows a phone, as the apps do: the page's own sign-in from Chrome on
    Android, a web session named as the page names Safari on an iPhone, one whose model says iPhone;
    a desktop browser keeps the screen."""
    email, id_token = new_account(stack, "icons")
    mac = signed_in_mac(browser, hosting, email)
    android = open_device(browser, ANDROID_CHROME, LONDON_IP, [])
    android.goto(hosting.page_url)
    sign_in(android, email)
    expect(rows(android)).to_have_count(2)
    Device(web_api, device={"name": "Safari on iOS", "platform": "web"}).login(id_token)
    Device(web_api, device={"name": "Work browser", "platform": "web", "model": "iPhone15,2"}).login(id_token)
    Device(web_api, device={"name": "Firefox on Linux", "platform": "web"}).login(id_token)
    Device(web_api, device={"name": "Pixel 8", "platform": "android"}).login(id_token)
    expect(rows(mac)).to_have_count(6, timeout=NOTICED_WITHIN_MS)
    icons = {"Chrome on Android": "#icon-ANDROID", "Safari on iOS": "#icon-IOS", "Work browser": "#icon-IOS",
             "Firefox on Linux": "#icon-WEB", "Pixel 8": "#icon-ANDROID", "Chrome on macOS": "#icon-WEB"}
    for name, icon in icons.items():
        expect(row(mac, name).locator("use")).to_have_attribute("href", icon)
    mac.context.close()
    android.context.close()


def test_a_signed_out_load_shows_the_form_without_a_failed_request(
    stack: Stack, hosting: HostingServer, browser: Browser
) -> None:
    """A browser with no session (never signed in, or signed out) gets the sign-in form with nothing
    red in the console: no 401 and no failed request, from Chromium's own log (CDP) too. Signed in,
    a reload finds the session as before."""
    email, _ = new_account(stack, "quiet")
    page = open_device(browser, MAC_CHROME, LONDON_IP, [])
    cdp = page.context.new_cdp_session(page)
    noise: list[str] = []
    cdp.on("Log.entryAdded", lambda event: noise.append(f"log {event['entry']['level']}: {event['entry']['text']}")
           if event["entry"]["level"] in ("error", "warning") else None)
    cdp.on("Runtime.consoleAPICalled", lambda event: noise.append(f"console.{event['type']}")
           if event["type"] in ("error", "warning", "warn") else None)
    cdp.on("Runtime.exceptionThrown", lambda event: noise.append(f"exception {event['exceptionDetails']}"))
    cdp.send("Log.enable")
    cdp.send("Runtime.enable")
    page.on("response", lambda response: noise.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    page.on("requestfailed", lambda request: noise.append(f"failed {request.url}"))

    def settled_signed_out() -> None:
        expect(page.locator("#signin-form").get_by_label("Email")).to_be_visible()
        page.wait_for_timeout(1000)  # no poll or late call after the form shows
        assert noise == []

    page.goto(hosting.page_url)
    settled_signed_out()
    sign_in(page, email)
    expect(rows(page)).to_have_count(1)
    page.reload()
    expect(rows(page)).to_have_count(1)
    assert noise == []
    page.locator("#logout").click()
    expect(page.locator("#signin-notice")).to_have_text("You signed out.")
    page.reload()
    settled_signed_out()
    page.context.close()


def test_loading_then_error_state_when_the_api_is_down(stack: Stack, browser: Browser) -> None:
    dead_api = f"http://127.0.0.1:{free_port()}"
    down = stack.start_hosting(dead_api, port=free_port())
    try:
        page = open_device(browser, MAC_CHROME, LONDON_IP, [])
        held: list[Route] = []

        def hold(route: Route) -> None:  # the first call waits: the loading state shows meanwhile
            held.append(route)

        page.route("**/v1/sessions/cookies", hold)  # the page's first call: does this browser hold a session?
        page.goto(down.page_url)
        expect(page.get_by_text("Loading your devices…")).to_be_visible()
        while not held:
            page.wait_for_timeout(20)
        held[0].continue_()
        expect(page.get_by_role("heading", name="Something went wrong")).to_be_visible()
        expect(page.locator("#failed-message")).to_have_text(
            "We couldn't load your devices. The service is unavailable right now."
        )
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        page.context.close()
    finally:
        down.stop()


# --- the JS client library across a browser's tabs ---------------------------------------------------
# Short access tokens, so a test can wait for several expiries. Longer than the library's 5 s early
# refresh (EARLY_MS in clients/js/src/mydevices.ts), so a bearer tab refreshes because its token is
# about to expire and not on every call; a cookie tab refreshes when the expired cookie gives a 401.
TABS_ACCESS_TTL_S = 7
# Each tab opens a file of the site that runs nothing (the page itself would poll and refresh on its
# own), so the tab has the site's origin and address; the test then imports the library into it.
# (A page fulfilled by the test through a route would be outside loopback's address space, and
# Chromium then refuses its calls to loopback.)
TABS_PAGE = "/style.css"
TABS_SETUP = """async ({ mode, api }) => {
  const lib = await import("/mydevices.js");  // the library as Hosting serves it to the real page
  window.client = new lib.MyDevicesClient(mode === "cookie"
    ? { credentials: "cookie", storage: lib.memoryStorage() }
    : { baseUrl: api, credentials: "bearer", storage: lib.browserStorage(localStorage) });
  window.signedOut = [];
  client.onSignedOut((reason) => signedOut.push(reason));
  return typeof navigator.locks?.request === "function";
}"""
# How long after the first tab the second fires its calls, one expiry each. Before the library looked
# again inside the lock, lags of 35-55 ms made a second refresh in bearer mode (one expiry in three
# or four, on 2 busy CPUs), hence the sweep; a cookie tab's expiry costs TABS_ACCESS_TTL_S, hence fewer.
TABS_LAGS_MS = {"cookie": [0, 15, 35, 60], "bearer": [0, 10, 20, 30, 35, 40, 45, 50, 55, 60, 80]}
# A tab fires its calls at `at` (ms since the epoch: the tabs share a clock).
TABS_BURST = """(at) => {
  const calls = () => [client.listSessions(), client.current(), client.pendingAlerts(), client.current(),
    client.listSessions()];
  window.burst = new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())))
    .then(() => Promise.allSettled(calls()))
    .then((all) => all.map((r) => r.status === "fulfilled" ? "ok" : `${r.reason.status} ${r.reason.code}`));
}"""


@pytest.fixture(scope="module")
def tabs_origin(stack: Stack) -> Iterator[tuple[HostingServer, str]]:
    """The page's origin (the hosting stand-in) and an api whose access tokens last TABS_ACCESS_TTL_S,
    which also lets that origin call it directly with bearer tokens (CORS), as a page hosted apart would."""
    port = free_port()
    env = {"MYDEVICES_ACCESS_TTL_SECONDS": str(TABS_ACCESS_TTL_S),
           "MYDEVICES_CORS_ORIGINS": f"http://localhost:{port}"}
    api = stack.start_function("api", "http", extra_env=env, port=free_port())
    hosting = stack.start_hosting(api.url, port=port)
    yield hosting, api.url
    hosting.stop()
    api.stop()


@pytest.mark.parametrize("mode", ["cookie", "bearer"])
def test_tabs_of_one_browser_refresh_once_per_expiry_however_many_calls_wait(
    stack: Stack, tabs_origin: tuple[HostingServer, str], browser: Browser, mode: str
) -> None:
    """The library's claim "refreshes once per expiry, and once across a browser's tabs" (Web Locks):
    two tabs of one browser profile (one context: shared cookies and localStorage), each with its own
    client, fire five calls each after the access token expired, at the same instant or a few ms apart.
    Exactly one refresh reaches the server per expiry, and every call succeeds. Cookie mode is the web page's
    (HttpOnly cookies, same origin); bearer mode a page on another origin keeping its tokens in
    localStorage (browserStorage). Without the lock each tab refreshes for itself (2 per expiry)."""
    hosting, api = tabs_origin
    # Bearer mode is a page of another origin than the API's: the site's CSP (connect-src 'self') is not its.
    context = browser.new_context(bypass_csp=mode == "bearer")
    refreshes: list[Request] = []
    context.on("request", lambda request: refreshes.append(request) if request.method == "POST"
               and request.url.split("?")[0].endswith("/v1/sessions/refresh") else None)
    try:
        tabs = [context.new_page(), context.new_page()]
        for tab in tabs:
            tab.goto(hosting.page_url + TABS_PAGE)
            assert tab.evaluate(TABS_SETUP, {"mode": mode, "api": api}), "no Web Locks in this tab"
        _, id_token = stack.auth.sign_up(f"tabs-{secrets.token_hex(4)}@example.com", PASSWORD)
        login = "async (idToken) => (await client.login({ idToken, device: { name: 'Tabs', platform: 'web' } }))"
        sid = tabs[0].evaluate(f"{login}.session.sessionId", id_token)
        assert tabs[1].evaluate("async () => (await client.resume())?.sessionId ?? null") == sid  # same session
        issued = time.monotonic()

        # The second tab fires 0 ms after the first, then later: while the first one's refresh is in
        # flight, and after it landed (its calls then find the new token).
        for expiry, lag_ms in enumerate(TABS_LAGS_MS[mode], start=1):
            # Wait out the access token: the cookie's Max-Age, or the bearer client's early refresh.
            lifetime = TABS_ACCESS_TTL_S if mode == "cookie" else TABS_ACCESS_TTL_S - 5
            time.sleep(max(0.0, issued + lifetime + 0.5 - time.monotonic()))
            at = int(time.time() * 1000) + 300
            for tab, lag in zip(tabs, [0, lag_ms], strict=True):
                tab.evaluate(TABS_BURST, at + lag)
            results = [tab.evaluate("() => window.burst") for tab in tabs]
            issued = time.monotonic()
            assert results == [["ok"] * 5, ["ok"] * 5], results
            statuses = [response.status if (response := r.response()) else None for r in refreshes]
            assert len(refreshes) == expiry, f"expiry {expiry} (lag {lag_ms} ms): {len(refreshes)} refreshes {statuses}"
            assert statuses == [200] * expiry
        assert [tab.evaluate("() => window.signedOut") for tab in tabs] == [[], []]
        assert all(tab.evaluate("async () => (await client.current()).sessionId") == sid for tab in tabs)
    finally:
        context.close()


# --- lifetimes and step-up (issue 21) ------------------------------------------------------------------
# An api whose web sessions end after an hour unused or two hours in all, and whose closing of other
# sessions (and widening of auto-close) needs a sign-in of the last ten minutes. The stack's clock is
# moved (the functions and the Auth emulator read it), never waited for; the page keeps polling meanwhile.
LIFETIMES = {"MYDEVICES_IDLE_TIMEOUT_WEB": "3600", "MYDEVICES_MAX_SESSION_AGE_WEB": "7200",
             "MYDEVICES_RECENT_SIGN_IN_SECONDS": "600"}


@pytest.fixture(scope="module")
def lifetimes_page(stack: Stack) -> Iterator[tuple[HostingServer, str]]:
    with serving(stack, "api", LIFETIMES, own_port=True) as server:
        hosting = stack.start_hosting(server.url, port=free_port())
        try:
            yield hosting, server.url
        finally:
            hosting.stop()


@pytest.fixture
def clock_put_back(stack: Stack) -> Iterator[None]:
    """These tests move the shared stack's clock: put it back for the next test."""
    offset = stack.clock.offset
    yield
    stack.clock.set(offset)


def refreshed_by_page(page: Page, move: Callable[[], None]) -> None:
    """Move the clock with `move`, then wait until the page's next poll refreshed its session (200) and
    a list came back after it: no call of the page is still on its way when the test moves on."""
    with page.expect_response(lambda r: r.url.endswith("/v1/sessions/refresh"), timeout=NOTICED_WITHIN_MS) as info:
        move()
    assert info.value.status == 200
    with page.expect_response(lambda r: r.url.endswith("/v1/sessions") and r.request.method == "GET",
                              timeout=NOTICED_WITHIN_MS) as listed:
        pass
    assert listed.value.status == 200


def listed(device: Device) -> requests.Response:
    """GET /v1/sessions as `device`, refreshed first (the clock moved past its access token): a closed
    session's refresh answers 401, which is returned."""
    answer = device.refresh()
    if answer.status_code != 200:
        return answer
    device.adopt(answer)
    return device.get("/v1/sessions")


@pytest.mark.usefixtures("clock_put_back")
def test_a_session_unused_past_its_idle_timeout_signs_the_page_out_saying_so(
    stack: Stack, lifetimes_page: tuple[HostingServer, str], browser: Browser
) -> None:
    hosting, _ = lifetimes_page
    email, _ = new_account(stack, "idle")
    mac = signed_in_mac(browser, hosting, email)
    refreshed_by_page(mac, lambda: stack.clock.advance(minutes=50))  # in use: the idle deadline moves on
    expect(rows(mac)).to_have_count(1)
    stack.clock.advance(minutes=61)  # then an hour and more with no refresh
    expect(mac.locator("#signin-notice")).to_have_text(
        "Your session expired because it was not used for a while. Sign in again.", timeout=NOTICED_WITHIN_MS)
    expect(mac.locator("#signin-form").get_by_label("Email")).to_be_visible()
    mac.context.close()


@pytest.mark.usefixtures("clock_put_back")
def test_a_session_past_its_maximum_age_signs_the_page_out_saying_so(
    stack: Stack, lifetimes_page: tuple[HostingServer, str], browser: Browser
) -> None:
    hosting, _ = lifetimes_page
    email, _ = new_account(stack, "maxage")
    mac = signed_in_mac(browser, hosting, email)
    for _ in range(2):  # used all along: never idle for an hour
        refreshed_by_page(mac, lambda: stack.clock.advance(minutes=50))
    expect(mac.locator("#signin-notice")).to_be_hidden()
    stack.clock.advance(minutes=21)  # 2 h 1 min since sign-in, 21 minutes since the last refresh
    expect(mac.locator("#signin-notice")).to_have_text(
        "Your session expired: it reached its maximum length. Sign in again.", timeout=NOTICED_WITHIN_MS)
    mac.context.close()


@pytest.mark.usefixtures("clock_put_back")
def test_closing_sessions_after_an_old_sign_in_asks_for_the_password_again_then_closes(
    stack: Stack, lifetimes_page: tuple[HostingServer, str], browser: Browser
) -> None:
    """403 recent_sign_in_required: the page asks "Confirm it's you" (email kept, password again), signs
    in to Firebase, re-verifies this session (reauthenticate) and retries; a wrong password or another
    account is said in the prompt and closes nothing; Cancel closes nothing; no new session is opened."""
    hosting, api = lifetimes_page
    email, id_token = new_account(stack, "stepup")
    mac = signed_in_mac(browser, hosting, email)
    devices = {name: Device(api, device={"name": name, "platform": "android"})
               for name in ("Pixel 8", "Galaxy Tab", "Moto G")}
    for device in devices.values():
        device.login(id_token)
    expect(rows(mac)).to_have_count(4, timeout=NOTICED_WITHIN_MS)
    refreshed_by_page(mac, lambda: stack.clock.advance(minutes=11))  # the page's sign-in is 11 minutes old
    calls: list[str] = []  # the page's calls that change something (polls and refreshes left out)

    def record(request: Request) -> None:
        path = request.url.split("?")[0].split("/v1/")[-1]
        if path.startswith("sessions") and request.method != "GET" and path != "sessions/refresh":
            calls.append(f"{request.method} {path}")

    mac.on("request", record)
    prompt = mac.locator("#reverify")

    # Close one: refused, the prompt asks; Cancel closes nothing.
    pixel = row(mac, "Pixel 8")
    pixel.locator("button.close").click()
    pixel.get_by_role("button", name="Close", exact=True).click()
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("Confirm it's you")
    expect(prompt.get_by_label("Email")).to_have_value(email)
    expect(prompt.get_by_label("Password")).to_be_focused()
    prompt.get_by_role("button", name="Cancel").click()
    expect(prompt).to_be_hidden()
    expect(rows(mac)).to_have_count(4)
    expect(pixel.locator("button.close")).to_be_enabled()
    assert listed(devices["Pixel 8"]).status_code == 200

    # Again: a wrong password, then another account's, are refused in the prompt; the right one closes it.
    pixel.locator("button.close").click()
    pixel.get_by_role("button", name="Close", exact=True).click()
    prompt.get_by_label("Password").fill("not-the-password")
    prompt.get_by_role("button", name="Confirm").click()
    expect(prompt.locator("#reverify-error")).to_have_text("Wrong email or password.")
    stranger, _ = new_account(stack, "stranger")
    prompt.get_by_label("Email").fill(stranger)
    prompt.get_by_label("Password").fill(PASSWORD)
    prompt.get_by_role("button", name="Confirm").click()
    expect(prompt.locator("#reverify-error")).to_have_text("That is not the account signed in here.")
    assert listed(devices["Pixel 8"]).status_code == 200
    prompt.get_by_label("Email").fill(email)
    prompt.get_by_label("Password").fill(PASSWORD)
    prompt.get_by_role("button", name="Confirm").click()
    expect(prompt).to_be_hidden()
    expect(rows(mac)).to_have_count(3)
    assert listed(devices["Pixel 8"]).status_code == 401
    pixel_path = f"sessions/{devices['Pixel 8'].session_id}"
    assert calls == [f"DELETE {pixel_path}", f"DELETE {pixel_path}", "POST sessions/current/reauthenticate",
                     "POST sessions/current/reauthenticate", f"DELETE {pixel_path}"], calls

    # Ten minutes later the proof is old again: "Close all other sessions" asks too, then closes them.
    refreshed_by_page(mac, lambda: stack.clock.advance(minutes=11))
    calls.clear()
    mac.locator("#revoke-others").click()
    mac.get_by_role("button", name="Close all", exact=True).click()
    expect(prompt).to_be_visible()
    prompt.get_by_label("Password").fill(PASSWORD)
    prompt.get_by_role("button", name="Confirm").click()
    expect(rows(mac)).to_have_count(1)
    expect(prompt).to_be_hidden()
    assert calls == ["POST sessions/revoke-others", "POST sessions/current/reauthenticate",
                     "POST sessions/revoke-others"], calls
    assert listed(devices["Moto G"]).status_code == 401
    expect(mac.locator("#sessions > li.current")).to_have_count(1)  # still this page's own session
    mac.context.close()


@pytest.mark.usefixtures("clock_put_back")
def test_the_auto_close_choice_shows_saves_asks_to_confirm_when_widened_and_closes_idle_sessions(
    stack: Stack, lifetimes_page: tuple[HostingServer, str], browser: Browser
) -> None:
    hosting, api = lifetimes_page
    email, id_token = new_account(stack, "autoclose")
    mac = signed_in_mac(browser, hosting, email)
    choice = mac.get_by_label("Close my sessions after")
    expect(choice).to_have_value("")  # never: the platform's own timeout only
    expect(mac.locator(".auto-close")).to_contain_text("without activity")
    assert [o.strip() for o in choice.locator("option").all_inner_texts()] == [
        "1 week", "1 month", "3 months", "6 months", "never"]

    # Narrowing needs no fresh sign-in; another device's page sees the choice on its next poll.
    choice.select_option(label="1 week")
    expect(mac.locator("#auto-close-status")).to_have_text("Saved.")
    phone = Device(api, device={"name": "Pixel 8", "platform": "android"})
    phone.login(id_token)
    assert listed(phone).json()["autoCloseAfterDays"] == 7
    phone.put("/v1/sessions/auto-close", json={"afterDays": 30})  # a fresh sign-in: it may widen
    expect(choice).to_have_value("30", timeout=NOTICED_WITHIN_MS)

    # Widening after an old sign-in asks first; Cancel leaves the choice as it was.
    refreshed_by_page(mac, lambda: stack.clock.advance(minutes=11))
    choice.select_option(label="6 months")
    prompt = mac.locator("#reverify")
    expect(prompt).to_be_visible()
    prompt.get_by_role("button", name="Cancel").click()
    expect(choice).to_have_value("30")
    assert listed(phone).json()["autoCloseAfterDays"] == 30
    choice.select_option(label="never")
    prompt.get_by_label("Password").fill(PASSWORD)
    prompt.get_by_role("button", name="Confirm").click()
    expect(mac.locator("#auto-close-status")).to_have_text("Saved.")
    expect(choice).to_have_value("")
    assert listed(phone).json()["autoCloseAfterDays"] is None
    mac.context.close()


def test_recent_security_activity_shows_the_servers_sentences_as_text(
    stack: Stack, web_api: str, hosting: HostingServer, browser: Browser
) -> None:
    """The "Recent security activity" section lists the user's entries of the last 30 days (GET
    /v1/activity), newest first; a hostile device name and a support note are shown as text, and
    what is older than 30 days is not listed. The entries are written here as the relay writes them
    (tests/events/test_activity.py runs the relay itself)."""
    from datetime import UTC, datetime, timedelta

    from google.cloud import firestore

    email = f"activity-{secrets.token_hex(4)}@example.com"
    uid, _ = stack.auth.sign_up(email, PASSWORD)
    now = datetime.fromtimestamp(stack.clock.now(), UTC)
    entries = firestore.Client(project=stack.project).collection(f"users/{uid}/activity")
    seeded: list[tuple[timedelta, dict[str, Any]]] = [
        (timedelta(days=31), {"kind": "signed_in", "deviceName": "Old phone", "alerted": False}),
        (timedelta(hours=2), {"kind": "signed_in", "deviceName": XSS_NAME, "location": "Paris, France",
                              "alerted": True}),
        (timedelta(hours=1), {"kind": "closed", "deviceName": XSS_NAME, "reason": "closed_by_support",
                              "closedBy": {"kind": "support", "sessionId": None, "deviceName": None,
                                           "note": "<b>Reported stolen</b> \u202eevil"}}),
    ]
    for n, (age, fields) in enumerate(seeded):
        at = now - age
        entries.document(f"e{n}").set({**fields, "at": at, "expireAt": at + timedelta(days=30), "sessionId": f"s{n}",
                                       "platform": "android",
                                       "order": f"{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{int(n == 2)}#e{n}"})
    dialogs: list[str] = []
    mac = open_device(browser, MAC_CHROME, LONDON_IP, dialogs)
    mac.goto(hosting.page_url)
    sign_in(mac, email)
    section = mac.get_by_role("region", name="Recent security activity")
    listed = section.locator("li .activity-text")
    expect(listed).to_have_count(2)  # the page's own sign-in is recorded by the relay, not running here
    expect(listed.nth(0)).to_have_text(
        "Session on \u201c<img src=x onerror=alert(1)>\u201d ended. Closed by support: <b>Reported stolen</b> evil")
    expect(listed.nth(1)).to_have_text(
        "Signed in on \u201c<img src=x onerror=alert(1)>\u201d from Paris, France. "
        "Your other devices were asked \u201cWas that you?\u201d")
    assert section.locator("img, b").count() == 0
    assert dialogs == []
    mac.context.close()
