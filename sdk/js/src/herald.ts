/**
 * The herald client: keeps one device connected, passes its pushes on in seq order without
 * duplicates, acks them, reports opens, and reconnects with backoff and jitter, resuming after
 * the last acked push, across page reloads too.
 */

import { AckBatcher, type AckTiming, DEFAULT_ACK_TIMING } from "./acks.js";
import { Backoff, DEFAULT_RECONNECT, type ReconnectPolicy } from "./backoff.js";
import { Connection } from "./connection.js";
import { Emitter } from "./emitter.js";
import {
  type ClientFrame,
  CloseCode,
  type ErrorFrame,
  type HelloFrame,
  PROTOCOL_VERSION,
  type PushFrame,
  type RecallFrame,
  retryAfterClose,
  type VendorToken,
  type WelcomeFrame,
} from "./protocol.js";
import { connectUrl, globalWebSocket, type WebSocketConstructor } from "./socket.js";
import {
  type CursorStorage,
  defaultStorage,
  loadLastSeq,
  saveLastSeq,
  storedDeviceId,
} from "./storage.js";
import { type GetToken, TokenSource } from "./token.js";
import type { ConnectionState, HeraldEvents, Push, Stats } from "./types.js";
import {
  type CacheStorageLike,
  clearWorkerConfig,
  globalCaches,
  httpBase,
  loadSubscription,
  type PushRegistrationLike,
  saveSubscription,
  saveWorkerConfig,
  subscribe,
  unsubscribe,
} from "./webpush.js";

export interface HeraldOptions {
  /** `wss://host/v1/connect`, or the server's base URL (`https://host`). */
  url: string;
  /** A client token minted by the app's back end. */
  token?: string;
  /** Asked for a token when there is none, and for a new one when the server refuses one. */
  getToken?: GetToken;
  /** Stable id of this install. Default: a random id made once and kept in `storage`. */
  device?: string;
  /** Selects the notification variant and platform audiences. Default `web`. */
  platform?: string;
  /** Package name of the app. Default: the page's host name, else `web`. */
  package?: string;
  /**
   * The device's vendor token (`apns`, `fcm`, or `webpush` with a subscription's JSON). In a
   * browser, `subscribeWebPush` sets it instead.
   */
  vendorToken?: VendorToken;
  appVersion?: string;
  /** Default: the browser's language, when there is one. */
  locale?: string;
  /** IANA zone, e.g. `Europe/Berlin`. Default: the environment's zone. */
  timeZone?: string;
  /** Keeps the last acked seq (and a generated device id). Default `localStorage`, else memory. */
  storage?: CursorStorage;
  /** WebSocket implementation; default the global one. Node 20 passes the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  /** Backoff of reconnects; `false` never reconnects. */
  reconnect?: Partial<ReconnectPolicy> | false;
  /** Limit for opening the socket and getting the welcome. Default 10 s. */
  connectTimeoutMs?: number;
  /** Batching of acks. Default 50 ms or 50 pushes, whichever comes first. */
  ack?: Partial<AckTiming>;
  /** Where the service worker finds the token to report with. Default the global `caches`. */
  caches?: CacheStorageLike;
}

/** Frames kept while disconnected (opens) and sent after the next welcome; the oldest go first. */
const BACKLOG_LIMIT = 1_024;

export class Herald extends Emitter<HeraldEvents> {
  /** Stable id of this install, as sent in the hello. */
  readonly device: string;
  private currentState: ConnectionState = "disconnected";
  private readonly url: string;
  private readonly options: HeraldOptions;
  private readonly storage: CursorStorage;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly tokens: TokenSource;
  private readonly backoff: Backoff | undefined;
  private readonly acks: AckBatcher;
  private readonly connectTimeoutMs: number;
  /** Highest seq passed on to the app: pushes at or below it are duplicates. */
  private highestSeen: number;
  private connection: Connection | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private backlog: ClientFrame[] = [];
  private readonly counters: Stats = { connects: 0, pushes: 0, duplicatesDropped: 0 };
  private readonly detachPageEvents: () => void;
  /** Sent in every hello: a hello without it would remove the device's stored token. */
  private vendorToken: VendorToken | undefined;
  /** The app's VAPID key from the last welcome; undefined when it has no Web Push. */
  private webpushKey: string | undefined;
  /** The token of the last hello: the service worker reports with it. */
  private helloToken: string | undefined;
  /** Set while the connection is closed on purpose, to say hello again at once. */
  private helloAgain = false;
  private registration: PushRegistrationLike | undefined;

  /** Starts connecting right after the current task, so listeners added now see every event. */
  constructor(options: HeraldOptions) {
    super();
    this.options = options;
    this.url = connectUrl(options.url);
    this.tokens = new TokenSource(options.token, options.getToken);
    const WebSocketImpl = options.WebSocket ?? globalWebSocket();
    if (!WebSocketImpl) {
      throw new TypeError("herald: no global WebSocket here; pass one (e.g. from `ws`)");
    }
    this.WebSocketImpl = WebSocketImpl;
    this.storage = options.storage ?? defaultStorage();
    this.device = options.device ?? storedDeviceId(this.storage);
    this.highestSeen = loadLastSeq(this.storage, this.device);
    const subscription = loadSubscription(this.storage, this.device);
    this.vendorToken =
      options.vendorToken ??
      (subscription === undefined ? undefined : { kind: "webpush", token: subscription });
    this.acks = new AckBatcher(
      this.highestSeen,
      (seq) => saveLastSeq(this.storage, this.device, seq),
      { ...DEFAULT_ACK_TIMING, ...options.ack },
    );
    this.backoff =
      options.reconnect === false
        ? undefined
        : new Backoff({ ...DEFAULT_RECONNECT, ...options.reconnect });
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.detachPageEvents = this.attachPageEvents();
    queueMicrotask(() => void this.connect());
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Highest seq acked cumulatively; the next hello (and the next page) resumes after it. */
  get lastAcked(): number {
    return this.acks.lastAcked;
  }

  get stats(): Stats {
    return { ...this.counters };
  }

  /** Reports that the user opened (clicked) the push; counted in the push's report. */
  opened(pushId: string): void {
    this.sendOrKeep({ type: "opened", push_id: pushId });
  }

  /**
   * Subscribes the browser to Web Push with the app's key from the welcome (waiting for one if
   * not connected yet) and makes the subscription the device's vendor token: the connection
   * says hello again with it, and every later hello carries it. The browser asks the user for
   * permission the first time. The registration's worker should be herald-sw.js (or import it).
   * Rejects when the app has no Web Push credentials or the user refused.
   */
  async subscribeWebPush(registration: PushRegistrationLike): Promise<VendorToken> {
    const key = await this.webPushKey();
    let token: string;
    try {
      token = await subscribe(registration, key);
    } catch (error) {
      // Permission revoked since the last subscription: stop offering the dead one.
      if (this.vendorToken?.kind === "webpush") await this.forgetSubscription();
      throw error;
    }
    this.registration = registration;
    saveSubscription(this.storage, this.device, token);
    const vendorToken: VendorToken = { kind: "webpush", token };
    this.setVendorToken(vendorToken);
    await this.saveWorkerConfig();
    return vendorToken;
  }

  /**
   * Ends the Web Push subscription (of `registration`, else the one `subscribeWebPush` was
   * given) and removes it from the device: the connection says hello again without it.
   */
  async unsubscribeWebPush(registration?: PushRegistrationLike): Promise<void> {
    const target = registration ?? this.registration;
    if (target) await unsubscribe(target);
    this.registration = undefined;
    await this.forgetSubscription();
  }

  /** Acks what was received, closes the connection (1000) and stops reconnecting. */
  close(): void {
    if (this.currentState === "closed") return;
    this.acks.flush();
    this.acks.stop();
    clearTimeout(this.retryTimer);
    this.detachPageEvents();
    this.setState("closed");
    const connection = this.connection;
    this.connection = undefined;
    connection?.close();
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.currentState === "closed") return;
    this.setState("connecting");
    let hello: HelloFrame;
    try {
      hello = await this.hello();
    } catch (error) {
      this.onEnd(undefined, `no token: ${errorText(error)}`);
      return;
    }
    // The app may have closed the client while its token was being fetched.
    if (this.isClosed()) return;
    try {
      const socket = new this.WebSocketImpl(this.url);
      this.connection = new Connection(
        socket,
        hello,
        {
          welcome: (welcome) => this.onWelcome(welcome),
          frame: (frame) => this.onFrame(frame),
          end: (code, reason) => this.onConnectionEnd(code, reason),
        },
        this.connectTimeoutMs,
      );
    } catch (error) {
      this.onEnd(undefined, errorText(error));
    }
  }

  private async hello(): Promise<HelloFrame> {
    const token = await this.tokens.token(Date.now());
    this.helloToken = token;
    const { options } = this;
    return withoutUndefined({
      type: "hello",
      v: PROTOCOL_VERSION,
      token,
      device_id: this.device,
      platform: options.platform ?? "web",
      package: options.package ?? defaultPackage(),
      vendor_token: this.vendorToken,
      last_seq: this.acks.lastAcked,
      app_version: options.appVersion,
      locale: options.locale ?? defaultLocale(),
      time_zone: options.timeZone ?? defaultTimeZone(),
    });
  }

  private onWelcome(welcome: WelcomeFrame): void {
    this.backoff?.reset();
    this.counters.connects += 1;
    this.webpushKey = welcome.webpush_key;
    this.setState("connected");
    this.emit(
      "connected",
      withoutUndefined({
        sessionId: welcome.session_id,
        resumeFrom: welcome.resume_from,
        heartbeatSecs: welcome.heartbeat_secs,
        serverTime: welcome.server_time,
        webpushKey: welcome.webpush_key,
      }),
    );
    // A renewed token reaches the worker too.
    if (this.vendorToken?.kind === "webpush") void this.saveWorkerConfig();
    this.acks.connected((upTo) => this.connection?.send({ type: "ack", up_to: upTo }) ?? false);
    this.sendBacklog();
  }

  private onFrame(frame: PushFrame | RecallFrame | ErrorFrame): void {
    switch (frame.type) {
      case "push":
        this.onPush(frame);
        break;
      case "recall":
        this.emit("recall", { pushId: frame.push_id, seq: frame.seq });
        break;
      case "error":
        this.emit("serverError", { code: frame.code, message: frame.message });
        break;
    }
  }

  private onPush(frame: PushFrame): void {
    // Unacked pushes are sent again on a new connection: the seq tells them apart.
    if (frame.seq <= this.highestSeen) {
      this.counters.duplicatesDropped += 1;
      return;
    }
    this.highestSeen = frame.seq;
    this.counters.pushes += 1;
    this.emit("push", toPush(frame));
    this.acks.received(frame.seq);
  }

  private onConnectionEnd(code: number | undefined, reason: string): void {
    this.connection = undefined;
    this.acks.disconnected();
    if (this.currentState === "closed") return;
    if (this.helloAgain) {
      this.helloAgain = false;
      this.emit("disconnected", { code: CloseCode.Normal, reason, retryInMs: 0 });
      this.setState("disconnected");
      void this.connect();
      return;
    }
    this.onEnd(code, reason);
  }

  /** The key to subscribe with: the current welcome's, else the next one's. */
  private async webPushKey(): Promise<string> {
    if (this.currentState !== "connected") {
      if (this.isClosed()) throw new Error("herald: the client is closed");
      await new Promise<void>((resolve, reject) => {
        const stop = (): void => {
          offConnected();
          offState();
        };
        const offConnected = this.on("connected", () => {
          stop();
          resolve();
        });
        const offState = this.on("state", (state) => {
          if (state !== "closed") return;
          stop();
          reject(new Error("herald: the client closed before it connected"));
        });
      });
    }
    if (this.webpushKey === undefined) {
      throw new Error("herald: the app has no Web Push credentials (no webpush_key in the welcome)");
    }
    return this.webpushKey;
  }

  /** Changes what the hello says; a connection made with the old one says hello again. */
  private setVendorToken(token: VendorToken | undefined): void {
    if (token?.kind === this.vendorToken?.kind && token?.token === this.vendorToken?.token) return;
    this.vendorToken = token;
    // A connection waiting to be retried will say the new hello anyway.
    if (!this.connection) return;
    this.helloAgain = true;
    this.acks.flush();
    this.connection.close();
  }

  private async forgetSubscription(): Promise<void> {
    saveSubscription(this.storage, this.device, undefined);
    if (this.vendorToken?.kind === "webpush") this.setVendorToken(undefined);
    await clearWorkerConfig(this.options.caches ?? globalCaches());
  }

  private async saveWorkerConfig(): Promise<void> {
    if (this.helloToken === undefined) return;
    const config = { url: httpBase(this.url), token: this.helloToken, device: this.device };
    try {
      await saveWorkerConfig(this.options.caches ?? globalCaches(), config);
    } catch {
      // Storage refused (private mode, quota): notifications still show, opens go uncounted.
    }
  }

  /** Decides, from how the connection ended, whether and when to try again. */
  private onEnd(code: number | undefined, reason: string): void {
    const retryInMs = this.retryDelay(code);
    this.emit("disconnected", { code, reason, retryInMs });
    if (retryInMs === undefined) {
      this.acks.flush();
      this.acks.stop();
      this.detachPageEvents();
      this.setState("closed");
      return;
    }
    this.setState("disconnected");
    this.retryTimer = setTimeout(() => void this.connect(), retryInMs);
  }

  private retryDelay(code: number | undefined): number | undefined {
    if (!this.backoff) return undefined;
    switch (retryAfterClose(code)) {
      case "stop":
        return undefined;
      case "new_token":
        if (!this.tokens.canRenew) return undefined;
        this.tokens.refused();
        return this.backoff.nextDelay();
      case "reconnect_later":
        return this.backoff.longDelay();
      case "reconnect":
        return this.backoff.nextDelay();
    }
  }

  private sendOrKeep(frame: ClientFrame): void {
    if (this.connection?.send(frame)) return;
    if (this.backlog.length >= BACKLOG_LIMIT) this.backlog.shift();
    this.backlog.push(frame);
  }

  private sendBacklog(): void {
    const pending = this.backlog;
    this.backlog = [];
    for (const frame of pending) this.sendOrKeep(frame);
  }

  private isClosed(): boolean {
    return this.currentState === "closed";
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.emit("state", state);
  }

  /**
   * In a browser: acks (and keeps the seq) when the page goes away, and reconnects at once when
   * the network comes back instead of waiting out the backoff.
   */
  private attachPageEvents(): () => void {
    const page = globalThis as {
      addEventListener?: (type: string, listener: () => void) => void;
      removeEventListener?: (type: string, listener: () => void) => void;
    };
    if (typeof page.addEventListener !== "function") return () => {};
    const onPageHide = (): void => this.acks.flush();
    const onOnline = (): void => {
      if (this.currentState !== "disconnected" || this.retryTimer === undefined) return;
      clearTimeout(this.retryTimer);
      void this.connect();
    };
    page.addEventListener("pagehide", onPageHide);
    page.addEventListener("online", onOnline);
    return () => {
      page.removeEventListener?.("pagehide", onPageHide);
      page.removeEventListener?.("online", onOnline);
    };
  }
}

function toPush(frame: PushFrame): Push {
  return withoutUndefined({
    pushId: frame.push_id,
    seq: frame.seq,
    sender: frame.sender,
    message: frame.message,
    notification: frame.notification,
    sentAt: frame.sent_at,
    expiresAt: frame.expires_at,
  });
}

/** Drops members that are undefined, so that frames and pushes carry no empty keys. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).filter(([, member]) => member !== undefined),
  ) as T;
}

function defaultPackage(): string {
  const host = (globalThis as { location?: { hostname?: string } }).location?.hostname;
  return host ? host : "web";
}

function defaultLocale(): string | undefined {
  return (globalThis as { navigator?: { language?: string } }).navigator?.language || undefined;
}

function defaultTimeZone(): string | undefined {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined;
  } catch {
    return undefined;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
