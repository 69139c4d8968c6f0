//! What a client connects with: its token (or a way to get a fresh one), its device, and how it
//! reconnects.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use herald_protocol::VendorToken;

/// A future yielding a token, as returned by a token provider.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Where the client gets its token.
#[derive(Clone)]
pub enum TokenSource {
    /// One token for the life of the client; after it expires (close 4001) the client stops.
    Static(String),
    /// Called before every connection attempt, so an expired token is replaced by a new one.
    Provider(Arc<dyn Fn() -> TokenFuture + Send + Sync>),
}

impl TokenSource {
    /// A provider from an async closure.
    pub fn provider<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        TokenSource::Provider(Arc::new(move || Box::pin(f())))
    }

    pub(crate) async fn token(&self) -> Result<String, String> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::Provider(provider) => provider().await,
        }
    }

    pub(crate) fn can_renew(&self) -> bool {
        matches!(self, TokenSource::Provider(_))
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Static(_) => f.write_str("Static(<redacted>)"),
            TokenSource::Provider(_) => f.write_str("Provider"),
        }
    }
}

impl From<String> for TokenSource {
    fn from(token: String) -> Self {
        TokenSource::Static(token)
    }
}

impl From<&str> for TokenSource {
    fn from(token: &str) -> Self {
        TokenSource::Static(token.to_owned())
    }
}

/// How the client reconnects after losing its connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    /// Whether to reconnect at all.
    pub enabled: bool,
    /// Delay before the first retry; doubled after every failed attempt.
    pub initial_delay: Duration,
    /// Upper bound of the delay.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row (`None`: never).
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

/// Everything [`crate::Client::connect`] needs besides the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub token: TokenSource,
    /// Stable id of this install.
    pub device_id: String,
    /// `ios`, `android`, `web`, … (lower case).
    pub platform: String,
    /// Package name / bundle id.
    pub package: String,
    pub vendor_token: Option<VendorToken>,
    pub app_version: Option<String>,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// Highest seq acked in an earlier run of the app (persist [`crate::Client::last_acked`]);
    /// pushes at or below it are neither requested nor passed on.
    pub last_seq: u64,
    pub reconnect: Reconnect,
    /// Limit for TCP connect, WebSocket upgrade and welcome together.
    pub connect_timeout: Duration,
    /// Events buffered for the application; when it stops taking them the client stops reading
    /// and the server eventually drops the connection as too slow (pushes wait in the inbox).
    pub event_capacity: usize,
}

impl ConnectOptions {
    /// Options with defaults for everything but the token and the device.
    pub fn new(
        token: impl Into<TokenSource>,
        device_id: impl Into<String>,
        platform: impl Into<String>,
        package: impl Into<String>,
    ) -> Self {
        Self {
            token: token.into(),
            device_id: device_id.into(),
            platform: platform.into(),
            package: package.into(),
            vendor_token: None,
            app_version: None,
            locale: None,
            time_zone: None,
            last_seq: 0,
            reconnect: Reconnect::default(),
            connect_timeout: Duration::from_secs(10),
            event_capacity: 1024,
        }
    }
}
