// The library against the real local stack (started by tests/web/test_js_client.py, which passes the
// URLs): MYDEVICES_API_URL, MYDEVICES_SHORT_TTL_API_URL (access tokens of 1 s), MYDEVICES_AUTH_URL
// (the Auth emulator), MYDEVICES_FCM_URL (the FCM stand-in's control API; the push pipeline runs).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { MyDevicesClient, MyDevicesError, memoryStorage, parsePushData, reactNativeStorage } from "../dist/mydevices.js";
import { env, signUp } from "./stack.js";

const API = env("MYDEVICES_API_URL");
const SHORT_API = env("MYDEVICES_SHORT_TTL_API_URL");
const AUTH = env("MYDEVICES_AUTH_URL");
const FCM = env("MYDEVICES_FCM_URL");
const PIXEL = { name: "Pixel 8", model: "shiba", platform: "android", osVersion: "14", appVersion: "2.3.0" };
const IPHONE = { name: "iPhone 15", model: "iPhone16,1", platform: "ios", osVersion: "18.1", appVersion: "2.3.0" };


/** A fetch that counts the requests to each path. */
function counting() {
  const counts = new Map();
  const wrapped = (url, init) => {
    const path = new URL(url).pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    return fetch(url, init);
  };
  return { fetch: wrapped, count: (path) => counts.get(path) ?? 0 };
}

function device(base = API, options = {}) {
  const signedOut = [];
  const client = new MyDevicesClient({ baseUrl: base, storage: memoryStorage(), onSignedOut: (r, d) => signedOut.push([r, d]), ...options });
  return { client, signedOut };
}

async function until(predicate, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function pushesTo(token, action) {
  const { messages } = await (await fetch(`${FCM}/_standin/messages`)).json();
  return messages.map((m) => m.message).filter((m) => m.token === token && m.data?.action === action);
}

test("login keeps the device id, lists, and a session closed elsewhere signs out with its reason", async () => {
  const idToken = await signUp();
  const phone = device();
  const pixel = device();
  const { session } = await phone.client.login({ idToken, device: IPHONE });
  assert.match(session.sessionId, /^[A-Za-z0-9_-]{22}$/);
  const stored = await phone.client.session();
  assert.equal(stored.sessionId, session.sessionId);
  assert.ok(stored.deviceId);
  await pixel.client.login({ idToken, device: PIXEL });

  const list = await phone.client.listSessions();
  assert.deepEqual(list.sessions.map((s) => s.deviceName), ["iPhone 15", "Pixel 8"]);
  assert.equal(list.sessions[0].isCurrentDevice, true);

  const pixelSid = (await pixel.client.session()).sessionId;
  assert.deepEqual(await phone.client.closeSession(pixelSid), { sessionId: pixelSid, revoked: true });
  await assert.rejects(pixel.client.listSessions(), (e) => e instanceof MyDevicesError && e.code === "session_revoked");
  assert.deepEqual(pixel.signedOut.map(([reason]) => reason), ["session_revoked"]);
  const after = await pixel.client.session();
  assert.equal(after.signedIn, false);
  assert.ok(after.deviceId, "the device id stays, so this device's next login replaces its session");

  // The same device logs in again (a fresh sign-in: a closure asks for one): same device id.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await pixel.client.login({ idToken: await signIn(idToken), device: PIXEL });
  assert.equal((await pixel.client.session()).deviceId, after.deviceId);
  await assert.rejects(phone.client.closeSession(phone.client._state.sessionId), (e) => e.code === "cannot_revoke_current");
});

async function signIn(idToken) {
  const payload = JSON.parse(Buffer.from(idToken.split(".")[1], "base64url").toString());
  const response = await fetch(`${AUTH}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: payload.email, password: "correct-horse-9", returnSecureToken: true }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).idToken;
}

test("an expiring access token is refreshed once however many calls are waiting", async () => {
  const counter = counting();
  const phone = device(SHORT_API, { fetch: counter.fetch });
  await phone.client.login({ idToken: await signUp(), device: IPHONE });
  const firstRefresh = (await phone.client.session()).accessTokenExpiresAt;
  await new Promise((resolve) => setTimeout(resolve, 1100)); // its 1 s token has run out
  const calls = await Promise.all(Array.from({ length: 6 }, () => phone.client.listSessions()));
  assert.equal(calls.length, 6);
  assert.equal(counter.count("/v1/sessions/refresh"), 1);
  assert.notEqual((await phone.client.session()).accessTokenExpiresAt, firstRefresh);
});

test("a 401 that a refresh cures is refreshed once for all waiting calls, then retried", async () => {
  const counter = counting();
  const storage = memoryStorage();
  const phone = device(API, { fetch: counter.fetch, storage });
  await phone.client.login({ idToken: await signUp(), device: IPHONE });
  const state = JSON.parse(await storage.getItem("mydevices.state"));
  delete state.accessToken; // the server then answers 401 unauthenticated
  await storage.setItem("mydevices.state", JSON.stringify(state));
  const answers = await Promise.all(Array.from({ length: 5 }, () => phone.client.current()));
  assert.equal(new Set(answers.map((a) => a.sessionId)).size, 1);
  assert.equal(counter.count("/v1/sessions/refresh"), 1);
  assert.equal(counter.count("/v1/sessions/current"), 10);
  assert.deepEqual(phone.signedOut, []);
});

test("push data become typed events: the alert is answered 'No' and the intruder's force_logout signs it out", async () => {
  const idToken = await signUp();
  const phoneToken = `tok-js-phone-${randomUUID()}`;
  const intruderToken = `tok-js-intruder-${randomUUID()}`;
  const phone = device();
  const intruder = device();
  await phone.client.login({ idToken, device: IPHONE, push: { token: phoneToken, provider: "fcm" } });
  await intruder.client.login({ idToken, device: { ...PIXEL, name: "Pixel\u202e 8\u201d from Paris" },
    push: { token: intruderToken, provider: "fcm" } });
  const [alertPush] = await until(() => pushesTo(phoneToken, "new_login_alert").then((m) => m.length && m));
  assert.ok(alertPush, "the phone got its alert");

  // Android hands the app `data`; on iOS the same keys are in userInfo.
  const event = await phone.client.handlePush(alertPush.data);
  assert.equal(event.type, "newLoginAlert");
  assert.equal(event.isCurrentSession, true);
  assert.equal(event.text, "Signed in on “Pixel 8 from Paris” from an unknown location. Was that you?");
  assert.deepEqual(event.locArgs, ["Pixel 8 from Paris"]);
  const intruderSid = (await intruder.client.session()).sessionId;
  assert.equal(event.newSessionId, intruderSid);

  // The pending list (the web page's source) carries the same single token.
  const pending = await phone.client.pendingAlerts();
  assert.deepEqual(pending.map((a) => [a.newSessionId, a.actionToken, a.text]), [[intruderSid, event.actionToken, event.text]]);
  assert.deepEqual(await intruder.client.pendingAlerts(), [], "never listed to the newer session");

  const answer = await phone.client.respondToAlert(event.actionToken, "no");
  assert.deepEqual(answer.closedSessionIds, [intruderSid]);
  assert.equal(answer.advice, "change_password");
  await assert.rejects(phone.client.respondToAlert(event.actionToken, "no"), (e) => e.status === 409 && e.code === "already_answered");
  assert.deepEqual(await phone.client.pendingAlerts(), []);

  const [logoutPush] = await until(() => pushesTo(intruderToken, "force_logout").then((m) => m.length && m));
  const forced = await intruder.client.handlePush(logoutPush.data);
  assert.deepEqual(forced, { type: "forceLogout", sessionId: intruderSid, reason: "rejected_by_user", isCurrentSession: true });
  assert.deepEqual(intruder.signedOut.map(([reason, details]) => [reason, details.pushReason]), [["force_logout", "rejected_by_user"]]);
  assert.equal((await intruder.client.session()).signedIn, false);
  // A force_logout about an older session of this device is ignored.
  const stale = await phone.client.handlePush({ action: "force_logout", sessionId: "older", reason: "user_revoked" });
  assert.equal(stale.isCurrentSession, false);
  assert.deepEqual(phone.signedOut, []);
});

test("push data that are not ours are no events; bad answers fail before the network", async () => {
  assert.equal(parsePushData(null), null);
  assert.equal(parsePushData({ action: "something_else" }), null);
  assert.equal(parsePushData({ action: "new_login_alert", newSessionId: "x" }), null);
  const event = parsePushData({ action: "new_login_alert", newSessionId: "n", actionToken: "t", body_loc_args: "not json" });
  assert.deepEqual(event.locArgs, []);
  const { client } = device();
  assert.throws(() => client.respondToAlert("t", "maybe"), TypeError);
  await assert.rejects(client.listSessions(), (e) => e.code === "not_signed_in");
});

test("the React Native adapter wraps an AsyncStorage", async () => {
  const items = new Map();
  const asyncStorage = { getItem: async (k) => items.get(k) ?? null, setItem: async (k, v) => { items.set(k, v); },
    removeItem: async (k) => { items.delete(k); } };
  const phone = device(API, { storage: reactNativeStorage(asyncStorage) });
  await phone.client.login({ idToken: await signUp(), device: IPHONE });
  assert.ok(JSON.parse(items.get("mydevices.state")).refreshToken);
  await phone.client.logout();
  assert.deepEqual(Object.keys(JSON.parse(items.get("mydevices.state"))), ["deviceId"]);
  assert.deepEqual(phone.signedOut.map(([reason]) => reason), ["logout"]);
});

test("exportAccount gives the user's own documents without secrets, after a recent sign-in", async () => {
  const phone = device();
  const { session } = await phone.client.login({ idToken: await signUp(), device: IPHONE,
                                                 push: { token: `push-${randomUUID()}`, provider: "fcm" } });
  const exported = await phone.client.exportAccount();
  assert.equal(exported.format, 1);
  const paths = exported.documents.map((doc) => doc.path);
  assert.ok(paths.includes(`users/${exported.uid}/sessions/${session.sessionId}`), paths.join(", "));
  assert.ok(paths.includes(`sessionSecrets/${session.sessionId}`));
  assert.ok(exported.removedFields.includes("refreshHash"));
  const text = JSON.stringify(exported.documents);
  for (const secret of ["refreshHash", "prevRefreshHash", "pushToken"]) assert.ok(!text.includes(`"${secret}"`), secret);
});
