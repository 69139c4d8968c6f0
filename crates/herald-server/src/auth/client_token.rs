//! Client tokens: an app back end mints one per account (through the API or with the formula of
//! docs/protocol.md); a device presents it in its hello. Verified against the app's secrets,
//! including the previous secret during its grace period.

use async_trait::async_trait;
use chrono::Utc;
use herald_gateway::{token, AuthError, Authenticator, Identity};
use herald_store::{DynStore, StoreError};

/// [`Authenticator`] over the store's apps.
pub struct StoreAuthenticator {
    pub store: DynStore,
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn verify(&self, raw: &str) -> Result<Identity, AuthError> {
        let parsed = token::parse(raw)?;
        let app = self.store.app_by_key(&parsed.claims.app_key).await.map_err(|err| match err {
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
