/**
 * Where the client gets its client token: a fixed one, or the app's `getToken` that asks its back
 * end for a fresh one. The token is kept and used again until it expires or the server refuses
 * it (close 4001); only then is `getToken` called, so reconnects do not load the back end.
 */

export type GetToken = () => string | Promise<string>;

export class TokenSource {
  private current: string | undefined;

  constructor(
    token: string | undefined,
    private readonly getToken: GetToken | undefined,
  ) {
    if (token === undefined && getToken === undefined) {
      throw new TypeError("herald: pass a token or a getToken function");
    }
    this.current = token;
  }

  /** Whether a refused token can be replaced by a new one. */
  get canRenew(): boolean {
    return this.getToken !== undefined;
  }

  /** The token for the next hello: the kept one, or a new one when it is missing or expired. */
  async token(nowMs: number): Promise<string> {
    if (this.current !== undefined && !(this.canRenew && isExpired(this.current, nowMs))) {
      return this.current;
    }
    if (!this.getToken) throw new Error("herald: no token");
    const fresh = await this.getToken();
    if (typeof fresh !== "string" || fresh === "") {
      throw new Error("herald: getToken gave no token");
    }
    this.current = fresh;
    return fresh;
  }

  /** The server refused the kept token: the next `token()` asks `getToken` for a new one. */
  refused(): void {
    if (this.canRenew) this.current = undefined;
  }
}

/**
 * Whether the token's own expiry (`e`, Unix seconds, in its base64url JSON payload) has passed.
 * Saves a connection that the server would refuse; a token that cannot be read is not judged.
 */
export function isExpired(token: string, nowMs: number): boolean {
  const expires = tokenExpiry(token);
  return expires !== undefined && expires * 1000 <= nowMs;
}

function tokenExpiry(token: string): number | undefined {
  const payload = token.split(".")[0];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const claims: unknown = JSON.parse(atob(base64));
    if (typeof claims === "object" && claims !== null && "e" in claims) {
      const { e } = claims as { e: unknown };
      return typeof e === "number" ? e : undefined;
    }
  } catch {
    // Not a herald token the SDK can read: leave the judgement to the server.
  }
  return undefined;
}
