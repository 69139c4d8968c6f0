//! Integration tests of the vendor channels against the local APNs, FCM and Web Push test
//! servers.
//! One binary, so the test RSA keys are generated once.

mod apns;
mod common;
mod credentials;
mod fcm;
mod sender;
mod webpush;
