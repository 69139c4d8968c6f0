//! Operations endpoints: liveness, readiness, Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// Handle the `GET /healthz` route: the process is up.
pub async fn healthz_route() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Handle the `GET /readyz` route: the store answers, so requests can be served.
pub async fn readyz_route(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(err) => {
            tracing::warn!(%err, "store not ready");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}

/// Handle the `GET /metrics` route: Prometheus text format.
pub async fn metrics_route(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
