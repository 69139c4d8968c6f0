//! Firebase Cloud Messaging, HTTP v1 API, authenticated with a service account's OAuth2 token.

pub(crate) mod credentials;
pub(crate) mod error;
pub(crate) mod message;
pub(crate) mod oauth;
pub(crate) mod router;
pub(crate) mod settings;

pub use credentials::{FcmCredentials, RedactedFcmCredentials, GOOGLE_TOKEN_URI};
pub use error::FcmError;
pub use message::MAX_PAYLOAD_BYTES;
pub use oauth::FCM_SCOPE;
pub use settings::{FcmSettings, FCM_URL};
