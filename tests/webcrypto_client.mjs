// A DPoP client on WebCrypto in Node (no library, nothing of ours): a non-extractable P-256 key,
// a login that binds the session to it, and refreshes with proofs it signs.
//   node tests/webcrypto_client.mjs <api base URL> <Firebase ID token>
// Prints one JSON line with what happened; tests/api/test_binding.py judges it.
const [base, idToken] = process.argv.slice(2);
const { subtle } = globalThis.crypto;
const b64 = (bytes) => Buffer.from(bytes).toString("base64url");
const text = (value) => b64(new TextEncoder().encode(JSON.stringify(value)));

const keys = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
let privateExportRefused = false;
try {
  await subtle.exportKey("jwk", keys.privateKey);
} catch {
  privateExportRefused = true; // the point: the private key cannot be copied out
}
const { kty, crv, x, y } = await subtle.exportKey("jwk", keys.publicKey);
const jwk = { kty, crv, x, y };

async function proof(htu, nonce) {
  const input = `${text({ typ: "dpop+jwt", alg: "ES256", jwk })}.${text({
    jti: crypto.randomUUID(), htm: "POST", htu, iat: Math.floor(Date.now() / 1000), nonce,
  })}`;
  // WebCrypto's ECDSA signature is already raw r||s, as JWS wants it.
  const signature = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, new TextEncoder().encode(input));
  return `${input}.${b64(new Uint8Array(signature))}`;
}

const login = await fetch(`${base}/v1/sessions`, {
  method: "POST",
  headers: { Authorization: `Bearer ${idToken}`, "Content-Type": "application/json" },
  body: JSON.stringify({ device: { name: "Node WebCrypto", platform: "android" }, devicePublicKey: jwk }),
});
const session = await login.json();
let nonce = login.headers.get("DPoP-Nonce");
let refreshToken = session.refreshToken;
const statuses = [];
for (let i = 0; i < 2; i += 1) {
  const url = `${base}/v1/sessions/refresh`;
  const answer = await fetch(url, {
    method: "POST",
    headers: { "X-Device-Id": session.deviceId, "Content-Type": "application/json", DPoP: await proof(url, nonce) },
    body: JSON.stringify({ refreshToken }),
  });
  const body = await answer.json();
  statuses.push(answer.status);
  nonce = answer.headers.get("DPoP-Nonce") ?? nonce;
  refreshToken = body.refreshToken ?? refreshToken;
}
console.log(JSON.stringify({
  loginStatus: login.status, deviceBound: session.session?.deviceBound, privateExportRefused, statuses,
  refreshToken, deviceId: session.deviceId, sessionId: session.session?.sessionId,
}));
