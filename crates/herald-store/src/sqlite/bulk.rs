//! Bulk import: a batch of accounts with tags, attributes and devices in one transaction.

use chrono::Utc;
use herald_core::account::AccountId;
use herald_core::AppId;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use super::accounts::{self, ATTR_COLUMN, CHUNK};
use super::devices;
use crate::bulk::{check_distinct, devices_of, plan_bulk, slot_values, BulkUpdate};
use crate::rows::encode_tags;
use crate::time::to_millis;
use crate::{BulkAccount, BulkApplied, BulkImported, StoreResult};

/// New accounts per `INSERT`: 13 bound values each stay under SQLite's 32,766. Every full
/// chunk has the same text, so its prepared statement is reused from the connection's cache.
const ROWS_PER_INSERT: usize = 2_000;

pub(super) async fn bulk_import(
    pool: &SqlitePool,
    app: AppId,
    batch: &[BulkAccount],
    tags_per_account: u32,
) -> StoreResult<BulkImported> {
    check_distinct(batch)?;
    let mut tx = pool.begin().await?;
    let names: Vec<&str> = batch.iter().map(|a| a.account.as_str()).collect();
    let found = accounts::rows_by_name(&mut tx, app, &names).await?;
    let mut plan = plan_bulk(batch, found, tags_per_account);
    if !plan.create.is_empty() {
        let first = accounts::allocate_ids(&mut tx, app, plan.create.len()).await?;
        let rows: Vec<(AccountId, &BulkAccount)> =
            plan.create.iter().zip(first..).map(|(&at, id)| (id, &batch[at])).collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            insert(&mut tx, app, chunk).await?;
        }
        for (&at, id) in plan.create.iter().zip(first..) {
            plan.outcome[at] = BulkApplied::Created(id);
        }
    }
    for chunk in plan.update.chunks(CHUNK) {
        update(&mut tx, app, chunk).await?;
    }
    let mut bound = Vec::new();
    for (account, device) in devices_of(batch, &plan.outcome) {
        bound.push(devices::register(&mut tx, app, &account, &device).await?);
    }
    tx.commit().await?;
    Ok(BulkImported { accounts: plan.outcome, devices: bound })
}

async fn insert(
    tx: &mut SqliteConnection,
    app: AppId,
    rows: &[(AccountId, &BulkAccount)],
) -> StoreResult<()> {
    let values: Vec<String> = (1..=13).map(|n| format!("column{n}")).collect();
    let mut query = QueryBuilder::<Sqlite>::new(format!(
        "INSERT INTO accounts (app_id, created_at, id, account, tags, {}) SELECT ",
        ATTR_COLUMN.join(", ")
    ));
    query.push_bind(app).push(", ").push_bind(to_millis(Utc::now()));
    query.push(format!(", {} FROM (", values.join(", ")));
    query.push_values(rows, |mut row, (id, line)| {
        row.push_bind(i64::from(*id)).push_bind(line.account.as_str());
        row.push_bind(encode_tags(&line.tags));
        for value in slot_values(line) {
            row.push_bind(value);
        }
    });
    query.push(")");
    query.build().persistent(false).execute(&mut *tx).await?;
    Ok(())
}

/// Writes the tags and every attribute slot of existing accounts.
async fn update(tx: &mut SqliteConnection, app: AppId, rows: &[BulkUpdate]) -> StoreResult<()> {
    let names: Vec<String> = (0..ATTR_COLUMN.len()).map(|i| format!("v{i}")).collect();
    let mut query =
        QueryBuilder::<Sqlite>::new(format!("WITH new (id, tags, {}) AS (", names.join(", ")));
    query.push_values(rows, |mut row, update| {
        row.push_bind(i64::from(update.id)).push_bind(update.tags.as_str());
        for value in &update.attributes {
            row.push_bind(value.as_deref());
        }
    });
    let sets: Vec<String> = ATTR_COLUMN
        .iter()
        .zip(&names)
        .map(|(column, name)| format!("{column} = new.{name}"))
        .collect();
    query
        .push(format!(
            ") UPDATE accounts SET tags = new.tags, {} FROM new WHERE accounts.app_id = ",
            sets.join(", ")
        ))
        .push_bind(app)
        .push(" AND accounts.id = new.id");
    query.build().persistent(false).execute(&mut *tx).await?;
    Ok(())
}
