// What @mydevices/server's requireSession costs per validated call, for the benchmark's cost table
// (infra/bench/guards.py runs this beside the Python guard, on the same stack and the same session).
//   node test/cost.mjs < job.json      (with the stack's environment: emulators, MYDEVICES_KEYS_FILE)
// job.json: {"headers": {...the device's request headers}, "document": "users/U/sessions/S",
//            "calls": 5, "iterations": 200, "warmup": 20}
// Prints one JSON object: `perCall`, the Firestore operations of each of `calls` guarded requests,
// and `timing`, the guard against a bare firebase-admin get of the same document, interleaved.
//
// The counting is counting.py's, in Node: every Firestore operation of firebase-admin goes through a
// method of the generated (gapic) v1 FirestoreClient of @google-cloud/firestore, patched here on the
// class (so on every client instance the pool makes): batchGetDocuments (document gets, reads in
// transactions: one read per document asked for, found or missing), getDocument (one read),
// runQuery (one read per document returned, one for a query that returns none), runAggregationQuery
// (one read per 1000 entries counted, at least one), commit and batchWrite (one write per Write),
// beginTransaction and rollback (counted, not billed). Streams are counted by a sink piped beside
// the library's own consumer, as the library itself pipes its log stream.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { Transform } from "node:stream";
import { initializeApp } from "firebase-admin/app";
import { getFirestore } from "firebase-admin/firestore";
import { SessionGuard, requireSession } from "../dist/index.js";

const job = JSON.parse(readFileSync(0, "utf8"));
// As Node's http module hands them over (and firebase-functions and Express after it): lower case.
const headers = Object.fromEntries(Object.entries(job.headers).map(([name, value]) => [name.toLowerCase(), value]));
const require = createRequire(import.meta.url);

// The @google-cloud/firestore that firebase-admin loads must be the one patched here.
const ours = require.resolve("@google-cloud/firestore");
const admins = createRequire(require.resolve("firebase-admin/firestore")).resolve("@google-cloud/firestore");
if (ours !== admins) throw new Error(`two copies of @google-cloud/firestore: ${ours} and ${admins}`);
const { FirestoreClient } = require("@google-cloud/firestore").v1;

const FIELDS = ["reads", "found", "missing", "queries", "emptyQueries", "aggregations", "writes", "commits",
  "transactions", "rollbacks"];
let tally = null;
const fresh = () => Object.fromEntries(FIELDS.map((name) => [name, 0]));
const add = (name, amount = 1) => { if (tally) tally[name] += amount; };

function sink(stream, onChunk, onEnd = () => {}) {
  stream.pipe(new Transform({ objectMode: true, transform(chunk, _encoding, done) { onChunk(chunk); done(); },
    flush(done) { onEnd(); done(); } }));
  return stream;
}

const patches = {
  batchGetDocuments: (original) => function (...args) {
    return sink(original.apply(this, args), (response) => {
      if (response.found && response.found.name) { add("found"); add("reads"); }
      else if (response.missing) { add("missing"); add("reads"); }
    });
  },
  getDocument: (original) => function (...args) {
    add("reads");
    return original.apply(this, args).then((answer) => { add("found"); return answer; },
      (error) => { if (error?.code === 5) add("missing"); throw error; });
  },
  runQuery: (original) => function (...args) {
    add("queries");
    let seen = 0;
    return sink(original.apply(this, args), (response) => {
      if (response.document && response.document.name) { seen += 1; add("reads"); }
    }, () => { if (seen === 0) { add("emptyQueries"); add("reads"); } });
  },
  runAggregationQuery: (original) => function (...args) {
    add("aggregations");
    return sink(original.apply(this, args), (response) => {
      const fields = response.result?.aggregateFields ?? {};
      const entries = Math.max(0, ...Object.values(fields).map((value) => Number(value.integerValue ?? 0)));
      if (response.result) add("reads", Math.max(1, Math.ceil(entries / 1000)));
    });
  },
  commit: (original) => function (request, ...rest) {
    add("commits"); add("writes", (request?.writes ?? []).length); return original.call(this, request, ...rest);
  },
  batchWrite: (original) => function (request, ...rest) {
    add("commits"); add("writes", (request?.writes ?? []).length); return original.call(this, request, ...rest);
  },
  beginTransaction: (original) => function (...args) { add("transactions"); return original.apply(this, args); },
  rollback: (original) => function (...args) { add("rollbacks"); return original.apply(this, args); },
};
for (const [name, wrap] of Object.entries(patches)) {
  if (typeof FirestoreClient.prototype[name] !== "function") throw new Error(`FirestoreClient has no ${name}`);
  FirestoreClient.prototype[name] = wrap(FirestoreClient.prototype[name]);
}

const app = initializeApp({ projectId: process.env.GOOGLE_CLOUD_PROJECT });
const db = getFirestore(app);
const guard = new SessionGuard();
let answered = null;
const guarded = requireSession(async (_req, res, caller) => res.status(200).json({ uid: caller.uid }), guard);

/** One request through the onRequest adapter, as firebase-functions hands it over: its status. */
async function request() {
  answered = null;
  const res = {
    status(code) { answered = code; return res; },
    setHeader() { return res; },
    json() { return res; },
  };
  await guarded({ method: "GET", originalUrl: "/orders", protocol: "http", headers }, res);
  return answered;
}

const perCall = [];
for (let call = 0; call < job.calls; call += 1) {
  tally = fresh();
  const status = await request();
  perCall.push({ invocations: 1, status, ...tally });
  tally = null;
}

const bare = () => db.doc(job.document).get();
const calls = { guard: request, bareGet: bare };
const samples = { guard: [], bareGet: [] };
const names = Object.keys(calls);
for (let round = 0; round < job.warmup + job.iterations; round += 1) {
  const shift = round % names.length;
  for (const name of [...names.slice(shift), ...names.slice(0, shift)]) {
    const start = performance.now();
    const result = await calls[name]();
    const elapsed = performance.now() - start;
    if (name === "guard" && result !== 200) throw new Error(`the guard answered ${result} while timed`);
    if (round >= job.warmup) samples[name].push(elapsed);
  }
}

const summary = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
    : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  return { n: sorted.length, medianMs: median, p99Ms: sorted[Math.max(1, Math.ceil(0.99 * sorted.length)) - 1] };
};
const timing = { guard: summary(samples.guard), bareGet: summary(samples.bareGet) };
timing.ratio = timing.guard.medianMs / timing.bareGet.medianMs;
process.stdout.write(JSON.stringify({ perCall, timing, node: process.version }) + "\n");
await app.delete();
process.exit(0);
