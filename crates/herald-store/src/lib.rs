//! herald persistence. Everything herald keeps goes through the [`Store`] trait; the SQLite
//! backend is the embedded default, the PostgreSQL backend the shared state of a cluster.
//! Nothing outside this crate writes SQL.

mod accounts;
mod bulk;
mod error;
mod migrations;
mod packed;
mod postgres;
mod pushes;
mod reports;
mod rows;
mod sqlite;
mod time;
mod vendors;

#[cfg(test)]
mod contract;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::account::{AccountId, Device};
use herald_core::push::PushStatus;
use herald_core::{App, AppId, Limits};

pub use accounts::{
    AccountFailure, AccountRecord, AccountSummary, AttributeUpdate, BatchOutcome, BoundDevice,
    DeviceBinding, DeviceCounts, DeviceSet, IndexSink, SlotChange, TagChange, TagOp, TagUpdate,
    ATTRIBUTE_SLOTS,
};
pub use bulk::{BulkAccount, BulkApplied, BulkImported};
pub use error::{StoreError, StoreResult};
pub use migrations::StoreProbe;
#[cfg(feature = "test-support")]
pub use postgres::test_schemas;
pub use postgres::{PgOptions, PgStore, PgTls};
pub use pushes::{
    BroadcastQuota, BroadcastUsage, Cursor, Dispatch, NewPush, PushFilter, PushRecord, QuotaBreach,
};
pub use reports::{
    DayCount, MinuteCount, PlatformReport, ReceiptsFlush, Webhook, WebhookAttempt, WebhookEvent,
};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use vendors::{DeviceToken, SealedCredentials};

/// A new app as the caller chose it; the store assigns the id and timestamps.
#[derive(Clone)]
pub struct NewApp {
    pub name: String,
    pub key: String,
    pub secret: String,
    pub limits: Limits,
}

impl std::fmt::Debug for NewApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApp")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("secret", &herald_core::redact::REDACTED)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Changes to an app; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct AppUpdate {
    pub name: Option<String>,
    pub limits: Option<Limits>,
}

/// All of herald's durable state.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the backend answers; used by readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Flushes and closes; later calls fail.
    async fn close(&self);

    async fn create_app(&self, app: NewApp) -> StoreResult<App>;
    async fn app(&self, id: AppId) -> StoreResult<App>;
    async fn app_by_key(&self, key: &str) -> StoreResult<App>;
    async fn apps(&self) -> StoreResult<Vec<App>>;
    async fn update_app(&self, id: AppId, update: AppUpdate) -> StoreResult<App>;
    /// Makes `secret` current and keeps the old one valid until `previous_valid_until`.
    async fn rotate_secret(
        &self,
        id: AppId,
        secret: String,
        previous_valid_until: DateTime<Utc>,
    ) -> StoreResult<App>;
    /// Deletes the app and everything that belongs to it.
    async fn delete_app(&self, id: AppId) -> StoreResult<()>;

    /// Creates the accounts that do not exist yet; returns each name with its id and whether it
    /// is new, in input order. Importing again is a no-op.
    async fn import_accounts(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<Vec<(String, AccountId, bool)>>;
    /// Ids of the named accounts that exist, by name.
    async fn account_ids(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<std::collections::HashMap<String, AccountId>>;
    /// One account with its tags, attributes and devices.
    async fn account(&self, app: AppId, name: &str) -> StoreResult<AccountRecord>;
    /// The named accounts that exist, with tags and attributes (devices left empty).
    async fn accounts_by_name(
        &self,
        app: AppId,
        names: &[String],
    ) -> StoreResult<Vec<AccountRecord>>;
    /// A page of accounts ordered by name, after `after`.
    async fn accounts_page(
        &self,
        app: AppId,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<AccountSummary>>;
    /// Deletes an account and its devices; returns its id.
    async fn delete_account(&self, app: AppId, name: &str) -> StoreResult<AccountId>;

    /// Changes the tags of several accounts in one transaction; each account succeeds or is
    /// reported in `failed` with the reason.
    async fn update_tags(
        &self,
        app: AppId,
        update: TagUpdate,
    ) -> StoreResult<BatchOutcome<TagChange>>;

    /// Creates the accounts that do not exist and updates the others, with their tags,
    /// attribute values and devices, in one transaction: a crash leaves all of the batch or
    /// none of it. The names must be distinct. An existing account whose tags would exceed
    /// `tags_per_account` is refused whole: nothing of its line is written.
    async fn bulk_import(
        &self,
        app: AppId,
        accounts: &[BulkAccount],
        tags_per_account: u32,
    ) -> StoreResult<BulkImported>;

    /// Attribute name per slot (always [`ATTRIBUTE_SLOTS`] entries).
    async fn attribute_names(&self, app: AppId) -> StoreResult<Vec<Option<String>>>;
    /// Names or unnames slots. A slot whose name changes or goes loses its values for every
    /// account. Returns the names after the change.
    async fn set_attribute_names(
        &self,
        app: AppId,
        changes: &[(u8, Option<String>)],
    ) -> StoreResult<Vec<Option<String>>>;
    /// Sets (`Some`) or removes (`None`) attribute values by slot, per account.
    async fn update_attributes(
        &self,
        app: AppId,
        updates: Vec<AttributeUpdate>,
    ) -> StoreResult<BatchOutcome<Vec<SlotChange>>>;

    /// Registers or updates a device and binds it to `account` (created if needed); a device
    /// bound elsewhere moves (the last bind wins).
    async fn register_device(
        &self,
        app: AppId,
        account: &str,
        device: &Device,
    ) -> StoreResult<DeviceBinding> {
        let registered =
            self.register_devices(app, &[(account.to_owned(), device.clone())]).await?;
        registered.into_iter().next().ok_or_else(|| StoreError::Corrupt("no binding".into()))
    }
    /// Registers several devices, in order, as [`Store::register_device`] would one after the
    /// other, in one transaction: all of them or none.
    async fn register_devices(
        &self,
        app: AppId,
        devices: &[(String, Device)],
    ) -> StoreResult<Vec<DeviceBinding>>;
    /// Removes a device; returns its account's remaining devices.
    async fn unregister_device(&self, app: AppId, device_id: &str) -> StoreResult<DeviceSet>;
    /// A device and the name of its account.
    async fn device(&self, app: AppId, device_id: &str) -> StoreResult<(String, Device)>;
    /// A device with its account's name and id and its own key, if registered; read without
    /// writing, so a reconnect of an unchanged install costs one read.
    async fn bound_device(&self, app: AppId, device_id: &str) -> StoreResult<Option<BoundDevice>>;
    /// Registered devices, in total and per platform.
    async fn device_counts(&self, app: AppId) -> StoreResult<DeviceCounts>;

    /// Feeds every account (with tags and attributes) and device of the app to `sink`, for
    /// rebuilding the audience index at start-up.
    async fn load_index(&self, app: AppId, sink: &mut (dyn IndexSink + Send)) -> StoreResult<()>;
    /// Feeds the given accounts that still exist, with their devices, to `sink`: another
    /// node's directory write, read back into this node's index. Accounts not fed are gone.
    async fn load_index_of(
        &self,
        app: AppId,
        accounts: &[AccountId],
        sink: &mut (dyn IndexSink + Send),
    ) -> StoreResult<()>;

    /// Stores a new push (status `scheduled`). With an idempotency key seen within 7 days, stores
    /// nothing and returns the first push with `false`. A push with a `quota` is refused with
    /// [`StoreError::Quota`] when the broadcasts of its source already stored leave no room.
    async fn create_push(&self, push: NewPush) -> StoreResult<(PushRecord, bool)>;
    async fn push(&self, app: AppId, id: &str) -> StoreResult<PushRecord>;
    /// The push created with an idempotency key within the last 7 days, if any.
    async fn push_by_idempotency_key(
        &self,
        app: AppId,
        key: &str,
    ) -> StoreResult<Option<PushRecord>>;
    /// Gives a scheduled push the app's next sequence number and stores its resolved audience;
    /// the push becomes `dispatching` and, unless online-only, part of every recipient's inbox.
    async fn begin_dispatch(&self, app: AppId, id: &str, dispatch: Dispatch) -> StoreResult<u64>;
    /// Ends a push's dispatch with `done` or `failed`; a push cancelled meanwhile stays
    /// cancelled.
    async fn finish_push(
        &self,
        app: AppId,
        id: &str,
        status: PushStatus,
        error: Option<String>,
    ) -> StoreResult<()>;
    /// Cancels a scheduled or dispatching push (a dispatching one also leaves every inbox);
    /// returns the status it had and the push now. Finished pushes are a `Conflict`.
    async fn cancel_push(&self, app: AppId, id: &str) -> StoreResult<(PushStatus, PushRecord)>;
    /// Marks a dispatched push recalled: it leaves every inbox. Pushes not yet sent or already
    /// recalled are a `Conflict`.
    async fn recall_push(&self, app: AppId, id: &str) -> StoreResult<PushRecord>;
    /// An app's pushes, newest first.
    async fn pushes_page(&self, app: AppId, filter: &PushFilter) -> StoreResult<Vec<PushRecord>>;
    /// Broadcast pushes created through `source` since `since` (failed ones do not count).
    async fn broadcast_usage(
        &self,
        app: AppId,
        source: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<BroadcastUsage>;

    /// Sets an app's settings of a compat layer and the id the layer's clients know it by
    /// (unique per layer: a `Conflict` otherwise).
    async fn set_compat_layer(
        &self,
        app: AppId,
        layer: &str,
        external_id: Option<&str>,
        settings: &str,
    ) -> StoreResult<()>;
    /// An app's settings of a compat layer, if set.
    async fn compat_layer(&self, app: AppId, layer: &str) -> StoreResult<Option<String>>;
    /// The app a layer's clients call `external_id`, with its settings of the layer.
    async fn app_by_compat_id(&self, layer: &str, external_id: &str) -> StoreResult<(App, String)>;

    /// Sets (replaces) an app's credentials for a vendor.
    async fn set_vendor_credentials(
        &self,
        app: AppId,
        vendor: &str,
        sealed: &[u8],
        redacted: &str,
    ) -> StoreResult<SealedCredentials>;
    /// An app's credentials for a vendor, if set.
    async fn vendor_credentials(
        &self,
        app: AppId,
        vendor: &str,
    ) -> StoreResult<Option<SealedCredentials>>;
    async fn delete_vendor_credentials(&self, app: AppId, vendor: &str) -> StoreResult<()>;
    /// Devices of the app with a vendor token, after the one whose `cursor` is given (from the
    /// first with `None`), at most `limit`.
    async fn device_tokens(
        &self,
        app: AppId,
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<DeviceToken>>;
    /// Removes a device's vendor token if it is still `token` (a device may have registered a
    /// new one meanwhile); returns whether it did.
    async fn clear_device_token(
        &self,
        app: AppId,
        device_id: &str,
        token: &str,
    ) -> StoreResult<bool>;
    /// Pushes of every app in a status, oldest push time first.
    async fn pushes_with_status(&self, status: PushStatus) -> StoreResult<Vec<PushRecord>>;
    /// Stored pushes of an app that devices may still receive: dispatched, not online-only,
    /// not expired at `now`, not recalled; in seq order.
    async fn live_pushes(&self, app: AppId, now: DateTime<Utc>) -> StoreResult<Vec<PushRecord>>;
    /// The app's dispatched pushes with `after < seq <= upto`, by seq (cancelled and recalled
    /// ones too): what a node that missed bus events reads before it delivers later ones.
    async fn pushes_by_seq(
        &self,
        app: AppId,
        after: u64,
        upto: u64,
    ) -> StoreResult<Vec<PushRecord>>;
    /// The seq of the app's last dispatched push; 0 before the first.
    async fn last_push_seq(&self, app: AppId) -> StoreResult<u64>;

    /// Takes the app's dispatch lease for this process if no other process holds it; `true`
    /// when this process holds it now. Leases live as long as the store's lease session:
    /// when that ends (the process died, or lost its connection) every one of them is free.
    /// One process owns an embedded store, so it holds every lease.
    async fn take_dispatch_lease(&self, _app: AppId) -> StoreResult<bool> {
        Ok(true)
    }
    /// Keeps the lease session open: `true` if the leases taken so far are still held,
    /// `false` if the session had ended and a new one was opened (every lease was lost).
    async fn renew_dispatch_leases(&self) -> StoreResult<bool> {
        Ok(true)
    }

    /// A device's acknowledgement state (zero if it never acked).
    async fn cursor(&self, app: AppId, device_id: &str) -> StoreResult<Cursor>;
    /// Writes cursors and report counts in one transaction.
    async fn flush_receipts(&self, flush: &ReceiptsFlush) -> StoreResult<()>;
    /// A push's report rows, one per platform.
    async fn push_report(&self, app: AppId, push_id: &str) -> StoreResult<Vec<PlatformReport>>;
    /// A push's deliveries and opens per minute.
    async fn push_minutes(&self, app: AppId, push_id: &str) -> StoreResult<Vec<MinuteCount>>;
    /// An app's daily totals for the days `from..=to` (`YYYY-MM-DD`).
    async fn app_days(&self, app: AppId, from: &str, to: &str) -> StoreResult<Vec<DayCount>>;

    async fn set_webhook(&self, app: AppId, url: &str, events: &[String]) -> StoreResult<Webhook>;
    async fn webhook(&self, app: AppId) -> StoreResult<Option<Webhook>>;
    async fn delete_webhook(&self, app: AppId) -> StoreResult<()>;

    /// Records a signed request's nonce until `expires_at` (seconds); `false` if it was
    /// recorded before and has not expired: the request is a replay. Atomic across every
    /// process sharing the store.
    async fn first_use_nonce(
        &self,
        app: AppId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Forgets the nonces that expired before `now`; returns how many.
    async fn sweep_nonces(&self, now: i64) -> StoreResult<u64>;
    /// Adds an event to the outbox; it is due at once.
    async fn enqueue_webhook_event(
        &self,
        app: AppId,
        kind: &str,
        payload: &str,
    ) -> StoreResult<i64>;
    /// Claims up to `limit` events due at `now`, oldest first: they are not due again before
    /// `until`, so that no other caller (on any node) posts them meanwhile. An event whose
    /// claimer stops before recording its attempt is due again at `until`.
    async fn claim_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<WebhookEvent>>;
    async fn webhook_attempted(&self, id: i64, attempt: &WebhookAttempt) -> StoreResult<()>;
}

/// Shared handle the rest of herald holds.
pub type DynStore = Arc<dyn Store>;
