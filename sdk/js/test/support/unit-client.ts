/** What the unit tests share: a client on the fake WebSocket, and a way to let it run. */

import { vi } from "vitest";

import { Herald, type HeraldOptions, MemoryStorage } from "../../src/index.js";
import { FakeWebSocket } from "./fake-websocket.js";

/** Lets the client's pending promises (token, connect) run without moving the clock. */
export async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

export function client(options: Partial<HeraldOptions> = {}): Herald {
  return new Herald({
    url: "http://herald.test:8080",
    token: "t-1",
    device: "d-1",
    storage: new MemoryStorage(),
    WebSocket: FakeWebSocket,
    // Jitter is tested in backoff.test.ts; here a fixed delay keeps the tests exact.
    reconnect: { initialDelayMs: 100, maxDelayMs: 100 },
    ...options,
  });
}
