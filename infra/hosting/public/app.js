// The "My devices" page: sign in, list this account's sessions, close them, sign out, and answer
// "Was that you?" about newer sign-ins. Built on the JavaScript client library (clients/js, copied
// verbatim to ./mydevices.js) in cookie mode: the tokens stay in HttpOnly cookies.
// A change made elsewhere shows up by polling GET /v1/sessions and GET /v1/alerts every 2 s: other
// devices' rows disappear, alerts appear and go, and when this device's own session is closed the
// poll's 401 signs it out (the library's onSignedOut).

import { MyDevicesClient, MyDevicesError, memoryStorage } from "./mydevices.js";
import { AuthError, loadConfig, signIn, signUp } from "./auth.js";
import { browserName } from "./format.js";
import { askFirst, busy, closedNotice, forgetAlerts, forgetSessions, renderAlerts, renderSessions, setText, show } from "./view.js";

const api = new MyDevicesClient({ credentials: "cookie", storage: memoryStorage() });

const POLL_MS = 2000;
const APP_VERSION = "web-1";
const $ = (id) => document.getElementById(id);

let sessions = [];
let alerts = [];
const answered = new Set(); // alerts this page answered: a poll that raced with the answer must not show them again
let pollTimer = null;
let pollTrouble = false; // the banner shows a failed poll (the next good one clears it)
// Bumped whenever this page signs in or out: answers to calls made before are dropped.
let epoch = 0;
// Sessions this page closed: a poll that raced with the close must not bring them back.
const closed = new Set();

const SIGNED_OUT = {
  session_revoked: "You were signed out: this device's session was closed from another device.",
  token_reused: "For your security you were signed out on every device. Sign in again.",
};

function describe(error) {
  if (!(error instanceof MyDevicesError)) return "Something went wrong.";
  if (error.code === "network") return error.message;
  if (error.status >= 500) return "The service is unavailable right now.";
  if (error.status === 429) return "Too many attempts. Try again in a minute.";
  return `The request failed (${error.code}).`;
}

const isSignedOut = (error) => error instanceof MyDevicesError && error.status === 401;

function signedOut(notice) {
  epoch += 1;
  clearTimeout(pollTimer);
  pollTrouble = false;
  sessions = [];
  alerts = [];
  closed.clear();
  answered.clear();
  forgetSessions();
  forgetAlerts();
  setText("banner", "");
  closedNotice(null);
  setText("signin-notice", notice);
  setText("signin-error", "");
  $("password").value = "";
  show("signin");
}

function onSignedOut(error) {
  const wasSignedIn = sessions.length > 0;
  signedOut(SIGNED_OUT[error.code] ?? (wasSignedIn ? "Your session has ended. Sign in again." : ""));
}

function render() {
  sessions = sessions.filter((s) => !closed.has(s.sessionId));
  alerts = alerts.filter((a) => !answered.has(a.newSessionId) && !closed.has(a.newSessionId));
  renderSessions(sessions, closeSession);
  renderAlerts(alerts, answerAlert);
}

async function loadSessions({ initial = false } = {}) {
  const mine = epoch;
  clearTimeout(pollTimer);
  try {
    const [list, pending] = await Promise.all([api.listSessions(), api.pendingAlerts()]);
    if (mine !== epoch) return;
    sessions = list.sessions;
    alerts = pending;
    if (pollTrouble) setText("banner", "");
    pollTrouble = false;
    render();
    show("devices");
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    if (initial) {
      setText("failed-message", `We couldn't load your devices. ${describe(error)}`);
      show("failed");
      return;
    }
    pollTrouble = true;
    setText("banner", `${describe(error)} Retrying…`);
  }
  if (mine !== epoch) return;
  clearTimeout(pollTimer); // one timer, even when a load started by visibilitychange overlapped
  pollTimer = setTimeout(poll, POLL_MS);
}

function poll() {
  if (document.hidden) return; // visibilitychange polls again when the tab is looked at
  loadSessions();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !$("view-devices").hidden) loadSessions();
});

// "No" closes the new session exactly as the push's action does (POST /v1/alerts/respond).
async function answerAlert(alert, answer, button) {
  const mine = epoch;
  busy(button, answer === "no" ? "Closing…" : "Confirming…");
  try {
    const result = await api.respondToAlert(alert.actionToken, answer);
    if (mine !== epoch) return;
    answered.add(alert.newSessionId);
    if (answer === "no") {
      for (const sid of result.closedSessionIds ?? []) closed.add(sid);
      closed.add(alert.newSessionId);
      closedNotice(result);
    } else {
      closedNotice(null);
    }
  } catch (error) {
    if (mine !== epoch) return;
    if (error.code === "already_answered" || error.code === "session_closed") {
      answered.add(alert.newSessionId); // answered from another device meanwhile
    } else if (isSignedOut(error) && error.code === "session_revoked") {
      return; // this session was closed: the next poll signs it out
    } else {
      busy(button, null);
      setText("banner", `Couldn't answer. ${describe(error)}`);
      return;
    }
  }
  setText("banner", "");
  render();
}

async function closeSession(session, button) {
  const mine = epoch;
  busy(button, "Closing…");
  try {
    await api.closeSession(session.sessionId);
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    if (error.code !== "not_found") { // not_found: it was closed already, which is what was asked
      busy(button, null);
      setText("banner", `Couldn't close the session on ${session.deviceName}. ${describe(error)}`);
      return;
    }
  }
  if (mine !== epoch) return;
  closed.add(session.sessionId);
  setText("banner", "");
  render();
}

askFirst($("revoke-others"), null, async (button) => {
  const mine = epoch;
  busy(button, "Closing…");
  try {
    await api.revokeOthers();
    if (mine !== epoch) return;
    for (const s of sessions) if (!s.isCurrentDevice) closed.add(s.sessionId);
    setText("banner", "");
    render();
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    setText("banner", `Couldn't close the other sessions. ${describe(error)}`);
  } finally {
    busy(button, null);
  }
});

$("logout").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  busy(button, "Signing out…");
  try {
    await api.logout();
  } catch (error) {
    if (!isSignedOut(error)) { // a 401: this session had ended anyway
      busy(button, null);
      setText("banner", `Couldn't sign out. ${describe(error)}`);
      return;
    }
  }
  busy(button, null);
  signedOut("You signed out.");
});

async function enter(method, button, label) {
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) {
    setText("signin-error", "Enter your email and password.");
    return;
  }
  setText("signin-error", "");
  busy(button, label);
  try {
    const idToken = await method(email, password);
    await api.login({ idToken, device: { name: browserName(navigator.userAgent), platform: "web", appVersion: APP_VERSION } });
    epoch += 1;
    closed.clear();
    answered.clear();
    closedNotice(null);
    setText("signin-notice", "");
    $("password").value = "";
    show("loading");
    await loadSessions({ initial: true });
  } catch (error) {
    setText("signin-error", error instanceof AuthError ? error.message : `Sign-in failed. ${describe(error)}`);
  } finally {
    busy(button, null);
  }
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  enter(signIn, $("signin-submit"), "Signing in…");
});
$("signup").addEventListener("click", () => enter(signUp, $("signup"), "Creating account…"));

async function start() {
  show("loading");
  try {
    await loadConfig();
  } catch {
    setText("failed-message", "The page's configuration could not be loaded.");
    show("failed");
    return;
  }
  try {
    if (!(await api.resume())) {
      show("signin");
      return;
    }
  } catch (error) {
    setText("failed-message", `We couldn't load your devices. ${describe(error)}`);
    show("failed");
    return;
  }
  await loadSessions({ initial: true });
}

$("retry").addEventListener("click", start);
start();
