//! Tags and attribute values of accounts, and the app's attribute names.

use herald_core::account::AccountId;
use herald_core::AppId;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::accounts::{self, ATTR_COLUMN};
use crate::accounts::{group_by_slots, plan_attribute_update, plan_tag_update};
use crate::rows::encode_tags;
use crate::{
    AttributeUpdate, BatchOutcome, SlotChange, StoreError, StoreResult, TagChange, TagUpdate,
    ATTRIBUTE_SLOTS,
};

pub(super) async fn update_tags(
    pool: &SqlitePool,
    app: AppId,
    update: TagUpdate,
) -> StoreResult<BatchOutcome<TagChange>> {
    let mut tx = pool.begin().await?;
    let found = accounts::rows_by_name(&mut tx, app, &update.accounts).await?;
    let outcome = plan_tag_update(&update, found);
    // One statement per chunk of accounts rather than per account: every statement is a round
    // trip to the connection's worker thread (about a tenth of a 1,000-account batch's CPU time
    // in benches/tag_api.rs; reading the rows and writing the B-tree are the rest).
    for chunk in outcome.applied.chunks(accounts::CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new("WITH new (id, tags) AS (");
        query.push_values(chunk, |mut row, (id, _, change)| {
            row.push_bind(i64::from(*id)).push_bind(encode_tags(&change.after));
        });
        query
            .push(") UPDATE accounts SET tags = new.tags FROM new WHERE accounts.app_id = ")
            .push_bind(app)
            .push(" AND accounts.id = new.id");
        query.build().persistent(false).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

pub(super) async fn attribute_names(
    pool: &SqlitePool,
    app: AppId,
) -> StoreResult<Vec<Option<String>>> {
    let rows = sqlx::query("SELECT slot, name FROM attribute_names WHERE app_id = ?")
        .bind(app)
        .fetch_all(pool)
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

pub(super) async fn set_attribute_names(
    pool: &SqlitePool,
    app: AppId,
    changes: &[(u8, Option<String>)],
) -> StoreResult<Vec<Option<String>>> {
    let mut names = attribute_names(pool, app).await?;
    let mut tx = pool.begin().await?;
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
        sqlx::query("DELETE FROM attribute_names WHERE app_id = ? AND slot = ?")
            .bind(app)
            .bind(i64::from(*slot))
            .execute(&mut *tx)
            .await?;
        if let Some(name) = name {
            sqlx::query("INSERT INTO attribute_names (app_id, slot, name) VALUES (?, ?, ?)")
                .bind(app)
                .bind(i64::from(*slot))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        // A renamed or removed slot no longer means what its values meant.
        sqlx::query(&format!(
            "UPDATE accounts SET {column} = NULL WHERE app_id = ? AND {column} IS NOT NULL"
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
    pool: &SqlitePool,
    app: AppId,
    updates: Vec<AttributeUpdate>,
) -> StoreResult<BatchOutcome<Vec<SlotChange>>> {
    let names: Vec<String> = updates.iter().map(|u| u.account.clone()).collect();
    let mut tx = pool.begin().await?;
    let found = accounts::rows_by_name(&mut tx, app, &names).await?;
    let plan = plan_attribute_update(updates, found);
    // Accounts that change the same slots are written by one statement per chunk: one
    // statement per account was most of a bulk import's time.
    for (columns, rows) in &group_by_slots(plan.writes)? {
        for chunk in rows.chunks(accounts::CHUNK) {
            set_attribute_columns(&mut tx, app, columns, chunk).await?;
        }
    }
    tx.commit().await?;
    Ok(plan.outcome)
}

/// `UPDATE accounts SET <columns> = <values>` for each `(account id, values)` of the chunk.
async fn set_attribute_columns(
    tx: &mut sqlx::SqliteConnection,
    app: AppId,
    columns: &[&str],
    rows: &[(AccountId, Vec<Option<String>>)],
) -> StoreResult<()> {
    let names: Vec<String> = (0..columns.len()).map(|i| format!("v{i}")).collect();
    let mut query =
        QueryBuilder::<Sqlite>::new(format!("WITH new (id, {}) AS (", names.join(", ")));
    query.push_values(rows, |mut row, (id, values)| {
        row.push_bind(i64::from(*id));
        for value in values {
            row.push_bind(value.clone());
        }
    });
    let sets: Vec<String> =
        columns.iter().zip(&names).map(|(column, name)| format!("{column} = new.{name}")).collect();
    query
        .push(format!(
            ") UPDATE accounts SET {} FROM new WHERE accounts.app_id = ",
            sets.join(", ")
        ))
        .push_bind(app)
        .push(" AND accounts.id = new.id");
    query.build().persistent(false).execute(&mut *tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::rows::{apply_tag_op as apply, decode_tags, encode_tags};
    use crate::TagOp;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn tag_ops() {
        let current = tags(&["b", "a"]);
        assert_eq!(apply(&TagOp::Add(tags(&["c", "a"])), "a", &current), tags(&["a", "b", "c"]));
        assert_eq!(apply(&TagOp::Remove(tags(&["a", "x"])), "a", &current), tags(&["b"]));
        assert_eq!(apply(&TagOp::Set(tags(&["z"])), "a", &current), tags(&["z"]));
        assert_eq!(apply(&TagOp::Clear, "a", &current), tags(&[]));
        assert_eq!(decode_tags(&encode_tags(&tags(&["a", "b"]))), tags(&["a", "b"]));
        assert!(decode_tags("").is_empty());
    }
}
