//! The Web Push request for one push, minus what differs per subscription: the plaintext the
//! service worker receives and the RFC 8030 headers.
//!
//! # Format
//!
//! ```text
//! TTL: <seconds>                   (0: deliver now or drop)
//! Urgency: very-low | low | normal | high
//! Topic: <at most 32 base64url characters>   (from the collapse id; longer ids are hashed)
//!
//! {"title","body","image","tag": collapse id,"herald_push_id"}   (encrypted per subscription)
//! ```

use bytes::Bytes;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::ece::MAX_PLAINTEXT_BYTES;
use crate::apns::PUSH_ID_KEY;
use crate::jwt::b64;
use crate::push::VendorPush;

/// Longest `Topic` a push service accepts (RFC 8030, section 5.4).
pub const MAX_TOPIC_CHARS: usize = 32;

/// How soon the user agent should be woken for a message (RFC 8030, section 5.3); push
/// services hold back lower urgencies on a device short of battery or data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    /// The `Urgency` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// Built once per push, shared by all its Web Push sends.
#[derive(Debug, Clone)]
pub(crate) struct WebPushMessage {
    pub(crate) plaintext: Bytes,
    pub(crate) ttl: HeaderValue,
    pub(crate) urgency: HeaderValue,
    pub(crate) topic: Option<HeaderValue>,
}

impl WebPushMessage {
    /// Builds the message; the error is the reason reported for every subscription of the push.
    pub(crate) fn build(push: &VendorPush) -> Result<Self, &'static str> {
        let n = &push.notification;
        let mut body = Map::new();
        for (key, value) in [
            ("title", &n.title),
            ("body", &n.body),
            ("image", &n.image),
            ("tag", &push.collapse_id),
        ] {
            if let Some(value) = value {
                body.insert(key.into(), Value::String(value.clone()));
            }
        }
        body.insert(PUSH_ID_KEY.into(), Value::String(push.push_id.clone()));
        let plaintext = serde_json::to_vec(&body).map_err(|_| "PayloadUnencodable")?;
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err("PayloadTooLarge");
        }
        Ok(Self {
            plaintext: Bytes::from(plaintext),
            ttl: HeaderValue::from(push.ttl_secs),
            urgency: HeaderValue::from_static(push.urgency.as_str()),
            topic: push.collapse_id.as_deref().map(topic),
        })
    }
}

/// A collapse id as a `Topic`: kept when it already is at most 32 base64url characters, else
/// the first 24 bytes of its SHA-256 in base64url (exactly 32 characters), so the same id
/// always replaces the same pending message.
pub fn topic(collapse_id: &str) -> HeaderValue {
    let url_safe = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let topic = if !collapse_id.is_empty()
        && collapse_id.len() <= MAX_TOPIC_CHARS
        && collapse_id.bytes().all(url_safe)
    {
        collapse_id.to_owned()
    } else {
        b64(&Sha256::digest(collapse_id.as_bytes())[..24])
    };
    // base64url characters are always a valid header value.
    HeaderValue::from_str(&topic).unwrap_or_else(|_| HeaderValue::from_static("herald"))
}

#[cfg(test)]
mod tests {
    use herald_core::push::Notification;

    use super::*;

    #[test]
    fn payload_and_headers() {
        let n = Notification {
            title: Some("Sale".into()),
            body: Some("50% off".into()),
            image: Some("https://example.com/a.png".into()),
            ..Default::default()
        };
        let mut push = VendorPush::new("p1", n, 60);
        push.collapse_id = Some("sale".into());
        push.urgency = Urgency::High;
        let m = WebPushMessage::build(&push).unwrap();
        let body: Value = serde_json::from_slice(&m.plaintext).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"title": "Sale", "body": "50% off", "image": "https://example.com/a.png",
                               "tag": "sale", "herald_push_id": "p1"})
        );
        assert_eq!(m.ttl, "60");
        assert_eq!(m.urgency, "high");
        assert_eq!(m.topic.unwrap(), "sale");
    }

    #[test]
    fn long_or_unsafe_collapse_ids_are_hashed_deterministically() {
        assert_eq!(topic("a-b_C9"), "a-b_C9");
        let long = "x".repeat(33);
        let hashed = topic(&long);
        assert_eq!(hashed.len(), MAX_TOPIC_CHARS);
        assert_eq!(hashed, topic(&long));
        assert_ne!(hashed, topic(&"x".repeat(34)));
        let spaced = topic("summer sale");
        assert_eq!(spaced.len(), MAX_TOPIC_CHARS);
        assert!(spaced.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(b)));
    }

    #[test]
    fn too_large_is_refused() {
        let big = Notification { body: Some("x".repeat(4_000)), ..Default::default() };
        assert_eq!(
            WebPushMessage::build(&VendorPush::new("p", big, 1)).unwrap_err(),
            "PayloadTooLarge"
        );
    }
}
