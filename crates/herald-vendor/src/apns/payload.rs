//! The APNs request for one push: the JSON payload and the headers that depend on it.
//!
//! # Format
//!
//! ```text
//! apns-push-type: alert | background     (background: content-available without alert, badge, sound)
//! apns-priority:  10 | 5                 (5 is required for background pushes)
//! apns-expiration: <unix seconds>        (now + ttl; 0 = deliver now or drop)
//! apns-collapse-id: <id>                 (at most 64 bytes)
//!
//! {"aps":{"alert":{"title","subtitle","body"},"badge","sound","content-available":1,
//!         "mutable-content":1,"category","thread-id"}, ...extras, "herald_push_id":"..."}
//! ```

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderValue;
use serde_json::{json, Map, Value};

use crate::clock::unix_secs;
use crate::push::VendorPush;

/// Largest payload APNs accepts for alert and background pushes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// Longest `apns-collapse-id` APNs accepts.
pub const MAX_COLLAPSE_ID_BYTES: usize = 64;

/// The key herald adds to every payload so the app can report opens.
pub const PUSH_ID_KEY: &str = "herald_push_id";

/// Encoded once per push, shared by all its APNs sends.
#[derive(Debug, Clone)]
pub(crate) struct ApnsPayload {
    pub(crate) body: Bytes,
    pub(crate) push_type: HeaderValue,
    pub(crate) priority: HeaderValue,
    pub(crate) expiration: HeaderValue,
    pub(crate) collapse_id: Option<HeaderValue>,
}

impl ApnsPayload {
    /// Builds the payload; the error is the reason reported for every device of the push.
    pub(crate) fn build(push: &VendorPush, now: SystemTime) -> Result<Self, &'static str> {
        let n = &push.notification;
        let ios = n.ios.clone().unwrap_or_default();
        let mut alert = Map::new();
        put(&mut alert, "title", ios.title.as_ref().or(n.title.as_ref()));
        put(&mut alert, "subtitle", ios.subtitle.as_ref());
        put(&mut alert, "body", ios.body.as_ref().or(n.body.as_ref()));

        let mut aps = Map::new();
        let has_alert = !alert.is_empty();
        if has_alert {
            aps.insert("alert".into(), Value::Object(alert));
        }
        if let Some(badge) = ios.badge {
            aps.insert("badge".into(), json!(badge));
        }
        put(&mut aps, "sound", ios.sound.as_ref());
        let content_available = ios.content_available == Some(true);
        if content_available {
            aps.insert("content-available".into(), json!(1));
        }
        if ios.mutable_content == Some(true) {
            aps.insert("mutable-content".into(), json!(1));
        }
        put(&mut aps, "category", ios.category.as_ref());
        put(&mut aps, "thread-id", ios.thread_id.as_ref());

        let visible = has_alert || ios.badge.is_some() || ios.sound.is_some();
        if !visible && !content_available {
            return Err("EmptyNotification");
        }
        // Apple: a push that only wakes the app is `background` and must use priority 5.
        let (push_type, priority) = if visible { ("alert", "10") } else { ("background", "5") };

        let mut payload = Map::new();
        for (key, value) in ios.extras.into_iter().flatten() {
            if key != "aps" && key != PUSH_ID_KEY {
                payload.insert(key, value);
            }
        }
        payload.insert("aps".into(), Value::Object(aps));
        payload.insert(PUSH_ID_KEY.into(), Value::String(push.push_id.clone()));
        let body = serde_json::to_vec(&payload).map_err(|_| "PayloadUnencodable")?;
        if body.len() > MAX_PAYLOAD_BYTES {
            return Err("PayloadTooLarge");
        }

        let expiration = match push.ttl_secs {
            0 => 0,
            ttl => unix_secs(now + Duration::from_secs(u64::from(ttl))),
        };
        let collapse_id = match &push.collapse_id {
            None => None,
            Some(id) if id.len() > MAX_COLLAPSE_ID_BYTES => return Err("BadCollapseId"),
            Some(id) => Some(HeaderValue::from_str(id).map_err(|_| "BadCollapseId")?),
        };
        Ok(Self {
            body: Bytes::from(body),
            push_type: HeaderValue::from_static(push_type),
            priority: HeaderValue::from_static(priority),
            expiration: HeaderValue::from(expiration),
            collapse_id,
        })
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        map.insert(key.into(), Value::String(value.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_core::push::{IosNotification, Notification};

    fn build(n: Notification, ttl: u32) -> Result<ApnsPayload, &'static str> {
        let push = VendorPush::new("p1", n, ttl);
        ApnsPayload::build(&push, SystemTime::UNIX_EPOCH + Duration::from_secs(1_000))
    }

    #[test]
    fn alert_payload_and_headers() {
        let n = Notification {
            title: Some("Sale".into()),
            body: Some("50% off".into()),
            ios: Some(IosNotification {
                subtitle: Some("today".into()),
                badge: Some(3),
                collapse_id: Some("sale".into()),
                extras: Some(
                    json!({"deep": "app://sale", "aps": "ignored"}).as_object().unwrap().clone(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = build(n, 60).unwrap();
        let body: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(
            body,
            json!({"aps": {"alert": {"title": "Sale", "subtitle": "today", "body": "50% off"},
                           "badge": 3},
                   "deep": "app://sale", "herald_push_id": "p1"})
        );
        assert_eq!(p.push_type, "alert");
        assert_eq!(p.priority, "10");
        assert_eq!(p.expiration, "1060");
        assert_eq!(p.collapse_id.unwrap(), "sale");
    }

    #[test]
    fn content_available_only_is_background() {
        let n = Notification {
            ios: Some(IosNotification { content_available: Some(true), ..Default::default() }),
            ..Default::default()
        };
        let p = build(n, 0).unwrap();
        assert_eq!(p.push_type, "background");
        assert_eq!(p.priority, "5");
        assert_eq!(p.expiration, "0");
    }

    #[test]
    fn refusals() {
        assert_eq!(build(Notification::default(), 1).unwrap_err(), "EmptyNotification");
        let big = Notification { body: Some("x".repeat(5_000)), ..Default::default() };
        assert_eq!(build(big, 1).unwrap_err(), "PayloadTooLarge");
        let collapse = Notification {
            body: Some("x".into()),
            ios: Some(IosNotification { collapse_id: Some("c".repeat(65)), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(build(collapse, 1).unwrap_err(), "BadCollapseId");
    }
}
