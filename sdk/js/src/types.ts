/** What the SDK hands to the app: the wire's frames in JavaScript's naming. */

import type { Json } from "./protocol.js";

/** One push as the device received it. */
export interface Push {
  /** Id of the push, the same on every device; pass it to `opened`. */
  pushId: string;
  /** App-wide sequence number; increases with every push of the app, with gaps. */
  seq: number;
  /** Account that sent the push, when the app named one. */
  sender?: string;
  /** The app's custom message: any JSON. */
  message: Json;
  /** The notification, already resolved for this device's platform. */
  notification?: { [key: string]: Json };
  /** RFC 3339 time the push was sent. */
  sentAt: string;
  /** RFC 3339 time after which it is no longer delivered; absent for online-only pushes. */
  expiresAt?: string;
}

/** The app withdrew a push: remove what is shown for it. */
export interface Recall {
  pushId: string;
  seq: number;
}

/** The server reported a problem with something the client sent (an `error` frame). */
export interface ServerError {
  /** `unauthorized`, `refused`, `unknown_seq`, …; newer servers may send other codes. */
  code: string;
  message: string;
}

export interface Connected {
  sessionId: string;
  /** Pushes with a seq above this follow (stored ones first, then live ones). */
  resumeFrom: number;
  heartbeatSecs: number;
  serverTime: string;
  /** The app's VAPID public key, when it can send Web Push (see `subscribeWebPush`). */
  webpushKey?: string;
}

export interface Disconnected {
  /** WebSocket close code; undefined when the connection was lost without one. */
  code?: number;
  reason: string;
  /** When the next attempt is made; undefined when the client stops (state `closed`). */
  retryInMs?: number;
}

/**
 * `connecting` from the socket's opening until the welcome; `connected` after it; `disconnected`
 * while waiting to reconnect; `closed` for good (closed by the app, or the server said not to
 * come back: replaced by a newer connection of this device, a token that cannot be renewed, …).
 */
export type ConnectionState = "disconnected" | "connecting" | "connected" | "closed";

export interface HeraldEvents {
  state: ConnectionState;
  connected: Connected;
  disconnected: Disconnected;
  push: Push;
  recall: Recall;
  serverError: ServerError;
}

export interface Stats {
  /** Connections that got their welcome. */
  connects: number;
  /** Pushes passed on to the app. */
  pushes: number;
  /** Pushes dropped because their seq was already passed on (resent after a reconnect). */
  duplicatesDropped: number;
}
