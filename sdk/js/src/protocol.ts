/**
 * The herald client protocol, version 1, as JSON text frames (docs/protocol.md). Member names
 * are the wire's own, exactly as the server's serde types spell them.
 */

export const PROTOCOL_VERSION = 1;

/** Any JSON value: the app's custom message is one. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `webpush`: the token is a browser's `PushSubscription` JSON, as a string. */
export type VendorKind = "apns" | "fcm" | "webpush";

export interface VendorToken {
  kind: VendorKind;
  token: string;
}

export interface HelloFrame {
  type: "hello";
  v: number;
  token: string;
  device_id: string;
  platform: string;
  package: string;
  vendor_token?: VendorToken;
  /** Highest seq acked cumulatively; the server resumes after max(this, its stored cursor). */
  last_seq: number;
  app_version?: string;
  locale?: string;
  time_zone?: string;
}

export type ClientFrame =
  | HelloFrame
  | { type: "ack"; up_to: number }
  | { type: "opened"; push_id: string }
  | { type: "ping" };

export interface WelcomeFrame {
  type: "welcome";
  session_id: string;
  server_time: string;
  heartbeat_secs: number;
  resume_from: number;
  /** The app's VAPID public key (base64url), when it can send Web Push. */
  webpush_key?: string;
}

export interface PushFrame {
  type: "push";
  push_id: string;
  seq: number;
  sender?: string;
  message: Json;
  notification?: { [key: string]: Json };
  sent_at: string;
  expires_at?: string;
}

export interface RecallFrame {
  type: "recall";
  push_id: string;
  seq: number;
}

export interface ErrorFrame {
  type: "error";
  /** `unauthorized`, `unknown_seq`, …; a newer server may send codes this SDK does not know. */
  code: string;
  message: string;
}

export type ServerFrame =
  | WelcomeFrame
  | PushFrame
  | RecallFrame
  | { type: "pong" }
  | ErrorFrame;

export function encodeFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

/**
 * Reads one text frame from the server. Returns null for anything this SDK cannot use: a frame
 * type added by a newer server is skipped, as the protocol asks of clients.
 */
export function decodeServerFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  switch (value.type) {
    case "welcome":
      return isNumber(value.heartbeat_secs) && isNumber(value.resume_from)
        ? (value as unknown as WelcomeFrame)
        : null;
    case "push":
      return typeof value.push_id === "string" && isSeq(value.seq)
        ? (value as unknown as PushFrame)
        : null;
    case "recall":
      return typeof value.push_id === "string" && isSeq(value.seq)
        ? (value as unknown as RecallFrame)
        : null;
    case "pong":
      return { type: "pong" };
    case "error":
      return typeof value.code === "string" ? (value as unknown as ErrorFrame) : null;
    default:
      return null;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** WebSocket close codes herald uses. */
export const CloseCode = {
  Normal: 1000,
  ShuttingDown: 1001,
  Internal: 1011,
  Unauthorized: 4001,
  ProtocolViolation: 4002,
  HelloTimeout: 4003,
  FrameTooLarge: 4004,
  UnsupportedVersion: 4005,
  Refused: 4006,
  IdleTimeout: 4008,
  TooSlow: 4009,
  Replaced: 4010,
  Evicted: 4011,
} as const;

/** What a client does after a close: reconnect, reconnect with a new token, wait long, or stop. */
export type Retry = "reconnect" | "new_token" | "reconnect_later" | "stop";

/**
 * The client's answer to a close code (the table in docs/protocol.md). `undefined` is a lost
 * connection without a close frame, or one that never opened: reconnect.
 */
export function retryAfterClose(code: number | undefined): Retry {
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.Replaced:
    // A client that broke the protocol or speaks another version would do so again.
    case CloseCode.ProtocolViolation:
    case CloseCode.UnsupportedVersion:
      return "stop";
    case CloseCode.Unauthorized:
      return "new_token";
    case CloseCode.Refused:
      return "reconnect_later";
    default:
      return "reconnect";
  }
}
