/**
 * Web Push with the real `herald` binary: the welcome's key, the subscription registered through
 * the hello, and the service worker's report counted. The browser's PushManager and Cache
 * Storage are stand-ins; the server, its checks and its reports are real.
 */

import { generateKeyPairSync } from "node:crypto";

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { Herald, MemoryStorage } from "../../src/index.js";
import { report, type WorkerScope } from "../../src/sw.js";
import { eventually, nextEvent } from "../support/events.js";
import { type App, HeraldServer, mintToken, stopAllServers } from "../support/server.js";
import { FakePushManager, fakeCaches, KEY } from "../support/webpush-fakes.js";

const clients: Herald[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await stopAllServers();
});

/** A VAPID key pair as `web-push generate-vapid-keys` prints it. */
function vapidKeys(): { private_key: string; public_key: string; subject: string } {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x ?? "", "base64url"),
    Buffer.from(jwk.y ?? "", "base64url"),
  ]);
  return {
    private_key: jwk.d ?? "",
    public_key: point.toString("base64url"),
    subject: "mailto:ops@example.com",
  };
}

/** The vendor token herald keeps for a device, once `ready` holds for it. */
async function storedToken(
  server: HeraldServer,
  app: App,
  device: string,
  ready: (token: unknown) => boolean,
): Promise<unknown> {
  return eventually(async () => {
    const { body } = await server.signed(app, "GET", `/v1/devices/${device}`);
    return ready(body.vendor_token) ? (body.vendor_token ?? null) : undefined;
  });
}

describe("Web Push against a real server", () => {
  it("subscribes with the welcome's key, registers the subscription and counts the worker's open", async () => {
    const server = await HeraldServer.start();
    const app = await server.createApp();
    const keys = vapidKeys();
    const shown = await server.expectOk(server.signed(app, "PUT", "/v1/vendors/webpush", keys));
    expect(shown.public_key).toBe(keys.public_key);

    const caches = fakeCaches();
    const herald = new Herald({
      url: server.base,
      token: mintToken(app, "alice"),
      device: "alice-browser",
      WebSocket,
      storage: new MemoryStorage(),
      caches,
      reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    clients.push(herald);
    const connected = await nextEvent(herald, "connected");
    expect(connected.webpushKey).toBe(keys.public_key);

    const pushManager = new FakePushManager();
    await herald.subscribeWebPush({ pushManager });
    expect(pushManager.subscribeCalls[0]?.applicationServerKey).toEqual(
      new Uint8Array(Buffer.from(keys.public_key, "base64url")),
    );
    const stored = await storedToken(server, app, "alice-browser", (t) => t !== null);
    // Kept in one canonical form: no expirationTime, keys unpadded.
    expect(stored).toEqual({
      kind: "webpush",
      token: JSON.stringify({
        endpoint: "https://push.example/send/1",
        keys: { p256dh: KEY, auth: "BTBZMqHH6r4Tts7J_aSIgg" },
      }),
    });

    await eventually(async () => (herald.state === "connected" ? true : undefined));
    const arrival = nextEvent(herald, "push");
    const pushId = await server.push(app, {
      audience: { accounts: ["alice"] },
      message: 1,
      notification: { title: "Sale" },
    });
    expect((await arrival).pushId).toBe(pushId);

    // The service worker reports with what the page left it.
    const worker = { caches, fetch: (url: string, init: RequestInit) => fetch(url, init) };
    expect(await report(worker as unknown as WorkerScope, "opened", pushId)).toBe(true);
    const counted = await eventually(async () => {
      const web = await server.platformReport(app, pushId, "web");
      return web?.opened === 1 ? web : undefined;
    });
    expect(counted.delivered).toBe(1);

    await herald.unsubscribeWebPush();
    expect(pushManager.current).toBeUndefined();
    expect(await storedToken(server, app, "alice-browser", (t) => t === null)).toBeNull();
  });

  it("is refused with the reason when the app has no Web Push credentials", async () => {
    const server = await HeraldServer.start();
    const app = await server.createApp();
    const herald = new Herald({
      url: server.base,
      token: mintToken(app, "bob"),
      WebSocket,
      storage: new MemoryStorage(),
      caches: fakeCaches(),
    });
    clients.push(herald);
    const connected = await nextEvent(herald, "connected");
    expect(connected.webpushKey).toBeUndefined();
    await expect(
      herald.subscribeWebPush({ pushManager: new FakePushManager() }),
    ).rejects.toThrow(/no Web Push credentials/);
  });
});
