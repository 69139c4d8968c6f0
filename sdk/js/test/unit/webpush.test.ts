import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { MemoryStorage } from "../../src/index.js";
import {
  install,
  onNotificationClick,
  onPush,
  parsePayload,
  type WindowClientLike,
  type WorkerScope,
} from "../../src/sw.js";
import {
  type CacheStorageLike,
  decodeBase64Url,
  httpBase,
  loadWorkerConfig,
  saveWorkerConfig,
} from "../../src/webpush.js";
import { FakeWebSocket } from "../support/fake-websocket.js";
import { client, settle } from "../support/unit-client.js";
import { FakePushManager, fakeCaches, KEY, OTHER_KEY } from "../support/webpush-fakes.js";

/** Opens and welcomes; `null`: the app has no Web Push credentials. */
function welcome(socket: FakeWebSocket, key: string | null = KEY): void {
  socket.open();
  socket.receive({
    type: "welcome",
    session_id: "s-1",
    server_time: "2026-01-01T00:00:00Z",
    heartbeat_secs: 30,
    resume_from: 0,
    ...(key === null ? {} : { webpush_key: key }),
  });
}

function helloToken(socket: FakeWebSocket): unknown {
  return socket.framesOfType("hello")[0]?.vendor_token;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("subscribeWebPush", () => {
  it("subscribes with the welcome's key and says hello again with the subscription", async () => {
    const caches = fakeCaches();
    const herald = client({ url: "https://herald.test/base", caches });
    const connected: unknown[] = [];
    herald.on("connected", (event) => connected.push(event.webpushKey));
    const pushManager = new FakePushManager();
    await settle();
    const first = FakeWebSocket.last();
    expect(helloToken(first)).toBeUndefined();
    // Asked before the welcome: waits for its key.
    const subscribed = herald.subscribeWebPush({ pushManager });
    welcome(first);
    const token = await subscribed;
    await settle();

    expect(pushManager.subscribeCalls).toHaveLength(1);
    const call = pushManager.subscribeCalls[0];
    expect(call?.userVisibleOnly).toBe(true);
    expect(call?.applicationServerKey).toEqual(decodeBase64Url(KEY));
    expect(token.kind).toBe("webpush");
    // In the form the server keeps, so that a reconnect's hello equals what is stored.
    expect(token.token).toBe(
      JSON.stringify({
        endpoint: "https://push.example/send/1",
        keys: { p256dh: KEY, auth: "BTBZMqHH6r4Tts7J_aSIgg" },
      }),
    );
    expect(first.closedWith?.code).toBe(1000);
    expect(FakeWebSocket.made).toHaveLength(2);
    const second = FakeWebSocket.last();
    await settle();
    welcome(second);
    expect(helloToken(second)).toEqual(token);
    expect(connected).toEqual([KEY, KEY]);
    // The worker can report with the hello's token, for this device, to the HTTP base URL.
    expect(await loadWorkerConfig(caches)).toEqual({
      url: "https://herald.test/base",
      token: "t-1",
      device: "d-1",
    });
    herald.close();
  });

  it("keeps the subscription for the hellos of later pages", async () => {
    const storage = new MemoryStorage();
    const herald = client({ storage, caches: fakeCaches() });
    await settle();
    welcome(FakeWebSocket.last());
    const token = await herald.subscribeWebPush({ pushManager: new FakePushManager() });
    herald.close();

    const reloaded = client({ storage, caches: fakeCaches() });
    await settle();
    FakeWebSocket.last().open();
    expect(helloToken(FakeWebSocket.last())).toEqual(token);
    reloaded.close();
  });

  it("reuses a subscription made with the same key and replaces one made with another", async () => {
    const pushManager = new FakePushManager();
    const herald = client({ caches: fakeCaches() });
    await settle();
    welcome(FakeWebSocket.last(), OTHER_KEY);
    const old = await herald.subscribeWebPush({ pushManager });
    await settle();
    welcome(FakeWebSocket.last(), OTHER_KEY);
    const same = await herald.subscribeWebPush({ pushManager });
    expect(same).toEqual(old);
    expect(pushManager.subscribeCalls).toHaveLength(1);
    const sockets = FakeWebSocket.made.length;
    expect(sockets).toBe(2);

    // The app's keys changed: the old subscription cannot be kept.
    FakeWebSocket.last().serverClose(1001, "restart");
    await vi.advanceTimersByTimeAsync(100);
    welcome(FakeWebSocket.last(), KEY);
    const renewed = await herald.subscribeWebPush({ pushManager });
    expect(pushManager.subscribeCalls).toHaveLength(2);
    expect(renewed).not.toEqual(old);
    herald.close();
  });

  it("rejects when the app has no Web Push, and forgets a subscription the user revoked", async () => {
    const storage = new MemoryStorage();
    const herald = client({ storage, caches: fakeCaches() });
    await settle();
    welcome(FakeWebSocket.last(), null);
    await expect(herald.subscribeWebPush({ pushManager: new FakePushManager() })).rejects.toThrow(
      /no Web Push credentials/,
    );
    herald.close();

    const withKey = client({ storage, caches: fakeCaches() });
    await settle();
    welcome(FakeWebSocket.last());
    await withKey.subscribeWebPush({ pushManager: new FakePushManager() });
    await settle();
    welcome(FakeWebSocket.last());
    const revoked = new FakePushManager();
    revoked.refuse = true;
    await expect(withKey.subscribeWebPush({ pushManager: revoked })).rejects.toThrow(
      /permission denied/,
    );
    await settle();
    FakeWebSocket.last().open();
    expect(helloToken(FakeWebSocket.last())).toBeUndefined();
    withKey.close();
  });

  it("unsubscribeWebPush ends the subscription and removes it from the device", async () => {
    const caches = fakeCaches();
    const pushManager = new FakePushManager();
    const herald = client({ caches });
    await settle();
    welcome(FakeWebSocket.last());
    await herald.subscribeWebPush({ pushManager });
    await settle();
    welcome(FakeWebSocket.last());
    await herald.unsubscribeWebPush();
    expect(pushManager.current).toBeUndefined();
    expect(await loadWorkerConfig(caches)).toBeUndefined();
    await settle();
    FakeWebSocket.last().open();
    expect(helloToken(FakeWebSocket.last())).toBeUndefined();
    herald.close();
  });
});

describe("httpBase", () => {
  it("turns the connect URL into herald's HTTP base", () => {
    expect(httpBase("wss://push.example.com/v1/connect")).toBe("https://push.example.com");
    expect(httpBase("ws://127.0.0.1:8080/herald/v1/connect")).toBe("http://127.0.0.1:8080/herald");
  });
});

/** A service worker scope that records what the worker does. */
function workerScope(caches: CacheStorageLike, windows: WindowClientLike[] = []) {
  const shown: Array<{ title: string; options: unknown }> = [];
  const fetched: Array<{ url: string; init: RequestInit }> = [];
  const opened: string[] = [];
  const listeners = new Map<string, (event: never) => void>();
  const scope: WorkerScope = {
    registration: {
      scope: "https://shop.example/",
      async showNotification(title, options) {
        shown.push({ title, options });
      },
    },
    clients: {
      async matchAll() {
        return windows;
      },
      async openWindow(url) {
        opened.push(url);
        return undefined;
      },
    },
    caches,
    async fetch(url, init) {
      fetched.push({ url, init });
      return { ok: true, status: 204 };
    },
    addEventListener(type, listener) {
      listeners.set(type, listener);
    },
  };
  return { scope, shown, fetched, opened, listeners };
}

describe("service worker", () => {
  const config = { url: "https://push.example.com", token: "tok", device: "d-1" };

  it("shows the notification and reports it shown", async () => {
    const caches = fakeCaches();
    await saveWorkerConfig(caches, config);
    const { scope, shown, fetched } = workerScope(caches);
    const payload = parsePayload({
      json: () => ({ title: "Sale", body: "50% off", tag: "sale", herald_push_id: "p-1" }),
    });
    await onPush(scope, payload);
    expect(shown).toEqual([
      {
        title: "Sale",
        options: { body: "50% off", image: undefined, tag: "sale", data: { pushId: "p-1" } },
      },
    ]);
    expect(fetched).toHaveLength(1);
    const [report] = fetched;
    expect(report?.url).toBe("https://push.example.com/v1/client/delivered");
    expect(report?.init.credentials).toBe("omit");
    expect(report?.init.headers).toMatchObject({ authorization: "Bearer tok" });
    expect(JSON.parse(String(report?.init.body))).toEqual({ push_id: "p-1", device_id: "d-1" });
  });

  it("focuses the page on a click, or opens it, and reports the open", async () => {
    const caches = fakeCaches();
    await saveWorkerConfig(caches, config);
    const focus = vi.fn(async () => undefined);
    const page = { url: "https://shop.example/cart", focus };
    const withPage = workerScope(caches, [page]);
    const closed = vi.fn();
    await onNotificationClick(withPage.scope, { data: { pushId: "p-1" }, close: closed });
    expect(closed).toHaveBeenCalled();
    expect(focus).toHaveBeenCalled();
    expect(withPage.opened).toEqual([]);
    expect(withPage.fetched[0]?.url).toBe("https://push.example.com/v1/client/opened");

    const without = workerScope(caches);
    await onNotificationClick(without.scope, { data: { pushId: "p-1" }, close: () => {} });
    expect(without.opened).toEqual(["https://shop.example/"]);
  });

  it("shows a message it cannot read and reports nothing without a config", async () => {
    const { scope, shown, fetched, listeners } = workerScope(fakeCaches());
    install(scope);
    expect([...listeners.keys()]).toEqual(["push", "notificationclick"]);
    const work: Array<Promise<unknown>> = [];
    const push = listeners.get("push") as unknown as (event: unknown) => void;
    push({
      data: {
        json: () => {
          throw new SyntaxError("not JSON");
        },
      },
      waitUntil: (p: Promise<unknown>) => work.push(p),
    });
    await Promise.all(work);
    // Browsers require a notification for every message: an empty one rather than none.
    expect(shown).toEqual([{ title: "", options: { data: {} } }]);
    expect(fetched).toEqual([]);
  });
});
