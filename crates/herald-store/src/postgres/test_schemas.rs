//! Throw-away schemas for tests that run on PostgreSQL: each test (or test server) gets a
//! schema of its own, and drops it afterwards, so parallel runs never see each other.

use sqlx::postgres::PgPoolOptions;

use super::quote_identifier;
use crate::StoreResult;

/// Ends the sessions named `name` (tests name their sessions after their schema), then drops
/// the schema with everything in it.
pub async fn drop(url: &str, name: &str) -> StoreResult<()> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    // A session left idle in a transaction would hold the locks the drop waits for.
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&pool)
    .await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(name)))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

#[cfg(feature = "test-support")]
/// Drops every schema whose name starts with `prefix` and that `stale` says is no longer
/// used (e.g. its test process is gone); returns how many.
pub async fn drop_stale(
    url: &str,
    prefix: &str,
    stale: impl Fn(&str) -> bool,
) -> StoreResult<usize> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(prefix)
            .fetch_all(&pool)
            .await?;
    pool.close().await;
    let mut dropped = 0;
    for name in names.iter().filter(|name| stale(name)) {
        drop(url, name).await?;
        dropped += 1;
    }
    Ok(dropped)
}
