// Device binding (DPoP, RFC 9449) in the client against the real local stack (tests/web/test_js_client.py
// passes the URLs): in Node the default key is a non-extractable WebCrypto P-256 key; every refresh
// carries a proof of it, `use_dpop_nonce` is answered at once, a copy of the storage without the key
// cannot refresh, and authHeaders() gives a proof per request for a function that demands one.

import assert from "node:assert/strict";
import { test } from "node:test";
import { MyDevicesClient, MyDevicesError, derToRawSignature, memoryKeyStore, memoryStorage, thumbprint }
  from "../dist/mydevices.js";
import { env, signUp } from "./stack.js";

const API = env("MYDEVICES_API_URL");
const SHORT_API = env("MYDEVICES_SHORT_TTL_API_URL");
const BOUND_ORDERS = env("MYDEVICES_BOUND_ORDERS_URL"); // tests/guarded_app: require_session(require_proof=True)
const PIXEL = { name: "Pixel 8", platform: "android" };
const KEY = "mydevices.state";


/** A fetch that records each request's path, its DPoP header and the answer's error code. */
function recording() {
  const seen = [];
  const wrapped = async (url, init) => {
    const response = await fetch(url, init);
    const code = response.ok ? null : (await response.clone().json().catch(() => ({})))?.error?.code ?? null;
    seen.push({ path: new URL(url).pathname, dpop: init.headers?.DPoP ?? null, status: response.status, code });
    return response;
  };
  return { fetch: wrapped, seen, refreshes: () => seen.filter((r) => r.path === "/v1/sessions/refresh") };
}

const payloadOf = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

test("by default in bearer mode the session is bound to a WebCrypto key and every refresh proves it", async () => {
  const wire = recording();
  const signedOut = [];
  const client = new MyDevicesClient({ baseUrl: SHORT_API, fetch: wire.fetch, onSignedOut: (r) => signedOut.push(r) });
  const { session } = await client.login({ idToken: await signUp(), device: PIXEL });
  assert.equal(session.deviceBound, true);
  assert.equal(await client.deviceBound(), true);
  for (let i = 0; i < 3; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 1100)); // 1 s access tokens: each call refreshes
    assert.equal((await client.current()).sessionId, session.sessionId);
  }
  const refreshes = wire.refreshes();
  assert.ok(refreshes.length >= 3, JSON.stringify(refreshes));
  assert.ok(refreshes.every((r) => r.status === 200 && r.dpop), JSON.stringify(refreshes));
  const proof = payloadOf(refreshes[0].dpop);
  assert.equal(proof.htm, "POST");
  assert.equal(proof.htu, `${SHORT_API}/v1/sessions/refresh`);
  assert.ok(proof.nonce && proof.jti && Number.isInteger(proof.iat));
  assert.equal(new Set(refreshes.map((r) => payloadOf(r.dpop).jti)).size, refreshes.length); // a new jti each time
  assert.deepEqual(signedOut, []);
});

test("a stale nonce gets use_dpop_nonce and the client signs again with the new one at once", async () => {
  const wire = recording();
  const storage = memoryStorage();
  const client = new MyDevicesClient({ baseUrl: SHORT_API, fetch: wire.fetch, storage });
  await client.login({ idToken: await signUp(), device: PIXEL });
  const state = JSON.parse(await storage.getItem(KEY));
  await storage.setItem(KEY, JSON.stringify({ ...state, dpopNonce: "1.not-the-servers", accessTokenExpiresAt: 0 }));
  await client.current();
  assert.deepEqual(wire.refreshes().map((r) => [r.status, r.code]), [[401, "use_dpop_nonce"], [200, null]]);
  assert.notEqual(JSON.parse(await storage.getItem(KEY)).dpopNonce, "1.not-the-servers");
});

test("a copy of the storage without the key cannot refresh: the copy signs out, and a proofless refresh is the copied-token response", async () => {
  const storage = memoryStorage();
  const owner = new MyDevicesClient({ baseUrl: API, storage });
  const { session } = await owner.login({ idToken: await signUp(), device: PIXEL });
  const state = JSON.parse(await storage.getItem(KEY));
  assert.equal(state.jkt.length, 43);

  // The copy's own client (another key): it refuses to send a refresh without the session's key.
  const copyStorage = memoryStorage();
  await copyStorage.setItem(KEY, JSON.stringify({ ...state, accessTokenExpiresAt: 0 }));
  const copyWire = recording();
  const copyReasons = [];
  const copy = new MyDevicesClient({ baseUrl: API, storage: copyStorage, fetch: copyWire.fetch,
    deviceKeys: memoryKeyStore(), onSignedOut: (r) => copyReasons.push(r) });
  await assert.rejects(copy.current(), (e) => e instanceof MyDevicesError && e.code === "device_key_lost");
  assert.deepEqual(copyReasons, ["device_key_lost"]);
  assert.deepEqual(copyWire.seen, []); // nothing sent
  assert.equal((await owner.current()).sessionId, session.sessionId);

  // The copy by hand, without a proof: the server takes it for a copied token.
  const stolen = await fetch(`${API}/v1/sessions/refresh`, {
    method: "POST", headers: { "Content-Type": "application/json", "X-Device-Id": state.deviceId },
    body: JSON.stringify({ refreshToken: state.refreshToken }),
  });
  assert.equal(stolen.status, 401);
  assert.equal((await stolen.json()).error.code, "device_proof_failed");
  await assert.rejects(owner.current(), (e) => e instanceof MyDevicesError && e.status === 401);
  assert.equal((await owner.session()).signedIn, false);
});

test("deviceKeys: false leaves the session unbound (no proofs)", async () => {
  const wire = recording();
  const client = new MyDevicesClient({ baseUrl: SHORT_API, fetch: wire.fetch, deviceKeys: false });
  const { session } = await client.login({ idToken: await signUp(), device: PIXEL });
  assert.equal(session.deviceBound, false);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await client.current();
  assert.ok(wire.refreshes().length >= 1 && wire.refreshes().every((r) => r.status === 200 && !r.dpop));
});

test("authHeaders gives a per-request proof with ath that a function demanding proofs accepts", async () => {
  const client = new MyDevicesClient({ baseUrl: API });
  const { session } = await client.login({ idToken: await signUp(), device: PIXEL });
  const url = `${BOUND_ORDERS}/orders?page=2`;
  const headers = await client.authHeaders("GET", url);
  assert.ok(headers.DPoP && headers.Authorization && headers["X-Device-Id"]);
  const ok = await fetch(url, { headers });
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.equal((await ok.json()).sessionId, session.sessionId);
  const other = await fetch(`${BOUND_ORDERS}/other`, { headers }); // the proof names another URL
  assert.equal(other.status, 401);
  assert.equal((await other.json()).error.code, "invalid_dpop_proof");

  const unbound = new MyDevicesClient({ baseUrl: API, deviceKeys: false });
  await unbound.login({ idToken: await signUp(), device: PIXEL });
  const refused = await fetch(url, { headers: await unbound.authHeaders("GET", url) });
  assert.equal((await refused.json()).error.code, "device_binding_required");
});

test("the key helpers: RFC 7638 thumbprint, DER signatures as raw r||s", async () => {
  // RFC 7638 §3.1's example is RSA; this EC key's thumbprint is checked against the server's
  // (a bound login's access token names it as cnf.jkt).
  const keys = memoryKeyStore();
  const key = await keys.create();
  const client = new MyDevicesClient({ baseUrl: API, deviceKeys: keys });
  await client.login({ idToken: await signUp(), device: PIXEL });
  const { accessToken } = JSON.parse(await client.storage.getItem(KEY));
  assert.equal(payloadOf(accessToken).cnf.jkt, await thumbprint(key.publicJwk));
  const der = Uint8Array.from([0x30, 0x45, 0x02, 0x21, 0x00, ...new Array(32).fill(0x81), 0x02, 0x20, ...new Array(32).fill(0x07)]);
  assert.deepEqual([...derToRawSignature(der)], [...new Array(32).fill(0x81), ...new Array(32).fill(0x07)]);
  const short = Uint8Array.from([0x30, 0x08, 0x02, 0x02, 0x01, 0x02, 0x02, 0x02, 0x03, 0x04]);
  assert.deepEqual([...derToRawSignature(short)].slice(30, 34), [1, 2, 0, 0]);
  assert.deepEqual([...derToRawSignature(short)].slice(62), [3, 4]);
});
