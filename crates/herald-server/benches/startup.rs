//! Start-up rebuild benchmark: the time `Directory::load` takes to rebuild the audience index of
//! an app of 1 M accounts (about 20 Zipf-popular tags out of 10,000 and 10 attributes each, one or
//! two devices) from the embedded SQLite store, the path a restarting server takes.
//!
//! `cargo bench -p herald-server --bench startup` prints Markdown for BENCHMARKS.md. Environment:
//! `HERALD_BENCH_ACCOUNTS` (default 1,000,000), `HERALD_BENCH_REPEAT` (timed loads, default 3),
//! `HERALD_BENCH_SEED` (default 7), `HERALD_BENCH_DIR` (keep the prepared data directory there
//! and reuse it when it holds the same accounts and seed). Without `--bench` (as `cargo test` runs it) it does the same
//! with 2,000 accounts as a smoke test.
//!
//! The data comes from `herald_index::synthetic`, the generator of the audience benchmark. The app
//! and its attribute names are created through the `Store`; the accounts and devices are written
//! with direct SQL in the store's schema, because the `Store` API sets tags one list per call and
//! a million distinct lists would take far longer to prepare than to measure. Only the load is
//! timed, and the loaded index is compared with one built straight from the generator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::account::AccountId;
use herald_core::{AppId, Limits};
use herald_index::synthetic::{self, Attribute};
use herald_server::directory::Directory;
use herald_store::{
    DynStore, IndexSink, NewApp, PgOptions, PgStore, SqliteOptions, SqliteStore, Store,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

/// Accounts per INSERT statement (16 bound values each, under SQLite's 32,766).
const ROWS_PER_INSERT: usize = 500;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let accounts = if full { env_number("HERALD_BENCH_ACCOUNTS", 1_000_000) } else { 2_000 };
    let accounts = u32::try_from(accounts).expect("HERALD_BENCH_ACCOUNTS fits in u32");
    let repeat = if full { env_number("HERALD_BENCH_REPEAT", 3).max(1) } else { 1 };
    let seed = env_number("HERALD_BENCH_SEED", 7);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(accounts, repeat, seed));
}

async fn run(accounts: u32, repeat: u64, seed: u64) {
    let temporary = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("HERALD_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temporary.path());
    let attributes = synthetic::attributes();
    let marker = dir.join(format!("prepared-{accounts}-{seed}"));
    let started = Instant::now();
    let (app, tag_rows) = match std::fs::read_to_string(&marker) {
        Ok(kept) => {
            let (app, rows) = kept.trim().split_once(' ').expect("marker holds app and rows");
            (app.parse().unwrap(), rows.parse().unwrap())
        }
        Err(_) => {
            if dir.join("herald.db").exists() {
                panic!("{} holds other data; remove it first", dir.display());
            }
            std::fs::create_dir_all(dir).unwrap();
            let prepared = prepare(dir, accounts, seed, &attributes).await;
            std::fs::write(&marker, format!("{} {}", prepared.0, prepared.1)).unwrap();
            prepared
        }
    };
    let file = std::fs::metadata(dir.join("herald.db")).map(|m| m.len()).unwrap_or(0);
    println!(
        "prepared {accounts} accounts, {tag_rows} tag assignments, in {:.1} s; herald.db {:.0} MiB",
        started.elapsed().as_secs_f64(),
        file as f64 / (1024.0 * 1024.0)
    );

    let sqlite = time_loads("SQLite", app, accounts, tag_rows, repeat, || async {
        let store = SqliteStore::open(dir, SqliteOptions::default()).await.unwrap();
        Arc::new(store) as DynStore
    })
    .await;
    let expected = synthetic::build_index(accounts, seed, &attributes);
    assert!(
        *sqlite.index() == expected,
        "the index loaded from SQLite differs from the generated one"
    );

    let Some(url) = postgres_url() else { return };
    let options = PgOptions {
        // Kept schemas are found again by name; others are this process's own.
        schema: match std::env::var_os("HERALD_BENCH_PG_KEEP") {
            Some(_) => format!("herald_bench_startup_{accounts}_{seed}"),
            None => format!("herald_bench_startup_{}", std::process::id()),
        },
        ..PgOptions::new(url.clone())
    };
    let started = Instant::now();
    let pg_app = match prepared_pg(&options).await {
        Some(app) => app,
        None => prepare_pg(&options, accounts, seed, &attributes).await,
    };
    println!();
    println!(
        "PostgreSQL schema {} ready in {:.1} s (loaded with COPY unless kept from an earlier run)",
        options.schema,
        started.elapsed().as_secs_f64()
    );
    let postgres = time_loads("PostgreSQL", pg_app, accounts, tag_rows, repeat, || async {
        Arc::new(PgStore::connect(&options).await.unwrap()) as DynStore
    })
    .await;
    assert!(
        *postgres.index() == expected,
        "the index loaded from PostgreSQL differs from the generated one"
    );
    println!("both loaded indexes equal the one built from the generator");
    if std::env::var_os("HERALD_BENCH_PG_KEEP").is_none() {
        herald_store::test_schemas::drop(&url, &options.schema).await.unwrap();
    }
}

/// The PostgreSQL server of the second half; `HERALD_BENCH_PG=off` leaves it out.
fn postgres_url() -> Option<String> {
    match std::env::var("HERALD_BENCH_PG") {
        Ok(off) if off == "off" => None,
        Ok(url) => Some(url),
        Err(_) => Some("postgres://postgres@127.0.0.1:5432/test".into()),
    }
}

/// Opens the store and rebuilds the app's index `repeat` times, printing a table row per run;
/// returns the last index.
async fn time_loads<F, Fut>(
    name: &str,
    app: AppId,
    accounts: u32,
    tag_rows: u64,
    repeat: u64,
    open: F,
) -> Arc<herald_server::directory::AppDirectory>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = DynStore>,
{
    println!();
    println!("{name}:");
    println!();
    println!(
        "| run | open store | `Directory::load` | its CPU time | accounts/s | tag assignments/s \
         | store scan alone (accounts, devices) | its CPU time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut loads = Vec::new();
    let mut last = None;
    for run in 1..=repeat {
        let started = Instant::now();
        let store = open().await;
        let opened = started.elapsed();
        let (started, cpu) = (Instant::now(), cpu_time());
        let directory = Directory::load(store.clone()).await.unwrap();
        let load = started.elapsed();
        let load_cpu = cpu_time() - cpu;

        // The store's share: the same scan into a sink that only counts.
        let (started, cpu) = (Instant::now(), cpu_time());
        let mut counter = Counter::default();
        store.load_index(app, &mut counter).await.unwrap();
        let scan = started.elapsed();
        let scan_cpu = cpu_time() - cpu;
        let accounts_scan = counter.first_device.map_or(scan, |at| at - started);
        assert_eq!(counter.accounts, u64::from(accounts));
        assert_eq!(counter.tags, tag_rows);

        println!(
            "| {run} | {} | {} | {} | {:.0} | {:.0} | {} ({}, {}) | {} |",
            seconds(opened),
            seconds(load),
            seconds(load_cpu),
            f64::from(accounts) / load.as_secs_f64(),
            tag_rows as f64 / load.as_secs_f64(),
            seconds(scan),
            seconds(accounts_scan),
            seconds(scan - accounts_scan),
            seconds(scan_cpu)
        );
        loads.push(load);
        last = Some(directory.app(app).await.unwrap());
        store.close().await;
    }
    loads.sort_unstable();
    let median = loads[loads.len() / 2];
    println!();
    println!(
        "{name}: median `Directory::load` of {accounts} accounts: {} (target ≤ 5 s for 1 M)",
        seconds(median)
    );
    let loaded = last.expect("at least one run");
    {
        let index = loaded.index();
        println!(
            "index: {} accounts, {} tags, {:.0} MiB (estimate)",
            index.eligible().len(),
            index.tag_count(),
            index.memory_bytes() as f64 / (1024.0 * 1024.0)
        );
    }
    loaded
}

/// CPU time (user + system, all threads) this process has used, from /proc/self/stat in clock
/// ticks of 10 ms. On a machine shared with other work it tells the cost of a step where wall
/// time also counts the waiting for a core.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// Counts what the store hands over, to time the scan without the index.
#[derive(Default)]
struct Counter {
    accounts: u64,
    tags: u64,
    devices: u64,
    /// When the first device arrived: the accounts are done.
    first_device: Option<Instant>,
}

impl IndexSink for Counter {
    fn account(&mut self, _: AccountId, tags: &[&str], _: &[Option<&str>]) {
        self.accounts += 1;
        self.tags += tags.len() as u64;
    }

    fn device(&mut self, _: AccountId, _: &str, _: &str) {
        self.first_device.get_or_insert_with(Instant::now);
        self.devices += 1;
    }
}

/// Creates the app through the store, then writes the generated accounts and devices into its
/// tables; returns the app and the number of tag assignments.
async fn prepare(dir: &Path, accounts: u32, seed: u64, attributes: &[Attribute]) -> (AppId, u64) {
    let store = SqliteStore::open(dir, SqliteOptions { sync_full: false, ..Default::default() })
        .await
        .unwrap();
    let app = create_bench_app(&store, attributes).await;
    store.close().await;

    let options = SqliteConnectOptions::new()
        .filename(dir.join("herald.db"))
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let tag_names = synthetic::tag_names();
    let mut generated = synthetic::accounts(accounts, seed, attributes);
    let mut tag_rows = 0;
    let mut device_keys = 0_i64..;
    let now = chrono::Utc::now().timestamp_millis();
    loop {
        let chunk: Vec<synthetic::Account> = generated.by_ref().take(ROWS_PER_INSERT).collect();
        if chunk.is_empty() {
            break;
        }
        tag_rows += chunk.iter().map(|a| a.tags.len() as u64).sum::<u64>();
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO accounts (app_id, id, account, tags, attr0, attr1, attr2, attr3, attr4, \
             attr5, attr6, attr7, attr8, attr9, created_at) ",
        );
        insert.push_values(&chunk, |mut row, account| {
            // Stored the way the store keeps them: sorted, '\n'-joined.
            let mut tags: Vec<&str> = account.tags.iter().map(|&t| tag_names[t].as_str()).collect();
            tags.sort_unstable();
            row.push_bind(app)
                .push_bind(i64::from(account.id))
                .push_bind(format!("user-{}", account.id))
                .push_bind(tags.join("\n"));
            for (attribute, &value) in attributes.iter().zip(&account.attributes) {
                row.push_bind(attribute.values[value].clone());
            }
            row.push_bind(now);
        });
        insert.build().execute(&mut *tx).await.unwrap();

        let devices: Vec<(u32, usize, &str, &str)> = chunk
            .iter()
            .flat_map(|a| {
                a.devices
                    .iter()
                    .enumerate()
                    .map(|(n, &(platform, package))| (a.id, n, platform, package))
            })
            .collect();
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO devices (app_id, device_id, account_id, platform, package, created_at, \
             updated_at, device_key) ",
        );
        insert.push_values(&devices, |mut row, &(id, n, platform, package)| {
            row.push_bind(app)
                .push_bind(format!("device-{id}-{n}"))
                .push_bind(i64::from(id))
                .push_bind(platform)
                .push_bind(package)
                .push_bind(now)
                .push_bind(now)
                .push_bind(device_keys.next());
        });
        insert.build().execute(&mut *tx).await.unwrap();
    }
    sqlx::query("UPDATE apps SET next_account_id = ?, next_device_key = ? WHERE id = ?")
        .bind(i64::from(accounts))
        .bind(device_keys.start)
        .bind(app)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // As after a clean shutdown: the WAL folded back into the main file.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    (app, tag_rows)
}

const BENCH_APP_KEY: &str = "hk_startup_bench";

/// The bench app with the generator's attribute names, created through the store.
async fn create_bench_app(store: &dyn Store, attributes: &[Attribute]) -> AppId {
    let app = store
        .create_app(NewApp {
            name: "bench".into(),
            key: BENCH_APP_KEY.into(),
            secret: "hs_startup_bench_secret".into(),
            limits: Limits::default(),
        })
        .await
        .unwrap();
    let names: Vec<(u8, Option<String>)> =
        (0u8..).zip(attributes).map(|(slot, a)| (slot, Some(a.name.to_owned()))).collect();
    store.set_attribute_names(app.id, &names).await.unwrap();
    app.id
}

/// The bench app of a schema kept by an earlier run (`HERALD_BENCH_PG_KEEP=1`), if any.
async fn prepared_pg(options: &PgOptions) -> Option<AppId> {
    let store = PgStore::connect(options).await.unwrap();
    let app = store.app_by_key(BENCH_APP_KEY).await.ok().map(|app| app.id);
    store.close().await;
    app
}

/// The same app in PostgreSQL: created through the store, accounts and devices written with
/// COPY into its tables, then analysed as autovacuum would.
async fn prepare_pg(
    options: &PgOptions,
    accounts: u32,
    seed: u64,
    attributes: &[Attribute],
) -> AppId {
    let store = PgStore::connect(options).await.unwrap();
    let app = create_bench_app(&store, attributes).await;
    store.close().await;

    let mut conn = sqlx::PgConnection::connect(&options.url).await.unwrap();
    let search_path = format!("SET search_path TO \"{}\"", options.schema);
    sqlx::query(&search_path).execute(&mut conn).await.unwrap();
    let tag_names = synthetic::tag_names();
    let now = chrono::Utc::now().timestamp_millis();
    let mut account_rows = String::new();
    let mut device_rows = String::new();
    let mut device_keys = 0_i64..;
    for account in synthetic::accounts(accounts, seed, attributes) {
        let mut tags: Vec<&str> = account.tags.iter().map(|&t| tag_names[t].as_str()).collect();
        tags.sort_unstable();
        let mut row =
            format!("{app}\t{id}\tuser-{id}\t{}", copy_text(&tags.join("\n")), id = account.id);
        for (attribute, &value) in attributes.iter().zip(&account.attributes) {
            row.push('\t');
            row.push_str(&copy_text(&attribute.values[value]));
        }
        account_rows.push_str(&format!("{row}\t{now}\n"));
        for (n, (platform, package)) in account.devices.iter().enumerate() {
            let key = device_keys.next().unwrap_or_default();
            device_rows.push_str(&format!(
                "{app}\tdevice-{id}-{n}\t{id}\t{platform}\t{package}\t{now}\t{now}\t{key}\n",
                id = account.id
            ));
        }
    }
    let copy = |table: &'static str| format!("COPY {table} FROM STDIN");
    let mut sink = conn
        .copy_in_raw(&copy(
            "accounts (app_id, id, account, tags, attr0, attr1, attr2, attr3, attr4, attr5, \
             attr6, attr7, attr8, attr9, created_at)",
        ))
        .await
        .unwrap();
    sink.send(account_rows.into_bytes()).await.unwrap();
    sink.finish().await.unwrap();
    let mut sink = conn
        .copy_in_raw(&copy(
            "devices (app_id, device_id, account_id, platform, package, created_at, updated_at, \
             device_key)",
        ))
        .await
        .unwrap();
    sink.send(device_rows.into_bytes()).await.unwrap();
    sink.finish().await.unwrap();
    sqlx::query("UPDATE apps SET next_account_id = $1, next_device_key = $2 WHERE id = $3")
        .bind(i64::from(accounts))
        .bind(device_keys.start)
        .bind(app)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    app
}

/// `value` in COPY's text format.
fn copy_text(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r")
}
