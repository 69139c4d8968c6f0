//! `/message/broadcast.json`: a message to every user, kept for offline devices.
//!
//! # Format
//! ```text
//! POST /message/broadcast.json
//! fromUserId=u0&objectName=RC:TxtMsg&content={"content":"hello"}&pushContent=hello&pushData={"k":"v"}
//! → {"code":200,"id":"p_..."}
//! ```
//! Devices receive `{"objectName":..,"content":..}` as the message (`content` is the string as
//! sent); `pushContent` becomes the notification body and `pushData` the notification extras
//! `{"pushData": ..}` on iOS and Android. The push waits for offline devices for the app's
//! `max_offline_ttl_secs` and counts against the layer's rate limits together with `/push`.

use axum::extract::State;
use herald_core::push::{AndroidNotification, IosNotification, Notification};
use serde_json::{json, Map, Value};

use super::audience::Target;
use super::call::Call;
use super::envelope::Reply;
use super::error::RongError;
use super::form::Form;
use super::push::{message, send};
use crate::state::AppState;

/// Handle the `POST /message/broadcast.{json,xml}` route.
pub async fn broadcast_route(State(state): State<AppState>, call: Call) -> Reply {
    call.answer(broadcast(&state, &call).await)
}

async fn broadcast(state: &AppState, call: &Call) -> Result<Vec<(&'static str, Value)>, RongError> {
    let (message, notification, sender) = read(&call.body)?;
    let target = Target { audience: json!({"all": true}), platforms: None };
    let id = send(state, call, target, message, notification, sender).await?;
    Ok(vec![("id", Value::String(id))])
}

/// The message, notification and sender of a broadcast form body.
pub fn read(body: &[u8]) -> Result<(Value, Option<Notification>, Option<String>), RongError> {
    let form = Form::parse(body)?;
    let message = message(form.optional("objectName"), form.optional("content").map(Value::from))?;
    let notification = notification(form.optional("pushContent"), form.optional("pushData"));
    let sender = form.optional("fromUserId").map(str::to_owned);
    Ok((message, notification, sender))
}

/// The notification of `pushContent` and `pushData`, if either is given.
fn notification(push_content: Option<&str>, push_data: Option<&str>) -> Option<Notification> {
    if push_content.is_none() && push_data.is_none() {
        return None;
    }
    let extras = push_data.map(|data| Map::from_iter([("pushData".to_owned(), Value::from(data))]));
    Some(Notification {
        body: push_content.map(str::to_owned),
        ios: extras
            .clone()
            .map(|extras| IosNotification { extras: Some(extras), ..Default::default() }),
        android: extras
            .map(|extras| AndroidNotification { extras: Some(extras), ..Default::default() }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_content_and_data() {
        assert_eq!(notification(None, None), None);
        let n = notification(Some("hello"), Some("{\"k\":\"v\"}")).unwrap_or_default();
        assert_eq!(
            Value::Object(n.resolve("android")),
            json!({"body": "hello", "extras": {"pushData": "{\"k\":\"v\"}"}})
        );
        assert_eq!(
            Value::Object(n.resolve("ios")),
            json!({"body": "hello", "extras": {"pushData": "{\"k\":\"v\"}"}})
        );
        let plain = notification(Some("hi"), None).unwrap_or_default();
        assert_eq!(Value::Object(plain.resolve("ios")), json!({"body": "hi"}));
    }
}
