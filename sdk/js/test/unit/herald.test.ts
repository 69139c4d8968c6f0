import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { type Herald, MemoryStorage, type Push } from "../../src/index.js";
import type { ConnectionState } from "../../src/types.js";
import { FakeWebSocket } from "../support/fake-websocket.js";
import { client, settle } from "../support/unit-client.js";

function collect(herald: Herald): { pushes: Push[]; states: ConnectionState[] } {
  const pushes: Push[] = [];
  const states: ConnectionState[] = [];
  herald.on("push", (push) => pushes.push(push));
  herald.on("state", (state) => states.push(state));
  return { pushes, states };
}

/** Closes the socket from the server's side and lets the client reconnect and be welcomed. */
async function reconnect(resumeFrom = 0): Promise<FakeWebSocket> {
  const before = FakeWebSocket.made.length;
  FakeWebSocket.last().serverClose(1001, "server shutting down");
  await vi.advanceTimersByTimeAsync(100);
  expect(FakeWebSocket.made.length).toBe(before + 1);
  const socket = FakeWebSocket.last();
  socket.accept(resumeFrom);
  return socket;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("hello", () => {
  it("connects to /v1/connect and identifies the device", async () => {
    const herald = client({ package: "com.shop", locale: "de-DE", timeZone: "Europe/Berlin" });
    await settle();
    const socket = FakeWebSocket.last();
    expect(socket.url).toBe("ws://herald.test:8080/v1/connect");
    socket.open();
    expect(socket.frames()).toEqual([
      {
        type: "hello",
        v: 1,
        token: "t-1",
        device_id: "d-1",
        platform: "web",
        package: "com.shop",
        last_seq: 0,
        locale: "de-DE",
        time_zone: "Europe/Berlin",
      },
    ]);
    herald.close();
  });

  it("makes a device id once and keeps it in storage", async () => {
    const storage = new MemoryStorage();
    const first = client({ device: undefined, storage });
    const second = client({ device: undefined, storage });
    expect(first.device).toMatch(/^web-/);
    expect(second.device).toBe(first.device);
    first.close();
    second.close();
  });
});

describe("connection states", () => {
  it("are emitted as the connection comes, goes and is closed", async () => {
    const herald = client();
    const { states } = collect(herald);
    await settle();
    FakeWebSocket.last().accept();
    await reconnect();
    herald.close();
    expect(states).toEqual([
      "connecting",
      "connected",
      "disconnected",
      "connecting",
      "connected",
      "closed",
    ]);
    expect(herald.stats.connects).toBe(2);
    expect(FakeWebSocket.made[1]?.closedWith?.code).toBe(1000);
  });

  it("stop for good when a newer connection of the device replaced this one", async () => {
    const herald = client();
    const disconnects: Array<number | undefined> = [];
    herald.on("disconnected", (event) => disconnects.push(event.retryInMs));
    await settle();
    FakeWebSocket.last().accept();
    FakeWebSocket.last().serverClose(4010, "replaced");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(herald.state).toBe("closed");
    expect(disconnects).toEqual([undefined]);
    expect(FakeWebSocket.made).toHaveLength(1);
  });

  it("reconnect when the welcome does not come within the connect timeout", async () => {
    const herald = client({ connectTimeoutMs: 1_000 });
    await settle();
    FakeWebSocket.last().open();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(herald.state).toBe("disconnected");
    await vi.advanceTimersByTimeAsync(100);
    expect(FakeWebSocket.made).toHaveLength(2);
    herald.close();
  });
});

describe("pushes", () => {
  it("are passed on in seq order, each once, also when resent after a reconnect", async () => {
    const herald = client();
    const { pushes } = collect(herald);
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept();
    socket.push(3);
    socket.push(3);
    socket.push(2);
    socket.push(5);
    const again = await reconnect();
    again.push(5);
    again.push(7);
    expect(pushes.map((push) => push.seq)).toEqual([3, 5, 7]);
    expect(herald.stats).toEqual({ connects: 2, pushes: 3, duplicatesDropped: 3 });
    expect(pushes[0]).toEqual({
      pushId: "p-3",
      seq: 3,
      message: { n: 3 },
      sentAt: "2026-01-01T00:00:00Z",
    });
    herald.close();
  });

  it("recalls and server errors are emitted", async () => {
    const herald = client();
    const recalls: string[] = [];
    const errors: string[] = [];
    herald.on("recall", (recall) => recalls.push(recall.pushId));
    herald.on("serverError", (error) => errors.push(error.code));
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept();
    socket.receive({ type: "recall", push_id: "p-9", seq: 9 });
    socket.receive({ type: "error", code: "unknown_seq", message: "ignored" });
    socket.receive({ type: "something_newer", x: 1 });
    expect(recalls).toEqual(["p-9"]);
    expect(errors).toEqual(["unknown_seq"]);
    herald.close();
  });
});

describe("acks", () => {
  it("are cumulative and batched over the ack delay", async () => {
    const herald = client({ ack: { delayMs: 50, batchSize: 100 } });
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept();
    socket.push(1);
    socket.push(2);
    socket.push(4);
    await vi.advanceTimersByTimeAsync(49);
    expect(socket.framesOfType("ack")).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(socket.framesOfType("ack")).toEqual([{ type: "ack", up_to: 4 }]);
    socket.push(6);
    await vi.advanceTimersByTimeAsync(50);
    expect(socket.framesOfType("ack")).toEqual([
      { type: "ack", up_to: 4 },
      { type: "ack", up_to: 6 },
    ]);
    herald.close();
  });

  it("go at once when a batch is full", async () => {
    const herald = client({ ack: { delayMs: 1_000, batchSize: 3 } });
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept();
    for (const seq of [1, 2, 3, 4]) socket.push(seq);
    expect(socket.framesOfType("ack")).toEqual([{ type: "ack", up_to: 3 }]);
    herald.close();
    expect(socket.framesOfType("ack")).toEqual([
      { type: "ack", up_to: 3 },
      { type: "ack", up_to: 4 },
    ]);
  });

  it("are sent again on a new connection, which may have missed the last one", async () => {
    const herald = client();
    await settle();
    FakeWebSocket.last().accept();
    FakeWebSocket.last().push(2);
    await vi.advanceTimersByTimeAsync(50);
    const again = await reconnect(2);
    expect(again.frames()[0]).toMatchObject({ type: "hello", last_seq: 2 });
    expect(again.framesOfType("ack")).toEqual([{ type: "ack", up_to: 2 }]);
    herald.close();
  });
});

describe("resume after a reload", () => {
  it("keeps the acked seq in storage and resumes after it", async () => {
    const storage = new MemoryStorage();
    const first = client({ storage });
    await settle();
    FakeWebSocket.last().accept();
    FakeWebSocket.last().push(4);
    FakeWebSocket.last().push(8);
    await vi.advanceTimersByTimeAsync(50);
    expect(storage.getItem("herald:last_seq:d-1")).toBe("8");
    first.close();

    const second = client({ storage });
    const { pushes } = collect(second);
    await settle();
    const socket = FakeWebSocket.last();
    socket.open();
    expect(socket.frames()[0]).toMatchObject({ type: "hello", last_seq: 8 });
    socket.welcome(8);
    // A server whose cursor lagged may send an old one again: it is not shown twice.
    socket.push(8);
    socket.push(9);
    expect(pushes.map((push) => push.seq)).toEqual([9]);
    // Nothing new was acked before this connection: no ack is repeated on connect.
    expect(socket.framesOfType("ack")).toEqual([]);
    second.close();
    expect(storage.getItem("herald:last_seq:d-1")).toBe("9");
  });

  it("keeps what was received when the page goes away before the ack delay", async () => {
    const storage = new MemoryStorage();
    const herald = client({ storage, ack: { delayMs: 10_000, batchSize: 100 } });
    await settle();
    FakeWebSocket.last().accept();
    FakeWebSocket.last().push(3);
    herald.close();
    expect(storage.getItem("herald:last_seq:d-1")).toBe("3");
  });
});

describe("opened", () => {
  it("is sent at once while connected and after the welcome while not", async () => {
    const herald = client();
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept();
    herald.opened("p-1");
    expect(socket.framesOfType("opened")).toEqual([{ type: "opened", push_id: "p-1" }]);
    socket.serverClose(1011);
    herald.opened("p-2");
    await vi.advanceTimersByTimeAsync(100);
    const again = FakeWebSocket.last();
    again.accept();
    expect(again.framesOfType("opened")).toEqual([{ type: "opened", push_id: "p-2" }]);
    herald.close();
  });
});

describe("tokens", () => {
  it("are asked anew from getToken when the server refuses one (4001)", async () => {
    const tokens = ["t-old", "t-new"];
    const getToken = vi.fn(async () => tokens.shift() ?? "t-none");
    const herald = client({ token: undefined, getToken });
    await settle();
    FakeWebSocket.last().open();
    FakeWebSocket.last().receive({ type: "error", code: "unauthorized", message: "expired" });
    FakeWebSocket.last().serverClose(4001, "bad or expired token");
    await vi.advanceTimersByTimeAsync(100);
    const again = FakeWebSocket.last();
    again.open();
    expect(again.frames()[0]).toMatchObject({ token: "t-new" });
    again.welcome();
    expect(herald.state).toBe("connected");
    // A connection lost for another reason keeps the token.
    await reconnect();
    expect(FakeWebSocket.last().frames()[0]).toMatchObject({ token: "t-new" });
    expect(getToken).toHaveBeenCalledTimes(2);
    herald.close();
  });

  it("end the client when a fixed token is refused", async () => {
    const herald = client();
    await settle();
    FakeWebSocket.last().open();
    FakeWebSocket.last().serverClose(4001, "bad or expired token");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(herald.state).toBe("closed");
    expect(FakeWebSocket.made).toHaveLength(1);
  });

  it("that expired by their own claim are replaced before connecting", async () => {
    // Payload {"k":"k","a":"a","e":1}: expired in 1970.
    const expired = "eyJrIjoiayIsImEiOiJhIiwiZSI6MX0.00";
    const getToken = vi.fn(() => "t-fresh");
    const herald = client({ token: expired, getToken });
    await settle();
    FakeWebSocket.last().open();
    expect(FakeWebSocket.last().frames()[0]).toMatchObject({ token: "t-fresh" });
    herald.close();
  });
});

describe("heartbeats", () => {
  it("ping every heartbeat_secs and give up on a silent connection", async () => {
    const herald = client();
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept(0, 10);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(socket.framesOfType("ping")).toHaveLength(1);
    socket.receive({ type: "pong" });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(herald.state).toBe("connected");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(herald.state).toBe("disconnected");
    await vi.advanceTimersByTimeAsync(100);
    expect(FakeWebSocket.made).toHaveLength(2);
    herald.close();
  });
});

describe("failures", () => {
  it("of the app's push listener neither stop other listeners nor the ack", async () => {
    const herald = client();
    const seen: number[] = [];
    herald.on("push", () => {
      throw new Error("app bug");
    });
    herald.on("push", (push) => seen.push(push.seq));
    await settle();
    const socket = FakeWebSocket.last();
    socket.accept();
    socket.push(1);
    // The listener's error is rethrown outside the client, as an uncaught error would be.
    await expect(vi.advanceTimersByTimeAsync(50)).rejects.toThrow("app bug");
    expect(seen).toEqual([1]);
    expect(socket.framesOfType("ack")).toEqual([{ type: "ack", up_to: 1 }]);
    herald.close();
  });

  it("of getToken are retried with backoff", async () => {
    const getToken = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new Error("back end down"))
      .mockResolvedValue("t-2");
    const herald = client({ token: undefined, getToken });
    const reasons: string[] = [];
    herald.on("disconnected", (event) => reasons.push(event.reason));
    await settle();
    expect(FakeWebSocket.made).toHaveLength(0);
    expect(reasons).toEqual(["no token: back end down"]);
    await vi.advanceTimersByTimeAsync(100);
    FakeWebSocket.last().open();
    expect(FakeWebSocket.last().frames()[0]).toMatchObject({ token: "t-2" });
    herald.close();
  });

  it("of the login wait long before the next attempt (4006)", async () => {
    const herald = client({ reconnect: { initialDelayMs: 100, maxDelayMs: 60_000 } });
    const delays: Array<number | undefined> = [];
    herald.on("disconnected", (event) => delays.push(event.retryInMs));
    await settle();
    FakeWebSocket.last().open();
    FakeWebSocket.last().serverClose(4006, "login refused");
    expect(delays[0]).toBeGreaterThanOrEqual(30_000);
    herald.close();
  });

  it("end a client that does not reconnect", async () => {
    const herald = client({ reconnect: false });
    await settle();
    FakeWebSocket.last().accept();
    FakeWebSocket.last().serverClose(1001);
    expect(herald.state).toBe("closed");
  });

  it("of storage do not stop delivery", async () => {
    const broken = {
      getItem(): string | null {
        throw new Error("blocked");
      },
      setItem(): void {
        throw new Error("quota");
      },
    };
    const herald = client({ storage: broken });
    const { pushes } = collect(herald);
    await settle();
    FakeWebSocket.last().accept();
    FakeWebSocket.last().push(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(pushes).toHaveLength(1);
    expect(FakeWebSocket.last().framesOfType("ack")).toEqual([{ type: "ack", up_to: 1 }]);
    herald.close();
  });
});
