//! The cluster backend: PostgreSQL, shared by every herald node.
//!
//! Several nodes write at once, so every rule that SQLite's single writer gave for free is
//! made safe by the database here: counters (account ids, device keys, push seqs) move by an
//! `UPDATE` of the app's row inside the transaction that uses them, so its row lock serialises
//! them and a rolled-back transaction leaves no gap; uniqueness (idempotency keys, account
//! names) is a constraint, and a writer that loses a race reads the winner's row; a device's
//! registrations are serialised by a transaction-scoped advisory lock on the device; cursors
//! only move forward; the webhook outbox is claimed with `FOR UPDATE SKIP LOCKED`.

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

#[cfg(any(test, feature = "test-support"))]
pub mod test_schemas;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::account::{AccountId, Device};
use herald_core::push::PushStatus;
use herald_core::{App, AppId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;

use crate::{
    AccountRecord, AccountSummary, AppUpdate, AttributeUpdate, BatchOutcome, BoundDevice,
    BroadcastUsage, Cursor, DayCount, DeviceBinding, DeviceCounts, DeviceSet, DeviceToken,
    Dispatch, IndexSink, MinuteCount, NewApp, NewPush, PlatformReport, PushFilter, PushRecord,
    ReceiptsFlush, SealedCredentials, Store, StoreError, StoreResult, TagChange, TagUpdate,
    Webhook, WebhookAttempt, WebhookEvent,
};

/// How the connection is secured, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTls {
    Disable,
    /// TLS when the server offers it (libpq's default).
    Prefer,
    Require,
    /// TLS with the server's certificate checked against the trusted roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host.
    VerifyFull,
}

impl FromStr for PgTls {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(format!(
                "unknown TLS mode {other:?} (disable, prefer, require, verify-ca, verify-full)"
            )),
        }
    }
}

impl From<PgTls> for PgSslMode {
    fn from(tls: PgTls) -> Self {
        match tls {
            PgTls::Disable => PgSslMode::Disable,
            PgTls::Prefer => PgSslMode::Prefer,
            PgTls::Require => PgSslMode::Require,
            PgTls::VerifyCa => PgSslMode::VerifyCa,
            PgTls::VerifyFull => PgSslMode::VerifyFull,
        }
    }
}

/// How to reach the database.
#[derive(Clone, PartialEq)]
pub struct PgOptions {
    /// `postgres://user:password@host:5432/database`; libpq's URL parameters (`sslmode`,
    /// `sslrootcert`, ...) are honoured.
    pub url: String,
    /// Schema holding herald's tables, created if missing; lets several herald deployments
    /// (or test runs) share one database.
    pub schema: String,
    /// Most connections open at once.
    pub pool_size: u32,
    /// Longest a statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// Longest a call waits for a free connection (or for a new one to open).
    pub acquire_timeout: Duration,
    /// Overrides the URL's `sslmode`.
    pub tls: Option<PgTls>,
    /// Shown in `pg_stat_activity`, so operators can tell herald's sessions apart; an
    /// `application_name` in the URL wins.
    pub application_name: String,
}

impl std::fmt::Debug for PgOptions {
    // The URL may carry the database password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &herald_core::redact::url_without_password(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("tls", &self.tls)
            .field("application_name", &self.application_name)
            .finish()
    }
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "public".into(),
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(5),
            tls: None,
            application_name: "herald".into(),
        }
    }

    fn connect_options(&self) -> StoreResult<PgConnectOptions> {
        let mut options = PgConnectOptions::from_str(&self.url)
            .map_err(|err| StoreError::Invalid(format!("PostgreSQL URL: {err}")))?;
        if options.get_application_name().is_none() {
            options = options.application_name(&self.application_name);
        }
        // Every statement is planned for the values it runs with. A generic plan, which
        // PostgreSQL may keep for a prepared statement after five runs, is made from the
        // statistics of that moment: for an app whose tables were nearly empty then (a new
        // app, a first login storm) it scans the whole table on every later login.
        options = options.options([
            ("search_path", quote_identifier(&self.schema)),
            ("statement_timeout", format!("{}ms", self.statement_timeout.as_millis())),
            ("plan_cache_mode", "force_custom_plan".to_owned()),
        ]);
        if let Some(tls) = self.tls {
            options = options.ssl_mode(tls.into());
        }
        Ok(options)
    }
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// [`Store`] on a PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
    /// Connections of their own for reserving account ids and device keys on the app's row,
    /// one statement at a time, while a registration's transaction holds one of `pool`'s: a
    /// batch never locks the row that every dispatch moves, and transactions waiting for a
    /// reservation never starve each other of connections.
    reserve: PgPool,
    leases: DispatchLeases,
}

/// Dispatch leases are session advisory locks held on one connection of their own: a node
/// that dies (or is cut from the database) loses its connection and with it every lease, at
/// once and without a timeout to tune; nothing else has to be cleaned up.
struct DispatchLeases {
    connect: PgConnectOptions,
    /// The first half of every lock key, from the schema name: deployments sharing one
    /// database in different schemas do not take each other's leases.
    space: i32,
    session: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
}

impl DispatchLeases {
    fn new(connect: PgConnectOptions, schema: &str) -> Self {
        // FNV-1a: stable across builds and processes, unlike the std hasher.
        let hash = schema
            .bytes()
            .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        Self { connect, space: i32::from_ne_bytes(hash.to_ne_bytes()), session: Default::default() }
    }

    async fn take(&self, app: AppId) -> StoreResult<bool> {
        let mut session = self.session.lock().await;
        let Some(conn) = session.as_mut() else {
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        };
        let key = i32::try_from(app).map_err(|_| StoreError::Invalid(format!("app id {app}")))?;
        let taken = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(self.space)
            .bind(key)
            .fetch_one(&mut *conn)
            .await;
        taken.inspect_err(|_| *session = None).map_err(Into::into)
    }

    async fn renew(&self) -> StoreResult<bool> {
        use sqlx::Connection;
        let mut session = self.session.lock().await;
        if let Some(conn) = session.as_mut() {
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                return Ok(true);
            }
        }
        *session = None;
        *session = Some(sqlx::PgConnection::connect_with(&self.connect).await?);
        Ok(false)
    }

    async fn close(&self) {
        use sqlx::Connection;
        if let Some(conn) = self.session.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

use crate::StoreProbe;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections for id and key reservations (single short statements).
const RESERVE_CONNECTIONS: u32 = 2;

impl PgStore {
    /// Connects, creates the schema if needed and applies pending migrations. A database
    /// migrated by a newer herald is refused with [`StoreError::SchemaTooNew`].
    pub async fn connect(options: &PgOptions) -> StoreResult<Self> {
        let connect = options.connect_options()?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        let reserve = PgPoolOptions::new()
            .max_connections(RESERVE_CONNECTIONS)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect.clone());
        let leases = DispatchLeases::new(connect, &options.schema);
        // The schema must exist before the migrator's own table can be made in it.
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(&options.schema)))
            .execute(&pool)
            .await
            .or_else(ignore_concurrent_create)?;
        check_schema_version(&pool).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, reserve, leases })
    }

    /// The newest migration applied to the database.
    pub async fn schema_version(&self) -> StoreResult<Option<i64>> {
        applied_version(&self.pool).await
    }

    /// Connects once and reads the schema version and the server's clock, creating and
    /// migrating nothing.
    pub async fn probe(options: &PgOptions) -> StoreResult<StoreProbe> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(options.connect_options()?)
            .await?;
        let probe = async {
            let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(&pool).await?;
            let version = applied_version(&pool).await?;
            Ok(StoreProbe::new(version, &MIGRATOR, Some(now)))
        };
        let probe = probe.await;
        pool.close().await;
        probe
    }

    /// The pool, for tests that look underneath.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Two nodes starting together may both create the schema; the loser's error means it exists.
fn ignore_concurrent_create(
    err: sqlx::Error,
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Ok(Default::default()),
        _ => Err(err),
    }
}

async fn applied_version(pool: &PgPool) -> StoreResult<Option<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(None);
    }
    Ok(sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?)
}

async fn check_schema_version(pool: &PgPool) -> StoreResult<()> {
    crate::migrations::refuse_newer(applied_version(pool).await?, &MIGRATOR)
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.leases.close().await;
        self.pool.close().await;
        self.reserve.close().await;
    }

    async fn take_dispatch_lease(&self, app: AppId) -> StoreResult<bool> {
        self.leases.take(app).await
    }

    async fn renew_dispatch_leases(&self) -> StoreResult<bool> {
        self.leases.renew().await
    }

    async fn load_index_of(
        &self,
        app: AppId,
        accounts: &[AccountId],
        sink: &mut (dyn IndexSink + Send),
    ) -> StoreResult<()> {
        accounts::load_index_of(&self.pool, app, accounts, sink).await
    }

    async fn pushes_by_seq(
        &self,
        app: AppId,
        after: u64,
        upto: u64,
    ) -> StoreResult<Vec<PushRecord>> {
        pushes::by_seq(&self.pool, app, after, upto).await
    }

    async fn last_push_seq(&self, app: AppId) -> StoreResult<u64> {
        pushes::last_seq(&self.pool, app).await
    }

    async fn create_app(&self, app: NewApp) -> StoreResult<App> {
        apps::create(&self.pool, app).await
    }

    async fn app(&self, id: AppId) -> StoreResult<App> {
        apps::by_id(&self.pool, id).await
    }

    async fn app_by_key(&self, key: &str) -> StoreResult<App> {
        apps::by_key(&self.pool, key).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        apps::all(&self.pool).await
    }

    async fn update_app(&self, id: AppId, update: AppUpdate) -> StoreResult<App> {
        apps::update(&self.pool, id, update).await
    }

    async fn rotate_secret(
        &self,
        id: AppId,
        secret: String,
        previous_valid_until: DateTime<Utc>,
    ) -> StoreResult<App> {
        apps::rotate_secret(&self.pool, id, secret, previous_valid_until).await
    }

    async fn delete_app(&self, id: AppId) -> StoreResult<()> {
        apps::delete(&self.pool, id).await
    }

    async fn import_accounts(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<Vec<(String, AccountId, bool)>> {
        accounts::import(&self.pool, &self.reserve, app, names).await
    }

    async fn account_ids(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<HashMap<String, AccountId>> {
        accounts::ids(&self.pool, app, names).await
    }

    async fn account(&self, app: AppId, name: &str) -> StoreResult<AccountRecord> {
        accounts::one(&self.pool, app, name).await
    }

    async fn accounts_by_name(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<Vec<AccountRecord>> {
        let mut conn = self.pool.acquire().await?;
        accounts::rows_by_name(&mut conn, app, names).await
    }

    async fn accounts_page(
        &self,
        app: AppId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AccountSummary>> {
        accounts::page(&self.pool, app, after, limit).await
    }

    async fn delete_account(&self, app: AppId, name: &str) -> StoreResult<AccountId> {
        accounts::delete(&self.pool, app, name).await
    }

    async fn update_tags(
        &self,
        app: AppId,
        update: TagUpdate,
    ) -> StoreResult<BatchOutcome<TagChange>> {
        labels::update_tags(&self.pool, app, update).await
    }

    async fn bulk_import(
        &self,
        app: AppId,
        accounts: &[crate::BulkAccount],
        tags_per_account: u32,
    ) -> StoreResult<crate::BulkImported> {
        bulk::bulk_import(&self.pool, &self.reserve, app, accounts, tags_per_account).await
    }

    async fn attribute_names(&self, app: AppId) -> StoreResult<Vec<Option<String>>> {
        labels::attribute_names(&self.pool, app).await
    }

    async fn set_attribute_names(
        &self,
        app: AppId,
        changes: &[(u8, Option<String>)],
    ) -> StoreResult<Vec<Option<String>>> {
        labels::set_attribute_names(&self.pool, app, changes).await
    }

    async fn update_attributes(
        &self,
        app: AppId,
        updates: Vec<AttributeUpdate>,
    ) -> StoreResult<BatchOutcome<Vec<crate::SlotChange>>> {
        labels::update_attributes(&self.pool, app, updates).await
    }

    async fn register_devices(
        &self,
        app: AppId,
        devices: &[(String, Device)],
    ) -> StoreResult<Vec<DeviceBinding>> {
        devices::register_all(&self.pool, &self.reserve, app, devices).await
    }

    async fn unregister_device(&self, app: AppId, device_id: &str) -> StoreResult<DeviceSet> {
        devices::unregister(&self.pool, app, device_id).await
    }

    async fn device(&self, app: AppId, device_id: &str) -> StoreResult<(String, Device)> {
        devices::one(&self.pool, app, device_id).await
    }

    async fn bound_device(&self, app: AppId, device_id: &str) -> StoreResult<Option<BoundDevice>> {
        devices::bound(&self.pool, app, device_id).await
    }

    async fn device_counts(&self, app: AppId) -> StoreResult<DeviceCounts> {
        devices::counts(&self.pool, app).await
    }

    async fn load_index(&self, app: AppId, sink: &mut (dyn IndexSink + Send)) -> StoreResult<()> {
        accounts::load_index(&self.pool, app, sink).await?;
        devices::load_index(&self.pool, app, sink).await
    }

    async fn create_push(&self, push: NewPush) -> StoreResult<(PushRecord, bool)> {
        pushes::create(&self.pool, push).await
    }

    async fn push(&self, app: AppId, id: &str) -> StoreResult<PushRecord> {
        pushes::one(&self.pool, app, id).await
    }

    async fn push_by_idempotency_key(
        &self,
        app: AppId,
        key: &str,
    ) -> StoreResult<Option<PushRecord>> {
        pushes::by_idempotency_key(&self.pool, app, key).await
    }

    async fn begin_dispatch(&self, app: AppId, id: &str, dispatch: Dispatch) -> StoreResult<u64> {
        pushes::begin_dispatch(&self.pool, app, id, dispatch).await
    }

    async fn finish_push(
        &self,
        app: AppId,
        id: &str,
        status: PushStatus,
        error: Option<String>,
    ) -> StoreResult<()> {
        pushes::finish(&self.pool, app, id, status, error).await
    }

    async fn cancel_push(&self, app: AppId, id: &str) -> StoreResult<(PushStatus, PushRecord)> {
        pushes::cancel(&self.pool, app, id).await
    }

    async fn recall_push(&self, app: AppId, id: &str) -> StoreResult<PushRecord> {
        pushes::recall(&self.pool, app, id).await
    }

    async fn pushes_page(&self, app: AppId, filter: &PushFilter) -> StoreResult<Vec<PushRecord>> {
        pushes::page(&self.pool, app, filter).await
    }

    async fn broadcast_usage(
        &self,
        app: AppId,
        source: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<BroadcastUsage> {
        pushes::broadcast_usage(&self.pool, app, source, since).await
    }

    async fn set_compat_layer(
        &self,
        app: AppId,
        layer: &str,
        external_id: Option<&str>,
        settings: &str,
    ) -> StoreResult<()> {
        apps::set_compat_layer(&self.pool, app, layer, external_id, settings).await
    }

    async fn compat_layer(&self, app: AppId, layer: &str) -> StoreResult<Option<String>> {
        apps::compat_layer(&self.pool, app, layer).await
    }

    async fn app_by_compat_id(&self, layer: &str, external_id: &str) -> StoreResult<(App, String)> {
        apps::by_compat_id(&self.pool, layer, external_id).await
    }

    async fn set_vendor_credentials(
        &self,
        app: AppId,
        vendor: &str,
        sealed: &[u8],
        redacted: &str,
    ) -> StoreResult<SealedCredentials> {
        vendors::set(&self.pool, app, vendor, sealed, redacted).await
    }

    async fn vendor_credentials(
        &self,
        app: AppId,
        vendor: &str,
    ) -> StoreResult<Option<SealedCredentials>> {
        vendors::get(&self.pool, app, vendor).await
    }

    async fn delete_vendor_credentials(&self, app: AppId, vendor: &str) -> StoreResult<()> {
        vendors::delete(&self.pool, app, vendor).await
    }

    async fn device_tokens(
        &self,
        app: AppId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<DeviceToken>> {
        vendors::device_tokens(&self.pool, app, after, limit).await
    }

    async fn clear_device_token(
        &self,
        app: AppId,
        device_id: &str,
        token: &str,
    ) -> StoreResult<bool> {
        vendors::clear_device_token(&self.pool, app, device_id, token).await
    }

    async fn pushes_with_status(&self, status: PushStatus) -> StoreResult<Vec<PushRecord>> {
        pushes::with_status(&self.pool, status).await
    }

    async fn live_pushes(&self, app: AppId, now: DateTime<Utc>) -> StoreResult<Vec<PushRecord>> {
        pushes::live(&self.pool, app, now).await
    }

    async fn cursor(&self, app: AppId, device_id: &str) -> StoreResult<Cursor> {
        pushes::cursor(&self.pool, app, device_id).await
    }

    async fn flush_receipts(&self, flush: &ReceiptsFlush) -> StoreResult<()> {
        reports::flush(&self.pool, flush).await
    }

    async fn push_report(&self, app: AppId, push_id: &str) -> StoreResult<Vec<PlatformReport>> {
        reports::push_report(&self.pool, app, push_id).await
    }

    async fn push_minutes(&self, app: AppId, push_id: &str) -> StoreResult<Vec<MinuteCount>> {
        reports::push_minutes(&self.pool, app, push_id).await
    }

    async fn app_days(&self, app: AppId, from: &str, to: &str) -> StoreResult<Vec<DayCount>> {
        reports::days(&self.pool, app, from, to).await
    }

    async fn set_webhook(&self, app: AppId, url: &str, events: &[String]) -> StoreResult<Webhook> {
        webhooks::set(&self.pool, app, url, events).await
    }

    async fn webhook(&self, app: AppId) -> StoreResult<Option<Webhook>> {
        webhooks::get(&self.pool, app).await
    }

    async fn delete_webhook(&self, app: AppId) -> StoreResult<()> {
        webhooks::delete(&self.pool, app).await
    }

    async fn first_use_nonce(
        &self,
        app: AppId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool> {
        nonces::first_use(&self.pool, app, nonce, expires_at, now).await
    }

    async fn sweep_nonces(&self, now: i64) -> StoreResult<u64> {
        nonces::sweep(&self.pool, now).await
    }

    async fn enqueue_webhook_event(
        &self,
        app: AppId,
        kind: &str,
        payload: &str,
    ) -> StoreResult<i64> {
        webhooks::enqueue(&self.pool, app, kind, payload).await
    }

    async fn claim_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>> {
        webhooks::claim(&self.pool, now, limit, until).await
    }

    async fn webhook_attempted(&self, id: i64, attempt: &WebhookAttempt) -> StoreResult<()> {
        webhooks::attempted(&self.pool, id, attempt).await
    }
}

#[cfg(test)]
pub(crate) mod tests;
