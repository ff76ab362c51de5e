// Another team's Node backend, guarded by @mydevices/server (the built package), for the tests:
// tests/api/test_guard_cases.py sends the same cases here and to the Python guard (tests/guarded_app).
//   PORT=8123 node test/server.mjs     (with the stack's environment: emulators, MYDEVICES_KEYS_FILE)
// Routes: /fn/orders           firebase-functions v2 onRequest(requireSession(...))
//         /fn/bound_orders     the same with { requireProof: true }
//         /express/orders      an Express app with sessionMiddleware()
//         /express-bound/bound_orders   sessionMiddleware(new SessionGuard({ requireProof: true }))
//         /fn/payments, /express-payments/payments   the same with { maxAuthAge: 600 } (a recent sign-in)
//         /callable/payments   the same with { maxAuthAge: 600 }
//         /callable/orders     firebase-functions v2 onCall(requireCallableSession(...))
//         /fn-app-check/orders, /fn-app-check-report/orders   onRequest with { appCheck: "enforce" } / "report"
import http from "node:http";
import net from "node:net";
import express from "express";
import { initializeApp } from "firebase-admin/app";
import { HttpsError, onCall, onRequest } from "firebase-functions/v2/https";
import { SessionGuard, requireCallableSession, requireSession, sessionMiddleware } from "../dist/index.js";

// App Check offline: firebase-admin fetches App Check's JWKS from https://firebaseappcheck.googleapis.com/v1/jwks
// and has no setting for another URL (the Python product sets firebase-admin's _JWKS_URL from
// MYDEVICES_APP_CHECK_JWKS_URL). Here the app's own `httpAgent` (an option of initializeApp, used for every
// request firebase-admin makes) connects that host to the stack's stand-in, which serves the local key's JWKS
// at the same path over plain HTTP, passes loopback (the emulators) through, and refuses any other host (no
// network). No `protocol` of its own, so it serves http: (the emulators) and https: (that host) alike.
const standIn = new URL(process.env.MYDEVICES_APP_CHECK_JWKS_URL);
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);
class StandInAgent extends http.Agent {
  constructor() {
    super({ keepAlive: false });
    this.protocol = undefined;
  }

  createConnection(options, callback) {
    if (options.host === "firebaseappcheck.googleapis.com") {
      return net.connect({ host: standIn.hostname, port: Number(standIn.port) });
    }
    if (LOOPBACK.has(options.host)) return net.connect({ host: options.host, port: options.port });
    callback(new Error(`no network in the tests: ${options.host}`));
    return undefined;
  }
}
initializeApp({ projectId: process.env.GOOGLE_CLOUD_PROJECT, httpAgent: new StandInAgent() });
const answer = (res, caller, path) => res.json({ uid: caller.uid, sessionId: caller.sid, path });

const orders = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/orders")));
const proofGuard = new SessionGuard({ requireProof: true });
const boundOrders = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/bound_orders"), proofGuard));
const recentGuard = new SessionGuard({ maxAuthAge: 600 });
const payments = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/payments"), recentGuard));
const callable = onCall(requireCallableSession(HttpsError, async (request, caller) => ({ uid: caller.uid, sessionId: caller.sid })));

const callablePayments = onCall(requireCallableSession(HttpsError,
  async (request, caller) => ({ uid: caller.uid, sessionId: caller.sid }), recentGuard));

const appCheckOrders = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/orders"),
  new SessionGuard({ appCheck: "enforce" })));
const appCheckReportOrders = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/orders"),
  new SessionGuard({ appCheck: "report" })));

const app = express();
app.all("/fn-app-check/orders", (req, res) => appCheckOrders(req, res));
app.all("/fn-app-check-report/orders", (req, res) => appCheckReportOrders(req, res));
app.all("/fn/orders", (req, res) => orders(req, res));
app.all("/fn/bound_orders", (req, res) => boundOrders(req, res));
app.all("/fn/payments", (req, res) => payments(req, res));
const team = express.Router();
team.use(sessionMiddleware());
team.get("/orders", (req, res) => answer(res, req.mydevices, "/orders"));
app.use("/express", team);
app.get("/express-bound/bound_orders", sessionMiddleware(proofGuard), (req, res) => answer(res, req.mydevices, "/bound_orders"));
app.get("/express-payments/payments", sessionMiddleware(recentGuard), (req, res) => answer(res, req.mydevices, "/payments"));
app.post("/callable/orders", express.json(), (req, res) => callable(req, res));
app.post("/callable/payments", express.json(), (req, res) => callablePayments(req, res));

const server = app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
