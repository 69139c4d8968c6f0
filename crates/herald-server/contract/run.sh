#!/usr/bin/env bash
# Contract fuzzing of the native API (run.py) inside a network namespace that has only its own
# loopback: whatever the fuzzer asks herald to reach, nothing leaves this machine.
#   bash crates/herald-server/contract/run.sh [--binary PATH] [-- schemathesis run options]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec unshare --net -- bash -c 'ip link set lo up && exec python3 "$0" "$@"' "$here/run.py" "$@"
