//! The notification of an `im_push`, from its `OfflinePushInfo` (and, as Tencent does when
//! `Desc` is absent, from the text of the message).
//!
//! # Format
//!
//! ```text
//! Title                     → notification.title
//! Desc (or the first TIMTextElem Text, or TIMCustomElem Desc) → notification.body
//! Ext                       → ios.extras.ext and android.extras.ext (the key Tencent clients read)
//! ApnsInfo.Title / SubTitle / Sound → ios.title / subtitle / sound
//! ApnsInfo.MutableContent=1 → ios.mutable_content; ApnsInfo.Image → ios.extras.image
//! AndroidInfo.Sound / GoogleChannelID → android.sound / channel_id
//! PushFlag=1                → no vendor push (online devices still get the notification)
//! ```

use herald_core::push::{AndroidNotification, IosNotification, Notification};
use serde_json::{Map, Value};

use super::error::TencentError;

/// Longest notification text herald accepts (`PushContent::check`), in bytes.
const MAX_TEXT_BYTES: usize = 4_096;

fn format(message: String) -> TencentError {
    TencentError::MessageFormat(message)
}

/// An optional string field of `object`.
fn string(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, TencentError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_TEXT_BYTES => Ok(Some(s.clone())),
        Some(Value::String(_)) => {
            Err(format(format!("{path}.{key} is longer than {MAX_TEXT_BYTES} bytes")))
        }
        Some(_) => Err(format(format!("{path}.{key} must be a string"))),
    }
}

/// An optional integer field of `object` that must be 0 or 1.
fn flag(object: &Map<String, Value>, key: &str, path: &str) -> Result<bool, TencentError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(value) => match value.as_u64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(format(format!("{path}.{key} must be 0 or 1"))),
        },
    }
}

/// An optional object field of `object`.
fn object<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, TencentError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(format(format!("OfflinePushInfo.{key} must be an object"))),
    }
}

/// The text Tencent shows when `Desc` is absent: a text element's text, else a custom
/// element's `Desc`.
fn message_text(body: &[Value]) -> Option<String> {
    let content = |kind: &str, field: &str| {
        body.iter()
            .filter(|e| e.get("MsgType").and_then(Value::as_str) == Some(kind))
            .find_map(|e| e.get("MsgContent")?.get(field)?.as_str().filter(|s| !s.is_empty()))
            .map(|s| s.chars().take(MAX_TEXT_BYTES / 4).collect())
    };
    content("TIMTextElem", "Text").or_else(|| content("TIMCustomElem", "Desc"))
}

/// Whether the push may go through the vendors: `PushFlag` 1 says no.
pub fn vendor_push(info: Option<&Value>) -> Result<bool, TencentError> {
    match info {
        Some(Value::Object(info)) => Ok(!flag(info, "PushFlag", "OfflinePushInfo")?),
        _ => Ok(true),
    }
}

/// The push's notification; `None` when there is nothing to show.
pub fn notification(
    info: Option<&Value>,
    body: &[Value],
) -> Result<Option<Notification>, TencentError> {
    let empty = Map::new();
    let info = match info {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(info)) => info,
        Some(_) => return Err(format("OfflinePushInfo must be an object".into())),
    };
    let path = "OfflinePushInfo";
    let ext = string(info, "Ext", path)?;
    let extras = |extra: Option<(&str, String)>| {
        let mut extras = Map::new();
        if let Some(ext) = &ext {
            extras.insert("ext".into(), Value::String(ext.clone()));
        }
        if let Some((key, value)) = extra {
            extras.insert(key.into(), Value::String(value));
        }
        (!extras.is_empty()).then_some(extras)
    };

    let ios = match object(info, "ApnsInfo")? {
        Some(apns) => {
            let path = "OfflinePushInfo.ApnsInfo";
            // BadgeMode 0 asks for "badge + 1", which needs a per-device counter herald does
            // not keep; either mode leaves the badge unset. It is still checked for type.
            if apns.get("BadgeMode").is_some_and(|m| !m.is_null() && m.as_u64().is_none()) {
                return Err(format(format!("{path}.BadgeMode must be an integer")));
            }
            let image = string(apns, "Image", path)?;
            IosNotification {
                title: string(apns, "Title", path)?,
                subtitle: string(apns, "SubTitle", path)?,
                sound: string(apns, "Sound", path)?,
                mutable_content: flag(apns, "MutableContent", path)?.then_some(true),
                extras: extras(image.map(|image| ("image", image))),
                ..IosNotification::default()
            }
        }
        None => IosNotification { extras: extras(None), ..IosNotification::default() },
    };
    let android = match object(info, "AndroidInfo")? {
        Some(android) => {
            let path = "OfflinePushInfo.AndroidInfo";
            AndroidNotification {
                sound: string(android, "Sound", path)?,
                channel_id: string(android, "GoogleChannelID", path)?,
                extras: extras(None),
                ..AndroidNotification::default()
            }
        }
        None => AndroidNotification { extras: extras(None), ..AndroidNotification::default() },
    };
    let notification = Notification {
        title: string(info, "Title", path)?,
        body: string(info, "Desc", path)?.or_else(|| message_text(body)),
        image: None,
        ios: (ios != IosNotification::default()).then_some(ios),
        android: (android != AndroidNotification::default()).then_some(android),
    };
    let visible = notification.title.is_some()
        || notification.body.is_some()
        || notification
            .ios
            .as_ref()
            .is_some_and(|i| i.title.is_some() || i.subtitle.is_some() || i.sound.is_some());
    Ok(visible.then_some(notification))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text_body() -> Vec<Value> {
        vec![json!({"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}})]
    }

    #[test]
    fn offline_push_info_maps_to_platform_fields() {
        let info = json!({
            "Title": "Sale", "Desc": "50% off", "Ext": "{\"id\":1}",
            "ApnsInfo": {"Sound": "a.caf", "BadgeMode": 1, "Title": "iOS sale",
                "SubTitle": "today", "Image": "https://img/x.png", "MutableContent": 1},
            "AndroidInfo": {"Sound": "b.mp3", "GoogleChannelID": "promo"}
        });
        let n = notification(Some(&info), &text_body()).ok().flatten();
        let n = serde_json::to_value(n).unwrap_or_default();
        assert_eq!(n["title"], "Sale");
        assert_eq!(n["body"], "50% off");
        assert_eq!(n["ios"]["title"], "iOS sale");
        assert_eq!(n["ios"]["subtitle"], "today");
        assert_eq!(n["ios"]["sound"], "a.caf");
        assert_eq!(n["ios"]["mutable_content"], true);
        assert_eq!(n["ios"]["extras"], json!({"ext": "{\"id\":1}", "image": "https://img/x.png"}));
        assert_eq!(n["android"]["sound"], "b.mp3");
        assert_eq!(n["android"]["channel_id"], "promo");
        assert_eq!(n["android"]["extras"], json!({"ext": "{\"id\":1}"}));
    }

    #[test]
    fn body_defaults_to_the_message_text() {
        let n = notification(Some(&json!({"Title": "News"})), &text_body()).ok().flatten();
        assert_eq!(n.and_then(|n| n.body).as_deref(), Some("hello"));
        let custom = vec![
            json!({"MsgType": "TIMCustomElem", "MsgContent": {"Data": "x", "Desc": "custom"}}),
        ];
        let n = notification(None, &custom).ok().flatten();
        assert_eq!(n.and_then(|n| n.body).as_deref(), Some("custom"));
    }

    #[test]
    fn push_flag_one_turns_vendor_pushes_off() {
        let info = json!({"PushFlag": 1, "Title": "x", "Desc": "y"});
        let shown = notification(Some(&info), &text_body()).ok().flatten();
        assert!(shown.is_some(), "devices that are online still show it");
        assert_eq!(vendor_push(Some(&info)).ok(), Some(false));
        assert_eq!(vendor_push(Some(&json!({"PushFlag": 0}))).ok(), Some(true));
        assert_eq!(vendor_push(None).ok(), Some(true));
    }

    #[test]
    fn nothing_to_show_is_no_notification() {
        let data = vec![json!({"MsgType": "TIMCustomElem", "MsgContent": {"Data": "x"}})];
        assert_eq!(notification(None, &data).ok(), Some(None));
    }

    #[test]
    fn wrong_types_are_format_errors() {
        let code = |info: Value| notification(Some(&info), &[]).map_err(|e| e.code()).err();
        assert_eq!(code(json!({"Title": 1})), Some(90010));
        let flag = vendor_push(Some(&json!({"PushFlag": 2}))).map_err(|e| e.code()).err();
        assert_eq!(flag, Some(90010));
        assert_eq!(code(json!({"ApnsInfo": "x"})), Some(90010));
        assert_eq!(code(json!("x")), Some(90010));
    }
}
