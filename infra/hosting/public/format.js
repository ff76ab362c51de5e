// Words for what the API returns: the browser's own name, platforms, and times.

// "Chrome on Linux" from a user agent string. Order matters: iOS agents also say "Mac OS X",
// Android ones "Linux", and Edge/Opera also say "Chrome".
export function browserName(ua) {
  const browser = [
    [/Edg(A|iOS)?\//, "Edge"],
    [/OPR\//, "Opera"],
    [/(Firefox|FxiOS)\//, "Firefox"],
    [/(Chrome|Chromium|CriOS)\//, "Chrome"],
    [/Safari\//, "Safari"],
  ].find(([pattern]) => pattern.test(ua));
  const os = [
    [/iPhone|iPad|iPod/, "iOS"],
    [/Android/, "Android"],
    [/CrOS/, "ChromeOS"],
    [/Mac OS X|Macintosh/, "macOS"],
    [/Windows/, "Windows"],
    [/Linux/, "Linux"],
  ].find(([pattern]) => pattern.test(ua));
  const name = browser ? browser[1] : "Web browser";
  return os ? `${name} on ${os[1]}` : name;
}

// Which icon a session gets: an app's platform; for a web browser the system it runs on, from what it
// is named (this page names itself after the user agent, "Chrome on Android") or its model, so a
// browser on a phone shows a phone.
export function deviceKind(session) {
  if (session.deviceType === "IOS" || session.deviceType === "ANDROID") return session.deviceType;
  const said = `${session.deviceName ?? ""} ${session.model ?? ""}`;
  if (/\bAndroid\b/i.test(said)) return "ANDROID";
  if (/\b(iOS|iPhone|iPad|iPod)/i.test(said)) return "IOS";
  return "WEB";
}

const PLATFORMS = { WEB: "Web browser", IOS: "iPhone or iPad app", ANDROID: "Android app" };

export function platformLabel(session) {
  const label = PLATFORMS[session.deviceType] ?? "Unknown platform";
  return session.model ? `${label} · ${session.model}` : label;
}

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const STEPS = [
  // [below this many seconds, unit, seconds per unit]
  [45 * 60, "minute", 60],
  [22 * 3600, "hour", 3600],
  [7 * 86400, "day", 86400],
  [30 * 86400, "week", 7 * 86400],
  [365 * 86400, "month", 30 * 86400],
  [Infinity, "year", 365 * 86400],
];

// "just now", "5 minutes ago", "yesterday", "3 weeks ago".
export function timeAgo(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "at an unknown time";
  const seconds = Math.max(0, (now - at) / 1000);
  if (seconds < 45) return "just now";
  const [, unit, size] = STEPS.find(([limit]) => seconds < limit);
  return relative.format(-Math.max(1, Math.round(seconds / size)), unit);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatDate(iso) {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? "an unknown date" : dateTime.format(at);
}
