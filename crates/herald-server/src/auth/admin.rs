//! The admin API is guarded by one bearer token.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiErrorKind};
use crate::state::AppState;

/// Middleware: lets the request through only with `Authorization: Bearer <admin token>`.
pub async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(state.admin_token.as_bytes())) {
        Ok(next.run(req).await)
    } else {
        Err(ApiErrorKind::AdminRequired.into())
    }
}
