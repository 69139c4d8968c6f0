//! Signed `/v1` routes that send pushes and show them, and mint client tokens.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Duration, Utc};
use herald_core::account::check_account;
use herald_core::push::{Notification, PushContent, PushStatus};
use herald_store::{PushFilter, PushRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::CallingApp;
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::pushes::{self, PushRequest, PushSource};
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
    /// When to send (RFC 3339); absent or in the past: at once.
    pub push_at: Option<DateTime<Utc>>,
    /// `false`: devices that are offline get no APNs / FCM notification (default `true`).
    pub vendor_push: Option<bool>,
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
    /// Counts against the broadcast interval and daily quota.
    pub broadcast: bool,
    /// Whether offline devices get the notification through APNs / FCM.
    pub vendor_push: bool,
    pub push_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub recalled_at: Option<DateTime<Utc>>,
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
            broadcast: record.broadcast,
            vendor_push: record.vendor_push,
            push_at: record.push_at,
            created_at: record.created_at,
            started_at: record.started_at,
            finished_at: record.finished_at,
            expires_at: record.expires_at,
            recalled_at: record.recalled_at,
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
    let ttl_secs = pushes::offline_ttl(&app, body.online_only, body.ttl_secs)?;
    let request = PushRequest {
        source: PushSource::Native,
        audience: body.audience,
        content: PushContent {
            message: body.message,
            notification: body.notification,
            sender: body.sender,
            platforms: body.platforms,
            ttl_secs,
            idempotency_key: body.idempotency_key,
            vendor_push: body.vendor_push.unwrap_or(true),
        },
        push_at: body.push_at,
    };
    let (record, created) = pushes::accept(&state, &app, request).await?;
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

/// No `Debug`: the token is a bearer credential.
#[derive(Serialize, ToSchema)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PushListQuery {
    /// `scheduled`, `dispatching`, `done`, `cancelled` or `failed`.
    pub status: Option<PushStatus>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The last push id of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushList {
    pub pushes: Vec<PushView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// Handle the `GET /v1/pushes` route: the app's pushes, newest first.
#[utoipa::path(get, path = "/v1/pushes", tag = "pushes", security(("signature" = [])),
    params(PushListQuery), responses((status = 200, body = PushList), (status = 400, body = ErrorBody)))]
pub async fn list_pushes_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    query: Result<Query<PushListQuery>, QueryRejection>,
) -> ApiResult<Json<PushList>> {
    let Query(query) = query.map_err(|err| ApiErrorKind::InvalidRequest(err.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiErrorKind::InvalidRequest("limit must be between 1 and 1000".into()).into());
    }
    let filter = PushFilter {
        status: query.status,
        from: query.from,
        to: query.to,
        after: query.after,
        limit,
    };
    let page = state.store.pushes_page(app.id, &filter).await?;
    let next = (page.len() == limit as usize).then(|| page.last().map(|p| p.id.clone())).flatten();
    Ok(Json(PushList { pushes: page.into_iter().map(|p| PushView::new(p, false)).collect(), next }))
}

/// Handle the `POST /v1/pushes/{push_id}/cancel` route: a scheduled push will not be sent; a
/// dispatching one stops, and what it has not delivered leaves the inboxes.
#[utoipa::path(post, path = "/v1/pushes/{push_id}/cancel", tag = "pushes", security(("signature" = [])),
    params(("push_id" = String, Path)),
    responses((status = 200, body = PushView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "push_not_cancellable: already done, failed or cancelled")))]
pub async fn cancel_push_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(push_id): Path<String>,
) -> ApiResult<Json<PushView>> {
    Ok(Json(PushView::new(state.dispatcher.cancel(app.id, &push_id).await?, false)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recalled {
    pub push: PushView,
    /// Online devices that were sent a `recall` frame.
    pub online_recalled: u64,
}

/// Handle the `POST /v1/pushes/{push_id}/recall` route: within 24 h of sending, the push
/// leaves the offline inbox and online devices receive a `recall` frame.
#[utoipa::path(post, path = "/v1/pushes/{push_id}/recall", tag = "pushes", security(("signature" = [])),
    params(("push_id" = String, Path)),
    responses((status = 200, body = Recalled), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "push_not_recallable: not sent, already recalled, or sent over 24 h ago")))]
pub async fn recall_push_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(push_id): Path<String>,
) -> ApiResult<Json<Recalled>> {
    let (push, delivery) = state.dispatcher.recall(app.id, &push_id).await?;
    Ok(Json(Recalled { push: PushView::new(push, false), online_recalled: delivery.total_sent() }))
}
