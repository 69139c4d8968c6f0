//! API errors: one kind enum, mapped to HTTP status and a stable code in one place each.
//!
//! # Format
//! ```json
//! {"error":{"code":"limit_exceeded","message":"...","limit":"tag_bytes","value":50}}
//! ```

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_core::audience::AudienceError;
use herald_core::limits::InvalidLimit;
use herald_core::push::PushError;
use herald_core::LimitBreach;
use herald_gateway::AuthError;
use herald_service::ServiceError;
use herald_store::StoreError;
use serde_json::{json, Map, Value};

/// Everything an API call can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiErrorKind {
    #[error("admin token missing or wrong (send `Authorization: Bearer <token>`)")]
    AdminRequired,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("unknown app key")]
    UnknownApp,
    /// A device's client token that is missing, malformed, forged, expired or of an unknown
    /// app; which of these is not told, as the WebSocket's hello does not tell it.
    #[error("client token missing, bad or expired (send `Authorization: Bearer <client token>`)")]
    BadClientToken,
    #[error("signature does not match (check the canonical string and the app secret)")]
    BadSignature,
    #[error("timestamp {given} is more than {window} s away from server time {now}")]
    StaleTimestamp { given: i64, now: i64, window: u64 },
    #[error("nonce must be 8 to 64 characters of [A-Za-z0-9_-]")]
    BadNonce,
    #[error("nonce was already used within the last {window} s")]
    ReplayedNonce { window: u64 },
    #[error("malformed JSON body: {0}")]
    InvalidJson(String),
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    InvalidLimit(#[from] InvalidLimit),
    #[error(transparent)]
    LimitExceeded(#[from] LimitBreach),
    #[error(transparent)]
    InvalidAudience(#[from] AudienceError),
    #[error("{0}")]
    InvalidSubscription(String),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("no route {0}")]
    NoRoute(String),
    #[error("{0}")]
    Conflict(String),
    /// A push operation that does not fit the push's state (cancel a sent push, recall one
    /// never sent); `code` says which.
    #[error("{message}")]
    PushState { code: &'static str, message: String },
    #[error("limit {limit} is {value}; retry in {retry_after_secs} s")]
    RateLimited { limit: &'static str, value: u64, retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("storage full: {0}")]
    StorageFull(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiErrorKind {
    /// HTTP status of each kind; exhaustive so that a new kind forces a decision.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::AdminRequired
            | Self::MissingHeader(_)
            | Self::UnknownApp
            | Self::BadClientToken
            | Self::BadSignature
            | Self::StaleTimestamp { .. }
            | Self::BadNonce
            | Self::ReplayedNonce { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidJson(_)
            | Self::InvalidRequest(_)
            | Self::InvalidLimit(_)
            | Self::InvalidAudience(_)
            | Self::InvalidSubscription(_) => StatusCode::BAD_REQUEST,
            Self::LimitExceeded(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound { .. } | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::PushState { .. } => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::StorageFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AdminRequired => "admin_required",
            Self::MissingHeader(_) => "missing_signature",
            Self::UnknownApp => "unknown_app",
            Self::BadClientToken => "bad_client_token",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::BadNonce => "bad_nonce",
            Self::ReplayedNonce { .. } => "replayed_nonce",
            Self::InvalidJson(_) => "invalid_json",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidLimit(_) => "invalid_limit",
            Self::LimitExceeded(_) => "limit_exceeded",
            Self::InvalidAudience(_) => "invalid_audience",
            Self::InvalidSubscription(_) => "invalid_subscription",
            Self::NotFound { .. } => "not_found",
            Self::NoRoute(_) => "no_route",
            Self::Conflict(_) => "conflict",
            Self::PushState { code, .. } => code,
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::StorageFull(_) => "storage_full",
            Self::Internal(_) => "internal",
        }
    }

    /// Fields beside `code` and `message` that let a client act without parsing text.
    fn details(&self, out: &mut Map<String, Value>) {
        match self {
            Self::LimitExceeded(breach) => {
                out.insert("limit".into(), json!(breach.limit));
                out.insert("value".into(), json!(breach.value));
                out.insert("actual".into(), json!(breach.actual));
            }
            Self::BodyTooLarge { limit } => {
                out.insert("limit".into(), json!("max_body_bytes"));
                out.insert("value".into(), json!(limit));
            }
            Self::InvalidLimit(invalid) => {
                out.insert("limit".into(), json!(invalid.field));
                out.insert("min".into(), json!(invalid.min));
                out.insert("max".into(), json!(invalid.max));
            }
            Self::InvalidAudience(err) => {
                out.insert("path".into(), json!(err.path));
                if let Ok(Value::Object(kind)) = serde_json::to_value(&err.kind) {
                    out.extend(kind);
                }
            }
            Self::RateLimited { limit, value, retry_after_secs } => {
                out.insert("limit".into(), json!(limit));
                out.insert("value".into(), json!(value));
                out.insert("retry_after_secs".into(), json!(retry_after_secs));
            }
            Self::MissingHeader(header) => {
                out.insert("header".into(), json!(header));
            }
            _ => {}
        }
    }
}

/// The error type of every handler.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ApiErrorKind,
}

impl<T> From<T> for ApiError
where
    ApiErrorKind: From<T>,
{
    fn from(item: T) -> Self {
        ApiError { kind: ApiErrorKind::from(item) }
    }
}

impl From<ServiceError> for ApiErrorKind {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidRequest(message) => Self::InvalidRequest(message),
            ServiceError::InvalidLimit(invalid) => Self::InvalidLimit(invalid),
            ServiceError::LimitExceeded(breach) => Self::LimitExceeded(breach),
            ServiceError::InvalidAudience(err) => Self::InvalidAudience(err),
            err @ ServiceError::InvalidSubscription(_) => {
                Self::InvalidSubscription(err.to_string())
            }
            ServiceError::NotFound { what, id } => Self::NotFound { what, id },
            ServiceError::Conflict(message) => Self::Conflict(message),
            ServiceError::PushState { code, message } => Self::PushState { code, message },
            ServiceError::RateLimited { limit, value, retry_after_secs } => {
                Self::RateLimited { limit, value, retry_after_secs }
            }
            ServiceError::Unavailable(message) => Self::Unavailable(message),
            ServiceError::StorageFull(message) => Self::StorageFull(message),
            ServiceError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<AuthError> for ApiErrorKind {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unavailable(detail) => {
                tracing::warn!(%detail, "client token check unavailable");
                Self::Unavailable("authentication is unavailable, retry later".into())
            }
            AuthError::Invalid | AuthError::Expired | AuthError::UnknownApp => Self::BadClientToken,
        }
    }
}

impl From<PushError> for ApiErrorKind {
    fn from(err: PushError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<StoreError> for ApiErrorKind {
    fn from(err: StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        match &self.kind {
            // The detail stays in the logs; the client learns only that it was not its fault.
            ApiErrorKind::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiErrorKind::Unavailable(detail) | ApiErrorKind::StorageFull(detail) => {
                tracing::warn!(%detail, %status, "request refused: the server cannot take it now")
            }
            _ => {}
        }
        let mut body = Map::new();
        body.insert("code".into(), json!(self.kind.code()));
        body.insert("message".into(), json!(self.kind.to_string()));
        self.kind.details(&mut body);
        let mut response = (status, axum::Json(json!({ "error": body }))).into_response();
        if let ApiErrorKind::RateLimited { retry_after_secs, .. } = self.kind {
            if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_breach_names_limit_and_value() {
        let err = ApiError::from(LimitBreach { limit: "tag_bytes", value: 50, actual: 51 });
        assert_eq!(err.kind.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut out = Map::new();
        err.kind.details(&mut out);
        assert_eq!(out["limit"], "tag_bytes");
        assert_eq!(out["value"], 50);
    }

    #[test]
    fn internal_detail_is_not_shown() {
        let kind = ApiErrorKind::Internal("database file is locked".into());
        assert_eq!(kind.to_string(), "internal error");
    }
}
