//! Web Push (RFC 8030) to browsers: payloads encrypted for each subscription (RFC 8291,
//! `aes128gcm`) and the app identified by VAPID (RFC 8292).

pub(crate) mod credentials;
pub mod ece;
pub(crate) mod error;
pub(crate) mod message;
pub(crate) mod router;
pub(crate) mod settings;
pub(crate) mod subscription;
pub(crate) mod vapid;

pub use credentials::{RedactedWebPushCredentials, WebPushCredentials};
pub use error::WebPushError;
pub use message::{topic, Urgency, MAX_TOPIC_CHARS};
pub use settings::WebPushSettings;
pub use subscription::{
    SubscriptionError, SubscriptionJson, SubscriptionKeys, WebPushSubscription,
    MAX_SUBSCRIPTION_BYTES,
};
