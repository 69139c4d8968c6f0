//! The `pushes` and `device_cursors` tables.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use herald_core::push::PushStatus;
use herald_core::AppId;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use crate::pushes::IDEMPOTENCY_WINDOW_DAYS;
use crate::rows::{
    count, cursor_of, encode_acked_above, int, platforms_json, records, PushRow,
    PUSH_COLUMNS as COLUMNS,
};
use crate::time::{from_millis, to_millis};
use crate::{
    BroadcastQuota, BroadcastUsage, Cursor, Dispatch, NewPush, PushFilter, PushRecord, StoreError,
    StoreResult,
};

async fn by_key_in(
    conn: &mut PgConnection,
    app: AppId,
    key: &str,
) -> StoreResult<Option<PushRecord>> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = $1 AND idempotency_key = $2"
    ))
    .bind(app)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(PushRecord::try_from).transpose()
}

pub(super) async fn create(pool: &PgPool, push: NewPush) -> StoreResult<(PushRecord, bool)> {
    let now = Utc::now();
    let mut tx = pool.begin().await?;
    if let Some(key) = &push.idempotency_key {
        if let Some(found) = by_key_in(&mut tx, push.app, key).await? {
            if found.created_at > now - Duration::days(IDEMPOTENCY_WINDOW_DAYS) {
                return Ok((found, false));
            }
            // Past its window the key is free again.
            sqlx::query("UPDATE pushes SET idempotency_key = NULL WHERE app_id = $1 AND id = $2")
                .bind(push.app)
                .bind(&found.id)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(quota) = &push.quota {
        // Broadcasts of one app are stored one at a time, each seeing the ones before it. The
        // lock is an advisory one of its own, not the app's row: dispatches move the seq in
        // that row, and a broadcast accept must not wait for them.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/broadcast/' || $1::TEXT, 0))",
        )
        .bind(push.app)
        .execute(&mut *tx)
        .await?;
        let (day, hour, latest) = quota_usage(&mut tx, &push, quota, now).await?;
        quota.check(now, day, hour, latest)?;
    }
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "INSERT INTO pushes (app_id, id, status, audience, message, notification, sender, platforms, \
         ttl_secs, idempotency_key, push_at, created_at, broadcast, source, vendor_push) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (app_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING {COLUMNS}"
    ))
    .bind(push.app)
    .bind(&push.id)
    .bind(PushStatus::Scheduled.as_str())
    .bind(&push.audience)
    .bind(&push.message)
    .bind(&push.notification)
    .bind(&push.sender)
    .bind(platforms_json(push.platforms.as_ref())?)
    .bind(i64::from(push.ttl_secs))
    .bind(&push.idempotency_key)
    .bind(to_millis(push.push_at))
    .bind(to_millis(now))
    .bind(push.broadcast)
    .bind(&push.source)
    .bind(push.vendor_push)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::not_found("app", push.app)
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("push {} already exists", push.id))
        }
        other => other.into(),
    })?;
    let Some(row) = row else {
        // Another request with the same key committed first: its push is the answer.
        let key = push.idempotency_key.as_deref().unwrap_or_default();
        let first = by_key_in(&mut tx, push.app, key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("idempotency key {key} vanished")))?;
        return Ok((first, false));
    };
    let created = PushRecord::try_from(row)?;
    tx.commit().await?;
    Ok((created, true))
}

/// Broadcasts of the push's app and source that count against its quota at `now`: today's, the
/// last hour's, and the newest one's time.
async fn quota_usage(
    conn: &mut PgConnection,
    push: &NewPush,
    quota: &BroadcastQuota,
    now: DateTime<Utc>,
) -> StoreResult<(u64, u64, Option<DateTime<Utc>>)> {
    let row = sqlx::query(
        "SELECT COUNT(*) FILTER (WHERE created_at >= $1) AS day, \
         COUNT(*) FILTER (WHERE created_at >= $2) AS hour, MAX(created_at) AS latest \
         FROM pushes WHERE app_id = $3 AND source = $4 AND broadcast AND status != 'failed' \
         AND created_at >= $5",
    )
    .bind(to_millis(BroadcastQuota::day_start(now)))
    .bind(to_millis(now - Duration::hours(1)))
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

pub(super) async fn by_idempotency_key(
    pool: &PgPool,
    app: AppId,
    key: &str,
) -> StoreResult<Option<PushRecord>> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = $1 AND idempotency_key = $2 AND created_at > $3"
    ))
    .bind(app)
    .bind(key)
    .bind(to_millis(Utc::now() - Duration::days(IDEMPOTENCY_WINDOW_DAYS)))
    .fetch_optional(pool)
    .await?;
    row.map(PushRecord::try_from).transpose()
}

pub(super) async fn one(pool: &PgPool, app: AppId, id: &str) -> StoreResult<PushRecord> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = $1 AND id = $2"
    ))
    .bind(app)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("push", id))?;
    PushRecord::try_from(row)
}

/// The seq comes from the app's row, moved in the transaction that stores the audience: the
/// row lock makes concurrent dispatchers take turns, and a push that turns out not to be
/// waiting rolls its seq back, so seqs stay gapless and unique.
pub(super) async fn begin_dispatch(
    pool: &PgPool,
    app: AppId,
    id: &str,
    dispatch: Dispatch,
) -> StoreResult<u64> {
    let mut tx = pool.begin().await?;
    let seq: i64 = sqlx::query_scalar(
        "UPDATE apps SET next_push_seq = next_push_seq + 1 WHERE id = $1 RETURNING next_push_seq - 1",
    )
    .bind(app)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::not_found("app", app))?;
    let updated = sqlx::query(
        "UPDATE pushes SET seq = $1, status = $2, started_at = $3, recipients = $4, targeted = $5, \
         expires_at = $6 WHERE app_id = $7 AND id = $8 AND status = $9",
    )
    .bind(seq)
    .bind(PushStatus::Dispatching.as_str())
    .bind(to_millis(Utc::now()))
    .bind(dispatch.recipients)
    .bind(int(dispatch.targeted))
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
    pool: &PgPool,
    app: AppId,
    id: &str,
    status: PushStatus,
    error: Option<String>,
) -> StoreResult<()> {
    // Only a push still on its way can finish: a cancel that came first keeps its word.
    let done = sqlx::query(
        "UPDATE pushes SET status = $1, finished_at = $2, error = $3 \
         WHERE app_id = $4 AND id = $5 AND status IN ('scheduled', 'dispatching')",
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

pub(super) async fn with_status(pool: &PgPool, status: PushStatus) -> StoreResult<Vec<PushRecord>> {
    let rows = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE status = $1 ORDER BY push_at, created_at"
    ))
    .bind(status.as_str())
    .fetch_all(pool)
    .await?;
    records(rows)
}

pub(super) async fn live(
    pool: &PgPool,
    app: AppId,
    now: DateTime<Utc>,
) -> StoreResult<Vec<PushRecord>> {
    let rows = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = $1 AND seq IS NOT NULL AND recipients IS NOT NULL \
         AND expires_at > $2 AND recalled_at IS NULL ORDER BY seq"
    ))
    .bind(app)
    .bind(to_millis(now))
    .fetch_all(pool)
    .await?;
    records(rows)
}

pub(super) async fn cursor(pool: &PgPool, app: AppId, device_id: &str) -> StoreResult<Cursor> {
    let row = sqlx::query(
        "SELECT acked_seq, acked_above FROM device_cursors WHERE app_id = $1 AND device_id = $2",
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
    pool: &PgPool,
    app: AppId,
    id: &str,
) -> StoreResult<(PushStatus, PushRecord)> {
    let mut tx = pool.begin().await?;
    let before: String =
        sqlx::query_scalar("SELECT status FROM pushes WHERE app_id = $1 AND id = $2 FOR UPDATE")
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
    // What a dispatching push has not delivered yet waits in inboxes: it leaves them.
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "UPDATE pushes SET status = 'cancelled', finished_at = $1, \
         recalled_at = CASE WHEN seq IS NULL THEN NULL ELSE $1 END \
         WHERE app_id = $2 AND id = $3 RETURNING {COLUMNS}"
    ))
    .bind(to_millis(Utc::now()))
    .bind(app)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((before, PushRecord::try_from(row)?))
}

/// Marks a dispatched push recalled: it leaves every inbox.
pub(super) async fn recall(pool: &PgPool, app: AppId, id: &str) -> StoreResult<PushRecord> {
    let row = sqlx::query_as::<_, PushRow>(&format!(
        "UPDATE pushes SET recalled_at = $1 WHERE app_id = $2 AND id = $3 AND seq IS NOT NULL \
         AND recalled_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(to_millis(Utc::now()))
    .bind(app)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => PushRecord::try_from(row),
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
    pool: &PgPool,
    app: AppId,
    filter: &PushFilter,
) -> StoreResult<Vec<PushRecord>> {
    let mut query =
        QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM pushes WHERE app_id = "));
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
    pool: &PgPool,
    app: AppId,
    source: &str,
    since: DateTime<Utc>,
) -> StoreResult<BroadcastUsage> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MAX(created_at) AS latest FROM pushes \
         WHERE app_id = $1 AND source = $2 AND broadcast AND created_at >= $3 AND status != 'failed'",
    )
    .bind(app)
    .bind(source)
    .bind(to_millis(since))
    .fetch_one(pool)
    .await?;
    let latest: Option<i64> = row.try_get("latest")?;
    Ok(BroadcastUsage {
        count: count(row.try_get("n")?),
        latest: latest.map(from_millis).transpose()?,
    })
}

/// Writes device cursors inside the caller's transaction, all in one statement. A cursor
/// never moves back: what is stored and what is written are merged (the higher cumulative
/// seq, and the explicit acks of both above it), so a node flushing an older state of a
/// device that has since acked elsewhere loses nothing.
pub(super) async fn save_cursors(
    conn: &mut PgConnection,
    cursors: &[(AppId, String, Cursor)],
) -> StoreResult<()> {
    // One row per device: an upsert may not touch a row twice.
    let unique: HashMap<(AppId, &str), &Cursor> =
        cursors.iter().map(|(app, device, cursor)| ((*app, device.as_str()), cursor)).collect();
    if unique.is_empty() {
        return Ok(());
    }
    let (mut apps, mut devices, mut acked, mut above) = (vec![], vec![], vec![], vec![]);
    for ((app, device), cursor) in unique {
        apps.push(app);
        devices.push(device);
        acked.push(int(cursor.acked));
        above.push(encode_acked_above(cursor));
    }
    sqlx::query(
        "INSERT INTO device_cursors AS c (app_id, device_id, acked_seq, acked_above) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[]) \
         ON CONFLICT (app_id, device_id) DO UPDATE SET \
         acked_seq = GREATEST(c.acked_seq, excluded.acked_seq), \
         acked_above = (SELECT COALESCE(string_agg(s::TEXT, ',' ORDER BY s), '') FROM ( \
             SELECT DISTINCT part::BIGINT AS s \
             FROM UNNEST(string_to_array(c.acked_above || ',' || excluded.acked_above, ',')) AS part \
             WHERE part <> '') AS merged \
           WHERE s > GREATEST(c.acked_seq, excluded.acked_seq))",
    )
    .bind(&apps)
    .bind(&devices)
    .bind(&acked)
    .bind(&above)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn by_seq(
    pool: &PgPool,
    app: AppId,
    after: u64,
    upto: u64,
) -> StoreResult<Vec<PushRecord>> {
    let bound = |seq: u64| i64::try_from(seq).unwrap_or(i64::MAX);
    let rows = sqlx::query_as::<_, PushRow>(&format!(
        "SELECT {COLUMNS} FROM pushes WHERE app_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq"
    ))
    .bind(app)
    .bind(bound(after))
    .bind(bound(upto))
    .fetch_all(pool)
    .await?;
    records(rows)
}

pub(super) async fn last_seq(pool: &PgPool, app: AppId) -> StoreResult<u64> {
    let next: i64 = sqlx::query_scalar("SELECT next_push_seq FROM apps WHERE id = $1")
        .bind(app)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("app", app))?;
    u64::try_from(next - 1).map_err(|_| StoreError::Corrupt(format!("next push seq {next}")))
}
