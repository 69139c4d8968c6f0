//! The `Vendor` trait the dispatcher and the admin routes call, and `VendorSender`, its
//! implementation over APNs, FCM and Web Push with one channel per app and vendor.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use futures_util::StreamExt;
use herald_core::account::{TokenKind, VendorToken};
use herald_core::app::AppId;

use crate::apns::router::ApnsRouter;
use crate::apns::ApnsCredentials;
use crate::clock::{Clock, SystemClock};
use crate::credentials::CredentialsError;
use crate::fcm::router::FcmRouter;
use crate::fcm::FcmCredentials;
use crate::outcome::Outcome;
use crate::push::{PreparedPush, VendorPush};
use crate::settings::{SettingsError, VendorSettings};
use crate::stats::ChannelStats;
use crate::transport::TransportFactory;
use crate::webpush::router::WebPushRouter;
use crate::webpush::WebPushCredentials;

/// Sending notifications through the vendors for many apps. Object-safe: the server holds an
/// `Arc<dyn Vendor>`, tests a fake (`test_support::RecordingVendor`).
#[async_trait]
pub trait Vendor: Send + Sync + 'static {
    /// Installs or replaces an app's APNs credentials after validating them. The app's next
    /// APNs sends use them; sends in flight finish with the old ones.
    fn set_apns(&self, app: AppId, credentials: &ApnsCredentials) -> Result<(), CredentialsError>;

    /// Installs or replaces an app's FCM credentials after validating them.
    fn set_fcm(&self, app: AppId, credentials: &FcmCredentials) -> Result<(), CredentialsError>;

    /// Forgets an app's credentials for one vendor; its sends there fail with
    /// `NoCredentials` until new ones are set.
    fn remove(&self, app: AppId, kind: TokenKind);

    /// Installs or replaces an app's VAPID credentials after validating them.
    fn set_webpush(
        &self,
        app: AppId,
        credentials: &WebPushCredentials,
    ) -> Result<(), CredentialsError>;

    /// Forgets an app's VAPID credentials; its Web Push sends fail with `NoCredentials`.
    fn remove_webpush(&self, app: AppId) {
        self.remove(app, TokenKind::WebPush);
    }

    /// Forgets all of an app's credentials (the app was deleted).
    fn remove_app(&self, app: AppId) {
        for kind in TokenKind::ALL {
            self.remove(app, kind);
        }
    }

    /// Whether the app has credentials for `kind`; the dispatcher skips devices of vendors
    /// that are not configured instead of counting failures for them.
    fn has_channel(&self, app: AppId, kind: TokenKind) -> bool;

    /// Whether the app has VAPID credentials.
    fn has_webpush(&self, app: AppId) -> bool {
        self.has_channel(app, TokenKind::WebPush)
    }

    /// The public key of the app's VAPID credentials (base64url, no padding): what its pages
    /// pass to `pushManager.subscribe` as `applicationServerKey`. `None` without credentials.
    fn webpush_key(&self, app: AppId) -> Option<String>;

    /// Encodes a push for every vendor once, before sending it to many devices.
    fn prepare(&self, push: &VendorPush) -> PreparedPush;

    /// Sends `push` to one device token of `app`.
    async fn send(&self, app: AppId, push: &PreparedPush, token: &VendorToken) -> Outcome {
        let mut outcomes = self.send_many(app, push, std::slice::from_ref(token)).await;
        outcomes.pop().unwrap_or_else(|| Outcome::failed("NotSent", true))
    }

    /// Sends `push` to many device tokens of `app` (APNs, FCM and Web Push mixed)
    /// concurrently, within the app's in-flight limit per vendor. Returns one outcome per
    /// token, in input order. Memory stays bounded by the limit, not by the number of tokens.
    async fn send_many(
        &self,
        app: AppId,
        push: &PreparedPush,
        tokens: &[VendorToken],
    ) -> Vec<Outcome>;

    /// Sends `push` to many browser subscriptions of `app` (each the `PushSubscription` JSON
    /// the page posted): [`Vendor::send_many`] with Web Push tokens.
    async fn send_webpush_many(
        &self,
        app: AppId,
        push: &PreparedPush,
        subscriptions: &[String],
    ) -> Vec<Outcome> {
        let tokens: Vec<VendorToken> = subscriptions
            .iter()
            .map(|s| VendorToken { kind: TokenKind::WebPush, token: s.clone() })
            .collect();
        self.send_many(app, push, &tokens).await
    }

    /// Counters of an app's channel; `None` when it has no credentials for `kind`.
    fn stats(&self, app: AppId, kind: TokenKind) -> Option<ChannelStats>;

    /// Counters of an app's Web Push channel; `None` without VAPID credentials.
    fn webpush_stats(&self, app: AppId) -> Option<ChannelStats> {
        self.stats(app, TokenKind::WebPush)
    }
}

#[derive(Default, Clone)]
struct Channels {
    apns: Option<Arc<ApnsRouter>>,
    fcm: Option<Arc<FcmRouter>>,
    webpush: Option<Arc<WebPushRouter>>,
}

/// The real [`Vendor`]: HTTP/2 channels to APNs, FCM and Web Push services, one per app and
/// vendor, each with its own connections, token cache, in-flight limit and circuit breaker, so
/// that one app's outage or rate limit does not slow the others.
pub struct VendorSender {
    settings: Arc<VendorSettings>,
    transport: TransportFactory,
    clock: Arc<dyn Clock>,
    apps: RwLock<HashMap<AppId, Channels>>,
}

impl std::fmt::Debug for VendorSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let apps = self.apps.read().map(|a| a.len()).unwrap_or_default();
        f.debug_struct("VendorSender")
            .field("settings", &self.settings)
            .field("apps", &apps)
            .finish()
    }
}

impl VendorSender {
    /// A sender on the system clock.
    pub fn new(settings: VendorSettings) -> Result<Self, SettingsError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// A sender whose token lifetimes, expirations and back-off follow `clock`.
    pub fn with_clock(
        settings: VendorSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SettingsError> {
        settings.validate()?;
        let transport = TransportFactory::new(&settings)?;
        Ok(Self {
            settings: Arc::new(settings),
            transport,
            clock,
            apps: RwLock::new(HashMap::new()),
        })
    }

    fn channels(&self, app: AppId) -> Channels {
        let apps = self.apps.read().unwrap_or_else(|e| e.into_inner());
        apps.get(&app).cloned().unwrap_or_default()
    }

    fn update(&self, app: AppId, change: impl FnOnce(&mut Channels)) {
        let mut apps = self.apps.write().unwrap_or_else(|e| e.into_inner());
        let channels = apps.entry(app).or_default();
        change(channels);
        if channels.apns.is_none() && channels.fcm.is_none() && channels.webpush.is_none() {
            apps.remove(&app);
        }
    }
}

#[async_trait]
impl Vendor for VendorSender {
    fn set_apns(&self, app: AppId, credentials: &ApnsCredentials) -> Result<(), CredentialsError> {
        let router = ApnsRouter::new(
            credentials,
            self.settings.clone(),
            &self.transport,
            self.clock.clone(),
        )?;
        self.update(app, |c| c.apns = Some(Arc::new(router)));
        Ok(())
    }

    fn set_fcm(&self, app: AppId, credentials: &FcmCredentials) -> Result<(), CredentialsError> {
        let router = FcmRouter::new(
            credentials,
            self.settings.clone(),
            &self.transport,
            self.clock.clone(),
        )?;
        self.update(app, |c| c.fcm = Some(Arc::new(router)));
        Ok(())
    }

    fn set_webpush(
        &self,
        app: AppId,
        credentials: &WebPushCredentials,
    ) -> Result<(), CredentialsError> {
        let router = WebPushRouter::new(
            credentials,
            self.settings.clone(),
            &self.transport,
            self.clock.clone(),
        )?;
        self.update(app, |c| c.webpush = Some(Arc::new(router)));
        Ok(())
    }

    fn webpush_key(&self, app: AppId) -> Option<String> {
        self.channels(app).webpush.map(|r| r.application_server_key().to_owned())
    }

    fn remove(&self, app: AppId, kind: TokenKind) {
        self.update(app, |c| match kind {
            TokenKind::Apns => c.apns = None,
            TokenKind::Fcm => c.fcm = None,
            TokenKind::WebPush => c.webpush = None,
        });
    }

    fn has_channel(&self, app: AppId, kind: TokenKind) -> bool {
        let channels = self.channels(app);
        match kind {
            TokenKind::Apns => channels.apns.is_some(),
            TokenKind::Fcm => channels.fcm.is_some(),
            TokenKind::WebPush => channels.webpush.is_some(),
        }
    }

    fn prepare(&self, push: &VendorPush) -> PreparedPush {
        PreparedPush::new(push, self.clock.now())
    }

    async fn send_many(
        &self,
        app: AppId,
        push: &PreparedPush,
        tokens: &[VendorToken],
    ) -> Vec<Outcome> {
        let channels = &self.channels(app);
        // Two vendors' limits can be full at once; beyond that, futures would only wait.
        let width = self.settings.max_in_flight.saturating_mul(2);
        let mut outcomes: Vec<Option<Outcome>> = vec![None; tokens.len()];
        // Indices rather than `(i, &token)` items: a closure over a borrowed item is not
        // general enough for the `Send` future `async_trait` requires.
        let mut sends = futures_util::stream::iter(0..tokens.len())
            .map(|i| async move { (i, route(channels, push, &tokens[i]).await) })
            .buffer_unordered(width);
        while let Some((i, outcome)) = sends.next().await {
            outcomes[i] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::failed("NotSent", true)))
            .collect()
    }

    fn stats(&self, app: AppId, kind: TokenKind) -> Option<ChannelStats> {
        let channels = self.channels(app);
        match kind {
            TokenKind::Apns => channels.apns.map(|r| r.stats()),
            TokenKind::Fcm => channels.fcm.map(|r| r.stats()),
            TokenKind::WebPush => channels.webpush.map(|r| r.stats()),
        }
    }
}

/// Sends to one token through the channel of its kind.
async fn route(channels: &Channels, push: &PreparedPush, token: &VendorToken) -> Outcome {
    match token.kind {
        TokenKind::Apns => match &channels.apns {
            Some(apns) => apns.send(&push.apns, &token.token).await,
            None => Outcome::failed("NoCredentials", false),
        },
        TokenKind::Fcm => match &channels.fcm {
            Some(fcm) => fcm.send(&push.fcm, &token.token).await,
            None => Outcome::failed("NoCredentials", false),
        },
        TokenKind::WebPush => match &channels.webpush {
            Some(webpush) => webpush.send(&push.webpush, &token.token).await,
            None => Outcome::failed("NoCredentials", false),
        },
    }
}
