//! Vendor channels in the server: each app's APNs / FCM credentials (sealed in the store,
//! installed in the sender at start-up and on every change), and the offline notification of a
//! dispatched push to the devices it did not reach online.

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_core::account::{TokenKind, VendorToken};
use herald_core::push::PushStatus;
use herald_core::{App, AppId};
use herald_index::RoaringBitmap;
use herald_store::{DeviceToken, DynStore};
use herald_vendor::{ApnsCredentials, FcmCredentials, Outcome, SecretBox, Vendor, VendorPush};
use serde_json::{json, Value};

use crate::directory::{self, Directory};
use crate::dispatch::Receipts;
use crate::webhooks::Webhooks;
use crate::ServiceError;

/// Device tokens read from the store per page, and sent per `send_many` call.
const PAGE: u32 = 10_000;

/// The vendor sender and the key sealing credentials.
#[derive(Clone)]
pub struct Vendors {
    pub sender: Arc<dyn Vendor>,
    pub secrets: Arc<SecretBox>,
}

fn kind_of(vendor: &str) -> Result<TokenKind, ServiceError> {
    TokenKind::parse(vendor)
        .ok_or_else(|| ServiceError::NotFound { what: "vendor", id: vendor.to_owned() })
}

/// The sealing context binds a sealed value to its app and vendor: copied elsewhere, it does
/// not open.
fn context(app: AppId, kind: TokenKind) -> String {
    format!("app/{app}/{}", kind.as_str())
}

impl Vendors {
    /// Installs every stored credential in the sender. A credential that does not open (a wrong
    /// key) is logged and skipped, so one bad row does not keep the server down.
    pub async fn load(&self, store: &DynStore) -> Result<(), herald_store::StoreError> {
        for app in store.apps().await? {
            for kind in [TokenKind::Apns, TokenKind::Fcm] {
                let Some(sealed) = store.vendor_credentials(app.id, kind.as_str()).await? else {
                    continue;
                };
                let sealed = String::from_utf8_lossy(&sealed.sealed).into_owned();
                if let Err(err) = self.install(app.id, kind, &sealed) {
                    tracing::error!(app_id = app.id, vendor = kind.as_str(), %err, "vendor credentials not loaded");
                }
            }
        }
        Ok(())
    }

    fn install(&self, app: AppId, kind: TokenKind, sealed: &str) -> Result<(), String> {
        let ctx = context(app, kind);
        match kind {
            TokenKind::Apns => {
                let credentials: ApnsCredentials =
                    self.secrets.open_json(&ctx, sealed).map_err(|e| e.to_string())?;
                self.sender.set_apns(app, &credentials).map_err(|e| e.to_string())
            }
            TokenKind::Fcm => {
                let credentials: FcmCredentials =
                    self.secrets.open_json(&ctx, sealed).map_err(|e| e.to_string())?;
                self.sender.set_fcm(app, &credentials).map_err(|e| e.to_string())
            }
        }
    }

    /// Validates, installs and stores an app's credentials; returns them redacted.
    pub async fn set(
        &self,
        store: &DynStore,
        app: &App,
        vendor: &str,
        body: Value,
    ) -> Result<Value, ServiceError> {
        let kind = kind_of(vendor)?;
        let invalid = |err: &dyn std::fmt::Display| {
            ServiceError::InvalidRequest(format!("{vendor} credentials: {err}"))
        };
        let ctx = context(app.id, kind);
        let (sealed, redacted) = match kind {
            TokenKind::Apns => {
                let credentials: ApnsCredentials =
                    serde_json::from_value(body).map_err(|e| invalid(&e))?;
                self.sender.set_apns(app.id, &credentials).map_err(|e| invalid(&e))?;
                let redacted = credentials.redacted().map_err(|e| invalid(&e))?;
                (self.secrets.seal_json(&ctx, &credentials), json!(redacted))
            }
            TokenKind::Fcm => {
                let credentials: FcmCredentials =
                    serde_json::from_value(body).map_err(|e| invalid(&e))?;
                self.sender.set_fcm(app.id, &credentials).map_err(|e| invalid(&e))?;
                let redacted = credentials.redacted().map_err(|e| invalid(&e))?;
                (self.secrets.seal_json(&ctx, &credentials), json!(redacted))
            }
        };
        store
            .set_vendor_credentials(app.id, vendor, sealed.as_bytes(), &redacted.to_string())
            .await?;
        tracing::info!(app_id = app.id, vendor, "vendor credentials set");
        Ok(redacted)
    }

    /// The stored credentials, redacted.
    pub async fn get(
        &self,
        store: &DynStore,
        app: &App,
        vendor: &str,
    ) -> Result<Value, ServiceError> {
        kind_of(vendor)?;
        let stored = store.vendor_credentials(app.id, vendor).await?.ok_or_else(|| {
            ServiceError::NotFound { what: "vendor credentials", id: vendor.to_owned() }
        })?;
        serde_json::from_str(&stored.redacted)
            .map_err(|err| ServiceError::Internal(err.to_string()))
    }

    pub async fn delete(
        &self,
        store: &DynStore,
        app: &App,
        vendor: &str,
    ) -> Result<(), ServiceError> {
        let kind = kind_of(vendor)?;
        store.delete_vendor_credentials(app.id, vendor).await?;
        self.sender.remove(app.id, kind);
        Ok(())
    }
}

/// What the offline notification of one push needs.
pub struct OfflinePush {
    pub app: AppId,
    pub push_id: String,
    pub push: VendorPush,
    /// Accounts of the audience that no live connection reached.
    pub offline: RoaringBitmap,
    pub platforms: Option<Vec<String>>,
}

/// Sends a push to the offline devices with vendor tokens, page by page: counts outcomes per
/// platform, removes tokens the vendor says are dead (and tells the app's webhook), and stops
/// when the push is cancelled meanwhile.
pub async fn notify_offline(
    vendors: &Vendors,
    store: &DynStore,
    directory: &Directory,
    receipts: &Receipts,
    webhooks: &Webhooks,
    job: OfflinePush,
) {
    let prepared = vendors.sender.prepare(&job.push);
    let mut after = None;
    loop {
        let page = match store.device_tokens(job.app, after, PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(app_id = job.app, push_id = %job.push_id, %err, "cannot read device tokens");
                return;
            }
        };
        let Some(last) = page.last() else { return };
        after = Some(last.cursor);
        if cancelled(store, job.app, &job.push_id).await {
            tracing::info!(app_id = job.app, push_id = %job.push_id, "vendor sends stopped: push cancelled");
            return;
        }
        let targets: Vec<&DeviceToken> = page
            .iter()
            .filter(|d| job.offline.contains(d.account_id))
            .filter(|d| job.platforms.as_ref().is_none_or(|only| only.contains(&d.platform)))
            .filter(|d| vendors.sender.has_channel(job.app, d.kind))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let tokens: Vec<VendorToken> =
            targets.iter().map(|d| VendorToken { kind: d.kind, token: d.token.clone() }).collect();
        let outcomes = vendors.sender.send_many(job.app, &prepared, &tokens).await;
        let mut counts: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
        for (device, outcome) in targets.iter().zip(&outcomes) {
            let entry = counts.entry(device.platform.clone()).or_default();
            // Kinds, not the vendor's reason text: a label's values must stay few (reasons
            // are in each push's report).
            let kind = match outcome {
                Outcome::Sent { .. } => "sent",
                Outcome::Unregistered { .. } => "unregistered",
                Outcome::BadDeviceToken { .. } => "bad_token",
                Outcome::Failed { .. } => "failed",
            };
            let vendor = device.kind.as_str();
            metrics::counter!("herald_vendor_notifications_total", "vendor" => vendor, "outcome" => kind)
                .increment(1);
            match outcome {
                Outcome::Sent { .. } => entry.0 += 1,
                failure => {
                    let reason = failure.reason().unwrap_or("Unknown").to_owned();
                    *entry.1.entry(reason.clone()).or_default() += 1;
                    if failure.removes_token() {
                        prune(store, directory, webhooks, job.app, device, &reason).await;
                    }
                }
            }
        }
        for (platform, (sent, failed)) in counts {
            receipts.vendor(job.app, &job.push_id, &platform, sent, failed);
        }
    }
}

async fn cancelled(store: &DynStore, app: AppId, push_id: &str) -> bool {
    matches!(store.push(app, push_id).await, Ok(push) if push.status == PushStatus::Cancelled)
}

/// Removes a dead token (unless the device registered a new one meanwhile) and tells the app.
async fn prune(
    store: &DynStore,
    directory: &Directory,
    webhooks: &Webhooks,
    app: AppId,
    device: &DeviceToken,
    reason: &str,
) {
    match store.clear_device_token(app, &device.device_id, &device.token).await {
        Ok(true) => {
            directory::device_changed(directory, app, &device.device_id);
            tracing::info!(app_id = app, device_id = %device.device_id, reason, "vendor token removed");
            let event = json!({
                "device_id": device.device_id,
                "platform": device.platform,
                "vendor": device.kind.as_str(),
                "reason": reason,
            });
            webhooks.emit(app, "device.token_invalidated", event).await;
        }
        Ok(false) => {}
        Err(err) => {
            tracing::error!(app_id = app, device_id = %device.device_id, %err, "cannot remove a vendor token")
        }
    }
}
