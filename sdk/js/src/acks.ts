/**
 * Cumulative acks, batched: one `ack {up_to}` for every few milliseconds or every N pushes
 * rather than one per push, as pushes sent together (a catch-up after a reload) arrive together.
 * The acked seq is also kept in storage, so that the next page resumes after it.
 */

export interface AckTiming {
  /** Longest wait before pushes are acked. */
  delayMs: number;
  /** Pushes after which the ack goes at once. */
  batchSize: number;
}

export const DEFAULT_ACK_TIMING: AckTiming = { delayMs: 50, batchSize: 50 };

export class AckBatcher {
  /** Highest seq passed on to the app: the next cumulative ack, and the next hello's `last_seq`. */
  private acked: number;
  /** Highest `up_to` written on the current connection. */
  private sent: number;
  private persisted: number;
  private unacked = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sendAck: ((upTo: number) => boolean) | undefined;

  constructor(
    /** The seq kept from an earlier page, already known to the server through the hello. */
    private readonly initial: number,
    private readonly persist: (seq: number) => void,
    private readonly timing: AckTiming,
  ) {
    this.acked = initial;
    this.sent = initial;
    this.persisted = initial;
  }

  get lastAcked(): number {
    return this.acked;
  }

  /** A push was passed on to the app. */
  received(seq: number): void {
    if (seq <= this.acked) return;
    this.acked = seq;
    this.unacked += 1;
    if (this.unacked >= this.timing.batchSize) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.timing.delayMs);
    }
  }

  /** A connection got its welcome; acks go through `send` until `disconnected`. */
  connected(send: (upTo: number) => boolean): void {
    this.sendAck = send;
    // An ack written to a connection that then broke may never have been recorded: once this
    // client acked anything, every new connection hears the cumulative ack again.
    this.sent = Math.min(this.sent, this.initial);
    this.flush();
  }

  disconnected(): void {
    this.sendAck = undefined;
  }

  /** Acks and keeps everything passed on so far, now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unacked = 0;
    if (this.acked > this.persisted) {
      this.persist(this.acked);
      this.persisted = this.acked;
    }
    if (this.acked > this.sent && this.sendAck?.(this.acked)) {
      this.sent = this.acked;
    }
  }

  /** Stops the timer without acking (the client is closing and has flushed). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
