#!/usr/bin/env bash
# The bulk onboarding figures of BENCHMARKS.md in one run: SQLite at 1,000,000 and 10,000,000
# accounts, PostgreSQL at 1,000,000, and the per-call API at 1,000,000 names. Makes the files
# (361 MB and 3.6 GB) unless they exist; needs about 12 GB free in /tmp.
#
#   cargo build --release -p herald-server
#   crates/herald-bench/scripts/import-suite.sh
set -euo pipefail
here=$(dirname "$0")
for n in 1000000 10000000; do
    [ -s "/tmp/users$n.ndjson" ] || python3 "$here/import-file.py" "$n" >"/tmp/users$n.ndjson"
done
batch=${BATCH:-10000}
echo "== SQLite, 1,000,000, then the per-call API"
BATCH=$batch PERCALL=1 "$here/import-bench.sh" /tmp/users1000000.ndjson
echo "== PostgreSQL, 1,000,000"
STORE=${PG:-postgres://postgres@127.0.0.1:5432/test} BATCH=$batch "$here/import-bench.sh" /tmp/users1000000.ndjson
echo "== SQLite, 10,000,000"
BATCH=$batch "$here/import-bench.sh" /tmp/users10000000.ndjson
