/**
 * Exponential backoff with jitter, so that clients dropped together (a server restart, a load
 * balancer reload) do not all come back in the same instant.
 */

export interface ReconnectPolicy {
  /** Delay before the first retry; doubled after every failed attempt. Default 500 ms. */
  initialDelayMs: number;
  /** Upper bound of the delay. Default 60 s. */
  maxDelayMs: number;
  /** Give up after this many failed attempts in a row. Default: never. */
  maxAttempts?: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { initialDelayMs: 500, maxDelayMs: 60_000 };

export class Backoff {
  private attempts = 0;

  constructor(
    private readonly policy: ReconnectPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The delay before the next attempt, or undefined when the attempts are used up. "Equal
   * jitter": half the exponential delay plus a random part of the other half, so a delay is
   * never near zero (no hammering) and never above the cap.
   */
  nextDelay(): number | undefined {
    const { maxAttempts } = this.policy;
    if (maxAttempts !== undefined && this.attempts >= maxAttempts) return undefined;
    const base = this.baseDelay(this.attempts);
    this.attempts += 1;
    return this.jitter(base);
  }

  /** A delay at the cap, for a server that asked for a long pause (login refused). */
  longDelay(): number | undefined {
    const { maxAttempts } = this.policy;
    if (maxAttempts !== undefined && this.attempts >= maxAttempts) return undefined;
    this.attempts += 1;
    return this.jitter(this.policy.maxDelayMs);
  }

  /** A connection succeeded: start again from the initial delay. */
  reset(): void {
    this.attempts = 0;
  }

  private baseDelay(attempts: number): number {
    const factor = 2 ** Math.min(attempts, 30);
    return Math.min(this.policy.initialDelayMs * factor, this.policy.maxDelayMs);
  }

  private jitter(base: number): number {
    const half = base / 2;
    return Math.round(half + half * this.random());
  }
}
