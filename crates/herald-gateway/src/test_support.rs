//! Test doubles for the gateway's seams: an in-memory [`Inbox`] and a server on a local port.
//! Built only with the `test-support` feature; the real inbox is the server's, over its store.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use herald_core::AppId;
use roaring::RoaringBitmap;

use crate::auth::Identity;
use crate::inbox::{DeviceInfo, Inbox, InboxError, Login};
use crate::protocol::Push;
use crate::registry::{Delivery, PushFrames};
use crate::Gateway;

/// An [`Inbox`] in memory: accounts get dense ids on first login, pushes are stored once with
/// their audience, devices keep cursors; everything a test wants to check is recorded.
#[derive(Debug, Default)]
pub struct MemoryInbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<(AppId, String), u32>,
    devices: HashMap<(AppId, String), DeviceRecord>,
    pushes: HashMap<AppId, Vec<Stored>>,
    seqs: HashMap<AppId, u64>,
    pending_calls: Vec<(String, u64)>,
    refuse: Option<String>,
    webpush_keys: HashMap<AppId, String>,
}

#[derive(Debug, Clone, Default)]
struct DeviceRecord {
    account_id: u32,
    cursor: u64,
    delivered: BTreeSet<u64>,
    opened: Vec<String>,
}

#[derive(Debug)]
struct Stored {
    push: Push,
    audience: RoaringBitmap,
}

impl MemoryInbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The account's dense id, created if the account is new (as an import would).
    pub fn account_id(&self, app: AppId, account: &str) -> u32 {
        let mut state = self.state();
        let next = u32::try_from(state.accounts.len()).unwrap_or(u32::MAX);
        *state.accounts.entry((app, account.to_owned())).or_insert(next)
    }

    /// Gives the next seq of the app to a push, without storing it (an online-only push).
    pub fn next_push(&self, app: AppId, message: serde_json::Value) -> Push {
        let mut state = self.state();
        let seq = state.seqs.entry(app).or_insert(0);
        *seq += 1;
        Push {
            push_id: format!("p{seq}"),
            seq: *seq,
            sender: None,
            message,
            notification: None,
            sent_at: Utc::now(),
            expires_at: None,
        }
    }

    /// Stores a push for `audience`, available for a day.
    pub fn store(&self, app: AppId, audience: &RoaringBitmap, message: serde_json::Value) -> Push {
        let mut push = self.next_push(app, message);
        push.expires_at = Some(push.sent_at + Duration::days(1));
        self.state()
            .pushes
            .entry(app)
            .or_default()
            .push(Stored { push: push.clone(), audience: audience.clone() });
        push
    }

    /// Stores a push and delivers it to the online part of the audience, as the dispatcher does.
    pub fn publish(
        &self,
        gateway: &Gateway,
        app: AppId,
        audience: &RoaringBitmap,
        message: serde_json::Value,
    ) -> (Push, Delivery) {
        let push = self.store(app, audience, message);
        let delivery = gateway.registry().deliver(app, audience, &PushFrames::new(&push));
        (push, delivery)
    }

    /// The device's cursor, if it ever logged in.
    pub fn cursor(&self, app: AppId, device_id: &str) -> Option<u64> {
        self.state().devices.get(&(app, device_id.to_owned())).map(|d| d.cursor)
    }

    /// Seqs acked explicitly by the device.
    pub fn delivered(&self, app: AppId, device_id: &str) -> BTreeSet<u64> {
        self.state()
            .devices
            .get(&(app, device_id.to_owned()))
            .map(|d| d.delivered.clone())
            .unwrap_or_default()
    }

    /// Push ids the device reported as opened.
    pub fn opened_by(&self, app: AppId, device_id: &str) -> Vec<String> {
        self.state()
            .devices
            .get(&(app, device_id.to_owned()))
            .map(|d| d.opened.clone())
            .unwrap_or_default()
    }

    /// Every `pending` call so far: (device id, after_seq).
    pub fn pending_calls(&self) -> Vec<(String, u64)> {
        self.state().pending_calls.clone()
    }

    /// Later logins of `app` give `key` as the app's VAPID key, for the welcome.
    pub fn set_webpush_key(&self, app: AppId, key: &str) {
        self.state().webpush_keys.insert(app, key.to_owned());
    }

    /// Makes every later login fail with [`InboxError::Refused`] (or succeed again with `None`).
    pub fn refuse_logins(&self, message: Option<&str>) {
        self.state().refuse = message.map(str::to_owned);
    }
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn login(&self, identity: &Identity, device: &DeviceInfo) -> Result<Login, InboxError> {
        if let Some(message) = self.state().refuse.clone() {
            return Err(InboxError::Refused(message));
        }
        let account_id = self.account_id(identity.app, &identity.account);
        let mut state = self.state();
        let webpush_key = state.webpush_keys.get(&identity.app).cloned();
        let record = state.devices.entry((identity.app, device.device_id.clone())).or_default();
        record.account_id = account_id;
        Ok(Login { account_id, cursor: record.cursor, webpush_key })
    }

    async fn pending(
        &self,
        app: AppId,
        account_id: u32,
        device: &DeviceInfo,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Push>, InboxError> {
        let mut state = self.state();
        state.pending_calls.push((device.device_id.clone(), after_seq));
        let now = Utc::now();
        Ok(state
            .pushes
            .get(&app)
            .into_iter()
            .flatten()
            .filter(|s| s.push.seq > after_seq && s.audience.contains(account_id))
            .filter(|s| s.push.expires_at.is_none_or(|at| at > now))
            .take(limit)
            .map(|s| s.push.clone())
            .collect())
    }

    async fn ack(
        &self,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) -> Result<(), InboxError> {
        let mut state = self.state();
        let record = state.devices.entry((app, device_id.to_owned())).or_default();
        if let Some(up_to) = up_to {
            record.cursor = record.cursor.max(up_to);
        }
        record.delivered.extend(seqs);
        Ok(())
    }

    async fn opened(&self, app: AppId, device_id: &str, push_id: &str) -> Result<(), InboxError> {
        let mut state = self.state();
        state
            .devices
            .entry((app, device_id.to_owned()))
            .or_default()
            .opened
            .push(push_id.to_owned());
        Ok(())
    }
}

/// Serves the gateway's [`crate::connect`] at `/v1/connect` on a free local port; returns the
/// `ws://` URL. The server runs until the runtime ends.
pub async fn serve(gateway: Gateway) -> std::io::Result<(String, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/v1/connect", axum::routing::get(crate::connect))
        .with_state(gateway);
    // With peer addresses, as the server serves it, so that per-address limits apply.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("ws://{addr}/v1/connect"), addr))
}
