// What the suites share about the local stack (tests/web/test_js_client.py starts it and passes the URLs).
import { randomUUID } from "node:crypto";

/** An environment variable the Python side sets, or a clear failure. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through tests/web/test_js_client.py (infra/local/test)`);
  return value;
}

/** A new user in the Auth emulator: its Firebase ID token. */
export async function signUp(prefix = "js") {
  const response = await fetch(`${env("MYDEVICES_AUTH_URL")}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email: `${prefix}-${randomUUID()}@example.com`, password: "correct-horse-9", returnSecureToken: true }),
  });
  if (response.status !== 200) throw new Error(`sign-up failed: ${response.status}`);
  return (await response.json()).idToken;
}
