//! Client tokens: an app back end mints one per account (through the API or with the formula of
//! docs/protocol.md); a device presents it in its hello. Verified against the app's secrets,
//! including the previous secret during its grace period.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use herald_core::App;
use herald_gateway::{token, AuthError, Authenticator, Identity};
use herald_store::{DynStore, StoreError};

use crate::recent_apps::RecentApps;

/// How long a hello may use an app read before; a rotated secret is honoured within it.
const APP_TTL: Duration = Duration::from_secs(5);

/// [`Authenticator`] over the store's apps, read at most every few seconds per app key: a
/// reconnect storm is thousands of hellos for the same app.
pub struct StoreAuthenticator {
    pub store: DynStore,
    apps: Arc<RecentApps<String>>,
}

impl StoreAuthenticator {
    pub fn new(store: DynStore) -> Self {
        Self { store, apps: Arc::new(RecentApps::new(APP_TTL)) }
    }

    /// Its apps by key, to forget one that changed.
    pub fn cache(&self) -> Arc<RecentApps<String>> {
        self.apps.clone()
    }

    async fn app(&self, key: &str) -> Result<App, StoreError> {
        self.apps.get(key, || self.store.app_by_key(key)).await
    }
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn verify(&self, raw: &str) -> Result<Identity, AuthError> {
        let parsed = token::parse(raw)?;
        let app = self.app(&parsed.claims.app_key).await.map_err(|err| match err {
            StoreError::NotFound { .. } => AuthError::UnknownApp,
            other => AuthError::Unavailable(other.to_string()),
        })?;
        let now = Utc::now();
        let mut last = AuthError::Invalid;
        for secret in app.valid_secrets(now) {
            match parsed.verify(secret, now.timestamp()) {
                Ok(claims) => return Ok(Identity { app: app.id, account: claims.account.clone() }),
                Err(err) => last = err.into(),
            }
        }
        Err(last)
    }
}
