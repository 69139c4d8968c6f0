//! Whole-app walks (the start-up index rebuild): PostgreSQL packs each page of rows into one
//! string (see [`crate::packed`]), and pages are read on a task of their own, so that the next
//! page is produced and received while the caller builds the index from the current one.

use sqlx::{PgPool, Row};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::packed::{FIELD_SEPARATOR, ROW_SEPARATOR};
use crate::{StoreError, StoreResult};
use herald_core::AppId;

/// Rows per page: one statement each, far inside the statement timeout.
const PAGE: i64 = 20_000;
/// Pages read ahead of the caller: bounds the memory they take.
const PAGES_AHEAD: usize = 2;

/// A paged scan of one table of one app, in `key` order, pages packed by the database.
pub(super) struct PackedPages {
    pages: mpsc::Receiver<String>,
    reader: JoinHandle<StoreResult<()>>,
}

impl PackedPages {
    /// Starts reading `fields` (text SQL expressions, never NULL) of `table` for `app`. An
    /// index on `(app_id, key)` must exist.
    pub(super) fn start(
        pool: &PgPool,
        table: &str,
        key: &str,
        fields: &[&str],
        app: AppId,
    ) -> Self {
        let sql = format!(
            "SELECT count(*) AS n, max({key}) AS last, \
             string_agg(packed, chr({row}) ORDER BY {key}) AS packed \
             FROM (SELECT {key}, {packed} AS packed FROM {table} \
             WHERE app_id = $1 AND {key} > $2 ORDER BY {key} LIMIT $3) page",
            packed = fields.join(&format!(" || chr({}) || ", u32::from(FIELD_SEPARATOR))),
            row = u32::from(ROW_SEPARATOR),
        );
        let (sender, pages) = mpsc::channel(PAGES_AHEAD);
        let reader = tokio::spawn(read_pages(pool.clone(), sql, app, sender));
        Self { pages, reader }
    }

    /// The next page; `None` once every row was handed over, or the reader's error.
    pub(super) async fn next(&mut self) -> StoreResult<Option<String>> {
        if let Some(page) = self.pages.recv().await {
            return Ok(Some(page));
        }
        match (&mut self.reader).await {
            Ok(result) => result.map(|()| None),
            Err(join) => Err(StoreError::Invalid(format!("index scan stopped: {join}"))),
        }
    }
}

async fn read_pages(
    pool: PgPool,
    sql: String,
    app: AppId,
    sender: mpsc::Sender<String>,
) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    let mut after = i64::MIN;
    loop {
        let page = sqlx::query(&sql).bind(app).bind(after).bind(PAGE).fetch_one(&mut *conn).await?;
        let rows: i64 = page.try_get("n")?;
        if rows == 0 {
            return Ok(());
        }
        after = page.try_get("last")?;
        let packed: String = page.try_get("packed")?;
        // A closed channel: the caller stopped (it failed), nothing is left to do.
        if sender.send(packed).await.is_err() || rows < PAGE {
            return Ok(());
        }
    }
}
