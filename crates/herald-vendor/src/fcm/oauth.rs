//! OAuth2 access tokens for FCM from a service account: the JWT bearer grant (RFC 7523).
//!
//! # Format
//!
//! ```text
//! POST {token_uri}
//! content-type: application/x-www-form-urlencoded
//!
//! grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<JWT>
//!
//! JWT header {"alg":"RS256","typ":"JWT","kid":<private_key_id>}
//!     claims {"iss":<client_email>,"scope":".../auth/firebase.messaging","aud":<token_uri>,
//!             "iat":<now>,"exp":<now + lifetime, at most 1 h>}
//! -> 200 {"access_token":"...","expires_in":3599,"token_type":"Bearer"}
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Uri};
use serde::{Deserialize, Serialize};

use super::credentials::ServiceAccount;
use super::error::FcmError;
use crate::clock::{unix_secs, Clock};
use crate::retry::parse_retry_after;
use crate::transport::{Origin, TransportError};

/// The scope FCM HTTP v1 needs.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'static str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
}

#[derive(Clone)]
struct Access {
    authorization: HeaderValue,
    refresh_at: SystemTime,
}

/// A cache of one service account's access token.
pub(crate) struct AccessTokens {
    account: ServiceAccount,
    /// Connections to the token endpoint.
    origin: Origin,
    /// The token endpoint as a URI, and as the assertion's `aud`.
    token_uri: String,
    lifetime: Duration,
    margin: Duration,
    current: RwLock<Option<Access>>,
    /// Held while exchanging, so concurrent sends wait for one exchange instead of each
    /// starting their own.
    exchange: tokio::sync::Mutex<()>,
    pub(crate) exchanges: AtomicU64,
}

impl AccessTokens {
    pub(crate) fn new(
        account: ServiceAccount,
        origin: Origin,
        token_uri: String,
        lifetime: Duration,
        margin: Duration,
    ) -> Self {
        Self {
            account,
            origin,
            token_uri,
            lifetime,
            margin,
            current: RwLock::new(None),
            exchange: tokio::sync::Mutex::new(()),
            exchanges: AtomicU64::new(0),
        }
    }

    fn cached(&self, now: SystemTime) -> Option<HeaderValue> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().filter(|a| now < a.refresh_at).map(|a| a.authorization.clone())
    }

    /// The `authorization` header value to use now, exchanging a new token when needed.
    pub(crate) async fn authorization(&self, clock: &dyn Clock) -> Result<HeaderValue, FcmError> {
        if let Some(authorization) = self.cached(clock.now()) {
            return Ok(authorization);
        }
        let _exchanging = self.exchange.lock().await;
        let now = clock.now();
        if let Some(authorization) = self.cached(now) {
            return Ok(authorization);
        }
        let access = self.fetch(now).await?;
        let authorization = access.authorization.clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(access);
        Ok(authorization)
    }

    /// Drops the token FCM refused, unless it was already replaced.
    pub(crate) fn invalidate(&self, seen: &HeaderValue) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|a| a.authorization == seen) {
            *current = None;
        }
    }

    async fn fetch(&self, now: SystemTime) -> Result<Access, FcmError> {
        let iat = unix_secs(now);
        let assertion = self.account.key.sign(
            &Header { alg: "RS256", typ: "JWT", kid: self.account.private_key_id.as_deref() },
            &Claims {
                iss: &self.account.client_email,
                scope: FCM_SCOPE,
                aud: &self.token_uri,
                iat,
                exp: iat + self.lifetime.as_secs(),
            },
        )?;
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        let uri: Uri = self
            .token_uri
            .parse()
            .map_err(|e: http::uri::InvalidUri| TransportError::Request(e.to_string()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(format!("grant_type={GRANT_TYPE}&assertion={assertion}")))
            .map_err(|e| TransportError::Request(e.to_string()))?;
        let response = self.origin.send(request).await?;
        let status = response.status.as_u16();
        let retry_after = response
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let body = response.body;
        if status != 200 {
            let error = serde_json::from_slice::<TokenError>(&body)
                .ok()
                .and_then(|e| e.error)
                .unwrap_or_else(|| format!("HTTP {status}"));
            return Err(FcmError::OAuth { status, error, retry_after });
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|_| FcmError::OAuth {
            status,
            error: "unreadable token response".into(),
            retry_after: None,
        })?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", token.access_token)).map_err(|_| {
                FcmError::OAuth { status, error: "unusable access token".into(), retry_after: None }
            })?;
        authorization.set_sensitive(true);
        let expires_in = Duration::from_secs(token.expires_in);
        // Refresh a margin before expiry; for short-lived tokens, at half their life.
        let keep =
            if expires_in > self.margin * 2 { expires_in - self.margin } else { expires_in / 2 };
        Ok(Access { authorization, refresh_at: now + keep })
    }
}
