//! Whole-app scans at start-up, a page of rows per round trip packed into one string.
//!
//! Each result row crossing from the connection's worker thread costs a channel hand-off in
//! sqlx, which at one row per account took most of a 1 M-account rebuild (40 s on a busy
//! machine, against 0.7 s for SQLite's own scan). SQLite concatenates a page instead, and the
//! next page is requested before the current one is handed on, so that SQLite reads on its
//! worker thread while the caller builds the index on this one.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use herald_core::AppId;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::StoreResult;

use crate::packed::{FIELD_SEPARATOR, ROW_SEPARATOR};

/// A paged scan of one table of one app, in rowid order.
pub(super) struct PackedScan {
    sql: String,
    page: i64,
}

impl PackedScan {
    /// Scans `table` in `key` order for `fields`, SQL expressions that are never NULL, `page`
    /// rows per round trip. An index on `(app_id, key)` must exist: without it SQLite would
    /// sort the app's rows again for every page.
    pub(super) fn new(table: &str, key: &str, fields: &[String], page: i64) -> Self {
        let sql = format!(
            "SELECT count(*) AS n, max({key}) AS last, group_concat({packed}, char({row})) AS packed \
             FROM (SELECT * FROM {table} WHERE app_id = ? AND {key} > ? ORDER BY {key} LIMIT ?)",
            packed = fields.join(&format!(" || char({}) || ", u32::from(FIELD_SEPARATOR))),
            row = u32::from(ROW_SEPARATOR),
        );
        Self { sql, page }
    }

    /// Hands every page to `feed`, as rows separated by [`ROW_SEPARATOR`], each with its fields
    /// separated by [`FIELD_SEPARATOR`].
    pub(super) async fn run(
        &self,
        pool: &SqlitePool,
        app: AppId,
        mut feed: impl FnMut(&str) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut conn = pool.acquire().await?;
        let query = |after: i64| sqlx::query(&self.sql).bind(app).bind(after).bind(self.page);
        let mut page = query(i64::MIN).fetch_one(&mut *conn).await?;
        loop {
            let rows: i64 = page.try_get("n")?;
            if rows == 0 {
                return Ok(());
            }
            let last: i64 = page.try_get("last")?;
            let next = query(last).fetch_one(&mut *conn);
            let mut fed = Ok(());
            let next = alongside(next, || fed = packed(&page).and_then(&mut feed)).await?;
            fed?;
            page = next;
        }
    }
}

fn packed(page: &SqliteRow) -> StoreResult<&str> {
    Ok(page.try_get("packed")?)
}

/// Runs `work` while `query` is under way, then finishes `query`. One poll sends a query to
/// the connection's worker thread, which then runs it on its own; without it the query would
/// only start after `work`.
async fn alongside<F: Future>(query: F, work: impl FnOnce()) -> F::Output {
    let mut query = std::pin::pin!(query);
    let started = {
        let mut context = Context::from_waker(Waker::noop());
        query.as_mut().poll(&mut context)
    };
    work();
    match started {
        Poll::Ready(output) => output,
        Poll::Pending => query.await,
    }
}
