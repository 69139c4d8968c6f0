//! Client tokens: an app back end mints one per account (through the API or with the formula of
//! docs/protocol.md); a device presents it in its hello. Verified against the app's secrets,
//! including the previous secret during its grace period.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use herald_core::App;
use herald_gateway::{token, AuthError, Authenticator, Identity};
use herald_store::{DynStore, StoreError};

/// How long a hello may use an app read before; a rotated secret is honoured within it.
const APP_TTL: Duration = Duration::from_secs(5);

/// [`Authenticator`] over the store's apps, read at most every few seconds per app key: a
/// reconnect storm is thousands of hellos for the same app.
pub struct StoreAuthenticator {
    pub store: DynStore,
    pub apps: RwLock<HashMap<String, (App, Instant)>>,
}

impl StoreAuthenticator {
    pub fn new(store: DynStore) -> Self {
        Self { store, apps: RwLock::default() }
    }

    async fn app(&self, key: &str) -> Result<App, StoreError> {
        let cached = self.apps.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned();
        if let Some((app, at)) = cached {
            if at.elapsed() < APP_TTL {
                return Ok(app);
            }
        }
        let app = self.store.app_by_key(key).await?;
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        // Bounded by the number of apps, unless unknown keys flood it: those are not cached.
        apps.insert(key.to_owned(), (app.clone(), Instant::now()));
        Ok(app)
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
