//! Errors of the RongCloud layer and their RongCloud codes.
//!
//! Every refusal of a RongCloud call is one of herald's [`ApiErrorKind`]s (shared with the
//! native API) or one of the two conditions only this layer knows (no POST data, layer not
//! enabled). [`RongError::code_and_status`] is the one place that turns them into the codes and
//! HTTP statuses of spec/compat.md section 2:
//!
//! | code | HTTP | meaning |
//! |---|---|---|
//! | 1000 | 500 | internal error |
//! | 1002 | 400 | parameter error |
//! | 1003 | 400 | no POST data |
//! | 1004 | 401 | signature: missing, wrong, stale timestamp, replayed nonce, unknown App-Key |
//! | 1005 | 400 | parameter too long (a string or a list past its limit) |
//! | 1008 | 429 | rate limited |
//! | 1009 | 430 | feature not enabled (the layer is off for the app) |

use axum::http::StatusCode;
use herald_core::account::FieldError;
use herald_core::audience::AudienceErrorKind;
use herald_core::LimitBreach;

use crate::error::ApiErrorKind;

/// Why a RongCloud call was refused.
#[derive(Debug, thiserror::Error)]
pub enum RongError {
    #[error(transparent)]
    Api(#[from] ApiErrorKind),
    /// The body of a call that needs parameters is empty.
    #[error("no POST data")]
    NoPostData,
    /// The operator has not enabled the layer for this app.
    #[error("the RongCloud API is not enabled for this app")]
    NotEnabled,
    /// A malformed authentication header (the parts herald's own signature scheme lacks).
    #[error("{0}")]
    Auth(String),
}

impl From<herald_service::ServiceError> for RongError {
    fn from(err: herald_service::ServiceError) -> Self {
        RongError::Api(err.into())
    }
}

impl From<LimitBreach> for RongError {
    fn from(breach: LimitBreach) -> Self {
        RongError::Api(ApiErrorKind::LimitExceeded(breach))
    }
}

impl RongError {
    /// A parameter that is missing, of the wrong type or not allowed (1002).
    pub fn param(message: impl Into<String>) -> Self {
        RongError::Api(ApiErrorKind::InvalidRequest(message.into()))
    }

    /// A field refused by herald's rules, named as the request names it; too long is 1005.
    pub fn field(name: &str, err: FieldError) -> Self {
        match err {
            FieldError::Limit(breach) => breach.into(),
            FieldError::TooLong { field, max, actual } => LimitBreach {
                limit: field,
                value: u64::try_from(max).unwrap_or(u64::MAX),
                actual: u64::try_from(actual).unwrap_or(u64::MAX),
            }
            .into(),
            other => RongError::param(format!("{name}: {other}")),
        }
    }

    /// The RongCloud code and HTTP status; exhaustive, so a new kind forces a decision.
    pub fn code_and_status(&self) -> (u32, StatusCode) {
        const INTERNAL: (u32, StatusCode) = (1000, StatusCode::INTERNAL_SERVER_ERROR);
        const PARAM: (u32, StatusCode) = (1002, StatusCode::BAD_REQUEST);
        const SIGNATURE: (u32, StatusCode) = (1004, StatusCode::UNAUTHORIZED);
        const TOO_LONG: (u32, StatusCode) = (1005, StatusCode::BAD_REQUEST);
        match self {
            RongError::NoPostData => (1003, StatusCode::BAD_REQUEST),
            RongError::NotEnabled => (1009, not_enabled_status()),
            RongError::Auth(_) => SIGNATURE,
            RongError::Api(kind) => match kind {
                ApiErrorKind::AdminRequired
                | ApiErrorKind::MissingHeader(_)
                | ApiErrorKind::UnknownApp
                | ApiErrorKind::BadClientToken
                | ApiErrorKind::BadSignature
                | ApiErrorKind::StaleTimestamp { .. }
                | ApiErrorKind::BadNonce
                | ApiErrorKind::ReplayedNonce { .. } => SIGNATURE,
                ApiErrorKind::InvalidJson(_)
                | ApiErrorKind::InvalidRequest(_)
                | ApiErrorKind::InvalidLimit(_)
                | ApiErrorKind::InvalidSubscription(_)
                | ApiErrorKind::NotFound { .. }
                | ApiErrorKind::NoRoute(_)
                | ApiErrorKind::Conflict(_)
                | ApiErrorKind::PushState { .. } => PARAM,
                ApiErrorKind::LimitExceeded(_) | ApiErrorKind::BodyTooLarge { .. } => TOO_LONG,
                ApiErrorKind::InvalidAudience(err) => match err.kind {
                    AudienceErrorKind::TagTooLong { .. }
                    | AudienceErrorKind::ValueTooLong { .. }
                    | AudienceErrorKind::TooManyAccounts { .. }
                    | AudienceErrorKind::TooManyNodes { .. }
                    | AudienceErrorKind::TooDeep { .. } => TOO_LONG,
                    AudienceErrorKind::NotAnObject
                    | AudienceErrorKind::KeyCount { .. }
                    | AudienceErrorKind::UnknownNode { .. }
                    | AudienceErrorKind::UnknownField { .. }
                    | AudienceErrorKind::MissingField { .. }
                    | AudienceErrorKind::EqAndIn
                    | AudienceErrorKind::WrongType { .. }
                    | AudienceErrorKind::EmptyList
                    | AudienceErrorKind::EmptyTag
                    | AudienceErrorKind::EmptyValue
                    | AudienceErrorKind::EmptyAttributeName
                    | AudienceErrorKind::EmptyAccount
                    | AudienceErrorKind::EmptyPackage
                    | AudienceErrorKind::ControlCharacter { .. }
                    | AudienceErrorKind::InvalidPlatform { .. }
                    | AudienceErrorKind::UnknownAttribute { .. } => PARAM,
                },
                ApiErrorKind::RateLimited { .. } => (1008, StatusCode::TOO_MANY_REQUESTS),
                ApiErrorKind::Unavailable(_)
                | ApiErrorKind::StorageFull(_)
                | ApiErrorKind::Internal(_) => INTERNAL,
            },
        }
    }

    /// Seconds to wait before retrying, for rate limits.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RongError::Api(ApiErrorKind::RateLimited { retry_after_secs, .. }) => {
                Some(*retry_after_secs)
            }
            _ => None,
        }
    }
}

/// RongCloud answers "feature not enabled" with the non-standard status 430.
fn not_enabled_status() -> StatusCode {
    // 430 is within 100..=999, which is all `from_u16` checks.
    StatusCode::from_u16(430).unwrap_or(StatusCode::FORBIDDEN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(err: RongError) -> (u32, u16) {
        let (code, status) = err.code_and_status();
        (code, status.as_u16())
    }

    #[test]
    fn every_code_of_the_spec() {
        assert_eq!(code(ApiErrorKind::Internal("db".into()).into()), (1000, 500));
        assert_eq!(code(RongError::param("userId is required")), (1002, 400));
        assert_eq!(code(RongError::NoPostData), (1003, 400));
        assert_eq!(code(ApiErrorKind::BadSignature.into()), (1004, 401));
        assert_eq!(code(ApiErrorKind::ReplayedNonce { window: 300 }.into()), (1004, 401));
        assert_eq!(code(RongError::Auth("bad timestamp".into())), (1004, 401));
        let breach = LimitBreach { limit: "rongcloud.tag_bytes", value: 40, actual: 41 };
        assert_eq!(code(breach.into()), (1005, 400));
        let limited =
            ApiErrorKind::RateLimited { limit: "layer.per_hour", value: 2, retry_after_secs: 10 };
        assert_eq!(code(limited.into()), (1008, 429));
        assert_eq!(code(RongError::NotEnabled), (1009, 430));
    }

    #[test]
    fn too_long_fields_are_1005_other_field_errors_1002() {
        let long = FieldError::TooLong { field: "account", max: 128, actual: 129 };
        assert_eq!(code(RongError::field("userId", long)), (1005, 400));
        let empty = FieldError::Empty { field: "account" };
        let err = RongError::field("userId", empty);
        assert_eq!(code(err), (1002, 400));
    }

    #[test]
    fn internal_details_stay_hidden() {
        let err: RongError = ApiErrorKind::Internal("disk full at /var/lib".into()).into();
        assert_eq!(err.to_string(), "internal error");
    }
}
