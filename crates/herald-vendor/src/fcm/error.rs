//! Errors of the FCM channel and the one place they turn into outcomes and retries.
//!
//! FCM answers errors as a `google.rpc.Status`:
//! `{"error":{"code":404,"status":"NOT_FOUND","message":"..","details":[{"@type":
//! "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`.

use std::time::Duration;

use serde::Deserialize;

use crate::jwt::KeyError;
use crate::outcome::Outcome;
use crate::retry::{Step, VendorFailure};
use crate::transport::TransportError;

/// Why one FCM attempt did not end in a 200.
#[derive(Debug, thiserror::Error)]
pub enum FcmError {
    /// The send endpoint answered with an error. `code` is the FcmError `errorCode` when
    /// present, else the status name (`NOT_FOUND`, ...). `token_at_fault`: the error is about
    /// the registration token rather than the rest of the message.
    #[error("FCM answered {status} {code}: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
        token_at_fault: bool,
        retry_after: Option<Duration>,
    },
    /// The token endpoint refused the service account's assertion.
    #[error("the OAuth token endpoint answered {status} {error}")]
    OAuth { status: u16, error: String, retry_after: Option<Duration> },
    #[error("request to FCM failed: {0}")]
    Transport(#[from] TransportError),
    #[error("cannot sign the OAuth assertion: {0}")]
    Signing(#[from] KeyError),
    /// The push cannot be encoded for FCM (too large, reserved data key).
    #[error("the push cannot be sent through FCM: {0}")]
    Payload(String),
    #[error("the device token is not an FCM registration token")]
    MalformedToken,
    #[error("FCM is failing; sends are paused")]
    CircuitOpen,
}

impl VendorFailure for FcmError {
    fn circuit_open() -> Self {
        FcmError::CircuitOpen
    }

    /// What the retry loop does next, following Google's error-code table: `UNREGISTERED` and
    /// an `INVALID_ARGUMENT` about the token remove it; `UNAUTHENTICATED` gets a new access
    /// token once; `QUOTA_EXCEEDED`, `UNAVAILABLE` and `INTERNAL` are retried.
    fn step(self) -> Step {
        match self {
            FcmError::Rejected { code, .. } if code == "UNREGISTERED" => {
                Step::Done(Outcome::Unregistered { reason: code })
            }
            FcmError::Rejected { status: 400, code, token_at_fault: true, .. }
                if code == "INVALID_ARGUMENT" =>
            {
                Step::Done(Outcome::BadDeviceToken { reason: code })
            }
            FcmError::Rejected { status: 401, code, .. } => Step::Reauthorize { reason: code },
            FcmError::Rejected {
                status: 429 | 500 | 502 | 503 | 504, code, retry_after, ..
            } => Step::Retry { reason: code, after: retry_after },
            FcmError::Rejected { code, .. } => Step::Done(Outcome::failed(code, false)),
            FcmError::OAuth { status: 429 | 500..=599, error, retry_after } => {
                Step::Retry { reason: format!("OAuth {error}"), after: retry_after }
            }
            FcmError::OAuth { error, .. } => {
                Step::Done(Outcome::failed(format!("OAuth {error}"), false))
            }
            FcmError::Transport(e) => Step::Retry { reason: e.reason().into(), after: None },
            FcmError::Signing(_) => Step::Done(Outcome::failed("OAuthAssertionSigning", false)),
            FcmError::Payload(reason) => Step::Done(Outcome::failed(reason, false)),
            FcmError::MalformedToken => {
                Step::Done(Outcome::BadDeviceToken { reason: "INVALID_ARGUMENT".into() })
            }
            FcmError::CircuitOpen => Step::Done(Outcome::failed("CircuitOpen", true)),
        }
    }

    /// Whether the error says the endpoint is unwell (counts towards the circuit breaker).
    fn is_outage(&self) -> bool {
        match self {
            FcmError::Rejected { status, .. } | FcmError::OAuth { status, .. } => *status >= 500,
            FcmError::Transport(_) => true,
            FcmError::Signing(_)
            | FcmError::Payload(_)
            | FcmError::MalformedToken
            | FcmError::CircuitOpen => false,
        }
    }
}

impl FcmError {
    /// Reads a `google.rpc.Status` error body.
    pub(crate) fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let error = serde_json::from_slice::<StatusBody>(body).ok().map(|b| b.error);
        let Some(error) = error else {
            return FcmError::Rejected {
                status,
                code: format!("HTTP {status}"),
                message: String::new(),
                token_at_fault: false,
                retry_after,
            };
        };
        let fcm_code = error
            .details
            .iter()
            .find(|d| d.kind.ends_with("google.firebase.fcm.v1.FcmError"))
            .and_then(|d| d.error_code.clone());
        let violations: Vec<&str> = error
            .details
            .iter()
            .filter(|d| d.kind.ends_with("google.rpc.BadRequest"))
            .flat_map(|d| d.field_violations.iter().map(|v| v.field.as_str()))
            .collect();
        // A bad-request detail naming other fields means the message was at fault; without one
        // (Google's answer to a malformed token) or naming `message.token`, the token was.
        let token_at_fault = violations.is_empty() || violations.contains(&"message.token");
        FcmError::Rejected {
            status,
            code: fcm_code.or(error.status).unwrap_or_else(|| format!("HTTP {status}")),
            message: error.message.unwrap_or_default(),
            token_at_fault,
            retry_after,
        }
    }
}

#[derive(Deserialize)]
struct StatusBody {
    error: RpcStatus,
}

#[derive(Deserialize)]
struct RpcStatus {
    status: Option<String>,
    message: Option<String>,
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    #[serde(rename = "fieldViolations", default)]
    field_violations: Vec<FieldViolation>,
}

#[derive(Deserialize)]
struct FieldViolation {
    #[serde(default)]
    field: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str) -> Step {
        FcmError::from_response(status, body.as_bytes(), None).step()
    }

    #[test]
    fn google_error_bodies_map_to_outcomes() {
        let unregistered = r#"{"error":{"code":404,"message":"Requested entity was not found.",
            "status":"NOT_FOUND","details":[{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert!(matches!(outcome(404, unregistered),
            Step::Done(Outcome::Unregistered { reason }) if reason == "UNREGISTERED"));
        let bad_token = r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":
            "The registration token is not a valid FCM registration token","details":[{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}"#;
        assert!(matches!(outcome(400, bad_token),
            Step::Done(Outcome::BadDeviceToken { reason }) if reason == "INVALID_ARGUMENT"));
        let bad_field = r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"x",
            "details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":
            [{"field":"message.data[0].value","description":"x"}]}]}}"#;
        assert!(matches!(
            outcome(400, bad_field),
            Step::Done(Outcome::Failed { retryable: false, .. })
        ));
        let quota = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}"#;
        assert!(
            matches!(outcome(429, quota), Step::Retry { reason, .. } if reason == "QUOTA_EXCEEDED")
        );
        assert!(
            matches!(outcome(503, "<html>"), Step::Retry { reason, .. } if reason == "HTTP 503")
        );
        assert!(matches!(
            outcome(401, r#"{"error":{"status":"UNAUTHENTICATED"}}"#),
            Step::Reauthorize { .. }
        ));
        let mismatch = r#"{"error":{"code":403,"status":"PERMISSION_DENIED","details":[{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"SENDER_ID_MISMATCH"}]}}"#;
        assert!(matches!(outcome(403, mismatch),
            Step::Done(Outcome::Failed { reason, retryable: false }) if reason == "SENDER_ID_MISMATCH"));
    }
}
