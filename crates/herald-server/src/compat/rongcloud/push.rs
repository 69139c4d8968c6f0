//! `/push.json`: a push to an audience of tags, users, a package or everyone, with a
//! notification per platform and an optional message, accepted by [`crate::pushes::accept`].
//!
//! # Format
//! ```text
//! POST /push.json
//! {"platform":["ios","android"],"fromuserid":"u0","audience":{"tag":["女"],"tag_or":["北京","上海"]},
//!  "message":{"objectName":"RC:TxtMsg","content":"{\"content\":\"1111\"}"},
//!  "notification":{"alert":"this is a push","ios":{"alert":"override","badge":2}}}
//! → {"code":200,"id":"p_..."}
//! ```
//! With `message`, devices receive `{"objectName":..,"content":..}` as the push's message
//! (`content` exactly as sent, usually a JSON string); without it the push carries the
//! notification only. Either way it waits for offline devices for the app's
//! `max_offline_ttl_secs`, as RongCloud's pushes reach offline devices through the vendors.
//! Pushes to tags, packages or everyone count against the layer's rate limits (default 2 an
//! hour, 3 a day, shared with `/message/broadcast`); pushes to a `userid` list do not.

use axum::extract::State;
use herald_core::account::check_platform;
use herald_core::push::{Notification, PushContent};
use herald_core::LimitBreach;
use serde::Deserialize;
use serde_json::{json, Value};

use super::audience::{translate, RongAudience, Target};
use super::call::{json_body, Call};
use super::envelope::Reply;
use super::error::RongError;
use super::notification::RongNotification;
use super::tags::check_user;
use crate::compat::Layer;
use crate::pushes::{self, PushRequest, PushSource};
use crate::state::AppState;

/// Characters of a message type name.
const MAX_OBJECT_NAME_CHARS: u32 = 32;

#[derive(Deserialize)]
struct PushBody {
    platform: Option<Vec<String>>,
    #[serde(alias = "fromUserId")]
    fromuserid: Option<String>,
    audience: Option<RongAudience>,
    message: Option<RongMessage>,
    notification: Option<RongNotification>,
}

#[derive(Deserialize)]
struct RongMessage {
    #[serde(rename = "objectName")]
    object_name: Option<String>,
    content: Option<Value>,
}

/// The herald message of a RongCloud message: its type name (≤ 32 characters) and content.
pub fn message(object_name: Option<&str>, content: Option<Value>) -> Result<Value, RongError> {
    let object_name = object_name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RongError::param("objectName is required"))?;
    LimitBreach::check("objectName", MAX_OBJECT_NAME_CHARS, object_name.chars().count())?;
    let content =
        content.filter(|c| !c.is_null()).ok_or_else(|| RongError::param("content is required"))?;
    Ok(json!({"objectName": object_name, "content": content}))
}

/// The `platform` list: at least one, lower-cased (`iOS` reads as `ios`), each once.
fn platforms(given: Option<Vec<String>>) -> Result<Vec<String>, RongError> {
    let given =
        given.filter(|p| !p.is_empty()).ok_or_else(|| RongError::param("platform is required"))?;
    let mut out: Vec<String> = Vec::with_capacity(given.len());
    for (i, platform) in given.iter().enumerate() {
        let platform = platform.to_ascii_lowercase();
        check_platform(&platform)
            .map_err(|err| RongError::field(&format!("platform[{i}]"), err))?;
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    Ok(out)
}

/// Stores and queues a push through the layer; returns its id.
pub async fn send(
    state: &AppState,
    call: &Call,
    target: Target,
    message: Value,
    notification: Option<Notification>,
    sender: Option<String>,
) -> Result<String, RongError> {
    if let Some(sender) = &sender {
        check_user("fromuserid", sender)?;
    }
    let request = PushRequest {
        source: PushSource::Layer(Layer::RongCloud, call.settings.limits),
        audience: target.audience,
        content: PushContent {
            vendor_push: true,
            message,
            notification,
            sender,
            platforms: target.platforms,
            ttl_secs: call.app.limits.max_offline_ttl_secs,
            idempotency_key: None,
        },
        push_at: None,
    };
    let (record, _) = pushes::accept(state, &call.app, request).await?;
    Ok(record.id)
}

/// Handle the `POST /push.{json,xml}` route.
pub async fn push_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(push(&state, &call).await)
}

async fn push(state: &AppState, call: &Call) -> Result<Vec<(&'static str, Value)>, RongError> {
    let PushCall { target, message, notification, sender } = read(&call.body)?;
    let id = send(state, call, target, message, notification, sender).await?;
    Ok(vec![("id", Value::String(id))])
}

/// A `/push` body, read and checked.
pub struct PushCall {
    pub target: Target,
    pub message: Value,
    pub notification: Option<Notification>,
    pub sender: Option<String>,
}

/// Reads a `/push` body as [`push_route`] does before it sends the push.
pub fn read(body: &[u8]) -> Result<PushCall, RongError> {
    let body: PushBody = json_body(body)?;
    let platforms = platforms(body.platform)?;
    let audience = body.audience.ok_or_else(|| RongError::param("audience is required"))?;
    let target = translate(&audience, platforms)?;
    let message = match body.message {
        Some(m) => message(m.object_name.as_deref(), m.content)?,
        None => Value::Null,
    };
    let notification = body.notification.map(RongNotification::translate).transpose()?;
    if message.is_null() && notification.is_none() {
        return Err(RongError::param("notification is required"));
    }
    let sender = body.fromuserid.filter(|s| !s.is_empty());
    Ok(PushCall { target, message, notification, sender })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(result: Result<T, RongError>) -> u32 {
        result.err().map(|e| e.code_and_status().0).unwrap_or(200)
    }

    #[test]
    fn object_name_and_content() {
        assert_eq!(
            message(Some("RC:TxtMsg"), Some(json!("{\"content\":\"1111\"}"))).ok(),
            Some(json!({"objectName": "RC:TxtMsg", "content": "{\"content\":\"1111\"}"}))
        );
        assert_eq!(code(message(Some(&"x".repeat(32)), Some(json!("c")))), 200);
        assert_eq!(code(message(Some(&"x".repeat(33)), Some(json!("c")))), 1005);
        assert_eq!(code(message(Some(&"消".repeat(32)), Some(json!("c")))), 200, "characters");
        assert_eq!(code(message(None, Some(json!("c")))), 1002);
        assert_eq!(code(message(Some("RC:TxtMsg"), None)), 1002);
    }

    #[test]
    fn platform_list() {
        let list = |p: &[&str]| Some(p.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            platforms(list(&["iOS", "android", "ios"])).ok(),
            Some(vec!["ios".into(), "android".into()])
        );
        assert_eq!(code(platforms(list(&[]))), 1002);
        assert_eq!(code(platforms(None)), 1002);
        assert_eq!(code(platforms(list(&["i os"]))), 1002);
    }
}
