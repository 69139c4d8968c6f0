//! Device routes without a WebSocket: a browser's service worker reports a Web Push
//! notification shown or opened, authenticated with the client token the device's hello uses.
//! Pages and workers of any origin may call them, with the bearer token and never cookies.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::post;
use axum::Router;
use herald_gateway::Identity;
use herald_service::device_reports::DeviceReport;
use serde::Deserialize;
use tower_http::cors::{Any, CorsLayer};

use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

/// How long a browser may reuse the answer to a preflight.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A push shown or opened on a device.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceReportBody {
    /// The push, as `herald_push_id` in the notification's payload.
    pub push_id: String,
    /// The device, as in its hello; it must be bound to the token's account. The token names
    /// an account, not a device.
    pub device_id: String,
}

/// `/v1/client/*`, with CORS for any origin: the bearer token is the credential, so allowing
/// every origin grants nothing a cookie would (credentials are never allowed).
pub fn router() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE])
        .max_age(PREFLIGHT_MAX_AGE);
    Router::new()
        .route("/v1/client/opened", post(opened_route))
        .route("/v1/client/delivered", post(delivered_route))
        .layer(cors)
}

/// Handle the `POST /v1/client/opened` route: the user opened the push's notification on the
/// device; counted in the push's report like the WebSocket's `opened` frame, once per device.
#[utoipa::path(post, path = "/v1/client/opened", tag = "client", security(("client_token" = [])),
    request_body = DeviceReportBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn opened_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DeviceReportBody>,
) -> ApiResult<StatusCode> {
    report(&state, &headers, &body, DeviceReport::Opened).await
}

/// Handle the `POST /v1/client/delivered` route: the push's notification was shown on the
/// device; counted as delivered, once per device.
#[utoipa::path(post, path = "/v1/client/delivered", tag = "client", security(("client_token" = [])),
    request_body = DeviceReportBody,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delivered_route(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<DeviceReportBody>,
) -> ApiResult<StatusCode> {
    report(&state, &headers, &body, DeviceReport::Delivered).await
}

async fn report(
    state: &AppState,
    headers: &HeaderMap,
    body: &DeviceReportBody,
    what: DeviceReport,
) -> ApiResult<StatusCode> {
    let identity = client_identity(state, headers).await?;
    state.device_report(&identity, &body.device_id, &body.push_id, what).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The app and account of the request's `Authorization: Bearer <client token>`, checked as the
/// gateway checks a hello's token.
async fn client_identity(state: &AppState, headers: &HeaderMap) -> ApiResult<Identity> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(ApiErrorKind::BadClientToken)?;
    state.gateway.verify(token).await.map_err(|err| ApiErrorKind::from(err).into())
}
