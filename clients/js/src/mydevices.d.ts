// Type declarations for mydevices.js (hand-written; the module itself is plain JavaScript).

export interface StorageAdapter {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface AsyncStorageLike {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export function memoryStorage(): StorageAdapter;
export function browserStorage(webStorage?: WebStorageLike): StorageAdapter;
export function reactNativeStorage(asyncStorage: AsyncStorageLike): StorageAdapter;

export type Platform = "ios" | "android" | "web";

export interface DeviceDescription {
  /** Required by the API (400 "device.name is required" without it), e.g. "Pixel 8" or "Chrome on macOS". */
  name: string;
  model?: string;
  platform: Platform;
  osVersion?: string;
  appVersion?: string;
}

export interface DeviceSession {
  sessionId: string;
  deviceName: string | null;
  deviceType: "IOS" | "ANDROID" | "WEB";
  model: string | null;
  osVersion: string | null;
  appVersion: string | null;
  location: string | null;
  lastActiveAt: string;
  createdAt: string;
  isCurrentDevice: boolean;
  canClose?: boolean;
}

export interface SessionList {
  sessions: DeviceSession[];
  closeOthersAllowedAt: string | null;
}

export interface PendingAlert {
  newSessionId: string;
  deviceName: string | null;
  deviceType: string | null;
  location: string | null;
  title: string;
  text: string;
  locKey: string;
  locArgs: string[];
  createdAt: string;
  expiresAt: string;
  actionToken: string;
}

export interface AlertAnswer {
  answer: "yes" | "no";
  sessionId: string;
  status: "active" | "revoked";
  closedSessionIds?: string[];
  advice?: "change_password";
}

export interface ForceLogoutEvent {
  type: "forceLogout";
  sessionId: string;
  reason: string;
  /** Set by handlePush: whether it is about this device's current session (else ignore it). */
  isCurrentSession?: boolean;
}

export interface NewLoginAlertEvent {
  type: "newLoginAlert";
  sessionId: string | null;
  newSessionId: string;
  actionToken: string;
  title: string;
  text: string;
  locKey: string | null;
  locArgs: string[];
  deviceName: string | null;
  location: string | null;
  expiresAt: string | null;
  isCurrentSession?: boolean;
}

export type PushEvent = ForceLogoutEvent | NewLoginAlertEvent;

export type SignedOutReason =
  | "session_revoked" | "token_reused" | "reauthentication_required" | "invalid_token" | "unknown_device"
  | "unauthenticated" | "token_expired" | "force_logout" | "logout" | (string & {});

export interface SignedOutDetails {
  source: "api" | "push" | "logout";
  status?: number;
  error?: MyDevicesError;
  pushReason?: string;
}

export type SignedOutListener = (reason: SignedOutReason, details: SignedOutDetails) => void;

export class MyDevicesError extends Error {
  constructor(status: number, code: string, message: string,
              options?: { retryAfter?: number | null; details?: Record<string, unknown> | null });
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | null;
  readonly details: Record<string, unknown> | null;
}

export interface ClientOptions {
  /** The API's origin, e.g. "https://api.example.com"; "" (default) is the page's own origin. */
  baseUrl?: string;
  /** "bearer" (default: mobile, Node) keeps the tokens in `storage`; "cookie" leaves them to HttpOnly cookies. */
  credentials?: "bearer" | "cookie";
  storage?: StorageAdapter;
  fetch?: typeof fetch;
  onSignedOut?: SignedOutListener;
  /** Use Web Locks (when the platform has them) so one tab refreshes for all. Default true. */
  crossTabLock?: boolean;
}

export interface LoginOptions {
  idToken: string;
  device: DeviceDescription;
  push?: { token: string; provider: "fcm" };
  firebaseCustomToken?: boolean;
}

export class MyDevicesClient {
  constructor(options?: ClientOptions);
  onSignedOut(listener: SignedOutListener): () => void;
  session(): Promise<{ sessionId: string | null; deviceId: string | null; accessTokenExpiresAt: number | null; signedIn: boolean }>;
  login(options: LoginOptions): Promise<{ session: DeviceSession; firebaseCustomToken: string | null }>;
  /** Cookie mode, after a page load: this browser's session, or null when it holds none (asked with
   *  GET /v1/sessions/cookies first, so a signed-out load makes no call that fails). */
  resume(): Promise<DeviceSession | null>;
  current(): Promise<DeviceSession>;
  listSessions(): Promise<SessionList>;
  closeSession(sessionId: string): Promise<{ sessionId: string; revoked: true }>;
  revokeOthers(): Promise<{ revoked: number }>;
  updatePushToken(token: string, provider?: "fcm"): Promise<{ updated: true }>;
  pendingAlerts(): Promise<PendingAlert[]>;
  respondToAlert(actionToken: string, answer: "yes" | "no"): Promise<AlertAnswer>;
  logout(): Promise<void>;
  handlePush(data: Record<string, string> | null | undefined): Promise<PushEvent | null>;
}

export function parsePushData(data: Record<string, string> | null | undefined): PushEvent | null;
