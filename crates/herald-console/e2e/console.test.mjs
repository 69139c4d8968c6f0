// The console in a real browser (Debian's Chromium, driven by playwright-core) against the real
// herald binary: sign in, compose a tag push with its estimate, test-send, send, watch the
// report reach delivered for connected test clients, recall.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import http from "node:http";
import { createHmac, randomUUID } from "node:crypto";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const BIN = resolve(process.env.HERALD_BIN ?? "../../../target/debug/herald");
const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";
const SHOTS = new URL("./screenshots/", import.meta.url).pathname;

let herald, base, data, browser, app;
const clients = [];

// Starts herald on a free port and waits for its "listening" line.
function startHerald() {
  data = mkdtempSync(join(tmpdir(), "herald-console-e2e-"));
  const child = spawn(BIN, ["serve", "--data", data, "--listen", "127.0.0.1:0"], {
    env: { ...process.env, HERALD_ADMIN_TOKEN: ADMIN_TOKEN, HERALD_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((ok, fail) => {
    let seen = "";
    const timer = setTimeout(() => fail(new Error("herald did not start: " + seen)), 60_000);
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(/herald listening on (\S+)/);
      if (match) { clearTimeout(timer); ok({ child, url: match[1] }); }
    });
    child.on("exit", (code) => fail(new Error("herald exited with " + code)));
  });
}

function clientToken(account) {
  const claims = { k: app.key, a: account, e: Math.floor(Date.now() / 1000) + 3600 };
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return payload + "." + createHmac("sha256", app.secret).update(payload).digest("hex");
}

// A test device speaking the raw protocol (docs/protocol.md): acks every push it gets.
function connect(account, platform) {
  const ws = new WebSocket(base.replace("http", "ws") + "/v1/connect");
  const device = { account, ws, pushes: [], recalls: [] };
  ws.on("open", () => ws.send(JSON.stringify({
    type: "hello", v: 1, token: clientToken(account), device_id: `${account}-${randomUUID()}`,
    platform, package: "com.example.shop",
  })));
  ws.on("message", (raw) => {
    const frame = JSON.parse(raw.toString());
    if (frame.type === "push") {
      device.pushes.push(frame);
      ws.send(JSON.stringify({ type: "ack", seqs: [frame.seq] }));
    } else if (frame.type === "recall") {
      device.recalls.push(frame);
    }
  });
  clients.push(device);
  return new Promise((ok, fail) => {
    ws.on("message", function welcome(raw) {
      if (JSON.parse(raw.toString()).type === "welcome") { ws.off("message", welcome); ok(device); }
    });
    ws.on("error", fail);
  });
}

// `herald listen` as an operator runs it: connects as a device, prints the push it gets as a
// JSON line and exits after one.
function listen(account, device) {
  const child = spawn(BIN, ["listen", "--account", account, "--device", device,
    "--platform", "android", "--count", "1", "--timeout", "30"], {
    env: { ...process.env, HERALD_SERVER: base, HERALD_APP_KEY: app.key, HERALD_APP_SECRET: app.secret },
  });
  let out = "";
  child.stdout.on("data", (chunk) => { out += chunk; });
  child.stderr.on("data", (chunk) => { out += chunk; });
  const done = new Promise((ok, fail) => child.on("exit", (code) =>
    code === 0 ? ok(out) : fail(new Error(`herald listen exited ${code}: ${out}`))));
  // Connected once the server counts its session beside the three test devices.
  const connected = until(`${device} connected`, async () => (await onlineCount()) >= 4);
  return { connected, done };
}

// Sessions online on the server (its /metrics gauge).
async function onlineCount() {
  const text = await (await fetch(base + "/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith("herald_gateway_sessions "));
  return line ? Number(line.split(" ")[1]) : 0;
}

async function until(what, check, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail("timed out waiting for " + what);
}

before(async () => {
  const started = await startHerald();
  herald = started.child;
  base = started.url;
  const res = await fetch(base + "/admin/apps", {
    method: "POST",
    headers: { authorization: "Bearer " + ADMIN_TOKEN, "content-type": "application/json" },
    body: JSON.stringify({ name: "shop" }),
  });
  assert.equal(res.status, 201);
  app = await res.json();
  await connect("alice", "ios");
  await connect("bob", "android");
  await connect("carol", "android");
  // alice and bob follow the sale; carol does not.
  execFileSync(BIN, ["tag", "add", "--account", "alice", "--account", "bob", "--tag", "vip"], {
    env: { ...process.env, HERALD_SERVER: base, HERALD_APP_KEY: app.key, HERALD_APP_SECRET: app.secret },
  });
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  for (const client of clients) client.ws.close();
  if (browser) await browser.close();
  if (herald) herald.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("sign in, compose with estimate, test-send, send, watch delivery, recall", async () => {
  // A fresh profile each run: nothing of an earlier session is reused.
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const violations = [];
  page.on("console", (msg) => {
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
  });
  page.on("dialog", (dialog) => dialog.accept());
  const scriptErrors = [];
  page.on("pageerror", (err) => scriptErrors.push(err.message));

  await page.goto(base + "/console");
  assert.match(page.url(), /\/console\/signin$/);
  await page.fill("#app_key", app.key);
  await page.fill("#app_secret", "not-the-secret");
  await page.press("#app_secret", "Enter");
  await page.waitForSelector("#signin-error");
  assert.match(await page.textContent("#signin-error"), /Wrong credentials/);
  await page.fill("#app_key", app.key);
  await page.fill("#app_secret", app.secret);
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Overview");
  await page.screenshot({ path: SHOTS + "overview.png", fullPage: true });

  await page.click("nav >> text=Compose");
  await page.waitForSelector("#compose");
  await page.fill("#tags_all", "vip");
  await until("the estimate of the tag", async () =>
    (await page.textContent("#estimate").catch(() => "")).includes("ios: 1"));
  // The same numbers as the API's estimate of the same audience.
  const api = JSON.parse(execFileSync(BIN, ["audience", "estimate", "--audience", '{"tag":"vip"}', "--json"], {
    env: { ...process.env, HERALD_SERVER: base, HERALD_APP_KEY: app.key, HERALD_APP_SECRET: app.secret },
  }).toString());
  assert.equal(api.total, 2);
  assert.equal((await page.textContent("#estimate-total")).trim(), String(api.total));
  for (const [platform, count] of Object.entries(api.by_platform)) {
    assert.equal((await page.textContent(`[data-platform="${platform}"]`)).trim(), String(count), platform);
  }

  await page.fill("#title", "Summer sale");
  await page.fill("#body", "Everything half price today");
  assert.equal((await page.textContent('[data-preview="ios-title"]')).trim(), "Summer sale");
  await page.fill("#message", '{"kind": "promo"');
  assert.match(await page.textContent("#message-json"), /Not valid JSON/);
  await page.fill("#message", '{"kind": "promo"}');
  assert.equal((await page.textContent("#message-json")).trim(), "");
  await page.screenshot({ path: SHOTS + "compose.png", fullPage: true });

  const alice = clients[0];
  await page.fill("#test_account", "alice");
  await page.click("#test-send");
  await page.waitForSelector("#notice");
  assert.match(await page.textContent("#notice"), /Test push sent to alice/);
  await until("the test push on alice's device", () => alice.pushes.length === 1);
  assert.equal(clients[1].pushes.length, 0, "the test went to alice only");

  // The operator's own `herald listen` on a second device of bob's gets it too.
  const listener = listen("bob", "bob-cli");
  await listener.connected;
  await page.click("#send");
  await page.waitForURL(/\/console\/report\?/);
  const pushId = new URL(page.url()).searchParams.get("push");
  await until("delivery to alice and bob", () =>
    clients[0].pushes.length === 2 && clients[1].pushes.length === 1);
  assert.equal(clients[2].pushes.length, 0, "carol is not in the audience");
  const received = JSON.parse((await listener.done).trim().split("\n").pop());
  assert.equal(received.push_id, pushId, "herald listen printed the push");
  // The report refreshes by itself until the three devices' deliveries show, and the
  // per-minute timeline with them.
  await until("the report to show 3 delivered", async () =>
    (await page.textContent('#funnel [data-stage="delivered"]').catch(() => "")).trim().startsWith("3 "));
  await until("the timeline to count the deliveries", async () => {
    const raw = await page.getAttribute("#report-body .chart", "data-chart").catch(() => null);
    const delivered = raw ? JSON.parse(raw)[1] ?? [] : [];
    return delivered.reduce((sum, n) => sum + (n ?? 0), 0) === 3;
  });
  await page.waitForSelector("#report-body .chart canvas");
  await page.screenshot({ path: SHOTS + "report.png", fullPage: true });

  // The recall button comes with the refreshed numbers once the push is sent.
  await page.click("#recall-push");
  await page.waitForURL(/\/console\/report\?/);
  await until("recall frames on both devices", () =>
    clients[0].recalls.some((r) => r.push_id === pushId) && clients[1].recalls.length === 1);
  await page.waitForSelector("#recalled");

  await page.click("nav >> text=Pushes");
  await page.waitForSelector(`[data-push="${pushId}"]`);
  await page.screenshot({ path: SHOTS + "pushes.png", fullPage: true });

  // The device lookup shows who got it.
  await page.click("nav >> text=Devices");
  await page.fill("#l-account", "alice");
  await page.press("#l-account", "Enter");
  await page.waitForSelector("#devices");
  assert.equal((await page.textContent("#online")).trim(), "yes");
  assert.equal((await page.textContent("#tags")).trim(), "vip");
  assert.ok((await page.textContent("#devices")).includes(pushId), "alice's device received the push");
  await page.screenshot({ path: SHOTS + "devices.png", fullPage: true });
  await page.click("nav >> text=Settings");
  await page.waitForSelector("#limits");
  await page.screenshot({ path: SHOTS + "settings.png", fullPage: true });
  assert.deepEqual(violations, [], "no Content-Security-Policy violations");
  assert.deepEqual(scriptErrors, [], "no script errors");
  await context.close();
});

test("a push scheduled for tomorrow is cancelled from the list", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(base + "/console/signin");
  await page.fill("#app_key", app.key);
  await page.fill("#app_secret", app.secret);
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Overview");
  await page.click("nav >> text=Compose");
  await page.fill("#tags_all", "vip");
  await page.fill("#title", "Tomorrow's sale");
  await page.check("#w-at");
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 16);
  await page.fill("#push_at", tomorrow);
  await page.click("#send");
  await page.waitForURL(/\/console\/report\?/);
  const pushId = new URL(page.url()).searchParams.get("push");
  await page.click("nav >> text=Pushes");
  const row = `[data-push="${pushId}"]`;
  await page.waitForSelector(row);
  assert.match(await page.textContent(`${row} .status`), /scheduled/);
  await page.screenshot({ path: SHOTS + "pushes-scheduled.png", fullPage: true });
  await page.click(`${row} button.cancel`);
  await until("the push to show cancelled", async () =>
    /cancelled/.test(await page.textContent(`${row} .status`).catch(() => "")));
  const alice = clients[0];
  assert.ok(!alice.pushes.some((p) => p.push_id === pushId), "nobody got the cancelled push");
  await context.close();
});

test("the admin signs in with the keyboard alone and sees every app", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(base + "/console/signin");
  await page.keyboard.press("Tab"); // the admin token field is the first field
  await page.keyboard.type(ADMIN_TOKEN);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#apps");
  assert.ok((await page.textContent("#apps")).includes("shop"));
  await page.screenshot({ path: SHOTS + "apps.png", fullPage: true });
  await context.close();
});

// A reverse proxy that serves herald under /ops/herald/, as operators often do.
function subPathProxy(prefix) {
  const target = new URL(base);
  const server = http.createServer((req, res) => {
    if (!req.url.startsWith(prefix)) { res.writeHead(404); res.end(); return; }
    const upstream = http.request({
      host: target.hostname, port: target.port, method: req.method,
      path: req.url.slice(prefix.length - 1), headers: req.headers,
    }, (answer) => { res.writeHead(answer.statusCode, answer.headers); answer.pipe(res); });
    req.pipe(upstream);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

test("the console works behind a reverse proxy under a sub-path", async () => {
  const proxy = await subPathProxy("/ops/herald/");
  const proxied = `http://127.0.0.1:${proxy.address().port}/ops/herald`;
  const context = await browser.newContext({ viewport: { width: 1024, height: 800 } });
  const page = await context.newPage();
  try {
    await page.goto(proxied + "/console");
    assert.equal(page.url(), proxied + "/console/signin");
    await page.fill("#app_key", app.key);
    await page.fill("#app_secret", app.secret);
    await page.click("button[type=submit]");
    await page.waitForSelector("#devices-total");
    await page.click("nav >> text=Compose");
    await page.fill("#tags_all", "vip");
    await until("the estimate through the proxy", async () =>
      (await page.textContent("#estimate-total").catch(() => "")).trim() === "2");
    assert.ok(page.url().startsWith(proxied + "/console/compose"), page.url());
  } finally {
    await context.close();
    proxy.close();
  }
});
