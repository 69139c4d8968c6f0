/**
 * One WebSocket connection, from the hello to its end: waits for the welcome within the connect
 * timeout, keeps the connection alive with pings every `heartbeat_secs`, and reports every frame
 * and, exactly once, how it ended. Reconnecting is the caller's business (see herald.ts).
 */

import {
  type ClientFrame,
  decodeServerFrame,
  encodeFrame,
  type ErrorFrame,
  type HelloFrame,
  type PushFrame,
  type RecallFrame,
  type WelcomeFrame,
} from "./protocol.js";
import { type MessageEventLike, OPEN, type WebSocketLike } from "./socket.js";

export interface ConnectionHandlers {
  welcome(welcome: WelcomeFrame): void;
  frame(frame: PushFrame | RecallFrame | ErrorFrame): void;
  /** The connection ended; `code` is the close code, undefined when there was no close frame. */
  end(code: number | undefined, reason: string): void;
}

/** The server answers every ping: this many pings in a row without an answer: the path is dead. */
const UNANSWERED_PINGS = 3;

export class Connection {
  private welcomed = false;
  private ended = false;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  /** Pings sent since the server last said anything. */
  private unansweredPings = 0;

  constructor(
    private readonly socket: WebSocketLike,
    hello: HelloFrame,
    private readonly handlers: ConnectionHandlers,
    connectTimeoutMs: number,
  ) {
    this.connectTimer = setTimeout(() => this.abort("no welcome in time"), connectTimeoutMs);
    socket.onopen = () => this.write(hello);
    socket.onmessage = (event) => this.onMessage(event);
    socket.onclose = (event) => this.finish(event.code, event.reason);
    // An error event is always followed by a close event, which carries the code.
    socket.onerror = () => {};
  }

  /** Whether frames can be sent: the welcome came and the socket is open. */
  get ready(): boolean {
    return this.welcomed && !this.ended && this.socket.readyState === OPEN;
  }

  /** Sends a frame; false when the connection cannot take it (the caller keeps it). */
  send(frame: ClientFrame): boolean {
    if (!this.ready) return false;
    return this.write(frame);
  }

  /** Closes with 1000 (the client asked); the end is reported at once. */
  close(): void {
    this.abort("closed by the client");
  }

  private onMessage(event: MessageEventLike): void {
    this.unansweredPings = 0;
    // Binary frames are not part of the protocol.
    if (typeof event.data !== "string") return;
    const frame = decodeServerFrame(event.data);
    if (frame === null || frame.type === "pong") return;
    if (frame.type === "welcome") {
      this.onWelcome(frame);
      return;
    }
    this.handlers.frame(frame);
  }

  private onWelcome(welcome: WelcomeFrame): void {
    if (this.welcomed) return;
    this.welcomed = true;
    clearTimeout(this.connectTimer);
    this.startHeartbeat(Math.max(1, welcome.heartbeat_secs) * 1000);
    this.handlers.welcome(welcome);
  }

  // Counted in pings rather than measured in time: a background tab's timers may fire minutes
  // late, and a late timer must not be mistaken for a silent server.
  private startHeartbeat(intervalMs: number): void {
    this.heartbeatTimer = setInterval(() => {
      if (this.unansweredPings >= UNANSWERED_PINGS) {
        this.abort("no answer to heartbeats");
        return;
      }
      this.unansweredPings += 1;
      this.write({ type: "ping" });
    }, intervalMs);
  }

  private write(frame: ClientFrame): boolean {
    try {
      this.socket.send(encodeFrame(frame));
      return true;
    } catch {
      // The close event follows and ends the connection.
      return false;
    }
  }

  /** Ends without waiting for the close handshake: the socket may be dead. */
  private abort(reason: string): void {
    try {
      this.socket.close(1000, reason);
    } catch {
      // Already closing.
    }
    this.finish(undefined, reason);
  }

  private finish(code: number | undefined, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.connectTimer);
    clearInterval(this.heartbeatTimer);
    // Late events of this socket belong to a connection that is over. No-ops rather than null:
    // Node's `ws` throws an error event that has no listener.
    const ignore = (): void => {};
    this.socket.onopen = ignore;
    this.socket.onmessage = ignore;
    this.socket.onclose = ignore;
    this.socket.onerror = ignore;
    this.handlers.end(code, reason);
  }
}
