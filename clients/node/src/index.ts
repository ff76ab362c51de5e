// @mydevices/server: My Devices' session check for Node backends (Cloud Functions v2, Express).
//
// The same three steps, errors and codes as the Python `require_session` (functions/mydevices/http/require_session.py):
//   1. the device id (`X-Device-Id`): our HMAC over it, under a key of the product's keyring;
//   2. the access token: an EdDSA (Ed25519) JWT of the keyring, issuer and audience pinned, 30 s of skew;
//      or, for callables, the Firebase ID token of a My Devices login (its `sid` and `did` claims);
//   3. one read of the session document through firebase-admin's Firestore: this user's, on this
//      device, active. An access token of a session its device has since replaced is a copied token:
//      the user is signed out (everywhere, by MYDEVICES_REUSE_POLICY) and `token_reused` answered.
// App Check as MYDEVICES_APP_CHECK says (off, report, enforce); a DPoP proof per request on demand.
// Time is the product's clock (functions/mydevices/clock.py): on a local stack, MYDEVICES_CLOCK_FILE moves it.
// Configuration is the product's own environment: MYDEVICES_KEYS_JSON or MYDEVICES_KEYS_FILE (the
// keyring JSON), MYDEVICES_ISSUER, MYDEVICES_AUDIENCE, MYDEVICES_REUSE_POLICY, ... (README.md).

import { createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, timingSafeEqual,
  verify as verifySignature, type KeyObject } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { getApps, initializeApp } from "firebase-admin/app";
import { getAuth } from "firebase-admin/auth";
import { getAppCheck } from "firebase-admin/app-check";
import { Timestamp, getFirestore, type DocumentReference, type Firestore } from "firebase-admin/firestore";

// --- errors ---------------------------------------------------------------------------------------

export type GuardErrorCode =
  | "unauthenticated" | "invalid_token" | "token_expired" | "session_revoked" | "token_reused" | "unknown_device"
  | "app_check_failed" | "invalid_dpop_proof" | "device_binding_required" | "session_expired"
  | "recent_sign_in_required" | "unavailable" | "internal";

const HTTP_STATUS: Record<GuardErrorCode, number> = {
  unauthenticated: 401, invalid_token: 401, token_expired: 401, session_revoked: 401, token_reused: 401,
  unknown_device: 401, app_check_failed: 401, invalid_dpop_proof: 401, device_binding_required: 401,
  session_expired: 401, recent_sign_in_required: 403, unavailable: 503, internal: 500,
};

/** A refusal, as the API and the Python guard answer it: `{"error": {"code", "message", ...facts}}`. */
export class SessionError extends Error {
  readonly code: GuardErrorCode;
  readonly status: number;
  readonly facts: Record<string, string | number>;
  readonly headers: Record<string, string>;

  constructor(code: GuardErrorCode, message: string, { facts = {}, headers = {} }:
    { facts?: Record<string, string | number>; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = "SessionError";
    this.code = code;
    this.status = HTTP_STATUS[code];
    this.facts = facts;
    this.headers = headers;
  }

  body(): { error: { code: GuardErrorCode; message: string; [fact: string]: string | number } } {
    return { error: { code: this.code, message: this.message, ...this.facts } };
  }
}

const unauthenticated = (code: GuardErrorCode, message: string, facts: Record<string, string | number> = {}) =>
  new SessionError(code, message, { facts });
const unavailable = () => new SessionError("unavailable", "a backing service is unavailable, retry shortly",
  { headers: { "Retry-After": "2" } });
const INTERNAL_MESSAGE = "internal error";

// --- configuration --------------------------------------------------------------------------------

interface KeyringJson {
  signing: { kid: string; privateKeyPem: string }[];
  hmac: { kid: string; secret: string }[];
}

export interface Keyring {
  publicKeys: Map<string, KeyObject>;
  hmac: Map<string, Buffer>;
  currentHmacKid: string;
}

export interface GuardOptions {
  /** The keyring JSON (text or parsed); default MYDEVICES_KEYS_JSON, else the file MYDEVICES_KEYS_FILE names. */
  keyring?: string | KeyringJson;
  issuer?: string;        // MYDEVICES_ISSUER, default "mydevices"
  audience?: string;      // MYDEVICES_AUDIENCE, default "mydevices-api"
  appCheck?: "off" | "report" | "enforce"; // MYDEVICES_APP_CHECK, default "off"
  /** Demand a DPoP proof of the session's device key on every request (bound sessions only). */
  requireProof?: boolean;
  /** The URL clients call this function at, for DPoP `htu` (MYDEVICES_PUBLIC_API_URL style); default the request's. */
  publicUrl?: string;
  reusePolicy?: "revoke_all" | "revoke_session"; // MYDEVICES_REUSE_POLICY
  /** A sensitive function: the session's user must have proved who they are (signed in, or re-verified with
   *  POST /v1/sessions/current/reauthenticate) within this many seconds, else 403 `recent_sign_in_required`
   *  with `maxAge`, as the Python `require_session(max_auth_age=...)`. Default: no limit. */
  maxAuthAge?: number;
  firestore?: () => Firestore;
}

interface Settings {
  ring: Keyring; issuer: string; audience: string; appCheck: "off" | "report" | "enforce"; requireProof: boolean;
  publicUrl: string | null; reusePolicy: "revoke_all" | "revoke_session"; lastActiveInterval: number;
  accessTtl: number; idleTimeoutWeb: number | null; idleTimeoutApp: number | null;
  retentionDays: number; freshSessionHours: number; maxAuthAge: number | null; db: () => Firestore;
  /** Seconds since the epoch, as the product sees them (productClock). */
  now: () => number;
}

const b64url = (data: Buffer | Uint8Array): string => Buffer.from(data).toString("base64url");
const fromB64url = (text: string): Buffer => {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) throw new TypeError("not base64url");
  return Buffer.from(text, "base64url");
};

export function parseKeyring(doc: KeyringJson): Keyring {
  const publicKeys = new Map<string, KeyObject>();
  for (const entry of doc.signing ?? []) {
    const key = createPrivateKey(entry.privateKeyPem);
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`signing key ${entry.kid} is not an Ed25519 key`);
    publicKeys.set(entry.kid, createPublicKey(key));
  }
  const hmac = new Map<string, Buffer>((doc.hmac ?? []).map((entry) => [entry.kid, fromB64url(entry.secret)]));
  if (!publicKeys.size || !hmac.size) throw new Error("the keyring needs at least one signing key and one hmac key");
  if ([...hmac.values()].some((secret) => secret.length < 32)) throw new Error("hmac keys must be at least 32 bytes");
  return { publicKeys, hmac, currentHmacKid: hmac.keys().next().value as string };
}

function envInt(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? "");
  return process.env[name] && Number.isInteger(value) ? value : fallback;
}

/** Whole seconds, or `off` (null), as functions/mydevices/config.py reads a lifetime. */
function duration(name: string, fallback: number | null): number | null {
  const given = (process.env[name] ?? "").trim().toLowerCase();
  if (!given) return fallback;
  if (given === "off") return null;
  if (!/^\d+$/.test(given) || Number(given) <= 0) throw new Error(`${name} must be a number of seconds or off, not ${given}`);
  return Number(given);
}

function maxAuthAge(seconds: number | undefined): number | null {
  if (seconds === undefined) return null;
  if (!Number.isInteger(seconds) || seconds < 0) throw new Error("maxAuthAge must be a whole number of seconds");
  return seconds;
}

function choice<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = (process.env[name] || fallback) as T;
  if (!allowed.includes(value)) throw new Error(`${name} must be one of ${allowed.join(", ")}, not ${value}`);
  return value;
}

// --- the clock -------------------------------------------------------------------------------------

const CENTURY = 100 * 365 * 86400; // the farthest a stack's clock may be moved
const DIGITS = String.raw`\d(?:_?\d)*`; // Python's float() syntax: underscores between digits only
const DECIMAL = new RegExp(String.raw`^[+-]?(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})(?:e[+-]?${DIGITS})?$`, "i");
let fileOffset: { path: string; ino: bigint; mtimeNs: bigint; size: bigint; offset: number } | null = null;

/** The local stack's offset in seconds from the file MYDEVICES_CLOCK_FILE names, as clock.py reads it:
 *  again only when the file changed (one stat per reading); a missing or unreadable file is no offset;
 *  an empty file (a write under way) or text that is no number of seconds within a century keeps the
 *  last good offset (0 at first). */
export function clockFileOffset(path: string): number {
  const known = fileOffset;
  try {
    const stat = statSync(path, { bigint: true });
    if (known && known.path === path && known.ino === stat.ino && known.mtimeNs === stat.mtimeNs
      && known.size === stat.size) {
      return known.offset;
    }
    const text = readFileSync(path, "ascii").trim();
    const last = known && known.path === path ? known.offset : 0;
    if (!DECIMAL.test(text)) return last; // Python's float() also takes inf and nan: refused below anyway
    const offset = Number(text.replaceAll("_", ""));
    if (!(Math.abs(offset) <= CENTURY)) return last;
    fileOffset = { path, ino: stat.ino, mtimeNs: stat.mtimeNs, size: stat.size, offset };
    return offset;
  } catch {
    return 0;
  }
}

/** The product's clock: the system clock, plus a local stack's offset when MYDEVICES_CLOCK_FILE is set,
 *  which only a `demo-` project may do (as the Python settings refuse it elsewhere: a deployed function
 *  cannot be talked into another time). */
function productClock(project: string | null): () => number {
  const path = process.env.MYDEVICES_CLOCK_FILE || null;
  if (path === null) return () => Date.now() / 1000;
  if (!project || !project.startsWith("demo-")) {
    throw new Error("MYDEVICES_CLOCK_FILE moves the clock of a local stack; a demo- project only");
  }
  return () => Date.now() / 1000 + clockFileOffset(path);
}

function settingsFrom(options: GuardOptions): Settings {
  let keyring = options.keyring ?? process.env.MYDEVICES_KEYS_JSON;
  if (!keyring && process.env.MYDEVICES_KEYS_FILE) keyring = readFileSync(process.env.MYDEVICES_KEYS_FILE, "utf8");
  if (!keyring) throw new Error("no keys configured: set MYDEVICES_KEYS_FILE or MYDEVICES_KEYS_JSON");
  return {
    ring: parseKeyring(typeof keyring === "string" ? JSON.parse(keyring) as KeyringJson : keyring),
    issuer: options.issuer ?? process.env.MYDEVICES_ISSUER ?? "mydevices",
    audience: options.audience ?? process.env.MYDEVICES_AUDIENCE ?? "mydevices-api",
    appCheck: options.appCheck ?? choice("MYDEVICES_APP_CHECK", ["off", "report", "enforce"] as const, "off"),
    requireProof: options.requireProof ?? false,
    publicUrl: (options.publicUrl ?? process.env.MYDEVICES_PUBLIC_API_URL ?? "").replace(/\/+$/, "") || null,
    reusePolicy: options.reusePolicy ?? choice("MYDEVICES_REUSE_POLICY", ["revoke_all", "revoke_session"] as const, "revoke_all"),
    lastActiveInterval: envInt("MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS", 3600),
    accessTtl: envInt("MYDEVICES_ACCESS_TTL_SECONDS", 600),
    idleTimeoutWeb: duration("MYDEVICES_IDLE_TIMEOUT_WEB", 90 * 86400),
    idleTimeoutApp: duration("MYDEVICES_IDLE_TIMEOUT_APP", 90 * 86400),
    retentionDays: envInt("MYDEVICES_REVOKED_RETENTION_DAYS", 30),
    freshSessionHours: envInt("MYDEVICES_FRESH_SESSION_HOURS", 24),
    maxAuthAge: maxAuthAge(options.maxAuthAge),
    db: options.firestore ?? (() => getFirestore(getApps()[0] ?? initializeApp())),
    now: productClock(process.env.GOOGLE_CLOUD_PROJECT || process.env.GCLOUD_PROJECT
      || getApps()[0]?.options.projectId || null),
  };
}

// --- step 1: the device id ------------------------------------------------------------------------

const DEVICE_ID = /^[A-Za-z0-9_-]{22}$/;
const deviceMac = (key: Buffer, id: string) => b64url(createHmac("sha256", key).update(`device-id:${id}`).digest());

/** Constant-time equality of text from a request with ours. */
function same(given: unknown, expected: string): boolean {
  if (typeof given !== "string") return false;
  const a = Buffer.from(given, "utf8");
  const b = Buffer.from(expected, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

export function verifyDeviceId(ring: Keyring, signed: string | undefined | null): string | null {
  if (!signed || signed.length > 200) return null;
  const parts = signed.split(".");
  if (parts.length !== 3 || !DEVICE_ID.test(parts[0])) return null;
  const [id, kid, mac] = parts;
  const key = ring.hmac.get(kid);
  return key && same(mac, deviceMac(key, id)) ? id : null;
}

function newSignedDeviceId(ring: Keyring): string {
  let id: string;
  do { id = b64url(randomBytes(16)); } while (id.startsWith("__") && id.endsWith("__"));
  return `${id}.${ring.currentHmacKid}.${deviceMac(ring.hmac.get(ring.currentHmacKid)!, id)}`;
}

// --- step 2: the access token ---------------------------------------------------------------------

const LEEWAY = 30;
const MAX_TOKEN_LENGTH = 4096;

export interface AccessClaims { uid: string; sid: string; did: string; iat: number; exp: number; jkt: string | null }

function segment(text: string): unknown {
  try { return JSON.parse(fromB64url(text).toString("utf8")); } catch { return undefined; }
}
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const claimText = (value: unknown): string => {
  if (typeof value !== "string" || !value || value.includes("/")) throw new TypeError("claim");
  return value;
};
const whole = (value: unknown): number => {
  if (typeof value !== "number" || !Number.isInteger(value)) throw new TypeError("claim");
  return value;
};

/** `at`: the time to check against, in seconds (default the system clock; the guard passes the product's). */
export function verifyAccessToken(ring: Keyring, token: string, issuer: string, audience: string,
  at: number = Date.now() / 1000): AccessClaims {
  const now = () => at;
  const invalid = () => unauthenticated("invalid_token", "access token is invalid");
  if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("invalid_token", "access token is too long");
  const parts = token.split(".");
  const header = segment(parts[0]);
  if (!isObject(header)) throw unauthenticated("invalid_token", "access token is malformed");
  const key = typeof header.kid === "string" ? ring.publicKeys.get(header.kid) : undefined;
  if (!key) throw unauthenticated("invalid_token", "access token was signed with an unknown key");
  if (parts.length !== 3 || header.alg !== "EdDSA") throw invalid();
  let signature: Buffer;
  try { signature = fromB64url(parts[2]); } catch { throw invalid(); }
  if (!verifySignature(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, signature)) throw invalid();
  const payload = segment(parts[1]);
  if (!isObject(payload)) throw invalid();
  for (const claim of ["iss", "aud", "sub", "sid", "did", "iat", "exp"]) if (!(claim in payload)) throw invalid();
  const aud = payload.aud;
  if (payload.iss !== issuer || !(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) throw invalid();
  if ("nbf" in payload && (!Number.isInteger(payload.nbf) || (payload.nbf as number) > now() + LEEWAY)) throw invalid();
  let claims: AccessClaims;
  try {
    const cnf = payload.cnf;
    const jkt = isObject(cnf) ? cnf.jkt : undefined;
    claims = { uid: claimText(payload.sub), sid: claimText(payload.sid), did: claimText(payload.did),
      iat: whole(payload.iat), exp: whole(payload.exp), jkt: jkt === undefined || jkt === null ? null : claimText(jkt) };
  } catch {
    throw invalid();
  }
  if (claims.exp <= now() - LEEWAY) throw unauthenticated("token_expired", "access token has expired");
  if (claims.iat > now() + LEEWAY) throw invalid();
  return claims;
}

// --- DPoP, per request (RFC 9449 §7) -------------------------------------------------------------

const PROOF_MAX_AGE = 60;

function jwkThumbprint(jwk: Record<string, unknown>): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return b64url(createHash("sha256").update(canonical).digest());
}

function sameUrl(claimed: unknown, expected: string): boolean {
  if (typeof claimed !== "string") return false;
  const base = claimed.split("#")[0].split("?")[0];
  const split = (url: string) => {
    const at = url.indexOf("://");
    if (at < 0) return null;
    const rest = url.slice(at + 3);
    const slash = rest.indexOf("/");
    return [url.slice(0, at).toLowerCase(), (slash < 0 ? rest : rest.slice(0, slash)).toLowerCase(),
      slash < 0 ? "" : rest.slice(slash)];
  };
  const a = split(base);
  const b = split(expected);
  return a !== null && b !== null && a.every((part, i) => part === b[i]);
}

interface ProofCheck { present: boolean; jkt: string | null; fault: SessionError | null }

function checkProof(proof: string | undefined, htm: string, htu: string, accessToken: string, at: number): ProofCheck {
  if (!proof || !proof.trim()) return { present: false, jkt: null, fault: null };
  const nothing = { present: true, jkt: null, fault: null };
  const parts = proof.trim().split(".");
  if (proof.length > 2048 || parts.length !== 3) return nothing;
  const header = segment(parts[0]);
  const payload = segment(parts[1]);
  if (!isObject(header) || !isObject(payload) || header.typ !== "dpop+jwt" || header.alg !== "ES256") return nothing;
  const jwk = header.jwk;
  if (!isObject(jwk) || "d" in jwk || jwk.kty !== "EC" || jwk.crv !== "P-256") return nothing;
  try {
    const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y } as never, format: "jwk" });
    const signature = fromB64url(parts[2]);
    if (signature.length !== 64) return nothing;
    if (!verifySignature("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: "ieee-p1363" }, signature)) {
      return nothing;
    }
  } catch {
    return nothing;
  }
  const jkt = jwkThumbprint(jwk);
  const fault = (message: string, reason: string): ProofCheck => ({ present: true, jkt,
    fault: unauthenticated("invalid_dpop_proof", `the DPoP proof is not valid for this request: ${message}`, { reason }) });
  const { jti, iat } = payload;
  if (typeof jti !== "string" || !(jti.length > 0 && jti.length <= 64) || !/^[\x20-\x7e]+$/.test(jti)) {
    return fault("jti must be 1 to 64 printable ASCII characters", "bad_jti");
  }
  if (typeof iat !== "number" || !Number.isInteger(iat)) return fault("iat must be a whole number of seconds", "bad_iat");
  if (Math.abs(Math.floor(at) - iat) > PROOF_MAX_AGE) {
    return fault(`iat is more than ${PROOF_MAX_AGE} seconds from the server's clock`, "stale");
  }
  if (payload.htm !== htm) return fault(`htm must be ${htm}`, "wrong_method");
  if (!sameUrl(payload.htu, htu)) return fault(`htu must be ${htu}`, "wrong_url");
  if (!same(payload.ath, b64url(createHash("sha256").update(accessToken).digest()))) {
    return fault("ath must be the hash of the access token sent with it", "wrong_ath");
  }
  return { present: true, jkt, fault: null };
}

// --- step 3: the session document ------------------------------------------------------------------

/** A request that passed the three steps. `session` is the session document as read. */
export interface Caller { uid: string; sid: string; did: string; session: Record<string, unknown> }

const ACTIVE = "active";
const REPLACED = "replaced";
const TOKEN_REUSED = "token_reused";
const NEEDS_FRESH_SIGN_IN = new Set(["user_revoked", "revoke_others", "rejected_by_user", TOKEN_REUSED]);

// Session lifetimes (functions/mydevices/lifetimes.py): deadlines stored on the session document, so the
// one read judges them; `authTime` is when the session's user last proved who they are.
const CLOSED_AS: Record<"idle" | "max_age", string> = { idle: "expired_idle", max_age: "expired_max_age" };
const REASON_OF: Record<string, "idle" | "max_age" | undefined> = { expired_idle: "idle", expired_max_age: "max_age" };
const CLOSED_BY_SUPPORT = "closed_by_support"; // functions/mydevices/lifetimes.py

const AUTO_CLOSE_DAYS = [7, 30, 90, 180]; // the user's choices (lifetimes.AUTO_CLOSE_DAYS)
const seconds = (moment: unknown): number | null => (moment instanceof Timestamp ? moment.toMillis() / 1000 : null);

/** Why the session is over at `now` (`idle` or `max_age`), or null while it is not (lifetimes.expired). */
export function expiredNow(doc: Record<string, unknown>, now: number): "idle" | "max_age" | null {
  const absolute = seconds(doc.absoluteExpiresAt);
  if (absolute !== null && absolute <= now) return "max_age";
  const idle = seconds(doc.idleExpiresAt);
  if (idle !== null && idle <= now) return "idle";
  return null;
}

function sessionExpired(reason: "idle" | "max_age"): SessionError {
  const what = reason === "idle" ? "it was not used for too long" : "it reached its maximum lifetime";
  return unauthenticated("session_expired", `this session has expired (${what}); sign in again`, { reason });
}

/** lifetimes.require_recent_sign_in: refuse unless the user proved who they are within `maxAge` seconds. */
function requireRecentSignIn(doc: Record<string, unknown>, maxAge: number | null, now: number): void {
  if (maxAge === null) return;
  const proved = seconds(doc.authTime);
  if (proved !== null && now - proved <= maxAge) return;
  throw new SessionError("recent_sign_in_required",
    `sign in again to do this: it needs a sign-in within the last ${maxAge} seconds`, { facts: { maxAge } });
}

/** Firestore errors are an outage of a dependency: 503 `unavailable`, as the Python guard answers. */
async function store<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SessionError) throw error;
    console.error("My Devices guard: Firestore failed:", error);
    throw unavailable();
  }
}

class Sessions {
  constructor(private readonly conf: Settings) {}

  private ref(uid: string, sid: string): DocumentReference {
    return this.conf.db().collection("users").doc(uid).collection("sessions").doc(sid);
  }

  /** `replacedMeansCopied`: our access token (renewed with us, so its refresh records the session's activity);
   *  false for a Firebase ID token, whose activity this call records (functions/mydevices/flows/validation.py). */
  async active(uid: string, sid: string, did: string, replacedMeansCopied: boolean): Promise<Caller> {
    const snapshot = await store(() => this.ref(uid, sid).get());
    const doc = snapshot.exists ? snapshot.data() ?? {} : null;
    if (doc === null || doc.deviceId !== did) throw unauthenticated("invalid_token", "no such session");
    if (doc.status !== ACTIVE) {
      const live = replacedMeansCopied ? await store(() => this.liveReplacement(uid, doc)) : null;
      if (live !== null) await this.copied(uid, sid, did, live, doc);
      const expiredAs = REASON_OF[String(doc.revokedReason)];
      if (expiredAs) throw sessionExpired(expiredAs);
      // The app's support closed it (functions/mydevices/flows/support.py): said, so the app can tell the user.
      if (doc.revokedReason === CLOSED_BY_SUPPORT) {
        throw unauthenticated("session_revoked", "this session was closed by support", { reason: CLOSED_BY_SUPPORT });
      }
      throw unauthenticated("session_revoked", "this session has been closed");
    }
    const why = expiredNow(doc, this.conf.now());
    if (why !== null) {
      // Judged from the document just read (functions/mydevices/flows/validation.py): the first call to see
      // it closes it, as expired (no force_logout push), so the list and the API agree at once.
      try {
        await this.revokeOne(uid, sid, this.closing(CLOSED_AS[why]));
      } catch (error) {
        console.warn(`expired session ${sid} not closed yet:`, error); // the deadline refuses it anyway
      }
      throw sessionExpired(why);
    }
    if (!replacedMeansCopied) await this.touch(uid, sid, doc);
    return { uid, sid, did, session: doc };
  }

  /** The active session that replaced this closed one on its device (following re-logins), if any. */
  private async liveReplacement(uid: string, doc: Record<string, unknown>): Promise<string | null> {
    for (let hop = 0; hop < 10; hop += 1) {
      const successor = doc.revokedReason === REPLACED ? doc.replacedBy : null;
      if (typeof successor !== "string" || !DEVICE_ID.test(successor)) return null;
      const found = await this.ref(uid, successor).get();
      if (!found.exists) return null;
      doc = found.data() ?? {};
      if (doc.status === ACTIVE) return successor;
    }
    return null;
  }

  /** The copied-token response (functions/mydevices/flows/copied_token.py): one security event per
   *  incident, the user signed out everywhere (or only that device: MYDEVICES_REUSE_POLICY, or a
   *  session still in its fresh window), then `token_reused`. */
  private async copied(uid: string, sid: string, did: string, liveSid: string, presented: Record<string, unknown>):
    Promise<never> {
    const closing = this.closing(TOKEN_REUSED);
    const { revokedAt: at, expireAt } = closing;
    const everywhere = this.conf.reusePolicy === "revoke_all" && this.settledFrom(presented) === null;
    const db = this.conf.db();
    await store(async () => {
      try {
        await db.collection("users").doc(uid).collection("securityEvents").doc(`${TOKEN_REUSED}-${sid}`).create({
          type: TOKEN_REUSED, detail: "access token of a replaced session", sessionId: sid, liveSessionId: liveSid,
          deviceId: did, at, expireAt,
        });
      } catch (error) {
        if ((error as { code?: number }).code !== 6) throw error; // ALREADY_EXISTS: a concurrent replay recorded it
      }
      const user = db.collection("users").doc(uid);
      if (everywhere) {
        await user.set({ reauthAfter: at }, { merge: true });
        const open = await user.collection("sessions").where("status", "==", ACTIVE).get();
        for (let start = 0; start < open.docs.length; start += 500) {
          const batch = db.batch();
          for (const snap of open.docs.slice(start, start + 500)) {
            batch.update(snap.ref, closing, { lastUpdateTime: snap.updateTime });
          }
          try {
            await batch.commit();
          } catch {
            for (const snap of open.docs.slice(start, start + 500)) await this.revokeOne(uid, snap.id, closing);
          }
        }
      } else {
        await this.revokeOne(uid, liveSid, closing);
      }
    });
    const closed = everywhere ? "all sessions were closed" : "its device was signed out";
    throw unauthenticated("token_reused", `this token was used after it had been replaced; ${closed}`);
  }

  /** The fields that close a session now (documents.revocation). */
  private closing(reason: string): { status: string; revokedAt: Timestamp; revokedReason: string; expireAt: Timestamp } {
    const revokedAt = Timestamp.fromMillis(this.conf.now() * 1000);
    const expireAt = Timestamp.fromMillis(revokedAt.toMillis() + this.conf.retentionDays * 86400_000);
    return { status: "revoked", revokedAt, revokedReason: reason, expireAt };
  }

  private async revokeOne(uid: string, sid: string, closing: Record<string, unknown>): Promise<void> {
    const db = this.conf.db();
    await db.runTransaction(async (transaction) => {
      const snap = await transaction.get(this.ref(uid, sid));
      if (!snap.exists || snap.data()?.status !== ACTIVE) return;
      transaction.update(snap.ref, closing);
      if (NEEDS_FRESH_SIGN_IN.has(String(closing.revokedReason))) {
        transaction.set(db.collection("users").doc(uid), { reauthAfter: closing.revokedAt }, { merge: true });
      }
    });
  }

  /** lifetimes.idle_seconds: the platform's idle timeout or the user's shorter auto-close choice; null: none. */
  private idleSeconds(doc: Record<string, unknown>): number | null {
    const limits = [doc.deviceType === "WEB" ? this.conf.idleTimeoutWeb : this.conf.idleTimeoutApp];
    const days = doc.autoCloseDays;
    if (typeof days === "number" && AUTO_CLOSE_DAYS.includes(days)) limits.push(days * 86400);
    const given = limits.filter((limit): limit is number => limit !== null);
    return given.length ? Math.min(...given) : null;
  }

  private settledFrom(session: Record<string, unknown>): Date | null {
    const hours = this.conf.freshSessionHours;
    const began = session.createdAt;
    if (hours <= 0 || !(began instanceof Timestamp) || (session.confirmedAt ?? null) !== null) return null;
    const allowed = new Date(began.toMillis() + hours * 3600_000);
    return allowed.getTime() > this.conf.now() * 1000 ? allowed : null;
  }

  /** A Firebase ID token's session activity, as documents.activity makes it: `lastActiveAt` and the idle
   *  deadline it moves, once the recorded activity is MYDEVICES_LAST_ACTIVE_INTERVAL_SECONDS old or the idle
   *  deadline could pass before then. Activity is what the list shows, not what lets the call through, so a
   *  failed write is logged and the call goes on. */
  private async touch(uid: string, sid: string, doc: Record<string, unknown>): Promise<void> {
    const now = this.conf.now(); // the product's time, as the Python guard writes it
    const last = seconds(doc.lastActiveAt);
    const idleDeadline = seconds(doc.idleExpiresAt);
    const recent = last !== null && now - last < this.conf.lastActiveInterval;
    const near = idleDeadline !== null && idleDeadline - now < this.conf.lastActiveInterval + this.conf.accessTtl;
    if (recent && !near) return;
    const idle = this.idleSeconds(doc);
    const activity = { lastActiveAt: Timestamp.fromMillis(now * 1000),
      idleExpiresAt: idle === null ? null : Timestamp.fromMillis((now + idle) * 1000) };
    try {
      await this.ref(uid, sid).update(activity);
      Object.assign(doc, activity);
    } catch (error) {
      if ((error as { code?: number }).code !== 5) console.warn(`lastActiveAt of session ${sid} not recorded:`, error);
    }
  }
}

// --- the guard ------------------------------------------------------------------------------------

/** What the guard needs of a request (Express's and Cloud Functions' `req` have it). */
export interface RequestLike {
  method: string;
  /** The path and query as received, e.g. "/orders?page=2" (Express: `originalUrl`). */
  originalUrl?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  protocol?: string;
}

const header = (request: RequestLike, name: string): string | undefined => {
  const value = request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
};
const FIREBASE_ISSUER = "https://securetoken.google.com/";
const CLAIM_SHAPE = /^[A-Za-z0-9_-]{1,64}$/;

export class SessionGuard {
  private readonly conf: Settings;
  private readonly sessions: Sessions;

  constructor(options: GuardOptions = {}) {
    this.conf = settingsFrom(options);
    this.sessions = new Sessions(this.conf);
  }

  /** The three steps for an HTTP request; throws a SessionError. `freshDeviceId` (on the error's
   *  headers as `X-Device-Id`) is handed to a device whose id was missing or not ours. */
  async check(request: RequestLike): Promise<Caller> {
    const did = verifyDeviceId(this.conf.ring, header(request, "x-device-id"));
    try {
      await this.appCheck(header(request, "x-firebase-appcheck"));
      const token = this.bearer(header(request, "authorization"));
      const caller = await this.validate(token, did);
      if (this.conf.requireProof) this.requirePossession(request, token ?? "", caller);
      requireRecentSignIn(caller.session, this.conf.maxAuthAge, this.conf.now()); // after the proof, as in Python
      return caller;
    } catch (error) {
      const refusal = error instanceof SessionError ? error : internal(error);
      if (did === null) refusal.headers["X-Device-Id"] = newSignedDeviceId(this.conf.ring);
      throw refusal;
    }
  }

  /** Step 3 for a callable whose Firebase ID token firebase-functions has verified (`request.auth`). */
  async checkCallable(auth: { uid: string; token: Record<string, unknown> } | undefined,
    appToken: unknown): Promise<Caller> {
    if (this.conf.appCheck !== "off" && !appToken) {
      const failure = unauthenticated("app_check_failed", "an App Check token is required (X-Firebase-AppCheck)");
      if (this.conf.appCheck === "enforce") throw failure;
      console.warn("App Check failed, let through (MYDEVICES_APP_CHECK=report):", failure.message);
    }
    if (!auth) throw unauthenticated("unauthenticated", "a Firebase ID token is required (Authorization: Bearer)");
    const { sid, did } = auth.token;
    if (!usable(sid) || !usable(did)) {
      throw unauthenticated("invalid_token", "this Firebase ID token does not come from a My Devices login");
    }
    const caller = await this.sessions.active(auth.uid, sid, did, false);
    requireRecentSignIn(caller.session, this.conf.maxAuthAge, this.conf.now());
    return caller;
  }

  private bearer(value: string | undefined): string | null {
    if (!value) return null;
    const at = value.indexOf(" ");
    const scheme = at < 0 ? value : value.slice(0, at);
    const token = at < 0 ? "" : value.slice(at + 1).trim();
    if (!["bearer", "dpop"].includes(scheme.toLowerCase()) || !token) {
      throw unauthenticated("unauthenticated", "Authorization must be 'Bearer <token>'");
    }
    return token;
  }

  private async validate(token: string | null, did: string | null): Promise<Caller> {
    const ring = this.conf.ring;
    if (token && !namesOurKey(ring, token) && isFirebaseIdToken(token)) return this.validateFirebase(token, did);
    if (!token) throw unauthenticated("unauthenticated", "an access token is required");
    const claims = verifyAccessToken(ring, token, this.conf.issuer, this.conf.audience, this.conf.now());
    if (did === null) throw unauthenticated("unknown_device", "this device is not recognised; sign in again");
    if (claims.did !== did) throw unauthenticated("invalid_token", "this token was issued to another device");
    return this.sessions.active(claims.uid, claims.sid, did, true);
  }

  private async validateFirebase(token: string, presented: string | null): Promise<Caller> {
    let decoded: Record<string, unknown> & { uid: string };
    try {
      decoded = await getAuth(getApps()[0] ?? initializeApp()).verifyIdToken(token);
    } catch {
      throw unauthenticated("invalid_token", "the Firebase ID token is not valid");
    }
    const { sid, did } = decoded;
    if (!usable(sid) || !usable(did)) {
      throw unauthenticated("invalid_token", "this Firebase ID token does not come from a My Devices login");
    }
    if (presented !== null && presented !== did) throw unauthenticated("invalid_token", "this token was issued to another device");
    return this.sessions.active(decoded.uid, sid, did, false);
  }

  private async appCheck(token: string | undefined): Promise<void> {
    if (this.conf.appCheck === "off") return;
    try {
      if (!token || !token.trim()) throw unauthenticated("app_check_failed", "an App Check token is required (X-Firebase-AppCheck)");
      try {
        await getAppCheck(getApps()[0] ?? initializeApp()).verifyToken(token.trim());
      } catch {
        throw unauthenticated("app_check_failed", "the App Check token is not valid");
      }
    } catch (failure) {
      if (this.conf.appCheck === "enforce") throw failure;
      console.warn("App Check failed, let through (MYDEVICES_APP_CHECK=report):", (failure as Error).message);
    }
  }

  private requirePossession(request: RequestLike, token: string, caller: Caller): void {
    const jkt = caller.session.dpopJkt;
    if (typeof jkt !== "string") {
      throw unauthenticated("device_binding_required",
        "this endpoint needs a session bound to a device key (log in with devicePublicKey)");
    }
    const path = (request.originalUrl ?? request.url ?? "/").split("?")[0];
    const host = header(request, "host") ?? "localhost";
    const htu = (this.conf.publicUrl ?? `${request.protocol ?? "http"}://${host}`) + path;
    const checked = checkProof(header(request, "dpop"), request.method.toUpperCase(), htu, token, this.conf.now());
    if (checked.jkt !== jkt) {
      throw unauthenticated("invalid_dpop_proof", "this endpoint needs a DPoP proof signed by the session's device key",
        { reason: checked.present ? "wrong_key" : "missing" });
    }
    if (checked.fault) throw checked.fault;
  }
}

function internal(error: unknown): SessionError {
  console.error("My Devices guard: unhandled error:", error);
  return new SessionError("internal", INTERNAL_MESSAGE);
}

const usable = (value: unknown): value is string =>
  typeof value === "string" && CLAIM_SHAPE.test(value) && !value.startsWith("__");

function namesOurKey(ring: Keyring, token: string): boolean {
  const head = token.length <= MAX_TOKEN_LENGTH ? segment(token.split(".")[0]) : undefined;
  return isObject(head) && typeof head.kid === "string" && ring.publicKeys.has(head.kid);
}

function isFirebaseIdToken(token: string): boolean {
  const payload = segment(token.split(".")[1] ?? "");
  return isObject(payload) && typeof payload.iss === "string" && payload.iss.startsWith(FIREBASE_ISSUER);
}

// --- adapters: Cloud Functions v2 onRequest, Express, onCall ----------------------------------------

/** What the adapters need of a response (Express's and Cloud Functions' `res`). */
export interface ResponseLike {
  status(code: number): ResponseLike;
  setHeader(name: string, value: string): unknown;
  json(body: unknown): unknown;
}

function refuse(res: ResponseLike, error: SessionError): void {
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("X-Content-Type-Options", "nosniff");
  for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
  res.status(error.status).json(error.body());
}

let shared: SessionGuard | null = null;
const guardFor = (options?: GuardOptions | SessionGuard): SessionGuard =>
  options instanceof SessionGuard ? options : options ? new SessionGuard(options) : (shared ??= new SessionGuard());

/** For `onRequest` (firebase-functions v2) or any (req, res) handler: the handler runs only for a
 *  request that passed the three steps, with the caller; others get the API's JSON 401/503.
 *
 *      export const orders = onRequest(requireSession(async (req, res, caller) => { res.json({ uid: caller.uid }); }));
 */
export function requireSession<Req extends RequestLike, Res extends ResponseLike>(
  handler: (req: Req, res: Res, caller: Caller) => unknown, options?: GuardOptions | SessionGuard,
): (req: Req, res: Res) => Promise<void> {
  return async (req, res) => {
    let caller: Caller;
    try {
      caller = await guardFor(options).check(req);
    } catch (error) {
      refuse(res, error instanceof SessionError ? error : internal(error));
      return;
    }
    await handler(req, res, caller);
  };
}

/** Express (or Connect) middleware: `app.use(sessionMiddleware())`; the caller is `req.mydevices`
 *  (and `res.locals.mydevices`). */
export function sessionMiddleware(options?: GuardOptions | SessionGuard) {
  return async (req: RequestLike & { mydevices?: Caller },
    res: ResponseLike & { locals?: Record<string, unknown> }, next: (error?: unknown) => void): Promise<void> => {
    try {
      req.mydevices = await guardFor(options).check(req);
      if (res.locals) res.locals.mydevices = req.mydevices;
    } catch (error) {
      refuse(res, error instanceof SessionError ? error : internal(error));
      return;
    }
    next();
  };
}

/** The part of firebase-functions v2's CallableRequest the guard reads. */
export interface CallableRequestLike {
  auth?: { uid: string; token: Record<string, unknown> };
  app?: unknown;
}

/** A callable's errors as firebase-functions' HttpsError makes them: `{"status", "message",
 *  "details": {"code"}}` (the Python callables' shape). Pass `HttpsError` from "firebase-functions/v2/https". */
export type HttpsErrorClass = new (code: "unauthenticated" | "permission-denied" | "unavailable" | "internal", message: string,
  details?: unknown) => Error;

/** For `onCall`: the Firebase ID token of a My Devices login (its `sid`, `did`), one session read.
 *
 *      export const orders = onCall(requireCallableSession(HttpsError, async (request, caller) => ({ uid: caller.uid })));
 */
export function requireCallableSession<Req extends CallableRequestLike, T>(
  HttpsError: HttpsErrorClass, handler: (request: Req, caller: Caller) => T | Promise<T>,
  options?: GuardOptions | SessionGuard,
): (request: Req) => Promise<T> {
  return async (request) => {
    let caller: Caller;
    try {
      caller = await guardFor(options).checkCallable(request.auth, request.app);
    } catch (error) {
      const refusal = error instanceof SessionError ? error : internal(error);
      const status = refusal.status === 503 ? "unavailable" : refusal.status === 500 ? "internal"
        : refusal.status === 403 ? "permission-denied" : "unauthenticated";
      throw new HttpsError(status, refusal.message, { code: refusal.code, ...refusal.facts });
    }
    return handler(request, caller);
  };
}
