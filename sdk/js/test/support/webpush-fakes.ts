/** Stand-ins for the browser's PushManager and Cache Storage, for tests without a browser. */

import type {
  CacheStorageLike,
  PushManagerLike,
  PushSubscriptionLike,
} from "../../src/webpush.js";

// A P-256 public key as a welcome carries it (65 bytes, base64url).
export const KEY =
  "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
export const OTHER_KEY =
  "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";

/** A browser's PushManager: one subscription at most, as the real one. */
export class FakePushManager implements PushManagerLike {
  current: FakeSubscription | undefined;
  subscribeCalls: Array<{ userVisibleOnly: boolean; applicationServerKey: Uint8Array }> = [];
  refuse = false;

  async getSubscription(): Promise<PushSubscriptionLike | null> {
    return this.current ?? null;
  }

  async subscribe(options: {
    userVisibleOnly: boolean;
    applicationServerKey: Uint8Array<ArrayBuffer>;
  }): Promise<PushSubscriptionLike> {
    this.subscribeCalls.push(options);
    if (this.refuse) throw new DOMException("permission denied", "NotAllowedError");
    if (this.current) throw new DOMException("other key", "InvalidStateError");
    const n = this.subscribeCalls.length;
    this.current = new FakeSubscription(this, options.applicationServerKey, n);
    return this.current;
  }
}

class FakeSubscription implements PushSubscriptionLike {
  readonly options: { applicationServerKey: ArrayBuffer };

  constructor(
    private readonly manager: FakePushManager,
    key: Uint8Array<ArrayBuffer>,
    private readonly n: number,
  ) {
    this.options = { applicationServerKey: key.slice().buffer };
  }

  toJSON(): unknown {
    return {
      endpoint: `https://push.example/send/${this.n}`,
      expirationTime: null,
      // A real browser's keys: the server checks them.
      keys: { p256dh: KEY, auth: "BTBZMqHH6r4Tts7J_aSIgg" },
    };
  }

  async unsubscribe(): Promise<boolean> {
    this.manager.current = undefined;
    return true;
  }
}

/** Cache Storage in memory, shared by the "page" and the "worker" of a test. */
export function fakeCaches(): CacheStorageLike {
  const caches = new Map<string, Map<string, string>>();
  return {
    async open(name) {
      const cache = caches.get(name) ?? new Map<string, string>();
      caches.set(name, cache);
      return {
        async put(request, response) {
          cache.set(request, await response.text());
        },
        async match(request) {
          const body = cache.get(request);
          return body === undefined ? undefined : { json: async () => JSON.parse(body) };
        },
      };
    },
    async delete(name) {
      return caches.delete(name);
    },
  };
}
