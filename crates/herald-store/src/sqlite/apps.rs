//! The `apps` table.

use chrono::{DateTime, Utc};
use herald_core::{App, AppId, Limits};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::time::{from_millis, to_millis};
use crate::{AppUpdate, NewApp, StoreError, StoreResult};

const COLUMNS: &str = "id, name, app_key, secret, previous_secret, previous_secret_expires_at, \
                       limits, created_at, updated_at";

fn from_row(row: &SqliteRow) -> StoreResult<App> {
    let limits: String = row.try_get("limits")?;
    let limits: Limits = serde_json::from_str(&limits)
        .map_err(|err| StoreError::Corrupt(format!("app limits: {err}")))?;
    let previous_until: Option<i64> = row.try_get("previous_secret_expires_at")?;
    Ok(App {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key: row.try_get("app_key")?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_secret_expires_at: previous_until.map(from_millis).transpose()?,
        limits,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
    })
}

fn limits_json(limits: &Limits) -> StoreResult<String> {
    serde_json::to_string(limits).map_err(|err| StoreError::Corrupt(err.to_string()))
}

pub(super) async fn create(pool: &SqlitePool, app: NewApp) -> StoreResult<App> {
    let now = to_millis(Utc::now());
    let row = sqlx::query(&format!(
        "INSERT INTO apps (name, app_key, secret, limits, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
    ))
    .bind(&app.name)
    .bind(&app.key)
    .bind(&app.secret)
    .bind(limits_json(&app.limits)?)
    .bind(now)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("app key {} is already in use", app.key))
        }
        other => other.into(),
    })?;
    from_row(&row)
}

pub(super) async fn by_id(pool: &SqlitePool, id: AppId) -> StoreResult<App> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM apps WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("app", id))?;
    from_row(&row)
}

pub(super) async fn by_key(pool: &SqlitePool, key: &str) -> StoreResult<App> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM apps WHERE app_key = ?"))
        .bind(key)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("app key", key))?;
    from_row(&row)
}

pub(super) async fn all(pool: &SqlitePool) -> StoreResult<Vec<App>> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM apps ORDER BY id"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub(super) async fn update(pool: &SqlitePool, id: AppId, update: AppUpdate) -> StoreResult<App> {
    let limits = update.limits.as_ref().map(limits_json).transpose()?;
    let row = sqlx::query(&format!(
        "UPDATE apps SET name = COALESCE(?, name), limits = COALESCE(?, limits), updated_at = ? \
         WHERE id = ? RETURNING {COLUMNS}"
    ))
    .bind(update.name)
    .bind(limits)
    .bind(to_millis(Utc::now()))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("app", id))?;
    from_row(&row)
}

pub(super) async fn rotate_secret(
    pool: &SqlitePool,
    id: AppId,
    secret: String,
    previous_valid_until: DateTime<Utc>,
) -> StoreResult<App> {
    let row = sqlx::query(&format!(
        "UPDATE apps SET previous_secret = secret, previous_secret_expires_at = ?, secret = ?, \
         updated_at = ? WHERE id = ? RETURNING {COLUMNS}"
    ))
    .bind(to_millis(previous_valid_until))
    .bind(secret)
    .bind(to_millis(Utc::now()))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("app", id))?;
    from_row(&row)
}

pub(super) async fn delete(pool: &SqlitePool, id: AppId) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM apps WHERE id = ?").bind(id).execute(pool).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::not_found("app", id));
    }
    Ok(())
}

pub(super) async fn set_compat_layer(
    pool: &SqlitePool,
    app: AppId,
    layer: &str,
    external_id: Option<&str>,
    settings: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO compat_layers (app_id, layer, external_id, settings, updated_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, layer) DO UPDATE SET \
         external_id = excluded.external_id, settings = excluded.settings, \
         updated_at = excluded.updated_at",
    )
    .bind(app)
    .bind(layer)
    .bind(external_id)
    .bind(settings)
    .bind(to_millis(Utc::now()))
    .execute(pool)
    .await
    .map_err(|err| match err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::not_found("app", app)
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!(
            "{layer} id {} belongs to another app",
            external_id.unwrap_or_default()
        )),
        other => other.into(),
    })?;
    Ok(())
}

pub(super) async fn compat_layer(
    pool: &SqlitePool,
    app: AppId,
    layer: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar("SELECT settings FROM compat_layers WHERE app_id = ? AND layer = ?")
        .bind(app)
        .bind(layer)
        .fetch_optional(pool)
        .await?)
}

pub(super) async fn by_compat_id(
    pool: &SqlitePool,
    layer: &str,
    external_id: &str,
) -> StoreResult<(App, String)> {
    let row = sqlx::query(&format!(
        "SELECT {}, c.settings AS compat_settings FROM apps a JOIN compat_layers c ON c.app_id = a.id \
         WHERE c.layer = ? AND c.external_id = ?",
        COLUMNS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(layer)
    .bind(external_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("app", format!("{layer}:{external_id}")))?;
    Ok((from_row(&row)?, row.try_get("compat_settings")?))
}
