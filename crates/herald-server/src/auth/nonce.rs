//! Nonces seen recently, so that a captured signed request cannot be sent again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use herald_core::AppId;
use herald_store::DynStore;

use crate::error::ApiErrorKind;

/// Remembers `(app, nonce)` until the request's timestamp leaves the signature window; after
/// that the timestamp check alone refuses a replay, so memory stays bounded by the request rate.
#[derive(Default)]
pub struct NonceCache {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    expiry: HashMap<(AppId, String), i64>,
    /// Entries at the last sweep; the next sweep happens when the map has doubled.
    swept_at: usize,
}

impl NonceCache {
    /// Records the nonce; `false` if it was already recorded and has not expired.
    pub fn first_use(&self, app: AppId, nonce: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.expiry.len() > 2 * seen.swept_at.max(1024) {
            seen.expiry.retain(|_, until| *until >= now);
            seen.swept_at = seen.expiry.len();
        }
        match seen.expiry.get(&(app, nonce.to_owned())) {
            Some(until) if *until >= now => false,
            _ => {
                seen.expiry.insert((app, nonce.to_owned()), expires_at);
                true
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.lock().map(|s| s.expiry.len()).unwrap_or_default()
    }
}

/// Where nonces are remembered: in this process on a single node; in the shared store when
/// several nodes take requests, so that a request replayed to another node is refused too.
/// The store outlives a NATS outage, so signed requests (pushes among them) are still taken
/// while the bus is away.
pub enum Nonces {
    Local(NonceCache),
    Shared(SharedNonces),
}

/// Nonces in the store, swept of expired ones now and then by whichever request comes.
pub struct SharedNonces {
    store: DynStore,
    /// When the last sweep started (seconds); one sweep a minute at most per node.
    swept_at: AtomicI64,
}

/// Seconds between two sweeps of expired nonces by one node.
const SWEEP_EVERY_SECS: i64 = 60;

impl SharedNonces {
    pub fn new(store: DynStore) -> Self {
        Self { store, swept_at: AtomicI64::new(0) }
    }

    async fn first_use(
        &self,
        app: AppId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, ApiErrorKind> {
        self.sweep_now_and_then(now);
        Ok(self.store.first_use_nonce(app, nonce, expires_at, now).await?)
    }

    fn sweep_now_and_then(&self, now: i64) {
        let last = self.swept_at.load(Ordering::Relaxed);
        let due = now - last >= SWEEP_EVERY_SECS;
        if !due
            || self
                .swept_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.sweep_nonces(now).await {
                tracing::warn!(%err, "expired request nonces not swept; trying again later");
            }
        });
    }
}

impl Nonces {
    /// Records the nonce; `Ok(false)` if it was recorded before and has not expired.
    pub async fn first_use(
        &self,
        app: AppId,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, ApiErrorKind> {
        match self {
            Self::Local(cache) => Ok(cache.first_use(app, nonce, expires_at, now)),
            Self::Shared(shared) => shared.first_use(app, nonce, expires_at, now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_within_window_is_refused() {
        let cache = NonceCache::default();
        assert!(cache.first_use(1, "abcdefgh", 100, 0));
        assert!(!cache.first_use(1, "abcdefgh", 100, 50));
        assert!(cache.first_use(2, "abcdefgh", 100, 50), "nonces are per app");
        assert!(cache.first_use(1, "abcdefgh", 300, 101), "expired entries may be reused");
    }

    #[test]
    fn expired_entries_are_swept() {
        let cache = NonceCache::default();
        for i in 0..5000 {
            cache.first_use(1, &format!("nonce-{i:06}"), i, i);
        }
        assert!(cache.len() < 5000, "old entries were kept: {}", cache.len());
    }
}
