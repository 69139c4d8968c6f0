//! Settings of the Web Push channel: VAPID token lifetime and how many push services an app
//! may reach.

use serde::{Deserialize, Serialize};

/// Settings for [`crate::webpush`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebPushSettings {
    /// Lifetime of a VAPID token (its `exp`), in seconds. RFC 8292 allows at most 24 hours;
    /// 12 leaves room for a push service whose clock runs ahead.
    pub vapid_lifetime_secs: u64,
    /// A VAPID token is replaced this many seconds before it expires.
    pub vapid_refresh_margin_secs: u64,
    /// Distinct push-service origins one app may send to. Browsers use a handful (Google,
    /// Mozilla, Apple, Microsoft); each origin holds connections, so subscriptions naming
    /// ever new hosts are refused past this.
    pub max_push_services: usize,
}

impl Default for WebPushSettings {
    fn default() -> Self {
        Self {
            vapid_lifetime_secs: 12 * 3600,
            vapid_refresh_margin_secs: 3600,
            max_push_services: 16,
        }
    }
}
