//! Settings of the vendor channels, meant to sit in the server's settings as a `[vendor]` table.
//! Every field has a default; see [`VendorSettings`].

use serde::{Deserialize, Serialize};

use crate::apns::ApnsSettings;
use crate::fcm::FcmSettings;
use crate::retry::{BreakerSettings, RedeliverySettings, RetrySettings};
use crate::secret::{SecretBox, SecretError};
use crate::webpush::WebPushSettings;

/// Everything the vendor channels can be told at start-up.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorSettings {
    pub apns: ApnsSettings,
    pub fcm: FcmSettings,
    pub webpush: WebPushSettings,
    /// Extra trusted root certificates (PEM text, one or more) for vendor endpoints: a local
    /// test server, or a TLS-inspecting proxy. The public roots stay trusted.
    pub extra_root_pem: Option<String>,
    /// Requests in flight per app and vendor. Each app and vendor has its own limit, so an app
    /// whose endpoint is slow or down holds only its own share.
    pub max_in_flight: usize,
    /// HTTP/2 connections per app and vendor; requests are multiplexed over them round-robin.
    pub connections: usize,
    /// Time allowed for one request, response included, in milliseconds.
    pub request_timeout_ms: u64,
    /// Time allowed to open a connection (TCP and TLS), in milliseconds.
    pub connect_timeout_ms: u64,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub redelivery: RedeliverySettings,
    /// Key that seals vendor credentials at rest: standard base64 of 32 random bytes
    /// (`SecretBox::generate_key`). Without it herald refuses to store credentials.
    pub credentials_key: Option<String>,
    /// Former credentials keys, still accepted for opening so a rotation needs no downtime.
    pub previous_credentials_keys: Vec<String>,
}

impl Default for VendorSettings {
    fn default() -> Self {
        Self {
            apns: ApnsSettings::default(),
            fcm: FcmSettings::default(),
            webpush: WebPushSettings::default(),
            extra_root_pem: None,
            max_in_flight: 256,
            connections: 1,
            request_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            retry: RetrySettings::default(),
            breaker: BreakerSettings::default(),
            redelivery: RedeliverySettings::default(),
            credentials_key: None,
            previous_credentials_keys: Vec::new(),
        }
    }
}

impl std::fmt::Debug for VendorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("VendorSettings")
            .field("apns", &self.apns)
            .field("fcm", &self.fcm)
            .field("webpush", &self.webpush)
            .field("extra_root_pem", &self.extra_root_pem.as_ref().map(|_| "<pem>"))
            .field("max_in_flight", &self.max_in_flight)
            .field("connections", &self.connections)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("redelivery", &self.redelivery)
            .field("credentials_key", &redacted(&self.credentials_key))
            .field("previous_credentials_keys", &self.previous_credentials_keys.len())
            .finish()
    }
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid vendor setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("invalid vendor setting credentials_key: {0}")]
    Key(#[from] SecretError),
}

impl VendorSettings {
    /// Checks the values that have to be positive and the URLs.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |name, reason: &str| SettingsError::Invalid { name, reason: reason.into() };
        if self.max_in_flight == 0 {
            return Err(invalid("max_in_flight", "must be positive"));
        }
        if self.connections == 0 {
            return Err(invalid("connections", "must be positive"));
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(invalid("request_timeout_ms", "timeouts must be positive"));
        }
        let redelivery = &self.redelivery;
        if redelivery.first_delay_ms == 0 || redelivery.max_delay_ms < redelivery.first_delay_ms {
            return Err(invalid(
                "redelivery.first_delay_ms",
                "must be positive and at most redelivery.max_delay_ms",
            ));
        }
        if !(1..=3600).contains(&self.fcm.token_lifetime_secs) {
            return Err(invalid("fcm.token_lifetime_secs", "must be 1 to 3600"));
        }
        let web = &self.webpush;
        if !(60..=24 * 3600).contains(&web.vapid_lifetime_secs) {
            return Err(invalid("webpush.vapid_lifetime_secs", "must be 60 to 86400 (RFC 8292)"));
        }
        if web.vapid_refresh_margin_secs >= web.vapid_lifetime_secs {
            return Err(invalid(
                "webpush.vapid_refresh_margin_secs",
                "must be less than vapid_lifetime_secs",
            ));
        }
        if web.max_push_services == 0 {
            return Err(invalid("webpush.max_push_services", "must be positive"));
        }
        for (name, url) in [
            ("apns.production_url", Some(&self.apns.production_url)),
            ("apns.sandbox_url", Some(&self.apns.sandbox_url)),
            ("fcm.base_url", Some(&self.fcm.base_url)),
            ("fcm.token_uri", self.fcm.token_uri.as_ref()),
        ] {
            if let Some(url) = url {
                let uri = url.parse::<http::Uri>();
                if uri.map_or(true, |u| u.scheme_str() != Some("https") || u.host().is_none()) {
                    return Err(invalid(name, "must be an https:// URL"));
                }
            }
        }
        self.secret_box()?;
        Ok(())
    }

    /// The box sealing credentials, when a key is configured.
    pub fn secret_box(&self) -> Result<Option<SecretBox>, SecretError> {
        self.credentials_key
            .as_deref()
            .map(|key| SecretBox::new(key, &self.previous_credentials_keys))
            .transpose()
    }
}
