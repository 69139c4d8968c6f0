// Builds dist/esm (ES modules and .d.ts for bundlers and Node), dist/herald.min.js (one file
// for a <script> tag, exposing the global `HeraldClient`) and dist/herald-sw.js (the service
// worker that shows Web Push notifications).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

rmSync(join(root, "dist"), { recursive: true, force: true });

const tsc = require.resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
  stdio: "inherit",
});

await build({
  entryPoints: [join(root, "src/index.ts")],
  outfile: join(root, "dist/herald.min.js"),
  bundle: true,
  format: "iife",
  globalName: "HeraldClient",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
});
// The service worker: one file the app serves itself, e.g. as /herald-sw.js.
await build({
  entryPoints: [join(root, "src/sw.ts")],
  outfile: join(root, "dist/herald-sw.js"),
  bundle: true,
  format: "iife",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
});
console.log("built dist/esm, dist/herald.min.js and dist/herald-sw.js");
