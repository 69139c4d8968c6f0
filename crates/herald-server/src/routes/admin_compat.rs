//! Admin API over the compat layers of an app: `PUT`/`GET /admin/apps/{id}/compat/{layer}`.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use herald_service::layers::{self, SettingsError};

use crate::compat::Layer;
use crate::error::{ApiErrorKind, ApiResult};
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

fn target(id: &str, layer: &str) -> Result<(i64, Layer), ApiErrorKind> {
    let id = id.parse().map_err(|_| ApiErrorKind::NotFound { what: "app", id: id.to_owned() })?;
    let layer = Layer::parse(layer)
        .ok_or_else(|| ApiErrorKind::NotFound { what: "compat layer", id: layer.to_owned() })?;
    Ok((id, layer))
}

/// Checks a layer's settings; returns them normalised with the id its clients use.
fn checked(layer: Layer, body: Value) -> Result<(Option<String>, Value), ApiErrorKind> {
    layers::checked_settings(layer, body).map_err(|err| match err {
        SettingsError::Json(err) => ApiErrorKind::InvalidJson(err.to_string()),
        SettingsError::Incomplete(message) => ApiErrorKind::InvalidRequest(message.into()),
    })
}

/// Handle the `PUT /admin/apps/{id}/compat/{layer}` route: enable a layer (`tencent`,
/// `rongcloud`) for the app with its settings; absent fields take the layer's defaults.
#[utoipa::path(put, path = "/admin/apps/{id}/compat/{layer}", tag = "admin",
    security(("admin_token" = [])), params(("id" = i64, Path), ("layer" = String, Path)),
    request_body(content = Object, description = "TencentSettings or RongCloudSettings"),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_compat_route(
    State(state): State<AppState>,
    Path((id, layer)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    let (id, layer) = target(&id, &layer)?;
    let (external_id, settings) = checked(layer, body)?;
    layers::configure(&state.store, id, layer, external_id.as_deref(), &settings).await?;
    Ok(Json(settings))
}

/// Handle the `GET /admin/apps/{id}/compat/{layer}` route.
#[utoipa::path(get, path = "/admin/apps/{id}/compat/{layer}", tag = "admin",
    security(("admin_token" = [])), params(("id" = i64, Path), ("layer" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_compat_route(
    State(state): State<AppState>,
    Path((id, layer)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (id, layer) = target(&id, &layer)?;
    state.store.app(id).await?;
    let settings = state.store.compat_layer(id, layer.as_str()).await?.ok_or_else(|| {
        ApiErrorKind::NotFound { what: "compat layer", id: format!("{id}/{}", layer.as_str()) }
    })?;
    Ok(Json(
        serde_json::from_str(&settings).map_err(|err| ApiErrorKind::Internal(err.to_string()))?,
    ))
}
