/**
 * A WebSocket stand-in the unit tests drive by hand: they open it, deliver server frames and
 * close it, and read what the client sent.
 */

import type { CloseEventLike, MessageEventLike, WebSocketLike } from "../../src/socket.js";

type Handler<E> = ((event: E) => void) | null;

export class FakeWebSocket implements WebSocketLike {
  /** Every socket made, oldest first. */
  static made: FakeWebSocket[] = [];

  static reset(): void {
    FakeWebSocket.made = [];
  }

  static last(): FakeWebSocket {
    const socket = FakeWebSocket.made.at(-1);
    if (!socket) throw new Error("no socket was made");
    return socket;
  }

  readyState = 0;
  readonly sent: string[] = [];
  closedWith: { code?: number; reason?: string } | undefined;
  onopen: Handler<unknown> = null;
  onmessage: Handler<MessageEventLike> = null;
  onclose: Handler<CloseEventLike> = null;
  onerror: Handler<unknown> = null;

  constructor(readonly url: string) {
    FakeWebSocket.made.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** The frames the client sent, decoded. */
  frames(): Array<Record<string, unknown>> {
    return this.sent.map((text) => JSON.parse(text) as Record<string, unknown>);
  }

  framesOfType(type: string): Array<Record<string, unknown>> {
    return this.frames().filter((frame) => frame.type === type);
  }

  // Server side.

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  welcome(resumeFrom = 0, heartbeatSecs = 30): void {
    this.receive({
      type: "welcome",
      session_id: "s-1",
      server_time: "2026-01-01T00:00:00Z",
      heartbeat_secs: heartbeatSecs,
      resume_from: resumeFrom,
    });
  }

  /** Opens and welcomes: the state a client is in after a good hello. */
  accept(resumeFrom = 0, heartbeatSecs = 30): void {
    this.open();
    this.welcome(resumeFrom, heartbeatSecs);
  }

  push(seq: number, pushId = `p-${seq}`): void {
    this.receive({
      type: "push",
      push_id: pushId,
      seq,
      message: { n: seq },
      sent_at: "2026-01-01T00:00:00Z",
    });
  }

  /** The server closes the connection. */
  serverClose(code?: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code: code ?? 1006, reason });
  }
}
