// <SecurityActivity/>: "Recent security activity", to show beside <ActiveSessions/> (as the web page
// does below its device list): the last 30 days of sign-ins, closures and who closed them, copied-token
// incidents and alert answers, newest first, with "Show more" while older entries remain. Each line
// is the server's sentence as a text node (device names and support notes in it are other people's
// text: React escapes it). Plain elements with `mydevices-*` class names.

import { useSecurityActivity } from "./hooks.js";

export interface SecurityActivityProps {
  /** How often to reload the first page (ms); 30 s by default (a read costs `limit + 1` document reads), 0 for never. */
  pollMs?: number;
  /** Entries per page (1-100). */
  limit?: number;
  /** How a time is shown (default: the browser's locale). */
  formatTime?: (iso: string) => string;
}

const defaultFormat = (iso: string) => new Date(iso).toLocaleString();

export function SecurityActivity({ pollMs = 30_000, limit = 20, formatTime = defaultFormat }: SecurityActivityProps) {
  const activity = useSecurityActivity({ limit, pollMs });
  return (
    <section className="mydevices-activity" aria-label="Recent security activity" aria-busy={activity.loading && !activity.data}>
      <h2 className="mydevices-activity-title">Recent security activity</h2>
      {activity.error && !activity.data && (
        <p className="mydevices-error" role="alert">{`The activity could not be loaded (${activity.error.code}).`}</p>)}
      {activity.data && activity.entries.length === 0 && <p className="mydevices-activity-empty">Nothing in the last 30 days.</p>}
      <ul className="mydevices-activity-list">
        {activity.entries.map((entry) => (
          <li key={entry.id} className={`mydevices-activity-entry mydevices-${entry.kind}`} data-entry-id={entry.id}>
            <span className="mydevices-activity-text">{entry.text}</span>{" "}
            <time dateTime={entry.at}>{formatTime(entry.at)}</time>
          </li>
        ))}
      </ul>
      {activity.hasMore && (
        <button type="button" className="mydevices-activity-more" onClick={() => void activity.loadMore()}>Show more</button>)}
    </section>
  );
}
