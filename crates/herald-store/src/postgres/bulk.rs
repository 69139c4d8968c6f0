//! Bulk import: a batch of accounts with tags, attributes and devices in one transaction, the
//! new accounts in one statement from arrays.

use std::collections::HashSet;

use chrono::Utc;
use herald_core::AppId;
use sqlx::{PgConnection, PgPool, Row};

use super::accounts::{self, ATTR_COLUMN};
use super::devices;
use super::labels::lock_by_name;
use crate::bulk::{check_distinct, devices_of, plan_bulk, slot_values, BulkPlan, BulkUpdate};
use crate::rows::encode_tags;
use crate::time::to_millis;
use crate::{BulkAccount, BulkApplied, BulkImported, StoreError, StoreResult};

pub(super) async fn bulk_import(
    pool: &PgPool,
    reserve: &PgPool,
    app: AppId,
    batch: &[BulkAccount],
    tags_per_account: u32,
) -> StoreResult<BulkImported> {
    check_distinct(batch)?;
    let mut tx = pool.begin().await?;
    let names: Vec<String> = batch.iter().map(|a| a.account.clone()).collect();
    let found = lock_by_name(&mut tx, app, &names).await?;
    let mut plan = plan_bulk(batch, found, tags_per_account);
    let lost = create(&mut tx, reserve, app, batch, &mut plan).await?;
    if !lost.is_empty() {
        // Created by another writer since the lookup: updated like the accounts found.
        let lines: Vec<BulkAccount> = lost.iter().map(|&at| batch[at].clone()).collect();
        let names: Vec<String> = lines.iter().map(|a| a.account.clone()).collect();
        let found = lock_by_name(&mut tx, app, &names).await?;
        let late = plan_bulk(&lines, found, tags_per_account);
        if !late.create.is_empty() {
            return Err(StoreError::Corrupt("an account neither found nor created".into()));
        }
        for (at, applied) in lost.into_iter().zip(late.outcome) {
            plan.outcome[at] = applied;
        }
        plan.update.extend(late.update);
    }
    update(&mut tx, app, &plan.update).await?;
    let bound =
        devices::register_in(&mut tx, reserve, app, &devices_of(batch, &plan.outcome)).await?;
    tx.commit().await?;
    Ok(BulkImported { accounts: plan.outcome, devices: bound })
}

/// Inserts the plan's new accounts; returns the positions of those another writer created
/// first (their reserved ids are skipped, as every failed reservation's are).
async fn create(
    tx: &mut PgConnection,
    reserve: &PgPool,
    app: AppId,
    batch: &[BulkAccount],
    plan: &mut BulkPlan,
) -> StoreResult<Vec<usize>> {
    if plan.create.is_empty() {
        return Ok(Vec::new());
    }
    let first = i64::from(accounts::allocate_ids(reserve, app, plan.create.len()).await?);
    let ids: Vec<i64> = (first..).take(plan.create.len()).collect();
    let lines: Vec<&BulkAccount> = plan.create.iter().map(|&at| &batch[at]).collect();
    let arrays: Vec<String> = (5..15).map(|n| format!("${n}::TEXT[]")).collect();
    let sql = format!(
        "INSERT INTO accounts (app_id, created_at, id, account, tags, {}) \
         SELECT $1, $2, new.* FROM UNNEST($3::BIGINT[], $4::TEXT[], $15::TEXT[], {}) AS new \
         ON CONFLICT (app_id, account) DO NOTHING RETURNING id",
        ATTR_COLUMN.join(", "),
        arrays.join(", ")
    );
    let mut query = sqlx::query(&sql)
        .bind(app)
        .bind(to_millis(Utc::now()))
        .bind(&ids)
        .bind(lines.iter().map(|l| l.account.as_str()).collect::<Vec<_>>());
    for slot in 0..ATTR_COLUMN.len() {
        query = query.bind(lines.iter().map(|l| slot_values(l)[slot]).collect::<Vec<_>>());
    }
    let query = query.bind(lines.iter().map(|l| encode_tags(&l.tags)).collect::<Vec<_>>());
    let rows = query.fetch_all(&mut *tx).await?;
    let created: HashSet<i64> =
        rows.iter().map(|row| row.try_get("id")).collect::<Result<_, _>>()?;
    let mut lost = Vec::new();
    for (&at, id) in plan.create.iter().zip(ids) {
        if created.contains(&id) {
            plan.outcome[at] = BulkApplied::Created(accounts::account_id(id)?);
        } else {
            lost.push(at);
        }
    }
    Ok(lost)
}

/// Writes the tags and every attribute slot of existing accounts, from arrays.
async fn update(tx: &mut PgConnection, app: AppId, rows: &[BulkUpdate]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> =
        ATTR_COLUMN.iter().enumerate().map(|(i, column)| format!("{column} = new.v{i}")).collect();
    let arrays: Vec<String> = (4..14).map(|n| format!("${n}::TEXT[]")).collect();
    let names: Vec<String> = (0..ATTR_COLUMN.len()).map(|i| format!("v{i}")).collect();
    let sql = format!(
        "UPDATE accounts SET tags = new.tags, {} \
         FROM UNNEST($2::BIGINT[], $3::TEXT[], {}) AS new (id, tags, {}) \
         WHERE accounts.app_id = $1 AND accounts.id = new.id",
        sets.join(", "),
        arrays.join(", "),
        names.join(", ")
    );
    let mut query = sqlx::query(&sql)
        .bind(app)
        .bind(rows.iter().map(|r| i64::from(r.id)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.tags.as_str()).collect::<Vec<_>>());
    for slot in 0..ATTR_COLUMN.len() {
        let values: Vec<Option<&str>> =
            rows.iter().map(|r| r.attributes.get(slot).and_then(|v| v.as_deref())).collect();
        query = query.bind(values);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}
