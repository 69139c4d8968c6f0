//! Errors of the APNs channel and the one place they turn into outcomes and retries.

use std::time::Duration;

use crate::jwt::KeyError;
use crate::outcome::Outcome;
use crate::retry::{Step, VendorFailure};
use crate::transport::TransportError;

/// Why one APNs attempt did not end in a 200.
#[derive(Debug, thiserror::Error)]
pub enum ApnsError {
    /// APNs answered with an error status; `reason` is its JSON `reason` (or the status name).
    #[error("APNs answered {status} {reason}")]
    Rejected { status: u16, reason: String, retry_after: Option<Duration> },
    #[error("request to APNs failed: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot sign a provider token: {0}")]
    Signing(#[from] KeyError),
    /// The push cannot be encoded for APNs (too large, empty, bad collapse id).
    #[error("the push cannot be sent through APNs: {0}")]
    Payload(&'static str),
    /// The device token is not hexadecimal; APNs would answer `BadDeviceToken`.
    #[error("the device token is not an APNs token")]
    MalformedToken,
    /// Recent attempts failed one after another; requests wait for the cool-down.
    #[error("APNs is failing; sends are paused")]
    CircuitOpen,
}

impl VendorFailure for ApnsError {
    fn circuit_open() -> Self {
        ApnsError::CircuitOpen
    }

    /// What the retry loop does next. Apple's documented reasons decide: `Unregistered` (410)
    /// and `BadDeviceToken` remove the token; `ExpiredProviderToken` gets a new JWT once; rate
    /// limits and server errors are retried.
    fn step(self) -> Step {
        match self {
            ApnsError::Rejected { status: 410, reason, .. } => {
                Step::Done(Outcome::Unregistered { reason })
            }
            ApnsError::Rejected { status: 400, reason, .. } if reason == "BadDeviceToken" => {
                Step::Done(Outcome::BadDeviceToken { reason })
            }
            ApnsError::Rejected { status: 403, reason, .. } if reason == "ExpiredProviderToken" => {
                Step::Reauthorize { reason }
            }
            ApnsError::Rejected { status: 429 | 500 | 502 | 503 | 504, reason, retry_after } => {
                Step::Retry { reason, after: retry_after }
            }
            ApnsError::Rejected { reason, .. } => Step::Done(Outcome::failed(reason, false)),
            ApnsError::Transport(e) => Step::Retry { reason: e.reason().into(), after: None },
            ApnsError::Signing(_) => Step::Done(Outcome::failed("ProviderTokenSigning", false)),
            ApnsError::Payload(reason) => Step::Done(Outcome::failed(reason, false)),
            ApnsError::MalformedToken => {
                Step::Done(Outcome::BadDeviceToken { reason: "BadDeviceToken".into() })
            }
            ApnsError::CircuitOpen => Step::Done(Outcome::failed("CircuitOpen", true)),
        }
    }

    /// Whether the error says the endpoint is unwell (counts towards the circuit breaker).
    fn is_outage(&self) -> bool {
        match self {
            ApnsError::Rejected { status, .. } => *status >= 500,
            ApnsError::Transport(_) => true,
            ApnsError::Signing(_)
            | ApnsError::Payload(_)
            | ApnsError::MalformedToken
            | ApnsError::CircuitOpen => false,
        }
    }
}
