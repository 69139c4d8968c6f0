#![doc = include_str!("../README.md")]

pub mod apns;
pub mod clock;
pub mod credentials;
pub mod fcm;
pub mod jwt;
pub mod outcome;
pub mod push;
pub mod retry;
pub mod secret;
pub mod sender;
pub mod settings;
pub mod stats;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod transport;
pub mod webpush;

pub use apns::{ApnsCredentials, ApnsEnvironment, RedactedApnsCredentials};
pub use clock::{Clock, SystemClock};
pub use credentials::CredentialsError;
pub use fcm::{FcmCredentials, RedactedFcmCredentials};
pub use outcome::Outcome;
pub use push::{PreparedPush, VendorPush};
pub use secret::{SecretBox, SecretError};
pub use sender::{Vendor, VendorSender};
pub use settings::{SettingsError, VendorSettings};
pub use stats::ChannelStats;
pub use webpush::{
    RedactedWebPushCredentials, SubscriptionError, Urgency, WebPushCredentials, WebPushSubscription,
};
