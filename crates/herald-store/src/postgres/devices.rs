//! The `devices` table: one row per install, bound to one account.

use std::collections::BTreeMap;

use chrono::Utc;
use herald_core::account::{AccountId, Device};
use herald_core::AppId;
use sqlx::{PgConnection, PgPool, Row};

use super::accounts::{self, account_id};
use super::scan::PackedPages;
use crate::rows::{device_columns_of_d, records, BoundRow, DeviceRow, DEVICE_COLUMNS};
use crate::time::to_millis;
use crate::{
    BoundDevice, DeviceBinding, DeviceCounts, DeviceSet, IndexSink, StoreError, StoreResult,
};

pub(super) async fn of_account(
    conn: &mut PgConnection,
    app: AppId,
    account: AccountId,
) -> StoreResult<Vec<Device>> {
    let rows = sqlx::query_as::<_, DeviceRow>(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE app_id = $1 AND account_id = $2 ORDER BY device_id"
    ))
    .bind(app)
    .bind(i64::from(account))
    .fetch_all(&mut *conn)
    .await?;
    records(rows)
}

async fn set_of(conn: &mut PgConnection, app: AppId, account: AccountId) -> StoreResult<DeviceSet> {
    let devices = of_account(conn, app, account).await?;
    Ok(DeviceSet {
        account_id: account,
        devices: devices.into_iter().map(|d| (d.platform, d.package)).collect(),
    })
}

/// Registers devices in order, in one transaction. Concurrent registrations of one device (a
/// reconnect racing a login elsewhere) wait for each other on a lock of the device, taken for
/// all of the batch's devices up front in one order, so that the last bind wins whole: its
/// reading of the previous owner and its write are never interleaved with another's.
pub(super) async fn register_all(
    pool: &PgPool,
    app: AppId,
    devices: &[(String, Device)],
) -> StoreResult<Vec<DeviceBinding>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let ids: Vec<&str> = devices.iter().map(|(_, d)| d.device_id.as_str()).collect();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::TEXT || '/' || d, 0)) \
         FROM (SELECT DISTINCT d FROM UNNEST($2::TEXT[]) AS d ORDER BY d) AS sorted",
    )
    .bind(app.to_string())
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    let mut bindings = Vec::with_capacity(devices.len());
    for (account, device) in devices {
        bindings.push(register(&mut tx, app, account, device).await?);
    }
    tx.commit().await?;
    Ok(bindings)
}

async fn register(
    tx: &mut PgConnection,
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
        "SELECT account_id, device_key FROM devices WHERE app_id = $1 AND device_id = $2",
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12) \
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

/// Reserves the app's next device key; keys are never handed out twice.
async fn next_device_key(conn: &mut PgConnection, app: AppId) -> StoreResult<i64> {
    let key: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_device_key = next_device_key + 1 WHERE id = $1 RETURNING next_device_key - 1",
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

pub(super) async fn unregister(
    pool: &PgPool,
    app: AppId,
    device_id: &str,
) -> StoreResult<DeviceSet> {
    let mut tx = pool.begin().await?;
    let account: i64 = sqlx::query_scalar(
        "DELETE FROM devices WHERE app_id = $1 AND device_id = $2 RETURNING account_id",
    )
    .bind(app)
    .bind(device_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::not_found("device", device_id))?;
    let set = set_of(&mut tx, app, account_id(account)?).await?;
    tx.commit().await?;
    Ok(set)
}

async fn bound_row(pool: &PgPool, app: AppId, device_id: &str) -> StoreResult<Option<BoundRow>> {
    Ok(sqlx::query_as::<_, BoundRow>(&format!(
        "SELECT a.account, d.account_id, d.device_key, {} FROM devices d \
         JOIN accounts a ON a.app_id = d.app_id AND a.id = d.account_id \
         WHERE d.app_id = $1 AND d.device_id = $2",
        device_columns_of_d()
    ))
    .bind(app)
    .bind(device_id)
    .fetch_optional(pool)
    .await?)
}

pub(super) async fn one(
    pool: &PgPool,
    app: AppId,
    device_id: &str,
) -> StoreResult<(String, Device)> {
    let row = bound_row(pool, app, device_id)
        .await?
        .ok_or_else(|| StoreError::not_found("device", device_id))?;
    Ok((row.account, Device::try_from(row.device)?))
}

pub(super) async fn bound(
    pool: &PgPool,
    app: AppId,
    device_id: &str,
) -> StoreResult<Option<BoundDevice>> {
    bound_row(pool, app, device_id)
        .await?
        .map(BoundRow::into_bound)
        .transpose()
        .map(Option::flatten)
}

pub(super) async fn counts(pool: &PgPool, app: AppId) -> StoreResult<DeviceCounts> {
    let rows = sqlx::query(
        "SELECT platform, COUNT(*) AS n FROM devices WHERE app_id = $1 GROUP BY platform",
    )
    .bind(app)
    .fetch_all(pool)
    .await?;
    let mut by_platform = BTreeMap::new();
    for row in &rows {
        by_platform.insert(row.try_get("platform")?, crate::rows::count(row.try_get("n")?));
    }
    Ok(DeviceCounts { total: by_platform.values().sum(), by_platform })
}

/// Feeds every device of `app` to `sink`, in device key order.
pub(super) async fn load_index(
    pool: &PgPool,
    app: AppId,
    sink: &mut (dyn IndexSink + Send),
) -> StoreResult<()> {
    let fields = ["account_id::text", "platform", "package"];
    let mut pages = PackedPages::start(pool, "devices", "device_key", &fields, app);
    while let Some(page) = pages.next().await? {
        crate::packed::feed_devices(&page, sink)?;
    }
    Ok(())
}
