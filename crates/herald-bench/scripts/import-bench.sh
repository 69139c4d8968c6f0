#!/usr/bin/env bash
# Bulk onboarding benchmark: a fresh herald (release build) on SQLite, or on PostgreSQL with
# STORE=postgres://..., imports FILE (made by import-file.py) with `herald account import`.
#
#   python3 crates/herald-bench/scripts/import-file.py 1000000 > /tmp/users.ndjson
#   crates/herald-bench/scripts/import-bench.sh /tmp/users.ndjson
#   STORE=postgres://postgres@127.0.0.1:5432/test BATCH=10000 crates/herald-bench/scripts/import-bench.sh /tmp/users.ndjson
#
# BATCH is the app's accounts_per_batch (what one store transaction applies; default 1000).
# PERCALL=1 then imports the same names again, into a second app, through the per-call API
# (`POST /v1/accounts/import`, 1,000 names a call, one CLI process per call).
set -euo pipefail
file=$1
herald=${HERALD_BIN:-target/release/herald}
batch=${BATCH:-1000}
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
token=bench-admin-token-0123456789
schema="herald_bench_import_$$"
store=${STORE:-sqlite}
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ $store == postgres* ]]; then
        psql -q "$store" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
    fi
    [ -n "${KEEP:-}" ] && echo "kept $data" || rm -rf "$data"
}
trap cleanup EXIT
HERALD_ADMIN_TOKEN=$token HERALD_STORE=$store HERALD_POSTGRES_SCHEMA=$schema \
    "$herald" serve --data "$data" --listen "127.0.0.1:$port" >"$data/log" 2>&1 &
pid=$!
export HERALD_SERVER=http://127.0.0.1:$port HERALD_ADMIN_TOKEN=$token
for _ in $(seq 100); do curl -sf "$HERALD_SERVER/healthz" >/dev/null && break; sleep 0.1; done
app=$("$herald" app create --name import --limits "{\"accounts_per_batch\":$batch}" --json)
export HERALD_APP_KEY=$(echo "$app" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
export HERALD_APP_SECRET=$(echo "$app" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
"$herald" attr names $(for n in 0 1 2 3 4 5 6 7 8 9; do echo "--set $n=a$n"; done) >/dev/null
lines=$(wc -l <"$file")
echo "store $store, accounts_per_batch $batch, $lines lines ($(du -h "$file" | cut -f1))"
start=$(date +%s.%N)
"$herald" account import --file "$file"
end=$(date +%s.%N)
python3 -c "print(f'import: {($end - $start):.1f} s, {$lines / ($end - $start):.0f} accounts/s')"
ps -o rss= -p "$pid" | awk '{printf "server RSS after: %.0f MiB\n", $1 / 1024}'
[ "$store" = sqlite ] && du -sh "$data" | awk '{print "data directory: " $1}'
if [ -n "${PERCALL:-}" ]; then
    app=$("$herald" app create --name percall --json)
    export HERALD_APP_KEY=$(echo "$app" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    export HERALD_APP_SECRET=$(echo "$app" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
    python3 -c 'import json,sys
for line in open(sys.argv[1]): print(json.loads(line)["account"])' "$file" >"$data/names"
    start=$(date +%s.%N)
    xargs -n 1000 "$herald" account import <"$data/names" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print(f'per-call import of the names: {($end - $start):.1f} s, {$lines / ($end - $start):.0f} accounts/s')"
fi
