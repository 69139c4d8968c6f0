//! Apple Push Notification service: token-based (JWT) authentication over HTTP/2.

pub(crate) mod credentials;
pub(crate) mod error;
pub(crate) mod payload;
pub(crate) mod router;
pub(crate) mod settings;
pub(crate) mod token;

pub use credentials::{ApnsCredentials, ApnsEnvironment, RedactedApnsCredentials};
pub use error::ApnsError;
pub use payload::{MAX_COLLAPSE_ID_BYTES, MAX_PAYLOAD_BYTES, PUSH_ID_KEY};
pub use settings::{ApnsSettings, PRODUCTION_URL, SANDBOX_URL};
