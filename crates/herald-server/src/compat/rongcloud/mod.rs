//! RongCloud server API (`/push.json`, `/user/...`, `/message/broadcast.json`), so that a back
//! end written against RongCloud's server SDKs pushes through herald by changing its base URL.
//!
//! Every call is `POST`, signed with the herald app key and secret ([`auth`]), refused with code
//! 1009 until the operator enables the layer for the app (`PUT /admin/apps/{id}/compat/rongcloud`),
//! and answered in JSON or XML after the path's extension ([`envelope`]). The calls translate
//! into herald's directory and push operations; docs/migrate-rongcloud.md is the guide.

mod audience;
mod auth;
mod broadcast;
mod call;
mod envelope;
mod error;
mod form;
mod notification;
mod push;
mod tags;
mod user;

use axum::handler::Handler;
use axum::routing::post;
use axum::Router;

use crate::state::AppState;

/// The RongCloud routes, each under its `.json` and its `.xml` path.
pub fn router() -> Router<AppState> {
    let router = Router::new();
    let router = both(router, "/user/getToken", user::get_token_route);
    let router = both(router, "/user/checkOnline", user::check_online_route);
    let router = both(router, "/user/tag/set", tags::set_route);
    let router = both(router, "/user/tag/batch/set", tags::batch_set_route);
    let router = both(router, "/user/tags/get", tags::get_route);
    let router = both(router, "/push", push::push_route);
    both(router, "/message/broadcast", broadcast::broadcast_route)
}

/// Routes `POST {stem}.json` and `POST {stem}.xml` to `handler`; the extension picks the
/// answer format.
fn both<H, T>(router: Router<AppState>, stem: &str, handler: H) -> Router<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    router
        .route(&format!("{stem}.json"), post(handler.clone()))
        .route(&format!("{stem}.xml"), post(handler))
}
