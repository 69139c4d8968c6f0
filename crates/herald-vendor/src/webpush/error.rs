//! Errors of the Web Push channel and the one place they turn into outcomes and retries.

use std::time::Duration;

use super::ece::EceError;
use super::subscription::SubscriptionError;
use crate::jwt::KeyError;
use crate::outcome::Outcome;
use crate::retry::{Step, VendorFailure};
use crate::transport::TransportError;

/// Why one Web Push attempt did not end in a 201.
#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    /// The push service answered with an error status. `reason` is herald's stable name for
    /// the status (push services answer free text, kept in `detail` for the logs).
    #[error("the push service answered {status} {reason}: {detail}")]
    Rejected { status: u16, reason: &'static str, detail: String, retry_after: Option<Duration> },
    #[error("request to the push service failed: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot sign the VAPID token: {0}")]
    Signing(#[from] KeyError),
    /// The push cannot be sent through Web Push (too large).
    #[error("the push cannot be sent through Web Push: {0}")]
    Payload(&'static str),
    #[error("cannot encrypt for the subscription: {0}")]
    Encryption(#[from] EceError),
    /// The stored subscription is not one herald can send to; the browser must subscribe again.
    #[error("the device token is not a usable push subscription: {0}")]
    BadSubscription(#[from] SubscriptionError),
    /// The app already talks to as many push services as the settings allow.
    #[error("too many distinct push services for one app")]
    TooManyPushServices,
    /// Recent attempts to this push service failed one after another; requests wait.
    #[error("the push service is failing; sends are paused")]
    CircuitOpen,
}

/// Herald's name for a push service's error status, for the report's counters.
pub(crate) fn status_reason(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 | 403 => "VapidRejected",
        404 => "NotFound",
        410 => "Gone",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        500..=599 => "PushServiceError",
        _ => "UnexpectedStatus",
    }
}

impl VendorFailure for WebPushError {
    fn circuit_open() -> Self {
        WebPushError::CircuitOpen
    }

    /// What the retry loop does next (RFC 8030 section 8 and the push services' documented
    /// answers): 404 and 410 mean the subscription is gone, remove it; 413 is never retried;
    /// 401 gets a new VAPID token once; 429 and 5xx are retried, after `Retry-After` if given.
    fn step(self) -> Step {
        match self {
            WebPushError::Rejected { status: 404 | 410, reason, .. } => {
                Step::Done(Outcome::Unregistered { reason: reason.into() })
            }
            WebPushError::Rejected { status: 401, reason, .. } => {
                Step::Reauthorize { reason: reason.into() }
            }
            WebPushError::Rejected { status: 429 | 500..=599, reason, retry_after, .. } => {
                Step::Retry { reason: reason.into(), after: retry_after }
            }
            WebPushError::Rejected { reason, .. } => Step::Done(Outcome::failed(reason, false)),
            WebPushError::Transport(e) => Step::Retry { reason: e.reason().into(), after: None },
            WebPushError::Signing(_) => Step::Done(Outcome::failed("VapidSigning", false)),
            WebPushError::Payload(reason) => Step::Done(Outcome::failed(reason, false)),
            WebPushError::Encryption(EceError::PayloadTooLarge { .. }) => {
                Step::Done(Outcome::failed("PayloadTooLarge", false))
            }
            WebPushError::Encryption(EceError::Random) => {
                Step::Done(Outcome::failed("EncryptionFailed", true))
            }
            WebPushError::Encryption(_) | WebPushError::BadSubscription(_) => {
                Step::Done(Outcome::BadDeviceToken { reason: "BadSubscription".into() })
            }
            WebPushError::TooManyPushServices => {
                Step::Done(Outcome::failed("TooManyPushServices", false))
            }
            WebPushError::CircuitOpen => Step::Done(Outcome::failed("CircuitOpen", true)),
        }
    }

    /// Whether the error says the push service is unwell (counts towards its breaker).
    fn is_outage(&self) -> bool {
        match self {
            WebPushError::Rejected { status, .. } => *status >= 500,
            WebPushError::Transport(_) => true,
            WebPushError::Signing(_)
            | WebPushError::Payload(_)
            | WebPushError::Encryption(_)
            | WebPushError::BadSubscription(_)
            | WebPushError::TooManyPushServices
            | WebPushError::CircuitOpen => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: u16) -> Step {
        let reason = status_reason(status);
        WebPushError::Rejected { status, reason, detail: String::new(), retry_after: None }.step()
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert!(
            matches!(step(410), Step::Done(Outcome::Unregistered { reason }) if reason == "Gone")
        );
        assert!(
            matches!(step(404), Step::Done(Outcome::Unregistered { reason }) if reason == "NotFound")
        );
        assert!(matches!(step(413), Step::Done(Outcome::Failed { reason, retryable: false })
            if reason == "PayloadTooLarge"));
        assert!(matches!(step(400), Step::Done(Outcome::Failed { reason, retryable: false })
            if reason == "BadRequest"));
        assert!(matches!(step(403), Step::Done(Outcome::Failed { reason, retryable: false })
            if reason == "VapidRejected"));
        assert!(matches!(step(401), Step::Reauthorize { .. }));
        assert!(matches!(step(429), Step::Retry { reason, .. } if reason == "TooManyRequests"));
        assert!(matches!(step(503), Step::Retry { .. }));
        assert!(matches!(step(302), Step::Done(Outcome::Failed { retryable: false, .. })));
    }
}
