export { MyDevicesProvider, useCurrentSession, useMyDevicesClient, usePendingAlerts, useSessions, useSignedOut } from "./hooks.js";
export type { AlertsState, Loaded, SessionsState } from "./hooks.js";
export { useSecurityActivity } from "./hooks.js";
export type { SecurityActivityState } from "./hooks.js";
export { SecurityActivity } from "./SecurityActivity.js";
export type { SecurityActivityProps } from "./SecurityActivity.js";
export { ActiveSessions } from "./ActiveSessions.js";
export type { ActiveSessionsProps } from "./ActiveSessions.js";
