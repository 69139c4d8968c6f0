//! RongCloud server API (`/push.json`, `/user/...`, `/message/broadcast.json`).

use axum::Router;

use crate::state::AppState;

/// The RongCloud routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
