//! Admin API over apps (tenants): create, list, get, update, rotate secret, delete.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use herald_core::{App, AppId, Limits, LimitsPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::apps;
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Longest grace period a rotation may give the previous secret.
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

/// A new app with its secret, shown this once. No `Debug`: it holds the secret.
#[derive(Serialize, ToSchema)]
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

/// No `Debug`: it holds the secret.
#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    pub previous_secret_expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppView>,
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
    let (app, secret) = apps::create(&state, &body.name, &body.limits).await?;
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
    let app = apps::update(&state, id, body.name.as_deref(), body.limits.as_ref()).await?;
    Ok(Json(app.into()))
}

/// Handle the `POST /admin/apps/{id}/rotate-secret` route.
///
/// The new secret is returned once; the previous one keeps working for the grace period so that
/// back ends can switch without a failed request. The body is optional: none keeps the default
/// grace period.
#[utoipa::path(post, path = "/admin/apps/{id}/rotate-secret", tag = "admin",
    security(("admin_token" = [])), params(("id" = i64, Path)), request_body = Option<RotateSecret>,
    responses((status = 200, body = RotatedSecret), (status = 400, body = crate::routes::docs::ErrorBody),
        (status = 404, body = crate::routes::docs::ErrorBody)))]
pub async fn rotate_secret_route(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> ApiResult<Json<RotatedSecret>> {
    let id = app_id(&id)?;
    let grace = body.grace_secs.unwrap_or(state.settings.secret_grace_secs);
    let (secret, until) = apps::rotate_secret(&state, id, grace).await?;
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
    apps::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
