//! Client tokens: the credential a device presents in `hello`, minted by the app's back end (or
//! by herald's API) with the app secret, so that back ends can make them without a round trip.
//!
//! # Format
//! ```text
//! payload = base64url_nopad(json {"k": app_key, "a": account, "e": expires_at_unix})
//! token   = payload + "." + hex(HMAC-SHA256(key = app_secret, message = payload))
//! ```
//! The HMAC covers the payload exactly as sent, so JSON member order and spacing do not matter
//! to verification. The secret is used as raw UTF-8 bytes; the hex digest is lower case.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Longest token accepted; longer ones are rejected before any decoding.
pub const MAX_TOKEN_LEN: usize = 2_048;

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The app key (public), used to find the secret that must have signed the token.
    #[serde(rename = "k")]
    pub app_key: String,
    /// The account the device logs in as.
    #[serde(rename = "a")]
    pub account: String,
    /// Unix seconds after which the token is no longer accepted.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

/// A token split into its parts; the claims are not trusted until [`ParsedToken::verify`].
#[derive(Clone)]
pub struct ParsedToken<'a> {
    /// The claims, as decoded: look the secret up by `claims.app_key`.
    pub claims: Claims,
    payload: &'a str,
    signature: &'a str,
}

impl std::fmt::Debug for ParsedToken<'_> {
    // The payload and signature together are the bearer token: neither is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken")
            .field("claims", &self.claims)
            .field("signature", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ParsedToken<'_> {
    /// Checks the signature with `secret` and the expiry against `now_unix`.
    ///
    /// # Errors
    /// [`TokenError::BadSignature`] or [`TokenError::Expired`].
    pub fn verify(&self, secret: &str, now_unix: i64) -> Result<&Claims, TokenError> {
        if !verify(self.payload, secret, self.signature) {
            return Err(TokenError::BadSignature);
        }
        if self.claims.expires_at <= now_unix {
            return Err(TokenError::Expired);
        }
        Ok(&self.claims)
    }
}

/// Mints a token for `account` of the app with `app_key` / `app_secret`, valid until
/// `expires_at_unix` (Unix seconds).
pub fn mint(app_key: &str, app_secret: &str, account: &str, expires_at_unix: i64) -> String {
    let claims = Claims {
        app_key: app_key.to_owned(),
        account: account.to_owned(),
        expires_at: expires_at_unix,
    };
    // Serialising three plain members cannot fail.
    let json = serde_json::to_vec(&claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let signature = sign(&payload, app_secret);
    format!("{payload}.{signature}")
}

/// Splits a token and decodes its claims, without checking the signature.
///
/// # Errors
/// [`TokenError::Malformed`] when the token is too long, has no `.`, or its payload is not
/// base64url JSON of the claims with a non-empty key and account.
pub fn parse(token: &str) -> Result<ParsedToken<'_>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.app_key.is_empty() || claims.account.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(ParsedToken { claims, payload, signature })
}

/// Whether `signature_hex` is the HMAC of `payload` with `secret`; compared in constant time.
pub fn verify(payload: &str, secret: &str, signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex) else {
        return false;
    };
    let expected = mac(payload, secret).finalize().into_bytes();
    expected.as_slice().ct_eq(&given).into()
}

fn sign(payload: &str, secret: &str) -> String {
    hex::encode(mac(payload, secret).finalize().into_bytes())
}

fn mac(payload: &str, secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(payload.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify() {
        let token = mint("key1", "s3cret", "alice", 2_000);
        let parsed = parse(&token).unwrap();
        assert_eq!(parsed.claims.account, "alice");
        assert_eq!(parsed.claims.app_key, "key1");
        assert_eq!(parsed.verify("s3cret", 1_999).unwrap().expires_at, 2_000);
        assert_eq!(parsed.verify("s3cret", 2_000), Err(TokenError::Expired));
        assert_eq!(parsed.verify("other", 1_000), Err(TokenError::BadSignature));
    }

    #[test]
    fn known_answer() {
        // Pins the documented formula: a change here breaks every back end that mints tokens.
        let token = mint("k", "secret", "a", 1);
        assert_eq!(token.split_once('.').unwrap().0, "eyJrIjoiayIsImEiOiJhIiwiZSI6MX0");
        let expected = {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
            mac.update(b"eyJrIjoiayIsImEiOiJhIiwiZSI6MX0");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(token, format!("eyJrIjoiayIsImEiOiJhIiwiZSI6MX0.{expected}"));
    }

    #[test]
    fn tampered_tokens_fail() {
        let token = mint("key1", "s3cret", "alice", 2_000);
        let forged_payload = URL_SAFE_NO_PAD.encode(r#"{"k":"key1","a":"mallory","e":2000}"#);
        let signature = token.split_once('.').unwrap().1;
        let forged = format!("{forged_payload}.{signature}");
        let parsed = parse(&forged).unwrap();
        assert_eq!(parsed.verify("s3cret", 0), Err(TokenError::BadSignature));
        let cases = ["", ".", "abc", "abc.def", &"x".repeat(MAX_TOKEN_LEN + 1), "e30.00"];
        for case in cases {
            assert!(parse(case).is_err(), "{case}");
        }
        let not_hex = format!("{}.zz", token.split_once('.').unwrap().0);
        assert_eq!(parse(&not_hex).unwrap().verify("s3cret", 0), Err(TokenError::BadSignature));
    }
}
