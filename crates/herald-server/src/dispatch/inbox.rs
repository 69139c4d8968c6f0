//! The offline inbox: every stored, unexpired push of every app, held in memory with its
//! audience bitmap so that a reconnecting device's pending pushes are found without touching
//! the store; and the gateway's [`Inbox`] over it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_core::account::{Device, TokenKind, VendorToken};
use herald_core::push::Notification;
use herald_core::AppId;
use herald_gateway::protocol::{Push, VendorKind};
use herald_gateway::{DeviceInfo, Identity, Inbox, InboxError, Login};
use herald_index::RoaringBitmap;
use herald_store::{DynStore, PushRecord, StoreError};
use serde_json::Value;

use crate::directory::{self, Directory};

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

    fn admits(&self, platform: &str) -> bool {
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

    fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires| expires > now)
    }
}

/// What a device asks its inbox for.
pub(super) struct PendingQuery {
    pub account_id: u32,
    pub after_seq: u64,
    /// The app's `offline_pushes_per_device`: only the newest this many count.
    pub cap: usize,
    /// Page size.
    pub limit: usize,
}

/// Unexpired stored pushes of every app, by seq.
#[derive(Default)]
pub struct LiveInbox {
    apps: RwLock<HashMap<AppId, BTreeMap<u64, Arc<LivePush>>>>,
}

impl LiveInbox {
    /// Loads every app's live pushes from the store.
    pub async fn load(store: &DynStore) -> Result<Self, StoreError> {
        let inbox = Self::default();
        let now = Utc::now();
        for app in store.apps().await? {
            for record in store.live_pushes(app.id, now).await? {
                match LivePush::from_record(&record) {
                    Ok(Some(push)) => inbox.insert(app.id, push),
                    Ok(None) => {}
                    Err(err) => tracing::error!(app_id = app.id, %err, "stored push skipped"),
                }
            }
        }
        Ok(inbox)
    }

    /// Adds a stored push; online-only pushes are ignored.
    pub fn insert(&self, app: AppId, push: LivePush) {
        if push.expires_at.is_none() {
            return;
        }
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        apps.entry(app).or_default().insert(push.seq, Arc::new(push));
    }

    /// Drops pushes that expired before `now`.
    pub fn sweep(&self, now: DateTime<Utc>) -> usize {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let mut dropped = 0;
        for pushes in apps.values_mut() {
            let before = pushes.len();
            pushes.retain(|_, push| push.live_at(now));
            dropped += before - pushes.len();
        }
        dropped
    }

    pub fn forget_app(&self, app: AppId) {
        self.apps.write().unwrap_or_else(|p| p.into_inner()).remove(&app);
    }

    /// The device's pending pushes after `after_seq`: unexpired, addressed to the account, for
    /// its platform, not `acked`; only the newest `cap` of them, then the first `limit`.
    pub(super) fn pending(
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
        self.apps.read().map(|a| a.get(&app).map_or(0, BTreeMap::len)).unwrap_or_default()
    }
}

/// The gateway's [`Inbox`]: logins go through the directory, pending pushes come from the
/// [`LiveInbox`], acks move the device's cursor in the store.
pub struct StoreInbox {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub live: Arc<LiveInbox>,
}

fn unavailable(err: impl std::fmt::Display) -> InboxError {
    InboxError::Unavailable(err.to_string())
}

#[async_trait]
impl Inbox for StoreInbox {
    async fn login(&self, identity: &Identity, info: &DeviceInfo) -> Result<Login, InboxError> {
        let app = self.store.app(identity.app).await.map_err(unavailable)?;
        let device = Device {
            device_id: info.device_id.clone(),
            platform: info.platform.clone(),
            package: info.package.clone(),
            vendor_token: info.vendor_token.as_ref().map(|t| VendorToken {
                kind: match t.kind {
                    VendorKind::Apns => TokenKind::Apns,
                    VendorKind::Fcm => TokenKind::Fcm,
                },
                token: t.token.clone(),
            }),
            app_version: info.app_version.clone(),
            locale: info.locale.clone(),
            time_zone: info.time_zone.clone(),
        };
        let binding = directory::register_device(&self.directory, &app, &identity.account, &device)
            .await
            .map_err(|err| match err.status().is_client_error() {
                true => InboxError::Refused(err.to_string()),
                false => unavailable(err),
            })?;
        let cursor = self.store.cursor(app.id, &info.device_id).await.map_err(unavailable)?;
        Ok(Login { account_id: binding.account_id, cursor: cursor.acked })
    }

    async fn pending(
        &self,
        app: AppId,
        account_id: u32,
        device: &DeviceInfo,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Push>, InboxError> {
        let limits = self.store.app(app).await.map_err(unavailable)?.limits;
        let cursor = self.store.cursor(app, &device.device_id).await.map_err(unavailable)?;
        let cap = usize::try_from(limits.offline_pushes_per_device).unwrap_or(usize::MAX);
        let query = PendingQuery { account_id, after_seq, cap, limit };
        let pushes = self.live.pending(app, &device.platform, &query, |s| cursor.has(s));
        Ok(pushes.iter().map(|p| p.frame_for(&device.platform)).collect())
    }

    async fn ack(
        &self,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) -> Result<(), InboxError> {
        self.store.ack(app, device_id, up_to, seqs).await.map_err(unavailable)?;
        Ok(())
    }

    async fn opened(
        &self,
        _app: AppId,
        _device_id: &str,
        _push_id: &str,
    ) -> Result<(), InboxError> {
        metrics::counter!("herald_pushes_opened_total").increment(1);
        Ok(())
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
        inbox.insert(1, live(1, &[7], None, 60));
        inbox.insert(1, live(2, &[8], None, 60));
        inbox.insert(1, live(3, &[7], Some(&["android"]), 60));
        inbox.insert(1, live(4, &[7], None, -1));
        inbox.insert(1, live(5, &[7], None, 60));
        inbox.insert(1, live(6, &[7], None, 60));
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
