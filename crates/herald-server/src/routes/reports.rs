//! Signed `/v1` routes with what happened: a push's report, an app's days.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::CallingApp;
use crate::error::{ApiErrorKind, ApiResult};
use crate::reports::{self, Day, PushReport};
use crate::routes::docs::ErrorBody;
use crate::state::AppState;

/// Handle the `GET /v1/pushes/{push_id}/report` route: exact counts, also while the push is
/// still dispatching.
#[utoipa::path(get, path = "/v1/pushes/{push_id}/report", tag = "reports", security(("signature" = [])),
    params(("push_id" = String, Path)),
    responses((status = 200, body = PushReport), (status = 404, body = ErrorBody)))]
pub async fn push_report_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    Path(push_id): Path<String>,
) -> ApiResult<Json<PushReport>> {
    Ok(Json(reports::push_report(&state, app.id, &push_id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DaysQuery {
    /// First day, `YYYY-MM-DD` (UTC); default 6 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day, `YYYY-MM-DD` (UTC); default today.
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Days {
    pub days: Vec<Day>,
}

/// Handle the `GET /v1/stats/days` route: per UTC day, pushes, deliveries, opens.
#[utoipa::path(get, path = "/v1/stats/days", tag = "reports", security(("signature" = [])),
    params(DaysQuery), responses((status = 200, body = Days), (status = 400, body = ErrorBody)))]
pub async fn days_route(
    State(state): State<AppState>,
    Extension(CallingApp(app)): Extension<CallingApp>,
    query: Result<Query<DaysQuery>, QueryRejection>,
) -> ApiResult<Json<Days>> {
    let Query(query) = query.map_err(|err| ApiErrorKind::InvalidRequest(err.body_text()))?;
    Ok(Json(Days { days: reports::app_days(&state, app.id, query.from, query.to).await? }))
}
