// Firebase Auth through its REST API (Identity Toolkit), which is what the JS SDK calls too:
// the page stays plain modules with no bundler and no CDN. Locally the same calls go to the Auth
// emulator, whose address Hosting's reserved /__/firebase/init.json gives (the local server adds
// `authEmulatorUrl`). The ID token only proves who signs in: it goes once to POST /v1/sessions
// and is never stored.

const GOOGLE = "https://identitytoolkit.googleapis.com";

export class AuthError extends Error {}

// Firebase's error codes (`error.message`, sometimes with " : detail") in words a person reads.
const MESSAGES = {
  EMAIL_NOT_FOUND: "Wrong email or password.",
  INVALID_PASSWORD: "Wrong email or password.",
  INVALID_LOGIN_CREDENTIALS: "Wrong email or password.",
  INVALID_EMAIL: "Enter a valid email address.",
  MISSING_PASSWORD: "Enter your password.",
  MISSING_EMAIL: "Enter your email address.",
  EMAIL_EXISTS: "An account with this email already exists. Sign in instead.",
  WEAK_PASSWORD: "Choose a password of at least 6 characters.",
  USER_DISABLED: "This account has been disabled.",
  TOO_MANY_ATTEMPTS_TRY_LATER: "Too many attempts. Try again later.",
};

let config = null;

export async function loadConfig() {
  if (config) return config;
  const response = await fetch("/__/firebase/init.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`/__/firebase/init.json answered ${response.status}`);
  config = await response.json();
  return config;
}

async function identityToolkit(method, email, password) {
  const { apiKey, authEmulatorUrl } = await loadConfig();
  const base = authEmulatorUrl ? `${authEmulatorUrl}/identitytoolkit.googleapis.com` : GOOGLE;
  let response;
  try {
    response = await fetch(`${base}/v1/accounts:${method}?key=${encodeURIComponent(apiKey)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password, returnSecureToken: true }),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new AuthError("Can't reach the sign-in service. Check your connection.");
  }
  const data = await response.json().catch(() => ({}));
  if (response.ok && typeof data.idToken === "string") return data.idToken;
  const code = String(data?.error?.message ?? "").split(" ")[0];
  throw new AuthError(MESSAGES[code] ?? "Sign-in failed. Try again.");
}

export const signIn = (email, password) => identityToolkit("signInWithPassword", email, password);
export const signUp = (email, password) => identityToolkit("signUp", email, password);
