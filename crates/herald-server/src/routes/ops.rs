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
    // The gateway's sizes are read when asked rather than kept current on every frame.
    let gateway = &state.gateway;
    metrics::gauge!("herald_gateway_connections").set(gateway.connection_count() as f64);
    metrics::gauge!("herald_gateway_unidentified").set(gateway.unidentified_count() as f64);
    metrics::gauge!("herald_gateway_queued_frames").set(gateway.queued_frames() as f64);
    metrics::gauge!("herald_gateway_pending_acks").set(gateway.pending_acks() as f64);
    crate::telemetry::record_heap();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// The cluster as the answering node sees it.
#[derive(Debug, serde::Serialize)]
pub struct ClusterView {
    /// `single` (one node on its own) or `cluster`.
    pub mode: String,
    #[serde(flatten)]
    pub cluster: Option<crate::cluster::ClusterOverview>,
}

/// Written out rather than derived: a flattened `Option` derives as `oneOf [null, …]`, which
/// the single node's `{"mode": "single"}` does not match. The overview's fields are there in
/// cluster mode only.
impl utoipa::PartialSchema for ClusterView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Type};
        let mode = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["single", "cluster"]))
            .description(Some("`single` (one node on its own) or `cluster`."));
        let leases = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::RefOr(
                Object::with_type(Type::String).into(),
            )))
            .description(Some("App id to the node holding its dispatch lease (cluster mode)."));
        ObjectBuilder::new()
            .property("mode", mode)
            .required("mode")
            .property("node", Object::with_type(Type::String))
            .property("bus_connected", Object::with_type(Type::Boolean))
            .property("nodes", ArrayBuilder::new().items(Object::with_type(Type::Object)))
            .property("leases", leases)
            .description(Some("The cluster as the answering node sees it."))
            .into()
    }
}

impl utoipa::ToSchema for ClusterView {}

/// Handle the `GET /v1/cluster` route: nodes, their connections, lease holders and bus lag.
#[utoipa::path(get, path = "/v1/cluster", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, body = ClusterView)))]
pub async fn cluster_route(State(state): State<AppState>) -> Json<ClusterView> {
    let (mode, cluster) = match &state.cluster {
        Some(cluster) => ("cluster", Some(cluster.overview().await)),
        None => ("single", None),
    };
    Json(ClusterView { mode: mode.into(), cluster })
}
