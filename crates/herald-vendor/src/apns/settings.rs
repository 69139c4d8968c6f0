//! Settings of the APNs channel: endpoints and provider-token lifetime.

use serde::{Deserialize, Serialize};

/// Apple's production endpoint.
pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
/// Apple's development endpoint, for tokens of development builds.
pub const SANDBOX_URL: &str = "https://api.sandbox.push.apple.com";

/// Settings for [`crate::apns`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApnsSettings {
    /// Base URL for apps whose environment is `production`. Point it at a test server to try
    /// herald without Apple.
    pub production_url: String,
    /// Base URL for apps whose environment is `sandbox`.
    pub sandbox_url: String,
    /// Age in seconds at which a provider token is replaced. Apple accepts a token for one hour
    /// and answers `TooManyProviderTokenUpdates` to refreshes more often than every 20 minutes,
    /// so the default of 50 minutes sits between the two.
    pub token_refresh_secs: u64,
}

impl Default for ApnsSettings {
    fn default() -> Self {
        Self {
            production_url: PRODUCTION_URL.into(),
            sandbox_url: SANDBOX_URL.into(),
            token_refresh_secs: 50 * 60,
        }
    }
}
