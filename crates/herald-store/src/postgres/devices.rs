//! The `devices` table: one row per install, bound to one account.

use std::collections::{BTreeMap, HashMap, HashSet};

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
///
/// Accounts, previous owners and device sets are read once for the whole batch: a login storm
/// costs the database one statement per device, not five.
pub(super) async fn register_all(
    pool: &PgPool,
    reserve: &PgPool,
    app: AppId,
    devices: &[(String, Device)],
) -> StoreResult<Vec<DeviceBinding>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await?;
    let bound = register_in(&mut tx, reserve, app, devices).await?;
    tx.commit().await?;
    Ok(bound)
}

/// [`register_all`] inside the caller's transaction.
pub(super) async fn register_in(
    tx: &mut PgConnection,
    reserve: &PgPool,
    app: AppId,
    devices: &[(String, Device)],
) -> StoreResult<Vec<DeviceBinding>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = devices.iter().map(|(_, d)| d.device_id.as_str()).collect();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::TEXT || '/' || d, 0)) \
         FROM (SELECT DISTINCT d FROM UNNEST($2::TEXT[]) AS d ORDER BY d) AS sorted",
    )
    .bind(app.to_string())
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    let names: Vec<String> = devices.iter().map(|(account, _)| account.clone()).collect();
    let mut accounts: HashMap<String, (AccountId, bool)> =
        accounts::ensure(reserve, &mut *tx, app, &names)
            .await?
            .into_iter()
            .map(|(name, id, created)| (name, (id, created)))
            .collect();
    let mut owners = owners_of(&mut *tx, app, &ids).await?;
    let mut fresh = fresh_keys(reserve, app, &ids, &owners).await?;
    let mut bound = Vec::with_capacity(devices.len());
    for (account, device) in devices {
        let (account_id, created) = accounts
            .get_mut(account)
            .map(|(id, created)| (*id, std::mem::take(created)))
            .ok_or_else(|| StoreError::Corrupt(format!("account {account} not created")))?;
        let previous = owners.get(&device.device_id).map(|owner| owner.0);
        let key = match owners.get(&device.device_id).and_then(|owner| owner.1) {
            Some(key) => key,
            None => fresh.remove(&device.device_id).ok_or_else(|| {
                StoreError::Corrupt(format!("no key reserved for device {}", device.device_id))
            })?,
        };
        write(&mut *tx, app, account_id, device, key).await?;
        owners.insert(device.device_id.clone(), (account_id, Some(key)));
        let key =
            u32::try_from(key).map_err(|_| StoreError::Corrupt(format!("device key {key}")))?;
        bound.push((account_id, key, created, previous.filter(|p| *p != account_id)));
    }
    let touched: Vec<AccountId> = bound
        .iter()
        .flat_map(|(account, _, _, previous)| [Some(*account), *previous])
        .flatten()
        .collect();
    let mut sets = sets_of(&mut *tx, app, &touched).await?;
    let mut set = |account: AccountId| DeviceSet {
        account_id: account,
        devices: sets.entry(account).or_default().clone(),
    };
    Ok(bound
        .into_iter()
        .map(|(account_id, device_key, new_account, previous)| DeviceBinding {
            account_id,
            device_key,
            new_account,
            changed: std::iter::once(account_id).chain(previous).map(&mut set).collect(),
        })
        .collect())
}

/// Each already registered device of the batch: its account and key.
async fn owners_of(
    tx: &mut PgConnection,
    app: AppId,
    ids: &[&str],
) -> StoreResult<HashMap<String, (AccountId, Option<i64>)>> {
    let rows = sqlx::query(
        "SELECT device_id, account_id, device_key FROM devices \
         WHERE app_id = $1 AND device_id = ANY($2)",
    )
    .bind(app)
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    rows.iter()
        .map(|row| {
            let owner = account_id(row.try_get("account_id")?)?;
            Ok((row.try_get("device_id")?, (owner, row.try_get("device_key")?)))
        })
        .collect()
}

/// Keys for the batch's devices that have none yet, reserved in one statement.
async fn fresh_keys(
    reserve: &PgPool,
    app: AppId,
    ids: &[&str],
    owners: &HashMap<String, (AccountId, Option<i64>)>,
) -> StoreResult<HashMap<String, i64>> {
    let mut seen = HashSet::new();
    let keyed = |id: &str| owners.get(id).is_some_and(|owner| owner.1.is_some());
    let needed: Vec<&str> =
        ids.iter().copied().filter(|id| !keyed(id) && seen.insert(*id)).collect();
    if needed.is_empty() {
        return Ok(HashMap::new());
    }
    let first = reserve_device_keys(reserve, app, needed.len()).await?;
    Ok(needed.into_iter().zip(first..).map(|(id, key)| (id.to_owned(), key)).collect())
}

/// Binds the device to the account, with its key.
async fn write(
    tx: &mut PgConnection,
    app: AppId,
    account_id: AccountId,
    device: &Device,
    device_key: i64,
) -> StoreResult<()> {
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
    Ok(())
}

/// The (platform, package) of every device of the accounts, by account, in device id order.
async fn sets_of(
    tx: &mut PgConnection,
    app: AppId,
    accounts: &[AccountId],
) -> StoreResult<HashMap<AccountId, Vec<(String, String)>>> {
    let ids: Vec<i64> = accounts.iter().map(|&a| i64::from(a)).collect();
    let rows = sqlx::query(
        "SELECT account_id, platform, package FROM devices \
         WHERE app_id = $1 AND account_id = ANY($2) ORDER BY account_id, device_id",
    )
    .bind(app)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut sets: HashMap<AccountId, Vec<(String, String)>> = HashMap::new();
    for row in &rows {
        let account = account_id(row.try_get("account_id")?)?;
        sets.entry(account).or_default().push((row.try_get("platform")?, row.try_get("package")?));
    }
    Ok(sets)
}

/// Reserves `count` device keys; returns the first. Keys are never handed out twice. A
/// statement of its own, outside the registration's transaction, so that the app's row
/// (whose seq every dispatch moves) is not locked for a whole batch; keys reserved by a
/// transaction that then fails are skipped.
async fn reserve_device_keys(reserve: &PgPool, app: AppId, count: usize) -> StoreResult<i64> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let end: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_device_key = next_device_key + $1 WHERE id = $2 \
         RETURNING next_device_key",
    )
    .bind(count)
    .bind(app)
    .fetch_optional(reserve)
    .await?
    .ok_or_else(|| StoreError::not_found("app", app))?;
    if end - 1 > i64::from(u32::MAX) {
        return Err(StoreError::Conflict("the app has used all 2^32 device keys".into()));
    }
    Ok(end - count)
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
