//! The two stores side by side, through the real binary: account import (accounts/s), the
//! batch tag API (assignments/s) and push accept latency (p50, p99 of `POST /v1/pushes`, to
//! account lists and to everyone), first on the embedded SQLite store, then on PostgreSQL, in
//! one run on the same machine.
//!
//! `cargo bench -p herald-server --bench stores` prints Markdown for BENCHMARKS.md. Environment:
//! `HERALD_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432/test`; a schema of its own,
//! dropped afterwards), `HERALD_BENCH_ACCOUNTS` (default 100,000), `HERALD_BENCH_ASSIGNMENTS`
//! (default 1,000,000), `HERALD_BENCH_PUSHES` (default 2,000 to account lists, a tenth as many
//! broadcasts), `HERALD_BENCH_CALLERS` (concurrent callers, default 4). Without `--bench` (as
//! `cargo test` runs it) a small smoke run of both stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use support::{cpu_time, ms, quantile, Client, Server};

const ACCOUNTS_PER_CALL: usize = 1_000;
const TAGS_PER_CALL: usize = 10;
const ACCOUNTS_PER_PUSH: usize = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

struct Config {
    accounts: usize,
    assignments: usize,
    pushes: usize,
    callers: usize,
}

/// What one store gave.
struct Figures {
    import: f64,
    assignments: f64,
    list_push: (Duration, Duration),
    broadcast: (Duration, Duration),
    server_cpu: Duration,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let config = if full {
        Config {
            accounts: env_usize("HERALD_BENCH_ACCOUNTS", 100_000).max(ACCOUNTS_PER_CALL),
            assignments: env_usize("HERALD_BENCH_ASSIGNMENTS", 1_000_000),
            pushes: env_usize("HERALD_BENCH_PUSHES", 2_000).max(10),
            callers: env_usize("HERALD_BENCH_CALLERS", 4).max(1),
        }
    } else {
        Config { accounts: 2_000, assignments: 20_000, pushes: 20, callers: 2 }
    };
    let url = std::env::var("HERALD_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        println!(
            "{} accounts, {} tag assignments, {} list pushes and {} broadcasts, {} callers",
            config.accounts,
            config.assignments,
            config.pushes,
            config.pushes / 10,
            config.callers
        );
        let sqlite = run(&config, &[]).await;
        let schema = format!("herald_bench_{}", std::process::id());
        let pg_url =
            format!("{url}{}application_name={schema}", if url.contains('?') { '&' } else { '?' });
        let postgres = run(
            &config,
            &[("HERALD_STORE", pg_url.as_str()), ("HERALD_POSTGRES_SCHEMA", schema.as_str())],
        )
        .await;
        herald_store::test_schemas::drop(&url, &schema).await.unwrap();
        print_table(&sqlite, &postgres);
    });
}

async fn run(config: &Config, env: &[(&str, &str)]) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), env);
    let limits = json!({
        "requests_per_second": 1_000_000,
        "broadcast_min_interval_secs": 0,
        "broadcast_daily_quota": 1_000_000,
    });
    let (_, client) = Client::new_app(&server.base, limits).await;
    let client = Arc::new(client);
    let pid = server.child.id().to_string();
    let cpu_before = cpu_time(&pid);

    let imports: Vec<String> = (0..config.accounts)
        .step_by(ACCOUNTS_PER_CALL)
        .map(|first| {
            let names: Vec<String> =
                (first..(first + ACCOUNTS_PER_CALL).min(config.accounts)).map(account).collect();
            json!({ "accounts": names }).to_string()
        })
        .collect();
    let (import_wall, _) = calls(&client, "/v1/accounts/import", imports, config.callers).await;

    let tag_calls = config.assignments.div_ceil(ACCOUNTS_PER_CALL * TAGS_PER_CALL).max(1);
    let tag_bodies = (0..tag_calls).map(|call| tag_call(call, config.accounts)).collect();
    let (tag_wall, _) = calls(&client, "/v1/tags/add", tag_bodies, config.callers).await;

    let mut rng = StdRng::seed_from_u64(7);
    let list_bodies = (0..config.pushes)
        .map(|n| {
            let to: Vec<String> = (0..ACCOUNTS_PER_PUSH)
                .map(|_| account(rng.gen_range(0..config.accounts)))
                .collect();
            json!({"audience": {"accounts": to}, "message": {"n": n}}).to_string()
        })
        .collect();
    let (_, list_latencies) = calls(&client, "/v1/pushes", list_bodies, config.callers).await;
    let broadcast_bodies = (0..config.pushes / 10)
        .map(|n| json!({"audience": {"all": true}, "message": {"n": n}}).to_string())
        .collect();
    let (_, broadcast_latencies) =
        calls(&client, "/v1/pushes", broadcast_bodies, config.callers).await;
    let server_cpu = cpu_time(&pid) - cpu_before;
    server.stop();

    let assignments = tag_calls * ACCOUNTS_PER_CALL * TAGS_PER_CALL;
    Figures {
        import: config.accounts as f64 / import_wall.as_secs_f64(),
        assignments: assignments as f64 / tag_wall.as_secs_f64(),
        list_push: p50_p99(list_latencies),
        broadcast: p50_p99(broadcast_latencies),
        server_cpu,
    }
}

/// Sends `bodies` to `path` from `callers` concurrent callers; every answer must be a success.
/// Returns the wall time and each call's latency.
async fn calls(
    client: &Arc<Client>,
    path: &'static str,
    bodies: Vec<String>,
    callers: usize,
) -> (Duration, Vec<Duration>) {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (client, bodies, next) = (client.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                let sent = Instant::now();
                let (status, reply) = client.post(path, body.clone()).await;
                latencies.push(sent.elapsed());
                assert!((200..300).contains(&status), "{path}: {status} {reply}");
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (started.elapsed(), latencies)
}

fn account(n: usize) -> String {
    format!("user-{n}")
}

/// A block of 1,000 consecutive accounts and 10 distinct tags out of 100.
fn tag_call(call: usize, accounts: usize) -> String {
    let blocks = (accounts / ACCOUNTS_PER_CALL).max(1);
    let first = (call % blocks) * ACCOUNTS_PER_CALL;
    let names: Vec<String> = (first..first + ACCOUNTS_PER_CALL).map(account).collect();
    let mut rng = StdRng::seed_from_u64(call as u64);
    let tags: Vec<String> = rand::seq::index::sample(&mut rng, 100, TAGS_PER_CALL)
        .into_iter()
        .map(|t| format!("tag-{t}"))
        .collect();
    json!({ "accounts": names, "tags": tags }).to_string()
}

fn p50_p99(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort_unstable();
    (quantile(&latencies, 0.5), quantile(&latencies, 0.99))
}

fn print_table(sqlite: &Figures, postgres: &Figures) {
    let rate = |v: f64| format!("{v:.0}");
    // For rates, how many times slower PostgreSQL is; for latencies, how many times longer.
    let slower = |s: f64, p: f64| format!("{:.2}×", s / p);
    let longer =
        |s: Duration, p: Duration| format!("{:.2}×", p.as_secs_f64() / s.as_secs_f64().max(1e-9));
    let rows: [(&str, String, String, String); 7] = [
        (
            "account import, accounts/s",
            rate(sqlite.import),
            rate(postgres.import),
            slower(sqlite.import, postgres.import),
        ),
        (
            "tag batch API, assignments/s",
            rate(sqlite.assignments),
            rate(postgres.assignments),
            slower(sqlite.assignments, postgres.assignments),
        ),
        (
            "push to 10 accounts, accept p50",
            ms(sqlite.list_push.0),
            ms(postgres.list_push.0),
            longer(sqlite.list_push.0, postgres.list_push.0),
        ),
        (
            "push to 10 accounts, accept p99",
            ms(sqlite.list_push.1),
            ms(postgres.list_push.1),
            longer(sqlite.list_push.1, postgres.list_push.1),
        ),
        (
            "broadcast, accept p50",
            ms(sqlite.broadcast.0),
            ms(postgres.broadcast.0),
            longer(sqlite.broadcast.0, postgres.broadcast.0),
        ),
        (
            "broadcast, accept p99",
            ms(sqlite.broadcast.1),
            ms(postgres.broadcast.1),
            longer(sqlite.broadcast.1, postgres.broadcast.1),
        ),
        (
            "server CPU time, whole run",
            format!("{:.2} s", sqlite.server_cpu.as_secs_f64()),
            format!("{:.2} s", postgres.server_cpu.as_secs_f64()),
            longer(sqlite.server_cpu, postgres.server_cpu),
        ),
    ];
    println!();
    println!("| | SQLite | PostgreSQL | PostgreSQL cost vs SQLite |");
    println!("|---|---:|---:|---:|");
    for (what, s, p, ratio) in rows {
        println!("| {what} | {s} | {p} | {ratio} |");
    }
}
