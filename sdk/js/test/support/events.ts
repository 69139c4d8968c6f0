/** Waiting for a client's events in tests, with a deadline so a missing event fails, not hangs. */

import type { Herald, HeraldEvents } from "../../src/index.js";

export function nextEvent<E extends keyof HeraldEvents>(
  herald: Herald,
  event: E,
  matches: (value: HeraldEvents[E]) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<HeraldEvents[E]> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      off();
      fail(new Error(`no ${String(event)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = herald.on(event, (value) => {
      if (!matches(value)) return;
      clearTimeout(timer);
      off();
      done(value);
    });
  });
}

/** Resolves once the client is in `state` (at once if it already is). */
export function reaches(herald: Herald, state: HeraldEvents["state"], timeoutMs = 10_000) {
  if (herald.state === state) return Promise.resolve(state);
  return nextEvent(herald, "state", (value) => value === state, timeoutMs);
}

/** Polls `probe` until it returns a value, for server state that settles asynchronously. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((done) => setTimeout(done, 50));
  }
}
