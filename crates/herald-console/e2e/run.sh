#!/usr/bin/env bash
# End-to-end test of the console: Debian's Chromium driven by playwright-core against the real
# herald binary (HERALD_BIN, default target/debug/herald of the repository). Browsers cannot be
# downloaded here, so Chromium comes from apt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
export HERALD_BIN="${HERALD_BIN:-$repo/target/debug/herald}"
if [ ! -x "$HERALD_BIN" ]; then
  echo "no herald binary at $HERALD_BIN: build it with cargo build -p herald-server" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
node --test console.test.mjs
