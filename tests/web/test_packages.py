"""The three npm packages as an app team gets them: `npm pack` of clients/js (@mydevices/client),
clients/node (@mydevices/server) and clients/react (@mydevices/react) holds only what each needs, with
its license, repository, exports and types; the tarballs install together into a scratch project that
uses them against the local stack (a Node backend guarded by @mydevices/server, called by
@mydevices/client with a DPoP proof; the React screen rendered), and a TypeScript app over all three
compiles with `tsc --strict`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from infra.local.stack import REPO_ROOT, Stack

NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"
PACKAGES = {
    "client": (REPO_ROOT / "clients" / "js", ["dist/mydevices.d.ts", "dist/mydevices.js"]),
    "server": (REPO_ROOT / "clients" / "node", ["dist/index.d.ts", "dist/index.js"]),
    "react": (REPO_ROOT / "clients" / "react", [f"dist/{name}.{ext}" for name in ("ActiveSessions", "SecurityActivity",
                                                                                 "hooks", "index")
                                                for ext in ("d.ts", "js")]),
}
# What the scratch app installs besides the tarballs: the peers, at the versions the packages are tested with
# (bootstrap's `npm ci` has put them in npm's cache).
PEERS = ["react@19.2.3", "react-dom@19.2.3", "@types/react@19.2.7", "firebase-admin@13.9.0", "express@5.2.1",
         "typescript@5.9.3", "@types/node@20.19.43", "@types/express@5.0.6"]

# The whole sessions screen of a React app (clients/react/README.md): what an app writes.
SCREEN = """\
import { MyDevicesClient, browserStorage } from "@mydevices/client";
import { ActiveSessions, MyDevicesProvider, SecurityActivity, useSignedOut } from "@mydevices/react";

const client = new MyDevicesClient({ baseUrl: "https://api.example.com", storage: browserStorage() });

function SignedOutWatcher() { useSignedOut(() => location.assign("/sign-in")); return null; }

export function DevicesScreen() {
  return (
    <MyDevicesProvider client={client}>
      <SignedOutWatcher />
      <ActiveSessions />
      <SecurityActivity />
    </MyDevicesProvider>
  );
}
"""

# A TypeScript backend and hooks use, against the packages' own declarations.
TYPED = """\
import express from "express";
import { MyDevicesClient, memoryKeyStore, type ListedSession } from "@mydevices/client";
import { SessionGuard, requireSession, sessionMiddleware, type Caller } from "@mydevices/server";
import { useCurrentSession, usePendingAlerts, useSecurityActivity, useSessions } from "@mydevices/react";

declare const onRequestLike: (handler: (req: express.Request, res: express.Response) => Promise<void>) => unknown;
export const orders = onRequestLike(requireSession(async (req, res, caller: Caller) => {
  res.json({ uid: caller.uid, sid: caller.sid });
}, new SessionGuard({ requireProof: true })));
const app = express();
app.use(sessionMiddleware());

export function useScreen(): string[] {
  const { sessions, closeOthersAllowedAt, close } = useSessions({ pollMs: 2000 });
  const { session } = useCurrentSession();
  const { alerts, answer } = usePendingAlerts();
  const { entries, loadMore } = useSecurityActivity({ limit: 10 });
  const others: ListedSession[] = sessions.filter((s) => !s.isCurrentDevice);
  void close; void answer; void loadMore;
  return [session?.deviceName ?? "", closeOthersAllowedAt ?? "", ...others.map((s) => s.sessionId),
          ...alerts.map((a) => a.text), ...entries.map((e) => e.text)];
}
export const bound = new MyDevicesClient({ deviceKeys: memoryKeyStore() });
"""

# A Node backend guarded by @mydevices/server, called by @mydevices/client (bound, with a DPoP proof per
# request), and the React screen rendered on the server (react-dom/server: no DOM needed).
USE = """\
import express from "express";
import { initializeApp } from "firebase-admin/app";
import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { MyDevicesClient } from "@mydevices/client";
import { SessionGuard, sessionMiddleware } from "@mydevices/server";
import { ActiveSessions, MyDevicesProvider } from "@mydevices/react";

initializeApp({ projectId: process.env.GOOGLE_CLOUD_PROJECT });
const app = express();
app.get("/orders", sessionMiddleware(new SessionGuard({ requireProof: true })),
  (req, res) => res.json({ uid: req.mydevices.uid, sid: req.mydevices.sid }));
const server = app.listen(0, "127.0.0.1");
await new Promise((resolve) => server.once("listening", resolve));
const url = `http://127.0.0.1:${server.address().port}/orders`;

const auth = `${process.env.MYDEVICES_AUTH_URL}/identitytoolkit.googleapis.com/v1`;
const { idToken } = await (await fetch(`${auth}/accounts:signUp?key=any`, { method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ email: `pkg-${Date.now()}@example.com`, password: "correct-horse-9",
    returnSecureToken: true }),
})).json();
const client = new MyDevicesClient({ baseUrl: process.env.MYDEVICES_API_URL });
const { session } = await client.login({ idToken, device: { name: "Scratch backend test", platform: "android" } });
const guarded = await fetch(url, { headers: await client.authHeaders("GET", url) });
const withoutProof = await fetch(url, { headers: { Authorization: (await client.authHeaders("GET", url)).Authorization,
  "X-Device-Id": (await client.session()).deviceId } });
const html = renderToString(h(MyDevicesProvider, { client }, h(ActiveSessions)));
server.close();
console.log(JSON.stringify({ sid: session.sessionId, bound: session.deviceBound,
  guarded: [guarded.status, await guarded.json()],
  withoutProof: [withoutProof.status, (await withoutProof.json()).error], html }));
process.exit(0);
"""


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tarballs")
    packed = {}
    for name, (folder, _) in PACKAGES.items():
        run = subprocess.run([NPM, "pack", "--json", "--pack-destination", str(out)], cwd=folder,
                             capture_output=True, text=True, timeout=180, check=True)
        packed[name] = out / json.loads(run.stdout)[-1]["filename"]
    return packed


@pytest.mark.parametrize("name", list(PACKAGES))
def test_each_tarball_holds_only_what_the_package_needs(name: str, tarballs: dict[str, Path]) -> None:
    folder, built = PACKAGES[name]
    with tarfile.open(tarballs[name]) as archive:
        names = sorted(member.name.removeprefix("package/") for member in archive.getmembers())
        manifest: dict[str, Any] = json.loads(archive.extractfile("package/package.json").read())  # type: ignore[union-attr]
    assert names == sorted(["LICENSE", "README.md", "package.json", *built])
    assert manifest["license"] == "Apache-2.0"
    assert manifest["repository"]["directory"] == folder.relative_to(REPO_ROOT).as_posix()
    main_types = next(path for path in built if path.endswith(".d.ts") and ("index" in path or "mydevices" in path))
    assert manifest["exports"]["."] == {"types": f"./{main_types}", "default": f"./{main_types[:-5]}.js"}
    assert manifest["types"] == f"./{main_types}"
    assert "dependencies" not in manifest  # what an app needs besides is a peer (react, firebase-admin, the client)
    print(f"{manifest['name']}: {tarballs[name].stat().st_size} bytes packed")  # pytest -s: the sizes


def test_the_tarballs_install_together_and_work_in_a_scratch_app(
    stack: Stack, api: str, tarballs: dict[str, Path], tmp_path: Path
) -> None:
    app = tmp_path / "scratch-app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "scratch-app", "private": True, "type": "module"}))
    install = subprocess.run([NPM, "install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts",
                              *map(str, tarballs.values()), *PEERS],
                             cwd=app, capture_output=True, text=True, timeout=300, check=False)
    assert install.returncode == 0, install.stderr[-3000:]

    (app / "use.mjs").write_text(USE)
    env = {**os.environ, **stack.env, "MYDEVICES_API_URL": api, "MYDEVICES_AUTH_URL": f"http://{stack.auth.host}"}
    run = subprocess.run([NODE, "use.mjs"], cwd=app, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["bound"] is True
    assert result["guarded"] == [200, {"uid": result["guarded"][1]["uid"], "sid": result["sid"]}]
    assert result["withoutProof"][0] == 401
    assert (result["withoutProof"][1]["code"], result["withoutProof"][1]["reason"]) == ("invalid_dpop_proof", "missing")
    assert result["html"].startswith('<section class="mydevices-sessions"')

    (app / "screen.tsx").write_text(SCREEN)
    (app / "typed.ts").write_text(TYPED)
    tsc = subprocess.run([NODE, "node_modules/typescript/bin/tsc", "--noEmit", "--strict", "--target", "es2022",
                          "--module", "nodenext", "--moduleResolution", "nodenext", "--jsx", "react-jsx",
                          "--lib", "es2022,dom", "--types", "node", "--pretty", "false", "screen.tsx", "typed.ts"],
                         cwd=app, capture_output=True, text=True, timeout=180, check=False)
    assert tsc.returncode == 0, tsc.stdout[-4000:]
    screen_lines = [line for line in SCREEN.splitlines() if line.strip()]
    print(f"a working sessions screen: {len(screen_lines)} lines of TSX")  # pytest -s
    assert len(screen_lines) <= 15
