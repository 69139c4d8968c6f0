/**
 * The part of the WebSocket API the SDK uses. Browsers' `WebSocket` and the `ws` package of Node
 * both fit, so Node 20 (which has no global WebSocket) passes `ws` in.
 */

// Method syntax makes the event parameter bivariant, so handlers typed for the DOM's events and
// for `ws`'s events both fit these slots.
type Handler<E> = { handle(event: E): void }["handle"];

export interface MessageEventLike {
  data: unknown;
}

export interface CloseEventLike {
  code: number;
  reason: string;
}

export interface WebSocketLike {
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<MessageEventLike> | null;
  onclose: Handler<CloseEventLike> | null;
  onerror: Handler<unknown> | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `readyState` of an open socket, the same in every implementation. */
export const OPEN = 1;

/** The global `WebSocket` of browsers (and Node 22+), if there is one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}

/**
 * The URL of the connect endpoint: `ws(s)://` as given, or from an `http(s)://` base URL. A URL
 * without a path gets `/v1/connect`, so the server's base URL can be passed as it is.
 */
export function connectUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  if (parsed.protocol === "https:") parsed.protocol = "wss:";
  if (parsed.pathname === "" || parsed.pathname === "/") parsed.pathname = "/v1/connect";
  return parsed.toString();
}
