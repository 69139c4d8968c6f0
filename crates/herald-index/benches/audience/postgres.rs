//! The benchmark's four audiences as SQL on PostgreSQL, over the same synthetic accounts, with
//! the schema a developer would write by hand: `user_tags(user_id, tag)` indexed on
//! `(tag, user_id)` and `(user_id)`, and `user_attrs` with one indexed column per attribute.
//!
//! Only runs when `HERALD_BENCH_PG` names a database. The tables live in their own schema,
//! `herald_bench`, dropped at the end unless `HERALD_BENCH_PG_KEEP=1` (a kept schema is reused by
//! the next run with the same size and seed, since loading 20 M rows takes minutes).
//! Each audience has a few natural formulations; all are timed and the fastest one counts, so the
//! comparison gives PostgreSQL its best plan, not the first one written.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use herald_index::synthetic::{self, Attribute};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use super::{measure, ms, Measured};

const SCHEMA: &str = "herald_bench";
/// Bytes of COPY text sent per message.
const COPY_CHUNK: usize = 4 << 20;

/// One audience: its formulations as `(name, SQL returning the count)`.
pub struct Audience {
    pub variants: Vec<(&'static str, String)>,
}

/// The audiences of `main`, in the same order, as SQL.
pub fn audiences() -> Vec<Audience> {
    let t = format!("{SCHEMA}.user_tags");
    let a = format!("{SCHEMA}.user_attrs");
    let or_20: Vec<String> = (0..20).map(|i| format!("'t{}'", 10 + 50 * i)).collect();
    let or_20 = or_20.join(", ");
    vec![
        Audience {
            variants: vec![("count", format!("SELECT count(*) FROM {t} WHERE tag = 't0'"))],
        },
        Audience {
            variants: vec![
                (
                    "INTERSECT",
                    format!(
                        "SELECT count(*) FROM (SELECT user_id FROM {t} WHERE tag = 't1' \
                         INTERSECT SELECT user_id FROM {t} WHERE tag = 't2' \
                         INTERSECT SELECT user_id FROM {t} WHERE tag = 't3') s"
                    ),
                ),
                (
                    "JOIN",
                    format!(
                        "SELECT count(*) FROM {t} a \
                         JOIN {t} b ON b.user_id = a.user_id AND b.tag = 't2' \
                         JOIN {t} c ON c.user_id = a.user_id AND c.tag = 't3' \
                         WHERE a.tag = 't1'"
                    ),
                ),
                (
                    "GROUP BY … HAVING",
                    format!(
                        "SELECT count(*) FROM (SELECT user_id FROM {t} \
                         WHERE tag IN ('t1', 't2', 't3') GROUP BY user_id HAVING count(*) = 3) s"
                    ),
                ),
            ],
        },
        Audience {
            variants: vec![
                (
                    "count(DISTINCT)",
                    format!("SELECT count(DISTINCT user_id) FROM {t} WHERE tag IN ({or_20})"),
                ),
                (
                    "SELECT DISTINCT",
                    format!(
                        "SELECT count(*) FROM (SELECT DISTINCT user_id FROM {t} \
                         WHERE tag IN ({or_20})) s"
                    ),
                ),
                (
                    "EXISTS",
                    format!(
                        "SELECT count(*) FROM {a} u WHERE EXISTS \
                         (SELECT 1 FROM {t} t WHERE t.user_id = u.user_id AND t.tag IN ({or_20}))"
                    ),
                ),
            ],
        },
        Audience {
            variants: vec![
                (
                    "EXISTS",
                    format!(
                        "SELECT count(*) FROM {a} u WHERE \
                         (u.city = 'Shenzhen' AND EXISTS (SELECT 1 FROM {t} t \
                           WHERE t.user_id = u.user_id AND t.tag = 't5')) \
                         OR (u.tier IN ('gold', 'platinum') AND NOT EXISTS (SELECT 1 FROM {t} t \
                           WHERE t.user_id = u.user_id AND t.tag = 't1'))"
                    ),
                ),
                (
                    "set operations",
                    format!(
                        "SELECT count(*) FROM ( \
                         (SELECT user_id FROM {t} WHERE tag = 't5' \
                          INTERSECT SELECT user_id FROM {a} WHERE city = 'Shenzhen') \
                         UNION \
                         (SELECT user_id FROM {a} WHERE tier IN ('gold', 'platinum') \
                          EXCEPT SELECT user_id FROM {t} WHERE tag = 't1')) s"
                    ),
                ),
            ],
        },
    ]
}

/// What the index measured for one audience, to compare with.
pub struct Herald {
    pub label: &'static str,
    pub measured: Measured,
}

/// Loads the data (unless a kept copy matches), times every formulation and prints the table.
pub fn compare(
    url: &str,
    accounts: u32,
    seed: u64,
    attributes: &[Attribute],
    iterations: usize,
    herald: &[Herald],
) -> Result<(), sqlx::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(sqlx::Error::Io)?;
    let keep = std::env::var("HERALD_BENCH_PG_KEEP").is_ok_and(|v| v == "1");
    let mut conn = runtime.block_on(prepare(url, accounts, seed, attributes))?;
    println!();
    println!(
        "| audience | herald median | herald p99 | PostgreSQL median | PostgreSQL p99 \
         | herald speed-up (median, p99) | result size | fastest SQL |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let ratio = |pg: Duration, herald: Duration| pg.as_secs_f64() / herald.as_secs_f64().max(1e-9);
    let mut all_variants = Vec::new();
    for (herald, audience) in herald.iter().zip(audiences()) {
        let mut best: Option<(&str, Measured)> = None;
        for (name, sql) in &audience.variants {
            // The connection's statement cache keeps the plan after the warm-up, as an
            // application's prepared statement would.
            let measured = measure(iterations, || {
                runtime.block_on(count(&mut conn, sql)).unwrap_or_else(|err| panic!("{sql}: {err}"))
            });
            assert_eq!(
                measured.result, herald.measured.result,
                "PostgreSQL ({name}) and the index disagree on `{}`",
                herald.label
            );
            all_variants.push((herald.label, *name, measured.median, measured.p99));
            if best.as_ref().is_none_or(|(_, b)| measured.median < b.median) {
                best = Some((name, measured));
            }
        }
        let Some((name, pg)) = best else { continue };
        println!(
            "| {} | {} | {} | {} | {} | {:.0}×, {:.0}× | {} | {name} |",
            herald.label,
            ms(herald.measured.median),
            ms(herald.measured.p99),
            ms(pg.median),
            ms(pg.p99),
            ratio(pg.median, herald.measured.median),
            ratio(pg.p99, herald.measured.p99),
            pg.result
        );
    }
    println!();
    println!("| audience | SQL formulation | PostgreSQL median | p99 |");
    println!("|---|---|---:|---:|");
    for (label, name, median, p99) in all_variants {
        println!("| {label} | {name} | {} | {} |", ms(median), ms(p99));
    }
    runtime.block_on(async {
        if keep {
            println!("kept schema {SCHEMA} (HERALD_BENCH_PG_KEEP=1)");
        } else {
            sqlx::query(&format!("DROP SCHEMA {SCHEMA} CASCADE")).execute(&mut conn).await?;
            println!("dropped schema {SCHEMA}");
        }
        conn.close().await
    })
}

/// Connects, prints the server's settings and loads the data unless a kept copy matches.
async fn prepare(
    url: &str,
    accounts: u32,
    seed: u64,
    attributes: &[Attribute],
) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut conn).await?;
    let mut settings = Vec::new();
    for name in ["shared_buffers", "work_mem", "max_parallel_workers_per_gather"] {
        let value: String =
            sqlx::query_scalar(&format!("SHOW {name}")).fetch_one(&mut conn).await?;
        settings.push(format!("{name}={value}"));
    }
    println!();
    println!("PostgreSQL {version} ({}), {accounts} accounts, seed {seed}", settings.join(", "));
    if loaded(&mut conn, accounts, seed).await? {
        println!("reusing the kept schema {SCHEMA}");
    } else {
        load(&mut conn, accounts, seed, attributes).await?;
    }
    let size: String = sqlx::query_scalar(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(SCHEMA)
    .fetch_one(&mut conn)
    .await?;
    println!("tables and indexes: {size}");
    Ok(conn)
}

async fn count(conn: &mut PgConnection, sql: &str) -> Result<u64, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(sql).fetch_one(conn).await?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Whether a kept schema holds exactly this data.
async fn loaded(conn: &mut PgConnection, accounts: u32, seed: u64) -> Result<bool, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'loaded')",
    )
    .bind(SCHEMA)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(false);
    }
    let row = sqlx::query(&format!("SELECT accounts, seed FROM {SCHEMA}.loaded"))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some_and(|row| {
        row.try_get::<i64, _>("accounts").ok() == Some(i64::from(accounts))
            && row.try_get::<i64, _>("seed").ok() == i64::try_from(seed).ok()
    }))
}

/// Creates the tables, COPYs the accounts in, then indexes and analyses them, as one would for a
/// bulk load.
async fn load(
    conn: &mut PgConnection,
    accounts: u32,
    seed: u64,
    attributes: &[Attribute],
) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")).execute(&mut *conn).await?;
    sqlx::query(&format!("CREATE SCHEMA {SCHEMA}")).execute(&mut *conn).await?;
    sqlx::query(&format!(
        "CREATE TABLE {SCHEMA}.user_tags (user_id integer NOT NULL, tag text NOT NULL)"
    ))
    .execute(&mut *conn)
    .await?;
    let columns: Vec<String> = attributes.iter().map(|a| format!("{} text", a.name)).collect();
    sqlx::query(&format!(
        "CREATE TABLE {SCHEMA}.user_attrs (user_id integer NOT NULL, {})",
        columns.join(", ")
    ))
    .execute(&mut *conn)
    .await?;

    let tag_names = synthetic::tag_names();
    let mut copy = conn.copy_in_raw(&format!("COPY {SCHEMA}.user_tags FROM STDIN")).await?;
    let mut buffer = String::with_capacity(COPY_CHUNK + 4096);
    let mut rows = 0_u64;
    for account in synthetic::accounts(accounts, seed, attributes) {
        for &tag in &account.tags {
            let _ = writeln!(buffer, "{}\t{}", account.id, tag_names[tag]);
            rows += 1;
        }
        if buffer.len() >= COPY_CHUNK {
            copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
            buffer.reserve(COPY_CHUNK + 4096);
        }
    }
    copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
    copy.finish().await?;
    let tags_copied = started.elapsed();

    let mut copy = conn.copy_in_raw(&format!("COPY {SCHEMA}.user_attrs FROM STDIN")).await?;
    for account in synthetic::accounts(accounts, seed, attributes) {
        let _ = write!(buffer, "{}", account.id);
        for (attribute, &value) in attributes.iter().zip(&account.attributes) {
            let _ = write!(buffer, "\t{}", attribute.values[value]);
        }
        buffer.push('\n');
        if buffer.len() >= COPY_CHUNK {
            copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
            buffer.reserve(COPY_CHUNK + 4096);
        }
    }
    copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
    copy.finish().await?;
    let copied = started.elapsed();

    let mut ddl = vec![
        format!("ALTER TABLE {SCHEMA}.user_attrs ADD PRIMARY KEY (user_id)"),
        format!("CREATE INDEX ON {SCHEMA}.user_tags (tag, user_id)"),
        format!("CREATE INDEX ON {SCHEMA}.user_tags (user_id)"),
    ];
    ddl.extend(
        attributes.iter().map(|a| format!("CREATE INDEX ON {SCHEMA}.user_attrs ({})", a.name)),
    );
    // VACUUM sets the visibility map, so that counts can use index-only scans as they would on
    // a table autovacuum has visited.
    ddl.push(format!("VACUUM ANALYZE {SCHEMA}.user_tags"));
    ddl.push(format!("VACUUM ANALYZE {SCHEMA}.user_attrs"));
    ddl.push(format!("CREATE TABLE {SCHEMA}.loaded (accounts bigint, seed bigint)"));
    ddl.push(format!(
        "INSERT INTO {SCHEMA}.loaded VALUES ({accounts}, {})",
        i64::try_from(seed).unwrap_or(-1)
    ));
    for statement in &ddl {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    println!(
        "loaded {rows} user_tags rows and {accounts} user_attrs rows: COPY {:.1} s \
         (user_tags {:.1} s), indexes and VACUUM ANALYZE {:.1} s",
        copied.as_secs_f64(),
        tags_copied.as_secs_f64(),
        (started.elapsed() - copied).as_secs_f64()
    );
    Ok(())
}
