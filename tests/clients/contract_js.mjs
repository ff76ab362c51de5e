// clients/js over the client contract (clients/contract/api.json and push.json), with a scripted fetch.
// Run by tests/clients/test_contract.py: node contract_js.mjs <contract dir>. Prints one line per failure
// and a closing line "N passed, N failed, N skipped".
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MyDevicesClient, memoryStorage, parsePushData } from "../../clients/js/dist/mydevices.js";

const dir = process.argv[2];
const api = JSON.parse(readFileSync(join(dir, "api.json"), "utf8"));
const push = JSON.parse(readFileSync(join(dir, "push.json"), "utf8"));
const CAPABILITIES = new Set([]); // no DPoP, no retry of a lost refresh, web codes left to the browser
let passed = 0, failed = 0, skipped = 0;

function subset(actual, expected, where) {
  for (const [key, value] of Object.entries(expected)) {
    if (value && typeof value === "object" && !Array.isArray(value)) subset(actual?.[key] ?? {}, value, `${where}.${key}`);
    else assert.deepEqual(actual?.[key], value, `${where}.${key}`);
  }
}

function scriptedFetch(vector) {
  let next = 0;
  const fetch = async (url, init = {}) => {
    const exchange = vector.exchanges[next++];
    assert.ok(exchange, `an unexpected request: ${init.method} ${url}`);
    const { request, response } = exchange;
    assert.equal(url, api.baseUrl + request.path, `request ${next}: url`);
    assert.equal(init.method, request.method, `request ${next}: method`);
    const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    for (const [name, value] of Object.entries(request.headers ?? {})) assert.equal(headers[name.toLowerCase()], value, `request ${next}: ${name}`);
    if (request.body) subset(JSON.parse(init.body), request.body, `request ${next}: body`);
    if (response.network) throw new TypeError("fetch failed");
    return new Response(JSON.stringify(response.body), { status: response.status, headers: response.headers });
  };
  return { fetch, done: () => assert.equal(next, vector.exchanges.length, "requests made") };
}

const summaries = {
  login: (r) => ({ sessionId: r.session.sessionId }),
  listSessions: (r) => ({ sessionIds: r.sessions.map((s) => s.sessionId), closeOthersAllowedAt: r.closeOthersAllowedAt,
    autoCloseAfterDays: r.autoCloseAfterDays }),
  reauthenticate: (r) => ({ authTime: r.authTime }),
  setAutoClose: (r) => ({ autoCloseAfterDays: r.autoCloseAfterDays, closed: r.closed }),
  current: (r) => ({ sessionId: r.sessionId }),
  exportAccount: (r) => ({ uid: r.uid, documentPaths: r.documents.map((d) => d.path) }),
  revokeOthers: (r) => ({ revoked: r.revoked }),
  respondToAlert: (r) => ({ answer: r.answer, status: r.status, closedSessionIds: r.closedSessionIds ?? [], advice: r.advice ?? null }),
  listActivity: (r) => ({ ids: r.activity.map((e) => e.id), texts: r.activity.map((e) => e.text),
    closedByKinds: r.activity.map((e) => e.closedBy?.kind ?? null), nextCursor: r.nextCursor }),
};

function invoke(client, call) {
  switch (call.op) {
    case "login": return client.login({ idToken: call.idToken, device: call.device, push: call.push });
    case "closeSession": return client.closeSession(call.sessionId);
    case "updatePushToken": return client.updatePushToken(call.token);
    case "respondToAlert": return client.respondToAlert(call.actionToken, call.answer);
    case "reauthenticate": return client.reauthenticate(call.idToken);
    case "setAutoClose": return client.setAutoClose(call.afterDays);
    case "listActivity": return client.listActivity({ limit: call.limit, cursor: call.cursor });
    default: return client[call.op]();
  }
}

async function runApi(vector) {
  const storage = memoryStorage();
  await storage.setItem("mydevices.state", JSON.stringify(api.states[vector.start]));
  const script = scriptedFetch(vector);
  const events = [];
  const client = new MyDevicesClient({ baseUrl: api.baseUrl, storage, fetch: script.fetch, crossTabLock: false,
    onSignedOut: (reason) => events.push(reason) });
  const { expect } = vector;
  let result = null, error = null;
  try { result = await invoke(client, vector.call); } catch (e) { error = e; }
  if (expect.error) {
    assert.ok(error, "an error");
    const got = { status: error.status, code: error.code };
    if ("retryAfter" in expect.error) got.retryAfter = error.retryAfter;
    if ("allowedAt" in expect.error) got.allowedAt = error.details?.allowedAt;
    if ("reason" in expect.error) got.reason = error.details?.reason;
    if ("maxAge" in expect.error) got.maxAge = error.details?.maxAge;
    assert.deepEqual(got, expect.error);
    if (!("retryAfter" in expect.error)) assert.equal(error.retryAfter, null, "retryAfter");
  } else {
    assert.equal(error, null, `no error (got ${error?.code})`);
    const summary = summaries[vector.call.op];
    if (expect.result !== null) assert.deepEqual(summary(result), expect.result);
  }
  assert.deepEqual(events, expect.signedOut ? [expect.signedOut] : [], "signedOut events");
  const stored = await client.session();
  assert.deepEqual({ signedIn: stored.signedIn, sessionId: stored.sessionId, deviceId: stored.deviceId },
    { signedIn: expect.stored.signedIn, sessionId: expect.stored.sessionId, deviceId: expect.stored.deviceId });
  script.done();
}

async function runPush(vector) {
  const parsed = parsePushData(vector.message.data);
  const expected = vector.expect.parsed;
  if (parsed && parsed.type === "newLoginAlert") parsed.expiresAt = parsed.expiresAt && Date.parse(parsed.expiresAt) / 1000;
  assert.deepEqual(parsed, expected);
  const storage = memoryStorage();
  if (vector.currentSessionId) await storage.setItem("mydevices.state", JSON.stringify({ sessionId: vector.currentSessionId }));
  const events = [];
  const client = new MyDevicesClient({ storage, fetch: () => assert.fail("no request"), crossTabLock: false,
    onSignedOut: (reason) => events.push(reason) });
  const event = await client.handlePush(vector.message.data);
  assert.deepEqual({ event: event && event.isCurrentSession ? event.type : null, signedOut: events[0] ?? null },
    vector.expect.handled);
  assert.ok(events.length <= 1, "one signedOut at most");
}

for (const [kind, vectors, run] of [["api", api.vectors, runApi], ["push", push.vectors, runPush]]) {
  for (const vector of vectors) {
    if ((vector.requires ?? []).some((r) => !CAPABILITIES.has(r))) { skipped++; continue; }
    try { await run(vector); passed++; } catch (error) {
      failed++;
      console.log(`FAIL ${kind}: ${vector.name}: ${error.message}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exitCode = failed ? 1 : 0;
