/**
 * Web Push in the page: subscribing with the app's VAPID key (from the welcome), keeping the
 * subscription so that every hello carries it, and leaving the service worker (sw.ts) what it
 * needs to report notifications shown and opened without a WebSocket.
 */

import { type CursorStorage, safeGet, safeSet } from "./storage.js";

/** The part of `PushSubscription` the SDK uses. */
export interface PushSubscriptionLike {
  readonly options?: { readonly applicationServerKey?: ArrayBuffer | null };
  toJSON(): unknown;
  unsubscribe(): Promise<boolean>;
}

/** The part of `PushManager` the SDK uses. */
export interface PushManagerLike {
  getSubscription(): Promise<PushSubscriptionLike | null>;
  subscribe(options: {
    userVisibleOnly: boolean;
    applicationServerKey: Uint8Array<ArrayBuffer>;
  }): Promise<PushSubscriptionLike>;
}

/** The part of `ServiceWorkerRegistration` the SDK uses. */
export interface PushRegistrationLike {
  readonly pushManager: PushManagerLike;
}

/** What the service worker needs to report to herald; kept where both can read it. */
export interface WorkerConfig {
  /** herald's HTTP base URL, e.g. `https://push.example.com`. */
  url: string;
  /** The client token of the page's last hello. */
  token: string;
  device: string;
}

/** The part of `CacheStorage` the page and the worker share the config through. */
export interface CacheStorageLike {
  open(name: string): Promise<{
    put(request: string, response: Response): Promise<void>;
    match(request: string): Promise<{ json(): Promise<unknown> } | undefined>;
  }>;
  delete(name: string): Promise<boolean>;
}

// Cache Storage, unlike localStorage, is readable from a service worker. The key is an absolute
// URL that is never fetched, so the page and the worker (at another path) name the same entry.
const CONFIG_CACHE = "herald-client";
const CONFIG_KEY = "https://herald-client.invalid/worker-config";

function subscriptionKey(device: string): string {
  return `herald:webpush:${device}`;
}

/** The subscription JSON kept for `device`, if it subscribed. */
export function loadSubscription(storage: CursorStorage, device: string): string | undefined {
  return safeGet(storage, subscriptionKey(device)) || undefined;
}

/** Keeps (or, with `undefined`, forgets) the subscription JSON of `device`. */
export function saveSubscription(
  storage: CursorStorage,
  device: string,
  subscription: string | undefined,
): void {
  safeSet(storage, subscriptionKey(device), subscription ?? "");
}

/** base64url (padding optional) to bytes, as `applicationServerKey` takes the VAPID key. */
export function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function sameBytes(a: ArrayBuffer, b: Uint8Array<ArrayBuffer>): boolean {
  const left = new Uint8Array(a);
  return left.length === b.length && left.every((byte, i) => byte === b[i]);
}

/**
 * Subscribes the registration with `key` (base64url) and gives the subscription's JSON text.
 * An existing subscription made with the same key is reused; one made with another key (the
 * app's keys changed) is dropped first, since `subscribe` refuses to replace it.
 */
export async function subscribe(registration: PushRegistrationLike, key: string): Promise<string> {
  const applicationServerKey = decodeBase64Url(key);
  const manager = registration.pushManager;
  const existing = await manager.getSubscription();
  const madeWith = existing?.options?.applicationServerKey;
  if (existing && madeWith && sameBytes(madeWith, applicationServerKey)) {
    return subscriptionToken(existing);
  }
  await existing?.unsubscribe();
  const subscription = await manager.subscribe({ userVisibleOnly: true, applicationServerKey });
  return subscriptionToken(subscription);
}

/**
 * The subscription as herald keeps it: `endpoint`, then `keys` (`p256dh`, `auth`), nothing else.
 * Every hello sends it, and one equal to what the server stored is not parsed again.
 */
function subscriptionToken(subscription: PushSubscriptionLike): string {
  const json = subscription.toJSON() as {
    endpoint?: unknown;
    keys?: { p256dh?: unknown; auth?: unknown };
  };
  const keys = { p256dh: json.keys?.p256dh, auth: json.keys?.auth };
  return JSON.stringify({ endpoint: json.endpoint, keys });
}

/** Ends the registration's subscription, if it has one; whether there was one. */
export async function unsubscribe(registration: PushRegistrationLike): Promise<boolean> {
  const existing = await registration.pushManager.getSubscription();
  return existing ? existing.unsubscribe() : false;
}

/** The global `caches` of browsers; undefined elsewhere (Node), where there is no worker. */
export function globalCaches(): CacheStorageLike | undefined {
  return (globalThis as { caches?: CacheStorageLike }).caches;
}

export async function saveWorkerConfig(
  caches: CacheStorageLike | undefined,
  config: WorkerConfig,
): Promise<void> {
  if (!caches) return;
  const cache = await caches.open(CONFIG_CACHE);
  const body = JSON.stringify(config);
  await cache.put(CONFIG_KEY, new Response(body, { headers: { "content-type": "application/json" } }));
}

export async function loadWorkerConfig(
  caches: CacheStorageLike | undefined,
): Promise<WorkerConfig | undefined> {
  if (!caches) return undefined;
  const cache = await caches.open(CONFIG_CACHE);
  const stored = await cache.match(CONFIG_KEY);
  if (!stored) return undefined;
  const config = (await stored.json()) as Partial<WorkerConfig>;
  const { url, token, device } = config;
  return typeof url === "string" && typeof token === "string" && typeof device === "string"
    ? { url, token, device }
    : undefined;
}

export async function clearWorkerConfig(caches: CacheStorageLike | undefined): Promise<void> {
  await caches?.delete(CONFIG_CACHE);
}

/**
 * herald's HTTP base URL from the URL the client connects to: `wss://host/v1/connect` gives
 * `https://host`; a prefix before `/v1/connect` (a reverse proxy's path) is kept.
 */
export function httpBase(connectUrl: string): string {
  const parsed = new URL(connectUrl);
  if (parsed.protocol === "ws:") parsed.protocol = "http:";
  if (parsed.protocol === "wss:") parsed.protocol = "https:";
  const prefix = parsed.pathname.replace(/\/v1\/connect\/?$/, "").replace(/\/$/, "");
  return `${parsed.origin}${prefix}`;
}
