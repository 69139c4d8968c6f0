//! The offline side of delivery: the [`Inbox`] seam the server implements over its store.
//!
//! A push is stored once with its audience bitmap and an app-wide sequence number; a device's
//! inbox is "pushes after my cursor whose audience holds my account" (DESIGN principle 1). The
//! gateway asks the inbox for that list when a device connects and reports acks and opens back.

use async_trait::async_trait;
use herald_core::AppId;

use crate::auth::Identity;
use crate::protocol::{Hello, Push, VendorToken};

/// A device as described by its hello (everything but the token and the resume point).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub device_id: String,
    pub platform: String,
    pub package: String,
    pub vendor_token: Option<VendorToken>,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
}

impl DeviceInfo {
    /// What a session keeps after its login: the device id (acks, opens) and the platform
    /// (stored pushes); the rest went to the inbox at login, and every idle connection would
    /// hold it for nothing.
    pub fn for_session(self) -> Self {
        Self {
            device_id: self.device_id,
            platform: self.platform,
            package: String::new(),
            vendor_token: None,
            app_version: None,
            locale: None,
            time_zone: None,
        }
    }
}

impl From<&Hello> for DeviceInfo {
    fn from(hello: &Hello) -> Self {
        Self {
            device_id: hello.device_id.clone(),
            platform: hello.platform.clone(),
            package: hello.package.clone(),
            vendor_token: hello.vendor_token.clone(),
            app_version: hello.app_version.clone(),
            locale: hello.locale.clone(),
            time_zone: hello.time_zone.clone(),
        }
    }
}

/// The result of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The account's dense id within the app: its bit in audience bitmaps.
    pub account_id: u32,
    /// The device's stored cursor: the highest `seq` it acked cumulatively (0 if never).
    pub cursor: u64,
    /// The app's VAPID public key when it can send Web Push; the welcome passes it on, so a
    /// page can subscribe without asking its back end.
    pub webpush_key: Option<String>,
}

/// One device's acks, as [`Inbox::ack_batch`] receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRecord {
    pub app: AppId,
    pub device_id: String,
    pub up_to: Option<u64>,
    pub seqs: Vec<u64>,
}

/// Why the inbox could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The server will not serve this login (app disabled, account blocked, …); the message is
    /// shown to the client. Closes with 4006.
    #[error("refused: {0}")]
    Refused(String),
    /// The store failed; the client retries later. Closes with 1011 when it happens at login.
    #[error("inbox unavailable: {0}")]
    Unavailable(String),
}

/// Offline delivery state per device.
///
/// "seq" is the app-wide, strictly increasing sequence number the dispatcher gives each push
/// it stores (or sends online); devices receive pushes in increasing seq order, and a device's
/// *cursor* is the highest seq it acked cumulatively.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Registers the device (or updates it: platform, package, vendor token, locale …), binds
    /// it to `identity.account` (the last bind wins), creates the account and gives it its dense
    /// id if it is new, so that later audiences can contain it; returns the id and the device's
    /// stored cursor.
    async fn login(&self, identity: &Identity, device: &DeviceInfo) -> Result<Login, InboxError>;

    /// Stored pushes for the device with `seq > after_seq`, in increasing seq order, at most
    /// `limit` of them. Only pushes whose audience held `account_id` when they were made, that
    /// have not expired, were not recalled, and whose platform filter admits `device.platform`;
    /// the notification resolved for that platform. The per-device offline cap applies (the
    /// newest pushes are kept). The gateway calls again with the last seq it got while a call
    /// returns `limit` pushes. `device` is as the session keeps it ([`DeviceInfo::for_session`]):
    /// its id and platform only.
    async fn pending(
        &self,
        app: AppId,
        account_id: u32,
        device: &DeviceInfo,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Push>, InboxError>;

    /// The device received pushes: every one with `seq <= up_to` (moves its cursor forward,
    /// never back) and the ones in `seqs` (counted as delivered, cursor unchanged). The gateway
    /// only passes sequence numbers it sent on this connection or that were below its resume
    /// point. Idempotent.
    async fn ack(
        &self,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) -> Result<(), InboxError>;

    /// Several devices' acks at once, each as in [`Inbox::ack`]; at most one device appears
    /// once per batch. The gateway records acks through this method only, one batch at a time.
    /// The default records them one by one; a store that commits each write should override it
    /// to record a batch in one transaction.
    async fn ack_batch(&self, acks: Vec<AckRecord>) -> Result<(), InboxError> {
        let mut failed = None;
        for ack in acks {
            if let Err(err) = self.ack(ack.app, &ack.device_id, ack.up_to, &ack.seqs).await {
                failed = Some(err);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// A session that [`Inbox::login`] began has ended, after its last acks were recorded:
    /// what the inbox keeps for a connected device may go.
    fn logout(&self, app: AppId, device_id: &str) {
        let _ = (app, device_id);
    }

    /// The user opened the notification of push `push_id` on the device (a click). Unknown
    /// push ids, and pushes whose audience did not hold the device's account, are ignored:
    /// the id comes from the client.
    async fn opened(&self, app: AppId, device_id: &str, push_id: &str) -> Result<(), InboxError>;
}
