//! A push: what the app sends, to whom, and how long it waits for devices that are offline.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::account::{check_account, check_platform, check_text, FieldError};
use crate::limits::{LimitBreach, Limits};

/// Where a push is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushStatus {
    /// Accepted and durable; waiting for its time or for the dispatcher.
    Scheduled,
    /// Audience resolved and stored; online fan-out running.
    Dispatching,
    Done,
    Cancelled,
    Failed,
}

impl PushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Scheduled => "scheduled",
            PushStatus::Dispatching => "dispatching",
            PushStatus::Done => "done",
            PushStatus::Cancelled => "cancelled",
            PushStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Scheduled, Self::Dispatching, Self::Done, Self::Cancelled, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// The visible notification of a push: a default text and per-platform overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    pub title: Option<String>,
    pub body: Option<String>,
    /// Image URL, for platforms that show one.
    pub image: Option<String>,
    pub ios: Option<IosNotification>,
    pub android: Option<AndroidNotification>,
}

/// APNs-specific fields; `title` and `body` override the defaults on iOS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IosNotification {
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub body: Option<String>,
    /// Badge number; 0 clears it.
    pub badge: Option<u32>,
    pub sound: Option<String>,
    pub content_available: Option<bool>,
    pub mutable_content: Option<bool>,
    pub category: Option<String>,
    pub thread_id: Option<String>,
    pub collapse_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub extras: Option<Map<String, Value>>,
}

/// Android-specific fields; `title` and `body` override the defaults on Android.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AndroidNotification {
    pub title: Option<String>,
    pub body: Option<String>,
    pub channel_id: Option<String>,
    pub sound: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub extras: Option<Map<String, Value>>,
}

impl Notification {
    /// The notification as a device of `platform` shows it: the defaults with that platform's
    /// overrides applied, without empty fields.
    pub fn resolve(&self, platform: &str) -> Map<String, Value> {
        let mut out = Map::new();
        put(&mut out, "title", &self.title);
        put(&mut out, "body", &self.body);
        put(&mut out, "image", &self.image);
        let specific = match platform {
            "ios" => self.ios.as_ref().map(serde_json::to_value),
            "android" => self.android.as_ref().map(serde_json::to_value),
            _ => None,
        };
        if let Some(Ok(Value::Object(fields))) = specific {
            out.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
        }
        out
    }

    /// Every text field with its name, for checks.
    fn texts(&self) -> Vec<(&'static str, &str)> {
        let mut fields = vec![("title", &self.title), ("body", &self.body), ("image", &self.image)];
        if let Some(ios) = &self.ios {
            fields.extend([
                ("ios.title", &ios.title),
                ("ios.subtitle", &ios.subtitle),
                ("ios.body", &ios.body),
                ("ios.sound", &ios.sound),
                ("ios.category", &ios.category),
                ("ios.thread_id", &ios.thread_id),
                ("ios.collapse_id", &ios.collapse_id),
            ]);
        }
        if let Some(android) = &self.android {
            fields.extend([
                ("android.title", &android.title),
                ("android.body", &android.body),
                ("android.channel_id", &android.channel_id),
                ("android.sound", &android.sound),
            ]);
        }
        fields.into_iter().filter_map(|(name, value)| Some((name, value.as_deref()?))).collect()
    }
}

fn put(out: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        out.insert(key.into(), Value::String(value.clone()));
    }
}

/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// A push as the app asks for it, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PushContent {
    /// The custom message, any JSON; `null` for a notification-only push.
    pub message: Value,
    pub notification: Option<Notification>,
    pub sender: Option<String>,
    /// Devices of these platforms only; `None` for all.
    pub platforms: Option<Vec<String>>,
    /// Seconds the push waits for offline devices; 0 means online devices only.
    pub ttl_secs: u32,
    /// Idempotency key: the same key within 7 days is the same push.
    pub idempotency_key: Option<String>,
    /// Whether devices that were offline get the notification through APNs / FCM.
    pub vendor_push: bool,
}

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("a push needs a message or a notification")]
    Empty,
    #[error("{0}")]
    Field(#[from] FieldError),
    #[error(transparent)]
    Limit(#[from] LimitBreach),
}

impl PushContent {
    /// Checks the push against the app's limits. The message size is that of its compact JSON.
    pub fn check(&self, limits: &Limits) -> Result<(), PushError> {
        let empty_notification = self.notification.as_ref().is_none_or(|n| n.texts().is_empty());
        if self.message.is_null() && empty_notification {
            return Err(PushError::Empty);
        }
        let size = self.message.to_string().len();
        LimitBreach::check("message_bytes", limits.message_bytes, size)?;
        LimitBreach::check(
            "max_offline_ttl_secs",
            limits.max_offline_ttl_secs,
            self.ttl_secs as usize,
        )?;
        if let Some(sender) = &self.sender {
            check_account(sender)?;
        }
        for platform in self.platforms.iter().flatten() {
            check_platform(platform)?;
        }
        if let Some(key) = &self.idempotency_key {
            check_text("idempotency_key", key, MAX_IDEMPOTENCY_KEY_BYTES)?;
        }
        if let Some(notification) = &self.notification {
            for (field, text) in notification.texts() {
                check_text(field, text, 4_096)?;
            }
        }
        Ok(())
    }

    /// Whether the push waits for offline devices at all.
    pub fn is_online_only(&self) -> bool {
        self.ttl_secs == 0
    }

    /// Whether a device of `platform` may receive the push.
    pub fn admits(&self, platform: &str) -> bool {
        self.platforms.as_ref().is_none_or(|only| only.iter().any(|p| p == platform))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn content() -> PushContent {
        PushContent {
            message: json!({"text": "hi"}),
            notification: None,
            sender: None,
            platforms: None,
            ttl_secs: 60,
            idempotency_key: None,
            vendor_push: true,
        }
    }

    #[test]
    fn notification_resolves_per_platform() {
        let n: Notification = serde_json::from_value(json!({
            "title": "Sale", "body": "50% off",
            "ios": {"subtitle": "today", "badge": 1, "body": "50% off on iOS"},
            "android": {"channel_id": "promo"}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(n.resolve("ios")),
            json!({"title": "Sale", "body": "50% off on iOS", "subtitle": "today", "badge": 1})
        );
        assert_eq!(
            Value::Object(n.resolve("android")),
            json!({"title": "Sale", "body": "50% off", "channel_id": "promo"})
        );
        assert_eq!(Value::Object(n.resolve("web")), json!({"title": "Sale", "body": "50% off"}));
    }

    #[test]
    fn limits_are_checked() {
        let limits = Limits { message_bytes: 20, max_offline_ttl_secs: 100, ..Limits::default() };
        assert!(content().check(&limits).is_ok());
        let big = PushContent { message: json!({"text": "x".repeat(30)}), ..content() };
        assert!(
            matches!(big.check(&limits), Err(PushError::Limit(b)) if b.limit == "message_bytes")
        );
        let long = PushContent { ttl_secs: 101, ..content() };
        assert!(
            matches!(long.check(&limits), Err(PushError::Limit(b)) if b.limit == "max_offline_ttl_secs")
        );
        let empty = PushContent { message: Value::Null, ..content() };
        assert_eq!(empty.check(&limits), Err(PushError::Empty));
        let bad = PushContent { platforms: Some(vec!["iOS".into()]), ..content() };
        assert!(matches!(bad.check(&limits), Err(PushError::Field(_))));
    }

    #[test]
    fn platform_filter() {
        assert!(content().admits("web"));
        let ios = PushContent { platforms: Some(vec!["ios".into()]), ..content() };
        assert!(ios.admits("ios") && !ios.admits("android"));
    }

    #[test]
    fn unknown_notification_field_is_refused() {
        let err = serde_json::from_value::<Notification>(json!({"titel": "x"})).unwrap_err();
        assert!(err.to_string().contains("titel"));
    }
}
