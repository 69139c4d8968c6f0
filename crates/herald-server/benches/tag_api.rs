//! Batch tag API benchmark: tag assignments per second through `POST /v1/tags/add` of the real
//! `herald` binary on its embedded SQLite store, each call adding 10 tags to 1,000 accounts
//! (10,000 assignments), sent by a few concurrent callers, signed as an app back end signs.
//!
//! `cargo bench -p herald-server --bench tag_api` prints Markdown for BENCHMARKS.md. Environment:
//! `HERALD_BENCH_ASSIGNMENTS` (default 1,000,000), `HERALD_BENCH_ACCOUNTS` (imported first,
//! default 100,000), `HERALD_BENCH_CALLERS` (concurrent callers, default 4),
//! `HERALD_BENCH_TAG_POOL` (distinct tags the calls draw from, default 100),
//! `HERALD_BENCH_APP_TAGS` (distinct tags given to the app before timing, default 0: an app's
//! index update scans its tags), `HERALD_BENCH_SYNC_FULL` (`1` default, `0` runs the server with
//! `sqlite_sync_full = false`). Without `--bench` (as `cargo test` runs it) a two-call smoke
//! test. After the HTTP run the server is stopped and the same kind of batch is timed against
//! `SqliteStore::update_tags` in-process (50 calls), to tell the store's share from the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use herald_store::{SqliteOptions, SqliteStore, Store, TagOp, TagUpdate};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use support::{cpu_time, ms, quantile, Client, Server};
const ACCOUNTS_PER_CALL: usize = 1_000;
const TAGS_PER_CALL: usize = 10;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn env_usize(name: &str, default: usize) -> usize {
    usize::try_from(env_number(name, default as u64)).unwrap_or(default)
}

struct Config {
    assignments: usize,
    accounts: usize,
    callers: usize,
    tag_pool: usize,
    app_tags: usize,
    sync_full: bool,
    store_calls: usize,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let config = if full {
        Config {
            assignments: env_usize("HERALD_BENCH_ASSIGNMENTS", 1_000_000),
            accounts: env_usize("HERALD_BENCH_ACCOUNTS", 100_000).max(ACCOUNTS_PER_CALL),
            callers: env_usize("HERALD_BENCH_CALLERS", 4).max(1),
            tag_pool: env_usize("HERALD_BENCH_TAG_POOL", 100).max(TAGS_PER_CALL),
            app_tags: env_usize("HERALD_BENCH_APP_TAGS", 0),
            sync_full: env_number("HERALD_BENCH_SYNC_FULL", 1) != 0,
            store_calls: 50,
        }
    } else {
        Config {
            assignments: 20_000,
            accounts: 2_000,
            callers: 2,
            tag_pool: 20,
            app_tags: 20,
            sync_full: true,
            store_calls: 2,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(config));
}

fn account(n: usize) -> String {
    format!("user-{n}")
}

/// The body of tag call `call`: a block of 1,000 consecutive accounts and 10 distinct tags.
fn tag_call(call: usize, config: &Config) -> (Vec<String>, Vec<String>) {
    let blocks = config.accounts / ACCOUNTS_PER_CALL;
    let first = (call % blocks) * ACCOUNTS_PER_CALL;
    let accounts = (first..first + ACCOUNTS_PER_CALL).map(account).collect();
    let mut rng = StdRng::seed_from_u64(call as u64);
    let tags = rand::seq::index::sample(&mut rng, config.tag_pool, TAGS_PER_CALL)
        .into_iter()
        .map(|t| format!("tag-{t}"))
        .collect();
    (accounts, tags)
}

async fn run(config: Config) {
    let dir = tempfile::tempdir().unwrap();
    let sync_full = if config.sync_full { "true" } else { "false" };
    let server = Server::start(dir.path(), &[("HERALD_SQLITE_SYNC_FULL", sync_full)]);
    let limits = json!({"requests_per_second": 1_000_000});
    let (app_id, client) = Client::new_app(&server.base, limits).await;
    let client = Arc::new(client);
    println!(
        "herald at {}, sqlite_sync_full = {}, {} callers, tags drawn from {} names",
        server.base, config.sync_full, config.callers, config.tag_pool
    );

    let started = Instant::now();
    for first in (0..config.accounts).step_by(ACCOUNTS_PER_CALL) {
        let end = (first + ACCOUNTS_PER_CALL).min(config.accounts);
        let names: Vec<String> = (first..end).map(account).collect();
        let body = json!({ "accounts": names }).to_string();
        let (status, reply) = client.post("/v1/accounts/import", body).await;
        assert!(status == 200 || status == 201, "import: {status} {reply}");
    }
    let import = started.elapsed();
    println!(
        "imported {} accounts in {:.2} s ({:.0} accounts/s)",
        config.accounts,
        import.as_secs_f64(),
        config.accounts as f64 / import.as_secs_f64()
    );

    // An app's distinct tags, given one account at a time so that no account nears its limit.
    for (n, chunk) in (0..config.app_tags).collect::<Vec<_>>().chunks(TAGS_PER_CALL).enumerate() {
        let tags: Vec<String> = chunk.iter().map(|t| format!("app-tag-{t}")).collect();
        let body = json!({ "accounts": [account(n % config.accounts)], "tags": tags }).to_string();
        let (status, reply) = client.post("/v1/tags/add", body).await;
        assert_eq!(status, 200, "{reply}");
    }

    let calls = config.assignments.div_ceil(ACCOUNTS_PER_CALL * TAGS_PER_CALL).max(1);
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..calls)
            .map(|call| {
                let (accounts, tags) = tag_call(call, &config);
                json!({ "accounts": accounts, "tags": tags }).to_string()
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let server_pid = server.child.id().to_string();
    let server_cpu = cpu_time(&server_pid);
    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..config.callers {
        let (client, bodies, next) = (client.clone(), bodies.clone(), next.clone());
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let call = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(call) else { break };
                let sent = Instant::now();
                let (status, reply) = client.post("/v1/tags/add", body.clone()).await;
                latencies.push(sent.elapsed());
                assert_eq!(status, 200, "{reply}");
                assert_eq!(reply["updated"], ACCOUNTS_PER_CALL, "{reply}");
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for caller in callers {
        latencies.extend(caller.await.unwrap());
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu_time(&server_pid) - server_cpu;
    latencies.sort_unstable();
    let assignments = calls * ACCOUNTS_PER_CALL * TAGS_PER_CALL;
    server.stop();

    println!();
    println!(
        "| calls | assignments | wall | assignments/s | call median | call p99 \
         | server CPU time | assignments per server CPU second |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {calls} | {assignments} | {:.2} s | {:.0} | {} | {} | {:.2} s | {:.0} |",
        elapsed.as_secs_f64(),
        assignments as f64 / elapsed.as_secs_f64(),
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        server_cpu.as_secs_f64(),
        assignments as f64 / server_cpu.as_secs_f64().max(0.01)
    );

    // The store alone, on the same file: the same kind of call without HTTP, auth and index.
    let store = SqliteStore::open(
        dir.path(),
        SqliteOptions { sync_full: config.sync_full, ..Default::default() },
    )
    .await
    .unwrap();
    let mut times = Vec::new();
    let own_cpu = cpu_time("self");
    for call in 0..config.store_calls {
        let (accounts, tags) = tag_call(call + calls, &config);
        let update = TagUpdate { accounts, op: TagOp::Add(tags), tags_per_account: 100 };
        let started = Instant::now();
        let outcome = store.update_tags(app_id, update).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(outcome.applied.len(), ACCOUNTS_PER_CALL);
    }
    let own_cpu = cpu_time("self") - own_cpu;
    store.close().await;
    times.sort_unstable();
    let median = quantile(&times, 0.5);
    println!();
    println!(
        "`SqliteStore::update_tags` alone, {} sequential calls of {} accounts × {} tags: \
         median {} per call ({:.0} assignments/s), p99 {}; CPU time {} per call",
        config.store_calls,
        ACCOUNTS_PER_CALL,
        TAGS_PER_CALL,
        ms(median),
        (ACCOUNTS_PER_CALL * TAGS_PER_CALL) as f64 / median.as_secs_f64(),
        ms(quantile(&times, 0.99)),
        ms(own_cpu / u32::try_from(config.store_calls.max(1)).unwrap_or(1))
    );
}
