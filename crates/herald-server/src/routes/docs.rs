//! The OpenAPI document of the native API, generated from the handlers, and a reference page
//! that renders it in the browser without fetching anything from elsewhere.

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{
    accounts, admin_apps, admin_compat, app, attributes, audience, client, devices, ops, pushes,
    reports, tags, vendors, webhooks,
};

/// The error envelope of every failed call.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_signature`, `limit_exceeded`.
    pub code: String,
    pub message: String,
    /// For limit errors: the name of the limit.
    pub limit: Option<String>,
    /// For limit errors: the limit's value.
    pub value: Option<u64>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "herald", description = include_str!("docs_intro.md")),
    paths(
        admin_apps::create_app_route,
        admin_apps::list_apps_route,
        admin_apps::get_app_route,
        admin_apps::update_app_route,
        admin_apps::rotate_secret_route,
        admin_apps::delete_app_route,
        admin_compat::set_compat_route,
        admin_compat::get_compat_route,
        ops::cluster_route,
        app::get_calling_app_route,
        accounts::import_accounts_route,
        accounts::bulk_import_route,
        accounts::list_accounts_route,
        accounts::get_account_route,
        accounts::delete_account_route,
        devices::register_device_route,
        devices::get_device_route,
        devices::unregister_device_route,
        devices::device_stats_route,
        tags::add_tags_route,
        tags::remove_tags_route,
        tags::set_tags_route,
        tags::clear_tags_route,
        tags::get_tags_route,
        attributes::get_attribute_names_route,
        attributes::set_attribute_names_route,
        attributes::set_attributes_route,
        attributes::remove_attributes_route,
        attributes::get_attributes_route,
        audience::estimate_route,
        pushes::create_push_route,
        pushes::get_push_route,
        pushes::create_client_token_route,
        pushes::list_pushes_route,
        pushes::cancel_push_route,
        pushes::recall_push_route,
        reports::push_report_route,
        reports::days_route,
        webhooks::set_webhook_route,
        webhooks::get_webhook_route,
        webhooks::delete_webhook_route,
        vendors::set_vendor_route,
        vendors::get_vendor_route,
        vendors::delete_vendor_route,
        client::opened_route,
        client::delivered_route,
    ),
    components(schemas(ErrorBody, ErrorDetail, client::DeviceReportBody)),
    modifiers(&Security),
    tags((name = "admin", description = "Operator API; bearer admin token"),
         (name = "app", description = "Signed app API"),
         (name = "accounts", description = "Accounts of the app"),
         (name = "devices", description = "Client installs bound to accounts"),
         (name = "tags", description = "Tags of accounts"),
         (name = "attributes", description = "Attribute names and values"),
         (name = "audience", description = "Audience expressions"),
         (name = "pushes", description = "Pushes and client tokens"),
         (name = "reports", description = "What happened to pushes"),
         (name = "webhooks", description = "Events posted to the app's back end"),
         (name = "vendors", description = "APNs, FCM and Web Push (VAPID) credentials"),
         (name = "client", description = "Device reports without a WebSocket; bearer client token"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        document_refusals(openapi);
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "client_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The signature needs four headers; OpenAPI can name only one, the rest are in the intro.
        components.add_security_scheme(
            "signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-herald-signature",
                "HMAC-SHA256 signature; see the description for the canonical string",
            ))),
        );
    }
}

/// Refusals every handler may answer with the error envelope, whether or not it says so: 401
/// where an operation needs a credential (missing, wrong or replayed), 400 where it reads a
/// query string (an unknown or malformed parameter is refused, never ignored).
fn document_refusals(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    let unauthorized = error_response("credentials missing, wrong, expired or replayed");
    let bad_query = error_response("a query parameter unknown, malformed or out of range");
    for item in openapi.paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let queried = operation.parameters.as_ref().is_some_and(|parameters| {
                parameters.iter().any(|p| p.parameter_in == ParameterIn::Query)
            });
            let responses = &mut operation.responses.responses;
            if secured {
                responses.entry("401".into()).or_insert_with(|| unauthorized.clone().into());
            }
            if queried {
                responses.entry("400".into()).or_insert_with(|| bad_query.clone().into());
            }
        }
    }
}

/// A response carrying the error envelope.
fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
        )
        .build()
}

/// Handle the `GET /openapi.json` route.
pub async fn openapi_route() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// Handle the `GET /docs` route: the API reference page.
pub async fn reference_page_route() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(include_str!("docs.html")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/v1` and `/admin` path the router serves is in the document, so that tools reading
    /// the document (the contract fuzzing, the isolation test) see every route.
    #[test]
    fn every_routed_path_is_documented() {
        let doc = ApiDoc::openapi();
        let routed = [include_str!("mod.rs"), include_str!("client.rs")]
            .into_iter()
            .flat_map(|source| source.split('"').skip(1).step_by(2))
            .filter(|text| text.starts_with("/v1/") || text.starts_with("/admin/"))
            // The WebSocket is described in docs/protocol.md; OpenAPI has no words for it.
            .filter(|path| *path != "/v1/connect")
            .collect::<Vec<_>>();
        assert!(routed.len() > 30, "{routed:?}");
        let app = &doc.paths.paths["/v1/app"];
        let get = app.get.as_ref().map(|op| op.responses.responses.contains_key("401"));
        assert_eq!(get, Some(true), "signed operations document their refusal");
        for path in routed {
            assert!(doc.paths.paths.contains_key(path), "{path} is routed but not documented");
        }
    }

    /// What the single node answers (`{"mode": "single"}`) and a rotation without a body are
    /// within the document.
    #[test]
    fn the_single_node_overview_and_a_bodyless_rotation_are_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        let cluster = &doc["components"]["schemas"]["ClusterView"];
        assert_eq!(cluster["required"], serde_json::json!(["mode"]), "{cluster}");
        assert!(cluster.get("oneOf").is_none() && cluster.get("allOf").is_none(), "{cluster}");
        let rotate = &doc["paths"]["/admin/apps/{id}/rotate-secret"]["post"];
        assert_ne!(rotate["requestBody"]["required"], true, "{rotate}");
        assert!(rotate["responses"].get("400").is_some(), "{rotate}");
    }

    /// A parameter documented in the path is a placeholder of the path, and a route's query
    /// parameters are documented in the query: a client generated from the document (or a
    /// fuzzer) would otherwise drop them.
    #[test]
    fn parameters_are_where_the_route_reads_them() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, operations) in paths {
            let operations = operations.as_object().expect("operations");
            for (method, operation) in operations {
                let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
                for parameter in parameters {
                    let name = parameter["name"].as_str().expect("a name");
                    let placeholder = path.contains(&format!("{{{name}}}"));
                    let place = parameter["in"].as_str().expect("a place");
                    assert_eq!(place == "path", placeholder, "{method} {path}: {name} in {place}");
                }
            }
        }
        let pushes = &doc["paths"]["/v1/pushes"]["get"]["parameters"];
        assert!(
            pushes.as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "limit")),
            "{pushes}"
        );
    }
}
