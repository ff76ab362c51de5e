// The My Devices API, same origin. The browser carries the device id and both tokens in
// HttpOnly cookies, so nothing here ever holds a token except the one-shot Firebase ID token
// that proves who signs in.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// 401s a refresh can cure: the access token ran out (its cookie expires with it).
const RENEWABLE = new Set(["token_expired", "unauthenticated"]);

async function send(method, path, { body, idToken } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idToken) headers.Authorization = `Bearer ${idToken}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", "Can't reach the server. Check your connection.");
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = data && data.error ? data.error : {};
  throw new ApiError(
    response.status,
    typeof error.code === "string" ? error.code : `http_${response.status}`,
    typeof error.message === "string" ? error.message : `The server answered ${response.status}.`,
    Number(response.headers.get("Retry-After")) || null,
  );
}

// One refresh at a time: two calls that both find the access token expired share it.
let refreshing = null;

function refresh() {
  refreshing ??= send("POST", "/v1/sessions/refresh").finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function call(method, path, options) {
  try {
    return await send(method, path, options);
  } catch (error) {
    if (error.status !== 401 || !RENEWABLE.has(error.code)) throw error;
    await refresh(); // its own 401 (session_revoked, no refresh cookie...) is the caller's answer
    return send(method, path, options);
  }
}

export const login = (idToken, device) => send("POST", "/v1/sessions", { idToken, body: { device } });
export const listSessions = async () => (await call("GET", "/v1/sessions")).sessions;
export const closeSession = (sessionId) => call("DELETE", `/v1/sessions/${encodeURIComponent(sessionId)}`);
export const revokeOthers = () => call("POST", "/v1/sessions/revoke-others");
export const logout = () => call("POST", "/v1/sessions/logout");
