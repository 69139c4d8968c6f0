//! Admin API over apps (tenants): create, list, get, update, rotate secret, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use herald_core::{App, AppId, Limits, LimitsPatch};
use herald_store::{AppUpdate, NewApp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::token;
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Longest grace period a rotation may give the previous secret.
const MAX_GRACE_SECS: u64 = 30 * 86_400;

/// An app as the API shows it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    pub id: AppId,
    pub name: String,
    pub key: String,
    pub limits: Limits,
    /// Until when the secret before the last rotation is still accepted.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<App> for AppView {
    fn from(app: App) -> Self {
        let previous = app.previous_secret_expires_at.filter(|until| *until > Utc::now());
        Self {
            id: app.id,
            name: app.name,
            key: app.key,
            limits: app.limits,
            previous_secret_expires_at: previous,
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }
}

/// A new app with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApp {
    #[serde(flatten)]
    pub app: AppView,
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// 1 to 100 characters.
    pub name: String,
    /// Limits that differ from the defaults.
    #[serde(default)]
    pub limits: LimitsPatch,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    pub name: Option<String>,
    pub limits: Option<LimitsPatch>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RotateSecret {
    /// Seconds the previous secret stays valid; default `secret_grace_secs` (24 h), at most 30 days.
    pub grace_secs: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppView>,
}

fn checked_name(name: &str) -> Result<String, ApiErrorKind> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(ApiErrorKind::InvalidRequest(
            "name must be 1 to 100 characters without control characters".into(),
        ));
    }
    Ok(trimmed.to_owned())
}

fn app_id(raw: &str) -> Result<AppId, ApiErrorKind> {
    raw.parse().map_err(|_| ApiErrorKind::NotFound { what: "app", id: raw.to_owned() })
}

/// Handle the `POST /admin/apps` route.
#[utoipa::path(post, path = "/admin/apps", tag = "admin", request_body = CreateApp,
    security(("admin_token" = [])),
    responses((status = 201, body = CreatedApp), (status = 400, body = crate::routes::docs::ErrorBody)))]
pub async fn create_app_route(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateApp>,
) -> ApiResult<(StatusCode, Json<CreatedApp>)> {
    let name = checked_name(&body.name)?;
    let limits = Limits::default().apply(&body.limits)?;
    let secret = token::app_secret();
    let app = state
        .store
        .create_app(NewApp { name, key: token::app_key(), secret: secret.clone(), limits })
        .await?;
    tracing::info!(app_id = app.id, "app created");
    Ok((StatusCode::CREATED, Json(CreatedApp { app: app.into(), secret })))
}

/// Handle the `GET /admin/apps` route.
#[utoipa::path(get, path = "/admin/apps", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = AppList)))]
pub async fn list_apps_route(State(state): State<AppState>) -> ApiResult<Json<AppList>> {
    let apps = state.store.apps().await?;
    Ok(Json(AppList { apps: apps.into_iter().map(AppView::from).collect() }))
}

/// Handle the `GET /admin/apps/{id}` route.
#[utoipa::path(get, path = "/admin/apps/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = AppView), (status = 404, body = crate::routes::docs::ErrorBody)))]
pub async fn get_app_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AppView>> {
    Ok(Json(state.store.app(app_id(&id)?).await?.into()))
}

/// Handle the `PATCH /admin/apps/{id}` route: rename, or change some limits.
#[utoipa::path(patch, path = "/admin/apps/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path)), request_body = UpdateApp,
    responses((status = 200, body = AppView), (status = 400, body = crate::routes::docs::ErrorBody),
        (status = 404, body = crate::routes::docs::ErrorBody)))]
pub async fn update_app_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateApp>,
) -> ApiResult<Json<AppView>> {
    let id = app_id(&id)?;
    let name = body.name.as_deref().map(checked_name).transpose()?;
    let limits = match &body.limits {
        Some(patch) => Some(state.store.app(id).await?.limits.apply(patch)?),
        None => None,
    };
    let app = state.store.update_app(id, AppUpdate { name, limits }).await?;
    state.app_changed(id).await?;
    Ok(Json(app.into()))
}

/// Handle the `POST /admin/apps/{id}/rotate-secret` route.
///
/// The new secret is returned once; the previous one keeps working for the grace period so that
/// back ends can switch without a failed request.
#[utoipa::path(post, path = "/admin/apps/{id}/rotate-secret", tag = "admin",
    security(("admin_token" = [])), params(("id" = i64, Path)), request_body = RotateSecret,
    responses((status = 200, body = RotatedSecret), (status = 404, body = crate::routes::docs::ErrorBody)))]
pub async fn rotate_secret_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> ApiResult<Json<RotatedSecret>> {
    let id = app_id(&id)?;
    let grace = body.grace_secs.unwrap_or(state.settings.secret_grace_secs);
    if grace > MAX_GRACE_SECS {
        return Err(ApiErrorKind::InvalidRequest(format!(
            "grace_secs must be at most {MAX_GRACE_SECS}"
        ))
        .into());
    }
    let until = Utc::now() + Duration::seconds(i64::try_from(grace).unwrap_or(i64::MAX));
    let secret = token::app_secret();
    state.store.rotate_secret(id, secret.clone(), until).await?;
    state.app_changed(id).await?;
    tracing::info!(app_id = id, grace_secs = grace, "app secret rotated");
    Ok(Json(RotatedSecret { secret, previous_secret_expires_at: until }))
}

/// Handle the `DELETE /admin/apps/{id}` route.
#[utoipa::path(delete, path = "/admin/apps/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::routes::docs::ErrorBody)))]
pub async fn delete_app_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = app_id(&id)?;
    state.store.delete_app(id).await?;
    state.directory.forget(id);
    state.live.forget_app(id);
    state.app_changed(id).await?;
    tracing::info!(app_id = id, "app deleted");
    Ok(StatusCode::NO_CONTENT)
}
