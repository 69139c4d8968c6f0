//! The `pushes` and `device_cursors` tables.

use chrono::{DateTime, Duration, Utc};
use herald_core::push::PushStatus;
use herald_core::AppId;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::time::{from_millis, to_millis};
use crate::{Cursor, Dispatch, NewPush, PushRecord, StoreError, StoreResult};

/// How long an idempotency key names the same push.
const IDEMPOTENCY_WINDOW_DAYS: i64 = 7;

const COLUMNS: &str =
    "app_id, id, seq, status, audience, message, notification, sender, platforms, \
    ttl_secs, idempotency_key, push_at, created_at, started_at, finished_at, expires_at, \
    recalled_at, recipients, targeted, error";

fn opt_time(row: &SqliteRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    let ms: Option<i64> = row.try_get(column)?;
    ms.map(from_millis).transpose()
}

fn record(row: &SqliteRow) -> StoreResult<PushRecord> {
    let status: String = row.try_get("status")?;
    let platforms: Option<String> = row.try_get("platforms")?;
    let platforms = platforms
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .map_err(|err| StoreError::Corrupt(format!("push platforms: {err}")))?;
    let seq: Option<i64> = row.try_get("seq")?;
    let ttl: i64 = row.try_get("ttl_secs")?;
    let targeted: Option<i64> = row.try_get("targeted")?;
    Ok(PushRecord {
        app: row.try_get("app_id")?,
        id: row.try_get("id")?,
        seq: seq.and_then(|s| u64::try_from(s).ok()),
        status: PushStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("push status {status}")))?,
        audience: row.try_get("audience")?,
        message: row.try_get("message")?,
        notification: row.try_get("notification")?,
        sender: row.try_get("sender")?,
        platforms,
        ttl_secs: u32::try_from(ttl).unwrap_or_default(),
        idempotency_key: row.try_get("idempotency_key")?,
        push_at: from_millis(row.try_get("push_at")?)?,
        created_at: from_millis(row.try_get("created_at")?)?,
        started_at: opt_time(row, "started_at")?,
        finished_at: opt_time(row, "finished_at")?,
        expires_at: opt_time(row, "expires_at")?,
        recalled_at: opt_time(row, "recalled_at")?,
        recipients: row.try_get("recipients")?,
        targeted: targeted.and_then(|t| u64::try_from(t).ok()),
        error: row.try_get("error")?,
    })
}

pub(super) async fn create(pool: &SqlitePool, push: NewPush) -> StoreResult<(PushRecord, bool)> {
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    if let Some(key) = &push.idempotency_key {
        let existing = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND idempotency_key = ?"
        ))
        .bind(push.app)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let found = record(&row)?;
            if found.created_at > now - Duration::days(IDEMPOTENCY_WINDOW_DAYS) {
                return Ok((found, false));
            }
            // Past its window the key is free again.
            sqlx::query("UPDATE pushes SET idempotency_key = NULL WHERE app_id = ? AND id = ?")
                .bind(push.app)
                .bind(&found.id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let platforms = push
        .platforms
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))?;
    let row = sqlx::query(&format!(
        "INSERT INTO pushes (app_id, id, status, audience, message, notification, sender, platforms, \
         ttl_secs, idempotency_key, push_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         RETURNING {COLUMNS}"
    ))
    .bind(push.app)
    .bind(&push.id)
    .bind(PushStatus::Scheduled.as_str())
    .bind(&push.audience)
    .bind(&push.message)
    .bind(&push.notification)
    .bind(&push.sender)
    .bind(platforms)
    .bind(i64::from(push.ttl_secs))
    .bind(&push.idempotency_key)
    .bind(to_millis(push.push_at))
    .bind(to_millis(now))
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::not_found("app", push.app),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("push {} already exists", push.id))
        }
        other => other.into(),
    })?;
    let created = record(&row)?;
    tx.commit().await?;
    Ok((created, true))
}

pub(super) async fn one(pool: &SqlitePool, app: AppId, id: &str) -> StoreResult<PushRecord> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND id = ?"))
        .bind(app)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("push", id))?;
    record(&row)
}

pub(super) async fn begin_dispatch(
    pool: &SqlitePool,
    app: AppId,
    id: &str,
    dispatch: Dispatch,
) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let seq: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_push_seq = next_push_seq + 1 WHERE id = ? RETURNING next_push_seq - 1",
    )
    .bind(app)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::not_found("app", app))?;
    let updated = sqlx::query(
        "UPDATE pushes SET seq = ?, status = ?, started_at = ?, recipients = ?, targeted = ?, \
         expires_at = ? WHERE app_id = ? AND id = ? AND status = ?",
    )
    .bind(seq)
    .bind(PushStatus::Dispatching.as_str())
    .bind(to_millis(Utc::now()))
    .bind(dispatch.recipients)
    .bind(i64::try_from(dispatch.targeted).unwrap_or(i64::MAX))
    .bind(dispatch.expires_at.map(to_millis))
    .bind(app)
    .bind(id)
    .bind(PushStatus::Scheduled.as_str())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!("push {id} is not waiting for dispatch")));
    }
    tx.commit().await?;
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("push seq {seq}")))
}

pub(super) async fn finish(
    pool: &SqlitePool,
    app: AppId,
    id: &str,
    status: PushStatus,
    error: Option<String>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE pushes SET status = ?, finished_at = ?, error = ? WHERE app_id = ? AND id = ?",
    )
    .bind(status.as_str())
    .bind(to_millis(Utc::now()))
    .bind(error)
    .bind(app)
    .bind(id)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("push", id));
    }
    Ok(())
}

pub(super) async fn with_status(
    pool: &SqlitePool,
    status: PushStatus,
) -> StoreResult<Vec<PushRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE status = ? ORDER BY push_at, created_at"
    ))
    .bind(status.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(record).collect()
}

pub(super) async fn live(
    pool: &SqlitePool,
    app: AppId,
    now: DateTime<Utc>,
) -> StoreResult<Vec<PushRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND seq IS NOT NULL AND recipients IS NOT NULL \
         AND expires_at > ? AND recalled_at IS NULL ORDER BY seq"
    ))
    .bind(app)
    .bind(to_millis(now))
    .fetch_all(pool)
    .await?;
    rows.iter().map(record).collect()
}

pub(super) async fn cursor(pool: &SqlitePool, app: AppId, device_id: &str) -> StoreResult<Cursor> {
    let row = sqlx::query(
        "SELECT acked_seq, acked_above FROM device_cursors WHERE app_id = ? AND device_id = ?",
    )
    .bind(app)
    .bind(device_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map_or(Ok(Cursor::default()), cursor_of)
}

fn cursor_of(row: &SqliteRow) -> StoreResult<Cursor> {
    let acked: i64 = row.try_get("acked_seq")?;
    let above: String = row.try_get("acked_above")?;
    Ok(Cursor {
        acked: u64::try_from(acked).unwrap_or_default(),
        acked_above: above.split(',').filter_map(|s| s.parse().ok()).collect(),
    })
}

pub(super) async fn ack(
    pool: &SqlitePool,
    app: AppId,
    device_id: &str,
    up_to: Option<u64>,
    seqs: &[u64],
) -> StoreResult<Cursor> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT acked_seq, acked_above FROM device_cursors WHERE app_id = ? AND device_id = ?",
    )
    .bind(app)
    .bind(device_id)
    .fetch_optional(&mut *tx)
    .await?;
    let mut cursor = row.as_ref().map_or(Ok(Cursor::default()), cursor_of)?;
    cursor.apply(up_to, seqs);
    let above = cursor.acked_above.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    sqlx::query(
        "INSERT INTO device_cursors (app_id, device_id, acked_seq, acked_above) VALUES (?, ?, ?, ?) \
         ON CONFLICT (app_id, device_id) DO UPDATE SET acked_seq = excluded.acked_seq, \
         acked_above = excluded.acked_above",
    )
    .bind(app)
    .bind(device_id)
    .bind(i64::try_from(cursor.acked).unwrap_or(i64::MAX))
    .bind(above)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(cursor)
}
