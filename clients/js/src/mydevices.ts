// My Devices client: one session per device, for browsers, React Native and Node 20.
// An ES module with no dependencies: it needs only `fetch` (and uses Web Locks when present).
// Written in TypeScript; `tsc` emits dist/mydevices.js and its declarations (nothing hand-written).
//
// Two ways to hold credentials:
//  - "bearer" (mobile apps, Node): the tokens and the device id live in the storage adapter you
//    give; calls carry `Authorization: Bearer` and `X-Device-Id`.
//  - "cookie" (a web page on the API's origin): the server keeps them in HttpOnly cookies and
//    script never sees them; the storage then holds only the current session id.
// See clients/js/README.md.

// --- the API's types (docs/openapi.yaml; tests/web/test_js_client.py holds them to it) --------------

/** Every `error.code` the API sends (docs/openapi.yaml). */
export type ApiErrorCode =
  // 400, 404, 405, 413, 415
  | "invalid_request" | "unsupported_key" | "private_key_sent" | "not_found" | "method_not_allowed"
  | "payload_too_large" | "unsupported_media_type"
  // 401
  | "unauthenticated" | "invalid_token" | "token_expired" | "session_revoked" | "token_reused"
  | "device_proof_failed" | "unknown_device" | "reauthentication_required" | "app_check_failed"
  | "use_dpop_nonce" | "invalid_dpop_proof" | "device_binding_required" | "bound_cookie_required"
  | "invalid_dbsc_proof" | "session_expired"
  // 403
  | "forbidden" | "session_too_new" | "recent_sign_in_required" | "cross_site_request" | "unsupported_uid"
  | "dbsc_challenge"
  // 409
  | "conflict" | "cannot_revoke_current" | "already_answered" | "session_closed" | "device_limit_reached"
  // 429, 500, 503
  | "rate_limited" | "internal" | "unavailable" | "contention";

/** Codes the client itself gives: no answer (`network`), no session (`not_signed_in`), a session bound
 *  to a device key this device no longer has (`device_key_lost`: signed out here, nothing sent), or an
 *  answer without our JSON error (`http_<status>`, e.g. a proxy's 502). */
export type ClientErrorCode = "network" | "not_signed_in" | "device_key_lost" | `http_${number}`;
export type ErrorCode = ApiErrorCode | ClientErrorCode;

/** `error.reason`: why Firebase Auth ended a session, or what is wrong with a DPoP proof. */
export type ErrorReason =
  | "account_disabled" | "account_deleted" | "credentials_revoked" | "bad_jti" | "bad_iat" | "stale"
  | "wrong_method" | "wrong_url" | "wrong_ath" | "replayed" | "missing" | "wrong_key"
  // session_expired: which deadline passed
  | "idle" | "max_age"
  // session_revoked: the app's support closed it (the support API)
  | "closed_by_support";

export type Platform = "ios" | "android" | "web";

export interface DeviceDescription {
  /** Required by the API (400 "device.name is required" without it), e.g. "Pixel 8" or "Chrome on macOS". */
  name: string;
  model?: string | null;
  platform: Platform;
  osVersion?: string | null;
  appVersion?: string | null;
}

export interface DeviceSession {
  sessionId: string;
  deviceName: string;
  deviceType: "IOS" | "ANDROID" | "WEB";
  model: string | null;
  osVersion: string | null;
  appVersion: string | null;
  location: string | null;
  lastActiveAt: string;
  createdAt: string;
  isCurrentDevice: boolean;
  /** The session belongs to a key that never leaves its device: show a "Device bound" badge. */
  deviceBound: boolean;
}

/** A row of `GET /v1/sessions`. */
export interface ListedSession extends DeviceSession {
  /** Whether the caller may close this session now. */
  canClose: boolean;
}

export interface SessionList {
  sessions: ListedSession[];
  /** Null when this session may close others; else from when (ISO 8601) it may. */
  closeOthersAllowedAt: string | null;
  /** The user's auto-close choice (days without activity), null when off. */
  autoCloseAfterDays: AutoCloseDays | null;
}

/** "Close my sessions after 1 week / 1 month / 3 months / 6 months without activity". */
export type AutoCloseDays = 7 | 30 | 90 | 180;

export interface PendingAlert {
  newSessionId: string;
  deviceName: string | null;
  deviceType: string | null;
  location: string | null;
  title: string;
  text: string;
  locKey: string;
  locArgs: string[];
  createdAt: string;
  expiresAt: string;
  actionToken: string;
}

/** Who closed a session, in the security activity (docs/activity.md). `text` is the server's words. */
export interface ClosedBy {
  kind: string | null;
  sessionId: string | null;
  deviceName: string | null;
  note: string | null;
  text: string;
}

/** One entry of the user's security activity (GET /v1/activity): show `text` as text, never HTML. */
export interface ActivityEntry {
  id: string;
  kind: "signed_in" | "closed" | "copied_token" | "alert_answered";
  at: string;
  sessionId: string | null;
  deviceName: string | null;
  platform: string | null;
  isCurrentDevice: boolean;
  text: string;
  location?: string | null;
  alerted?: boolean;
  reason?: string | null;
  closedBy?: ClosedBy;
  liveSessionId?: string | null;
  answer?: "yes" | "no";
}

export interface ActivityPage {
  activity: ActivityEntry[];
  nextCursor: string | null;
}

export interface AlertAnswer {
  answer: "yes" | "no";
  sessionId: string;
  status: "active" | "revoked";
  closedSessionIds?: string[];
  advice?: "change_password";
}

export interface ClosedSession { sessionId: string; revoked: true }
export interface RevokedOthers { revoked: number }
export interface PushTokenUpdated { updated: true }
/** `exportAccount()`: everything My Devices keeps about the user (docs/data-rights.md). */
export interface AccountExport {
  format: 1;
  uid: string;
  exportedAt: string;
  documents: ExportedDocument[];
  removedFields: string[];
}
/** One stored document: its Firestore path and its fields (times as ISO 8601 text, secrets left out). */
export interface ExportedDocument { path: string; data: DocumentFields }
export interface DocumentFields { [field: string]: unknown }

/** The public half of the device's key (EC P-256), as login sends it. */
export interface DevicePublicKey { kty: "EC"; crv: "P-256"; x: string; y: string }

/** What login and refresh answer (bearer mode: the tokens are in the body; web: in cookies). */
export interface Tokens {
  accessToken?: string;
  /** Unix seconds. */
  accessTokenExpiresAt: number;
  refreshToken?: string;
  deviceId: string;
}

export interface LoginAnswer extends Tokens {
  session: DeviceSession;
  firebaseCustomToken?: string;
}

interface ErrorBody { code?: unknown; message?: unknown; [fact: string]: unknown }

export class MyDevicesError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly retryAfter: number | null;
  /** The error's other facts: `reason`, `allowedAt` (session_too_new), `cause` (network). */
  readonly details: { reason?: ErrorReason; allowedAt?: string; [fact: string]: unknown } | null;

  constructor(status: number, code: ErrorCode, message: string,
    { retryAfter = null, details = null }: { retryAfter?: number | null; details?: Record<string, unknown> | null } = {}) {
    super(message);
    this.name = "MyDevicesError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

// 401 codes a refresh can cure: the access token ran out, or (cookie mode) its cookie expired with it.
const RENEWABLE: ReadonlySet<string> = new Set(["token_expired", "unauthenticated"]);
// 401 codes that end the session here: clear what is stored and tell the app.
const SIGNED_OUT: ReadonlySet<string> = new Set(["session_revoked", "token_reused", "reauthentication_required",
  "invalid_token", "unknown_device", "unauthenticated", "token_expired", "device_proof_failed", "session_expired"]);
const KEY = "mydevices.state";
const LOCK = "mydevices-refresh";
const EARLY_MS = 5000; // refresh this long before the access token's expiry, not after a 401
const SETTLE_MS = 150; // how long a tab keeps the refresh lock after storing new tokens (_renewAcrossTabs)

/** What the client keeps in its storage adapter (under one key, as JSON). */
interface State {
  sessionId?: string;
  deviceId?: string;
  accessToken?: string;
  accessTokenExpiresAt?: number;
  refreshToken?: string;
  /** The thumbprint of the device key this session is bound to (DPoP), and the server's last nonce. */
  jkt?: string;
  dpopNonce?: string;
}
// accessTokenExpiresAt is Unix seconds (docs/openapi.yaml); NaN when missing, which means "refresh".
const expiresAtMs = (state: State): number => Number(state.accessTokenExpiresAt) * 1000;

// --- storage adapters ---------------------------------------------------------------------------

export interface StorageAdapter {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** AsyncStorage, or an encrypted store with its three methods. */
export type AsyncStorageLike = StorageAdapter;

/** In memory only: gone when the process ends (tests, Node scripts, cookie mode). */
export function memoryStorage(): StorageAdapter {
  const items = new Map<string, string>();
  return {
    async getItem(key) { return items.get(key) ?? null; },
    async setItem(key, value) { items.set(key, String(value)); },
    async removeItem(key) { items.delete(key); },
  };
}

/** A Web Storage object (window.localStorage or sessionStorage). Shared by the origin's tabs. */
export function browserStorage(webStorage: WebStorageLike | undefined = (globalThis as { localStorage?: WebStorageLike }).localStorage): StorageAdapter {
  if (!webStorage) throw new TypeError("browserStorage needs a Web Storage object (localStorage)");
  const store = webStorage;
  return {
    async getItem(key) { return store.getItem(key); },
    async setItem(key, value) { store.setItem(key, String(value)); },
    async removeItem(key) { store.removeItem(key); },
  };
}

/** React Native: pass AsyncStorage, or better an encrypted store with the same three methods
 *  (e.g. a wrapper over expo-secure-store or react-native-keychain): the refresh token is a credential. */
export function reactNativeStorage(asyncStorage: AsyncStorageLike): StorageAdapter {
  if (!asyncStorage || typeof asyncStorage.getItem !== "function") {
    throw new TypeError("reactNativeStorage needs an AsyncStorage-like object");
  }
  return {
    getItem: (key) => asyncStorage.getItem(key),
    setItem: (key, value) => asyncStorage.setItem(key, String(value)),
    removeItem: (key) => asyncStorage.removeItem(key),
  };
}

// --- push data -----------------------------------------------------------------------------------

export interface ForceLogoutEvent {
  type: "forceLogout";
  sessionId: string;
  reason: string;
  /** Set by handlePush: whether it is about this device's current session (else ignore it). */
  isCurrentSession?: boolean;
}

export interface NewLoginAlertEvent {
  type: "newLoginAlert";
  sessionId: string | null;
  newSessionId: string;
  actionToken: string;
  title: string;
  text: string;
  locKey: string | null;
  locArgs: string[];
  deviceName: string | null;
  location: string | null;
  expiresAt: string | null;
  isCurrentSession?: boolean;
}

export type PushEvent = ForceLogoutEvent | NewLoginAlertEvent;
export type PushData = Record<string, string | undefined>;

/** The typed event in an FCM data payload (Android RemoteMessage.data, or the iOS userInfo), or null. */
export function parsePushData(data: PushData | null | undefined): PushEvent | null {
  if (!data || typeof data !== "object") return null;
  if (data.action === "force_logout" && typeof data.sessionId === "string") {
    return { type: "forceLogout", sessionId: data.sessionId, reason: String(data.reason ?? "unknown") };
  }
  if (data.action === "new_login_alert" && typeof data.actionToken === "string" && typeof data.newSessionId === "string") {
    let locArgs: string[] = [];
    try {
      const parsed: unknown = JSON.parse(data.body_loc_args ?? "[]");
      if (Array.isArray(parsed) && parsed.every((a) => typeof a === "string")) locArgs = parsed;
    } catch { /* keep [] : the English text is still there */ }
    const expires = Number(data.expiresAt);
    return {
      type: "newLoginAlert",
      sessionId: typeof data.sessionId === "string" ? data.sessionId : null,
      newSessionId: data.newSessionId,
      actionToken: data.actionToken,
      title: String(data.title ?? "New sign-in"),
      text: String(data.body ?? ""),
      locKey: typeof data.body_loc_key === "string" ? data.body_loc_key : null,
      locArgs,
      deviceName: data.deviceName ? String(data.deviceName) : null,
      location: data.location ? String(data.location) : null,
      expiresAt: Number.isFinite(expires) && expires > 0 ? new Date(expires * 1000).toISOString() : null,
    };
  }
  return null;
}

// --- device keys (DPoP, RFC 9449) ------------------------------------------------------------------

/** A device's signing key: EC P-256 (ES256), its private half never leaving the device. */
export interface DeviceKey {
  /** The public half, as login sends it. */
  readonly publicJwk: DevicePublicKey;
  /** ES256 over `data` (SHA-256, then ECDSA): the signature as raw r||s, 64 bytes (see `derToRawSignature`). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** Where this device's key lives. `load` gives the key made before, or null; `create` makes a new one
 *  (replacing any) and keeps it. React Native: implement it over the app's Keystore / Secure Enclave module. */
export interface DeviceKeyStore {
  load(): Promise<DeviceKey | null>;
  create(): Promise<DeviceKey>;
}

const b64url = (bytes: Uint8Array): string => {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const b64json = (value: unknown): string => b64url(utf8(JSON.stringify(value)));
const subtle = (): SubtleCrypto => {
  const found = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!found) throw new TypeError("WebCrypto (crypto.subtle) is not available here: give a DeviceKeyStore");
  return found;
};
const sha256 = async (data: Uint8Array): Promise<Uint8Array> =>
  new Uint8Array(await subtle().digest("SHA-256", data as BufferSource));

/** RFC 7638 thumbprint (`jkt`) of a public key: what the access token's `cnf.jkt` names. */
export async function thumbprint(jwk: DevicePublicKey): Promise<string> {
  return b64url(await sha256(utf8(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))));
}

/** A DER ECDSA signature (Android's `Signature("SHA256withECDSA")`, iOS's
 *  `.ecdsaSignatureMessageX962SHA256`) as the raw r||s JWS wants. */
export function derToRawSignature(der: Uint8Array): Uint8Array {
  if (der[0] !== 0x30) throw new TypeError("not a DER ECDSA signature");
  let at = der[1] & 0x80 ? 2 + (der[1] & 0x7f) : 2;
  const out = new Uint8Array(64);
  for (let i = 0; i < 2; i += 1) {
    if (der[at] !== 0x02) throw new TypeError("not a DER ECDSA signature");
    const length = der[at + 1];
    let value = der.subarray(at + 2, at + 2 + length);
    while (value.length > 32 && value[0] === 0) value = value.subarray(1);
    out.set(value, 32 * i + 32 - value.length);
    at += 2 + length;
  }
  return out;
}

async function webCryptoKey(pair: CryptoKeyPair | { privateKey: CryptoKey; publicKey: CryptoKey }): Promise<DeviceKey> {
  const { kty, crv, x, y } = await subtle().exportKey("jwk", pair.publicKey);
  return {
    publicJwk: { kty: kty as "EC", crv: crv as "P-256", x: x!, y: y! },
    // WebCrypto's ECDSA signature is already raw r||s.
    sign: async (data) => new Uint8Array(await subtle().sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey,
      data as BufferSource)),
  };
}

const newWebCryptoPair = () =>
  subtle().generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]) as Promise<CryptoKeyPair>;

/** A non-extractable WebCrypto key kept in memory only (Node, tests): gone with the process, so use it
 *  with a storage that is gone too (memoryStorage), or the next run's refresh cannot prove the key. */
export function memoryKeyStore(): DeviceKeyStore {
  let key: DeviceKey | null = null;
  return {
    async load() { return key; },
    async create() { key = await webCryptoKey(await newWebCryptoPair()); return key; },
  };
}

/** Browsers: a non-extractable WebCrypto key kept in IndexedDB (a CryptoKey is stored as itself; its
 *  private half cannot be read out, not even by this page's script). One key per origin and `name`. */
export function indexedDbKeyStore(name = "mydevices", indexedDB: IDBFactory | undefined =
  (globalThis as { indexedDB?: IDBFactory }).indexedDB): DeviceKeyStore {
  if (!indexedDB) throw new TypeError("indexedDbKeyStore needs IndexedDB (a browser)");
  const factory = indexedDB;
  const STORE = "keys";
  const db = () => new Promise<IDBDatabase>((resolve, reject) => {
    const opening = factory.open(`${name}-device-key`, 1);
    opening.onupgradeneeded = () => { opening.result.createObjectStore(STORE); };
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
  const run = async <T>(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const opened = await db();
    try {
      return await new Promise<T>((resolve, reject) => {
        const request = act(opened.transaction(STORE, mode).objectStore(STORE));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    } finally {
      opened.close();
    }
  };
  return {
    async load() {
      const pair = await run<CryptoKeyPair | undefined>("readonly", (store) => store.get("device"));
      return pair?.privateKey ? webCryptoKey(pair) : null;
    },
    async create() {
      const pair = await newWebCryptoPair();
      await run("readwrite", (store) => store.put({ privateKey: pair.privateKey, publicKey: pair.publicKey }, "device"));
      return webCryptoKey(pair);
    },
  };
}

/** The default for bearer mode: IndexedDB in a browser, a memory key where only WebCrypto exists
 *  (Node), none where neither does (React Native: pass your Keystore / Secure Enclave store). */
export function defaultKeyStore(): DeviceKeyStore | null {
  const g = globalThis as { indexedDB?: IDBFactory; crypto?: Crypto };
  if (g.indexedDB && g.crypto?.subtle) return indexedDbKeyStore();
  if (g.crypto?.subtle) return memoryKeyStore();
  return null;
}

/** A DPoP proof (RFC 9449) for one request: `ath` binds it to an access token, `nonce` is the server's. */
export async function dpopProof(key: DeviceKey, htm: string, htu: string,
  { nonce, accessToken }: { nonce?: string | null; accessToken?: string } = {}): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: b64url((globalThis.crypto as Crypto).getRandomValues(new Uint8Array(16))),
    htm, htu: htu.split("#")[0].split("?")[0], iat: Math.floor(Date.now() / 1000),
  };
  if (nonce) payload.nonce = nonce;
  if (accessToken) payload.ath = b64url(await sha256(utf8(accessToken)));
  const input = `${b64json({ typ: "dpop+jwt", alg: "ES256", jwk: key.publicJwk })}.${b64json(payload)}`;
  return `${input}.${b64url(await key.sign(utf8(input)))}`;
}

// --- the client ----------------------------------------------------------------------------------

export type SignedOutReason =
  | "session_revoked" | "token_reused" | "reauthentication_required" | "invalid_token" | "unknown_device"
  | "unauthenticated" | "token_expired" | "device_proof_failed" | "device_key_lost" | "force_logout" | "logout"
  | "session_expired"
  | (string & {});

export interface SignedOutDetails {
  source: "api" | "push" | "logout";
  status?: number;
  error?: MyDevicesError;
  pushReason?: string;
}

export type SignedOutListener = (reason: SignedOutReason, details: SignedOutDetails) => void;

export interface ClientOptions {
  /** The API's origin, e.g. "https://api.example.com"; "" (default) is the page's own origin. */
  baseUrl?: string;
  /** "bearer" (default: mobile, Node) keeps the tokens in `storage`; "cookie" leaves them to HttpOnly cookies. */
  credentials?: "bearer" | "cookie";
  storage?: StorageAdapter;
  fetch?: typeof fetch;
  onSignedOut?: SignedOutListener | null;
  /** Use Web Locks (when the platform has them) so one tab refreshes for all. Default true. */
  crossTabLock?: boolean;
  /** Bearer mode: bind the session to this device's key (DPoP on every refresh). Default
   *  `defaultKeyStore()` (IndexedDB in a browser, a memory key in Node; none in React Native unless
   *  given); `false` turns binding off. Cookie mode ignores it: browsers bind with DBSC. */
  deviceKeys?: DeviceKeyStore | false | null;
}

export interface LoginOptions {
  idToken: string;
  device: DeviceDescription;
  push?: { token: string; provider: "fcm" };
  firebaseCustomToken?: boolean;
}

export interface StoredSession {
  sessionId: string | null;
  deviceId: string | null;
  accessTokenExpiresAt: number | null;
  signedIn: boolean;
}

interface SendOptions { body?: unknown; bearer?: string; auth?: boolean; dpop?: string }

interface LockManagerLike {
  request(name: string, callback: () => Promise<void>): Promise<void>;
}

export class MyDevicesClient {
  readonly baseUrl: string;
  readonly credentials: "bearer" | "cookie";
  readonly storage: StorageAdapter;
  private readonly _fetch: typeof fetch;
  private readonly _listeners = new Set<SignedOutListener>();
  private readonly _locks: LockManagerLike | null;
  private _state: State | null = null; // cached copy of the stored state
  private _generation = 0; // bumped by every refresh (and sign-out): a 401 from before it is not news
  private _refreshing: Promise<void> | null = null;
  private _loggingOut = false; // logout() under way: its own event is the one the app gets
  private readonly _keys: DeviceKeyStore | null;
  private _nonce: string | null = null; // the last DPoP-Nonce an answer carried

  constructor({ baseUrl = "", credentials = "bearer", storage = memoryStorage(), fetch: fetchImpl,
    onSignedOut = null, crossTabLock = true, deviceKeys }: ClientOptions = {}) {
    if (credentials !== "bearer" && credentials !== "cookie") throw new TypeError('credentials must be "bearer" or "cookie"');
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.credentials = credentials;
    this.storage = storage;
    this._fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
    if (onSignedOut) this._listeners.add(onSignedOut);
    const navigator = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
    this._locks = crossTabLock ? navigator?.locks ?? null : null;
    this._keys = credentials === "bearer" ? (deviceKeys === undefined ? defaultKeyStore() : deviceKeys || null) : null;
  }

  /** Subscribe to sign-outs; returns the unsubscribe function. */
  onSignedOut(listener: SignedOutListener): () => void {
    this._listeners.add(listener);
    return () => { this._listeners.delete(listener); };
  }

  // --- state ---

  private async _load(): Promise<State> {
    const raw = await this.storage.getItem(KEY);
    let state: unknown = {};
    try { state = raw ? JSON.parse(raw) : {}; } catch { state = {}; }
    this._state = state && typeof state === "object" ? state as State : {};
    return this._state;
  }

  private async _save(patch: Partial<Record<keyof State, unknown>>): Promise<State> {
    const state: Record<string, unknown> = { ...(await this._load()), ...patch };
    for (const [k, v] of Object.entries(state)) if (v === null || v === undefined) delete state[k];
    await this.storage.setItem(KEY, JSON.stringify(state));
    this._state = state as State;
    return this._state;
  }

  /** What is stored about this device's session (never the tokens themselves in cookie mode). */
  async session(): Promise<StoredSession> {
    const state = await this._load();
    return { sessionId: state.sessionId ?? null, deviceId: state.deviceId ?? null,
      accessTokenExpiresAt: state.accessTokenExpiresAt ?? null, signedIn: Boolean(state.sessionId) };
  }

  private async _clear(): Promise<void> {
    const state = await this._load();
    // The device id stays: it names this device, so a re-login replaces its session (README).
    await this.storage.removeItem(KEY);
    this._state = {};
    if (state.deviceId) await this._save({ deviceId: state.deviceId });
  }

  private async _signedOut(reason: SignedOutReason, details: SignedOutDetails): Promise<void> {
    this._generation += 1;
    const wasSignedIn = Boolean((await this._load()).sessionId);
    await this._clear();
    // logout() tells the app once, as "logout", even when its call met a 401 (clients/contract/api.json).
    if (this._loggingOut && details.source !== "logout") return;
    if (!wasSignedIn && details.source !== "logout") return;
    for (const listener of [...this._listeners]) {
      try { listener(reason, details); } catch (error) { queueMicrotask(() => { throw error; }); }
    }
  }

  // --- HTTP ---

  private async _send<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
    const { body, bearer, auth = true } = options;
    const state = this._state ?? (await this._load());
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    else if (auth && this.credentials === "bearer" && state.accessToken) headers.Authorization = `Bearer ${state.accessToken}`;
    if (this.credentials === "bearer" && state.deviceId) headers["X-Device-Id"] = state.deviceId;
    if (options.dpop) headers.DPoP = options.dpop;
    let response: Response;
    try {
      response = await this._fetch(this.baseUrl + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        credentials: this.credentials === "cookie" ? "same-origin" : "omit", cache: "no-store",
      });
    } catch (cause) {
      throw new MyDevicesError(0, "network", "Can't reach the server. Check your connection.", { details: { cause } });
    }
    const fresh = response.headers.get("X-Device-Id");
    if (fresh && this.credentials === "bearer" && fresh !== state.deviceId) await this._save({ deviceId: fresh });
    const nonce = response.headers.get("DPoP-Nonce");
    if (nonce && this._keys) {
      this._nonce = nonce;
      if (nonce !== (this._state ?? state).dpopNonce && (this._state ?? state).jkt) await this._save({ dpopNonce: nonce });
    }
    const data: unknown = await response.json().catch(() => null);
    if (response.ok) return data as T;
    const error: ErrorBody = data && typeof data === "object" && "error" in data && data.error && typeof data.error === "object"
      ? data.error as ErrorBody : {};
    const { code, message, ...rest } = error;
    throw new MyDevicesError(
      response.status,
      typeof code === "string" ? code as ErrorCode : `http_${response.status}`,
      typeof message === "string" ? message : `The server answered ${response.status}.`,
      { retryAfter: Number(response.headers.get("Retry-After")) || null, details: rest },
    );
  }

  /** A call with our credentials: refreshed first if the access token is about to expire, once
   *  more after a 401 that a refresh cures, and a 401 that ends the session signs this device out. */
  private async _call<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
    const state = await this._fresh();
    const generation = this._generation;
    try {
      return await this._send<T>(method, path, options);
    } catch (error) {
      if (!(error instanceof MyDevicesError) || error.status !== 401) throw error;
      if (RENEWABLE.has(error.code)) {
        await this._renew(generation, state);
        try {
          return await this._send<T>(method, path, options);
        } catch (again) {
          if (again instanceof MyDevicesError && again.status === 401) {
            await this._signedOut(again.code, { source: "api", status: 401, error: again });
          }
          throw again;
        }
      }
      if (SIGNED_OUT.has(error.code)) await this._signedOut(error.code, { source: "api", status: 401, error });
      throw error;
    }
  }

  /** The stored state, refreshed first when the access token is about to expire (bearer mode). */
  private async _fresh(): Promise<State> {
    let state = await this._load();
    if (!state.sessionId) throw new MyDevicesError(401, "not_signed_in", "Sign in first.");
    if (this.credentials === "bearer" && !(expiresAtMs(state) - EARLY_MS > Date.now())) {
      await this._renew(this._generation, state);
      state = await this._load();
    }
    return state;
  }

  /** The absolute URL of an API path (a DPoP proof's `htu`). */
  private _url(path: string): string {
    const here = (globalThis as { location?: { href: string } }).location?.href;
    return new URL(this.baseUrl + path, here).href;
  }

  /** The device key a bound session's proofs need, or null for an unbound session. A session bound to
   *  a key this device no longer has (storage restored without it, another store) is signed out here:
   *  a refresh without the proof would be taken for a copied token (the user signed out everywhere). */
  private async _boundKey(state: State): Promise<DeviceKey | null> {
    if (!state.jkt) return null;
    const key = await this._keys?.load();
    if (key && await thumbprint(key.publicJwk) === state.jkt) return key;
    await this._signedOut("device_key_lost", { source: "api" });
    throw new MyDevicesError(401, "device_key_lost", "This session is bound to a device key this device no longer has: sign in again.");
  }

  /** One refresh per expiry: calls that found the same token expired share it (`generation`
   *  tells a 401 from before the last refresh), and across tabs a Web Lock lets one tab refresh.
   *  `seen` is the state the call found its token in. */
  private _renew(generation: number, seen: State): Promise<void> {
    if (generation !== this._generation) return Promise.resolve(); // refreshed since the call was sent
    this._refreshing ??= this._renewAcrossTabs(seen).finally(() => { this._refreshing = null; });
    return this._refreshing;
  }

  /** Refresh while holding the tabs' Web Lock, unless another tab refreshed since the call saw
   *  its token: looked at inside the lock even when it was free, as another tab may have refreshed
   *  and let go in between. (When a free lock meant "nobody refreshed" and a bearer tab let go at
   *  once, a tab firing its calls 20-60 ms after another's refreshed a second time in about one
   *  expiry of four: tests/web/test_web_page.py.) */
  private async _renewAcrossTabs(seen: State): Promise<void> {
    if (!this._locks) return this._refresh();
    let renewed: () => void = () => {};
    const done = new Promise<void>((resolve) => { renewed = resolve; });
    const held = this._locks.request(LOCK, async () => {
      if (await this._refreshedElsewhere(seen)) {
        this._generation += 1;
      } else {
        await this._refresh();
        // A browser tab's localStorage shows another tab's write a few ms late (Chromium sends it
        // from tab to tab apart from the lock): keep the lock a little while after writing, so the
        // next tab reads the new refresh token, not the spent one. This tab's calls go on meanwhile.
        if (this.credentials === "bearer") {
          renewed();
          await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        }
      }
    });
    return Promise.race([done, held]);
  }

  private async _refreshedElsewhere(seen: State): Promise<boolean> {
    if (this.credentials === "bearer") {
      // The tabs share the storage: another tab's refresh left a refresh token other than the one seen.
      const now = await this._load();
      return Boolean(now.refreshToken) && now.refreshToken !== seen?.refreshToken;
    }
    // Cookie mode: the tabs share only the HttpOnly cookies, which script cannot read, so ask the
    // server whether they work now (one GET per expiry, in the tab that holds the lock).
    try {
      await this._send("GET", "/v1/sessions/current");
      return true;
    } catch (error) {
      if (!(error instanceof MyDevicesError) || error.status !== 401) throw error;
      if (RENEWABLE.has(error.code)) return false;
      await this._signedOut(error.code, { source: "api", status: 401, error });
      throw error;
    }
  }

  private async _refresh(): Promise<void> {
    const state = await this._load();
    if (this.credentials === "bearer" && !state.refreshToken) {
      await this._signedOut("unauthenticated", { source: "api", status: 401 });
      throw new MyDevicesError(401, "unauthenticated", "No refresh token is stored.");
    }
    let issued: Tokens;
    try {
      if (this.credentials === "cookie") {
        issued = await this._send<Tokens>("POST", "/v1/sessions/refresh", { auth: false });
      } else {
        const key = await this._boundKey(state);
        const send = async (nonce: string | null | undefined) => this._send<Tokens>("POST", "/v1/sessions/refresh", {
          body: { refreshToken: state.refreshToken }, auth: false,
          dpop: key ? await dpopProof(key, "POST", this._url("/v1/sessions/refresh"), { nonce }) : undefined,
        });
        try {
          issued = await send(state.dpopNonce);
        } catch (error) {
          // RFC 9449 §8: the nonce we had is no longer the server's; its answer carries the new one.
          if (!(key && error instanceof MyDevicesError && error.code === "use_dpop_nonce" && this._nonce)) throw error;
          issued = await send(this._nonce);
        }
      }
    } catch (error) {
      if (error instanceof MyDevicesError && error.status === 401) {
        await this._signedOut(error.code, { source: "api", status: 401, error });
      }
      throw error;
    }
    this._generation += 1;
    await this._keep(issued);
  }

  private async _keep(issued: Tokens & { session?: DeviceSession }): Promise<void> {
    const patch: Partial<Record<keyof State, unknown>> = { accessTokenExpiresAt: issued.accessTokenExpiresAt ?? null };
    if (issued.session?.sessionId) patch.sessionId = issued.session.sessionId;
    if (this.credentials === "bearer") {
      Object.assign(patch, { accessToken: issued.accessToken, refreshToken: issued.refreshToken, deviceId: issued.deviceId });
    }
    await this._save(patch);
  }

  // --- the API ---

  /** Log in on this device with a Firebase ID token. A second login on the same device replaces its session. */
  async login({ idToken, device, push, firebaseCustomToken }: LoginOptions):
    Promise<{ session: DeviceSession; firebaseCustomToken: string | null }> {
    if (typeof idToken !== "string" || !idToken) throw new TypeError("login needs a Firebase ID token");
    const body: Record<string, unknown> = { device };
    if (push) body.push = push;
    if (firebaseCustomToken !== undefined) body.firebaseCustomToken = firebaseCustomToken;
    const key = this._keys ? (await this._keys.load()) ?? (await this._keys.create()) : null;
    if (key) body.devicePublicKey = key.publicJwk;
    this._nonce = null;
    const issued = await this._send<LoginAnswer>("POST", "/v1/sessions", { body, bearer: idToken });
    this._generation += 1;
    await this._clear();
    await this._keep(issued);
    if (key && issued.session.deviceBound) await this._save({ jkt: await thumbprint(key.publicJwk), dpopNonce: this._nonce });
    return { session: issued.session, firebaseCustomToken: issued.firebaseCustomToken ?? null };
  }

  /** Cookie mode: after a page load, whether the cookies still hold a session (and which). A
   *  browser holding no session cookie is signed out, told so with no call that fails; one whose
   *  access cookie ran out refreshes first. */
  async resume(): Promise<DeviceSession | null> {
    const held = this.credentials === "cookie" ? await this._heldCookies() : { access: true, refresh: true };
    if (!held.access && !held.refresh) {
      await this._clear();
      return null;
    }
    let refreshed = false;
    const refresh = async () => {
      refreshed = true;
      await this._send("POST", "/v1/sessions/refresh", { auth: false });
    };
    try {
      if (!held.access) await refresh();
      try {
        return await this._resumed();
      } catch (error) {
        if (refreshed || this.credentials !== "cookie" || !(error instanceof MyDevicesError)
          || error.status !== 401 || !RENEWABLE.has(error.code)) throw error;
        await refresh();
        return await this._resumed();
      }
    } catch (error) {
      if (!(error instanceof MyDevicesError) || error.status !== 401) throw error;
      await this._clear();
      return null;
    }
  }

  private async _resumed(): Promise<DeviceSession> {
    const session = await this._send<DeviceSession>("GET", "/v1/sessions/current");
    await this._save({ sessionId: session.sessionId });
    return session;
  }

  /** Which of the session's cookies this browser holds (GET /v1/sessions/cookies: no values, never
   *  a 401); an API without that call is asked as before, as if it held both. */
  private async _heldCookies(): Promise<{ access: boolean; refresh: boolean }> {
    try {
      const held = await this._send<{ access?: unknown; refresh?: unknown } | null>("GET", "/v1/sessions/cookies");
      return { access: Boolean(held?.access), refresh: Boolean(held?.refresh) };
    } catch (error) {
      if (error instanceof MyDevicesError && error.status === 404) return { access: true, refresh: true };
      throw error;
    }
  }

  current(): Promise<DeviceSession> { return this._call("GET", "/v1/sessions/current"); }
  listSessions(): Promise<SessionList> { return this._call("GET", "/v1/sessions"); }
  closeSession(sessionId: string): Promise<ClosedSession> {
    return this._call("DELETE", `/v1/sessions/${encodeURIComponent(sessionId)}`);
  }
  revokeOthers(): Promise<RevokedOthers> { return this._call("POST", "/v1/sessions/revoke-others"); }
  /** Step-up: renew when this session's user last proved who they are, from the ID token of a new
   *  Firebase sign-in (e.g. `reauthenticateWithCredential`, then `getIdToken(true)`). Opens no session. */
  reauthenticate(idToken: string): Promise<{ authTime: string }> {
    return this._call("POST", "/v1/sessions/current/reauthenticate", { body: { idToken } });
  }
  /** Run `action`; if it needs a more recent sign-in (403 `recent_sign_in_required`), ask
   *  `freshIdToken` for a new Firebase sign-in's ID token, re-verify, and run it once more. */
  async withRecentSignIn<T>(action: () => Promise<T>, freshIdToken: (maxAge: number) => Promise<string>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (!(error instanceof MyDevicesError) || error.code !== "recent_sign_in_required") throw error;
      const maxAge = typeof error.details?.maxAge === "number" ? error.details.maxAge : 0;
      await this.reauthenticate(await freshIdToken(maxAge));
      return action();
    }
  }
  /** The user's auto-close choice for all their sessions, at once; null: off. */
  setAutoClose(afterDays: AutoCloseDays | null): Promise<{ autoCloseAfterDays: AutoCloseDays | null; closed: number }> {
    return this._call("PUT", "/v1/sessions/auto-close", { body: { afterDays } });
  }
  /** The user's copy of everything My Devices keeps about them, as JSON (a data-access request).
   *  Needs a recent sign-in: wrap it in `withRecentSignIn` to re-verify on 403 `recent_sign_in_required`. */
  exportAccount(): Promise<AccountExport> {
    return this._call("GET", "/v1/account/export");
  }
  updatePushToken(token: string, provider: "fcm" = "fcm"): Promise<PushTokenUpdated> {
    return this._call("PUT", "/v1/sessions/current/push-token", { body: { token, provider } });
  }
  /** Headers for a call to your own backend guarded by My Devices (`require_session` in Python,
   *  `@mydevices/server` in Node): the access token, the device id and, for a session bound to a key,
   *  a DPoP proof for this method and URL with `ath` (what `requireProof` demands). Bearer mode only;
   *  refreshes first when the access token is about to expire. */
  async authHeaders(method: string, url: string): Promise<Record<string, string>> {
    if (this.credentials !== "bearer") throw new TypeError("authHeaders is for bearer mode: a page on the API's origin sends its cookies");
    const state = await this._fresh();
    const headers: Record<string, string> = { Authorization: `Bearer ${state.accessToken}` };
    if (state.deviceId) headers["X-Device-Id"] = state.deviceId;
    const key = await this._boundKey(state);
    if (key) {
      headers.DPoP = await dpopProof(key, method.toUpperCase(), new URL(url, (globalThis as { location?: { href: string } }).location?.href).href,
        { accessToken: state.accessToken });
    }
    return headers;
  }

  /** Whether this device's session is bound to its key (DPoP): what login answered as `deviceBound`. */
  async deviceBound(): Promise<boolean> { return Boolean((await this._load()).jkt); }

  /** The user's security activity of the last 30 days, newest first; pass `nextCursor` back as
   *  `cursor` for the next page (docs/activity.md). */
  listActivity(options: { limit?: number; cursor?: string | null } = {}): Promise<ActivityPage> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set("limit", String(options.limit));
    if (options.cursor) query.set("cursor", options.cursor);
    const text = query.toString();
    return this._call("GET", text ? `/v1/activity?${text}` : "/v1/activity");
  }

  /** The "Was that you?" alerts this session may answer (what the push would carry). */
  async pendingAlerts(): Promise<PendingAlert[]> {
    return (await this._call<{ alerts: PendingAlert[] }>("GET", "/v1/alerts")).alerts;
  }

  /** Answer an alert with its action token ("no" closes the new session and whatever its device opened since). */
  respondToAlert(actionToken: string, answer: "yes" | "no"): Promise<AlertAnswer> {
    if (answer !== "yes" && answer !== "no") throw new TypeError('answer must be "yes" or "no"');
    return this._send("POST", "/v1/alerts/respond", { body: { actionToken, answer }, auth: false });
  }

  /** End this session; what was stored is cleared whatever the server says. */
  async logout(): Promise<void> {
    this._loggingOut = true;
    try {
      await this._call("POST", "/v1/sessions/logout");
    } catch (error) {
      if (!(error instanceof MyDevicesError) || (error.status !== 401 && error.code !== "not_signed_in")) throw error;
    } finally {
      this._loggingOut = false;
      await this._signedOut("logout", { source: "logout" });
    }
  }

  /** Turn a push's data into a typed event; a force_logout for this session signs it out. */
  async handlePush(data: PushData | null | undefined): Promise<PushEvent | null> {
    const event = parsePushData(data);
    if (!event) return null;
    const { sessionId } = await this._load();
    if (event.type === "forceLogout") {
      event.isCurrentSession = Boolean(sessionId) && event.sessionId === sessionId;
      if (event.isCurrentSession) await this._signedOut("force_logout", { source: "push", pushReason: event.reason });
    } else {
      event.isCurrentSession = event.sessionId === null || event.sessionId === sessionId;
    }
    return event;
  }
}
