#!/usr/bin/env bash
# Crash during fan-out at scale: herald-server's tests/crash.rs in a release build with
# 1,000,000 accounts (ACCOUNTS), each with a device, every tenth with an FCM token. The test
# seeds them into the store, then for each kill point sends a push to all of them, SIGKILLs the
# server at that point, starts it again and checks the push is delivered once to SAMPLE
# reconnecting devices and reported exactly. Prints the seed time and, per kill point, the time
# from the 201 to the pause, the restart-to-done time and the vendor sends.
#
#   crates/herald-bench/scripts/crash-bench.sh
#   ACCOUNTS=200000 SAMPLE=all crates/herald-bench/scripts/crash-bench.sh
#   HERALD_TEST_STORE=postgres crates/herald-bench/scripts/crash-bench.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HERALD_CRASH_ACCOUNTS=${ACCOUNTS:-1000000}
export HERALD_CRASH_SAMPLE=${SAMPLE:-1000}
started=$(date +%s)
cargo test --release -p herald-server --test crash -- --nocapture 2>&1 |
    grep -E '^(seeded|[a-z._]+:|test result|.*panicked)'
echo "whole run: $(($(date +%s) - started)) s"
