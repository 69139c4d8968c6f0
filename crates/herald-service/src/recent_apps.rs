//! Apps as read from the store within the last few seconds, for the paths that need an app on
//! every request of a storm: hellos (by key) and logins (by id).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use herald_core::{App, AppId};
use herald_store::StoreError;

/// Apps read recently, by `K`. A stale entry is read again by one caller while the others go
/// on with it: when the entry expires in the middle of a reconnect storm, thousands of hellos
/// would otherwise read the same row at once.
pub struct RecentApps<K> {
    ttl: Duration,
    entries: RwLock<HashMap<K, Entry>>,
}

struct Entry {
    app: App,
    read_at: Instant,
    /// When a caller started reading the app again; one that gave up is replaced after `ttl`.
    refreshing_since: Option<Instant>,
}

impl<K: Hash + Eq> RecentApps<K> {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: RwLock::default() }
    }

    /// The app under `key`, read with `read` when it is not known or too old. Unknown keys are
    /// not kept (an app not found is not cached): the map holds at most one entry per app.
    pub async fn get<Q, F, R>(&self, key: &Q, read: R) -> Result<App, StoreError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        R: FnOnce() -> F,
        F: Future<Output = Result<App, StoreError>>,
    {
        if let Some(app) = self.fresh_or_claim(key) {
            return Ok(app);
        }
        let read = read().await;
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match read {
            Ok(app) => {
                let entry =
                    Entry { app: app.clone(), read_at: Instant::now(), refreshing_since: None };
                entries.insert(key.to_owned(), entry);
                Ok(app)
            }
            Err(err) => {
                if let Some(entry) = entries.get_mut(key) {
                    entry.refreshing_since = None;
                }
                Err(err)
            }
        }
    }

    /// Forgets the app under every key: it changed (secret, limits) or is gone.
    pub fn forget_app(&self, id: AppId) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, entry| entry.app.id != id);
    }

    /// The cached app if it is fresh, or stale while another caller reads it again; `None`
    /// tells this caller to read it (and marks the entry as being read).
    fn fresh_or_claim<Q>(&self, key: &Q) -> Option<App>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = Instant::now();
        let busy = |entry: &Entry| {
            entry.refreshing_since.is_some_and(|since| now.duration_since(since) < self.ttl)
        };
        {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            let entry = entries.get(key)?;
            if now.duration_since(entry.read_at) < self.ttl || busy(entry) {
                return Some(entry.app.clone());
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(key)?;
        if now.duration_since(entry.read_at) < self.ttl || busy(entry) {
            return Some(entry.app.clone());
        }
        entry.refreshing_since = Some(now);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use herald_core::Limits;

    use super::*;

    fn app(name: &str) -> App {
        App {
            id: 1,
            name: name.into(),
            key: "k".into(),
            secret: "s".into(),
            previous_secret: None,
            previous_secret_expires_at: None,
            limits: Limits::default(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn one_caller_reads_a_stale_app_again_the_others_use_the_old_one() {
        let recent = RecentApps::new(Duration::from_millis(50));
        let reads = AtomicUsize::new(0);
        let read = |name: &'static str| {
            let reads = &reads;
            move || async move {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok(app(name))
            }
        };
        assert_eq!(recent.get(&7, read("v1")).await.unwrap().name, "v1");
        assert_eq!(recent.get(&7, read("v2")).await.unwrap().name, "v1", "fresh");
        assert_eq!(reads.load(Ordering::SeqCst), 1);

        tokio::time::sleep(Duration::from_millis(60)).await;
        // The first caller after expiry claims the read; while it reads, others get v1.
        assert!(recent.fresh_or_claim(&7).is_none());
        assert_eq!(recent.get(&7, read("v2")).await.unwrap().name, "v1", "being read");
        assert_eq!(reads.load(Ordering::SeqCst), 1);

        // A reader that gave up is replaced once the time-to-live passed again.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(recent.get(&7, read("v3")).await.unwrap().name, "v3");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_forgotten_app_is_read_again() {
        let recent = RecentApps::new(Duration::from_secs(60));
        let read = |name: &'static str| move || async move { Ok(app(name)) };
        assert_eq!(recent.get(&"k".to_string(), read("v1")).await.unwrap().name, "v1");
        recent.forget_app(2);
        assert_eq!(recent.get(&"k".to_string(), read("v2")).await.unwrap().name, "v1", "other app");
        recent.forget_app(1);
        assert_eq!(recent.get(&"k".to_string(), read("v2")).await.unwrap().name, "v2");
    }

    #[tokio::test]
    async fn failed_reads_are_not_kept() {
        let recent: RecentApps<i64> = RecentApps::new(Duration::from_secs(5));
        let missing = || async { Err(StoreError::NotFound { what: "app", id: "9".into() }) };
        assert!(recent.get(&9, missing).await.is_err());
        assert!(recent.entries.read().unwrap().is_empty());
    }
}
