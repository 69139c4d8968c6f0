/**
 * herald-client: the browser and Node SDK of herald, a self-hosted broadcast push service.
 * See README.md for the API and docs/protocol.md of the server for the wire protocol.
 */

export { Herald, type HeraldOptions } from "./herald.js";
export type {
  Connected,
  ConnectionState,
  Disconnected,
  HeraldEvents,
  Push,
  Recall,
  ServerError,
  Stats,
} from "./types.js";
export type { Json, VendorKind, VendorToken } from "./protocol.js";
export { CloseCode } from "./protocol.js";
export type { ReconnectPolicy } from "./backoff.js";
export type { AckTiming } from "./acks.js";
export { type CursorStorage, MemoryStorage } from "./storage.js";
export type { GetToken } from "./token.js";
export type { WebSocketConstructor, WebSocketLike } from "./socket.js";
export type {
  CacheStorageLike,
  PushManagerLike,
  PushRegistrationLike,
  PushSubscriptionLike,
} from "./webpush.js";
