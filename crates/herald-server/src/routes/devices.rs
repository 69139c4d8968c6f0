//! Signed `/v1` routes over devices.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use herald_core::account::{Device, VendorToken};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::auth::CallingApp;
use crate::directory;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// The account the device belongs to (created if it does not exist).
    pub account: String,
    /// `ios`, `android`, `web` or another lower-case name.
    pub platform: String,
    pub package: String,
    pub vendor_token: Option<VendorToken>,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub account: String,
    #[serde(flatten)]
    pub device: Device,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStats {
    /// Registered devices ("devices covered").
    pub total: u64,
    pub by_platform: BTreeMap<String, u64>,
}

/// Handle the `PUT /v1/devices/{device_id}` route: register or update a device and bind it to
/// an account; a device bound elsewhere moves (the last bind wins).
#[utoipa::path(put, path = "/v1/devices/{device_id}", tag = "devices", security(("signature" = [])),
    params(("device_id" = String, Path)), request_body = RegisterDevice,
    responses((status = 200, body = DeviceView), (status = 400, body = ErrorBody)))]
pub async fn register_device_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(device_id): Path<String>,
    ApiJson(body): ApiJson<RegisterDevice>,
) -> ApiResult<Json<DeviceView>> {
    let device = Device {
        device_id,
        platform: body.platform,
        package: body.package,
        vendor_token: body.vendor_token,
        app_version: body.app_version,
        locale: body.locale,
        time_zone: body.time_zone,
    };
    directory::register_device(&state.directory, &app, &body.account, &device).await?;
    Ok(Json(DeviceView { account: body.account, device }))
}

/// Handle the `GET /v1/devices/{device_id}` route.
#[utoipa::path(get, path = "/v1/devices/{device_id}", tag = "devices", security(("signature" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = DeviceView), (status = 404, body = ErrorBody)))]
pub async fn get_device_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(device_id): Path<String>,
) -> ApiResult<Json<DeviceView>> {
    let (account, device) = state.store.device(app.id, &device_id).await?;
    Ok(Json(DeviceView { account, device }))
}

/// Handle the `DELETE /v1/devices/{device_id}` route.
#[utoipa::path(delete, path = "/v1/devices/{device_id}", tag = "devices", security(("signature" = [])),
    params(("device_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unregister_device_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(device_id): Path<String>,
) -> ApiResult<StatusCode> {
    directory::unregister_device(&state.directory, &app, &device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Handle the `GET /v1/stats/devices` route: registered devices per platform.
#[utoipa::path(get, path = "/v1/stats/devices", tag = "devices", security(("signature" = [])),
    responses((status = 200, body = DeviceStats)))]
pub async fn device_stats_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
) -> ApiResult<Json<DeviceStats>> {
    let counts = state.store.device_counts(app.id).await?;
    Ok(Json(DeviceStats { total: counts.total, by_platform: counts.by_platform }))
}
