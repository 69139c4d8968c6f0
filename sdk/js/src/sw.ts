/**
 * herald's service worker (built to `dist/herald-sw.js`): shows the notification of a Web Push
 * message, reports it shown, and on a click focuses or opens the page and reports the open.
 * Reports go to `POST /v1/client/delivered` and `/v1/client/opened` with the client token the
 * page left in Cache Storage (webpush.ts); a worker has no WebSocket of its own.
 *
 * Serve it from the path whose pages it should control, e.g. `/herald-sw.js`. An app with a
 * worker of its own can `importScripts("/herald-sw.js")` from it instead.
 */

import { type CacheStorageLike, loadWorkerConfig, type WorkerConfig } from "./webpush.js";

/** The decrypted Web Push payload herald sends. */
export interface WebPushPayload {
  title?: string;
  body?: string;
  image?: string;
  /** The collapse id: a newer notification with the same tag replaces the older one. */
  tag?: string;
  herald_push_id?: string;
}

/** What a shown notification carries back to its click. */
interface NotificationData {
  pushId?: string;
}

export interface NotificationLike {
  readonly data: unknown;
  close(): void;
}

export interface WindowClientLike {
  readonly url: string;
  focus(): Promise<unknown>;
}

/** The part of `ServiceWorkerGlobalScope` the worker uses, so tests can pass a fake one. */
export interface WorkerScope {
  readonly registration: {
    readonly scope: string;
    showNotification(
      title: string,
      options: { body?: string; image?: string; tag?: string; data?: NotificationData },
    ): Promise<void>;
  };
  readonly clients: {
    matchAll(options: { type: "window"; includeUncontrolled: boolean }): Promise<
      readonly WindowClientLike[]
    >;
    openWindow(url: string): Promise<unknown>;
  };
  readonly caches?: CacheStorageLike;
  fetch(url: string, init: RequestInit): Promise<{ ok: boolean; status: number }>;
  addEventListener(type: string, listener: (event: never) => void): void;
}

interface ExtendableEvent {
  waitUntil(work: Promise<unknown>): void;
}

interface PushEvent extends ExtendableEvent {
  readonly data: { json(): unknown } | null;
}

interface NotificationEvent extends ExtendableEvent {
  readonly notification: NotificationLike;
}

/** Reads the payload; a message that is not herald's JSON shows nothing of it. */
export function parsePayload(data: { json(): unknown } | null): WebPushPayload {
  try {
    const value = data?.json();
    return typeof value === "object" && value !== null ? (value as WebPushPayload) : {};
  } catch {
    return {};
  }
}

/** Shows the notification of one message and reports it shown. */
export async function onPush(scope: WorkerScope, payload: WebPushPayload): Promise<void> {
  const pushId = payload.herald_push_id;
  // Browsers require a notification for every message (`userVisibleOnly`): always show one.
  await scope.registration.showNotification(payload.title ?? "", {
    body: payload.body,
    image: payload.image,
    tag: payload.tag,
    data: { pushId },
  });
  if (pushId) await report(scope, "delivered", pushId);
}

/** Focuses a window of the app (or opens one) and reports the open. */
export async function onNotificationClick(
  scope: WorkerScope,
  notification: NotificationLike,
): Promise<void> {
  notification.close();
  const { pushId } = (notification.data ?? {}) as NotificationData;
  const windows = await scope.clients.matchAll({ type: "window", includeUncontrolled: true });
  const page = windows.find((client) => client.url.startsWith(scope.registration.scope));
  await (page ? page.focus() : scope.clients.openWindow(scope.registration.scope));
  if (pushId) await report(scope, "opened", pushId);
}

/**
 * Posts one report. Failures are swallowed: the notification was shown or opened whatever the
 * network says, and a worker has nobody to tell.
 */
export async function report(
  scope: WorkerScope,
  what: "delivered" | "opened",
  pushId: string,
): Promise<boolean> {
  let config: WorkerConfig | undefined;
  try {
    config = await loadWorkerConfig(scope.caches);
  } catch {
    return false;
  }
  if (!config) return false;
  try {
    const response = await scope.fetch(`${config.url}/v1/client/${what}`, {
      method: "POST",
      // The token is the credential; cookies of the page's origin are never sent along.
      credentials: "omit",
      mode: "cors",
      headers: { authorization: `Bearer ${config.token}`, "content-type": "application/json" },
      body: JSON.stringify({ push_id: pushId, device_id: config.device }),
    });
    return response.ok;
  } catch {
    return false;
  }
}

/** Handles `push` and `notificationclick` in `scope`. */
export function install(scope: WorkerScope): void {
  scope.addEventListener("push", (event: PushEvent) => {
    event.waitUntil(onPush(scope, parsePayload(event.data)));
  });
  scope.addEventListener("notificationclick", (event: NotificationEvent) => {
    event.waitUntil(onNotificationClick(scope, event.notification));
  });
}

/** Whether this runs as a service worker (and not, say, imported by a test). */
function isWorkerScope(scope: unknown): scope is WorkerScope {
  const candidate = scope as Partial<WorkerScope> & { skipWaiting?: unknown };
  return (
    typeof candidate.skipWaiting === "function" &&
    typeof candidate.registration === "object" &&
    typeof candidate.clients === "object"
  );
}

const scope: unknown = globalThis;
if (isWorkerScope(scope)) install(scope);
