//! The embedded default backend: one SQLite file in WAL mode inside the data directory.
//!
//! Writes go through a single connection so that SQLite never has to resolve two writers
//! (which would surface as `SQLITE_BUSY` mid-transaction); reads use a small pool of their own.
//!
//! Statements whose text depends on how many rows they carry (many-row inserts, name lists)
//! run unprepared (`persistent(false)`): sqlx keeps up to 100 prepared statements per
//! connection, and one per row count filled that cache with the largest programs there are,
//! growing the server's memory for hours of steady traffic.

mod accounts;
mod apps;
mod bulk;
mod devices;
mod labels;
mod nonces;
mod pushes;
mod reports;
mod scan;
mod vendors;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use herald_core::account::{AccountId, Device};
use herald_core::push::PushStatus;
use herald_core::{App, AppId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::{
    AccountRecord, AccountSummary, AppUpdate, AttributeUpdate, BatchOutcome, BoundDevice,
    BroadcastUsage, Cursor, DayCount, DeviceBinding, DeviceCounts, DeviceSet, DeviceToken,
    Dispatch, IndexSink, MinuteCount, NewApp, NewPush, PlatformReport, PushFilter, PushRecord,
    ReceiptsFlush, SealedCredentials, Store, StoreResult, TagChange, TagUpdate, Webhook,
    WebhookAttempt, WebhookEvent,
};

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `true` fsyncs every commit (survives power loss); `false` only survives a process crash.
    pub sync_full: bool,
    /// Connections used for reads.
    pub readers: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { sync_full: true, readers: 4 }
    }
}

/// [`Store`] on one SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `herald.db` in `dir` and applies pending migrations.
    pub async fn open(dir: &Path, options: SqliteOptions) -> StoreResult<Self> {
        let file = dir.join("herald.db");
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sync_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| Box::pin(out_of_transaction(conn)))
            .connect_with(base.clone())
            .await?;
        check_schema_version(&writer).await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }
}

use crate::StoreProbe;

/// Whether the writer, handed back to its pool, is out of any transaction, as SQLite and
/// sqlx both see it; one that is not is closed and replaced.
///
/// A COMMIT that fails with `SQLITE_FULL` (or an I/O error) may end the transaction in
/// SQLite while sqlx still counts it as open. Its next transaction then starts as a
/// savepoint, and when that one fails too, sqlx's `ROLLBACK TO` leaves a transaction open
/// that no later commit ends: every write after it would be answered as done and never be
/// committed, invisible to readers and lost at the next restart.
async fn out_of_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    // Runs after a dropped transaction's queued rollback, so the depth read below is settled.
    if sqlx::query("BEGIN").execute(&mut *conn).await.is_err() {
        tracing::warn!("the store's writer was left inside a transaction; it is reopened");
        return Ok(false);
    }
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    if sqlx::Connection::is_in_transaction(conn) {
        tracing::warn!("the store's writer lost count of its transactions; it is reopened");
        return Ok(false);
    }
    Ok(true)
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// The newest migration applied to the database.
    pub async fn schema_version(&self) -> StoreResult<Option<i64>> {
        applied_version(&self.writer).await
    }

    /// Opens the data directory's database read-only and reads its schema version; `None`
    /// when there is no database yet (the first `serve` creates it).
    pub async fn probe(dir: &Path) -> StoreResult<StoreProbe> {
        let file = dir.join("herald.db");
        if !file.exists() {
            return Ok(StoreProbe::new(None, &MIGRATOR, None));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?.filename(&file).read_only(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let version = applied_version(&pool).await;
        pool.close().await;
        Ok(StoreProbe::new(version?, &MIGRATOR, None))
    }
}

async fn applied_version(pool: &SqlitePool) -> StoreResult<Option<i64>> {
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !exists {
        return Ok(None);
    }
    Ok(sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?)
}

async fn check_schema_version(pool: &SqlitePool) -> StoreResult<()> {
    crate::migrations::refuse_newer(applied_version(pool).await?, &MIGRATOR)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        // A checkpoint folds the WAL back into the main file so a copied data directory is whole.
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await
        {
            tracing::warn!(%err, "WAL checkpoint at close failed");
        }
        self.writer.close().await;
    }

    async fn create_app(&self, app: NewApp) -> StoreResult<App> {
        apps::create(&self.writer, app).await
    }

    async fn app(&self, id: AppId) -> StoreResult<App> {
        apps::by_id(&self.reader, id).await
    }

    async fn app_by_key(&self, key: &str) -> StoreResult<App> {
        apps::by_key(&self.reader, key).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        apps::all(&self.reader).await
    }

    async fn update_app(&self, id: AppId, update: AppUpdate) -> StoreResult<App> {
        apps::update(&self.writer, id, update).await
    }

    async fn rotate_secret(
        &self,
        id: AppId,
        secret: String,
        previous_valid_until: DateTime<Utc>,
    ) -> StoreResult<App> {
        apps::rotate_secret(&self.writer, id, secret, previous_valid_until).await
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        apps::delete(&self.writer, id).await
    }

    async fn import_accounts(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<Vec<(String, AccountId, bool)>> {
        accounts::import(&self.writer, app, names).await
    }

    async fn account_ids(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<HashMap<String, AccountId>> {
        accounts::ids(&self.reader, app, names).await
    }

    async fn account(&self, app: AppId, name: &str) -> StoreResult<AccountRecord> {
        accounts::one(&self.reader, app, name).await
    }

    async fn accounts_by_name(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<Vec<AccountRecord>> {
        accounts::by_names(&self.reader, app, names).await
    }

    async fn accounts_page(
        &self,
        app: AppId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AccountSummary>> {
        accounts::page(&self.reader, app, after, limit).await
    }

    async fn delete_account(&self, app: AppId, name: &str) -> StoreResult<AccountId> {
        accounts::delete(&self.writer, app, name).await
    }

    async fn update_tags(
        &self,
        app: AppId,
        update: TagUpdate,
    ) -> StoreResult<BatchOutcome<TagChange>> {
        labels::update_tags(&self.writer, app, update).await
    }

    async fn bulk_import(
        &self,
        app: AppId,
        accounts: &[crate::BulkAccount],
        tags_per_account: u32,
    ) -> StoreResult<crate::BulkImported> {
        bulk::bulk_import(&self.writer, app, accounts, tags_per_account).await
    }

    async fn attribute_names(&self, app: AppId) -> StoreResult<Vec<Option<String>>> {
        labels::attribute_names(&self.reader, app).await
    }

    async fn set_attribute_names(
        &self,
        app: AppId,
        changes: &[(u8, Option<String>)],
    ) -> StoreResult<Vec<Option<String>>> {
        labels::set_attribute_names(&self.writer, app, changes).await
    }

    async fn update_attributes(
        &self,
        app: AppId,
        updates: Vec<AttributeUpdate>,
    ) -> StoreResult<BatchOutcome<Vec<crate::SlotChange>>> {
        labels::update_attributes(&self.writer, app, updates).await
    }

    async fn register_devices(
        &self,
        app: AppId,
        devices: &[(String, Device)],
    ) -> StoreResult<Vec<DeviceBinding>> {
        let mut tx = self.writer.begin().await?;
        let mut bindings = Vec::with_capacity(devices.len());
        for (account, device) in devices {
            bindings.push(devices::register(&mut tx, app, account, device).await?);
        }
        tx.commit().await?;
        Ok(bindings)
    }

    async fn unregister_device(&self, app: AppId, device_id: &str) -> StoreResult<DeviceSet> {
        devices::unregister(&self.writer, app, device_id).await
    }

    async fn device(&self, app: AppId, device_id: &str) -> StoreResult<(String, Device)> {
        devices::one(&self.reader, app, device_id).await
    }

    async fn bound_device(&self, app: AppId, device_id: &str) -> StoreResult<Option<BoundDevice>> {
        devices::bound(&self.reader, app, device_id).await
    }

    async fn device_counts(&self, app: AppId) -> StoreResult<DeviceCounts> {
        devices::counts(&self.reader, app).await
    }

    async fn load_index(&self, app: AppId, sink: &mut (dyn IndexSink + Send)) -> StoreResult<()> {
        accounts::load_index(&self.reader, app, sink).await
    }

    async fn create_push(&self, push: NewPush) -> StoreResult<(PushRecord, bool)> {
        pushes::create(&self.writer, push).await
    }

    async fn push(&self, app: AppId, id: &str) -> StoreResult<PushRecord> {
        pushes::one(&self.reader, app, id).await
    }

    async fn push_by_idempotency_key(
        &self,
        app: AppId,
        key: &str,
    ) -> StoreResult<Option<PushRecord>> {
        pushes::by_idempotency_key(&self.reader, app, key).await
    }

    async fn begin_dispatch(&self, app: AppId, id: &str, dispatch: Dispatch) -> StoreResult<u64> {
        pushes::begin_dispatch(&self.writer, app, id, dispatch).await
    }

    async fn finish_push(
        &self,
        app: AppId,
        id: &str,
        status: PushStatus,
        error: Option<String>,
    ) -> StoreResult<()> {
        pushes::finish(&self.writer, app, id, status, error).await
    }

    async fn pushes_with_status(&self, status: PushStatus) -> StoreResult<Vec<PushRecord>> {
        pushes::with_status(&self.reader, status).await
    }

    async fn live_pushes(&self, app: AppId, now: DateTime<Utc>) -> StoreResult<Vec<PushRecord>> {
        pushes::live(&self.reader, app, now).await
    }

    async fn pushes_by_seq(
        &self,
        app: AppId,
        after: u64,
        upto: u64,
    ) -> StoreResult<Vec<PushRecord>> {
        pushes::by_seq(&self.reader, app, after, upto).await
    }

    async fn last_push_seq(&self, app: AppId) -> StoreResult<u64> {
        pushes::last_seq(&self.reader, app).await
    }

    async fn load_index_of(
        &self,
        app: AppId,
        accounts: &[AccountId],
        sink: &mut (dyn IndexSink + Send),
    ) -> StoreResult<()> {
        accounts::load_index_of(&self.reader, app, accounts, sink).await
    }

    async fn cursor(&self, app: AppId, device_id: &str) -> StoreResult<Cursor> {
        pushes::cursor(&self.reader, app, device_id).await
    }

    async fn cancel_push(&self, app: AppId, id: &str) -> StoreResult<(PushStatus, PushRecord)> {
        pushes::cancel(&self.writer, app, id).await
    }

    async fn recall_push(&self, app: AppId, id: &str) -> StoreResult<PushRecord> {
        pushes::recall(&self.writer, app, id).await
    }

    async fn pushes_page(&self, app: AppId, filter: &PushFilter) -> StoreResult<Vec<PushRecord>> {
        pushes::page(&self.reader, app, filter).await
    }

    async fn broadcast_usage(
        &self,
        app: AppId,
        source: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<BroadcastUsage> {
        pushes::broadcast_usage(&self.reader, app, source, since).await
    }

    async fn set_compat_layer(
        &self,
        app: AppId,
        layer: &str,
        external_id: Option<&str>,
        settings: &str,
    ) -> StoreResult<()> {
        apps::set_compat_layer(&self.writer, app, layer, external_id, settings).await
    }

    async fn compat_layer(&self, app: AppId, layer: &str) -> StoreResult<Option<String>> {
        apps::compat_layer(&self.reader, app, layer).await
    }

    async fn app_by_compat_id(&self, layer: &str, external_id: &str) -> StoreResult<(App, String)> {
        apps::by_compat_id(&self.reader, layer, external_id).await
    }

    async fn set_vendor_credentials(
        &self,
        app: AppId,
        vendor: &str,
        sealed: &[u8],
        redacted: &str,
    ) -> StoreResult<SealedCredentials> {
        vendors::set(&self.writer, app, vendor, sealed, redacted).await
    }

    async fn vendor_credentials(
        &self,
        app: AppId,
        vendor: &str,
    ) -> StoreResult<Option<SealedCredentials>> {
        vendors::get(&self.reader, app, vendor).await
    }

    async fn delete_vendor_credentials(&self, app: AppId, vendor: &str) -> StoreResult<()> {
        vendors::delete(&self.writer, app, vendor).await
    }

    async fn device_tokens(
        &self,
        app: AppId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<DeviceToken>> {
        vendors::device_tokens(&self.reader, app, after, limit).await
    }

    async fn clear_device_token(
        &self,
        app: AppId,
        device_id: &str,
        token: &str,
    ) -> StoreResult<bool> {
        vendors::clear_device_token(&self.writer, app, device_id, token).await
    }

    async fn flush_receipts(&self, flush: &ReceiptsFlush) -> StoreResult<()> {
        reports::flush(&self.writer, flush).await
    }

    async fn push_report(&self, app: AppId, push_id: &str) -> StoreResult<Vec<PlatformReport>> {
        reports::push_report(&self.reader, app, push_id).await
    }

    async fn push_minutes(&self, app: AppId, push_id: &str) -> StoreResult<Vec<MinuteCount>> {
        reports::push_minutes(&self.reader, app, push_id).await
    }

    async fn app_days(&self, app: AppId, from: &str, to: &str) -> StoreResult<Vec<DayCount>> {
        reports::days(&self.reader, app, from, to).await
    }

    async fn set_webhook(&self, app: AppId, url: &str, events: &[String]) -> StoreResult<Webhook> {
        webhooks::set(&self.writer, app, url, events).await
    }

    async fn webhook(&self, app: AppId) -> StoreResult<Option<Webhook>> {
        webhooks::get(&self.reader, app).await
    }

    async fn delete_webhook(&self, app: AppId) -> StoreResult<()> {
        webhooks::delete(&self.writer, app).await
    }

    async fn first_use_nonce(
        &self,
        app: AppId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        nonces::first_use(&self.writer, app, nonce, expires_at, now).await
    }

    async fn sweep_nonces(&self, now: i64) -> StoreResult<u64> {
        nonces::sweep(&self.writer, now).await
    }

    async fn enqueue_webhook_event(
        &self,
        app: AppId,
        kind: &str,
        payload: &str,
    ) -> StoreResult<i64> {
        webhooks::enqueue(&self.writer, app, kind, payload).await
    }

    async fn claim_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>> {
        webhooks::claim(&self.writer, now, limit, until).await
    }

    async fn webhook_attempted(&self, id: i64, attempt: &WebhookAttempt) -> StoreResult<()> {
        webhooks::attempted(&self.writer, id, attempt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).await.unwrap();
        (dir, store)
    }

    crate::contract::suite!(store);

    #[tokio::test]
    async fn a_probe_reads_the_schema_version_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let before = SqliteStore::probe(dir.path()).await.unwrap();
        assert_eq!(before.schema_version, None);
        assert!(!dir.path().join("herald.db").exists(), "a probe creates no database");
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).await.unwrap();
        let after = SqliteStore::probe(dir.path()).await.unwrap();
        assert_eq!(after.schema_version, Some(after.known_version));
        store.close().await;
    }

    /// Statements run per login or per page of a whole-app walk: a plan that scans or sorts
    /// the app's rows makes them quadratic in the app's size.
    #[tokio::test]
    async fn per_row_statements_use_their_indexes() {
        let (_dir, store) = store().await;
        // Sorting one account's few devices is cheap; sorting every page of a walk is not.
        let by_name = accounts::by_name_sql(accounts::CHUNK);
        for (sql, index, sorts) in [
            (devices::OF_ACCOUNT, "devices_by_account", true),
            (vendors::TOKENS_PAGE, "devices_by_key", false),
            (by_name.as_str(), "sqlite_autoindex_accounts_2 (app_id=? AND account=?)", false),
        ] {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query = sqlx::query(&explain);
            for _ in 0..sql.matches('?').count() {
                query = query.bind(1);
            }
            let rows = query.fetch_all(&store.reader).await.unwrap();
            let plan: Vec<String> =
                rows.iter().map(|row| sqlx::Row::get::<String, _>(row, "detail")).collect();
            let plan = plan.join(" | ");
            assert!(plan.contains(&format!("USING INDEX {index}")), "{sql}: {plan}");
            let mut scans = plan.split(" | ").filter(|step| step.starts_with("SCAN"));
            assert!(
                scans.all(|step| step.contains("CONSTANT ROWS") || step == "SCAN wanted"),
                "{sql}: {plan}"
            );
            assert!(sorts || !plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    /// A statement whose text changes with its row count must not stay prepared: the acks of
    /// a running server flush cursors in batches of every size.
    #[tokio::test]
    async fn many_row_statements_are_not_kept_prepared() {
        use sqlx::Connection as _;
        let (_dir, store) = store().await;
        let app = crate::contract::create_demo_app(&store, "cursors").await;
        let cursors: Vec<(AppId, String, Cursor)> =
            (0..40).map(|i| (app.id, format!("d{i}"), Cursor::default())).collect();
        let mut conn = store.writer.acquire().await.unwrap();
        let before = conn.cached_statements_size();
        for rows in 1..=cursors.len() {
            pushes::save_cursors(&mut conn, &cursors[..rows]).await.unwrap();
            let names: Vec<&str> = cursors[..rows].iter().map(|(_, d, _)| d.as_str()).collect();
            accounts::rows_by_name(&mut conn, app.id, &names).await.unwrap();
        }
        assert_eq!(conn.cached_statements_size(), before, "one prepared statement per row count");
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let (dir, store) = store().await;
        let app = crate::contract::create_demo_app(&store, "kept").await;
        store.close().await;
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).await.unwrap();
        assert_eq!(store.app(app.id).await.unwrap(), app);
    }

    #[tokio::test]
    async fn a_schema_from_a_newer_herald_is_refused() {
        let (dir, store) = store().await;
        let known = store.schema_version().await.unwrap().unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        store.close().await;
        match SqliteStore::open(dir.path(), SqliteOptions::default()).await {
            Err(StoreError::SchemaTooNew { found, known: k }) => {
                assert_eq!((found, k), (99_990_101_000_000, known));
            }
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("a newer schema was accepted"),
        }
    }
}
