//! The `webhooks` table and the `webhook_events` outbox.

use chrono::{DateTime, Utc};
use herald_core::AppId;
use sqlx::{Row, SqlitePool};

use crate::rows::{records, WebhookEventRow, WEBHOOK_EVENT_COLUMNS};
use crate::time::{from_millis, to_millis};
use crate::{StoreError, StoreResult, Webhook, WebhookAttempt, WebhookEvent};

pub(super) async fn set(
    pool: &SqlitePool,
    app: AppId,
    url: &str,
    events: &[String],
) -> StoreResult<Webhook> {
    let now = Utc::now();
    let events_json =
        serde_json::to_string(events).map_err(|err| StoreError::Corrupt(err.to_string()))?;
    sqlx::query(
        "INSERT INTO webhooks (app_id, url, events, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (app_id) DO UPDATE SET url = excluded.url, events = excluded.events, \
         updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(url)
    .bind(events_json)
    .bind(to_millis(now))
    .execute(pool)
    .await
    .map_err(StoreError::of_app_row(app))?;
    get(pool, app).await?.ok_or_else(|| StoreError::not_found("webhook", app))
}

pub(super) async fn get(pool: &SqlitePool, app: AppId) -> StoreResult<Option<Webhook>> {
    let row = sqlx::query("SELECT url, events, updated_at FROM webhooks WHERE app_id = ?")
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

pub(super) async fn delete(pool: &SqlitePool, app: AppId) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM webhooks WHERE app_id = ?").bind(app).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("webhook", app));
    }
    Ok(())
}

pub(super) async fn enqueue(
    pool: &SqlitePool,
    app: AppId,
    kind: &str,
    payload: &str,
) -> StoreResult<i64> {
    let now = to_millis(Utc::now());
    let id = sqlx::query_scalar(
        "INSERT INTO webhook_events (app_id, kind, payload, next_attempt_at, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(app)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .bind(now)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// Claims the events due at `now`: they are not due again before `until`, so that no other
/// caller posts them meanwhile (the writer connection serialises claims).
pub(super) async fn claim(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    limit: u32,
    until: DateTime<Utc>,
) -> StoreResult<Vec<WebhookEvent>> {
    let rows = sqlx::query_as::<_, WebhookEventRow>(&format!(
        "UPDATE webhook_events SET next_attempt_at = ? WHERE id IN (SELECT id FROM webhook_events \
         WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? \
         ORDER BY next_attempt_at, id LIMIT ?) RETURNING {WEBHOOK_EVENT_COLUMNS}"
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

pub(super) async fn attempted(
    pool: &SqlitePool,
    id: i64,
    attempt: &WebhookAttempt,
) -> StoreResult<()> {
    let now = to_millis(Utc::now());
    let query = match attempt {
        WebhookAttempt::Delivered => sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, delivered_at = ?, last_error = NULL WHERE id = ?",
        )
        .bind(now),
        WebhookAttempt::Retry { next, error } => sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
        )
        .bind(to_millis(*next))
        .bind(error.clone()),
        WebhookAttempt::Failed { error } => sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, failed_at = ?, last_error = ? WHERE id = ?",
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
