//! Signed `/v1` routes over the app's vendor credentials (APNs, FCM, Web Push).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::Value;

use crate::auth::CallingApp;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

/// Handle the `PUT /v1/vendors/{vendor}` route: set or replace the app's `apns` credentials
/// (`key_p8`, `key_id`, `team_id`, `topic`, `environment`), `fcm` credentials
/// (`service_account_json`, `project_id`) or `webpush` VAPID credentials (`private_key`,
/// `public_key`, `subject`). Answers them with secrets redacted.
#[utoipa::path(put, path = "/v1/vendors/{vendor}", tag = "vendors", security(("signature" = [])),
    params(("vendor" = String, Path, description = "apns, fcm or webpush")),
    request_body(content = Object, description = "ApnsCredentials, FcmCredentials or WebPushCredentials"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_vendor_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(vendor): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.set_vendor_credentials(&app, &vendor, body).await?))
}

/// Handle the `GET /v1/vendors/{vendor}` route: the credentials with secrets redacted.
#[utoipa::path(get, path = "/v1/vendors/{vendor}", tag = "vendors", security(("signature" = [])),
    params(("vendor" = String, Path)), responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_vendor_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(vendor): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.vendors.get(&state.store, &app, &vendor).await?))
}

/// Handle the `DELETE /v1/vendors/{vendor}` route.
#[utoipa::path(delete, path = "/v1/vendors/{vendor}", tag = "vendors", security(("signature" = [])),
    params(("vendor" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_vendor_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(vendor): Path<String>,
) -> ApiResult<StatusCode> {
    state.delete_vendor_credentials(&app, &vendor).await?;
    Ok(StatusCode::NO_CONTENT)
}
