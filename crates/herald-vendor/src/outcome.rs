//! What became of one vendor send, as the dispatcher and the reports need it.

use serde::Serialize;

/// The result of sending one notification to one device token.
///
/// The two permanent token errors tell the caller to remove the device's token; their `reason` is
/// the vendor's own word (APNs `reason`, FCM `errorCode`) for the report's "vendor-failed by
/// reason" counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The vendor accepted the notification. `id` is the `apns-id` or the FCM message name.
    Sent { id: Option<String> },
    /// The token is no longer valid for the app (APNs 410 `Unregistered`, FCM `UNREGISTERED`):
    /// remove it.
    Unregistered { reason: String },
    /// The token was never valid (APNs 400 `BadDeviceToken`, FCM `INVALID_ARGUMENT` on the
    /// token, or a token that is malformed before sending): remove it.
    BadDeviceToken { reason: String },
    /// Not delivered to the vendor. `retryable` says whether sending again later may succeed
    /// (rate limits, outages, timeouts) or not (bad credentials, a payload the vendor refuses,
    /// no credentials for the app).
    Failed { reason: String, retryable: bool },
}

impl Outcome {
    /// Whether the vendor accepted the notification.
    pub fn is_sent(&self) -> bool {
        matches!(self, Outcome::Sent { .. })
    }

    /// Whether the caller should delete the device's token.
    pub fn removes_token(&self) -> bool {
        matches!(self, Outcome::Unregistered { .. } | Outcome::BadDeviceToken { .. })
    }

    /// The failure reason for reports; `None` for a sent notification.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Sent { .. } => None,
            Outcome::Unregistered { reason }
            | Outcome::BadDeviceToken { reason }
            | Outcome::Failed { reason, .. } => Some(reason),
        }
    }

    pub(crate) fn failed(reason: impl Into<String>, retryable: bool) -> Self {
        Outcome::Failed { reason: reason.into(), retryable }
    }
}
