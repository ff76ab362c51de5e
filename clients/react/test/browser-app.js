// A scratch web app on <ActiveSessions/> for tests/web/test_react_sessions.py: esbuild bundles it (React,
// react-dom, this package's build, @mydevices/client) into one module the test serves on the API's origin.
// It signs in with the Firebase ID token in the URL's fragment (#idToken=...), in cookie mode.
import { createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { MyDevicesClient, memoryStorage } from "@mydevices/client";
import { ActiveSessions, MyDevicesProvider, useSignedOut } from "../dist/index.js";

const client = new MyDevicesClient({ credentials: "cookie", storage: memoryStorage() });

function SignedOutWatcher() {
  useSignedOut((reason) => { document.body.dataset.signedOut = reason; });
  return null;
}

const idToken = new URLSearchParams(location.hash.slice(1)).get("idToken");
await client.login({ idToken, device: { name: "Chrome on Linux", platform: "web" } });
createRoot(document.getElementById("root")).render(
  h(MyDevicesProvider, { client }, h(SignedOutWatcher), h(ActiveSessions, { pollMs: 500, changePasswordHref: "/password" })),
);
