// An app on the Firebase JS SDK (tests/js/package.json pins it), as tests/web/test_js_sdk.py drives it:
// signInWithCustomToken against the Auth emulator, optionally App Check through a CustomProvider,
// then httpsCallable(...)() and httpsCallable(...).stream() through connectFunctionsEmulator.
//
// Reads a plan as JSON on stdin:
//   {"projectId", "authEmulator": "http://127.0.0.1:9099", "functionsHost", "functionsPort",
//    "customToken", "appCheckToken": null | "<token>", "timeoutMs",
//    "calls": [{"name", "data", "stream": false}]}
// and prints one JSON line: [{"ok": true, "data", "chunks"} | {"ok": false, "code", "message", "details"}
//                            | {"ok": false, "timeout": true}] in the order of `calls`.
import { initializeApp } from "firebase/app";
import { CustomProvider, initializeAppCheck } from "firebase/app-check";
import { connectAuthEmulator, getAuth, signInWithCustomToken } from "firebase/auth";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const plan = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const app = initializeApp({ apiKey: "fake-api-key", projectId: plan.projectId, appId: "1:123456789012:web:0123456789abcdef" });
if (plan.appCheckToken) {
  initializeAppCheck(app, {
    provider: new CustomProvider({
      getToken: async () => ({ token: plan.appCheckToken, expireTimeMillis: Date.now() + 3600 * 1000 }),
    }),
    isTokenAutoRefreshEnabled: false,
  });
}
const auth = getAuth(app);
connectAuthEmulator(auth, plan.authEmulator, { disableWarnings: true });
await signInWithCustomToken(auth, plan.customToken);
const functions = getFunctions(app, "us-central1");
connectFunctionsEmulator(functions, plan.functionsHost, plan.functionsPort);

function timeout(ms) {
  // Not unref(): a stream that never settles must show up as a timeout, not as Node exiting early.
  return new Promise((resolve) => setTimeout(() => resolve({ ok: false, timeout: true }), ms));
}

async function run(call) {
  const callable = httpsCallable(functions, call.name);
  try {
    if (!call.stream) {
      const answer = await callable(call.data);
      return { ok: true, data: answer.data };
    }
    const { stream, data } = await callable.stream(call.data);
    data.catch(() => {}); // an error rejects both: the stream's is the one reported
    const received = [];
    for await (const chunk of stream) received.push(chunk);
    return { ok: true, data: await data, chunks: received };
  } catch (error) {
    return { ok: false, code: error.code, message: error.message, details: error.details ?? null };
  }
}

const outcomes = [];
for (const call of plan.calls) {
  outcomes.push(await Promise.race([run(call), timeout(plan.timeoutMs ?? 15000)]));
}
process.stdout.write(JSON.stringify(outcomes) + "\n");
process.exit(0);
