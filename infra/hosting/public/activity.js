// "Recent security activity": the last 30 days of sign-ins, closures (and who closed them),
// copied-token incidents and alert answers (GET /v1/activity, docs/activity.md). Each line is the
// server's sentence, set with textContent: the device names and support notes in it are other
// people's text. Read with the device list (one answer, one render) on entering the page, a moment
// after this page closes or answers something, and at most every 30 s while polling: a read costs
// `limit + 1` document reads, the device list's poll is every 2 s.

import { formatDate, timeAgo } from "./format.js";

const $ = (id) => document.getElementById(id);
export const ACTIVITY_EVERY_MS = 30_000;
const LIMIT = 20;

let shown = null;

export function renderActivity(entries) {
  const now = Date.now();
  const next = JSON.stringify(entries.map((e) => [e.id, e.text, timeAgo(e.at, now)]));
  $("activity-empty").hidden = entries.length > 0;
  if (next === shown) return;
  shown = next;
  $("activity").replaceChildren(...entries.map((entry) => {
    const row = document.createElement("li");
    row.className = `activity-entry ${entry.kind}`;
    row.dataset.entryId = entry.id;
    const text = document.createElement("span");
    text.className = "activity-text";
    text.textContent = entry.text;
    const when = document.createElement("time");
    when.className = "activity-time";
    when.dateTime = entry.at;
    when.title = formatDate(entry.at);
    when.textContent = timeAgo(entry.at, now);
    row.append(text, " ", when);
    return row;
  }));
}

export function forgetActivity() {
  shown = null;
  $("activity").replaceChildren();
  $("activity-empty").hidden = true;
}

// The first page, or null when it could not be read (what is shown stays; the device list, read
// alongside, reports trouble and sign-outs).
export function readActivity(api) {
  return api.listActivity({ limit: LIMIT }).catch(() => null);
}
