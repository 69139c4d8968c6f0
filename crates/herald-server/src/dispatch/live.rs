//! The offline inbox in memory: every stored, unexpired push of every app with its audience
//! bitmap, so that a reconnecting device's pending pushes are found without touching the store.
//! Online-only pushes stay a little while too, so acks of them can be attributed in reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use herald_core::push::Notification;
use herald_core::AppId;
use herald_gateway::protocol::Push;
use herald_index::RoaringBitmap;
use herald_store::{DynStore, PushRecord, StoreError};
use serde_json::Value;

/// How long an online-only push is kept after dispatch: long enough for acks to arrive.
const ONLINE_ONLY_RETENTION_SECS: i64 = 3_600;

/// A stored push as devices receive it.
#[derive(Debug)]
pub struct LivePush {
    pub id: String,
    pub seq: u64,
    pub recipients: RoaringBitmap,
    pub platforms: Option<Vec<String>>,
    pub sender: Option<String>,
    pub message: Value,
    pub notification: Option<Notification>,
    pub sent_at: DateTime<Utc>,
    /// `None` for an online-only push, which never enters the inbox.
    pub expires_at: Option<DateTime<Utc>>,
}

impl LivePush {
    /// Rebuilds a stored push; `None` for rows that are not in anyone's inbox.
    pub fn from_record(record: &PushRecord) -> Result<Option<Self>, String> {
        let (Some(seq), Some(bytes), Some(expires_at)) =
            (record.seq, &record.recipients, record.expires_at)
        else {
            return Ok(None);
        };
        let recipients = RoaringBitmap::deserialize_from(bytes.as_slice())
            .map_err(|e| format!("push {} recipients: {e}", record.id))?;
        let message = serde_json::from_str(&record.message)
            .map_err(|e| format!("push {} message: {e}", record.id))?;
        let notification = record
            .notification
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| format!("push {} notification: {e}", record.id))?;
        Ok(Some(Self {
            id: record.id.clone(),
            seq,
            recipients,
            platforms: record.platforms.clone(),
            sender: record.sender.clone(),
            message,
            notification,
            sent_at: record.started_at.unwrap_or(record.created_at),
            expires_at: Some(expires_at),
        }))
    }

    pub fn admits(&self, platform: &str) -> bool {
        self.platforms.as_ref().is_none_or(|only| only.iter().any(|p| p == platform))
    }

    /// The push frame for a device of `platform`: its notification resolved for it.
    pub fn frame_for(&self, platform: &str) -> Push {
        Push {
            push_id: self.id.clone(),
            seq: self.seq,
            sender: self.sender.clone(),
            message: self.message.clone(),
            notification: self.notification.as_ref().map(|n| n.resolve(platform)),
            sent_at: self.sent_at,
            expires_at: self.expires_at,
        }
    }

    /// Whether a device connecting at `now` may still receive it from the inbox.
    fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires| expires > now)
    }

    /// Whether it is still worth keeping at `now`: in the inbox, or recent enough for acks.
    fn kept_at(&self, now: DateTime<Utc>) -> bool {
        match self.expires_at {
            Some(_) => self.live_at(now),
            None => now - self.sent_at < chrono::Duration::seconds(ONLINE_ONLY_RETENTION_SECS),
        }
    }
}

/// What a device asks its inbox for.
pub struct PendingQuery {
    pub account_id: u32,
    pub after_seq: u64,
    /// The app's `offline_pushes_per_device`: only the newest this many count.
    pub cap: usize,
    /// Page size.
    pub limit: usize,
}

/// Unexpired stored pushes (and recent online-only ones) of every app, by seq.
#[derive(Default)]
pub struct LiveInbox {
    apps: RwLock<HashMap<AppId, AppPushes>>,
}

#[derive(Default)]
struct AppPushes {
    by_seq: BTreeMap<u64, Arc<LivePush>>,
    seq_of: HashMap<String, u64>,
}

impl LiveInbox {
    /// Loads every app's live pushes from the store.
    pub async fn load(store: &DynStore) -> Result<Self, StoreError> {
        let inbox = Self::default();
        let now = Utc::now();
        for app in store.apps().await? {
            for record in store.live_pushes(app.id, now).await? {
                match LivePush::from_record(&record) {
                    Ok(Some(push)) => inbox.insert(app.id, Arc::new(push)),
                    Ok(None) => {}
                    Err(err) => tracing::error!(app_id = app.id, %err, "stored push skipped"),
                }
            }
        }
        Ok(inbox)
    }

    pub fn insert(&self, app: AppId, push: Arc<LivePush>) {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let pushes = apps.entry(app).or_default();
        pushes.seq_of.insert(push.id.clone(), push.seq);
        pushes.by_seq.insert(push.seq, push);
    }

    /// Takes a push out (recalled or cancelled); returns it if it was there.
    pub fn remove(&self, app: AppId, push_id: &str) -> Option<Arc<LivePush>> {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let pushes = apps.get_mut(&app)?;
        let seq = pushes.seq_of.remove(push_id)?;
        pushes.by_seq.remove(&seq)
    }

    /// A push by id.
    pub fn get(&self, app: AppId, push_id: &str) -> Option<Arc<LivePush>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        let pushes = apps.get(&app)?;
        pushes.by_seq.get(pushes.seq_of.get(push_id)?).cloned()
    }

    /// The pushes with `first <= seq <= last`, in seq order.
    pub fn range(&self, app: AppId, first: u64, last: u64) -> Vec<Arc<LivePush>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        match apps.get(&app) {
            Some(pushes) if first <= last => {
                pushes.by_seq.range(first..=last).map(|(_, p)| p.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Drops pushes that expired before `now`.
    pub fn sweep(&self, now: DateTime<Utc>) -> usize {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let mut dropped = 0;
        for pushes in apps.values_mut() {
            let before = pushes.by_seq.len();
            pushes.by_seq.retain(|_, push| push.kept_at(now));
            let AppPushes { by_seq, seq_of } = pushes;
            seq_of.retain(|_, seq| by_seq.contains_key(seq));
            dropped += before - by_seq.len();
        }
        dropped
    }

    pub fn forget_app(&self, app: AppId) {
        self.apps.write().unwrap_or_else(|p| p.into_inner()).remove(&app);
    }

    /// The device's pending pushes after `after_seq`: unexpired, addressed to the account, for
    /// its platform, not `acked`; only the newest `cap` of them, then the first `limit`.
    pub fn pending(
        &self,
        app: AppId,
        platform: &str,
        query: &PendingQuery,
        acked: impl Fn(u64) -> bool,
    ) -> Vec<Arc<LivePush>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        let Some(pushes) = apps.get(&app) else { return Vec::new() };
        let now = Utc::now();
        let candidates: Vec<&Arc<LivePush>> = pushes
            .by_seq
            .range(query.after_seq.saturating_add(1)..)
            .map(|(_, push)| push)
            .filter(|p| {
                p.live_at(now)
                    && p.recipients.contains(query.account_id)
                    && p.admits(platform)
                    && !acked(p.seq)
            })
            .collect();
        let newest = candidates.len().saturating_sub(query.cap);
        candidates[newest..].iter().take(query.limit).map(|p| Arc::clone(p)).collect()
    }

    #[cfg(test)]
    fn len(&self, app: AppId) -> usize {
        self.apps.read().map(|a| a.get(&app).map_or(0, |p| p.by_seq.len())).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use serde_json::json;

    fn live(seq: u64, recipients: &[u32], platforms: Option<&[&str]>, expires_in: i64) -> LivePush {
        LivePush {
            id: format!("p{seq}"),
            seq,
            recipients: recipients.iter().copied().collect(),
            platforms: platforms.map(|p| p.iter().map(|s| s.to_string()).collect()),
            sender: None,
            message: json!({"n": seq}),
            notification: None,
            sent_at: Utc::now(),
            expires_at: Some(Utc::now() + Duration::seconds(expires_in)),
        }
    }

    fn query(after_seq: u64, cap: usize, limit: usize) -> PendingQuery {
        PendingQuery { account_id: 7, after_seq, cap, limit }
    }

    fn seqs(pushes: Vec<Arc<LivePush>>) -> Vec<u64> {
        pushes.iter().map(|p| p.seq).collect()
    }

    #[test]
    fn pending_keeps_order_audience_platform_expiry_and_cap() {
        let inbox = LiveInbox::default();
        inbox.insert(1, Arc::new(live(1, &[7], None, 60)));
        inbox.insert(1, Arc::new(live(2, &[8], None, 60)));
        inbox.insert(1, Arc::new(live(3, &[7], Some(&["android"]), 60)));
        inbox.insert(1, Arc::new(live(4, &[7], None, -1)));
        inbox.insert(1, Arc::new(live(5, &[7], None, 60)));
        inbox.insert(1, Arc::new(live(6, &[7], None, 60)));
        let none = |_| false;
        assert_eq!(seqs(inbox.pending(1, "ios", &query(0, 10, 10), none)), [1, 5, 6]);
        assert_eq!(seqs(inbox.pending(1, "android", &query(0, 10, 10), none)), [1, 3, 5, 6]);
        assert_eq!(seqs(inbox.pending(1, "ios", &query(1, 10, 10), none)), [5, 6]);
        assert_eq!(seqs(inbox.pending(1, "ios", &query(0, 2, 10), none)), [5, 6], "newest kept");
        assert_eq!(seqs(inbox.pending(1, "ios", &query(0, 10, 1), none)), [1], "paged");
        assert_eq!(
            seqs(inbox.pending(1, "ios", &query(0, 10, 10), |s| s == 5)),
            [1, 6],
            "acked skipped"
        );
        assert!(inbox.pending(2, "ios", &query(0, 10, 10), none).is_empty(), "other app");
        assert_eq!(inbox.sweep(Utc::now()), 1);
        assert_eq!(inbox.len(1), 5);
    }
}
