//! Audience index benchmark: a synthetic app (10 M accounts by default, 10,000 Zipf-popular tags,
//! about 20 tags and 10 attributes per account), the evaluation time of four audiences, and the
//! index's memory.
//!
//! Run with `cargo bench -p herald-index --bench audience`; prints Markdown for BENCHMARKS.md.
//! Environment: `HERALD_BENCH_ACCOUNTS` (default 10,000,000), `HERALD_BENCH_ITERATIONS`
//! (evaluations per audience, default 200), `HERALD_BENCH_SEED` (default 7).
//!
//! With `HERALD_BENCH_PG=postgres://…` the same accounts are also loaded into PostgreSQL and the
//! same audiences timed as SQL (`HERALD_BENCH_PG_ITERATIONS`, default 20), in the same run; see
//! `audience/postgres.rs`.

#[path = "audience/postgres.rs"]
mod postgres;

use std::hint::black_box;
use std::time::{Duration, Instant};

use herald_core::audience::{AudienceRules, Plan};
use herald_core::Limits;
use herald_index::synthetic::{self, Attribute};
use herald_index::{IndexBuilder, RoaringBitmap, TagKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// Resident and peak resident memory of this process, in bytes, from /proc/self/status.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds to build the tag index of `accounts` accounts from rows already in memory, in account
/// order, with tags given by name and by key: the index's share of a start-up rebuild, without
/// the store's reading.
fn rebuild_tags(accounts: u32, seed: u64, attributes: &[Attribute]) -> (f64, f64, usize) {
    let tag_names = synthetic::tag_names();
    let rows: Vec<Vec<usize>> =
        synthetic::accounts(accounts, seed, attributes).map(|account| account.tags).collect();
    let pairs = rows.iter().map(Vec::len).sum();

    let named: Vec<Vec<&str>> =
        rows.iter().map(|row| row.iter().map(|&tag| tag_names[tag].as_str()).collect()).collect();
    let started = Instant::now();
    let mut builder = IndexBuilder::new();
    for (id, tags) in (0..).zip(&named) {
        builder.account(id).tags(id, tags);
    }
    black_box(builder.finish());
    let by_name = started.elapsed().as_secs_f64();
    drop(named);

    let started = Instant::now();
    let mut builder = IndexBuilder::new();
    let keys: Vec<TagKey> = tag_names.iter().map(|name| builder.tag_key(name)).collect();
    let mut row_keys = Vec::with_capacity(synthetic::TAGS_PER_ACCOUNT);
    for (id, row) in (0..).zip(&rows) {
        row_keys.clear();
        row_keys.extend(row.iter().map(|&tag| keys[tag]));
        builder.account(id).tags_by_key(id, &row_keys);
    }
    black_box(builder.finish());
    (by_name, started.elapsed().as_secs_f64(), pairs)
}

struct Measured {
    min: Duration,
    median: Duration,
    p99: Duration,
    result: u64,
}

fn measure(iterations: usize, mut run: impl FnMut() -> u64) -> Measured {
    for _ in 0..3 {
        black_box(run());
    }
    let mut times = Vec::with_capacity(iterations);
    let mut result = 0;
    for _ in 0..iterations {
        let start = Instant::now();
        result = black_box(run());
        times.push(start.elapsed());
    }
    times.sort_unstable();
    let at = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    Measured { min: times[0], median: at(0.5), p99: at(0.99), result }
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo test --benches` runs bench targets too; only `cargo bench` passes `--bench`, and only
    // then is a 10 M account index worth building.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("audience bench: skipped (run it with `cargo bench`)");
        return;
    }
    let accounts = u32::try_from(env_number("HERALD_BENCH_ACCOUNTS", 10_000_000))
        .expect("HERALD_BENCH_ACCOUNTS fits in u32");
    let iterations = usize::try_from(env_number("HERALD_BENCH_ITERATIONS", 200))
        .expect("HERALD_BENCH_ITERATIONS fits in usize")
        .max(1);
    let seed = env_number("HERALD_BENCH_SEED", 7);

    let attributes = synthetic::attributes();
    let (rss_before, _) = rss();
    let started = Instant::now();
    let index = synthetic::build_index(accounts, seed, &attributes);
    let build_time = started.elapsed();
    let (rss_after, rss_peak) = rss();

    let limits = Limits::default();
    let names: Vec<Option<String>> = attributes.iter().map(|a| Some(a.name.to_owned())).collect();
    let rules = AudienceRules::new(&limits, &names);
    let plan = |json: &str| -> Plan {
        let value: serde_json::Value = serde_json::from_str(json).expect("bench audience is JSON");
        let audience = rules.parse(&value).expect("bench audience is valid");
        rules.plan(&audience).expect("bench audience is valid")
    };
    let or_20: Vec<String> = (0..20).map(|i| format!(r#"{{"tag":"t{}"}}"#, 10 + 50 * i)).collect();
    let queries = [
        ("one popular tag: `t0`", r#"{"tag":"t0"}"#.to_owned()),
        (
            "AND of 3 tags: `t1`, `t2`, `t3`",
            r#"{"and":[{"tag":"t1"},{"tag":"t2"},{"tag":"t3"}]}"#.to_owned(),
        ),
        ("OR of 20 tags: `t10`, `t60`, … `t960`", format!(r#"{{"or":[{}]}}"#, or_20.join(","))),
        (
            "`(t5 AND city=Shenzhen) OR (tier in [gold, platinum] AND NOT t1)`",
            r#"{"or":[
                {"and":[{"tag":"t5"},{"attr":{"name":"city","eq":"Shenzhen"}}]},
                {"and":[{"attr":{"name":"tier","in":["gold","platinum"]}},{"not":{"tag":"t1"}}]}
            ]}"#
            .to_owned(),
        ),
    ];
    let no_accounts = |_: &[String]| RoaringBitmap::new();

    println!("accounts: {accounts}, tags in use: {}, seed: {seed}", index.tag_count());
    println!(
        "build: {:.1} s ({:.0} accounts/s)",
        build_time.as_secs_f64(),
        f64::from(accounts) / build_time.as_secs_f64()
    );
    println!(
        "index memory (estimate): {}; process RSS before build {}, after build {}, peak {}",
        mib(index.memory_bytes() as u64),
        mib(rss_before),
        mib(rss_after),
        mib(rss_peak)
    );
    println!();
    println!("| audience | median | p99 | min | result size |");
    println!("|---|---:|---:|---:|---:|");
    let mut last = RoaringBitmap::new();
    let mut measured_audiences = Vec::with_capacity(queries.len());
    for (label, json) in queries {
        let plan = plan(&json);
        let measured = measure(iterations, || index.evaluate(&plan, &no_accounts).len());
        println!(
            "| {label} | {} | {} | {} | {} |",
            ms(measured.median),
            ms(measured.p99),
            ms(measured.min),
            measured.result
        );
        last = index.evaluate(&plan, &no_accounts);
        measured_audiences.push(postgres::Herald { label, measured });
    }
    let split = measure(iterations, || index.platform_split(&last).values().sum());
    println!(
        "| platform split of the last result (estimate endpoint) | {} | {} | {} | {} |",
        ms(split.median),
        ms(split.p99),
        ms(split.min),
        split.result
    );

    if let Ok(url) = std::env::var("HERALD_BENCH_PG") {
        let pg_iterations = usize::try_from(env_number("HERALD_BENCH_PG_ITERATIONS", 20))
            .expect("HERALD_BENCH_PG_ITERATIONS fits in usize")
            .max(1);
        postgres::compare(&url, accounts, seed, &attributes, pg_iterations, &measured_audiences)
            .expect("PostgreSQL comparison");
    }

    // Write costs of the index alone (the store's commit comes on top).
    let mut index = index;
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let tag_names = synthetic::tag_names();
    let tags = tag_names.len();
    let writes = 100_000;
    let started = Instant::now();
    for _ in 0..writes {
        let id = rng.gen_range(0..accounts.max(1));
        index.add_tags(id, &[tag_names[rng.gen_range(0..tags)].as_str()]);
    }
    let tag_rate = f64::from(writes) / started.elapsed().as_secs_f64();
    let writes = 10_000;
    let started = Instant::now();
    for _ in 0..writes {
        let id = rng.gen_range(0..accounts.max(1));
        let city = &attributes[2].values[rng.gen_range(0..1000)];
        index.set_attribute(id, 2, Some(city));
    }
    let city_rate = f64::from(writes) / started.elapsed().as_secs_f64();
    println!();
    println!("index writes: add_tags {tag_rate:.0}/s; set_attribute on city (1,000 values) {city_rate:.0}/s");
    drop(index);

    let rebuilt = accounts.min(1_000_000);
    let (by_name, by_key, pairs) = rebuild_tags(rebuilt, seed + 2, &attributes);
    println!(
        "rebuild of {rebuilt} accounts × {} tags from rows in memory: \
         {by_name:.2} s with tag names ({:.0} rows/s), {by_key:.2} s with tag keys ({:.0} rows/s)",
        synthetic::TAGS_PER_ACCOUNT,
        pairs as f64 / by_name,
        pairs as f64 / by_key
    );
}
