"""The JavaScript client library (clients/js) against the real local stack: its own `node --test`
suite, run from here so `infra/local/test` runs it with the stack it needs, and its `npm pack`
tarball installed into a scratch project and used there, as an app team would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.stack import REPO_ROOT, Stack
from support.push import EventFunctions
from support.serving import serving

CLIENT = REPO_ROOT / "clients" / "js"
NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"


@pytest.fixture(scope="module")
def short_ttl_api(stack: Stack) -> Iterator[str]:
    """Access tokens of 1 s: every call finds its token about to expire."""
    with serving(stack, "api", {"MYDEVICES_ACCESS_TTL_SECONDS": "1"}, own_port=True) as server:
        yield server.url


def node_env(stack: Stack, api: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MYDEVICES_API_URL": api, "MYDEVICES_AUTH_URL": f"http://{stack.auth.host}",
            "MYDEVICES_FCM_URL": stack.fcm.url, **extra}


def test_the_library_suite_passes_in_node_against_the_stack(
    stack: Stack, api: str, short_ttl_api: str, event_functions: EventFunctions
) -> None:
    run = subprocess.run([NODE, "--test", "--test-reporter=spec", "test/"], check=False, cwd=CLIENT,
                         capture_output=True, text=True, timeout=300,
                         env=node_env(stack, api, MYDEVICES_SHORT_TTL_API_URL=short_ttl_api))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "ℹ fail 0" in run.stdout and "ℹ pass 6" in run.stdout, run.stdout[-3000:]  # the spec reporter


def test_the_page_runs_the_library_verbatim() -> None:
    """The page imports its own copy (Hosting serves only infra/hosting/public): it must be the library."""
    page_copy = REPO_ROOT / "infra" / "hosting" / "public" / "mydevices.js"
    assert page_copy.read_bytes() == (CLIENT / "src" / "mydevices.js").read_bytes(), (
        "cp clients/js/src/mydevices.js infra/hosting/public/mydevices.js")


SCRATCH_APP = """
import { MyDevicesClient, memoryStorage, parsePushData } from "@mydevices/client";
const auth = `${process.env.MYDEVICES_AUTH_URL}/identitytoolkit.googleapis.com/v1`;
const signUp = await fetch(`${auth}/accounts:signUp?key=any`, {
  method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify({ email: `scratch-${Date.now()}@example.com`, password: "correct-horse-9",
                         returnSecureToken: true }),
});
const { idToken } = await signUp.json();
const reasons = [];
const client = new MyDevicesClient({ baseUrl: process.env.MYDEVICES_API_URL, storage: memoryStorage(),
  onSignedOut: (reason) => reasons.push(reason) });
const { session } = await client.login({ idToken, device: { name: "Scratch app", platform: "android" } });
const list = await client.listSessions();
const alerts = await client.pendingAlerts();
await client.logout();
console.log(JSON.stringify({ sid: session.sessionId, names: list.sessions.map((s) => s.deviceName), alerts,
  reasons, push: parsePushData({ action: "force_logout", sessionId: "s", reason: "user_revoked" }) }));
"""


def test_the_npm_pack_tarball_installs_into_a_scratch_project_and_works(
    stack: Stack, api: str, tmp_path: Path
) -> None:
    packed = subprocess.run([NPM, "pack", "--json", "--pack-destination", str(tmp_path)], cwd=CLIENT,
                            capture_output=True, text=True, timeout=120, check=True)
    [info] = json.loads(packed.stdout)
    tarball = tmp_path / info["filename"]
    with tarfile.open(tarball) as archive:
        names = sorted(archive.getnames())
    assert names == ["package/LICENSE", "package/README.md", "package/package.json", "package/src/mydevices.d.ts",
                     "package/src/mydevices.js"]
    manifest = json.loads((CLIENT / "package.json").read_text())
    assert "dependencies" not in manifest and "peerDependencies" not in manifest  # no runtime dependencies

    app = tmp_path / "scratch-app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "scratch-app", "private": True, "type": "module"}))
    subprocess.run([NPM, "install", "--offline", "--no-audit", "--no-fund", str(tarball)], cwd=app,
                   capture_output=True, text=True, timeout=120, check=True)
    installed = app / "node_modules" / "@mydevices" / "client"
    assert (installed / "src" / "mydevices.d.ts").exists()
    assert sorted(p.name for p in (app / "node_modules").iterdir() if not p.name.startswith(".")) == ["@mydevices"]
    (app / "app.mjs").write_text(SCRATCH_APP)
    run = subprocess.run([NODE, "app.mjs"], check=False, cwd=app, capture_output=True, text=True, timeout=60,
                         env=node_env(stack, api))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["names"] == ["Scratch app"] and len(result["sid"]) == 22
    assert result["alerts"] == [] and result["reasons"] == ["logout"]
    assert result["push"] == {"type": "forceLogout", "sessionId": "s", "reason": "user_revoked"}


# The usage clients/js/README.md documents, plus the rest of the public API, as an app written in
# TypeScript would call it. `declare`d names are the app's own (its AsyncStorage, its sign-in screen).
TYPED_APP = """
import { MyDevicesClient, MyDevicesError, browserStorage, memoryStorage, parsePushData, reactNativeStorage }
  from "@mydevices/client";
import type { DeviceSession, PushEvent, SignedOutDetails, SignedOutReason } from "@mydevices/client";

declare const AsyncStorage: {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
};
declare function showSignIn(reason: SignedOutReason): void;
declare const idToken: string;
declare const token: string;
declare const data: Record<string, string>;

export async function readme(): Promise<void> {
  const client = new MyDevicesClient({
    baseUrl: "https://api.example.com",
    credentials: "bearer",
    storage: reactNativeStorage(AsyncStorage),
    onSignedOut: (reason, details) => showSignIn(reason),
  });
  await client.login({ idToken, device: { name: "Pixel 8", platform: "android" }, push: { token, provider: "fcm" } });
  const { sessions } = await client.listSessions();
  await client.closeSession(sessions[1].sessionId);
  const event = await client.handlePush(data);
  if (event?.type === "newLoginAlert") await client.respondToAlert(event.actionToken, "no");
}

export async function theRest(): Promise<string[]> {
  const web = new MyDevicesClient({ credentials: "cookie", storage: memoryStorage(), crossTabLock: false });
  const other = new MyDevicesClient({ storage: browserStorage(localStorage),
    fetch: (input, init) => fetch(input, init) });
  const stop: () => void = web.onSignedOut((reason: SignedOutReason, details: SignedOutDetails) => {
    const source: "api" | "push" | "logout" = details.source;
    console.log(reason, source, details.error?.code, details.status);
  });
  stop();
  const resumed: DeviceSession | null = await web.resume();
  const me: DeviceSession = await other.current();
  const stored = await other.session();
  const expires: number | null = stored.accessTokenExpiresAt;
  const { firebaseCustomToken } = await other.login({ idToken,
    device: { name: "iPhone 15", platform: "ios", osVersion: "18.1" }, firebaseCustomToken: true });
  const revoked: number = (await other.revokeOthers()).revoked;
  await other.updatePushToken(token);
  const alerts = await web.pendingAlerts();
  const answer = await web.respondToAlert(alerts[0].actionToken, "yes");
  const closed: string[] = answer.closedSessionIds ?? [];
  const pushed: PushEvent | null = parsePushData({ action: "force_logout", sessionId: "s", reason: "user_revoked" });
  if (pushed?.type === "forceLogout") closed.push(pushed.reason);
  try {
    await other.logout();
  } catch (error) {
    if (error instanceof MyDevicesError && error.status === 429) closed.push(String(error.retryAfter), error.code);
  }
  return [resumed?.deviceType ?? "", me.deviceType, String(expires), firebaseCustomToken ?? "", String(revoked),
    answer.status, ...closed];
}
"""

# Each line marked `// wrong` must be a compile error, and nothing else may be.
WRONG_APP = """
import { MyDevicesClient, memoryStorage } from "@mydevices/client";
declare const idToken: string;
declare const data: Record<string, string>;
const client = new MyDevicesClient({ credentials: "token", storage: memoryStorage() }); // wrong
export async function misuse(): Promise<void> {
  await client.login({ idToken, device: { name: "Phone", platform: "windows" } }); // wrong
  await client.login({ device: { name: "Chrome on macOS", platform: "web" } }); // wrong
  await client.login({ idToken, device: { platform: "web" } }); // wrong
  await client.respondToAlert("token", "maybe"); // wrong
  const event = await client.handlePush(data);
  if (event) console.log(event.actionToken); // wrong
  const count: string = (await client.revokeOthers()).revoked; // wrong
  await client.closeSession(42); // wrong
  new MyDevicesClient({ storage: localStorage }); // wrong
  console.log(event, count);
}
"""


def tsc_errors(tmp_path: Path, name: str, source: str) -> tuple[int, list[str]]:
    """Compile `source` as an app would, importing "@mydevices/client" through the package's own
    package.json (`exports` -> `types`), strict, with the declarations themselves checked too."""
    tsc = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists():
        pytest.fail(f"{tsc} is missing: infra/local/bootstrap installs clients/js's devDependencies (npm ci)")
    app = tmp_path / name
    (app / "node_modules" / "@mydevices").mkdir(parents=True)
    (app / "node_modules" / "@mydevices" / "client").symlink_to(CLIENT, target_is_directory=True)
    (app / "package.json").write_text(json.dumps({"name": name, "private": True, "type": "module"}))
    (app / "app.ts").write_text(source)
    run = subprocess.run(
        [NODE, str(tsc), "--noEmit", "--strict", "--target", "es2022", "--module", "nodenext",
         "--moduleResolution", "nodenext", "--lib", "es2022,dom", "--pretty", "false",
         str(CLIENT / "src" / "mydevices.d.ts"), "app.ts"],
        check=False, cwd=app, capture_output=True, text=True, timeout=180)
    return run.returncode, [line for line in run.stdout.splitlines() if "error TS" in line]


def test_the_typescript_declarations_compile_strict_with_the_documented_usage(tmp_path: Path) -> None:
    """The declarations are hand-written: tsc --strict proves they parse, that README.md's example
    and every public call type-check against them, and that the package.json wiring finds them."""
    code, errors = tsc_errors(tmp_path, "typed-app", TYPED_APP)
    assert (code, errors) == (0, []), "\n".join(errors)


def test_the_typescript_declarations_refuse_wrong_usage(tmp_path: Path) -> None:
    """The check bites: every misuse is an error on its own line (a declaration loosened to `any`
    or a missing member would let one through), and the correct lines around them are not."""
    code, errors = tsc_errors(tmp_path, "wrong-app", WRONG_APP)
    wrong_lines = {n for n, line in enumerate(WRONG_APP.splitlines(), start=1) if line.endswith("// wrong")}
    error_lines = {int(line.split("(", 1)[1].split(",", 1)[0]) for line in errors if line.startswith("app.ts(")}
    assert code != 0
    assert error_lines == wrong_lines, "\n".join(errors)
    assert all(line.startswith("app.ts(") for line in errors), "\n".join(errors)  # none in mydevices.d.ts
