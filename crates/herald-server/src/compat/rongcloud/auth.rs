//! RongCloud request signatures: `App-Key`, `Nonce`, `Timestamp` and
//! `Signature = hex(SHA1(AppSecret + Nonce + Timestamp))`, each header also accepted with an
//! `RC-` prefix. The App-Key is the herald app key and the secret the herald app secret (the
//! previous secret too during a rotation's grace period).
//!
//! The signature covers neither the path nor the body, so replay protection is what keeps a
//! captured set of headers from being used again: the timestamp must be within the server's
//! signature window and each (nonce, timestamp) pair is accepted once per app. Keying replays by
//! the pair rather than the nonce alone matters here: RongCloud SDKs draw nonces from small
//! ranges (the documents use `14314`), so two honest requests can share a nonce, but a replay
//! must repeat both, since changing either breaks the signature.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use herald_core::App;
use herald_store::StoreError;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::error::RongError;
use crate::error::ApiErrorKind;
use crate::state::AppState;

/// Timestamps at or above this are milliseconds: as seconds it would be the year 5138, as
/// milliseconds it was 1973, so no current clock is ambiguous.
const MILLIS_FROM: i64 = 100_000_000_000;
/// Longest nonce accepted; SDKs send short random numbers.
const MAX_NONCE_LEN: usize = 128;

/// `hex(SHA1(secret + nonce + timestamp))`, lower case, with the timestamp exactly as sent.
pub fn signature(secret: &str, nonce: &str, timestamp: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(secret.as_bytes());
    sha.update(nonce.as_bytes());
    sha.update(timestamp.as_bytes());
    hex::encode(sha.finalize())
}

/// The header `name`, or `RC-<name>` when that is the one sent.
fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, RongError> {
    let value = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    value(name)
        .or_else(|| value(&format!("RC-{name}")))
        .ok_or(RongError::Api(ApiErrorKind::MissingHeader(name)))
}

/// Unix seconds of a `Timestamp` header sent in seconds or milliseconds.
pub fn timestamp_secs(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = raw.parse().ok()?;
    Some(if value >= MILLIS_FROM { value / 1000 } else { value })
}

/// The signature headers of a call, read and checked for shape and freshness; the signature
/// itself is checked once the app's secrets are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RongHeaders<'a> {
    pub key: &'a str,
    pub nonce: &'a str,
    /// The `Timestamp` header as sent: the signature covers these characters.
    pub raw_timestamp: &'a str,
    /// Unix seconds, within the window of the clock it was read against.
    pub timestamp: i64,
    pub signature: &'a str,
}

impl<'a> RongHeaders<'a> {
    /// Reads the four headers (each also with the `RC-` prefix): all present, the timestamp
    /// within `window` of `now`, the nonce at most [`MAX_NONCE_LEN`] bytes.
    ///
    /// # Errors
    /// The first missing header, then a bad or stale timestamp, then a long nonce.
    pub fn read(headers: &'a HeaderMap, now: i64, window: u64) -> Result<Self, RongError> {
        let key = header(headers, "App-Key")?;
        let nonce = header(headers, "Nonce")?;
        let raw_timestamp = header(headers, "Timestamp")?;
        let signature = header(headers, "Signature")?;

        let timestamp = timestamp_secs(raw_timestamp).ok_or_else(|| {
            RongError::Auth("Timestamp must be Unix time in seconds or milliseconds".into())
        })?;
        if timestamp.abs_diff(now) > window {
            return Err(ApiErrorKind::StaleTimestamp { given: timestamp, now, window }.into());
        }
        if nonce.len() > MAX_NONCE_LEN {
            return Err(RongError::Auth(format!("Nonce is longer than {MAX_NONCE_LEN} bytes")));
        }
        Ok(Self { key, nonce, raw_timestamp, timestamp, signature })
    }

    /// Whether the `Signature` header was made with `secret` (hex in either case); compared in
    /// constant time.
    pub fn signed_with(&self, secret: &str) -> bool {
        let given = self.signature.to_ascii_lowercase();
        let expected = signature(secret, self.nonce, self.raw_timestamp);
        bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// Verifies the request's signature headers; the calling app on success.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<App, RongError> {
    let window = state.settings.signature_window_secs;
    let call = RongHeaders::read(headers, now.timestamp(), window)?;
    let RongHeaders { key, nonce, raw_timestamp, timestamp, .. } = call;
    let app = state.store.app_by_key(key).await.map_err(|err| match err {
        StoreError::NotFound { .. } => ApiErrorKind::UnknownApp,
        other => other.into(),
    })?;
    if !app.valid_secrets(now).any(|secret| call.signed_with(secret)) {
        return Err(ApiErrorKind::BadSignature.into());
    }
    // Recorded only once the signature holds, so nobody can burn another app's nonces. The
    // prefix keeps these entries apart from the native API's nonces of the same app.
    let replay_key = format!("rongcloud:{raw_timestamp}:{nonce}");
    let expires = timestamp.saturating_add_unsigned(window);
    if !state.nonces.first_use(app.id, &replay_key, expires, now.timestamp()).await? {
        return Err(ApiErrorKind::ReplayedNonce { window }.into());
    }
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_lower_hex_sha1_of_the_concatenation() {
        // printf 'secret143141408706337' | sha1sum
        assert_eq!(
            signature("secret", "14314", "1408706337"),
            "da4263c3c97518e0f8bd77ce59a84be1621b24c5"
        );
    }

    #[test]
    fn timestamps_in_seconds_or_milliseconds() {
        assert_eq!(timestamp_secs("1408706337"), Some(1_408_706_337));
        assert_eq!(timestamp_secs("1408706337123"), Some(1_408_706_337));
        assert_eq!(timestamp_secs("99999999999"), Some(99_999_999_999));
        assert_eq!(timestamp_secs(""), None);
        assert_eq!(timestamp_secs("-5"), None);
        assert_eq!(timestamp_secs("1e9"), None);
        assert_eq!(timestamp_secs("99999999999999999999999"), None);
    }

    #[test]
    fn rc_prefixed_headers_are_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert("rc-app-key", "k".parse().unwrap_or_else(|_| unreachable!()));
        assert_eq!(header(&headers, "App-Key").ok(), Some("k"));
        assert!(matches!(
            header(&headers, "Nonce"),
            Err(RongError::Api(ApiErrorKind::MissingHeader("Nonce")))
        ));
    }
}
