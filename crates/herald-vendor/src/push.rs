//! The push as the vendor channels take it, and its encoded form: built once per push and shared
//! by every device it goes to (one APNs payload, one FCM message template, one Web Push
//! plaintext with its headers).

use std::time::SystemTime;

use herald_core::push::Notification;

use crate::apns::payload::ApnsPayload;
use crate::fcm::message::FcmMessage;
use crate::webpush::message::WebPushMessage;
use crate::webpush::Urgency;

/// One push to send through the vendors: what the dispatcher passes for every push that has a
/// notification and reaches offline devices.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorPush {
    /// herald's push id; sent as `herald_push_id` so the app can report the open.
    pub push_id: String,
    /// The notification with its per-platform overrides, as the app sent it.
    pub notification: Notification,
    /// Seconds the vendor should keep the notification for a device that is off; the remaining
    /// TTL of the push when it is dispatched late. 0: deliver now or never.
    pub ttl_secs: u32,
    /// Notifications with the same collapse id replace each other on the device
    /// (`apns-collapse-id`, FCM `collapse_key`, Web Push `Topic`). Defaults to
    /// `notification.ios.collapse_id`.
    pub collapse_id: Option<String>,
    /// Web Push `Urgency`: how soon a browser's device should be woken for it.
    pub urgency: Urgency,
}

impl VendorPush {
    pub fn new(push_id: impl Into<String>, notification: Notification, ttl_secs: u32) -> Self {
        let collapse_id = notification.ios.as_ref().and_then(|ios| ios.collapse_id.clone());
        Self {
            push_id: push_id.into(),
            notification,
            ttl_secs,
            collapse_id,
            urgency: Urgency::Normal,
        }
    }
}

/// A push encoded for every vendor. Cheap to share across many sends; build it with
/// [`crate::Vendor::prepare`] (or [`PreparedPush::new`] with an explicit time).
#[derive(Debug, Clone)]
pub struct PreparedPush {
    push_id: String,
    /// The APNs request parts, or the reason every APNs send of this push fails.
    pub(crate) apns: Result<ApnsPayload, &'static str>,
    /// The FCM message template, or the reason every FCM send of this push fails.
    pub(crate) fcm: Result<FcmMessage, String>,
    /// The Web Push plaintext and headers, or the reason every Web Push send of this push fails.
    pub(crate) webpush: Result<WebPushMessage, &'static str>,
}

impl PreparedPush {
    /// Encodes `push`; `now` fixes `apns-expiration` (now + TTL).
    pub fn new(push: &VendorPush, now: SystemTime) -> Self {
        Self {
            push_id: push.push_id.clone(),
            apns: ApnsPayload::build(push, now),
            fcm: FcmMessage::build(push),
            webpush: WebPushMessage::build(push),
        }
    }

    pub fn push_id(&self) -> &str {
        &self.push_id
    }
}
