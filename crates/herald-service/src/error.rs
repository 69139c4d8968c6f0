//! What an operation of the service can answer other than success. Every API (native, compat,
//! console) maps these to its own status and codes in one place of its own.

use herald_core::account::FieldError;
use herald_core::audience::AudienceError;
use herald_core::limits::InvalidLimit;
use herald_core::push::PushError;
use herald_core::LimitBreach;
use herald_store::StoreError;
use herald_vendor::SubscriptionError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    InvalidLimit(#[from] InvalidLimit),
    #[error(transparent)]
    LimitExceeded(#[from] LimitBreach),
    #[error(transparent)]
    InvalidAudience(#[from] AudienceError),
    /// A `webpush` vendor token that is not a browser's push subscription.
    #[error("vendor_token: not a Web Push subscription: {0}")]
    InvalidSubscription(#[from] SubscriptionError),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
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
    /// The store has no room to write: nothing was changed; reads go on working and writes
    /// work again once space is freed, without a restart.
    #[error("storage full: {0}")]
    StorageFull(String),
    #[error("internal error")]
    Internal(String),
}

impl ServiceError {
    /// Whether the caller can fix it by asking differently (as opposed to a fault of the
    /// service or a part it depends on, where asking again later helps).
    pub fn is_caller_fault(&self) -> bool {
        !matches!(self, Self::Unavailable(_) | Self::StorageFull(_) | Self::Internal(_))
    }
}

/// Result of a service operation.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<PushError> for ServiceError {
    fn from(err: PushError) -> Self {
        match err {
            PushError::Limit(breach) => Self::LimitExceeded(breach),
            PushError::Field(FieldError::Limit(breach)) => Self::LimitExceeded(breach),
            // A fixed maximum is a limit too: callers (and compat codes) treat length alike.
            PushError::Field(FieldError::TooLong { field, max, actual }) => {
                Self::LimitExceeded(LimitBreach {
                    limit: field,
                    value: u64::try_from(max).unwrap_or(u64::MAX),
                    actual: u64::try_from(actual).unwrap_or(u64::MAX),
                })
            }
            other => Self::InvalidRequest(other.to_string()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what, id } => Self::NotFound { what, id },
            StoreError::Conflict(message) => Self::Conflict(message),
            err @ StoreError::Unavailable(_) => {
                // The cause (host, SQLSTATE) goes to the logs; the caller learns to retry.
                tracing::warn!(error = %err, "store unavailable");
                Self::Unavailable("the store is not answering; retry shortly".into())
            }
            err @ StoreError::Full(_) => {
                tracing::error!(error = %err, "store full: writes are refused until space is freed");
                Self::StorageFull(
                    "the server's storage has no room for this write; nothing was changed. \
                     Reads still work; retry once the operator has freed space"
                        .into(),
                )
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_is_not_shown() {
        let err = ServiceError::Internal("database file is locked".into());
        assert_eq!(err.to_string(), "internal error");
    }

    #[test]
    fn a_too_long_field_is_a_limit() {
        let err = ServiceError::from(PushError::Field(FieldError::TooLong {
            field: "title",
            max: 10,
            actual: 11,
        }));
        let ServiceError::LimitExceeded(breach) = err else { panic!("not a limit: {err}") };
        assert_eq!((breach.limit, breach.value, breach.actual), ("title", 10, 11));
    }
}
