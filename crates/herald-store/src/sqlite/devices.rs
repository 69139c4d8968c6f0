//! The `devices` table: one row per install, bound to one account.

use std::collections::BTreeMap;

use chrono::Utc;
use herald_core::account::{AccountId, Device};
use herald_core::AppId;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::accounts;
use super::scan::PackedScan;
use crate::rows::{device_columns_of_d, records, BoundRow, DeviceRow};
use crate::time::to_millis;
use crate::{
    BoundDevice, DeviceBinding, DeviceCounts, DeviceSet, IndexSink, StoreError, StoreResult,
};

/// The devices of one account. `+device_id`: ordered by the primary key instead, SQLite would
/// walk every device of the app to find the account's.
pub(super) const OF_ACCOUNT: &str = "SELECT device_id, platform, package, token_kind, token, \
     app_version, locale, time_zone FROM devices WHERE app_id = ? AND account_id = ? \
     ORDER BY +device_id";

pub(super) async fn of_account(
    conn: &mut SqliteConnection,
    app: AppId,
    account: AccountId,
) -> StoreResult<Vec<Device>> {
    let rows = sqlx::query_as::<_, DeviceRow>(OF_ACCOUNT)
        .bind(app)
        .bind(i64::from(account))
        .fetch_all(&mut *conn)
        .await?;
    records(rows)
}

async fn set_of(
    conn: &mut SqliteConnection,
    app: AppId,
    account: AccountId,
) -> StoreResult<DeviceSet> {
    let devices = of_account(conn, app, account).await?;
    Ok(DeviceSet {
        account_id: account,
        devices: devices.into_iter().map(|d| (d.platform, d.package)).collect(),
    })
}

/// Registers one device within the caller's transaction.
pub(super) async fn register(
    tx: &mut SqliteConnection,
    app: AppId,
    account: &str,
    device: &Device,
) -> StoreResult<DeviceBinding> {
    let ensured = accounts::ensure(&mut *tx, app, &[account.to_owned()]).await?;
    let (_, account_id, new_account) = ensured
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("account not created".into()))?;
    let existing = sqlx::query(
        "SELECT account_id, device_key FROM devices WHERE app_id = ? AND device_id = ?",
    )
    .bind(app)
    .bind(&device.device_id)
    .fetch_optional(&mut *tx)
    .await?;
    let previous: Option<i64> =
        existing.as_ref().map(|row| row.try_get("account_id")).transpose()?;
    let key: Option<i64> =
        existing.as_ref().map(|row| row.try_get("device_key")).transpose()?.flatten();
    let device_key = match key {
        Some(key) => key,
        None => next_device_key(&mut *tx, app).await?,
    };
    let now = to_millis(Utc::now());
    sqlx::query(
        "INSERT INTO devices (app_id, device_id, account_id, platform, package, token_kind, token, \
         app_version, locale, time_zone, created_at, updated_at, device_key) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (app_id, device_id) DO UPDATE SET account_id = excluded.account_id, \
         platform = excluded.platform, package = excluded.package, token_kind = excluded.token_kind, \
         token = excluded.token, app_version = excluded.app_version, locale = excluded.locale, \
         time_zone = excluded.time_zone, updated_at = excluded.updated_at, \
         device_key = excluded.device_key",
    )
    .bind(app)
    .bind(&device.device_id)
    .bind(i64::from(account_id))
    .bind(&device.platform)
    .bind(&device.package)
    .bind(device.vendor_token.as_ref().map(|t| t.kind.as_str()))
    .bind(device.vendor_token.as_ref().map(|t| t.token.as_str()))
    .bind(&device.app_version)
    .bind(&device.locale)
    .bind(&device.time_zone)
    .bind(now)
    .bind(now)
    .bind(device_key)
    .execute(&mut *tx)
    .await?;
    let device_key = u32::try_from(device_key)
        .map_err(|_| StoreError::Corrupt(format!("device key {device_key}")))?;
    let mut changed = vec![set_of(&mut *tx, app, account_id).await?];
    if let Some(previous) = previous.and_then(|p| AccountId::try_from(p).ok()) {
        if previous != account_id {
            changed.push(set_of(&mut *tx, app, previous).await?);
        }
    }
    Ok(DeviceBinding { account_id, device_key, new_account, changed })
}

pub(super) async fn unregister(
    pool: &SqlitePool,
    app: AppId,
    device_id: &str,
) -> StoreResult<DeviceSet> {
    let mut tx = pool.begin().await?;
    let account: i64 = sqlx::query_scalar(
        "DELETE FROM devices WHERE app_id = ? AND device_id = ? RETURNING account_id",
    )
    .bind(app)
    .bind(device_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::not_found("device", device_id))?;
    let account = AccountId::try_from(account)
        .map_err(|_| StoreError::Corrupt(format!("account id {account}")))?;
    let set = set_of(&mut tx, app, account).await?;
    tx.commit().await?;
    Ok(set)
}

pub(super) async fn one(
    pool: &SqlitePool,
    app: AppId,
    device_id: &str,
) -> StoreResult<(String, Device)> {
    let row = bound_row(pool, app, device_id)
        .await?
        .ok_or_else(|| StoreError::not_found("device", device_id))?;
    Ok((row.account, Device::try_from(row.device)?))
}

async fn bound_row(
    pool: &SqlitePool,
    app: AppId,
    device_id: &str,
) -> StoreResult<Option<BoundRow>> {
    Ok(sqlx::query_as::<_, BoundRow>(&format!(
        "SELECT a.account, d.account_id, d.device_key, {} FROM devices d \
         JOIN accounts a ON a.app_id = d.app_id AND a.id = d.account_id \
         WHERE d.app_id = ? AND d.device_id = ?",
        device_columns_of_d()
    ))
    .bind(app)
    .bind(device_id)
    .fetch_optional(pool)
    .await?)
}

pub(super) async fn bound(
    pool: &SqlitePool,
    app: AppId,
    device_id: &str,
) -> StoreResult<Option<BoundDevice>> {
    bound_row(pool, app, device_id)
        .await?
        .map(BoundRow::into_bound)
        .transpose()
        .map(Option::flatten)
}

pub(super) async fn counts(pool: &SqlitePool, app: AppId) -> StoreResult<DeviceCounts> {
    let rows = sqlx::query(
        "SELECT platform, COUNT(*) AS n FROM devices WHERE app_id = ? GROUP BY platform",
    )
    .bind(app)
    .fetch_all(pool)
    .await?;
    let mut by_platform = BTreeMap::new();
    for row in &rows {
        let n: i64 = row.try_get("n")?;
        by_platform.insert(row.try_get("platform")?, u64::try_from(n).unwrap_or_default());
    }
    Ok(DeviceCounts { total: by_platform.values().sum(), by_platform })
}

/// Devices per round trip of the start-up scan.
const LOAD_PAGE: i64 = 20_000;

/// Feeds every device of `app` to `sink`, in device key order.
pub(super) async fn load_index(
    pool: &SqlitePool,
    app: AppId,
    sink: &mut (dyn IndexSink + Send),
) -> StoreResult<()> {
    let fields = ["account_id", "platform", "package"].map(str::to_owned);
    let scan = PackedScan::new("devices", "device_key", &fields, LOAD_PAGE);
    scan.run(pool, app, |page| crate::packed::feed_devices(page, sink)).await
}

/// Reserves the app's next device key; keys are never handed out twice.
async fn next_device_key(conn: &mut SqliteConnection, app: AppId) -> StoreResult<i64> {
    let key: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_device_key = next_device_key + 1 WHERE id = ? RETURNING next_device_key - 1",
    )
    .bind(app)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("app", app))?;
    if key > i64::from(u32::MAX) {
        return Err(StoreError::Conflict("the app has used all 2^32 device keys".into()));
    }
    Ok(key)
}
