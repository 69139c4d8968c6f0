//! Tags and attribute values of accounts, and the app's attribute names.

use herald_core::account::AccountId;
use herald_core::AppId;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::accounts::{self, ATTR_COLUMN};
use crate::accounts::plan_tag_update;
use crate::rows::encode_tags;
use crate::{
    AccountFailure, AttributeUpdate, BatchOutcome, StoreError, StoreResult, TagChange, TagUpdate,
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
        query.build().execute(&mut *tx).await?;
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
) -> StoreResult<BatchOutcome<Vec<(u8, Option<String>)>>> {
    let names: Vec<String> = updates.iter().map(|u| u.account.clone()).collect();
    let mut tx = pool.begin().await?;
    let ids: std::collections::HashMap<String, AccountId> =
        accounts::rows_by_name(&mut tx, app, &names)
            .await?
            .into_iter()
            .map(|r| (r.account, r.id))
            .collect();
    let mut outcome = BatchOutcome::default();
    for update in updates {
        let Some(id) = ids.get(&update.account).copied() else {
            outcome.failed.push((update.account, AccountFailure::UnknownAccount));
            continue;
        };
        let mut query = QueryBuilder::<Sqlite>::new("UPDATE accounts SET ");
        let mut sets = query.separated(", ");
        for (slot, value) in &update.changes {
            let column = ATTR_COLUMN.get(usize::from(*slot)).ok_or_else(|| {
                StoreError::Conflict(format!("attribute slot {slot} does not exist"))
            })?;
            sets.push(format!("{column} = ")).push_bind_unseparated(value.clone());
        }
        if update.changes.is_empty() {
            outcome.applied.push((id, update.account, update.changes));
            continue;
        }
        query.push(" WHERE app_id = ").push_bind(app).push(" AND id = ").push_bind(i64::from(id));
        query.build().execute(&mut *tx).await?;
        outcome.applied.push((id, update.account, update.changes));
    }
    tx.commit().await?;
    Ok(outcome)
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
