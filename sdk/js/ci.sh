#!/usr/bin/env bash
# Everything CI needs for the JavaScript SDK, from a fresh clone: Chromium (Debian's package),
# dependencies from the lockfile, typecheck, build, unit, integration and browser tests.
# Exits non-zero on the first failure.
#
# HERALD_BIN: the herald binary the tests start (default ../../target/debug/herald).
# CHROMIUM:   the browser (default /usr/bin/chromium, installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")"
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }

# Runs one vitest project and adds its counts to the closing line.
passed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
run_tests() {
  NO_COLOR=1 npx vitest run --project "$1" 2>&1 | tee "$log"
  local count
  count=$(sed -n 's/^ *Tests  *\([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -1)
  passed=$((passed + ${count:-0}))
}

export HERALD_BIN="${HERALD_BIN:-$(pwd)/../../target/debug/herald}"
if [[ ! -x "$HERALD_BIN" ]]; then
  echo "herald binary not found at $HERALD_BIN (build it, or set HERALD_BIN)" >&2
  exit 1
fi

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  step "install chromium"
  # Playwright cannot download browsers here: Debian's build is used instead.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

step "npm ci"
npm ci --no-audit --no-fund

step "typecheck"
npm run --silent typecheck

step "build"
npm run --silent build
# The published entry point must load in plain Node, outside the test runner's transforms.
node --input-type=module -e '
  import { Herald } from "herald-client";
  if (typeof Herald !== "function") throw new Error("herald-client exports no Herald");'

step "unit tests"
run_tests unit

step "integration tests (herald: $HERALD_BIN)"
run_tests integration

step "browser test (chromium: $CHROMIUM)"
run_tests browser

printf '\nsdk/js checks took %ss\n' "$((SECONDS - started))"
echo "sdk/js: $passed passed, 0 failed"
