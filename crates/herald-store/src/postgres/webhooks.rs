//! The `webhooks` table and the `webhook_events` outbox.

use chrono::{DateTime, Utc};
use herald_core::AppId;
use sqlx::{PgPool, Row};

use crate::rows::{records, WebhookEventRow, WEBHOOK_EVENT_COLUMNS};
use crate::time::{from_millis, to_millis};
use crate::{StoreError, StoreResult, Webhook, WebhookAttempt, WebhookEvent};

pub(super) async fn set(
    pool: &PgPool,
    app: AppId,
    url: &str,
    events: &[String],
) -> StoreResult<Webhook> {
    let events_json =
        serde_json::to_string(events).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    sqlx::query(
        "INSERT INTO webhooks (app_id, url, events, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (app_id) DO UPDATE SET url = excluded.url, events = excluded.events, \
         updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(url)
    .bind(events_json)
    .bind(to_millis(Utc::now()))
    .execute(pool)
    .await
    .map_err(StoreError::of_app_row(app))?;
    get(pool, app).await?.ok_or_else(|| StoreError::not_found("webhook", app))
}

pub(super) async fn get(pool: &PgPool, app: AppId) -> StoreResult<Option<Webhook>> {
    let row = sqlx::query("SELECT url, events, updated_at FROM webhooks WHERE app_id = $1")
        .bind(app)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        let events: String = row.try_get("events")?;
        Ok(Webhook {
            app,
            url: row.try_get("url")?,
            events: serde_json::from_str(&events)
                .map_err(|err| StoreError::Corrupt(format!("webhook events: {err}")))?,
            updated_at: from_millis(row.try_get("updated_at")?)?,
        })
    })
    .transpose()
}

pub(super) async fn delete(pool: &PgPool, app: AppId) -> StoreResult<()> {
    let done =
        sqlx::query("DELETE FROM webhooks WHERE app_id = $1").bind(app).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("webhook", app));
    }
    Ok(())
}

pub(super) async fn enqueue(
    pool: &PgPool,
    app: AppId,
    kind: &str,
    payload: &str,
) -> StoreResult<i64> {
    let now = to_millis(Utc::now());
    Ok(sqlx::query_scalar(
        "INSERT INTO webhook_events (app_id, kind, payload, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(app)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// Claims the events due at `now` until `until`. `SKIP LOCKED` lets nodes claiming at the same
/// moment take different events instead of waiting for, or repeating, each other's.
pub(super) async fn claim(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: u32,
    until: DateTime<Utc>,
) -> StoreResult<Vec<WebhookEvent>> {
    let rows = sqlx::query_as::<_, WebhookEventRow>(&format!(
        "UPDATE webhook_events SET next_attempt_at = $1 WHERE id IN (SELECT id FROM webhook_events \
         WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {WEBHOOK_EVENT_COLUMNS}"
    ))
    .bind(to_millis(until))
    .bind(to_millis(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let mut events = records::<_, WebhookEvent>(rows)?;
    // RETURNING gives no order; the outbox is posted oldest first.
    events.sort_by_key(|e| e.id);
    Ok(events)
}

pub(super) async fn attempted(pool: &PgPool, id: i64, attempt: &WebhookAttempt) -> StoreResult<()> {
    let now = to_millis(Utc::now());
    let query = match attempt {
        WebhookAttempt::Delivered => sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, delivered_at = $1, last_error = NULL \
             WHERE id = $2",
        )
        .bind(now),
        WebhookAttempt::Retry { next, error } => sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 \
             WHERE id = $3",
        )
        .bind(to_millis(*next))
        .bind(error.clone()),
        WebhookAttempt::Failed { error } => sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, failed_at = $1, last_error = $2 \
             WHERE id = $3",
        )
        .bind(now)
        .bind(error.clone()),
    };
    let done = query.bind(id).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("webhook event", id));
    }
    Ok(())
}
