//! HTTP routes: the admin API, the signed `/v1` API and the operations endpoints.

mod accounts;
mod admin_apps;
mod admin_compat;
mod app;
mod attributes;
mod audience;
mod client;
mod devices;
pub(crate) mod docs;
mod ops;
mod pushes;
mod reports;
mod tags;
mod vendors;
mod webhooks;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::{require_admin, require_signature};
use crate::error::{ApiError, ApiErrorKind};
use crate::state::AppState;
use crate::telemetry::track_metrics;

pub use docs::ApiDoc;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/apps", post(admin_apps::create_app_route).get(admin_apps::list_apps_route))
        .route(
            "/admin/apps/{id}",
            get(admin_apps::get_app_route)
                .patch(admin_apps::update_app_route)
                .delete(admin_apps::delete_app_route),
        )
        .route("/admin/apps/{id}/rotate-secret", post(admin_apps::rotate_secret_route))
        .route("/v1/cluster", get(ops::cluster_route))
        .route(
            "/admin/apps/{id}/compat/{layer}",
            put(admin_compat::set_compat_route).get(admin_compat::get_compat_route),
        )
        .route_layer(from_fn_with_state(state.clone(), require_admin));
    let signed = Router::new()
        .route("/v1/app", get(app::get_calling_app_route))
        .route("/v1/accounts", get(accounts::list_accounts_route))
        .route("/v1/accounts/import", post(accounts::import_accounts_route))
        .route(
            crate::auth::BULK_IMPORT_PATH,
            post(accounts::bulk_import_route)
                .layer(DefaultBodyLimit::max(state.settings.max_import_body_bytes)),
        )
        .route(
            "/v1/accounts/{account}",
            get(accounts::get_account_route).delete(accounts::delete_account_route),
        )
        .route(
            "/v1/devices/{device_id}",
            put(devices::register_device_route)
                .get(devices::get_device_route)
                .delete(devices::unregister_device_route),
        )
        .route("/v1/stats/devices", get(devices::device_stats_route))
        .route("/v1/tags/add", post(tags::add_tags_route))
        .route("/v1/tags/remove", post(tags::remove_tags_route))
        .route("/v1/tags/set", post(tags::set_tags_route))
        .route("/v1/tags/clear", post(tags::clear_tags_route))
        .route("/v1/tags/get", post(tags::get_tags_route))
        .route(
            "/v1/attributes/names",
            get(attributes::get_attribute_names_route).put(attributes::set_attribute_names_route),
        )
        .route("/v1/attributes/set", post(attributes::set_attributes_route))
        .route("/v1/attributes/remove", post(attributes::remove_attributes_route))
        .route("/v1/attributes/get", post(attributes::get_attributes_route))
        .route("/v1/audience/estimate", post(audience::estimate_route))
        .route("/v1/pushes", post(pushes::create_push_route).get(pushes::list_pushes_route))
        .route("/v1/pushes/{push_id}", get(pushes::get_push_route))
        .route("/v1/pushes/{push_id}/cancel", post(pushes::cancel_push_route))
        .route("/v1/pushes/{push_id}/recall", post(pushes::recall_push_route))
        .route("/v1/pushes/{push_id}/report", get(reports::push_report_route))
        .route("/v1/stats/days", get(reports::days_route))
        .route(
            "/v1/vendors/{vendor}",
            put(vendors::set_vendor_route)
                .get(vendors::get_vendor_route)
                .delete(vendors::delete_vendor_route),
        )
        .route(
            "/v1/webhook",
            put(webhooks::set_webhook_route)
                .get(webhooks::get_webhook_route)
                .delete(webhooks::delete_webhook_route),
        )
        .route("/v1/client-tokens", post(pushes::create_client_token_route))
        .route_layer(from_fn_with_state(state.clone(), require_signature));
    // Devices authenticate with a client token in their hello, not with a request signature.
    let connect = Router::new().route("/v1/connect", get(herald_gateway::connect));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz_route))
        .route("/readyz", get(ops::readyz_route))
        .route("/metrics", get(ops::metrics_route))
        .route("/openapi.json", get(docs::openapi_route))
        .route("/docs", get(docs::reference_page_route));

    Router::new()
        .merge(admin)
        .merge(signed)
        .merge(connect)
        .merge(client::router())
        .merge(crate::compat::tencent::router())
        .merge(crate::compat::rongcloud::router())
        .merge(ops)
        .merge(herald_console::router())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(from_fn(track_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id =
                        req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_failure(log_failure),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn no_route(uri: Uri) -> ApiError {
    ApiErrorKind::NoRoute(uri.path().to_owned()).into()
}

/// Logs a failed response. A 503 is a refusal by design (a full gateway turning connections
/// away, a store that cannot take the request now), logged where it is decided: under a
/// connection flood, an error line per refused connection would bury the real errors.
fn log_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    match class {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(?latency, "refused with 503")
        }
        other => tracing::error!(classification = %other, ?latency, "response failed"),
    }
}
