//! Errors of the Tencent layer and their Tencent error codes.
//!
//! Every refusal of a `/v4` call goes through [`TencentError::code`]: the layer's own request
//! errors and the [`ApiErrorKind`]s of the shared operations (directory, pushes, store) map to
//! the codes existing server SDKs test for, in one exhaustive match per enum so that a new kind
//! forces a decision. The codes and why each was chosen are listed in `docs/migrate-tencent.md`.

use herald_core::audience::{AudienceError, AudienceErrorKind};

use crate::error::ApiErrorKind;

/// Why a `/v4` call was refused; the `Display` text becomes `ErrorInfo`.
#[derive(Debug, thiserror::Error)]
pub enum TencentError {
    #[error("JSON parse failed: {0}")]
    JsonParse(String),
    #[error("MsgBody invalid: {0}")]
    MsgBody(String),
    #[error("MsgBody must be an array")]
    MsgBodyNotArray,
    #[error("MsgRandom missing or not a 32-bit unsigned integer")]
    MsgRandom,
    #[error("{identifier} is not the app's admin account")]
    AdminRequired {
        identifier: String,
        /// `im_open_login_svc` calls answer with their own code for the same refusal.
        account_call: bool,
    },
    #[error("message format invalid: {0}")]
    MessageFormat(String),
    #[error("{got} entries in {field}, at most {max}")]
    TooManyAccounts { field: &'static str, max: usize, got: usize },
    #[error("tag `{0}` is longer than 50 bytes")]
    TagTooLong(String),
    #[error("tag `{0}` is in both TagsAnd and TagsOr")]
    TagInBoth(String),
    #[error("MsgLifeTime must be an integer from 0 to {max}")]
    LifeTime { max: u32 },
    #[error("{got} tags in {field}, at most {max}")]
    TooManyTags { field: &'static str, max: usize, got: usize },
    #[error("invalid attribute: {0}")]
    InvalidAttribute(String),
    #[error("a Condition may not combine tags and attributes")]
    TagsAndAttrs,
    #[error("empty tag")]
    EmptyTag,
    #[error("push to all is not enabled for sdkappid {0}")]
    NotEnabled(String),
    #[error("unknown TaskId {0}")]
    UnknownTask(String),
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("account {account} would go past limit {limit} = {value}")]
    AccountLimit { account: String, limit: &'static str, value: u64 },
    #[error("account does not exist: {}", .0.join(", "))]
    UnknownAccounts(Vec<String>),
    #[error("usersig expired at {expired_at} (Unix seconds)")]
    SigExpired { expired_at: i64 },
    #[error("usersig invalid: {0}")]
    SigMalformed(String),
    #[error("usersig verification failed (check the key: the herald app secret)")]
    SigMismatch,
    #[error("usersig was made for identifier {signed}, not {given}")]
    SigIdentifier { signed: String, given: String },
    #[error("usersig was made for sdkappid {signed}, not {given}")]
    SigSdkAppId { signed: u64, given: u64 },
    #[error("no command {0}")]
    UnknownCommand(String),
    /// An internal error shows only "internal error"; [`super::envelope`] logs the detail.
    #[error(transparent)]
    Api(#[from] ApiErrorKind),
}

impl From<herald_service::ServiceError> for TencentError {
    fn from(err: herald_service::ServiceError) -> Self {
        TencentError::Api(err.into())
    }
}

impl TencentError {
    /// The Tencent `ErrorCode` of a refusal.
    pub fn code(&self) -> u32 {
        match self {
            Self::JsonParse(_) => 90001,
            Self::MsgBody(_) => 90002,
            Self::MsgBodyNotArray => 90007,
            Self::MsgRandom => 90005,
            Self::AdminRequired { account_call: true, .. } => 70403,
            Self::AdminRequired { account_call: false, .. } => 90009,
            Self::MessageFormat(_) => 90010,
            Self::TooManyAccounts { .. } => 90018,
            Self::TagTooLong(_) => 90020,
            Self::TagInBoth(_) => 90022,
            Self::LifeTime { .. } => 90026,
            Self::TooManyTags { .. } => 90032,
            Self::InvalidAttribute(_) => 90033,
            Self::TagsAndAttrs => 90039,
            Self::EmptyTag => 90040,
            Self::NotEnabled(_) => 90045,
            Self::UnknownTask(_) => 90049,
            Self::BodyTooLarge { .. } => 90056,
            Self::InvalidParameter(_) => 70402,
            Self::AccountLimit { limit, .. } => limit_code(limit),
            Self::UnknownAccounts(_) => 70107,
            Self::SigExpired { .. } => 70001,
            Self::SigMalformed(_) => 70003,
            Self::SigMismatch => 70009,
            Self::SigIdentifier { .. } => 70013,
            Self::SigSdkAppId { .. } => 70014,
            Self::UnknownCommand(_) => 60009,
            Self::Api(kind) => api_code(kind),
        }
    }
}

/// The code of a shared operation's error, as a Tencent back end expects it.
fn api_code(kind: &ApiErrorKind) -> u32 {
    match kind {
        ApiErrorKind::AdminRequired => 90009,
        ApiErrorKind::UnknownApp => 90045,
        ApiErrorKind::BadSignature | ApiErrorKind::BadClientToken => 70009,
        ApiErrorKind::StaleTimestamp { .. } => 70001,
        ApiErrorKind::MissingHeader(_)
        | ApiErrorKind::BadNonce
        | ApiErrorKind::ReplayedNonce { .. }
        | ApiErrorKind::InvalidRequest(_)
        | ApiErrorKind::InvalidSubscription(_)
        | ApiErrorKind::InvalidLimit(_) => 70402,
        ApiErrorKind::InvalidJson(_) => 90001,
        ApiErrorKind::BodyTooLarge { .. } => 90056,
        ApiErrorKind::LimitExceeded(breach) => limit_code(breach.limit),
        ApiErrorKind::InvalidAudience(err) => audience_code(err),
        ApiErrorKind::NotFound { what, .. } => match *what {
            "push" => 90049,
            "account" => 70107,
            "app" => 90045,
            _ => 70402,
        },
        ApiErrorKind::NoRoute(_) => 60009,
        ApiErrorKind::RateLimited { limit, .. } => match *limit {
            "layer.per_day" => 90047,
            _ => 90024,
        },
        ApiErrorKind::Conflict(_)
        | ApiErrorKind::PushState { .. }
        | ApiErrorKind::Unavailable(_)
        | ApiErrorKind::StorageFull(_)
        | ApiErrorKind::Internal(_) => 91000,
    }
}

/// A herald limit by the Tencent code of the same limit.
fn limit_code(limit: &str) -> u32 {
    match limit {
        "tag_bytes" => 90020,
        "accounts_per_batch" | "accounts_per_push" => 90018,
        "message_bytes" => 90056,
        "max_offline_ttl_secs" => 90026,
        "tags_per_account" | "distinct_tags" => 90032,
        "attribute_value_bytes" | "attribute_slots" => 90033,
        _ => 70402,
    }
}

/// An audience refused by the core: only reachable when the app changed between the layer's
/// own checks and the push (e.g. an attribute name removed meanwhile).
fn audience_code(err: &AudienceError) -> u32 {
    match &err.kind {
        AudienceErrorKind::UnknownAttribute { .. }
        | AudienceErrorKind::ValueTooLong { .. }
        | AudienceErrorKind::EmptyValue
        | AudienceErrorKind::EmptyAttributeName => 90033,
        AudienceErrorKind::TagTooLong { .. } => 90020,
        AudienceErrorKind::EmptyTag => 90040,
        _ => 90010,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::LimitBreach;

    #[test]
    fn layer_limits_map_to_frequency_and_quota_codes() {
        let limited = |limit| ApiErrorKind::RateLimited { limit, value: 1, retry_after_secs: 1 };
        assert_eq!(TencentError::from(limited("layer.min_interval_secs")).code(), 90024);
        assert_eq!(TencentError::from(limited("layer.per_day")).code(), 90047);
    }

    #[test]
    fn admin_code_depends_on_the_service() {
        let admin =
            |account_call| TencentError::AdminRequired { identifier: "bob".into(), account_call };
        assert_eq!(admin(true).code(), 70403);
        assert_eq!(admin(false).code(), 90009);
    }

    #[test]
    fn internal_detail_is_not_shown() {
        let err = TencentError::from(ApiErrorKind::Internal("disk full".into()));
        assert_eq!(err.code(), 91000);
        assert_eq!(err.to_string(), "internal error");
    }

    #[test]
    fn limit_breaches_name_the_tencent_code() {
        let breach =
            |limit| ApiErrorKind::LimitExceeded(LimitBreach { limit, value: 1, actual: 2 });
        assert_eq!(TencentError::from(breach("message_bytes")).code(), 90056);
        assert_eq!(TencentError::from(breach("tag_bytes")).code(), 90020);
        assert_eq!(TencentError::from(breach("max_offline_ttl_secs")).code(), 90026);
    }
}
