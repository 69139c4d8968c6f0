/**
 * The example page in Chromium (Debian's, `CHROMIUM` or /usr/bin/chromium) against the real
 * server: it connects with the single-file bundle, lists a push, reports its open on a click,
 * removes a recalled push and, reloaded, resumes without showing old pushes again.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { eventually } from "../support/events.js";
import { HeraldServer, mintToken, stopAllServers } from "../support/server.js";

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let pages: Server;
let pagesBase: string;
let userDataDir: string;
let browser: BrowserContext;

beforeAll(async () => {
  if (!existsSync(join(PACKAGE_ROOT, "dist/herald.min.js"))) {
    throw new Error("dist/herald.min.js is missing: run `npm run build` first");
  }
  pages = await serveFiles(PACKAGE_ROOT);
  pagesBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  userDataDir = mkdtempSync(join(tmpdir(), "herald-chromium-"));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((done) => pages?.close(done));
  await stopAllServers();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

it("the example page receives a push, reports its open, and resumes after a reload", async () => {
  const server = await HeraldServer.start();
  const app = await server.createApp();
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  const query = new URLSearchParams({ url: server.base, token: mintToken(app, "erin") });
  await page.goto(`${pagesBase}/examples/index.html?${query}`);
  await expect.poll(() => page.textContent("#state"), { timeout: 10_000 }).toBe("connected");

  const pushId = await server.push(app, {
    audience: { accounts: ["erin"] },
    message: { kind: "promo" },
    notification: { title: "Sale", body: "Today only" },
  });
  const item = page.locator(`#pushes li[data-push-id="${pushId}"]`);
  await item.waitFor({ timeout: 10_000 });
  expect(await item.textContent()).toContain("Sale: Today only");

  await item.click();
  await expect.poll(() => item.getAttribute("class")).toBe("opened");
  const report = await eventually(async () => {
    const web = await server.platformReport(app, pushId, "web");
    return web?.opened === 1 ? web : undefined;
  });
  expect(report).toMatchObject({ delivered: 1, opened: 1 });

  await page.reload();
  await expect.poll(() => page.textContent("#state"), { timeout: 10_000 }).toBe("connected");
  const next = await server.push(app, { audience: { accounts: ["erin"] }, message: { n: 2 } });
  await page.locator(`#pushes li[data-push-id="${next}"]`).waitFor({ timeout: 10_000 });
  // The push acked before the reload is not shown again.
  expect(await listedPushIds(page)).toEqual([next]);

  await server.expectOk(server.signed(app, "POST", `/v1/pushes/${next}/recall`));
  await expect.poll(() => listedPushIds(page), { timeout: 10_000 }).toEqual([]);
  expect(errors).toEqual([]);
  await page.close();
});

function listedPushIds(page: Page): Promise<string[]> {
  return page.$$eval("#pushes li", (items) =>
    items.map((item) => (item as HTMLElement).dataset.pushId ?? ""),
  );
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
};

/** Serves the package's files (the example and the built bundle) on a free port. */
function serveFiles(root: string): Promise<Server> {
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname));
    const file = join(root, path);
    if (!file.startsWith(root) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    const type = CONTENT_TYPES[extname(file)] ?? "application/octet-stream";
    response.writeHead(200, { "content-type": type }).end(readFileSync(file));
  });
  return new Promise((done) => server.listen(0, "127.0.0.1", () => done(server)));
}
