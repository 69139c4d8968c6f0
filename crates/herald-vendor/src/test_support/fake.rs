//! A fake [`Vendor`] that records every send and answers scripted outcomes, for tests of code
//! that calls the vendors (the server's dispatcher) without any network.

use super::lock;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use herald_core::account::{TokenKind, VendorToken};
use herald_core::app::AppId;

use crate::apns::ApnsCredentials;
use crate::credentials::CredentialsError;
use crate::fcm::FcmCredentials;
use crate::outcome::Outcome;
use crate::push::{PreparedPush, VendorPush};
use crate::sender::Vendor;
use crate::stats::ChannelStats;
use crate::webpush::WebPushCredentials;

/// One send the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSend {
    pub app: AppId,
    pub push_id: String,
    pub token: VendorToken,
}

/// Records sends; answers `Sent` unless a token was given another outcome. Credentials are
/// validated like the real sender does, so invalid ones are refused the same way.
#[derive(Debug, Default)]
pub struct RecordingVendor {
    channels: Mutex<HashSet<(AppId, TokenKind)>>,
    webpush_keys: Mutex<HashMap<AppId, String>>,
    outcomes: Mutex<HashMap<String, Outcome>>,
    sends: Mutex<Vec<RecordedSend>>,
}

impl RecordingVendor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `app` as having credentials for `kind` without giving any.
    pub fn enable(&self, app: AppId, kind: TokenKind) {
        lock(&self.channels).insert((app, kind));
    }

    /// Every send to `token` gets `outcome`.
    pub fn set_outcome(&self, token: &str, outcome: Outcome) {
        lock(&self.outcomes).insert(token.into(), outcome);
    }

    /// Every Web Push send so far, in order: app, push id, subscription JSON.
    pub fn webpush_sends(&self) -> Vec<(AppId, String, String)> {
        lock(&self.sends)
            .iter()
            .filter(|s| s.token.kind == TokenKind::WebPush)
            .map(|s| (s.app, s.push_id.clone(), s.token.token.clone()))
            .collect()
    }

    /// Every send so far, in order.
    pub fn sends(&self) -> Vec<RecordedSend> {
        lock(&self.sends).clone()
    }
}

#[async_trait]
impl Vendor for RecordingVendor {
    fn set_apns(&self, app: AppId, credentials: &ApnsCredentials) -> Result<(), CredentialsError> {
        credentials.validate()?;
        self.enable(app, TokenKind::Apns);
        Ok(())
    }

    fn set_fcm(&self, app: AppId, credentials: &FcmCredentials) -> Result<(), CredentialsError> {
        credentials.validate()?;
        self.enable(app, TokenKind::Fcm);
        Ok(())
    }

    fn set_webpush(
        &self,
        app: AppId,
        credentials: &WebPushCredentials,
    ) -> Result<(), CredentialsError> {
        let key = credentials.application_server_key()?;
        lock(&self.webpush_keys).insert(app, key);
        self.enable(app, TokenKind::WebPush);
        Ok(())
    }

    fn webpush_key(&self, app: AppId) -> Option<String> {
        self.has_channel(app, TokenKind::WebPush)
            .then(|| lock(&self.webpush_keys).get(&app).cloned())
            .flatten()
    }

    fn remove(&self, app: AppId, kind: TokenKind) {
        lock(&self.channels).remove(&(app, kind));
    }

    fn has_channel(&self, app: AppId, kind: TokenKind) -> bool {
        lock(&self.channels).contains(&(app, kind))
    }

    fn prepare(&self, push: &VendorPush) -> PreparedPush {
        PreparedPush::new(push, SystemTime::now())
    }

    async fn send_many(
        &self,
        app: AppId,
        push: &PreparedPush,
        tokens: &[VendorToken],
    ) -> Vec<Outcome> {
        tokens
            .iter()
            .map(|token| {
                lock(&self.sends).push(RecordedSend {
                    app,
                    push_id: push.push_id().to_owned(),
                    token: token.clone(),
                });
                if !self.has_channel(app, token.kind) {
                    return Outcome::failed("NoCredentials", false);
                }
                lock(&self.outcomes)
                    .get(&token.token)
                    .cloned()
                    .unwrap_or(Outcome::Sent { id: None })
            })
            .collect()
    }

    fn stats(&self, _app: AppId, _kind: TokenKind) -> Option<ChannelStats> {
        None
    }
}
