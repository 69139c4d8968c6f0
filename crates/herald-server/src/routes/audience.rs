//! Signed `/v1` route that sizes an audience without pushing.

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::CallingApp;
use crate::directory::{self, Estimate};
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    /// An audience expression (docs/audience.md), e.g. `{"tag":"vip"}`.
    #[schema(value_type = Object)]
    pub audience: Value,
}

/// Handle the `POST /v1/audience/estimate` route.
#[utoipa::path(post, path = "/v1/audience/estimate", tag = "audience", security(("signature" = [])),
    request_body = EstimateRequest,
    responses((status = 200, body = Estimate), (status = 400, body = ErrorBody)))]
pub async fn estimate_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    ApiJson(body): ApiJson<EstimateRequest>,
) -> ApiResult<Json<Estimate>> {
    Ok(Json(directory::estimate(&state.directory, &app, &body.audience).await?))
}
