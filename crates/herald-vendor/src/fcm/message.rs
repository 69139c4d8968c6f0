//! The FCM HTTP v1 message for one push, as a template the device token is spliced into.
//!
//! # Format
//!
//! ```text
//! {"message":{"token":"<token>",
//!   "notification":{"title","body","image"},
//!   "android":{"ttl":"<secs>s","collapse_key","priority":"HIGH"|"NORMAL",
//!              "notification":{"channel_id","sound"}},
//!   "data":{ extras as strings..., "herald_push_id":"..." }}}
//! ```
//! `priority` is HIGH when the message shows a notification and NORMAL for data-only messages.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{json, Map, Value};

use crate::apns::payload::PUSH_ID_KEY;
use crate::push::VendorPush;

/// FCM's limit on a message's payload (keys and values of notification and data).
pub const MAX_PAYLOAD_BYTES: usize = 4096;

const HEAD: &[u8] = br#"{"message":{"token":"#;

/// Everything of the request body but the token, encoded once per push.
#[derive(Debug, Clone)]
pub(crate) struct FcmMessage {
    /// The message object's other fields, starting with `,` (or empty), without the closing `}`.
    rest: Bytes,
}

impl FcmMessage {
    /// Builds the template; the error is the reason reported for every device of the push.
    pub(crate) fn build(push: &VendorPush) -> Result<Self, String> {
        let n = &push.notification;
        let android = n.android.clone().unwrap_or_default();
        let mut size = 0;

        let mut notification = Map::new();
        for (key, value) in [
            ("title", android.title.as_ref().or(n.title.as_ref())),
            ("body", android.body.as_ref().or(n.body.as_ref())),
            ("image", n.image.as_ref()),
        ] {
            if let Some(value) = value {
                size += key.len() + value.len();
                notification.insert(key.into(), Value::String(value.clone()));
            }
        }
        let mut android_notification = Map::new();
        for (key, value) in [("channel_id", &android.channel_id), ("sound", &android.sound)] {
            if let Some(value) = value {
                android_notification.insert(key.into(), Value::String(value.clone()));
            }
        }

        let mut data = Map::new();
        for (key, value) in android.extras.into_iter().flatten() {
            if reserved(&key) {
                return Err(format!("InvalidDataKey: {key}"));
            }
            let value = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            data.insert(key, Value::String(value));
        }
        data.insert(PUSH_ID_KEY.into(), Value::String(push.push_id.clone()));
        size += data.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum::<usize>();
        if size > MAX_PAYLOAD_BYTES {
            return Err("MessageTooBig".into());
        }

        let visible = !notification.is_empty();
        let mut android_config = Map::new();
        android_config.insert("ttl".into(), json!(format!("{}s", push.ttl_secs)));
        if let Some(collapse) = &push.collapse_id {
            android_config.insert("collapse_key".into(), json!(collapse));
        }
        android_config.insert("priority".into(), json!(if visible { "HIGH" } else { "NORMAL" }));
        if !android_notification.is_empty() {
            android_config.insert("notification".into(), Value::Object(android_notification));
        }

        let mut message = Map::new();
        if visible {
            message.insert("notification".into(), Value::Object(notification));
        }
        message.insert("android".into(), Value::Object(android_config));
        message.insert("data".into(), Value::Object(data));
        let encoded = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        // `{"a":..}` becomes `,"a":..` to follow the token field.
        let mut rest = encoded;
        if let Some(first) = rest.first_mut() {
            *first = b',';
        }
        rest.pop();
        Ok(Self { rest: Bytes::from(rest) })
    }

    /// The request body for one device.
    pub(crate) fn body_for(&self, token: &str) -> Bytes {
        let mut body = BytesMut::with_capacity(HEAD.len() + token.len() + self.rest.len() + 8);
        body.put_slice(HEAD);
        // Serialising a string cannot fail; the fallback only keeps this path free of panics.
        body.put_slice(&serde_json::to_vec(token).unwrap_or_else(|_| b"\"\"".to_vec()));
        body.put_slice(&self.rest);
        body.put_slice(b"}}");
        body.freeze()
    }
}

/// Data keys FCM keeps for itself and refuses in `data`.
fn reserved(key: &str) -> bool {
    matches!(key, "from" | "notification" | "message_type")
        || key.starts_with("google")
        || key.starts_with("gcm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::push::{AndroidNotification, Notification};

    #[test]
    fn message_with_token() {
        let n = Notification {
            title: Some("Sale".into()),
            body: Some("50% off".into()),
            image: Some("https://img/x.png".into()),
            android: Some(AndroidNotification {
                channel_id: Some("promo".into()),
                extras: Some(json!({"n": 1, "s": "x"}).as_object().unwrap().clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut push = VendorPush::new("p1", n, 3600);
        push.collapse_id = Some("sale".into());
        let body = FcmMessage::build(&push).unwrap().body_for("tok\"1");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"message": {
                "token": "tok\"1",
                "notification": {"title": "Sale", "body": "50% off", "image": "https://img/x.png"},
                "android": {"ttl": "3600s", "collapse_key": "sale", "priority": "HIGH",
                            "notification": {"channel_id": "promo"}},
                "data": {"n": "1", "s": "x", "herald_push_id": "p1"}
            }})
        );
    }

    #[test]
    fn data_only_is_normal_priority() {
        let push = VendorPush::new("p", Notification::default(), 0);
        let body: Value =
            serde_json::from_slice(&FcmMessage::build(&push).unwrap().body_for("t")).unwrap();
        assert_eq!(
            body,
            json!({"message": {"token": "t",
                "android": {"ttl": "0s", "priority": "NORMAL"},
                "data": {"herald_push_id": "p"}}})
        );
    }

    #[test]
    fn reserved_keys_and_size_are_refused() {
        let n = Notification {
            android: Some(AndroidNotification {
                extras: Some(json!({"google.x": "1"}).as_object().unwrap().clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = FcmMessage::build(&VendorPush::new("p", n, 1)).unwrap_err();
        assert_eq!(err, "InvalidDataKey: google.x");
        let big = Notification { body: Some("x".repeat(4_100)), ..Default::default() };
        assert_eq!(FcmMessage::build(&VendorPush::new("p", big, 1)).unwrap_err(), "MessageTooBig");
    }
}
