"""The JavaScript client library (clients/js, TypeScript built by its pinned tsc) against the real
local stack: its own `node --test` suite, run from here so `infra/local/test` runs it with the stack
it needs; its types held to docs/openapi.yaml; and its `npm pack` tarball installed into a scratch
project and used there, as an app team would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml  # PyYAML, installed with schemathesis (no stubs: pyproject.toml lets mypy skip it)

from infra.local.stack import REPO_ROOT, Stack
from mydevices.errors import Code
from support import GUARDED_APP
from support.push import EventFunctions
from support.serving import function_url, serving

CLIENT = REPO_ROOT / "clients" / "js"
NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"
OPENAPI = REPO_ROOT / "docs" / "openapi.yaml"
TYPESCRIPT = CLIENT / "node_modules" / "typescript"
SHAPES = REPO_ROOT / "tests" / "support" / "ts_shapes.mjs"


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    """dist/ from the current src/ (bootstrap builds it too; this catches an edit since)."""
    if not (TYPESCRIPT / "bin" / "tsc").exists():
        pytest.fail(f"{TYPESCRIPT} is missing: infra/local/bootstrap installs clients/js's devDependencies (npm ci)")
    run = subprocess.run([NODE, str(TYPESCRIPT / "bin" / "tsc"), "-p", "tsconfig.json"], cwd=CLIENT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def short_ttl_api(stack: Stack) -> Iterator[str]:
    """Access tokens of 1 s: every call finds its token about to expire."""
    with serving(stack, "api", {"MYDEVICES_ACCESS_TTL_SECONDS": "1"}, own_port=True) as server:
        yield server.url


def node_env(stack: Stack, api: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MYDEVICES_API_URL": api, "MYDEVICES_AUTH_URL": f"http://{stack.auth.host}",
            "MYDEVICES_FCM_URL": stack.fcm.url, **extra}


# tests/guarded_app's function that demands a DPoP proof per request (for the client's authHeaders()).
bound_orders = function_url("bound_orders", {}, signature_type="http", source=GUARDED_APP)


def test_the_library_suite_passes_in_node_against_the_stack(
    stack: Stack, api: str, short_ttl_api: str, event_functions: EventFunctions, bound_orders: str
) -> None:
    """test/client.test.js (sessions, refresh, push) and test/binding.test.js (DPoP)."""
    suites = sorted(str(path.relative_to(CLIENT)) for path in CLIENT.glob("test/*.test.js"))
    run = subprocess.run([NODE, "--test", "--test-reporter=spec", *suites], check=False, cwd=CLIENT,
                         capture_output=True, text=True, timeout=300,
                         env=node_env(stack, api, MYDEVICES_SHORT_TTL_API_URL=short_ttl_api,
                                      MYDEVICES_BOUND_ORDERS_URL=bound_orders))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "ℹ fail 0" in run.stdout and "ℹ pass 13" in run.stdout, run.stdout[-3000:]  # the spec reporter


def test_the_page_runs_the_library_verbatim() -> None:
    """The page imports its own copy (Hosting serves only infra/hosting/public), built, never committed:
    bootstrap and firebase.json's hosting predeploy make it with `npm run build:page`."""
    page_copy = REPO_ROOT / "infra" / "hosting" / "public" / "mydevices.js"
    assert page_copy.read_bytes() == (CLIENT / "dist" / "mydevices.js").read_bytes(), (
        "npm --prefix clients/js run build:page (infra/local/bootstrap does it)")
    built = [str(page_copy), str(CLIENT / "dist" / "mydevices.js")]
    ignored = subprocess.run(["git", "check-ignore", *built], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=False)
    assert ignored.stdout.split() == built  # build output is never committed, so it cannot drift
    predeploy = json.loads((REPO_ROOT / "firebase.json").read_text())["hosting"]["predeploy"]
    assert any("run build:page" in step for step in predeploy)


def openapi_codes(doc: dict[str, Any]) -> set[str]:
    """Every error code docs/openapi.yaml documents: the backticked words of its error responses
    (less the `reason` values) and each "<status> `code`" it names in prose."""
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
    reasons = set(error["reason"]["enum"]) | {"reason"}
    words = {word for response in doc["components"]["responses"].values()
             for word in re.findall(r"`([a-z][a-z_]*)`", response["description"])}
    named = set(re.findall(r"\b[1-5]\d\d\s+`([a-z][a-z_]*)`", OPENAPI.read_text()))
    return (words - reasons) | named


def ts_type(doc: dict[str, Any], schema: dict[str, Any]) -> str:
    """The TypeScript type text a JSON Schema of docs/openapi.yaml reads as."""
    if "$ref" in schema:
        named = resolve(doc, schema["$ref"])
        if named.get("type") == "object" or "allOf" in named:
            return str(schema["$ref"]).rsplit("/", 1)[1]  # a named object: the interface of that name
        return ts_type(doc, named)
    if "allOf" in schema:
        return " & ".join(ts_type(doc, part) for part in schema["allOf"] if "$ref" in part or "type" in part)
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    names = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "null": "null"}
    return " | ".join(ts_type(doc, schema["items"]) + "[]" if k == "array" else names[k] for k in kinds)


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return cast(dict[str, Any], node)


def schema_props(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{property: {"optional", "type"}} of an object schema, through $ref and allOf."""
    if "$ref" in schema:
        return schema_props(doc, resolve(doc, schema["$ref"]))
    props: dict[str, dict[str, Any]] = {}
    for part in schema.get("allOf", []):
        props.update(schema_props(doc, part))
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        props[name] = {"optional": name not in required, "type": ts_type(doc, sub)}
    for name in required & props.keys():
        props[name]["optional"] = False
    return props


def answer(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    [ok] = [r for status, r in responses.items() if status.startswith("2")]
    return cast(dict[str, Any], ok["content"]["application/json"]["schema"])


def test_the_error_codes_and_answer_types_are_the_documented_ones() -> None:
    """The client's types against docs/openapi.yaml: every documented error code is in `ApiErrorCode`
    and nothing else is (and they are the server's own `Code`s); each answer type has exactly the
    documented fields, optional where the document does not require them, with the documented types."""
    doc = yaml.safe_load(OPENAPI.read_text())
    shapes = json.loads(subprocess.run([NODE, str(SHAPES), str(TYPESCRIPT), str(CLIENT / "dist" / "mydevices.d.ts")],
                                       capture_output=True, text=True, timeout=60, check=True).stdout)
    documented = openapi_codes(doc)
    assert set(shapes["unions"]["ApiErrorCode"]) == documented
    assert documented == {code.value for code in Code}  # the document names every code the server has
    assert shapes["unions"]["ClientErrorCode"] == ["network", "not_signed_in", "device_key_lost", "`http_${number}`"]
    assert shapes["unions"]["ErrorReason"] == doc["components"]["schemas"]["Error"]["properties"]["error"][
        "properties"]["reason"]["enum"]

    listing = answer(doc, "get", "/v1/sessions")
    expected = {
        "DeviceSession": {"$ref": "#/components/schemas/DeviceSession"},
        "ListedSession": listing["properties"]["sessions"]["items"],
        "PendingAlert": {"$ref": "#/components/schemas/PendingAlert"},
        "Tokens": {"$ref": "#/components/schemas/Tokens"},
        "LoginAnswer": {"$ref": "#/components/schemas/LoginResponse"},
        "AlertAnswer": answer(doc, "post", "/v1/alerts/respond"),
        "ClosedSession": answer(doc, "delete", "/v1/sessions/{sessionId}"),
        "RevokedOthers": answer(doc, "post", "/v1/sessions/revoke-others"),
        "PushTokenUpdated": answer(doc, "put", "/v1/sessions/current/push-token"),
        "AccountExport": answer(doc, "get", "/v1/account/export"),
        "ExportedDocument": {"$ref": "#/components/schemas/ExportedDocument"},
        "ActivityPage": answer(doc, "get", "/v1/activity"),
        "ActivityEntry": {"$ref": "#/components/schemas/ActivityEntry"},
        "ClosedBy": {"$ref": "#/components/schemas/ClosedBy"},
    }
    for name, schema in expected.items():
        assert shapes["interfaces"][name] == schema_props(doc, schema), name
    session_list = shapes["interfaces"]["SessionList"]
    assert session_list == {"sessions": {"optional": False, "type": "ListedSession[]"},
                            "closeOthersAllowedAt": {"optional": False, "type": "string | null"},
                            "autoCloseAfterDays": {"optional": False, "type": "AutoCloseDays | null"}}
    assert set(listing["required"]) == set(session_list)


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
    assert names == ["package/LICENSE", "package/README.md", "package/dist/mydevices.d.ts",
                     "package/dist/mydevices.js", "package/package.json"]
    manifest = json.loads((CLIENT / "package.json").read_text())
    assert "dependencies" not in manifest and "peerDependencies" not in manifest  # no runtime dependencies

    app = tmp_path / "scratch-app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "scratch-app", "private": True, "type": "module"}))
    subprocess.run([NPM, "install", "--offline", "--no-audit", "--no-fund", str(tarball)], cwd=app,
                   capture_output=True, text=True, timeout=120, check=True)
    installed = app / "node_modules" / "@mydevices" / "client"
    assert (installed / "dist" / "mydevices.d.ts").exists()
    assert sorted(p.name for p in (app / "node_modules").iterdir() if not p.name.startswith(".")) == ["@mydevices"]
    (app / "app.mjs").write_text(SCRATCH_APP)
    run = subprocess.run([NODE, "app.mjs"], check=False, cwd=app, capture_output=True, text=True, timeout=60,
                         env=node_env(stack, api))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["names"] == ["Scratch app"] and len(result["sid"]) == 22
    assert result["alerts"] == [] and result["reasons"] == ["logout"]
    assert result["push"] == {"type": "forceLogout", "sessionId": "s", "reason": "user_revoked"}


REACT = REPO_ROOT / "clients" / "react"


def test_the_react_hooks_and_component_pass_under_node_without_a_dom(stack: Stack, api: str) -> None:
    """clients/react/test/hooks.test.js: the hooks against the stack, the component with a stand-in client."""
    if not (REACT / "node_modules" / "react-test-renderer").exists():
        pytest.fail("clients/react/node_modules is missing: infra/local/bootstrap --js-packages installs it (npm ci)")
    subprocess.run([NPM, "run", "--silent", "build"], cwd=REACT, check=True, timeout=120)
    run = subprocess.run([NODE, "--test", "--test-reporter=spec", "test/hooks.test.js"], check=False, cwd=REACT,
                         capture_output=True, text=True, timeout=300, env=node_env(stack, api))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "ℹ fail 0" in run.stdout and "ℹ pass 5" in run.stdout, run.stdout[-3000:]


# The usage clients/js/README.md documents, plus the rest of the public API, as an app written in
# TypeScript would call it. `declare`d names are the app's own (its AsyncStorage, its sign-in screen).
TYPED_APP = """
import { MyDevicesClient, MyDevicesError, browserStorage, defaultKeyStore, derToRawSignature, dpopProof,
  indexedDbKeyStore, memoryKeyStore, memoryStorage, parsePushData, reactNativeStorage, thumbprint }
  from "@mydevices/client";
import type { DeviceKey, DeviceKeyStore, DevicePublicKey, DeviceSession, PushEvent, SignedOutDetails, SignedOutReason }
  from "@mydevices/client";

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

// React Native: the app's own Keystore / Secure Enclave module behind the key store interface.
declare const NativeKeys: { publicKey(): Promise<DevicePublicKey | null>; generate(): Promise<DevicePublicKey>;
  signDer(data: Uint8Array): Promise<Uint8Array> };
const nativeKeyStore: DeviceKeyStore = {
  async load() {
    const publicJwk = await NativeKeys.publicKey();
    return publicJwk && { publicJwk, sign: async (data) => derToRawSignature(await NativeKeys.signDer(data)) };
  },
  async create() {
    const publicJwk = await NativeKeys.generate();
    return { publicJwk, sign: async (data: Uint8Array) => derToRawSignature(await NativeKeys.signDer(data)) };
  },
};

export async function bound(): Promise<boolean> {
  const mobile = new MyDevicesClient({ storage: reactNativeStorage(AsyncStorage), deviceKeys: nativeKeyStore });
  const browser = new MyDevicesClient({ storage: browserStorage(localStorage), deviceKeys: indexedDbKeyStore() });
  const node = new MyDevicesClient({ deviceKeys: defaultKeyStore() ?? memoryKeyStore() });
  const unbound = new MyDevicesClient({ deviceKeys: false });
  const headers: Record<string, string> = await mobile.authHeaders("GET", "https://api.example.com/orders");
  const key: DeviceKey = await memoryKeyStore().create();
  const proof: string = await dpopProof(key, "GET", "https://api.example.com/orders", { accessToken: "t" });
  return (await browser.deviceBound()) && (await node.deviceBound()) && !(await unbound.deviceBound())
    && Boolean(headers.DPoP) && (await thumbprint(key.publicJwk)).length > 0 && proof.length > 0;
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
  const badge: string = me.deviceBound ? "Device bound" : "";
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
    if (error instanceof MyDevicesError && error.code === "session_too_new") closed.push(error.details?.allowedAt!);
    if (error instanceof MyDevicesError && error.code === "http_502") closed.push(badge);
  }
  return [resumed?.deviceType ?? "", me.deviceType, String(expires), firebaseCustomToken ?? "", String(revoked),
    answer.status, ...closed];
}
"""

# Each line marked `// wrong` must be a compile error, and nothing else may be.
WRONG_APP = """
import { MyDevicesClient, MyDevicesError, memoryStorage } from "@mydevices/client";
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
  try { await client.logout(); } catch (e) { if (e instanceof MyDevicesError && e.code === "new") throw e; } // wrong
  new MyDevicesClient({ storage: localStorage }); // wrong
  new MyDevicesClient({ deviceKeys: { load: async () => null } }); // wrong
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
         "--moduleResolution", "nodenext", "--lib", "es2022,dom", "--pretty", "false", "app.ts"],
        check=False, cwd=app, capture_output=True, text=True, timeout=180)
    return run.returncode, [line for line in run.stdout.splitlines() if "error TS" in line]


def test_the_typescript_declarations_compile_strict_with_the_documented_usage(tmp_path: Path) -> None:
    """tsc --strict over README.md's example and every public call, against the emitted declarations
    found through the package.json wiring (`exports` -> `types`)."""
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
    assert all(line.startswith("app.ts(") for line in errors), "\n".join(errors)  # none in the declarations
