// The page's DOM. Every value from the API (device names above all: anyone who signs in to the
// account chooses one) goes in through textContent or an attribute, never as HTML.

import { deviceKind, formatDate, platformLabel, timeAgo } from "./format.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["view-loading", "view-signin", "view-devices", "view-failed"];

export function show(view) {
  for (const id of VIEWS) $(id).hidden = id !== `view-${view}`;
  $("logout").hidden = view !== "devices";
}

export function setText(id, text) {
  const element = $(id);
  element.textContent = text ?? "";
  element.hidden = !text;
}

// Closing sessions asks first, in the page: `trigger` gives way to the .confirm group after it
// (the question, a confirming button, Cancel) with focus on Cancel, and only the confirming button
// runs `onYes(trigger)`; Cancel and Escape put the trigger back. One question is open at a time.
// `question` null keeps the group's text; `onOpen(open)` follows it. Returns { open(focus) }.
let closeQuestion = null;

export function askFirst(trigger, question, onYes, onOpen = () => {}) {
  const group = trigger.nextElementSibling;
  const [yes, no] = [group.querySelector(".yes"), group.querySelector(".no")];
  const close = () => {
    group.hidden = true;
    trigger.hidden = false;
    if (closeQuestion === close) closeQuestion = null;
    onOpen(false);
  };
  const open = (focus) => {
    closeQuestion?.();
    if (question) group.querySelector(".question").textContent = question;
    group.setAttribute("aria-label", group.querySelector(".question").textContent);
    trigger.hidden = true;
    group.hidden = false;
    closeQuestion = close;
    onOpen(true);
    if (focus) no.focus();
  };
  const cancel = () => { close(); trigger.focus(); };
  trigger.addEventListener("click", () => open(true));
  no.addEventListener("click", cancel);
  group.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
  yes.addEventListener("click", () => { cancel(); onYes(trigger); });
  return { open };
}

let asking = null; // the session whose row asks, kept when a poll rebuilds the rows

function sessionRow(session, onClose, now) {
  const row = $("session-row").content.firstElementChild.cloneNode(true);
  row.dataset.sessionId = session.sessionId;
  row.classList.toggle("current", session.isCurrentDevice);
  row.querySelector("use").setAttribute("href", `#icon-${deviceKind(session)}`);
  const name = session.deviceName || "Unnamed device";
  row.querySelector(".device-name").textContent = name;
  row.querySelector(".badge").hidden = !session.isCurrentDevice;
  row.querySelector(".bound-badge").hidden = !session.deviceBound;
  row.querySelector(".platform").textContent = platformLabel(session);
  row.querySelector(".location").textContent = session.location || "Location unknown";
  const lastActive = row.querySelector(".last-active");
  lastActive.textContent = session.isCurrentDevice ? "Active now" : `Active ${timeAgo(session.lastActiveAt, now)}`;
  lastActive.title = formatDate(session.lastActiveAt);
  row.querySelector(".created").textContent = `Signed in ${formatDate(session.createdAt)}`;
  const close = row.querySelector(".close");
  if (session.isCurrentDevice) {
    close.remove(); // this device leaves with "Sign out" in the top bar: one word per action
  } else {
    close.setAttribute("aria-label", `Close the session on ${name}`);
    const ask = askFirst(close, `Close the session on “${name}”?`, () => onClose(session, close),
      (open) => { asking = open ? session.sessionId : null; });
    if (asking === session.sessionId) ask.open(false);
  }
  return row;
}

// What a row shows, to re-render only when something visible changed (a poll every 2 s
// must not rebuild a button under the pointer).
function signature(sessions, now) {
  return JSON.stringify(sessions.map((s) => [s.sessionId, s.deviceName, s.location, s.isCurrentDevice,
    s.deviceType, s.model, s.createdAt, s.deviceBound, timeAgo(s.lastActiveAt, now)]));
}

let shown = null;

export function renderSessions(sessions, onClose) {
  const now = Date.now();
  const others = sessions.filter((s) => !s.isCurrentDevice);
  $("only-device").hidden = others.length > 0;
  const all = $("revoke-others").nextElementSibling; // its question, while asked
  all.querySelector(".question").textContent = `Close all ${others.length} other sessions?`;
  if (others.length < 2) all.hidden = true;
  $("revoke-others").hidden = others.length < 2 || !all.hidden;
  const next = signature(sessions, now);
  if (next === shown) return;
  shown = next;
  const list = $("sessions");
  // A button in a rebuilt row keeps the focus: the same button of the same session's new row.
  const focused = list.contains(document.activeElement) ? document.activeElement.closest("li") : null;
  const at = focused ? [...focused.querySelectorAll("button")].indexOf(document.activeElement) : -1;
  list.replaceChildren(...sessions.map((s) => sessionRow(s, onClose, now)));
  const again = focused && [...list.children].find((li) => li.dataset.sessionId === focused.dataset.sessionId);
  again?.querySelectorAll("button")[at]?.focus();
}

export function forgetSessions() {
  closeQuestion?.();
  shown = null;
  $("sessions").replaceChildren();
}

export function busy(button, label) {
  button.dataset.label ??= button.textContent;
  button.disabled = Boolean(label);
  button.textContent = label || button.dataset.label;
}

// What "No" did: "We closed that session.", and the link to change the password when the answer
// advises it (`advice: change_password`); null hides it.
export function closedNotice(answer) {
  $("alert-result").hidden = !answer;
  $("alert-result").querySelector(".advice").hidden = answer?.advice !== "change_password";
}

// "Signed in on “Pixel 8” from London, United Kingdom. Was that you?": the server's sentence (the
// same as the push's), set as text; the device name in it is the new device's claim.
let shownAlerts = null;

export function renderAlerts(alerts, onAnswer) {
  const next = JSON.stringify(alerts.map((a) => [a.newSessionId, a.text]));
  if (next === shownAlerts) return;
  shownAlerts = next;
  $("alerts").replaceChildren(...alerts.map((alert) => {
    const row = $("alert-row").content.firstElementChild.cloneNode(true);
    row.dataset.sessionId = alert.newSessionId;
    row.querySelector(".alert-text").textContent = alert.text;
    const no = row.querySelector(".no");
    const yes = row.querySelector(".yes");
    no.addEventListener("click", () => onAnswer(alert, "no", no));
    yes.addEventListener("click", () => onAnswer(alert, "yes", yes));
    return row;
  }));
}

export function forgetAlerts() {
  shownAlerts = null;
  $("alerts").replaceChildren();
}
