//! Signed `/v1` routes that send pushes and show them, and mint client tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use herald_core::account::check_account;
use herald_core::push::{Notification, PushContent, PushStatus};
use herald_store::{NewPush, PushRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{token, CallingApp};
use crate::directory;
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePush {
    /// Audience expression (docs/audience.md).
    #[schema(value_type = Object)]
    pub audience: Value,
    /// The custom message: any JSON, at most `message_bytes`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub message: Value,
    pub notification: Option<Notification>,
    /// Deliver to online devices only; nothing is stored.
    #[serde(default)]
    pub online_only: bool,
    /// Seconds the push waits for offline devices (0 to `max_offline_ttl_secs`, default the
    /// app's `max_offline_ttl_secs`).
    pub ttl_secs: Option<u32>,
    /// Only devices of these platforms.
    pub platforms: Option<Vec<String>>,
    /// The sending account, shown to clients.
    pub sender: Option<String>,
    /// The same key within 7 days returns the first push and pushes nothing.
    pub idempotency_key: Option<String>,
}

/// A push and its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushView {
    pub push_id: String,
    pub status: PushStatus,
    /// App-wide sequence number, given at dispatch.
    pub seq: Option<u64>,
    #[schema(value_type = Object)]
    pub audience: Value,
    #[schema(value_type = Object)]
    pub message: Value,
    #[schema(value_type = Option<Object>)]
    pub notification: Option<Value>,
    pub sender: Option<String>,
    pub platforms: Option<Vec<String>>,
    pub ttl_secs: u32,
    pub idempotency_key: Option<String>,
    /// Audience size at dispatch.
    pub targeted: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// True when an earlier push with the same idempotency key was returned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl PushView {
    fn new(record: PushRecord, duplicate: bool) -> Self {
        let json = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
        Self {
            audience: json(&record.audience),
            message: json(&record.message),
            notification: record.notification.as_deref().map(json),
            push_id: record.id,
            status: record.status,
            seq: record.seq,
            sender: record.sender,
            platforms: record.platforms,
            ttl_secs: record.ttl_secs,
            idempotency_key: record.idempotency_key,
            targeted: record.targeted,
            created_at: record.created_at,
            started_at: record.started_at,
            finished_at: record.finished_at,
            expires_at: record.expires_at,
            error: record.error,
            duplicate,
        }
    }
}

/// Handle the `POST /v1/pushes` route: validate, store durably, answer; delivery follows.
#[utoipa::path(post, path = "/v1/pushes", tag = "pushes", security(("signature" = [])),
    request_body = CreatePush,
    responses((status = 201, body = PushView, description = "stored; dispatch follows"),
        (status = 200, body = PushView, description = "the push of an idempotency key seen before"),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_push_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<CreatePush>,
) -> ApiResult<(StatusCode, Json<PushView>)> {
    if body.online_only && body.ttl_secs.is_some_and(|ttl| ttl > 0) {
        return Err(
            ApiErrorKind::InvalidRequest("online_only pushes take no ttl_secs".into()).into()
        );
    }
    let ttl_secs =
        if body.online_only { 0 } else { body.ttl_secs.unwrap_or(app.limits.max_offline_ttl_secs) };
    let content = PushContent {
        message: body.message,
        notification: body.notification,
        sender: body.sender,
        platforms: body.platforms,
        ttl_secs,
        idempotency_key: body.idempotency_key,
    };
    content.check(&app.limits)?;
    directory::plan_audience(&state.directory, &app, &body.audience).await?;
    let new = NewPush {
        app: app.id,
        id: format!("p_{}", token::random_token(20)),
        audience: body.audience.to_string(),
        message: content.message.to_string(),
        notification: content
            .notification
            .as_ref()
            .map(|n| serde_json::to_string(n).unwrap_or_default()),
        sender: content.sender,
        platforms: content.platforms,
        ttl_secs,
        idempotency_key: content.idempotency_key,
        push_at: Utc::now(),
    };
    let (record, created) = state.store.create_push(new).await?;
    if created {
        state.dispatcher.enqueue(app.id, record.id.clone());
    }
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(PushView::new(record, !created))))
}

/// Handle the `GET /v1/pushes/{push_id}` route.
#[utoipa::path(get, path = "/v1/pushes/{push_id}", tag = "pushes", security(("signature" = [])),
    params(("push_id" = String, Path)),
    responses((status = 200, body = PushView), (status = 404, body = ErrorBody)))]
pub async fn get_push_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(push_id): Path<String>,
) -> ApiResult<Json<PushView>> {
    Ok(Json(PushView::new(state.store.push(app.id, &push_id).await?, false)))
}

/// Longest client token life.
const MAX_TOKEN_TTL_SECS: i64 = 30 * 86_400;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientToken {
    pub account: String,
    /// Seconds the token is valid, 1 to 30 days (default 1 day).
    pub ttl_secs: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Handle the `POST /v1/client-tokens` route: a token a device of `account` presents in its
/// hello. Back ends may also mint tokens themselves (docs/protocol.md).
#[utoipa::path(post, path = "/v1/client-tokens", tag = "pushes", security(("signature" = [])),
    request_body = CreateClientToken,
    responses((status = 200, body = ClientToken), (status = 400, body = ErrorBody)))]
pub async fn create_client_token_route(
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<CreateClientToken>,
) -> ApiResult<Json<ClientToken>> {
    check_account(&body.account).map_err(|err| ApiErrorKind::InvalidRequest(err.to_string()))?;
    let ttl = body.ttl_secs.unwrap_or(86_400);
    if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl) {
        return Err(ApiErrorKind::InvalidRequest(format!(
            "ttl_secs must be between 1 and {MAX_TOKEN_TTL_SECS}"
        ))
        .into());
    }
    let expires_at = Utc::now() + Duration::seconds(ttl);
    let token =
        herald_gateway::token::mint(&app.key, &app.secret, &body.account, expires_at.timestamp());
    Ok(Json(ClientToken { token, expires_at }))
}
