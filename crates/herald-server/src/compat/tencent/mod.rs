//! Tencent Cloud IM push-to-all server API (`POST /v4/{service}/{command}`).
//!
//! A back end written against Tencent's server SDKs points its base URL at herald. Each call
//! is authenticated by `sdkappid` + admin `identifier` + `usersig` (see [`auth`]) and answered
//! in the Tencent envelope with Tencent's error codes ([`envelope`], [`error`]).

pub mod auth;
mod envelope;
mod error;

use axum::Router;

use crate::state::AppState;

pub use envelope::Reply;
pub use error::TencentError;

/// The `/v4/...` routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
