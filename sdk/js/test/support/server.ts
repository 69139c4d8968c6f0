/**
 * Starts the real `herald` binary on a free port with a data directory of its own and talks to
 * it as an operator (admin token) and as an app's back end (signed API) would.
 *
 * The binary is `HERALD_BIN`, by default `../../target/debug/herald` from sdk/js.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ADMIN_TOKEN = "sdk-test-admin-token-0123456789";
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export function heraldBin(): string {
  return process.env.HERALD_BIN
    ? resolve(process.env.HERALD_BIN)
    : resolve(PACKAGE_ROOT, "../../target/debug/herald");
}

/** Every server still running, so a failed test cannot leave one behind. */
const running = new Set<HeraldServer>();
/** Data directories made by tests, deleted once their servers have stopped. */
const dataDirs = new Set<string>();

/** Stops every server the tests started and deletes their data directories. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  dataDirs.clear();
}

export interface App {
  key: string;
  secret: string;
}

export class HeraldServer {
  private exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    /** `http://127.0.0.1:PORT` */
    readonly base: string,
    readonly port: number,
    readonly dataDir: string,
  ) {
    this.exited = new Promise((done) => child.once("exit", () => done()));
    running.add(this);
  }

  /** A server on a new data directory, or on `dataDir` and `port` again after a stop. */
  static async start(options: { dataDir?: string; port?: number } = {}): Promise<HeraldServer> {
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "herald-sdk-"));
    dataDirs.add(dataDir);
    const listen = `127.0.0.1:${options.port ?? 0}`;
    const child = spawn(heraldBin(), ["serve", "--data", dataDir, "--listen", listen], {
      env: { ...process.env, HERALD_ADMIN_TOKEN: ADMIN_TOKEN, HERALD_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const base = await listeningUrl(child);
    return new HeraldServer(child, base, Number(new URL(base).port), dataDir);
  }

  get wsUrl(): string {
    return `${this.base.replace("http://", "ws://")}/v1/connect`;
  }

  /** SIGTERM, and waits for the process to end (it closes its clients with 1001). */
  async stop(): Promise<void> {
    await this.signal("SIGTERM");
  }

  /** SIGKILL: a crash, the clients see their connections drop without a close frame. */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  /** Creates an app; broadcast pushes need no pause between them in tests. */
  async createApp(limits: Record<string, number> = { broadcast_min_interval_secs: 0 }) {
    const response = await fetch(`${this.base}/admin/apps`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "sdk-test", limits }),
    });
    const app = (await response.json()) as { key: string; secret: string };
    if (response.status !== 201) throw new Error(`create app: ${JSON.stringify(app)}`);
    const created: App = { key: app.key, secret: app.secret };
    return created;
  }

  /** A request signed with the app's secret (README, "Sign a request"). */
  async signed(app: App, method: string, path: string, body?: unknown): Promise<SignedAnswer> {
    const text = body === undefined ? "" : JSON.stringify(body);
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: { ...signatureHeaders(app, method, path, text), "content-type": "application/json" },
      body: method === "GET" ? undefined : text,
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** Sends a push and returns its id. */
  async push(app: App, push: Record<string, unknown>): Promise<string> {
    const answer = await this.signed(app, "POST", "/v1/pushes", push);
    if (answer.status !== 201 && answer.status !== 200) {
      throw new Error(`push: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    return answer.body.push_id as string;
  }

  /** The counts of a push's report for one platform, once the report has that platform. */
  async platformReport(
    app: App,
    pushId: string,
    platform: string,
  ): Promise<Record<string, number> | undefined> {
    const { body } = await this.signed(app, "GET", `/v1/pushes/${pushId}/report`);
    const platforms = body.platforms as Record<string, Record<string, number>> | undefined;
    return platforms?.[platform];
  }

  async expectOk(answer: Promise<SignedAnswer>): Promise<Record<string, unknown>> {
    const { status, body } = await answer;
    if (status !== 200) throw new Error(`${status} ${JSON.stringify(body)}`);
    return body;
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    if (!running.delete(this)) return;
    this.child.kill(signal);
    await this.exited;
  }
}

export interface SignedAnswer {
  status: number;
  body: Record<string, unknown>;
}

function signatureHeaders(
  app: App,
  method: string,
  path: string,
  body: string,
): Record<string, string> {
  const [bare = path, query = ""] = path.split("?");
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(12).toString("hex");
  const canonical = [
    method.toUpperCase(),
    bare,
    query,
    timestamp,
    nonce,
    createHash("sha256").update(body).digest("hex"),
  ].join("\n");
  return {
    "x-herald-key": app.key,
    "x-herald-timestamp": timestamp,
    "x-herald-nonce": nonce,
    "x-herald-signature": createHmac("sha256", app.secret).update(canonical).digest("hex"),
  };
}

/** A client token as an app's back end mints it (docs/protocol.md, "Client tokens"). */
export function mintToken(app: App, account: string, ttlSecs = 3_600): string {
  const claims = { k: app.key, a: account, e: Math.floor(Date.now() / 1000) + ttlSecs };
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${payload}.${createHmac("sha256", app.secret).update(payload).digest("hex")}`;
}

/** Reads stdout until the server says where it listens. */
async function listeningUrl(child: ChildProcess): Promise<string> {
  const stdout = child.stdout;
  if (!stdout) throw new Error("herald has no stdout");
  const lines = createInterface({ input: stdout });
  const started = new Promise<string>((done, fail) => {
    lines.on("line", (line) => {
      const url = /^herald listening on (\S+)/.exec(line)?.[1];
      if (url) done(url);
    });
    child.once("exit", (code) => fail(new Error(`herald exited with ${code} before listening`)));
    child.once("error", fail);
  });
  const timeout = new Promise<never>((_, fail) =>
    setTimeout(() => fail(new Error("herald did not start within 20 s")), 20_000).unref(),
  );
  try {
    return await Promise.race([started, timeout]);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
}
