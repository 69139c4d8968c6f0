//! The `accounts` table: import, lookup, listing, deletion and the index scan.

use std::collections::HashMap;

use chrono::Utc;
use herald_core::account::AccountId;
use herald_core::AppId;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::devices;
use super::scan::PackedScan;
use crate::rows::decode_tags;
use crate::time::{from_millis, to_millis};
use crate::{AccountRecord, AccountSummary, IndexSink, StoreError, StoreResult};

/// Bound parameters per statement stay well under SQLite's limit.
pub(super) const CHUNK: usize = 500;

pub(super) use crate::rows::{ATTR_COLUMN, ATTR_COLUMNS};

pub(super) fn attrs_of(row: &SqliteRow) -> StoreResult<Vec<Option<String>>> {
    ATTR_COLUMN.iter().map(|column| Ok(row.try_get(*column)?)).collect()
}

fn id_of(row: &SqliteRow) -> StoreResult<AccountId> {
    let id: i64 = row.try_get("id")?;
    AccountId::try_from(id).map_err(|_| StoreError::Corrupt(format!("account id {id}")))
}

fn record(row: &SqliteRow) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        id: id_of(row)?,
        account: row.try_get("account")?,
        tags: decode_tags(row.try_get("tags")?),
        attributes: attrs_of(row)?,
        devices: Vec::new(),
        created_at: from_millis(row.try_get("created_at")?)?,
    })
}

/// Rows of the named accounts that exist (any order).
pub(super) async fn rows_by_name<S: AsRef<str>>(
    conn: &mut SqliteConnection,
    app: AppId,
    names: &[S],
) -> StoreResult<Vec<AccountRecord>> {
    let mut out = Vec::with_capacity(names.len());
    for chunk in names.chunks(CHUNK) {
        let sql = by_name_sql(chunk.len());
        let mut query = sqlx::query(&sql);
        for name in chunk {
            query = query.bind(name.as_ref());
        }
        for row in query.bind(app).persistent(false).fetch_all(&mut *conn).await? {
            out.push(record(&row)?);
        }
    }
    Ok(out)
}

/// Accounts by name, `count` names bound first, then the app. A join rather than `account IN
/// (...)`: with a long list SQLite walks every account of the app and tests each against the
/// list, which made every batch cost as much as the app is large.
pub(super) fn by_name_sql(count: usize) -> String {
    let values = vec!["(?)"; count].join(", ");
    format!(
        "WITH wanted (name) AS (VALUES {values}) \
         SELECT id, account, tags, created_at, {ATTR_COLUMNS} FROM wanted \
         JOIN accounts ON accounts.app_id = ? AND accounts.account = wanted.name"
    )
}

/// Creates missing accounts inside the caller's transaction; returns `(name, id, new)` in input
/// order (duplicates in the input appear once).
pub(super) async fn ensure(
    conn: &mut SqliteConnection,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<(String, AccountId, bool)>> {
    let existing: HashMap<String, AccountId> =
        rows_by_name(conn, app, names).await?.into_iter().map(|r| (r.account, r.id)).collect();
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&String> = names.iter().filter(|n| seen.insert(n.as_str())).collect();
    let missing: Vec<&String> =
        unique.iter().copied().filter(|n| !existing.contains_key(*n)).collect();
    // A login of a known account writes nothing here.
    let mut next = match missing.len() {
        0 => 0,
        count => allocate_ids(conn, app, count).await?,
    };
    let now = to_millis(Utc::now());
    let mut created = HashMap::with_capacity(missing.len());
    for chunk in missing.chunks(CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new("INSERT INTO accounts (app_id, id, account, created_at) ");
        query.push_values(chunk, |mut row, name| {
            row.push_bind(app).push_bind(i64::from(next)).push_bind(*name).push_bind(now);
            created.insert((*name).clone(), next);
            next = next.wrapping_add(1);
        });
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(unique
        .into_iter()
        .map(|name| match existing.get(name) {
            Some(id) => (name.clone(), *id, false),
            None => (name.clone(), created.get(name).copied().unwrap_or_default(), true),
        })
        .collect())
}

/// Reserves `count` ids; ids are never handed out twice, even after deletion.
pub(super) async fn allocate_ids(
    conn: &mut SqliteConnection,
    app: AppId,
    count: usize,
) -> StoreResult<AccountId> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let end: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_account_id = next_account_id + ? WHERE id = ? RETURNING next_account_id",
    )
    .bind(count)
    .bind(app)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("app", app))?;
    if end > i64::from(AccountId::MAX) {
        return Err(StoreError::Conflict("the app has used all 2^32 account ids".into()));
    }
    AccountId::try_from(end - count).map_err(|_| StoreError::Corrupt("next_account_id".into()))
}

pub(super) async fn import(
    pool: &SqlitePool,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<(String, AccountId, bool)>> {
    let mut tx = pool.begin().await?;
    let out = ensure(&mut tx, app, names).await?;
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn ids(
    pool: &SqlitePool,
    app: AppId,
    names: &[String],
) -> StoreResult<HashMap<String, AccountId>> {
    let mut conn = pool.acquire().await?;
    Ok(rows_by_name(&mut conn, app, names).await?.into_iter().map(|r| (r.account, r.id)).collect())
}

pub(super) async fn by_names(
    pool: &SqlitePool,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<AccountRecord>> {
    let mut conn = pool.acquire().await?;
    rows_by_name(&mut conn, app, names).await
}

pub(super) async fn one(pool: &SqlitePool, app: AppId, name: &str) -> StoreResult<AccountRecord> {
    let mut conn = pool.acquire().await?;
    let mut record = rows_by_name(&mut conn, app, &[name.to_owned()])
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("account", name))?;
    record.devices = devices::of_account(&mut conn, app, record.id).await?;
    Ok(record)
}

pub(super) async fn page(
    pool: &SqlitePool,
    app: AppId,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<AccountSummary>> {
    let rows = sqlx::query(
        "SELECT id, account, created_at FROM accounts WHERE app_id = ? AND account > ? \
         ORDER BY account LIMIT ?",
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

pub(super) async fn delete(pool: &SqlitePool, app: AppId, name: &str) -> StoreResult<AccountId> {
    let mut tx = pool.begin().await?;
    let id: i64 =
        sqlx::query_scalar("DELETE FROM accounts WHERE app_id = ? AND account = ? RETURNING id")
            .bind(app)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("account", name))?;
    sqlx::query("DELETE FROM devices WHERE app_id = ? AND account_id = ?")
        .bind(app)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    AccountId::try_from(id).map_err(|_| StoreError::Corrupt(format!("account id {id}")))
}

/// Accounts per round trip of the start-up scan.
const LOAD_PAGE: i64 = 10_000;

/// Feeds every account, then every device, of `app` to `sink`.
pub(super) async fn load_index(
    pool: &SqlitePool,
    app: AppId,
    sink: &mut (dyn IndexSink + Send),
) -> StoreResult<()> {
    let fields: Vec<String> = ["id", "tags"]
        .iter()
        .map(|column| (*column).to_owned())
        .chain(ATTR_COLUMN.iter().map(|column| format!("coalesce({column}, '')")))
        .collect();
    let scan = PackedScan::new("accounts", "id", &fields, LOAD_PAGE);
    scan.run(pool, app, |page| crate::packed::feed_accounts(page, sink)).await?;
    devices::load_index(pool, app, sink).await
}

/// Feeds the given accounts that exist, then their devices, to `sink`.
pub(super) async fn load_index_of(
    pool: &SqlitePool,
    app: AppId,
    accounts: &[AccountId],
    sink: &mut (dyn IndexSink + Send),
) -> StoreResult<()> {
    let ids = serde_json::to_string(accounts).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let packed = |fields: &[String], table: &str, key: &str| {
        format!(
            "SELECT coalesce(group_concat({fields}, char({row})), '') FROM {table} \
             WHERE app_id = ? AND {key} IN (SELECT value FROM json_each(?))",
            fields = fields
                .join(&format!(" || char({}) || ", u32::from(crate::packed::FIELD_SEPARATOR))),
            row = u32::from(crate::packed::ROW_SEPARATOR),
        )
    };
    let fields: Vec<String> = ["id", "tags"]
        .iter()
        .map(|column| (*column).to_owned())
        .chain(ATTR_COLUMN.iter().map(|column| format!("coalesce({column}, '')")))
        .collect();
    let mut conn = pool.acquire().await?;
    let page: String = sqlx::query_scalar(&packed(&fields, "accounts", "id"))
        .bind(app)
        .bind(&ids)
        .fetch_one(&mut *conn)
        .await?;
    crate::packed::feed_accounts(&page, sink)?;
    let fields = ["account_id", "platform", "package"].map(str::to_owned);
    let page: String = sqlx::query_scalar(&packed(&fields, "devices", "account_id"))
        .bind(app)
        .bind(&ids)
        .fetch_one(&mut *conn)
        .await?;
    crate::packed::feed_devices(&page, sink)
}
