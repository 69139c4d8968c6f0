//! A browser's push subscription: what `PushSubscription.toJSON()` gives the page, and what
//! herald keeps as the device's vendor token.
//!
//! # Format
//!
//! ```json
//! {"endpoint": "https://fcm.googleapis.com/fcm/send/dXk...", "expirationTime": null,
//!  "keys": {"p256dh": "BCVxsr7N_eNg...", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}}
//! ```
//!
//! Keys are base64url; browsers omit the padding, some libraries add it, both are read.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;
use p256::PublicKey;
use serde::{Deserialize, Serialize};

use super::ece::{UaKeys, AUTH_SECRET_BYTES, PUBLIC_KEY_BYTES};

/// Longest subscription JSON accepted; real ones are under 600 bytes.
pub const MAX_SUBSCRIPTION_BYTES: usize = 4096;

/// Why a subscription was refused. Each says which field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("not a PushSubscription JSON object: {0}")]
    NotJson(String),
    #[error("the subscription is {0} bytes; at most {MAX_SUBSCRIPTION_BYTES} are accepted")]
    TooLong(usize),
    #[error("endpoint: {0}")]
    BadEndpoint(String),
    #[error("endpoint: must be an https:// URL, got {0:?}")]
    NotHttps(String),
    #[error("keys.{field}: not base64url")]
    BadBase64 { field: &'static str },
    #[error("keys.{field}: {found} bytes, expected {expected}")]
    WrongLength { field: &'static str, found: usize, expected: usize },
    #[error("keys.p256dh: not a point on the P-256 curve")]
    NotOnCurve,
}

/// The JSON as the browser sends it; unknown fields (`expirationTime`) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionJson {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A checked subscription: where to POST and the keys to encrypt with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushSubscription {
    /// `https://host[:port]`, the VAPID `aud` and the key of the connection pool.
    origin: String,
    authority: Authority,
    path: PathAndQuery,
    keys: UaKeys,
}

impl WebPushSubscription {
    /// Parses and checks the subscription JSON a page posted (the device's vendor token).
    pub fn parse(json: &str) -> Result<Self, SubscriptionError> {
        if json.len() > MAX_SUBSCRIPTION_BYTES {
            return Err(SubscriptionError::TooLong(json.len()));
        }
        let raw: SubscriptionJson =
            serde_json::from_str(json).map_err(|e| SubscriptionError::NotJson(e.to_string()))?;
        Self::from_json(&raw)
    }

    /// Checks an already deserialised subscription.
    pub fn from_json(raw: &SubscriptionJson) -> Result<Self, SubscriptionError> {
        let (authority, path) = endpoint(&raw.endpoint)?;
        let public_key: [u8; PUBLIC_KEY_BYTES] = key_bytes("p256dh", &raw.keys.p256dh)?;
        // Compressed or off-curve points would only fail later, at every send.
        PublicKey::from_sec1_bytes(&public_key).map_err(|_| SubscriptionError::NotOnCurve)?;
        let auth_secret: [u8; AUTH_SECRET_BYTES] = key_bytes("auth", &raw.keys.auth)?;
        Ok(Self {
            origin: format!("https://{authority}"),
            authority,
            path,
            keys: UaKeys { public_key, auth_secret },
        })
    }

    /// `https://host[:port]` of the push service.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The endpoint as a URI.
    pub fn endpoint(&self) -> Uri {
        let parts = (Scheme::HTTPS, self.authority.clone(), self.path.clone());
        Uri::builder()
            .scheme(parts.0)
            .authority(parts.1)
            .path_and_query(parts.2)
            .build()
            .unwrap_or_default()
    }

    /// Path and query of the endpoint, below the origin.
    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// The keys payloads are encrypted to.
    pub fn keys(&self) -> &UaKeys {
        &self.keys
    }

    /// The subscription in one canonical JSON form (`endpoint`, then `keys` in unpadded
    /// base64url, nothing else): what to store as the device's token, so that the same
    /// subscription posted twice, with other spacing, field order or `expirationTime`, is one
    /// token.
    pub fn to_token(&self) -> String {
        let json = SubscriptionJson {
            endpoint: self.endpoint().to_string(),
            keys: SubscriptionKeys {
                p256dh: URL_SAFE_NO_PAD.encode(self.keys.public_key),
                auth: URL_SAFE_NO_PAD.encode(self.keys.auth_secret),
            },
        };
        // A struct of strings always serialises.
        serde_json::to_string(&json).unwrap_or_default()
    }
}

/// Splits an https endpoint into its authority and its path and query.
fn endpoint(raw: &str) -> Result<(Authority, PathAndQuery), SubscriptionError> {
    let uri: Uri = raw.parse().map_err(|e| SubscriptionError::BadEndpoint(format!("{e}")))?;
    if uri.scheme() != Some(&Scheme::HTTPS) {
        return Err(SubscriptionError::NotHttps(raw.chars().take(64).collect()));
    }
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty())
        .cloned()
        .ok_or_else(|| SubscriptionError::BadEndpoint("no host".into()))?;
    if authority.as_str().contains('@') {
        return Err(SubscriptionError::BadEndpoint("user information is not allowed".into()));
    }
    let path = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    Ok((authority, path))
}

/// Decodes base64url (with or without padding) into exactly `N` bytes.
fn key_bytes<const N: usize>(
    field: &'static str,
    value: &str,
) -> Result<[u8; N], SubscriptionError> {
    let value = value.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .map_err(|_| SubscriptionError::BadBase64 { field })?;
    let found = bytes.len();
    bytes.try_into().map_err(|_| SubscriptionError::WrongLength { field, found, expected: N })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn parse(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<WebPushSubscription, SubscriptionError> {
        let json = json!({"endpoint": endpoint, "expirationTime": null,
                          "keys": {"p256dh": p256dh, "auth": auth}});
        WebPushSubscription::parse(&json.to_string())
    }

    #[test]
    fn a_browser_subscription_parses() {
        let s = parse("https://fcm.googleapis.com/fcm/send/abc:APA91b?x=1", P256DH, AUTH).unwrap();
        assert_eq!(s.origin(), "https://fcm.googleapis.com");
        assert_eq!(s.path(), "/fcm/send/abc:APA91b?x=1");
        assert_eq!(s.endpoint().to_string(), "https://fcm.googleapis.com/fcm/send/abc:APA91b?x=1");
        assert_eq!(s.keys().auth_secret.len(), 16);
        // Padded base64url, as some server libraries store it, reads the same.
        let padded =
            parse("https://push.example:8443/p/1", P256DH, "BTBZMqHH6r4Tts7J_aSIgg==").unwrap();
        assert_eq!(padded.origin(), "https://push.example:8443");
        // One token however the page spelled it.
        let token = padded.to_token();
        assert_eq!(
            token,
            format!(
                r#"{{"endpoint":"https://push.example:8443/p/1","keys":{{"p256dh":"{P256DH}","auth":"{AUTH}"}}}}"#
            )
        );
        assert_eq!(WebPushSubscription::parse(&token).unwrap(), padded);
    }

    #[test]
    fn precise_errors() {
        assert!(matches!(WebPushSubscription::parse("{}"), Err(SubscriptionError::NotJson(_))));
        assert_eq!(
            parse("http://push.example/p/1", P256DH, AUTH),
            Err(SubscriptionError::NotHttps("http://push.example/p/1".into()))
        );
        assert!(matches!(parse("not a url", P256DH, AUTH), Err(SubscriptionError::BadEndpoint(_))));
        assert!(matches!(
            parse("https://user:pw@push.example/p", P256DH, AUTH),
            Err(SubscriptionError::BadEndpoint(_))
        ));
        assert_eq!(
            parse("https://push.example/p", "not*base64", AUTH),
            Err(SubscriptionError::BadBase64 { field: "p256dh" })
        );
        assert_eq!(
            parse("https://push.example/p", &P256DH[..20], AUTH),
            Err(SubscriptionError::WrongLength { field: "p256dh", found: 15, expected: 65 })
        );
        assert_eq!(
            parse("https://push.example/p", P256DH, "AAAA"),
            Err(SubscriptionError::WrongLength { field: "auth", found: 3, expected: 16 })
        );
        let mut off_curve = URL_SAFE_NO_PAD.decode(P256DH).unwrap();
        off_curve[64] ^= 1;
        assert_eq!(
            parse("https://push.example/p", &URL_SAFE_NO_PAD.encode(off_curve), AUTH),
            Err(SubscriptionError::NotOnCurve)
        );
        let long = "x".repeat(MAX_SUBSCRIPTION_BYTES + 1);
        assert_eq!(WebPushSubscription::parse(&long), Err(SubscriptionError::TooLong(4097)));
    }
}
