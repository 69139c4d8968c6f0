//! Settings of the FCM channel: endpoints and access-token reuse.

use serde::{Deserialize, Serialize};

/// Google's FCM endpoint.
pub const FCM_URL: &str = "https://fcm.googleapis.com";

/// Settings for [`crate::fcm`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FcmSettings {
    /// Base URL of `/v1/projects/{project}/messages:send`.
    pub base_url: String,
    /// Token endpoint used instead of each service account's `token_uri` (for a test server).
    /// The JWT assertion's `aud` is the endpoint actually used.
    pub token_uri: Option<String>,
    /// Lifetime asked for access tokens, in seconds (Google allows at most 3600).
    pub token_lifetime_secs: u64,
    /// An access token is replaced this many seconds before the `expires_in` it came with.
    pub token_refresh_margin_secs: u64,
}

impl Default for FcmSettings {
    fn default() -> Self {
        Self {
            base_url: FCM_URL.into(),
            token_uri: None,
            token_lifetime_secs: 3600,
            token_refresh_margin_secs: 300,
        }
    }
}
