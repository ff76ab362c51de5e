// The "My devices" page: sign in, list this account's sessions, close them, sign out, and answer
// "Was that you?" about newer sign-ins. Built on the JavaScript client library (clients/js, copied
// verbatim to ./mydevices.js) in cookie mode: the tokens stay in HttpOnly cookies.
// A change made elsewhere shows up by polling GET /v1/sessions and GET /v1/alerts every 2 s: other
// devices' rows disappear, alerts appear and go, and when this device's own session is closed the
// poll's 401 signs it out (the library's onSignedOut).
// Lifetimes and step-up (docs/concepts/sessions.md): a session past its idle or maximum age gets
// 401 session_expired and the page says which; closing sessions (and widening auto-close) may answer
// 403 recent_sign_in_required, and the page then asks for the password again (a fresh Firebase
// sign-in), re-verifies this session with its ID token (reauthenticate) and retries once.

import { MyDevicesClient, MyDevicesError, memoryStorage } from "./mydevices.js";
import { AuthError, loadConfig, signIn, signUp } from "./auth.js";
import { browserName } from "./format.js";
import { ACTIVITY_EVERY_MS, forgetActivity, readActivity, renderActivity } from "./activity.js";
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
let autoCloseAfterDays = null; // the user's choice as the server last said it
let autoCloseBusy = false; // a change is on its way: a poll must not put the old value back
let signedInEmail = ""; // prefills the re-verification prompt (unknown after a reload)
let activityAt = 0; // when "Recent security activity" was last read (0: read it at the next load)
// Bumped whenever this page signs in or out: answers to calls made before are dropped.
let epoch = 0;
// Sessions this page closed: a poll that raced with the close must not bring them back.
const closed = new Set();

const SIGNED_OUT = {
  session_revoked: "You were signed out: this device's session was closed from another device.",
  token_reused: "For your security you were signed out on every device. Sign in again.",
};

// 401 session_expired: which deadline passed (error.details.reason).
const EXPIRED = {
  idle: "Your session expired because it was not used for a while. Sign in again.",
  max_age: "Your session expired: it reached its maximum length. Sign in again.",
};

function signedOutNotice(error, wasSignedIn) {
  if (error.code === "session_expired") return EXPIRED[error.details?.reason] ?? "Your session expired. Sign in again.";
  return SIGNED_OUT[error.code] ?? (wasSignedIn ? "Your session has ended. Sign in again." : "");
}

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
  endReverify(false);
  autoCloseBusy = false;
  setText("auto-close-status", "");
  forgetSessions();
  forgetAlerts();
  forgetActivity();
  activityAt = 0;
  setText("banner", "");
  closedNotice(null);
  setText("signin-notice", notice);
  setText("signin-error", "");
  $("password").value = "";
  show("signin");
}

// The library tells once why it signed this device out (the first 401 that ended the session, e.g.
// session_expired from its refresh); calls that failed alongside may carry a later, vaguer 401.
let endedBy = null;
api.onSignedOut((reason, details) => { endedBy = details.error ?? null; });

function onSignedOut(error) {
  const cause = endedBy ?? error;
  endedBy = null;
  signedOut(signedOutNotice(cause, sessions.length > 0));
}

// --- step-up: "Confirm it's you" ---------------------------------------------------------------
let reverifying = null; // { resolve } of the open prompt

function endReverify(done) {
  const open = reverifying;
  reverifying = null;
  $("reverify").hidden = true;
  $("reverify-password").value = "";
  setText("reverify-error", "");
  open?.resolve(done);
}

// Opens the prompt; resolves true once this session is re-verified, false when cancelled.
function reverify() {
  endReverify(false);
  $("reverify-email").value = signedInEmail;
  $("reverify").hidden = false;
  (signedInEmail ? $("reverify-password") : $("reverify-email")).focus();
  return new Promise((resolve) => { reverifying = { resolve }; });
}

$("reverify").addEventListener("submit", async (event) => {
  event.preventDefault();
  const mine = epoch;
  const email = $("reverify-email").value.trim();
  const password = $("reverify-password").value;
  if (!email || !password) {
    setText("reverify-error", "Enter your email and password.");
    return;
  }
  const button = $("reverify-submit");
  busy(button, "Checking…");
  try {
    await api.reauthenticate(await signIn(email, password)); // a new Firebase sign-in's ID token
    if (mine !== epoch) return;
    signedInEmail = email;
    endReverify(true);
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    setText("reverify-error", error instanceof AuthError ? error.message
      : error.code === "forbidden" ? "That is not the account signed in here."
        : `Couldn't confirm. ${describe(error)}`);
  } finally {
    busy(button, null);
  }
});
$("reverify-cancel").addEventListener("click", () => endReverify(false));
$("reverify").addEventListener("keydown", (event) => { if (event.key === "Escape") endReverify(false); });

class Cancelled extends Error {}

// Runs `action`; on 403 recent_sign_in_required asks the user to confirm it's them, then runs it
// once more (what the library's withRecentSignIn does, with the prompt's own errors kept in it).
async function withStepUp(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof MyDevicesError) || error.code !== "recent_sign_in_required") throw error;
    if (!(await reverify())) throw new Cancelled();
    return action();
  }
}

// --- "Close my sessions after … without activity" ----------------------------------------------
const autoCloseValue = (days) => (days == null ? "" : String(days));

function renderAutoClose() {
  if (!autoCloseBusy) $("auto-close").value = autoCloseValue(autoCloseAfterDays);
}

$("auto-close").addEventListener("change", async (event) => {
  const select = event.currentTarget;
  const mine = epoch;
  const days = select.value === "" ? null : Number(select.value);
  autoCloseBusy = true;
  select.disabled = true;
  setText("auto-close-status", "Saving…");
  try {
    const result = await withStepUp(() => api.setAutoClose(days));
    if (mine !== epoch) return;
    autoCloseAfterDays = result.autoCloseAfterDays;
    setText("auto-close-status", result.closed > 0
      ? `Saved. ${result.closed} session${result.closed === 1 ? "" : "s"} unused for longer ${result.closed === 1 ? "was" : "were"} closed.`
      : "Saved.");
    if (result.closed > 0) loadSessions();
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    setText("auto-close-status", error instanceof Cancelled ? "" : `Couldn't save. ${describe(error)}`);
  } finally {
    if (mine === epoch) {
      autoCloseBusy = false;
      select.disabled = false;
      renderAutoClose();
    }
  }
});

function render() {
  sessions = sessions.filter((s) => !closed.has(s.sessionId));
  alerts = alerts.filter((a) => !answered.has(a.newSessionId) && !closed.has(a.newSessionId));
  renderSessions(sessions, closeSession);
  renderAlerts(alerts, answerAlert);
  renderAutoClose();
}

async function loadSessions({ initial = false } = {}) {
  const mine = epoch;
  clearTimeout(pollTimer);
  try {
    const due = Date.now() - activityAt >= ACTIVITY_EVERY_MS;
    if (due) activityAt = Date.now();
    const [list, pending, activity] = await Promise.all([api.listSessions(), api.pendingAlerts(),
      due ? readActivity(api) : null]);
    if (mine !== epoch) return;
    if (due && !activity) activityAt = 0; // not read: the next poll tries again
    sessions = list.sessions;
    autoCloseAfterDays = list.autoCloseAfterDays ?? null;
    alerts = pending;
    if (pollTrouble) setText("banner", "");
    pollTrouble = false;
    render();
    if (activity) renderActivity(activity.activity);
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
  activityAt = Date.now() - ACTIVITY_EVERY_MS + 3000; // its entry is written a moment later
  render();
}

async function closeSession(session, button) {
  const mine = epoch;
  busy(button, "Closing…");
  try {
    await withStepUp(() => api.closeSession(session.sessionId));
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    if (error instanceof Cancelled) return busy(button, null);
    if (error.code !== "not_found") { // not_found: it was closed already, which is what was asked
      busy(button, null);
      setText("banner", `Couldn't close the session on ${session.deviceName}. ${describe(error)}`);
      return;
    }
  }
  if (mine !== epoch) return;
  closed.add(session.sessionId);
  setText("banner", "");
  activityAt = Date.now() - ACTIVITY_EVERY_MS + 3000; // its entry is written a moment later
  render();
}

askFirst($("revoke-others"), null, async (button) => {
  const mine = epoch;
  busy(button, "Closing…");
  try {
    await withStepUp(() => api.revokeOthers());
    if (mine !== epoch) return;
    for (const s of sessions) if (!s.isCurrentDevice) closed.add(s.sessionId);
    setText("banner", "");
    render();
  } catch (error) {
    if (mine !== epoch) return;
    if (isSignedOut(error)) return onSignedOut(error);
    if (error instanceof Cancelled) return;
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
    endedBy = null;
    signedInEmail = email;
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
