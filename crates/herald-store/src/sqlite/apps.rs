//! The `apps` table.

use chrono::{DateTime, Utc};
use herald_core::{App, AppId};
use sqlx::SqlitePool;

use crate::rows::{app_columns_of_a, limits_json, AppRow, CompatAppRow, APP_COLUMNS as COLUMNS};
use crate::time::to_millis;
use crate::{AppUpdate, NewApp, StoreError, StoreResult};

fn app_of(row: AppRow) -> StoreResult<App> {
    App::try_from(row)
}

pub(super) async fn create(pool: &SqlitePool, app: NewApp) -> StoreResult<App> {
    let now = to_millis(Utc::now());
    let row = sqlx::query_as::<_, AppRow>(&format!(
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
    app_of(row)
}

pub(super) async fn by_id(pool: &SqlitePool, id: AppId) -> StoreResult<App> {
    let row = sqlx::query_as::<_, AppRow>(&format!("SELECT {COLUMNS} FROM apps WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("app", id))?;
    app_of(row)
}

pub(super) async fn by_key(pool: &SqlitePool, key: &str) -> StoreResult<App> {
    let row = sqlx::query_as::<_, AppRow>(&format!("SELECT {COLUMNS} FROM apps WHERE app_key = ?"))
        .bind(key)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::not_found("app key", key))?;
    app_of(row)
}

pub(super) async fn all(pool: &SqlitePool) -> StoreResult<Vec<App>> {
    crate::rows::records(
        sqlx::query_as::<_, AppRow>(&format!("SELECT {COLUMNS} FROM apps ORDER BY id"))
            .fetch_all(pool)
            .await?,
    )
}

pub(super) async fn update(pool: &SqlitePool, id: AppId, update: AppUpdate) -> StoreResult<App> {
    let limits = update.limits.as_ref().map(limits_json).transpose()?;
    let row = sqlx::query_as::<_, AppRow>(&format!(
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
    app_of(row)
}

pub(super) async fn rotate_secret(
    pool: &SqlitePool,
    id: AppId,
    secret: String,
    previous_valid_until: DateTime<Utc>,
) -> StoreResult<App> {
    let row = sqlx::query_as::<_, AppRow>(&format!(
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
    app_of(row)
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
    let row = sqlx::query_as::<_, CompatAppRow>(&format!(
        "SELECT {}, c.settings AS compat_settings FROM apps a JOIN compat_layers c ON c.app_id = a.id \
         WHERE c.layer = ? AND c.external_id = ?",
        app_columns_of_a()
    ))
    .bind(layer)
    .bind(external_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| StoreError::not_found("app", format!("{layer}:{external_id}")))?;
    Ok((app_of(row.app)?, row.compat_settings))
}
