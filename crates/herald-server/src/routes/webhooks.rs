//! Signed `/v1` routes configuring the app's webhook.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::CallingApp;
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;
use crate::webhooks;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// `http://` or `https://` URL events are posted to.
    pub url: String,
    /// Event kinds: `push.finished`, `push.failed`, `device.token_invalidated` (default: all).
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub events: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// Handle the `PUT /v1/webhook` route.
#[utoipa::path(put, path = "/v1/webhook", tag = "webhooks", security(("signature" = [])),
    request_body = SetWebhook, responses((status = 200, body = WebhookView), (status = 400, body = ErrorBody)))]
pub async fn set_webhook_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<SetWebhook>,
) -> ApiResult<Json<WebhookView>> {
    let hook = webhooks::configure(&state.store, app.id, &body.url, body.events).await?;
    Ok(Json(WebhookView { url: hook.url, events: hook.events, updated_at: hook.updated_at }))
}

/// Handle the `GET /v1/webhook` route.
#[utoipa::path(get, path = "/v1/webhook", tag = "webhooks", security(("signature" = [])),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)))]
pub async fn get_webhook_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
) -> ApiResult<Json<WebhookView>> {
    let hook = state
        .store
        .webhook(app.id)
        .await?
        .ok_or_else(|| ApiErrorKind::NotFound { what: "webhook", id: app.id.to_string() })?;
    Ok(Json(WebhookView { url: hook.url, events: hook.events, updated_at: hook.updated_at }))
}

/// Handle the `DELETE /v1/webhook` route.
#[utoipa::path(delete, path = "/v1/webhook", tag = "webhooks", security(("signature" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
) -> ApiResult<StatusCode> {
    state.store.delete_webhook(app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
