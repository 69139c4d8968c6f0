//! `all_member_push/im_push`: a push to all users, or to those a `Condition` selects, through
//! the same acceptance path as native pushes (`crate::pushes::accept`).
//!
//! # Format
//!
//! ```json
//! {"From_Account":"admin","MsgRandom":122,"MsgLifeTime":120,
//!  "Condition":{"TagsOr":["stock-a","stock-b"]},
//!  "MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hi"}}],
//!  "OfflinePushInfo":{"PushFlag":0,"Title":"..","Desc":".."}}
//! → {"TaskId":"p_..."}
//! ```
//!
//! Clients receive the message as `{"MsgBody":[...]}`, the TIM elements as sent, with the
//! sender beside it. `MsgRandom` is the idempotency key (`tencent:{MsgRandom}`): the same value
//! within 7 days answers with the first `TaskId` and pushes nothing.

use std::collections::HashSet;

use herald_core::push::PushContent;
use serde_json::{json, Map, Value};

use super::accounts::MAX_USER_ID_BYTES;
use super::envelope::Fields;
use super::error::TencentError;
use super::request::Body;
use super::{condition, notification, Caller};
use crate::compat::Layer;
use crate::directory;
use crate::pushes::{self, PushRequest, PushSource};

/// Longest offline storage Tencent accepts: 7 days.
pub const MAX_LIFE_TIME_SECS: u32 = 604_800;

/// Handle `POST /v4/all_member_push/im_push`.
pub async fn push_route(caller: &Caller, body: &Body) -> Result<Fields, TencentError> {
    let head = Head::read(body, &caller.settings.admin_identifier)?;
    let names: HashSet<String> = directory::attribute_names(&caller.state.directory, &caller.app)
        .await?
        .into_values()
        .collect();
    let (audience, content) = head.finish(body, &names)?;
    let request = PushRequest {
        source: PushSource::Layer(Layer::Tencent, caller.settings.limits),
        audience,
        content,
        push_at: None,
    };
    let (record, _) = pushes::accept(&caller.state, &caller.app, request).await?;
    let mut fields = Fields::new();
    fields.insert("TaskId".into(), json!(record.id));
    Ok(fields)
}

/// Reads an `im_push` body into its audience and content, as [`push_route`] does, with the
/// app's attribute names given rather than read from the store.
pub fn read(
    body: &Body,
    admin_identifier: &str,
    attribute_names: &HashSet<String>,
) -> Result<(Value, PushContent), TencentError> {
    Head::read(body, admin_identifier)?.finish(body, attribute_names)
}

/// The fields of an `im_push` that are checked before the app's attribute names are needed.
struct Head<'a> {
    random: u64,
    elements: &'a [Value],
    ttl_secs: u32,
    sender: String,
}

impl<'a> Head<'a> {
    fn read(body: &'a Body, admin_identifier: &str) -> Result<Self, TencentError> {
        let random = body
            .get("MsgRandom")
            .and_then(Value::as_u64)
            .filter(|n| u32::try_from(*n).is_ok())
            .ok_or(TencentError::MsgRandom)?;
        let elements = match body.get("MsgBody") {
            Some(Value::Array(elements)) => elements,
            Some(_) => return Err(TencentError::MsgBodyNotArray),
            None => return Err(TencentError::MsgBody("MsgBody is required".into())),
        };
        check_elements(elements)?;
        let ttl_secs = match body.get("MsgLifeTime") {
            // Tencent's default: online users only.
            None | Some(Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .and_then(|secs| u32::try_from(secs).ok())
                .filter(|secs| *secs <= MAX_LIFE_TIME_SECS)
                .ok_or(TencentError::LifeTime { max: MAX_LIFE_TIME_SECS })?,
        };
        let sender = match body.get("From_Account") {
            None | Some(Value::Null) => admin_identifier.to_owned(),
            Some(Value::String(from)) if !from.is_empty() && from.len() <= MAX_USER_ID_BYTES => {
                from.clone()
            }
            Some(_) => {
                return Err(TencentError::MessageFormat(format!(
                    "From_Account must be a UserID of 1 to {MAX_USER_ID_BYTES} bytes"
                )))
            }
        };
        Ok(Self { random, elements, ttl_secs, sender })
    }

    /// The audience (from `Condition`) and the content of the push.
    fn finish(
        self,
        body: &Body,
        attribute_names: &HashSet<String>,
    ) -> Result<(Value, PushContent), TencentError> {
        let audience = condition::audience(body.get("Condition"), attribute_names)?;
        let info = body.get("OfflinePushInfo");
        let notification = notification::notification(info, self.elements)?;
        let vendor_push = notification::vendor_push(info)?;
        let content = PushContent {
            message: json!({ "MsgBody": self.elements }),
            notification,
            sender: Some(self.sender),
            platforms: None,
            ttl_secs: self.ttl_secs,
            idempotency_key: Some(format!("tencent:{}", self.random)),
            vendor_push,
        };
        Ok((audience, content))
    }
}

/// Each element needs a `MsgType` and a `MsgContent` object; text and custom elements are
/// checked field by field, other `TIM*Elem` types pass through as sent.
fn check_elements(elements: &[Value]) -> Result<(), TencentError> {
    let invalid = |i: usize, what: &str| TencentError::MsgBody(format!("MsgBody[{i}]: {what}"));
    if elements.is_empty() {
        return Err(TencentError::MsgBody("MsgBody is empty".into()));
    }
    for (i, element) in elements.iter().enumerate() {
        let kind = element
            .get("MsgType")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(i, "MsgType must be a string"))?;
        let content: &Map<String, Value> = element
            .get("MsgContent")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid(i, "MsgContent must be an object"))?;
        let strings: &[&str] = match kind {
            "TIMTextElem" => {
                if !content.get("Text").is_some_and(Value::is_string) {
                    return Err(invalid(i, "TIMTextElem needs a Text string"));
                }
                &[]
            }
            "TIMCustomElem" => &["Data", "Desc", "Ext", "Sound"],
            other if other.starts_with("TIM") && other.ends_with("Elem") => &[],
            other => return Err(invalid(i, &format!("unknown MsgType {other}"))),
        };
        for field in strings {
            if content.get(*field).is_some_and(|v| !v.is_string()) {
                return Err(invalid(i, &format!("{kind}.{field} must be a string")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: Value) -> Option<u32> {
        let elements = body.as_array().cloned().unwrap_or_default();
        check_elements(&elements).map_err(|e| e.code()).err()
    }

    #[test]
    fn elements_are_checked() {
        assert_eq!(code(json!([{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}])), None);
        assert_eq!(
            code(json!([{"MsgType": "TIMCustomElem",
                "MsgContent": {"Data": "d", "Desc": "x", "Ext": "e", "Sound": "s"}}])),
            None
        );
        assert_eq!(
            code(json!([{"MsgType": "TIMFaceElem", "MsgContent": {"Index": 1, "Data": "x"}}])),
            None
        );
        assert_eq!(code(json!([])), Some(90002));
        assert_eq!(code(json!([{"MsgType": "TIMTextElem", "MsgContent": {}}])), Some(90002));
        assert_eq!(code(json!([{"MsgType": "TIMTextElem"}])), Some(90002));
        assert_eq!(code(json!([{"MsgType": "Text", "MsgContent": {}}])), Some(90002));
        assert_eq!(
            code(json!([{"MsgType": "TIMCustomElem", "MsgContent": {"Data": 1}}])),
            Some(90002)
        );
    }
}
