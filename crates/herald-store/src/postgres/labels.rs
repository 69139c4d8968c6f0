//! Tags and attribute values of accounts, and the app's attribute names.

use herald_core::account::AccountId;
use herald_core::AppId;
use sqlx::{PgConnection, PgPool, Row};

use super::accounts::{self, ATTR_COLUMN, ATTR_COLUMNS};
use crate::accounts::{group_by_slots, plan_attribute_update, plan_tag_update};
use crate::rows::{decode_tags, encode_tags};
use crate::time::from_millis;
use crate::{
    AccountRecord, AttributeUpdate, BatchOutcome, SlotChange, StoreError, StoreResult, TagChange,
    TagUpdate, ATTRIBUTE_SLOTS,
};

/// The named accounts' rows, locked until the transaction ends so that two batches changing
/// one account's tags apply one after the other; locked in id order, so that two batches
/// never wait for each other in a circle.
pub(super) async fn lock_by_name(
    conn: &mut PgConnection,
    app: AppId,
    names: &[String],
) -> StoreResult<Vec<AccountRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT id, account, tags, created_at, {ATTR_COLUMNS} FROM accounts \
         WHERE app_id = $1 AND account = ANY($2) ORDER BY id FOR UPDATE"
    ))
    // Planned anew each time: a plan cached while the table was small scans it whole
    // for every name once it has grown (1 s a call at 100,000 accounts).
    .persistent(false)
    .bind(app)
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AccountRecord {
                id: accounts::account_id(row.try_get("id")?)?,
                account: row.try_get("account")?,
                tags: decode_tags(row.try_get("tags")?),
                attributes: ATTR_COLUMN
                    .iter()
                    .map(|c| Ok(row.try_get(*c)?))
                    .collect::<StoreResult<_>>()?,
                devices: Vec::new(),
                created_at: from_millis(row.try_get("created_at")?)?,
            })
        })
        .collect()
}

pub(super) async fn update_tags(
    pool: &PgPool,
    app: AppId,
    update: TagUpdate,
) -> StoreResult<BatchOutcome<TagChange>> {
    let mut tx = pool.begin().await?;
    let found = lock_by_name(&mut tx, app, &update.accounts).await?;
    let outcome = plan_tag_update(&update, found);
    if !outcome.applied.is_empty() {
        let ids: Vec<i64> = outcome.applied.iter().map(|(id, _, _)| i64::from(*id)).collect();
        let tags: Vec<String> =
            outcome.applied.iter().map(|(_, _, change)| encode_tags(&change.after)).collect();
        sqlx::query(
            "UPDATE accounts SET tags = new.tags FROM UNNEST($2::BIGINT[], $3::TEXT[]) AS new (id, tags) \
             WHERE accounts.app_id = $1 AND accounts.id = new.id",
        )
        .bind(app)
        .bind(&ids)
        .bind(&tags)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn names_in(conn: &mut PgConnection, app: AppId) -> StoreResult<Vec<Option<String>>> {
    let rows = sqlx::query("SELECT slot, name FROM attribute_names WHERE app_id = $1")
        .bind(app)
        .fetch_all(&mut *conn)
        .await?;
    let mut names = vec![None; ATTRIBUTE_SLOTS];
    for row in &rows {
        let slot: i64 = row.try_get("slot")?;
        let slot = usize::try_from(slot).ok().filter(|s| *s < ATTRIBUTE_SLOTS);
        let slot = slot.ok_or_else(|| StoreError::Corrupt("attribute slot".into()))?;
        names[slot] = Some(row.try_get("name")?);
    }
    Ok(names)
}

pub(super) async fn attribute_names(pool: &PgPool, app: AppId) -> StoreResult<Vec<Option<String>>> {
    let mut conn = pool.acquire().await?;
    names_in(&mut conn, app).await
}

pub(super) async fn set_attribute_names(
    pool: &PgPool,
    app: AppId,
    changes: &[(u8, Option<String>)],
) -> StoreResult<Vec<Option<String>>> {
    let mut tx = pool.begin().await?;
    // Renames of one app's slots happen one at a time: each sees the names the last one left.
    sqlx::query("SELECT id FROM apps WHERE id = $1 FOR UPDATE")
        .bind(app)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("app", app))?;
    let mut names = names_in(&mut tx, app).await?;
    for (slot, name) in changes {
        let index = usize::from(*slot);
        let column = ATTR_COLUMN
            .get(index)
            .ok_or_else(|| StoreError::Conflict(format!("attribute slot {slot} does not exist")))?;
        if names[index] == *name {
            continue;
        }
        if let Some(name) = name {
            if let Some(other) = names.iter().position(|n| n.as_ref() == Some(name)) {
                return Err(StoreError::Conflict(format!(
                    "attribute name {name} is already used by slot {other}"
                )));
            }
        }
        sqlx::query("DELETE FROM attribute_names WHERE app_id = $1 AND slot = $2")
            .bind(app)
            .bind(i64::from(*slot))
            .execute(&mut *tx)
            .await?;
        if let Some(name) = name {
            sqlx::query("INSERT INTO attribute_names (app_id, slot, name) VALUES ($1, $2, $3)")
                .bind(app)
                .bind(i64::from(*slot))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        // A renamed or removed slot no longer means what its values meant.
        sqlx::query(&format!(
            "UPDATE accounts SET {column} = NULL WHERE app_id = $1 AND {column} IS NOT NULL"
        ))
        .bind(app)
        .execute(&mut *tx)
        .await?;
        names[index] = name.clone();
    }
    tx.commit().await?;
    Ok(names)
}

pub(super) async fn update_attributes(
    pool: &PgPool,
    app: AppId,
    updates: Vec<AttributeUpdate>,
) -> StoreResult<BatchOutcome<Vec<SlotChange>>> {
    let names: Vec<String> = updates.iter().map(|u| u.account.clone()).collect();
    let mut tx = pool.begin().await?;
    let found = lock_by_name(&mut tx, app, &names).await?;
    let plan = plan_attribute_update(updates, found);
    // One statement per group of accounts that set the same slots, not one per account.
    for (columns, rows) in group_by_slots(plan.writes)? {
        set_attribute_columns(&mut tx, app, &columns, &rows).await?;
    }
    tx.commit().await?;
    Ok(plan.outcome)
}

/// `UPDATE accounts SET <columns> = <values>` for each `(account id, values)`, from arrays.
async fn set_attribute_columns(
    tx: &mut PgConnection,
    app: AppId,
    columns: &[&str],
    rows: &[(AccountId, Vec<Option<String>>)],
) -> StoreResult<()> {
    let ids: Vec<i64> = rows.iter().map(|(id, _)| i64::from(*id)).collect();
    let sets: Vec<String> =
        columns.iter().enumerate().map(|(i, column)| format!("{column} = new.v{i}")).collect();
    let arrays: Vec<String> = (0..columns.len()).map(|i| format!("${}::TEXT[]", i + 3)).collect();
    let names: Vec<String> = (0..columns.len()).map(|i| format!("v{i}")).collect();
    let sql = format!(
        "UPDATE accounts SET {} FROM UNNEST($2::BIGINT[], {}) AS new (id, {}) \
         WHERE accounts.app_id = $1 AND accounts.id = new.id",
        sets.join(", "),
        arrays.join(", "),
        names.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(app).bind(ids);
    for column in 0..columns.len() {
        let values: Vec<Option<String>> =
            rows.iter().map(|(_, v)| v.get(column).cloned().flatten()).collect();
        query = query.bind(values);
    }
    query.execute(&mut *tx).await?;
    Ok(())
}
