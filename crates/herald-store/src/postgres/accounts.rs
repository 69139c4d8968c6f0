//! The `accounts` table: import, lookup, listing, deletion and the index scan.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use herald_core::account::AccountId;
use herald_core::AppId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::devices;
use super::scan::PackedPages;
use crate::rows::decode_tags;
use crate::time::{from_millis, to_millis};
use crate::{AccountRecord, AccountSummary, IndexSink, StoreError, StoreResult};

pub(super) use crate::rows::{ATTR_COLUMN, ATTR_COLUMNS};

fn id_of(row: &PgRow) -> StoreResult<AccountId> {
    account_id(row.try_get("id")?)
}

pub(super) fn account_id(id: i64) -> StoreResult<AccountId> {
    AccountId::try_from(id).map_err(|_| StoreError::Corrupt(format!("account id {id}")))
}

fn record(row: &PgRow) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        id: id_of(row)?,
        account: row.try_get("account")?,
        tags: decode_tags(row.try_get("tags")?),
        attributes: ATTR_COLUMN.iter().map(|c| Ok(row.try_get(*c)?)).collect::<StoreResult<_>>()?,
        devices: Vec::new(),
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// Rows of the named accounts that exist (any order), in one statement whatever their number.
pub(super) async fn rows_by_name(
    conn: &mut PgConnection,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<AccountRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT id, account, tags, created_at, {ATTR_COLUMNS} FROM accounts \
         WHERE app_id = $1 AND account = ANY($2)"
    ))
    // Planned anew each time: a plan cached while the table was small scans it whole
    // for every name once it has grown (1 s a call at 100,000 accounts).
    .persistent(false)
    .bind(app)
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(record).collect()
}

/// Creates missing accounts inside the caller's transaction; returns `(name, id, new)` in input
/// order (duplicates in the input appear once). An account created meanwhile by another
/// writer is found, not created twice: the name is unique by constraint.
pub(super) async fn ensure(
    reserve: &PgPool,
    conn: &mut PgConnection,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<(String, AccountId, bool)>> {
    let mut known: HashMap<String, AccountId> =
        rows_by_name(conn, app, names).await?.into_iter().map(|r| (r.account, r.id)).collect();
    let mut seen = HashSet::new();
    let unique: Vec<&String> = names.iter().filter(|n| seen.insert(n.as_str())).collect();
    let missing: Vec<String> =
        unique.iter().filter(|n| !known.contains_key(**n)).map(|n| (*n).clone()).collect();
    let mut created = HashSet::with_capacity(missing.len());
    if !missing.is_empty() {
        let first = allocate_ids(reserve, app, missing.len()).await?;
        let ids: Vec<i64> = (0..missing.len()).map(|i| i64::from(first) + i as i64).collect();
        let rows = sqlx::query(
            "INSERT INTO accounts (app_id, id, account, created_at) \
             SELECT $1, new.id, new.account, $4 FROM UNNEST($2::BIGINT[], $3::TEXT[]) AS new (id, account) \
             ON CONFLICT (app_id, account) DO NOTHING RETURNING id, account",
        )
        .bind(app)
        .bind(&ids)
        .bind(&missing)
        .bind(to_millis(Utc::now()))
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let name: String = row.try_get("account")?;
            known.insert(name.clone(), id_of(row)?);
            created.insert(name);
        }
        if rows.len() < missing.len() {
            // Lost races: another writer committed these names first.
            let lost: Vec<String> = missing.into_iter().filter(|n| !created.contains(n)).collect();
            for record in rows_by_name(conn, app, &lost).await? {
                known.insert(record.account, record.id);
            }
        }
    }
    unique
        .into_iter()
        .map(|name| {
            let id = known.get(name).copied().ok_or_else(|| {
                StoreError::Corrupt(format!("account {name} neither found nor created"))
            })?;
            Ok((name.clone(), id, created.contains(name)))
        })
        .collect()
}

/// Reserves `count` ids; ids are never handed out twice, even after deletion. A statement of
/// its own, outside the caller's transaction: the app's row (whose seq every dispatch moves)
/// is locked for that statement only, not for a whole batch. Ids reserved by a transaction
/// that then fails are skipped, never reused.
pub(super) async fn allocate_ids(
    reserve: &PgPool,
    app: AppId,
    count: usize,
) -> StoreResult<AccountId> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let end: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_account_id = next_account_id + $1 WHERE id = $2 RETURNING next_account_id",
    )
    .bind(count)
    .bind(app)
    .fetch_optional(reserve)
    .await?
    .ok_or_else(|| StoreError::not_found("app", app))?;
    if end > i64::from(AccountId::MAX) {
        return Err(StoreError::Conflict("the app has used all 2^32 account ids".into()));
    }
    account_id(end - count)
}

pub(super) async fn import(
    pool: &PgPool,
    reserve: &PgPool,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<(String, AccountId, bool)>> {
    let mut tx = pool.begin().await?;
    let out = ensure(reserve, &mut tx, app, names).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn ids(
    pool: &PgPool,
    app: AppId,
    names: &[String],
) -> StoreResult<HashMap<String, AccountId>> {
    let mut conn = pool.acquire().await?;
    Ok(rows_by_name(&mut conn, app, names).await?.into_iter().map(|r| (r.account, r.id)).collect())
}

pub(super) async fn one(pool: &PgPool, app: AppId, name: &str) -> StoreResult<AccountRecord> {
    let mut conn = pool.acquire().await?;
    let mut record = rows_by_name(&mut conn, app, &[name.to_owned()])
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("account", name))?;
    record.devices = devices::of_account(&mut conn, app, record.id).await?;
    Ok(record)
}

pub(super) async fn page(
    pool: &PgPool,
    app: AppId,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<AccountSummary>> {
    let rows = sqlx::query(
        "SELECT id, account, created_at FROM accounts WHERE app_id = $1 AND account > $2 \
         ORDER BY account LIMIT $3",
    )
    .bind(app)
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AccountSummary {
                id: id_of(row)?,
                account: row.try_get("account")?,
                created_at: from_millis(row.try_get("created_at")?)?,
            })
        })
        .collect()
}

pub(super) async fn delete(pool: &PgPool, app: AppId, name: &str) -> StoreResult<AccountId> {
    let mut tx = pool.begin().await?;
    let id: i64 =
        sqlx::query_scalar("DELETE FROM accounts WHERE app_id = $1 AND account = $2 RETURNING id")
            .bind(app)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("account", name))?;
    sqlx::query("DELETE FROM devices WHERE app_id = $1 AND account_id = $2")
        .bind(app)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    account_id(id)
}

/// What the start-up scan reads of each account, in the order `feed_accounts` expects.
const LOAD_FIELDS: [&str; 12] = [
    "id::text",
    "tags",
    "coalesce(attr0, '')",
    "coalesce(attr1, '')",
    "coalesce(attr2, '')",
    "coalesce(attr3, '')",
    "coalesce(attr4, '')",
    "coalesce(attr5, '')",
    "coalesce(attr6, '')",
    "coalesce(attr7, '')",
    "coalesce(attr8, '')",
    "coalesce(attr9, '')",
];

/// Feeds every account of `app` to `sink`, in id order.
pub(super) async fn load_index(
    pool: &PgPool,
    app: AppId,
    sink: &mut (dyn IndexSink + Send),
) -> StoreResult<()> {
    let mut pages = PackedPages::start(pool, "accounts", "id", &LOAD_FIELDS, app);
    while let Some(page) = pages.next().await? {
        crate::packed::feed_accounts(&page, sink)?;
    }
    Ok(())
}

/// Feeds the given accounts that exist, then their devices, to `sink`.
pub(super) async fn load_index_of(
    pool: &PgPool,
    app: AppId,
    accounts: &[AccountId],
    sink: &mut (dyn IndexSink + Send),
) -> StoreResult<()> {
    let ids: Vec<i64> = accounts.iter().map(|&id| i64::from(id)).collect();
    let packed = |fields: &[&str], table: &str, key: &str| {
        format!(
            "SELECT coalesce(string_agg({fields}, chr({row})), '') FROM {table} \
             WHERE app_id = $1 AND {key} = ANY($2)",
            fields =
                fields.join(&format!(" || chr({}) || ", u32::from(crate::packed::FIELD_SEPARATOR))),
            row = u32::from(crate::packed::ROW_SEPARATOR),
        )
    };
    let mut conn = pool.acquire().await?;
    let page: String = sqlx::query_scalar(&packed(&LOAD_FIELDS, "accounts", "id"))
        .bind(app)
        .bind(&ids)
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    crate::packed::feed_accounts(&page, sink)?;
    let device_fields = ["account_id::text", "platform", "package"];
    let page: String = sqlx::query_scalar(&packed(&device_fields, "devices", "account_id"))
        .bind(app)
        .bind(&ids)
        .persistent(false)
        .fetch_one(&mut *conn)
        .await?;
    crate::packed::feed_devices(&page, sink)
}
