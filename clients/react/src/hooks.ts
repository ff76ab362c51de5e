// React bindings for My Devices: a provider over a MyDevicesClient and hooks over its calls.
// No DOM in here (only React itself), so the hooks serve React Native as they serve the web.

import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, type ReactNode } from "react";
import { MyDevicesError } from "@mydevices/client";
import type { ActivityEntry, ActivityPage, AlertAnswer, ClosedSession, DeviceSession, ListedSession, MyDevicesClient, PendingAlert, RevokedOthers,
  SignedOutListener } from "@mydevices/client";

const ClientContext = createContext<MyDevicesClient | null>(null);

/** Makes `client` the one the hooks below use. */
export function MyDevicesProvider({ client, children }: { client: MyDevicesClient; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The provider's client (throws outside a MyDevicesProvider). */
export function useMyDevicesClient(): MyDevicesClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error("useMyDevicesClient: wrap the tree in <MyDevicesProvider client={...}>");
  return client;
}

/** What a loading hook holds: its data (null until the first answer), the last error (null after a
 *  success), whether a call is under way, and `refresh()` to ask again now. */
export interface Loaded<T> {
  data: T | null;
  error: MyDevicesError | null;
  loading: boolean;
  refresh: () => Promise<void>;
}

const asError = (error: unknown): MyDevicesError =>
  error instanceof MyDevicesError ? error : new MyDevicesError(0, "network", String(error));

/** Calls `load` now and every `pollMs` (0: once, and on refresh()); stops when unmounted. */
function useLoaded<T>(load: () => Promise<T>, pollMs: number): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: MyDevicesError | null; loading: boolean }>(
    { data: null, error: null, loading: true });
  const mounted = useRef(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const refresh = useCallback(async () => {
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await loadRef.current();
      if (mounted.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mounted.current) setState((s) => ({ data: s.data, error: asError(error), loading: false }));
    }
  }, []);
  useEffect(() => {
    mounted.current = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      await refresh();
      if (mounted.current && pollMs > 0) timer = setTimeout(tick, pollMs);
    };
    void tick();
    return () => { mounted.current = false; if (timer) clearTimeout(timer); };
  }, [refresh, pollMs]);
  return { ...state, refresh };
}

export interface SessionsState extends Loaded<{ sessions: ListedSession[]; closeOthersAllowedAt: string | null }> {
  /** This user's active sessions, this device's first (empty until loaded). */
  sessions: ListedSession[];
  /** Null when this session may close others; else from when (ISO 8601). */
  closeOthersAllowedAt: string | null;
  /** Close another session (rejects with `session_too_new`, `cannot_revoke_current`...), then reload. */
  close: (sessionId: string) => Promise<ClosedSession>;
  /** Close every other session, then reload. */
  closeOthers: () => Promise<RevokedOthers>;
}

/** The session list (`GET /v1/sessions`), polled every `pollMs` if given. */
export function useSessions({ pollMs = 0 }: { pollMs?: number } = {}): SessionsState {
  const client = useMyDevicesClient();
  const loaded = useLoaded(() => client.listSessions(), pollMs);
  const { refresh } = loaded;
  const close = useCallback(async (sessionId: string) => {
    try { return await client.closeSession(sessionId); } finally { await refresh(); }
  }, [client, refresh]);
  const closeOthers = useCallback(async () => {
    try { return await client.revokeOthers(); } finally { await refresh(); }
  }, [client, refresh]);
  return { ...loaded, sessions: loaded.data?.sessions ?? [], closeOthersAllowedAt: loaded.data?.closeOthersAllowedAt ?? null,
    close, closeOthers };
}

/** This device's session (`GET /v1/sessions/current`). */
export function useCurrentSession({ pollMs = 0 }: { pollMs?: number } = {}): Loaded<DeviceSession> & { session: DeviceSession | null } {
  const client = useMyDevicesClient();
  const loaded = useLoaded(() => client.current(), pollMs);
  return { ...loaded, session: loaded.data };
}

export interface AlertsState extends Loaded<PendingAlert[]> {
  alerts: PendingAlert[];
  /** Answer a "Was that you?" alert ("no" closes the new session), then reload. */
  answer: (alert: PendingAlert | string, answer: "yes" | "no") => Promise<AlertAnswer>;
}

/** The "Was that you?" alerts this session may answer (`GET /v1/alerts`), polled every `pollMs` if given. */
export function usePendingAlerts({ pollMs = 0 }: { pollMs?: number } = {}): AlertsState {
  const client = useMyDevicesClient();
  const loaded = useLoaded(() => client.pendingAlerts(), pollMs);
  const { refresh } = loaded;
  const answer = useCallback(async (alert: PendingAlert | string, reply: "yes" | "no") => {
    try {
      return await client.respondToAlert(typeof alert === "string" ? alert : alert.actionToken, reply);
    } finally {
      await refresh();
    }
  }, [client, refresh]);
  return { ...loaded, alerts: loaded.data ?? [], answer };
}

export interface SecurityActivityState extends Loaded<ActivityPage> {
  /** The user's security activity of the last 30 days, newest first: the first page, then what
   *  `loadMore()` added (each entry once). Show `entry.text` as text. */
  entries: ActivityEntry[];
  /** Whether older entries remain for `loadMore()`. */
  hasMore: boolean;
  /** Load the next older page. */
  loadMore: () => Promise<void>;
}

/** The user's security activity (`GET /v1/activity`, docs/activity.md): `limit` entries a page,
 *  the first page polled every `pollMs` if given (each read costs `limit + 1` document reads: poll
 *  slowly, say every 30 s). */
export function useSecurityActivity({ limit = 20, pollMs = 0 }: { limit?: number; pollMs?: number } = {}):
  SecurityActivityState {
  const client = useMyDevicesClient();
  const loaded = useLoaded(() => client.listActivity({ limit }), pollMs);
  const [older, setOlder] = useState<{ entries: ActivityEntry[]; next: string | null | undefined }>(
    { entries: [], next: undefined });
  const first = loaded.data;
  const next = older.next === undefined ? first?.nextCursor ?? null : older.next;
  const loadMore = useCallback(async () => {
    if (!next) return;
    const page = await client.listActivity({ limit, cursor: next });
    setOlder((o) => ({ entries: [...o.entries, ...page.activity], next: page.nextCursor }));
  }, [client, limit, next]);
  const seen = new Set<string>();
  const entries = [...(first?.activity ?? []), ...older.entries].filter((e) => !seen.has(e.id) && seen.add(e.id));
  return { ...loaded, entries, hasMore: Boolean(next), loadMore };
}

/** Calls `callback(reason, details)` when this device is signed out (closed elsewhere, a copied token,
 *  a force_logout push, logout): show the sign-in screen there. The latest callback is used. */
export function useSignedOut(callback: SignedOutListener): void {
  const client = useMyDevicesClient();
  const latest = useRef(callback);
  latest.current = callback;
  useEffect(() => client.onSignedOut((reason, details) => latest.current(reason, details)), [client]);
}
