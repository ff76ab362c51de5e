// My Devices client: one session per device, for browsers, React Native and Node 20.
// An ES module with no dependencies: it needs only `fetch` (and uses Web Locks when present).
//
// Two ways to hold credentials:
//  - "bearer" (mobile apps, Node): the tokens and the device id live in the storage adapter you
//    give; calls carry `Authorization: Bearer` and `X-Device-Id`.
//  - "cookie" (a web page on the API's origin): the server keeps them in HttpOnly cookies and
//    script never sees them; the storage then holds only the current session id.
// See clients/js/README.md.

export class MyDevicesError extends Error {
  constructor(status, code, message, { retryAfter = null, details = null } = {}) {
    super(message);
    this.name = "MyDevicesError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

// 401 codes a refresh can cure: the access token ran out, or (cookie mode) its cookie expired with it.
const RENEWABLE = new Set(["token_expired", "unauthenticated"]);
// 401 codes that end the session here: clear what is stored and tell the app.
const SIGNED_OUT = new Set(["session_revoked", "token_reused", "reauthentication_required", "invalid_token",
  "unknown_device", "unauthenticated", "token_expired"]);
const KEY = "mydevices.state";
const LOCK = "mydevices-refresh";
const EARLY_MS = 5000; // refresh this long before the access token's expiry, not after a 401
const SETTLE_MS = 150; // how long a tab keeps the refresh lock after storing new tokens (_renewAcrossTabs)
// accessTokenExpiresAt is Unix seconds (docs/openapi.yaml); NaN when missing, which means "refresh".
const expiresAtMs = (state) => Number(state.accessTokenExpiresAt) * 1000;

// --- storage adapters ---------------------------------------------------------------------------

/** In memory only: gone when the process ends (tests, Node scripts, cookie mode). */
export function memoryStorage() {
  const items = new Map();
  return {
    async getItem(key) { return items.has(key) ? items.get(key) : null; },
    async setItem(key, value) { items.set(key, String(value)); },
    async removeItem(key) { items.delete(key); },
  };
}

/** A Web Storage object (window.localStorage or sessionStorage). Shared by the origin's tabs. */
export function browserStorage(webStorage = globalThis.localStorage) {
  if (!webStorage) throw new TypeError("browserStorage needs a Web Storage object (localStorage)");
  return {
    async getItem(key) { return webStorage.getItem(key); },
    async setItem(key, value) { webStorage.setItem(key, String(value)); },
    async removeItem(key) { webStorage.removeItem(key); },
  };
}

/** React Native: pass AsyncStorage, or better an encrypted store with the same three methods
 *  (e.g. a wrapper over expo-secure-store or react-native-keychain): the refresh token is a credential. */
export function reactNativeStorage(asyncStorage) {
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

/** The typed event in an FCM data payload (Android RemoteMessage.data, or the iOS userInfo), or null. */
export function parsePushData(data) {
  if (!data || typeof data !== "object") return null;
  if (data.action === "force_logout" && typeof data.sessionId === "string") {
    return { type: "forceLogout", sessionId: data.sessionId, reason: String(data.reason ?? "unknown") };
  }
  if (data.action === "new_login_alert" && typeof data.actionToken === "string" && typeof data.newSessionId === "string") {
    let locArgs = [];
    try {
      const parsed = JSON.parse(data.body_loc_args ?? "[]");
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

// --- the client ----------------------------------------------------------------------------------

export class MyDevicesClient {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] the API's origin ("" = this page's origin)
   * @param {"bearer"|"cookie"} [options.credentials]
   * @param {object} [options.storage] an adapter: memoryStorage(), browserStorage(), reactNativeStorage()
   * @param {Function} [options.fetch]
   * @param {Function} [options.onSignedOut] called with (reason, details) once what was stored is cleared
   */
  constructor({ baseUrl = "", credentials = "bearer", storage = memoryStorage(), fetch: fetchImpl,
    onSignedOut = null, crossTabLock = true } = {}) {
    if (credentials !== "bearer" && credentials !== "cookie") throw new TypeError('credentials must be "bearer" or "cookie"');
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.credentials = credentials;
    this.storage = storage;
    this._fetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));
    this._listeners = new Set();
    if (onSignedOut) this._listeners.add(onSignedOut);
    this._locks = crossTabLock ? globalThis.navigator?.locks ?? null : null;
    this._state = null; // cached copy of the stored state
    this._generation = 0; // bumped by every refresh (and sign-out): a 401 from before it is not news
    this._refreshing = null;
    this._loggingOut = false; // logout() under way: its own event is the one the app gets
  }

  /** Subscribe to sign-outs; returns the unsubscribe function. */
  onSignedOut(listener) {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  // --- state ---

  async _load() {
    const raw = await this.storage.getItem(KEY);
    let state = {};
    try { state = raw ? JSON.parse(raw) : {}; } catch { state = {}; }
    this._state = state && typeof state === "object" ? state : {};
    return this._state;
  }

  async _save(patch) {
    const state = { ...(await this._load()), ...patch };
    for (const [k, v] of Object.entries(state)) if (v === null || v === undefined) delete state[k];
    await this.storage.setItem(KEY, JSON.stringify(state));
    this._state = state;
    return state;
  }

  /** What is stored about this device's session (never the tokens themselves in cookie mode). */
  async session() {
    const state = await this._load();
    return { sessionId: state.sessionId ?? null, deviceId: state.deviceId ?? null,
      accessTokenExpiresAt: state.accessTokenExpiresAt ?? null, signedIn: Boolean(state.sessionId) };
  }

  async _clear() {
    const state = await this._load();
    // The device id stays: it names this device, so a re-login replaces its session (README).
    await this.storage.removeItem(KEY);
    this._state = {};
    if (state.deviceId) await this._save({ deviceId: state.deviceId });
  }

  async _signedOut(reason, details = {}) {
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

  async _send(method, path, { body, bearer, auth = true } = {}) {
    const state = this._state ?? (await this._load());
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    else if (auth && this.credentials === "bearer" && state.accessToken) headers.Authorization = `Bearer ${state.accessToken}`;
    if (this.credentials === "bearer" && state.deviceId) headers["X-Device-Id"] = state.deviceId;
    let response;
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
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const error = data && data.error ? data.error : {};
    const { code, message, ...rest } = error;
    throw new MyDevicesError(
      response.status,
      typeof code === "string" ? code : `http_${response.status}`,
      typeof message === "string" ? message : `The server answered ${response.status}.`,
      { retryAfter: Number(response.headers.get("Retry-After")) || null, details: rest },
    );
  }

  /** A call with our credentials: refreshed first if the access token is about to expire, once
   *  more after a 401 that a refresh cures, and a 401 that ends the session signs this device out. */
  async _call(method, path, options = {}) {
    let state = await this._load();
    if (!state.sessionId) throw new MyDevicesError(401, "not_signed_in", "Sign in first.");
    if (this.credentials === "bearer" && !(expiresAtMs(state) - EARLY_MS > Date.now())) {
      await this._renew(this._generation, state);
      state = await this._load();
    }
    const generation = this._generation;
    try {
      return await this._send(method, path, options);
    } catch (error) {
      if (error.status !== 401) throw error;
      if (RENEWABLE.has(error.code)) {
        await this._renew(generation, state);
        try {
          return await this._send(method, path, options);
        } catch (again) {
          if (again.status === 401) await this._signedOut(again.code, { source: "api", status: 401, error: again });
          throw again;
        }
      }
      if (SIGNED_OUT.has(error.code)) await this._signedOut(error.code, { source: "api", status: 401, error });
      throw error;
    }
  }

  /** One refresh per expiry: calls that found the same token expired share it (`generation`
   *  tells a 401 from before the last refresh), and across tabs a Web Lock lets one tab refresh.
   *  `seen` is the state the call found its token in. */
  _renew(generation, seen) {
    if (generation !== this._generation) return Promise.resolve(); // refreshed since the call was sent
    this._refreshing ??= this._renewAcrossTabs(seen).finally(() => { this._refreshing = null; });
    return this._refreshing;
  }

  /** Refresh while holding the tabs' Web Lock, unless another tab refreshed since the call saw
   *  its token: looked at inside the lock even when it was free, as another tab may have refreshed
   *  and let go in between. (When a free lock meant "nobody refreshed" and a bearer tab let go at
   *  once, a tab firing its calls 20-60 ms after another's refreshed a second time in about one
   *  expiry of four: tests/web/test_web_page.py.) */
  async _renewAcrossTabs(seen) {
    if (!this._locks) return this._refresh();
    let renewed;
    const done = new Promise((resolve) => { renewed = resolve; });
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

  async _refreshedElsewhere(seen) {
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
      if (error.status === 401 && RENEWABLE.has(error.code)) return false;
      if (error.status === 401) await this._signedOut(error.code, { source: "api", status: 401, error });
      throw error;
    }
  }

  async _refresh() {
    const state = await this._load();
    if (this.credentials === "bearer" && !state.refreshToken) {
      await this._signedOut("unauthenticated", { source: "api", status: 401 });
      throw new MyDevicesError(401, "unauthenticated", "No refresh token is stored.");
    }
    let issued;
    try {
      issued = await this._send("POST", "/v1/sessions/refresh",
        this.credentials === "bearer" ? { body: { refreshToken: state.refreshToken }, auth: false } : { auth: false });
    } catch (error) {
      if (error.status === 401) await this._signedOut(error.code, { source: "api", status: 401, error });
      throw error;
    }
    this._generation += 1;
    await this._keep(issued);
  }

  async _keep(issued) {
    const patch = { accessTokenExpiresAt: issued.accessTokenExpiresAt ?? null };
    if (issued.session?.sessionId) patch.sessionId = issued.session.sessionId;
    if (this.credentials === "bearer") {
      Object.assign(patch, { accessToken: issued.accessToken, refreshToken: issued.refreshToken, deviceId: issued.deviceId });
    }
    await this._save(patch);
  }

  // --- the API ---

  /** Log in on this device with a Firebase ID token. A second login on the same device replaces its session. */
  async login({ idToken, device, push, firebaseCustomToken } = {}) {
    if (typeof idToken !== "string" || !idToken) throw new TypeError("login needs a Firebase ID token");
    const body = { device };
    if (push) body.push = push;
    if (firebaseCustomToken !== undefined) body.firebaseCustomToken = firebaseCustomToken;
    const issued = await this._send("POST", "/v1/sessions", { body, bearer: idToken });
    this._generation += 1;
    await this._clear();
    await this._keep(issued);
    return { session: issued.session, firebaseCustomToken: issued.firebaseCustomToken ?? null };
  }

  /** Cookie mode: after a page load, whether the cookies still hold a session (and which). A
   *  browser holding no session cookie is signed out, told so with no call that fails; one whose
   *  access cookie ran out refreshes first. */
  async resume() {
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
        if (refreshed || this.credentials !== "cookie" || error.status !== 401 || !RENEWABLE.has(error.code)) throw error;
        await refresh();
        return await this._resumed();
      }
    } catch (error) {
      if (error.status !== 401) throw error;
      await this._clear();
      return null;
    }
  }

  async _resumed() {
    const session = await this._send("GET", "/v1/sessions/current");
    await this._save({ sessionId: session.sessionId });
    return session;
  }

  /** Which of the session's cookies this browser holds (GET /v1/sessions/cookies: no values, never
   *  a 401); an API without that call is asked as before, as if it held both. */
  async _heldCookies() {
    try {
      const held = await this._send("GET", "/v1/sessions/cookies");
      return { access: Boolean(held?.access), refresh: Boolean(held?.refresh) };
    } catch (error) {
      if (error.status === 404) return { access: true, refresh: true };
      throw error;
    }
  }

  current() { return this._call("GET", "/v1/sessions/current"); }
  async listSessions() { return this._call("GET", "/v1/sessions"); }
  closeSession(sessionId) { return this._call("DELETE", `/v1/sessions/${encodeURIComponent(sessionId)}`); }
  revokeOthers() { return this._call("POST", "/v1/sessions/revoke-others"); }
  updatePushToken(token, provider = "fcm") { return this._call("PUT", "/v1/sessions/current/push-token", { body: { token, provider } }); }
  /** The "Was that you?" alerts this session may answer (what the push would carry). */
  async pendingAlerts() { return (await this._call("GET", "/v1/alerts")).alerts; }

  /** Answer an alert with its action token ("no" closes the new session and whatever its device opened since). */
  respondToAlert(actionToken, answer) {
    if (answer !== "yes" && answer !== "no") throw new TypeError('answer must be "yes" or "no"');
    return this._send("POST", "/v1/alerts/respond", { body: { actionToken, answer }, auth: false });
  }

  /** End this session; what was stored is cleared whatever the server says. */
  async logout() {
    this._loggingOut = true;
    try {
      await this._call("POST", "/v1/sessions/logout");
    } catch (error) {
      if (error.status !== 401 && error.code !== "not_signed_in") throw error;
    } finally {
      this._loggingOut = false;
      await this._signedOut("logout", { source: "logout" });
    }
  }

  /** Turn a push's data into a typed event; a force_logout for this session signs it out. */
  async handlePush(data) {
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
