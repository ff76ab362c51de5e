export { MyDevicesProvider, useCurrentSession, useMyDevicesClient, usePendingAlerts, useSessions, useSignedOut } from "./hooks.js";
export type { AlertsState, Loaded, SessionsState } from "./hooks.js";
export { ActiveSessions } from "./ActiveSessions.js";
export type { ActiveSessionsProps } from "./ActiveSessions.js";
