//! RongCloud server API (`/push.json`, `/user/...`, `/message/broadcast.json`), so that a back
//! end written against RongCloud's server SDKs pushes through herald by changing its base URL.
//!
//! Every call is `POST`, signed with the herald app key and secret ([`auth`]), refused with code
//! 1009 until the operator enables the layer for the app (`PUT /admin/apps/{id}/compat/rongcloud`),
//! and answered in JSON or XML after the path's extension ([`envelope`]). The calls translate
//! into herald's directory and push operations; docs/migrate-rongcloud.md is the guide.

mod audience;
pub mod auth;
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

pub use envelope::{Format, Reply};
pub use error::RongError;

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

/// Reads and checks the body of the call at `path` (such as `/push.json`) as its handler does
/// before it touches the store. The fuzz targets in `fuzz/` drive it.
///
/// # Errors
/// The refusal the call would answer with; a path the layer does not route is a parameter
/// error.
pub fn check_request(path: &str, body: &[u8]) -> Result<(), RongError> {
    let stem = path.strip_suffix(".json").or_else(|| path.strip_suffix(".xml"));
    match stem {
        Some("/user/getToken" | "/user/checkOnline") => user::read_user(body).map(drop),
        Some("/user/tag/set") => tags::read_set(body).map(drop),
        Some("/user/tag/batch/set") => tags::read_batch_set(body).map(drop),
        Some("/user/tags/get") => tags::read_get(body).map(drop),
        Some("/push") => push::read(body).map(drop),
        Some("/message/broadcast") => broadcast::read(body).map(drop),
        _ => Err(RongError::param(format!("no call at {path}"))),
    }
}
