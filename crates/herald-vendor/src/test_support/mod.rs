//! Test doubles for the vendor channels: local HTTP/2 (TLS) servers that behave like APNs,
//! like FCM with its OAuth token endpoint, and like a Web Push service, generated keys and credentials, a manual clock, and
//! a recording fake of [`crate::Vendor`] for the server's dispatcher tests.
//!
//! The servers listen on 127.0.0.1 only and verify every JWT with the public keys they were
//! given, so a test passes only if herald signs with the right key for the right app.

mod apns_server;
mod clock;
mod fake;
mod fcm_server;
mod jwt;
mod keys;
mod server;
mod tls;
mod webpush_server;

/// A test server's state, even after a handler panicked holding it: the test then fails on
/// its own assertion, not on a poisoned lock.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub use apns_server::{ApnsRequest, ApnsTestServer};
pub use clock::ManualClock;
pub use fake::{RecordedSend, RecordingVendor};
pub use fcm_server::{FcmRequest, FcmTestServer};
pub use jwt::DecodedJwt;
pub use keys::{TestApnsKey, TestServiceAccount};
pub use tls::ca_pem;
pub use webpush_server::{TestSubscriber, WebPushRequest, WebPushTestServer};

/// How a test server answers one request, in the vendor's own wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with a message id (Web Push: 201 with a `Location`).
    Ok,
    /// APNs 410 `Unregistered`; FCM 404 `UNREGISTERED`; Web Push 410 Gone.
    Unregistered,
    /// APNs 400 `BadDeviceToken`; FCM 400 `INVALID_ARGUMENT` about the token; Web Push 404.
    BadDeviceToken,
    /// 429 (APNs `TooManyRequests`, FCM `QUOTA_EXCEEDED`), with `Retry-After` seconds if given.
    TooManyRequests { retry_after: Option<u64> },
    /// 500 (APNs `InternalServerError`, FCM `INTERNAL`).
    InternalError,
    /// 503 (APNs `ServiceUnavailable`, FCM `UNAVAILABLE`), with `Retry-After` seconds if given.
    Unavailable { retry_after: Option<u64> },
    /// APNs 403 `ExpiredProviderToken`; FCM 401 `UNAUTHENTICATED`; Web Push 401.
    AuthExpired,
    /// Never answers: an endpoint that accepted the connection and then stalled.
    Hang,
    /// Closes the connection the request came on without an answer (every request in flight
    /// on it fails): an endpoint that crashed or a middlebox that cut it. Recorded (where
    /// requests are) with status 0.
    Reset,
    /// Any status with a raw body.
    Raw { status: u16, body: String },
}
