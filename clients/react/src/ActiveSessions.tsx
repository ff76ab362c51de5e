// <ActiveSessions/>: the sessions screen of the web page (infra/hosting/public) as one React component,
// built on the hooks: this device first and marked, not closable; every other device with "Close
// session"; "Sign out from all other sessions" once there is more than one other; a confirmation in
// place before anything is closed; `session_too_new` shown with its time; `recent_sign_in_required`
// answered by a fresh sign-in the app provides (`freshIdToken`) and the close retried once; the "Was
// that you?" alerts with both answers. Plain elements with `mydevices-*` class names: style them as you like.

import { useState } from "react";
import { MyDevicesError } from "@mydevices/client";
import type { ListedSession, PendingAlert, AlertAnswer } from "@mydevices/client";
import { useMyDevicesClient, usePendingAlerts, useSessions } from "./hooks.js";

export interface ActiveSessionsProps {
  /** How often to reload the list and the alerts (ms); the page's 2 s by default, 0 for never. */
  pollMs?: number;
  /** Where "change your password" leads after a "No" (your app's page for it). */
  changePasswordHref?: string;
  /** How a time is shown (default: the browser's locale). */
  formatTime?: (iso: string) => string;
  /** The ID token of a new Firebase sign-in of this user (ask for the password, sign in), for when
   *  closing needs a sign-in within the last `maxAge` seconds (`recent_sign_in_required`, with
   *  MYDEVICES_RECENT_SIGN_IN_SECONDS): the session is re-verified with it and the close retried
   *  once. Reject to cancel. Without it the component says that a recent sign-in is needed. */
  freshIdToken?: (maxAge: number) => Promise<string>;
}

const DEVICE_TYPES: Record<string, string> = { IOS: "iOS", ANDROID: "Android", WEB: "Web browser" };
const defaultFormat = (iso: string) => new Date(iso).toLocaleString();

export function ActiveSessions({ pollMs = 2000, changePasswordHref = "/account", formatTime = defaultFormat,
  freshIdToken }: ActiveSessionsProps) {
  const client = useMyDevicesClient();
  const list = useSessions({ pollMs });
  const alerts = usePendingAlerts({ pollMs });
  const [asking, setAsking] = useState<string | null>(null); // a session id, or "others"
  const [busy, setBusy] = useState(false);
  const [tooNewUntil, setTooNewUntil] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [answered, setAnswered] = useState<AlertAnswer | null>(null);

  const others = list.sessions.filter((s) => !s.isCurrentDevice);
  const allowedAt = tooNewUntil ?? list.closeOthersAllowedAt;

  async function act(work: () => Promise<unknown>) {
    setBusy(true);
    setFailure(null);
    try {
      await (freshIdToken ? client.withRecentSignIn(work, freshIdToken) : work());
      setAsking(null);
    } catch (error) {
      if (error instanceof MyDevicesError && error.code === "session_too_new") {
        setTooNewUntil(String(error.details?.allowedAt ?? ""));
        setAsking(null);
      } else if (error instanceof MyDevicesError && error.code === "recent_sign_in_required") {
        const minutes = Math.round(Number(error.details?.maxAge ?? 0) / 60);
        setFailure(`To close sessions, sign in again first (this needs a sign-in within the last ${minutes} minutes).`);
      } else {
        setFailure(error instanceof MyDevicesError ? `The request failed (${error.code}).` : "Something went wrong.");
      }
    } finally {
      setBusy(false);
    }
  }

  async function reply(alert: PendingAlert, answer: "yes" | "no") {
    setBusy(true);
    try {
      const result = await alerts.answer(alert, answer);
      setAnswered(answer === "no" ? result : null);
      if (answer === "no") await list.refresh();
    } catch (error) {
      setFailure(error instanceof MyDevicesError ? `The request failed (${error.code}).` : "Something went wrong.");
    } finally {
      setBusy(false);
    }
  }

  const confirm = (question: string, yes: string, onYes: () => void) => (
    <span className="mydevices-confirm" role="group" aria-label={question}>
      <span className="mydevices-question">{question}</span>
      <button type="button" className="mydevices-yes" disabled={busy} onClick={onYes}>{yes}</button>
      <button type="button" className="mydevices-cancel" disabled={busy} autoFocus onClick={() => setAsking(null)}
        onKeyDown={(e) => { if (e.key === "Escape") setAsking(null); }}>Cancel</button>
    </span>
  );

  const row = (session: ListedSession) => {
    const name = session.deviceName || "Unnamed device";
    return (
      <li key={session.sessionId} className={session.isCurrentDevice ? "mydevices-session mydevices-current" : "mydevices-session"}
        data-session-id={session.sessionId}>
        <span className="mydevices-device-name">{name}</span>
        {session.isCurrentDevice && <span className="mydevices-badge">This device</span>}
        {session.deviceBound && <span className="mydevices-bound-badge">Device bound</span>}
        <span className="mydevices-platform">{DEVICE_TYPES[session.deviceType] ?? session.deviceType}</span>
        <span className="mydevices-location">{session.location || "Location unknown"}</span>
        <span className="mydevices-last-active">
          {session.isCurrentDevice ? "Active now" : <>Last active <time dateTime={session.lastActiveAt}>{formatTime(session.lastActiveAt)}</time></>}
        </span>
        {!session.isCurrentDevice && (asking === session.sessionId
          ? confirm(`Close the session on “${name}”?`, "Close", () => act(() => list.close(session.sessionId)))
          : <button type="button" className="mydevices-close" aria-label={`Close the session on ${name}`} disabled={busy}
              onClick={() => setAsking(session.sessionId)}>Close session</button>)}
      </li>
    );
  };

  return (
    <section className="mydevices-sessions" aria-busy={list.loading && !list.data}>
      {alerts.alerts.map((alert) => (
        <div key={alert.newSessionId} className="mydevices-alert" role="alert" data-session-id={alert.newSessionId}>
          <p className="mydevices-alert-text">{alert.text}</p>
          <button type="button" className="mydevices-no" disabled={busy} onClick={() => reply(alert, "no")}>No, close this session</button>
          <button type="button" className="mydevices-yes-it-was-me" disabled={busy} onClick={() => reply(alert, "yes")}>Yes, it was me</button>
        </div>
      ))}
      {answered && (
        <p className="mydevices-alert-result" role="status">
          We closed that session.
          {answered.advice === "change_password" && <> If it wasn't you, <a href={changePasswordHref}>change your password</a>.</>}
        </p>
      )}
      {allowedAt && (
        <p className="mydevices-too-new" role="status">
          This device signed in recently: it can close other sessions from{" "}
          <time dateTime={allowedAt}>{formatTime(allowedAt)}</time>.
        </p>
      )}
      {failure && <p className="mydevices-error" role="alert">{failure}</p>}
      {list.error && !list.data && <p className="mydevices-error" role="alert">{`The list could not be loaded (${list.error.code}).`}</p>}
      <ul className="mydevices-list">{list.sessions.map(row)}</ul>
      {others.length > 1 && (asking === "others"
        ? confirm(`Sign out from all ${others.length} other sessions?`, "Sign out all", () => act(() => list.closeOthers()))
        : <button type="button" className="mydevices-close-others" disabled={busy} onClick={() => setAsking("others")}>
            Sign out from all other sessions</button>)}
    </section>
  );
}
