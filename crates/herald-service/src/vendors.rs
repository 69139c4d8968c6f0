//! Vendor channels in the server: each app's APNs / FCM / Web Push credentials (sealed in the
//! store, installed in the sender at start-up and on every change), the check of browser
//! subscriptions devices register, and the offline notification of a dispatched push to the
//! devices it did not reach online.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_core::account::{Device, TokenKind, VendorToken};
use herald_core::push::PushStatus;
use herald_core::{App, AppId};
use herald_index::RoaringBitmap;
use herald_store::{DeviceToken, DynStore};
use herald_vendor::retry::RedeliverySettings;
use herald_vendor::PreparedPush;
use herald_vendor::{
    ApnsCredentials, CredentialsError, FcmCredentials, Outcome, SecretBox, Vendor, VendorPush,
    WebPushCredentials, WebPushSubscription,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::directory::{self, Directory};
use crate::dispatch::Receipts;
use crate::tasks::Tasks;
use crate::webhooks::Webhooks;
use crate::ServiceError;

/// Device tokens read from the store per page, and sent per `send_many` call.
const PAGE: u32 = 10_000;

/// The vendor sender, the key sealing credentials, and how failed sends are sent again.
#[derive(Clone)]
pub struct Vendors {
    pub sender: Arc<dyn Vendor>,
    pub secrets: Arc<SecretBox>,
    pub redelivery: RedeliverySettings,
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

/// What the service does alike with each vendor's credentials: install them in the sender and
/// show them without their secret.
trait Credentials: Serialize + DeserializeOwned {
    fn install(&self, sender: &dyn Vendor, app: AppId) -> Result<(), CredentialsError>;
    fn shown(&self) -> Result<Value, CredentialsError>;
}

impl Credentials for ApnsCredentials {
    fn install(&self, sender: &dyn Vendor, app: AppId) -> Result<(), CredentialsError> {
        sender.set_apns(app, self)
    }

    fn shown(&self) -> Result<Value, CredentialsError> {
        Ok(json!(self.redacted()?))
    }
}

impl Credentials for FcmCredentials {
    fn install(&self, sender: &dyn Vendor, app: AppId) -> Result<(), CredentialsError> {
        sender.set_fcm(app, self)
    }

    fn shown(&self) -> Result<Value, CredentialsError> {
        Ok(json!(self.redacted()?))
    }
}

impl Credentials for WebPushCredentials {
    fn install(&self, sender: &dyn Vendor, app: AppId) -> Result<(), CredentialsError> {
        sender.set_webpush(app, self)
    }

    fn shown(&self) -> Result<Value, CredentialsError> {
        Ok(json!(self.redacted()?))
    }
}

impl Vendors {
    /// Installs every stored credential in the sender. A credential that does not open (a wrong
    /// key) is logged and skipped, so one bad row does not keep the server down.
    pub async fn load(&self, store: &DynStore) -> Result<(), herald_store::StoreError> {
        for app in store.apps().await? {
            for kind in TokenKind::ALL {
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

    /// Installs what the store holds for one app now, and removes what it no longer holds:
    /// another node changed the app's credentials.
    pub async fn reload_app(
        &self,
        store: &DynStore,
        app: AppId,
    ) -> Result<(), herald_store::StoreError> {
        for kind in TokenKind::ALL {
            match store.vendor_credentials(app, kind.as_str()).await? {
                Some(sealed) => {
                    let sealed = String::from_utf8_lossy(&sealed.sealed).into_owned();
                    if let Err(err) = self.install(app, kind, &sealed) {
                        tracing::error!(app_id = app, vendor = kind.as_str(), %err, "vendor credentials not loaded");
                    }
                }
                None => self.sender.remove(app, kind),
            }
        }
        Ok(())
    }

    fn install(&self, app: AppId, kind: TokenKind, sealed: &str) -> Result<(), String> {
        match kind {
            TokenKind::Apns => self.open_and_install::<ApnsCredentials>(app, kind, sealed),
            TokenKind::Fcm => self.open_and_install::<FcmCredentials>(app, kind, sealed),
            TokenKind::WebPush => self.open_and_install::<WebPushCredentials>(app, kind, sealed),
        }
    }

    fn open_and_install<C: Credentials>(
        &self,
        app: AppId,
        kind: TokenKind,
        sealed: &str,
    ) -> Result<(), String> {
        let credentials: C =
            self.secrets.open_json(&context(app, kind), sealed).map_err(|e| e.to_string())?;
        credentials.install(&*self.sender, app).map_err(|e| e.to_string())
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
        let (sealed, redacted) = match kind {
            TokenKind::Apns => self.install_new::<ApnsCredentials>(app.id, kind, body),
            TokenKind::Fcm => self.install_new::<FcmCredentials>(app.id, kind, body),
            TokenKind::WebPush => self.install_new::<WebPushCredentials>(app.id, kind, body),
        }
        .map_err(|err| ServiceError::InvalidRequest(format!("{vendor} credentials: {err}")))?;
        store
            .set_vendor_credentials(app.id, vendor, sealed.as_bytes(), &redacted.to_string())
            .await?;
        tracing::info!(app_id = app.id, vendor, "vendor credentials set");
        Ok(redacted)
    }

    /// Reads credentials from a request body and installs them; gives them sealed and shown.
    fn install_new<C: Credentials>(
        &self,
        app: AppId,
        kind: TokenKind,
        body: Value,
    ) -> Result<(String, Value), String> {
        let credentials: C = serde_json::from_value(body).map_err(|e| e.to_string())?;
        credentials.install(&*self.sender, app).map_err(|e| e.to_string())?;
        let shown = credentials.shown().map_err(|e| e.to_string())?;
        Ok((self.secrets.seal_json(&context(app, kind), &credentials), shown))
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

/// A device as it is stored: a Web Push token is checked and put in its canonical form, so that
/// a subscription that cannot be sent to is refused at registration, not at every push, and the
/// same subscription spelled twice is one token. Other devices pass unchanged.
pub fn canonical_device(device: &Device) -> Result<Cow<'_, Device>, ServiceError> {
    let Some(token) = device.vendor_token.as_ref().filter(|t| t.kind == TokenKind::WebPush) else {
        return Ok(Cow::Borrowed(device));
    };
    let subscription = WebPushSubscription::parse(&token.token)?;
    let mut device = device.clone();
    device.vendor_token =
        Some(VendorToken { kind: TokenKind::WebPush, token: subscription.to_token() });
    Ok(Cow::Owned(device))
}

/// What the offline notification of one push needs.
pub struct OfflinePush {
    pub app: AppId,
    pub push_id: String,
    pub push: VendorPush,
    /// Accounts of the audience that no live connection reached.
    pub offline: RoaringBitmap,
    pub platforms: Option<Vec<String>>,
    /// When the push leaves the offline inbox; sends that failed retryably are sent again
    /// until then.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What sending to the offline devices needs besides the push.
pub struct OfflineContext<'a> {
    pub vendors: &'a Vendors,
    pub store: &'a DynStore,
    pub directory: &'a Directory,
    pub receipts: &'a Receipts,
    pub webhooks: &'a Webhooks,
    pub tasks: &'a Tasks,
}

/// Sends a push to the offline devices with vendor tokens, page by page: counts outcomes per
/// platform, removes tokens the vendor says are dead (and tells the app's webhook), and stops
/// when the push is cancelled meanwhile. Sends that failed retryably are sent again in rounds
/// (see [`RedeliverySettings`]) until they go through, the push expires or is cancelled, or
/// the server stops.
pub async fn notify_offline(context: OfflineContext<'_>, job: OfflinePush) {
    let OfflineContext { vendors, store, .. } = context;
    let prepared = vendors.sender.prepare(&job.push);
    let mut again = Vec::new();
    // A dispatch finished again after a crash sends to every offline device again: its
    // counts start again with it, so that they count each device once.
    context.receipts.vendor_restarted(job.app, &job.push_id);
    let mut after = None;
    loop {
        let page = match store.device_tokens(job.app, after, PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(app_id = job.app, push_id = %job.push_id, %err, "cannot read device tokens");
                break;
            }
        };
        let Some(last) = page.last() else { break };
        after = Some(last.cursor);
        if cancelled(store, job.app, &job.push_id).await {
            tracing::info!(app_id = job.app, push_id = %job.push_id, "vendor sends stopped: push cancelled");
            return;
        }
        let targets: Vec<DeviceToken> = page
            .into_iter()
            .filter(|d| job.offline.contains(d.account_id))
            .filter(|d| job.platforms.as_ref().is_none_or(|only| only.contains(&d.platform)))
            .filter(|d| vendors.sender.has_channel(job.app, d.kind))
            .collect();
        again.extend(send_round(&context, &job, &prepared, targets).await);
    }
    redeliver(&context, &job, &prepared, again).await;
}

/// Sends the devices whose send failed retryably again, round after round.
async fn redeliver(
    context: &OfflineContext<'_>,
    job: &OfflinePush,
    prepared: &PreparedPush,
    mut again: Vec<DeviceToken>,
) {
    let mut round = 0;
    while !again.is_empty() {
        let wait = context.vendors.redelivery.delay(round);
        round = round.saturating_add(1);
        if job.expires_at.is_some_and(|at| Utc::now() + wait >= at) {
            tracing::warn!(app_id = job.app, push_id = %job.push_id, devices = again.len(), "vendor sends given up: the push expires before the next round");
            return;
        }
        tokio::select! {
            () = context.tasks.stopping() => {
                tracing::warn!(app_id = job.app, push_id = %job.push_id, devices = again.len(), "vendor sends not retried: shutting down");
                return;
            }
            () = tokio::time::sleep(wait) => {}
        }
        if cancelled(context.store, job.app, &job.push_id).await {
            return;
        }
        tracing::info!(app_id = job.app, push_id = %job.push_id, devices = again.len(), round, "sending again what the vendors refused for now");
        again = send_round(context, job, prepared, again).await;
    }
}

/// Sends to `targets`, counts the outcomes and prunes dead tokens; returns the devices whose
/// send failed retryably.
async fn send_round(
    context: &OfflineContext<'_>,
    job: &OfflinePush,
    prepared: &PreparedPush,
    targets: Vec<DeviceToken>,
) -> Vec<DeviceToken> {
    let OfflineContext { vendors, store, directory, receipts, webhooks, .. } = *context;
    if targets.is_empty() {
        return targets;
    }
    let tokens: Vec<VendorToken> =
        targets.iter().map(|d| VendorToken { kind: d.kind, token: d.token.clone() }).collect();
    let outcomes = vendors.sender.send_many(job.app, prepared, &tokens).await;
    herald_pause::at("vendor.sent").await;
    let mut counts: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
    let mut again = Vec::new();
    for (device, outcome) in targets.into_iter().zip(&outcomes) {
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
                    prune(store, directory, webhooks, job.app, &device, &reason).await;
                } else if matches!(failure, Outcome::Failed { retryable: true, .. }) {
                    again.push(device);
                }
            }
        }
    }
    for (platform, (sent, failed)) in counts {
        receipts.vendor(job.app, &job.push_id, &platform, sent, failed);
    }
    again
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

#[cfg(test)]
mod tests {
    use herald_vendor::SubscriptionError;

    use super::*;

    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

    fn browser(kind: TokenKind, token: String) -> Device {
        Device {
            device_id: "tab".into(),
            platform: "web".into(),
            package: "shop.example".into(),
            vendor_token: Some(VendorToken { kind, token }),
            app_version: None,
            locale: None,
            time_zone: None,
        }
    }

    #[test]
    fn webpush_tokens_are_checked_and_kept_in_one_form() {
        let posted = json!({"expirationTime": null, "endpoint": "https://push.example/p/1",
            "keys": {"auth": "BTBZMqHH6r4Tts7J_aSIgg==", "p256dh": P256DH}});
        let device = browser(TokenKind::WebPush, posted.to_string());
        let stored = canonical_device(&device).unwrap();
        let token = &stored.vendor_token.as_ref().unwrap().token;
        assert_eq!(
            token,
            &format!(
                r#"{{"endpoint":"https://push.example/p/1","keys":{{"p256dh":"{P256DH}","auth":"BTBZMqHH6r4Tts7J_aSIgg"}}}}"#
            )
        );

        let bad = browser(TokenKind::WebPush, posted.to_string().replace("https", "http"));
        let err = canonical_device(&bad).unwrap_err();
        assert!(
            matches!(err, ServiceError::InvalidSubscription(SubscriptionError::NotHttps(_))),
            "{err}"
        );
        assert!(err.to_string().starts_with("vendor_token: not a Web Push subscription"), "{err}");

        // Other vendors' tokens are the vendors' business.
        let phone = browser(TokenKind::Apns, "not checked here".into());
        assert!(matches!(canonical_device(&phone), Ok(Cow::Borrowed(_))));
    }
}
