//! Counters of one app's vendor channel, for metrics and for tests that check reuse of tokens.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::outcome::Outcome;

/// A snapshot of one channel's counters since its credentials were set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChannelStats {
    /// HTTP requests made to the vendor's send endpoint (first attempts and retries).
    pub requests: u64,
    pub sent: u64,
    pub unregistered: u64,
    pub bad_device_token: u64,
    pub failed: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Provider tokens (APNs) or OAuth access tokens (FCM) obtained.
    pub auth_tokens: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) unregistered: AtomicU64,
    pub(crate) bad_device_token: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retries: AtomicU64,
}

impl Counters {
    pub(crate) fn record(&self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Sent { .. } => &self.sent,
            Outcome::Unregistered { .. } => &self.unregistered,
            Outcome::BadDeviceToken { .. } => &self.bad_device_token,
            Outcome::Failed { .. } => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, auth_tokens: u64) -> ChannelStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ChannelStats {
            requests: get(&self.requests),
            sent: get(&self.sent),
            unregistered: get(&self.unregistered),
            bad_device_token: get(&self.bad_device_token),
            failed: get(&self.failed),
            retries: get(&self.retries),
            auth_tokens,
        }
    }
}
