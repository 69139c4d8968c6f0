//! Tencent Cloud IM push-to-all server API (`POST /v4/{service}/{command}`).

use axum::Router;

use crate::state::AppState;

/// The `/v4/...` routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
