// Another team's Node backend, guarded by @mydevices/server (the built package), for the tests:
// tests/api/test_guard_cases.py sends the same cases here and to the Python guard (tests/guarded_app).
//   PORT=8123 node test/server.mjs     (with the stack's environment: emulators, MYDEVICES_KEYS_FILE)
// Routes: /fn/orders           firebase-functions v2 onRequest(requireSession(...))
//         /fn/bound_orders     the same with { requireProof: true }
//         /express/orders      an Express app with sessionMiddleware()
//         /express-bound/bound_orders   sessionMiddleware(new SessionGuard({ requireProof: true }))
//         /callable/orders     firebase-functions v2 onCall(requireCallableSession(...))
import express from "express";
import { initializeApp } from "firebase-admin/app";
import { HttpsError, onCall, onRequest } from "firebase-functions/v2/https";
import { SessionGuard, requireCallableSession, requireSession, sessionMiddleware } from "../dist/index.js";

initializeApp({ projectId: process.env.GOOGLE_CLOUD_PROJECT });
const answer = (res, caller, path) => res.json({ uid: caller.uid, sessionId: caller.sid, path });

const orders = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/orders")));
const proofGuard = new SessionGuard({ requireProof: true });
const boundOrders = onRequest(requireSession(async (req, res, caller) => answer(res, caller, "/bound_orders"), proofGuard));
const callable = onCall(requireCallableSession(HttpsError, async (request, caller) => ({ uid: caller.uid, sessionId: caller.sid })));

const app = express();
app.all("/fn/orders", (req, res) => orders(req, res));
app.all("/fn/bound_orders", (req, res) => boundOrders(req, res));
const team = express.Router();
team.use(sessionMiddleware());
team.get("/orders", (req, res) => answer(res, req.mydevices, "/orders"));
app.use("/express", team);
app.get("/express-bound/bound_orders", sessionMiddleware(proofGuard), (req, res) => answer(res, req.mydevices, "/bound_orders"));
app.post("/callable/orders", express.json(), (req, res) => callable(req, res));

const server = app.listen(Number(process.env.PORT), "127.0.0.1", () => console.log(`listening on ${server.address().port}`));
