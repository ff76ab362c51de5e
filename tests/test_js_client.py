# ruff: noqa: F811 - the fixtures imported from push_fixtures are parameters here
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
from push_fixtures import EventFunctions, event_functions  # noqa: F401 - fixtures

from infra.local.stack import REPO_ROOT, Stack, free_port

CLIENT = REPO_ROOT / "clients" / "js"
NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"


@pytest.fixture(scope="module")
def short_ttl_api(stack: Stack) -> Iterator[str]:
    """Access tokens of 1 s: every call finds its token about to expire."""
    server = stack.start_function("api", "http", port=free_port(), extra_env={"MYDEVICES_ACCESS_TTL_SECONDS": "1"})
    yield server.url
    server.stop()


def node_env(stack: Stack, api: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MYDEVICES_API_URL": api, "MYDEVICES_AUTH_URL": f"http://{stack.auth_host}",
            "MYDEVICES_FCM_URL": stack.fcm_url, **extra}


def test_the_library_suite_passes_in_node_against_the_stack(
    stack: Stack, api: str, short_ttl_api: str, event_functions: EventFunctions
) -> None:
    run = subprocess.run([NODE, "--test", "--test-reporter=spec", "test/"], cwd=CLIENT, capture_output=True,
                         text=True, timeout=300,
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
const signUp = await fetch(`${process.env.MYDEVICES_AUTH_URL}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any`, {
  method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify({ email: `scratch-${Date.now()}@example.com`, password: "correct-horse-9", returnSecureToken: true }),
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
    assert names == ["package/README.md", "package/package.json", "package/src/mydevices.d.ts",
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
    run = subprocess.run([NODE, "app.mjs"], cwd=app, capture_output=True, text=True, timeout=60,
                         env=node_env(stack, api))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["names"] == ["Scratch app"] and len(result["sid"]) == 22
    assert result["alerts"] == [] and result["reasons"] == ["logout"]
    assert result["push"] == {"type": "forceLogout", "sessionId": "s", "reason": "user_revoked"}
