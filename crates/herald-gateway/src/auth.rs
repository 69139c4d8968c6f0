//! Who a connection is: the [`Authenticator`] seam the server implements over its app store.

use std::collections::HashMap;

use async_trait::async_trait;
use herald_core::AppId;

use crate::token;

/// The app and account a token proves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub app: AppId,
    /// The app's account id string (not the dense `u32` id: that comes from the inbox login).
    pub account: String,
}

/// Why a token was not accepted. Every variant except [`AuthError::Unavailable`] closes the
/// connection with 4001; `Unavailable` closes with 1011 because the client is not at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("unknown app")]
    UnknownApp,
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
}

impl From<token::TokenError> for AuthError {
    fn from(err: token::TokenError) -> Self {
        match err {
            token::TokenError::Expired => AuthError::Expired,
            token::TokenError::Malformed | token::TokenError::BadSignature => AuthError::Invalid,
        }
    }
}

/// Turns the token of a hello into an [`Identity`].
///
/// Contract: `verify` has no side effects a client could observe; it is called once per
/// connection, before anything else touches the inbox. It must not tell apart "unknown app" and
/// "bad signature" in anything sent to the client (the session does not).
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError>;
}

/// An [`Authenticator`] over a fixed set of app keys and secrets, for tests and tools; the
/// server's own looks apps up in its store, the same way.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    apps: HashMap<String, (AppId, String)>,
}

impl Keyring {
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts tokens signed with `secret` for `app_key`, as app `app`.
    pub fn with_app(mut self, app: AppId, app_key: &str, secret: &str) -> Self {
        self.apps.insert(app_key.to_owned(), (app, secret.to_owned()));
        self
    }
}

#[async_trait]
impl Authenticator for Keyring {
    async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let parsed = token::parse(token)?;
        let (app, secret) = self.apps.get(&parsed.claims.app_key).ok_or(AuthError::UnknownApp)?;
        let claims = parsed.verify(secret, chrono::Utc::now().timestamp())?;
        Ok(Identity { app: *app, account: claims.account.clone() })
    }
}
