//! The `notification` of `/push.json`, translated into herald's [`Notification`]: the default
//! `alert` is the body of every platform, and a platform's own `alert` replaces it there.
//!
//! | RongCloud | herald |
//! |---|---|
//! | `alert`, `title` | `body`, `title` |
//! | `ios.alert`, `ios.title` | `ios.body`, `ios.title` |
//! | `ios.badge` (≤ 9999; 0 or less clears) | `ios.badge` (0 clears) |
//! | `ios.contentAvailable` 0 / 1 | `ios.content_available` |
//! | `ios.category`, `ios.thread-id`, `ios.apns-collapse-id` | `ios.category`, `ios.thread_id`, `ios.collapse_id` |
//! | `ios.richMediaUri` | `ios.extras.richMediaUri` and `ios.mutable_content` (a service extension fetches it) |
//! | `ios.extras`, `android.extras` | `ios.extras`, `android.extras` |
//! | `android.alert` | `android.body` |
//!
//! Other members (vendor blocks such as `android.hw`) are accepted and ignored.

use herald_core::push::{AndroidNotification, IosNotification, Notification};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::RongError;

/// Highest iOS badge number.
const MAX_BADGE: i64 = 9_999;

/// `notification` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct RongNotification {
    alert: Option<String>,
    title: Option<String>,
    ios: Option<RongIos>,
    android: Option<RongAndroid>,
}

#[derive(Debug, Default, Deserialize)]
struct RongIos {
    title: Option<String>,
    alert: Option<String>,
    badge: Option<i64>,
    #[serde(rename = "contentAvailable")]
    content_available: Option<i64>,
    category: Option<String>,
    #[serde(rename = "richMediaUri")]
    rich_media_uri: Option<String>,
    #[serde(rename = "thread-id")]
    thread_id: Option<String>,
    #[serde(rename = "apns-collapse-id")]
    collapse_id: Option<String>,
    extras: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct RongAndroid {
    alert: Option<String>,
    extras: Option<Map<String, Value>>,
}

/// A platform's `alert` replaces the default and so may not be empty.
fn platform_alert(field: &str, alert: Option<String>) -> Result<Option<String>, RongError> {
    match alert {
        Some(text) if text.is_empty() => {
            Err(RongError::param(format!("{field} must not be empty")))
        }
        other => Ok(other),
    }
}

impl RongNotification {
    /// Translates the notification; it needs an alert, the default or a platform's.
    pub fn translate(self) -> Result<Notification, RongError> {
        let ios = self.ios.map(translate_ios).transpose()?;
        let android = self
            .android
            .map(|a| {
                let body = platform_alert("notification.android.alert", a.alert)?;
                Ok::<_, RongError>(AndroidNotification {
                    body,
                    extras: a.extras,
                    ..Default::default()
                })
            })
            .transpose()?;
        let body = self.alert.filter(|a| !a.is_empty());
        let has_alert = body.is_some()
            || ios.as_ref().is_some_and(|i| i.body.is_some())
            || android.as_ref().is_some_and(|a| a.body.is_some());
        if !has_alert {
            return Err(RongError::param("notification.alert is required"));
        }
        Ok(Notification {
            title: self.title.filter(|t| !t.is_empty()),
            body,
            image: None,
            ios,
            android,
        })
    }
}

fn translate_ios(ios: RongIos) -> Result<IosNotification, RongError> {
    let badge = match ios.badge {
        None => None,
        Some(b) if b > MAX_BADGE => {
            return Err(RongError::param(format!(
                "notification.ios.badge must be at most {MAX_BADGE}, got {b}"
            )))
        }
        // RongCloud: 0 or a negative number clears the badge.
        Some(b) => Some(u32::try_from(b.max(0)).unwrap_or(0)),
    };
    let content_available = match ios.content_available {
        None | Some(0) => None,
        Some(1) => Some(true),
        Some(other) => {
            return Err(RongError::param(format!(
                "notification.ios.contentAvailable must be 0 or 1, got {other}"
            )))
        }
    };
    let mut extras = ios.extras;
    let rich_media = ios.rich_media_uri.filter(|u| !u.is_empty());
    if let Some(uri) = &rich_media {
        extras
            .get_or_insert_with(Map::new)
            .insert("richMediaUri".into(), Value::from(uri.as_str()));
    }
    Ok(IosNotification {
        title: ios.title.filter(|t| !t.is_empty()),
        body: platform_alert("notification.ios.alert", ios.alert)?,
        badge,
        content_available,
        mutable_content: rich_media.map(|_| true),
        category: ios.category.filter(|c| !c.is_empty()),
        thread_id: ios.thread_id.filter(|t| !t.is_empty()),
        collapse_id: ios.collapse_id.filter(|c| !c.is_empty()),
        extras,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn translate(value: Value) -> Result<Notification, RongError> {
        serde_json::from_value::<RongNotification>(value).unwrap().translate()
    }

    #[test]
    fn per_platform_alert_overrides_the_default() {
        let n = translate(json!({"alert": "this is a push",
            "ios": {"title": "标题", "alert": "override ios", "extras": {"id": "1", "name": "2"}},
            "android": {"alert": "override android", "extras": {"id": "1"}}}))
        .unwrap();
        assert_eq!(
            Value::Object(n.resolve("ios")),
            json!({"body": "override ios", "title": "标题", "extras": {"id": "1", "name": "2"}})
        );
        assert_eq!(
            Value::Object(n.resolve("android")),
            json!({"body": "override android", "extras": {"id": "1"}})
        );
        assert_eq!(Value::Object(n.resolve("web")), json!({"body": "this is a push"}));
    }

    #[test]
    fn ios_fields() {
        let n = translate(json!({"alert": "a", "ios": {"badge": 2, "contentAvailable": 1,
            "category": "c", "thread-id": "t", "apns-collapse-id": "k",
            "richMediaUri": "https://x/y.png"}}))
        .unwrap();
        assert_eq!(
            Value::Object(n.resolve("ios")),
            json!({"body": "a", "badge": 2, "content_available": true, "mutable_content": true,
                "category": "c", "thread_id": "t", "collapse_id": "k",
                "extras": {"richMediaUri": "https://x/y.png"}})
        );
        let cleared = translate(json!({"alert": "a", "ios": {"badge": -3}})).unwrap();
        assert_eq!(cleared.ios.unwrap().badge, Some(0));
        let max = translate(json!({"alert": "a", "ios": {"badge": 9999}})).unwrap();
        assert_eq!(max.ios.unwrap().badge, Some(9999));
    }

    #[test]
    fn refusals() {
        let code = |v: Value| translate(v).unwrap_err().code_and_status().0;
        assert_eq!(code(json!({"alert": "a", "ios": {"badge": 10000}})), 1002);
        assert_eq!(code(json!({"alert": "a", "ios": {"contentAvailable": 2}})), 1002);
        assert_eq!(code(json!({"alert": "a", "ios": {"alert": ""}})), 1002);
        assert_eq!(code(json!({"title": "only a title"})), 1002);
        assert!(translate(json!({"ios": {"alert": "ios only"}})).is_ok());
    }

    #[test]
    fn vendor_blocks_are_ignored() {
        assert!(translate(json!({"alert": "a", "android": {"hw": {"channelId": "x"}}})).is_ok());
    }
}
