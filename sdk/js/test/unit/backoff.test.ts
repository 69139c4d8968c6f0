import { describe, expect, it } from "vitest";

import { Backoff } from "../../src/backoff.js";

const policy = { initialDelayMs: 100, maxDelayMs: 1_000 };
const bases = [100, 200, 400, 800, 1_000, 1_000];

describe("backoff", () => {
  it("doubles up to the cap, each delay between half its base and its base", () => {
    for (let run = 0; run < 200; run++) {
      const backoff = new Backoff(policy);
      for (const base of bases) {
        const delay = backoff.nextDelay();
        expect(delay).toBeGreaterThanOrEqual(base / 2);
        expect(delay).toBeLessThanOrEqual(base);
      }
    }
  });

  it("spreads clients over the whole jitter range", () => {
    expect(new Backoff(policy, () => 0).nextDelay()).toBe(50);
    expect(new Backoff(policy, () => 1).nextDelay()).toBe(100);
    const seen = new Set<number>();
    for (let run = 0; run < 100; run++) seen.add(new Backoff(policy).nextDelay() ?? -1);
    // Clients dropped together must not come back together.
    expect(seen.size).toBeGreaterThan(20);
  });

  it("starts again from the initial delay after a success", () => {
    const backoff = new Backoff(policy, () => 1);
    for (let i = 0; i < 5; i++) backoff.nextDelay();
    backoff.reset();
    expect(backoff.nextDelay()).toBe(100);
  });

  it("gives up after maxAttempts failed attempts in a row", () => {
    const backoff = new Backoff({ ...policy, maxAttempts: 2 });
    expect(backoff.nextDelay()).toBeDefined();
    expect(backoff.longDelay()).toBeDefined();
    expect(backoff.nextDelay()).toBeUndefined();
  });

  it("waits near the cap when the server asked for a long pause", () => {
    const delay = new Backoff(policy).longDelay() ?? 0;
    expect(delay).toBeGreaterThanOrEqual(500);
    expect(delay).toBeLessThanOrEqual(1_000);
  });
});
