/**
 * The SDK in Node against the real `herald` binary: each test starts a server of its own.
 */

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { Herald, type HeraldOptions, MemoryStorage, type Push } from "../../src/index.js";
import { eventually, nextEvent, reaches } from "../support/events.js";
import { type App, HeraldServer, mintToken, stopAllServers } from "../support/server.js";

const clients: Herald[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await stopAllServers();
});

function device(
  server: HeraldServer,
  app: App,
  account: string,
  options: Partial<HeraldOptions> = {},
): Herald {
  const herald = new Herald({
    url: server.base,
    token: mintToken(app, account),
    device: `${account}-browser`,
    package: "com.shop",
    WebSocket,
    storage: new MemoryStorage(),
    reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    ...options,
  });
  clients.push(herald);
  return herald;
}

/** Every push the client passes on, in order. */
function received(herald: Herald): Push[] {
  const pushes: Push[] = [];
  herald.on("push", (push) => pushes.push(push));
  return pushes;
}

function toAccount(account: string, message: Record<string, unknown>) {
  return { audience: { accounts: [account] }, message };
}

describe("against a real server", () => {
  it("a device receives a tag push and its open is counted", async () => {
    const server = await HeraldServer.start();
    const app = await server.createApp();
    const alice = device(server, app, "alice");
    await reaches(alice, "connected");
    await server.expectOk(
      server.signed(app, "POST", "/v1/tags/add", { accounts: ["alice"], tags: ["news"] }),
    );

    const arrival = nextEvent(alice, "push");
    const pushId = await server.push(app, {
      audience: { tag: "news" },
      message: { headline: "herald ships a web SDK" },
      notification: { title: "News", body: "A web SDK" },
    });
    const push = await arrival;
    expect(push).toMatchObject({
      pushId,
      message: { headline: "herald ships a web SDK" },
      notification: { title: "News", body: "A web SDK" },
    });

    alice.opened(pushId);
    const report = await eventually(async () => {
      const web = await server.platformReport(app, pushId, "web");
      return web?.opened === 1 && web?.delivered === 1 ? web : undefined;
    });
    expect(report).toMatchObject({ delivered: 1, opened: 1 });
  });

  it("a reloaded page resumes after its last ack and gets what it missed once", async () => {
    const server = await HeraldServer.start();
    const app = await server.createApp();
    const storage = new MemoryStorage();
    const before = device(server, app, "bob", { storage });
    await reaches(before, "connected");
    const first = nextEvent(before, "push");
    await server.push(app, toAccount("bob", { n: 1 }));
    const seen = await first;
    await eventually(async () => (before.lastAcked === seen.seq ? true : undefined));
    before.close();

    // Sent while no page is open: it waits in the offline inbox.
    await server.push(app, toAccount("bob", { n: 2 }));

    const after = device(server, app, "bob", { storage });
    const pushes = received(after);
    const connected = await nextEvent(after, "connected");
    expect(connected.resumeFrom).toBeGreaterThanOrEqual(seen.seq);
    await eventually(async () => (pushes.length >= 1 ? true : undefined));
    // A push sent now proves nothing else was coming before it.
    const sentinelId = await server.push(app, toAccount("bob", { n: 3 }));
    const sentinel = await eventually(async () => pushes.find((p) => p.pushId === sentinelId));
    expect(pushes.map((push) => push.message)).toEqual([{ n: 2 }, { n: 3 }]);
    after.close();
    expect(storage.getItem("herald:last_seq:bob-browser")).toBe(String(sentinel.seq));
  });

  it("a recalled push is announced to the device", async () => {
    const server = await HeraldServer.start();
    const app = await server.createApp();
    const carol = device(server, app, "carol");
    await reaches(carol, "connected");
    const arrival = nextEvent(carol, "push");
    const pushId = await server.push(app, toAccount("carol", { sale: true }));
    await arrival;

    const recall = nextEvent(carol, "recall");
    await server.expectOk(server.signed(app, "POST", `/v1/pushes/${pushId}/recall`));
    expect(await recall).toMatchObject({ pushId });
  });

  it("the client reconnects by itself after the server is killed and started again", async () => {
    const server = await HeraldServer.start();
    const app = await server.createApp();
    const dave = device(server, app, "dave");
    await reaches(dave, "connected");
    const first = nextEvent(dave, "push");
    await server.push(app, toAccount("dave", { n: 1 }));
    await first;

    const lost = nextEvent(dave, "disconnected");
    await server.kill();
    expect((await lost).retryInMs).toBeGreaterThan(0);

    const restarted = await HeraldServer.start({ dataDir: server.dataDir, port: server.port });
    await reaches(dave, "connected", 15_000);
    const second = nextEvent(dave, "push");
    await restarted.push(app, toAccount("dave", { n: 2 }));
    expect((await second).message).toEqual({ n: 2 });
    expect(dave.stats.connects).toBe(2);
    expect(dave.stats.pushes).toBe(2);
  });
});
