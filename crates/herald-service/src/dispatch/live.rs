//! The offline inbox in memory: every stored, unexpired push of every app with its audience
//! bitmap, so that a reconnecting device's pending pushes are found without touching the store.
//! Online-only pushes stay a little while too, so acks of them can be attributed in reports.
//!
//! What devices are shown of a push (its [`PushContent`]) is kept within a byte budget, the
//! newest first: an app that stores many pushes a week cannot make memory grow without bound.
//! The content of an older push is read back from the store when a device needs it.

use std::collections::{BTreeMap, HashMap, VecDeque};
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

/// A stored push: what finds its devices.
#[derive(Debug)]
pub struct LivePush {
    pub id: String,
    pub seq: u64,
    pub recipients: RoaringBitmap,
    pub platforms: Option<Vec<String>>,
    pub sent_at: DateTime<Utc>,
    /// `None` for an online-only push, which never enters the inbox.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What devices are shown of a push.
#[derive(Debug)]
pub struct PushContent {
    pub sender: Option<String>,
    pub message: Value,
    pub notification: Option<Notification>,
    /// Its size as stored (JSON), which is what the budget counts.
    bytes: usize,
}

impl PushContent {
    /// The content of a stored push.
    pub fn from_record(record: &PushRecord) -> Result<Self, String> {
        let message = serde_json::from_str(&record.message)
            .map_err(|e| format!("push {} message: {e}", record.id))?;
        let notification = record
            .notification
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| format!("push {} notification: {e}", record.id))?;
        let bytes = record.message.len()
            + record.notification.as_ref().map_or(0, String::len)
            + record.sender.as_ref().map_or(0, String::len);
        Ok(Self { sender: record.sender.clone(), message, notification, bytes })
    }
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
        Ok(Some(Self {
            id: record.id.clone(),
            seq,
            recipients,
            platforms: record.platforms.clone(),
            sent_at: record.started_at.unwrap_or(record.created_at),
            expires_at: Some(expires_at),
        }))
    }

    pub fn admits(&self, platform: &str) -> bool {
        self.platforms.as_ref().is_none_or(|only| only.iter().any(|p| p == platform))
    }

    /// The push frame for a device of `platform`: its notification resolved for it.
    pub fn frame_for(&self, content: &PushContent, platform: &str) -> Push {
        Push {
            push_id: self.id.clone(),
            seq: self.seq,
            sender: content.sender.clone(),
            message: content.message.clone(),
            notification: content.notification.as_ref().map(|n| n.resolve(platform)),
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

/// A pending push, with its content unless that left memory.
pub type Pending = (Arc<LivePush>, Option<Arc<PushContent>>);

/// Unexpired stored pushes (and recent online-only ones) of every app, by seq.
pub struct LiveInbox {
    state: RwLock<State>,
    /// Most bytes of content kept.
    budget: usize,
}

#[derive(Default)]
struct State {
    apps: HashMap<AppId, AppPushes>,
    /// Contents in the order they were kept, oldest first, with the generation they were
    /// kept under: an entry whose content was dropped, or kept again since, is skipped.
    kept: VecDeque<(AppId, u64, u64)>,
    kept_bytes: usize,
    generation: u64,
}

#[derive(Default)]
struct AppPushes {
    by_seq: BTreeMap<u64, Arc<LivePush>>,
    seq_of: HashMap<String, u64>,
    contents: HashMap<u64, (Arc<PushContent>, u64)>,
}

impl State {
    fn keep(&mut self, app: AppId, seq: u64, content: Arc<PushContent>, budget: usize) {
        let Some(pushes) = self.apps.get_mut(&app) else { return };
        if !pushes.by_seq.contains_key(&seq) {
            return;
        }
        self.generation += 1;
        self.kept_bytes += content.bytes;
        if let Some((old, _)) = pushes.contents.insert(seq, (content, self.generation)) {
            self.kept_bytes -= old.bytes;
        }
        self.kept.push_back((app, seq, self.generation));
        while self.kept_bytes > budget {
            let Some((app, seq, generation)) = self.kept.pop_front() else { break };
            self.drop_content(app, seq, Some(generation));
        }
    }

    /// Takes the entries of contents no longer kept out of the keeping order: it only shrinks
    /// when over budget, so a server under its budget would otherwise grow it by an entry a
    /// push for as long as it runs.
    fn forget_dropped_contents(&mut self) {
        let Self { apps, kept, .. } = self;
        kept.retain(|(app, seq, generation)| {
            let current = apps.get(app).and_then(|pushes| pushes.contents.get(seq));
            current.is_some_and(|(_, kept_under)| kept_under == generation)
        });
    }

    /// Drops a push's content (only if kept under `generation`, when given).
    fn drop_content(&mut self, app: AppId, seq: u64, generation: Option<u64>) {
        let Some(pushes) = self.apps.get_mut(&app) else { return };
        let current = pushes.contents.get(&seq).map(|(_, g)| *g);
        if current.is_some() && (generation.is_none() || generation == current) {
            if let Some((content, _)) = pushes.contents.remove(&seq) {
                self.kept_bytes -= content.bytes;
            }
        }
    }
}

impl LiveInbox {
    /// An empty inbox keeping at most `budget` bytes of push contents.
    pub fn new(budget: usize) -> Self {
        Self { state: RwLock::default(), budget }
    }

    /// Loads every app's live pushes from the store.
    pub async fn load(store: &DynStore, budget: usize) -> Result<Self, StoreError> {
        let inbox = Self::new(budget);
        let now = Utc::now();
        for app in store.apps().await? {
            for record in store.live_pushes(app.id, now).await? {
                let loaded = LivePush::from_record(&record)
                    .and_then(|push| Ok(push.zip(Some(PushContent::from_record(&record)?))));
                match loaded {
                    Ok(Some((push, content))) => {
                        inbox.insert(app.id, Arc::new(push), Arc::new(content));
                    }
                    Ok(None) => {}
                    Err(err) => tracing::error!(app_id = app.id, %err, "stored push skipped"),
                }
            }
        }
        Ok(inbox)
    }

    /// Adds a push; its content is kept only if devices may fetch it (not online-only).
    pub fn insert(&self, app: AppId, push: Arc<LivePush>, content: Arc<PushContent>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let pushes = state.apps.entry(app).or_default();
        let (seq, stored) = (push.seq, push.expires_at.is_some());
        pushes.seq_of.insert(push.id.clone(), seq);
        pushes.by_seq.insert(seq, push);
        if stored {
            state.keep(app, seq, content, self.budget);
        }
    }

    /// Keeps the content of a push again, read back from the store: the devices reconnecting
    /// after this one will want it too.
    pub fn restore(&self, app: AppId, seq: u64, content: Arc<PushContent>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.keep(app, seq, content, self.budget);
    }

    /// Takes a push out (recalled or cancelled); returns it if it was there.
    pub fn remove(&self, app: AppId, push_id: &str) -> Option<Arc<LivePush>> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let pushes = state.apps.get_mut(&app)?;
        let seq = pushes.seq_of.remove(push_id)?;
        let push = pushes.by_seq.remove(&seq);
        state.drop_content(app, seq, None);
        push
    }

    /// A push by id.
    pub fn get(&self, app: AppId, push_id: &str) -> Option<Arc<LivePush>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let pushes = state.apps.get(&app)?;
        pushes.by_seq.get(pushes.seq_of.get(push_id)?).cloned()
    }

    /// The pushes with `first <= seq <= last`, in seq order.
    pub fn range(&self, app: AppId, first: u64, last: u64) -> Vec<Arc<LivePush>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        match state.apps.get(&app) {
            Some(pushes) if first <= last => {
                pushes.by_seq.range(first..=last).map(|(_, p)| p.clone()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Drops pushes that expired before `now`.
    pub fn sweep(&self, now: DateTime<Utc>) -> usize {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let state = &mut *state;
        let mut dropped = 0;
        for pushes in state.apps.values_mut() {
            let before = pushes.by_seq.len();
            pushes.by_seq.retain(|_, push| push.kept_at(now));
            let AppPushes { by_seq, seq_of, contents } = pushes;
            seq_of.retain(|_, seq| by_seq.contains_key(seq));
            contents.retain(|seq, (content, _)| {
                let keep = by_seq.contains_key(seq);
                if !keep {
                    state.kept_bytes -= content.bytes;
                }
                keep
            });
            dropped += before - by_seq.len();
        }
        state.forget_dropped_contents();
        dropped
    }

    pub fn forget_app(&self, app: AppId) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(pushes) = state.apps.remove(&app) {
            state.kept_bytes -= pushes.contents.values().map(|(c, _)| c.bytes).sum::<usize>();
        }
    }

    /// The device's pending pushes after `after_seq`: unexpired, addressed to the account, for
    /// its platform, not `acked`; only the newest `cap` of them, then the first `limit`.
    pub fn pending(
        &self,
        app: AppId,
        platform: &str,
        query: &PendingQuery,
        acked: impl Fn(u64) -> bool,
    ) -> Vec<Pending> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let Some(pushes) = state.apps.get(&app) else { return Vec::new() };
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
        candidates[newest..]
            .iter()
            .take(query.limit)
            .map(|p| (Arc::clone(p), pushes.contents.get(&p.seq).map(|(c, _)| c.clone())))
            .collect()
    }

    /// Bytes of content kept.
    pub fn kept_bytes(&self) -> usize {
        self.state.read().map(|s| s.kept_bytes).unwrap_or_default()
    }

    #[cfg(test)]
    fn kept_len(&self) -> usize {
        self.state.read().map(|s| s.kept.len()).unwrap_or_default()
    }

    #[cfg(test)]
    fn len(&self, app: AppId) -> usize {
        self.state
            .read()
            .map(|s| s.apps.get(&app).map_or(0, |p| p.by_seq.len()))
            .unwrap_or_default()
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
            sent_at: Utc::now(),
            expires_at: Some(Utc::now() + Duration::seconds(expires_in)),
        }
    }

    /// A content of `bytes` bytes.
    fn content(bytes: usize) -> Arc<PushContent> {
        Arc::new(PushContent { sender: None, message: json!({}), notification: None, bytes })
    }

    fn query(after_seq: u64, cap: usize, limit: usize) -> PendingQuery {
        PendingQuery { account_id: 7, after_seq, cap, limit }
    }

    fn seqs(pushes: Vec<Pending>) -> Vec<u64> {
        pushes.iter().map(|(p, _)| p.seq).collect()
    }

    #[test]
    fn pending_keeps_order_audience_platform_expiry_and_cap() {
        let inbox = LiveInbox::new(1 << 20);
        inbox.insert(1, Arc::new(live(1, &[7], None, 60)), content(10));
        inbox.insert(1, Arc::new(live(2, &[8], None, 60)), content(10));
        inbox.insert(1, Arc::new(live(3, &[7], Some(&["android"]), 60)), content(10));
        inbox.insert(1, Arc::new(live(4, &[7], None, -1)), content(10));
        inbox.insert(1, Arc::new(live(5, &[7], None, 60)), content(10));
        inbox.insert(1, Arc::new(live(6, &[7], None, 60)), content(10));
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
        assert_eq!(inbox.kept_bytes(), 50, "the swept push's content is gone too");
    }

    #[test]
    fn a_server_under_its_budget_keeps_no_trace_of_swept_pushes() {
        let inbox = LiveInbox::new(1 << 20);
        for seq in 1..=100 {
            inbox.insert(1, Arc::new(live(seq, &[7], None, -1)), content(10));
            inbox.restore(1, seq, content(10));
        }
        assert_eq!(inbox.kept_len(), 200, "kept, then kept again");
        assert_eq!(inbox.sweep(Utc::now()), 100);
        assert_eq!((inbox.len(1), inbox.kept_bytes(), inbox.kept_len()), (0, 0, 0));
    }

    #[test]
    fn contents_beyond_the_budget_leave_oldest_first_and_come_back() {
        let inbox = LiveInbox::new(100);
        for seq in 1..=5 {
            inbox.insert(1, Arc::new(live(seq, &[7], None, 60)), content(30));
        }
        assert_eq!(inbox.kept_bytes(), 90);
        let kept = |inbox: &LiveInbox| -> Vec<bool> {
            inbox
                .pending(1, "ios", &query(0, 10, 10), |_| false)
                .iter()
                .map(|(_, c)| c.is_some())
                .collect()
        };
        // Every push is still pending; only the content of the oldest two left memory.
        assert_eq!(kept(&inbox), [false, false, true, true, true]);

        // A content read back is kept as the newest; the oldest kept one makes room.
        inbox.restore(1, 1, content(30));
        assert_eq!(kept(&inbox), [true, false, false, true, true]);
        assert_eq!(inbox.kept_bytes(), 90);

        // Removing, sweeping and forgetting give their bytes back.
        inbox.remove(1, "p5");
        assert_eq!(inbox.kept_bytes(), 60);
        inbox.restore(1, 5, content(30));
        assert_eq!(inbox.kept_bytes(), 60, "a removed push is not kept again");
        inbox.insert(2, Arc::new(live(1, &[7], None, 60)), content(20));
        inbox.forget_app(1);
        assert_eq!(inbox.kept_bytes(), 20);
        inbox.sweep(Utc::now());
        assert_eq!(inbox.kept_len(), 1, "a sweep forgets the order of what left");
        // A content larger than the whole budget is not kept at all.
        inbox.insert(2, Arc::new(live(2, &[7], None, 60)), content(500));
        assert!(inbox.kept_bytes() <= 100);
    }
}
