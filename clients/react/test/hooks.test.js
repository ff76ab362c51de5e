// The hooks and the component under Node, without a DOM (react-test-renderer): the hooks against the
// real local stack (tests/web/test_js_client.py passes the URLs), the component's session_too_new path
// against a stand-in client (the stack runs with the fresh-session window off).

import assert from "node:assert/strict";
import { test } from "node:test";
import { act, createElement as h } from "react";
import TestRenderer from "react-test-renderer";
import { MyDevicesClient, MyDevicesError, memoryStorage } from "@mydevices/client";
import { ActiveSessions, MyDevicesProvider, useCurrentSession, usePendingAlerts, useSessions, useSignedOut }
  from "../dist/index.js";
import { SecurityActivity, useSecurityActivity } from "../dist/index.js";
import { env, signUp } from "../../js/test/stack.js";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const API = env("MYDEVICES_API_URL");
assert.equal(typeof document, "undefined"); // no DOM here

const device = (name, platform = "android") => ({ name, platform });

async function until(predicate, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await act(() => new Promise((resolve) => setTimeout(resolve, 50)));
  }
}

test("the hooks list, alert, answer and sign out against the stack, with no DOM", async () => {
  const idToken = await signUp("react");
  const phone = new MyDevicesClient({ baseUrl: API, storage: memoryStorage() });
  await phone.login({ idToken, device: device("Phone") });

  const seen = { signedOut: [] };
  function Probe() {
    seen.list = useSessions();
    seen.current = useCurrentSession();
    seen.alerts = usePendingAlerts();
    useSignedOut((reason) => seen.signedOut.push(reason));
    return null;
  }
  let root;
  await act(async () => { root = TestRenderer.create(h(MyDevicesProvider, { client: phone }, h(Probe))); });
  await until(() => seen.list.data && seen.current.data && seen.alerts.data);
  assert.deepEqual(seen.list.sessions.map((s) => [s.deviceName, s.isCurrentDevice]), [["Phone", true]]);
  assert.equal(seen.current.session.deviceName, "Phone");
  assert.equal(seen.current.session.deviceBound, true); // the client binds by default in bearer mode
  assert.deepEqual(seen.alerts.alerts, []);

  const intruder = new MyDevicesClient({ baseUrl: API, storage: memoryStorage() });
  const { session: theirs } = await intruder.login({ idToken, device: device("Unknown tablet") });
  await act(async () => { await Promise.all([seen.list.refresh(), seen.alerts.refresh()]); });
  assert.deepEqual(seen.list.sessions.map((s) => s.deviceName), ["Phone", "Unknown tablet"]);
  assert.deepEqual(seen.alerts.alerts.map((a) => a.newSessionId), [theirs.sessionId]);
  assert.match(seen.alerts.alerts[0].text, /Unknown tablet.*Was that you\?/);

  let answer;
  await act(async () => { answer = await seen.alerts.answer(seen.alerts.alerts[0], "no"); });
  assert.equal(answer.status, "revoked");
  assert.equal(answer.advice, "change_password");
  assert.deepEqual(seen.alerts.alerts, []);
  await act(async () => { await seen.list.refresh(); });
  assert.deepEqual(seen.list.sessions.map((s) => s.deviceName), ["Phone"]);

  // Closed from another device: the next call signs this one out and useSignedOut hears it.
  const laptop = new MyDevicesClient({ baseUrl: API, storage: memoryStorage() });
  await laptop.login({ idToken: await freshSignIn(idToken), device: device("Laptop", "ios") });
  await laptop.closeSession((await phone.session()).sessionId);
  await act(async () => { await seen.list.refresh(); });
  assert.equal(seen.list.error.code, "session_revoked");
  assert.deepEqual(seen.signedOut, ["session_revoked"]);
  await act(async () => root.unmount());
});

// After "No" the account needs a sign-in made after it (Trust rules): the same user signs in again.
async function freshSignIn(idToken) {
  await new Promise((resolve) => setTimeout(resolve, 1100)); // sign-in times are whole seconds
  const payload = JSON.parse(Buffer.from(idToken.split(".")[1], "base64url").toString());
  const response = await fetch(`${env("MYDEVICES_AUTH_URL")}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=any`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: payload.email, password: "correct-horse-9", returnSecureToken: true }),
  });
  return (await response.json()).idToken;
}

/** A stand-in client: three sessions, and a session too new to close others. */
function tooNewClient(allowedAt) {
  const row = (sessionId, deviceName, isCurrentDevice) => ({ sessionId, deviceName, deviceType: "ANDROID", model: null,
    osVersion: null, appVersion: null, location: null, lastActiveAt: "2026-12-01T10:00:00Z", createdAt: "2026-12-01T09:00:00Z",
    isCurrentDevice, deviceBound: isCurrentDevice, canClose: false });
  const calls = [];
  return {
    calls,
    listSessions: async () => ({ sessions: [row("a", "This phone", true), row("b", "Pixel 8", false), row("c", "iPad", false)],
      closeOthersAllowedAt: null }),
    pendingAlerts: async () => [],
    closeSession: async (sid) => {
      calls.push(sid);
      throw new MyDevicesError(403, "session_too_new", "too new", { details: { allowedAt } });
    },
    onSignedOut: () => () => {},
  };
}

const text = (node) => (typeof node === "string" ? node : (node.children ?? []).map(text).join(""));

test("<ActiveSessions/> marks this device, confirms first, and shows session_too_new with its time", async () => {
  const allowedAt = "2026-12-02T09:00:00Z";
  const client = tooNewClient(allowedAt);
  let root;
  await act(async () => {
    root = TestRenderer.create(h(MyDevicesProvider, { client }, h(ActiveSessions, { pollMs: 0, formatTime: (iso) => `at ${iso}` })));
  });
  const rows = () => root.root.findAll((n) => n.type === "li");
  await until(() => rows().length === 3);
  const buttons = (scope) => scope.findAll((n) => n.type === "button").map((b) => text(b));
  assert.deepEqual(buttons(rows()[0]), []); // this device: no button
  assert.match(text(rows()[0]), /This phone.*This device.*Device bound/);
  assert.deepEqual(buttons(rows()[1]), ["Close session"]);
  assert.ok(buttons(root.root).includes("Sign out from all other sessions")); // two others

  const close = rows()[1].find((n) => n.type === "button");
  await act(async () => close.props.onClick());
  assert.deepEqual(buttons(rows()[1]), ["Close", "Cancel"]);
  assert.match(text(rows()[1]), /Close the session on “Pixel 8”\?/);
  assert.deepEqual(client.calls, []); // nothing sent before the confirming button
  await act(async () => rows()[1].find((n) => n.type === "button" && text(n) === "Cancel").props.onClick());
  assert.deepEqual(buttons(rows()[1]), ["Close session"]);

  await act(async () => rows()[1].find((n) => n.type === "button").props.onClick());
  await act(async () => rows()[1].find((n) => n.type === "button" && text(n) === "Close").props.onClick());
  assert.deepEqual(client.calls, ["b"]);
  const notice = root.root.find((n) => n.props.className === "mydevices-too-new");
  assert.match(text(notice), /can close other sessions from at 2026-12-02T09:00:00Z/);
  assert.equal(notice.find((n) => n.type === "time").props.dateTime, allowedAt);
  await act(async () => root.unmount());
});

/** A stand-in client whose closes need a recent sign-in until it re-verifies: withRecentSignIn is
 *  the real client's, over this stand-in's reauthenticate. */
function stepUpClient() {
  const row = (sessionId, deviceName, isCurrentDevice) => ({ sessionId, deviceName, deviceType: "ANDROID", model: null,
    osVersion: null, appVersion: null, location: null, lastActiveAt: "2026-12-01T10:00:00Z", createdAt: "2026-12-01T09:00:00Z",
    isCurrentDevice, deviceBound: false, canClose: !isCurrentDevice });
  const client = {
    calls: [],
    verified: false,
    listSessions: async () => ({ sessions: [row("a", "This phone", true), row("b", "Pixel 8", false)],
      closeOthersAllowedAt: null }),
    pendingAlerts: async () => [],
    reauthenticate: async (idToken) => { client.calls.push(`reauthenticate ${idToken}`); client.verified = true; },
    closeSession: async (sid) => {
      client.calls.push(`close ${sid}`);
      if (!client.verified) throw new MyDevicesError(403, "recent_sign_in_required", "sign in again", { details: { maxAge: 600 } });
      return { sessionId: sid, revoked: true };
    },
    onSignedOut: () => () => {},
  };
  client.withRecentSignIn = MyDevicesClient.prototype.withRecentSignIn.bind(client);
  return client;
}

async function closePixel(root) {
  const rows = () => root.root.findAll((n) => n.type === "li");
  await until(() => rows().length === 2);
  await act(async () => rows()[1].find((n) => n.type === "button").props.onClick());
  await act(async () => rows()[1].find((n) => n.type === "button" && text(n) === "Close").props.onClick());
}

test("<ActiveSessions/> answers recent_sign_in_required with the app's fresh sign-in and closes once", async () => {
  const client = stepUpClient();
  const asked = [];
  const freshIdToken = async (maxAge) => { asked.push(maxAge); return "fresh-id-token"; };
  let root;
  await act(async () => {
    root = TestRenderer.create(h(MyDevicesProvider, { client }, h(ActiveSessions, { pollMs: 0, freshIdToken })));
  });
  await closePixel(root);
  assert.deepEqual(asked, [600]);
  assert.deepEqual(client.calls, ["close b", "reauthenticate fresh-id-token", "close b"]);
  assert.equal(root.root.findAll((n) => n.props.className === "mydevices-error").length, 0);
  await act(async () => root.unmount());
});

test("<ActiveSessions/> without a way to sign in again says a recent sign-in is needed and closes nothing", async () => {
  const client = stepUpClient();
  let root;
  await act(async () => {
    root = TestRenderer.create(h(MyDevicesProvider, { client }, h(ActiveSessions, { pollMs: 0 })));
  });
  await closePixel(root);
  assert.deepEqual(client.calls, ["close b"]);
  const error = root.root.find((n) => n.props.className === "mydevices-error");
  assert.match(text(error), /sign in again first \(this needs a sign-in within the last 10 minutes\)/);
  await act(async () => root.unmount());
});

/** A stand-in client with five activity entries, served two a page as GET /v1/activity pages them. */
function activityClient() {
  const entries = ["e5", "e4", "e3", "e2", "e1"].map((id, n) => ({ id, kind: n === 0 ? "closed" : "signed_in",
    at: `2026-12-0${5 - n}T09:00:00.000Z`, sessionId: `s${n}`, deviceName: "<img src=x onerror=alert(1)>",
    platform: "android", isCurrentDevice: false,
    text: n === 0 ? "Session on “<img src=x onerror=alert(1)>” ended. Closed by support: lost phone" : `Signed in ${id}` }));
  const client = {
    calls: [],
    listActivity: async ({ limit, cursor } = {}) => {
      client.calls.push(cursor ?? null);
      const start = cursor ? entries.findIndex((e) => e.id === cursor) + 1 : 0;
      const page = entries.slice(start, start + limit);
      return { activity: page, nextCursor: start + limit < entries.length ? page.at(-1).id : null };
    },
    onSignedOut: () => () => {},
  };
  return client;
}

test("useSecurityActivity pages with the cursor and <SecurityActivity/> shows the server's sentences as text", async () => {
  const client = activityClient();
  const seen = {};
  function Probe() {
    seen.activity = useSecurityActivity({ limit: 2 });
    return h(SecurityActivity, { limit: 2, pollMs: 0, formatTime: (iso) => `at ${iso}` });
  }
  let root;
  await act(async () => { root = TestRenderer.create(h(MyDevicesProvider, { client }, h(Probe))); });
  await until(() => seen.activity.data);
  assert.deepEqual(seen.activity.entries.map((e) => e.id), ["e5", "e4"]);
  assert.equal(seen.activity.hasMore, true);
  await act(async () => { await seen.activity.loadMore(); });
  await act(async () => { await seen.activity.loadMore(); });
  assert.deepEqual(seen.activity.entries.map((e) => e.id), ["e5", "e4", "e3", "e2", "e1"]);
  assert.equal(seen.activity.hasMore, false);
  const rows = () => root.root.findAll((n) => n.type === "li");
  await until(() => rows().length === 2);
  const first = rows()[0].find((n) => n.props.className === "mydevices-activity-text");
  assert.deepEqual(first.children, ["Session on “<img src=x onerror=alert(1)>” ended. Closed by support: lost phone"]);
  assert.equal(root.root.findAll((n) => n.type === "img").length, 0);
  const more = root.root.find((n) => n.type === "button");
  await act(async () => more.props.onClick());
  await until(() => rows().length === 4);
  assert.deepEqual(client.calls.filter(Boolean), ["e4", "e2", "e4"]);
  await act(async () => root.unmount());
});

