//! The `pushes` and `device_cursors` tables.

use chrono::{DateTime, Duration, Utc};
use herald_core::push::PushStatus;
use herald_core::AppId;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::pushes::IDEMPOTENCY_WINDOW_DAYS;
use crate::rows::{
    count, cursor_of, encode_acked_above, platforms_json, records, PushRow, PUSH_COLUMNS as COLUMNS,
};
use crate::time::{from_millis, to_millis};
use crate::{
    BroadcastQuota, BroadcastUsage, Cursor, Dispatch, NewPush, PushFilter, PushRecord, StoreError,
    StoreResult,
};

fn record(row: PushRow) -> StoreResult<PushRecord> {
    PushRecord::try_from(row)
}

pub(super) async fn create(pool: &SqlitePool, push: NewPush) -> StoreResult<(PushRecord, bool)> {
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    if let Some(key) = &push.idempotency_key {
        let existing = sqlx::query_as::<_, PushRow>(&format!(
            "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND idempotency_key = ?"
        ))
        .bind(push.app)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let found = record(row)?;
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
    if let Some(quota) = &push.quota {
        let (day, hour, latest) = quota_usage(&mut tx, &push, quota, now).await?;
        quota.check(now, day, hour, latest)?;
    }
    let platforms = platforms_json(push.platforms.as_ref())?;
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "INSERT INTO pushes (app_id, id, status, audience, message, notification, sender, platforms, \
         ttl_secs, idempotency_key, push_at, created_at, broadcast, source, vendor_push) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
    .bind(push.broadcast)
    .bind(&push.source)
    .bind(push.vendor_push)
    .fetch_one(&mut *tx)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::not_found("app", push.app),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("push {} already exists", push.id))
        }
        other => other.into(),
    })?;
    let created = record(row)?;
    tx.commit().await?;
    Ok((created, true))
}

pub(super) async fn by_idempotency_key(
    pool: &SqlitePool,
    app: AppId,
    key: &str,
) -> StoreResult<Option<PushRecord>> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND idempotency_key = ? AND created_at > ?"
    ))
    .bind(app)
    .bind(key)
    .bind(to_millis(Utc::now() - Duration::days(IDEMPOTENCY_WINDOW_DAYS)))
    .fetch_optional(pool)
    .await?;
    row.map(record).transpose()
}

pub(super) async fn one(pool: &SqlitePool, app: AppId, id: &str) -> StoreResult<PushRecord> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND id = ?"
    ))
    .bind(app)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("push", id))?;
    record(row)
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
    herald_pause::at("store.begin_dispatch").await;
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
    // Only a push still on its way can finish: a cancel that came first keeps its word.
    let done = sqlx::query(
        "UPDATE pushes SET status = ?, finished_at = ?, error = ? \
         WHERE app_id = ? AND id = ? AND status IN ('scheduled', 'dispatching')",
    )
    .bind(status.as_str())
    .bind(to_millis(Utc::now()))
    .bind(error)
    .bind(app)
    .bind(id)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        one(pool, app, id).await?;
    }
    Ok(())
}

pub(super) async fn with_status(
    pool: &SqlitePool,
    status: PushStatus,
) -> StoreResult<Vec<PushRecord>> {
    let rows = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE status = ? ORDER BY push_at, created_at"
    ))
    .bind(status.as_str())
    .fetch_all(pool)
    .await?;
    records(rows)
}

pub(super) async fn live(
    pool: &SqlitePool,
    app: AppId,
    now: DateTime<Utc>,
) -> StoreResult<Vec<PushRecord>> {
    let rows = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND seq IS NOT NULL AND recipients IS NOT NULL \
         AND expires_at > ? AND recalled_at IS NULL ORDER BY seq"
    ))
    .bind(app)
    .bind(to_millis(now))
    .fetch_all(pool)
    .await?;
    records(rows)
}

pub(super) async fn cursor(pool: &SqlitePool, app: AppId, device_id: &str) -> StoreResult<Cursor> {
    let row = sqlx::query(
        "SELECT acked_seq, acked_above FROM device_cursors WHERE app_id = ? AND device_id = ?",
    )
    .bind(app)
    .bind(device_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(Cursor::default()) };
    Ok(cursor_of(row.try_get("acked_seq")?, row.try_get("acked_above")?))
}

/// Cancels a scheduled or dispatching push; returns its status before and the push after.
pub(super) async fn cancel(
    pool: &SqlitePool,
    app: AppId,
    id: &str,
) -> StoreResult<(PushStatus, PushRecord)> {
    let mut tx = pool.begin().await?;
    let before: String =
        sqlx::query_scalar("SELECT status FROM pushes WHERE app_id = ? AND id = ?")
            .bind(app)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("push", id))?;
    let before = PushStatus::parse(&before)
        .ok_or_else(|| StoreError::Corrupt(format!("push status {before}")))?;
    if !matches!(before, PushStatus::Scheduled | PushStatus::Dispatching) {
        return Err(StoreError::Conflict(format!("push {id} is already {}", before.as_str())));
    }
    let now = to_millis(Utc::now());
    // What a dispatching push has not delivered yet waits in inboxes: it leaves them.
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "UPDATE pushes SET status = 'cancelled', finished_at = ?, \
         recalled_at = CASE WHEN seq IS NULL THEN NULL ELSE ? END \
         WHERE app_id = ? AND id = ? RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(now)
    .bind(app)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((before, record(row)?))
}

/// Marks a dispatched push recalled: it leaves every inbox.
pub(super) async fn recall(pool: &SqlitePool, app: AppId, id: &str) -> StoreResult<PushRecord> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "UPDATE pushes SET recalled_at = ? WHERE app_id = ? AND id = ? AND seq IS NOT NULL \
         AND recalled_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(to_millis(Utc::now()))
    .bind(app)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => record(row),
        None => {
            let push = one(pool, app, id).await?;
            let why = if push.recalled_at.is_some() {
                "was already recalled"
            } else {
                "has not been sent"
            };
            Err(StoreError::Conflict(format!("push {id} {why}")))
        }
    }
}

pub(super) async fn page(
    pool: &SqlitePool,
    app: AppId,
    filter: &PushFilter,
) -> StoreResult<Vec<PushRecord>> {
    let mut query =
        QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM pushes WHERE app_id = "));
    query.push_bind(app);
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(from) = filter.from {
        query.push(" AND created_at >= ").push_bind(to_millis(from));
    }
    if let Some(to) = filter.to {
        query.push(" AND created_at < ").push_bind(to_millis(to));
    }
    if let Some(after) = &filter.after {
        // Newest first; ties on the creation time are broken by id.
        query
            .push(" AND (created_at, id) < (SELECT created_at, id FROM pushes WHERE app_id = ")
            .push_bind(app)
            .push(" AND id = ")
            .push_bind(after)
            .push(")");
    }
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(filter.limit));
    records(query.build_query_as::<PushRow>().fetch_all(pool).await?)
}

pub(super) async fn broadcast_usage(
    pool: &SqlitePool,
    app: AppId,
    source: &str,
    since: DateTime<Utc>,
) -> StoreResult<BroadcastUsage> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MAX(created_at) AS latest FROM pushes \
         WHERE app_id = ? AND source = ? AND broadcast = 1 AND created_at >= ? AND status != 'failed'",
    )
    .bind(app)
    .bind(source)
    .bind(to_millis(since))
    .fetch_one(pool)
    .await?;
    let count: i64 = row.try_get("n")?;
    let latest: Option<i64> = row.try_get("latest")?;
    Ok(BroadcastUsage {
        count: u64::try_from(count).unwrap_or_default(),
        latest: latest.map(from_millis).transpose()?,
    })
}

/// Broadcasts of the push's app and source that count against its quota at `now`: today's, the
/// last hour's, and the newest one's time.
async fn quota_usage(
    conn: &mut sqlx::SqliteConnection,
    push: &NewPush,
    quota: &BroadcastQuota,
    now: DateTime<Utc>,
) -> StoreResult<(u64, u64, Option<DateTime<Utc>>)> {
    let day = BroadcastQuota::day_start(now);
    let hour = now - Duration::hours(1);
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE created_at >= ?1) AS day, \
         COUNT(*) FILTER (WHERE created_at >= ?2) AS hour, MAX(created_at) AS latest \
         FROM pushes WHERE app_id = ?3 AND source = ?4 AND broadcast = 1 AND status != 'failed' \
         AND created_at >= MIN(?1, ?2, ?5)",
    )
    .bind(to_millis(day))
    .bind(to_millis(hour))
    .bind(push.app)
    .bind(&push.source)
    .bind(to_millis(quota.window_start(now)))
    .fetch_one(&mut *conn)
    .await?;
    let latest: Option<i64> = row.try_get("latest")?;
    Ok((
        count(row.try_get("day")?),
        count(row.try_get("hour")?),
        latest.map(from_millis).transpose()?,
    ))
}

/// Writes device cursors inside the caller's transaction.
pub(super) async fn save_cursors(
    conn: &mut sqlx::SqliteConnection,
    cursors: &[(AppId, String, Cursor)],
) -> StoreResult<()> {
    // Many rows per statement: a flush after a reconnect storm holds a cursor for every
    // device, and each statement is a round trip to the connection's worker thread.
    for chunk in cursors.chunks(super::accounts::CHUNK) {
        let mut query = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO device_cursors (app_id, device_id, acked_seq, acked_above) ",
        );
        query.push_values(chunk, |mut row, (app, device_id, cursor)| {
            row.push_bind(*app)
                .push_bind(device_id.as_str())
                .push_bind(i64::try_from(cursor.acked).unwrap_or(i64::MAX))
                .push_bind(encode_acked_above(cursor));
        });
        query.push(
            // A cursor never moves back: a flush carrying an older state changes nothing.
            " ON CONFLICT (app_id, device_id) DO UPDATE SET \
             acked_seq = MAX(acked_seq, excluded.acked_seq), \
             acked_above = CASE WHEN excluded.acked_seq >= acked_seq THEN excluded.acked_above \
             ELSE acked_above END",
        );
        query.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn by_seq(
    pool: &SqlitePool,
    app: AppId,
    after: u64,
    upto: u64,
) -> StoreResult<Vec<PushRecord>> {
    let bound = |seq: u64| i64::try_from(seq).unwrap_or(i64::MAX);
    let rows = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = ? AND seq > ? AND seq <= ? ORDER BY seq"
    ))
    .bind(app)
    .bind(bound(after))
    .bind(bound(upto))
    .fetch_all(pool)
    .await?;
    records(rows)
}

pub(super) async fn last_seq(pool: &SqlitePool, app: AppId) -> StoreResult<u64> {
    let next: i64 = sqlx::query_scalar("SELECT next_push_seq FROM apps WHERE id = ?")
        .bind(app)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("app", app))?;
    u64::try_from(next - 1).map_err(|_| StoreError::Corrupt(format!("next push seq {next}")))
}
