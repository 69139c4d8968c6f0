//! Rows as both backends read them, and their conversion to domain records. The SQL differs
//! between SQLite and PostgreSQL; what a row means does not, so it is decoded in one place
//! (`sqlx::FromRow` derives are generic over the database).

use chrono::{DateTime, Utc};
use herald_core::account::{Device, TokenKind, VendorToken};
use herald_core::push::PushStatus;
use herald_core::{App, AppId, Limits};

use crate::time::from_millis;
use crate::{Cursor, PushRecord, StoreError, StoreResult, WebhookEvent};

/// Columns of [`AppRow`], in the order both schemas define them.
pub(crate) const APP_COLUMNS: &str = "id, name, app_key, secret, previous_secret, \
     previous_secret_expires_at, limits, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct AppRow {
    id: i64,
    name: String,
    app_key: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<i64>,
    limits: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<AppRow> for App {
    type Error = StoreError;

    fn try_from(row: AppRow) -> StoreResult<App> {
        let limits: Limits = serde_json::from_str(&row.limits)
            .map_err(|err| StoreError::Corrupt(format!("app limits: {err}")))?;
        Ok(App {
            id: row.id,
            name: row.name,
            key: row.app_key,
            secret: row.secret,
            previous_secret: row.previous_secret,
            previous_secret_expires_at: row
                .previous_secret_expires_at
                .map(from_millis)
                .transpose()?,
            limits,
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
        })
    }
}

pub(crate) fn limits_json(limits: &Limits) -> StoreResult<String> {
    serde_json::to_string(limits).map_err(|err| StoreError::Corrupt(err.to_string()))
}

/// Columns of [`PushRow`].
pub(crate) const PUSH_COLUMNS: &str =
    "app_id, id, seq, status, audience, message, notification, sender, platforms, \
    ttl_secs, idempotency_key, push_at, created_at, started_at, finished_at, expires_at, \
    recalled_at, recipients, targeted, error, broadcast, source, vendor_push";

#[derive(sqlx::FromRow)]
pub(crate) struct PushRow {
    app_id: AppId,
    id: String,
    seq: Option<i64>,
    status: String,
    audience: String,
    message: String,
    notification: Option<String>,
    sender: Option<String>,
    platforms: Option<String>,
    ttl_secs: i64,
    idempotency_key: Option<String>,
    push_at: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    expires_at: Option<i64>,
    recalled_at: Option<i64>,
    recipients: Option<Vec<u8>>,
    targeted: Option<i64>,
    error: Option<String>,
    broadcast: bool,
    source: String,
    vendor_push: bool,
}

fn opt_time(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(from_millis).transpose()
}

impl TryFrom<PushRow> for PushRecord {
    type Error = StoreError;

    fn try_from(row: PushRow) -> StoreResult<PushRecord> {
        let platforms = row
            .platforms
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|err| StoreError::Corrupt(format!("push platforms: {err}")))?;
        Ok(PushRecord {
            app: row.app_id,
            id: row.id,
            seq: row.seq.and_then(|s| u64::try_from(s).ok()),
            status: PushStatus::parse(&row.status)
                .ok_or_else(|| StoreError::Corrupt(format!("push status {}", row.status)))?,
            audience: row.audience,
            message: row.message,
            notification: row.notification,
            sender: row.sender,
            platforms,
            ttl_secs: u32::try_from(row.ttl_secs).unwrap_or_default(),
            idempotency_key: row.idempotency_key,
            push_at: from_millis(row.push_at)?,
            created_at: from_millis(row.created_at)?,
            started_at: opt_time(row.started_at)?,
            finished_at: opt_time(row.finished_at)?,
            expires_at: opt_time(row.expires_at)?,
            recalled_at: opt_time(row.recalled_at)?,
            recipients: row.recipients,
            targeted: row.targeted.and_then(|t| u64::try_from(t).ok()),
            error: row.error,
            broadcast: row.broadcast,
            source: row.source,
            vendor_push: row.vendor_push,
        })
    }
}

/// Rows of one query as records.
pub(crate) fn records<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

pub(crate) fn platforms_json(platforms: Option<&Vec<String>>) -> StoreResult<Option<String>> {
    platforms
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))
}

/// Columns of [`DeviceRow`], unqualified.
pub(crate) const DEVICE_COLUMNS: &str =
    "device_id, platform, package, token_kind, token, app_version, locale, time_zone";

/// [`DEVICE_COLUMNS`] of the devices table aliased `d`.
pub(crate) fn device_columns_of_d() -> String {
    DEVICE_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ")
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    device_id: String,
    platform: String,
    package: String,
    token_kind: Option<String>,
    token: Option<String>,
    app_version: Option<String>,
    locale: Option<String>,
    time_zone: Option<String>,
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;

    fn try_from(row: DeviceRow) -> StoreResult<Device> {
        let vendor_token = match (row.token_kind, row.token) {
            (Some(kind), Some(token)) => Some(VendorToken {
                kind: TokenKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("token kind {kind}")))?,
                token,
            }),
            _ => None,
        };
        Ok(Device {
            device_id: row.device_id,
            platform: row.platform,
            package: row.package,
            vendor_token,
            app_version: row.app_version,
            locale: row.locale,
            time_zone: row.time_zone,
        })
    }
}

/// A device with its account, as `bound_device` and `device` read it.
#[derive(sqlx::FromRow)]
pub(crate) struct BoundRow {
    pub(crate) account: String,
    pub(crate) account_id: i64,
    pub(crate) device_key: Option<i64>,
    #[sqlx(flatten)]
    pub(crate) device: DeviceRow,
}

#[derive(sqlx::FromRow)]
pub(crate) struct WebhookEventRow {
    id: i64,
    app_id: AppId,
    kind: String,
    payload: String,
    attempts: i64,
    created_at: i64,
}

pub(crate) const WEBHOOK_EVENT_COLUMNS: &str = "id, app_id, kind, payload, attempts, created_at";

impl TryFrom<WebhookEventRow> for WebhookEvent {
    type Error = StoreError;

    fn try_from(row: WebhookEventRow) -> StoreResult<WebhookEvent> {
        Ok(WebhookEvent {
            id: row.id,
            app: row.app_id,
            kind: row.kind,
            payload: row.payload,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            created_at: from_millis(row.created_at)?,
        })
    }
}

/// Tags are stored joined by `\n` (tags never hold control characters): one row per account
/// keeps the start-up index rebuild to one sequential scan.
pub(crate) fn encode_tags(tags: &[String]) -> String {
    tags.join("\n")
}

pub(crate) fn decode_tags(raw: &str) -> Vec<String> {
    raw.split('\n').filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// Explicit acks above the cumulative cursor, stored as a comma-separated list.
pub(crate) fn encode_acked_above(cursor: &Cursor) -> String {
    cursor.acked_above.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

pub(crate) fn cursor_of(acked: i64, above: &str) -> Cursor {
    Cursor {
        acked: u64::try_from(acked).unwrap_or_default(),
        acked_above: above.split(',').filter_map(|s| s.parse().ok()).collect(),
    }
}

/// A stored count as the domain's unsigned number; stored counts are never negative.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// A domain count as a column value, saturating (counts never come near `i64::MAX`).
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What the tags of an account become under `op`: sorted and distinct.
pub(crate) fn apply_tag_op(op: &crate::TagOp, account: &str, current: &[String]) -> Vec<String> {
    use crate::TagOp;
    let mut tags: Vec<String> = match op {
        TagOp::Add(add) => current.iter().chain(add).cloned().collect(),
        TagOp::AddEach(each) => {
            current.iter().chain(each.get(account).into_iter().flatten()).cloned().collect()
        }
        TagOp::Remove(remove) => current.iter().filter(|t| !remove.contains(t)).cloned().collect(),
        TagOp::Set(set) => set.clone(),
        TagOp::Clear => Vec::new(),
    };
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// An app found by the id a compat layer knows it by, with its settings of that layer.
#[derive(sqlx::FromRow)]
pub(crate) struct CompatAppRow {
    #[sqlx(flatten)]
    pub(crate) app: AppRow,
    pub(crate) compat_settings: String,
}

/// [`APP_COLUMNS`] of the apps table aliased `a`.
pub(crate) fn app_columns_of_a() -> String {
    APP_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
}

impl BoundRow {
    /// The device as a login needs it; `None` for a device from before device keys (the next
    /// registration gives it one).
    pub(crate) fn into_bound(self) -> StoreResult<Option<crate::BoundDevice>> {
        let (Ok(account_id), Some(Ok(device_key))) =
            (u32::try_from(self.account_id), self.device_key.map(u32::try_from))
        else {
            return Ok(None);
        };
        Ok(Some(crate::BoundDevice {
            account: self.account,
            account_id,
            device_key,
            device: Device::try_from(self.device)?,
        }))
    }
}
