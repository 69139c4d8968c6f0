//! The gateway's [`Inbox`] over the store: logins go through the directory, pending pushes
//! come from the [`LiveInbox`], acks and opens go to [`Receipts`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::account::{Device, TokenKind, VendorToken};
use herald_core::{App, AppId};
use herald_gateway::protocol::{Push, VendorKind};
use herald_gateway::{DeviceInfo, Identity, Inbox, InboxError, Login};
use herald_store::{DynStore, StoreError};
use herald_vendor::Vendor;

use super::live::{LiveInbox, LivePush, PendingQuery, PushContent};
use super::receipts::{DeviceRef, Receipts};
use crate::directory::{self, Directory};
use crate::recent_apps::RecentApps;

/// The gateway's [`Inbox`]: logins go through the directory, pending pushes come from the
/// [`LiveInbox`], acks move the device's cursor in the store.
pub struct StoreInbox {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub live: Arc<LiveInbox>,
    pub receipts: Receipts,
    pub apps: Arc<AppCache>,
    /// Tells logins the app's VAPID key for the welcome.
    pub vendor: Arc<dyn Vendor>,
}

/// How long a login may use an app read before: limit changes reach sessions within it.
const APP_CACHE_TTL: Duration = Duration::from_secs(5);

/// Apps as logins and inbox reads need them, read from the store at most every few seconds:
/// a reconnect storm would otherwise read the same app row thousands of times.
pub struct AppCache(RecentApps<AppId>);

impl Default for AppCache {
    fn default() -> Self {
        Self(RecentApps::new(APP_CACHE_TTL))
    }
}

impl AppCache {
    pub fn forget(&self, id: AppId) {
        self.0.forget_app(id);
    }

    async fn get(&self, store: &DynStore, id: AppId) -> Result<App, StoreError> {
        self.0.get(&id, || store.app(id)).await
    }
}

impl StoreInbox {
    /// The content of a push that left memory, from the store; kept again for the devices
    /// that will want it next.
    async fn read_back(&self, app: AppId, push: &LivePush) -> Result<Arc<PushContent>, InboxError> {
        metrics::counter!("herald_inbox_content_reads_total").increment(1);
        let record = self.store.push(app, &push.id).await.map_err(unavailable)?;
        let content = Arc::new(PushContent::from_record(&record).map_err(unavailable)?);
        self.live.restore(app, push.seq, content.clone());
        Ok(content)
    }
}

/// The wire's vendor kind as the directory stores it.
fn token_kind(kind: VendorKind) -> TokenKind {
    match kind {
        VendorKind::Apns => TokenKind::Apns,
        VendorKind::Fcm => TokenKind::Fcm,
        VendorKind::WebPush => TokenKind::WebPush,
    }
}

fn unavailable(err: impl std::fmt::Display) -> InboxError {
    InboxError::Unavailable(err.to_string())
}

#[async_trait]
impl Inbox for StoreInbox {
    async fn login(&self, identity: &Identity, info: &DeviceInfo) -> Result<Login, InboxError> {
        let app = self.apps.get(&self.store, identity.app).await.map_err(unavailable)?;
        let device = Device {
            device_id: info.device_id.clone(),
            platform: info.platform.clone(),
            package: info.package.clone(),
            vendor_token: info
                .vendor_token
                .as_ref()
                .map(|t| VendorToken { kind: token_kind(t.kind), token: t.token.clone() }),
            app_version: info.app_version.clone(),
            locale: info.locale.clone(),
            time_zone: info.time_zone.clone(),
        };
        let binding = directory::register_device(&self.directory, &app, &identity.account, &device)
            .await
            .map_err(|err| match err.is_caller_fault() {
                true => InboxError::Refused(err.to_string()),
                false => unavailable(err),
            })?;
        let device = DeviceRef {
            account_id: binding.account_id,
            device_key: binding.device_key,
            platform: info.platform.clone(),
        };
        let cursor =
            self.receipts.login(app.id, &info.device_id, device).await.map_err(unavailable)?;
        Ok(Login {
            account_id: binding.account_id,
            cursor: cursor.acked,
            webpush_key: self.vendor.webpush_key(app.id),
        })
    }

    async fn pending(
        &self,
        app: AppId,
        account_id: u32,
        device: &DeviceInfo,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Push>, InboxError> {
        let limits = self.apps.get(&self.store, app).await.map_err(unavailable)?.limits;
        let cursor = self.receipts.cursor(app, &device.device_id).await.map_err(unavailable)?;
        let cap = usize::try_from(limits.offline_pushes_per_device).unwrap_or(usize::MAX);
        let query = PendingQuery { account_id, after_seq, cap, limit };
        let pushes = self.live.pending(app, &device.platform, &query, |s| cursor.has(s));
        let mut frames = Vec::with_capacity(pushes.len());
        for (push, content) in pushes {
            let content = match content {
                Some(content) => content,
                None => self.read_back(app, &push).await?,
            };
            frames.push(push.frame_for(&content, &device.platform));
        }
        Ok(frames)
    }

    async fn ack(
        &self,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) -> Result<(), InboxError> {
        self.receipts.ack(app, device_id, up_to, seqs).await.map_err(unavailable)
    }

    fn logout(&self, app: AppId, device_id: &str) {
        self.receipts.logout(app, device_id);
    }

    async fn opened(&self, app: AppId, device_id: &str, push_id: &str) -> Result<(), InboxError> {
        metrics::counter!("herald_pushes_opened_total").increment(1);
        self.receipts.opened(app, device_id, push_id);
        Ok(())
    }
}
