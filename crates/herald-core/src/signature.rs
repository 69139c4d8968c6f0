//! Request signatures of the native server API: HMAC-SHA256 with the app secret over a canonical
//! string. Clients and the server build the string with the same function, so they cannot drift.
//!
//! # Format
//! ```text
//! METHOD \n PATH \n QUERY \n TIMESTAMP \n NONCE \n hex(sha256(BODY))
//! ```
//! `QUERY` is the raw query string as sent (without `?`, empty when there is none); `TIMESTAMP`
//! is Unix seconds; the signature is the lower-case hex HMAC-SHA256 of the string.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Header carrying the app key.
pub const KEY_HEADER: &str = "x-herald-key";
/// Header carrying the Unix time in seconds at which the request was signed.
pub const TIMESTAMP_HEADER: &str = "x-herald-timestamp";
/// Header carrying a random string used once per request.
pub const NONCE_HEADER: &str = "x-herald-nonce";
/// Header carrying the hex signature.
pub const SIGNATURE_HEADER: &str = "x-herald-signature";

/// The parts of a request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
    pub body: &'a [u8],
}

impl SignedParts<'_> {
    /// The string that is signed.
    pub fn canonical(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.path,
            self.query,
            self.timestamp,
            self.nonce,
            hex::encode(Sha256::digest(self.body)),
        )
    }

    /// Lower-case hex HMAC-SHA256 of the canonical string with `secret`.
    pub fn sign(&self, secret: &str) -> String {
        hex::encode(mac(secret, &self.canonical()).finalize().into_bytes())
    }

    /// Whether `signature` (hex) was made with `secret`; compared in constant time.
    pub fn verify(&self, secret: &str, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let expected = mac(secret, &self.canonical()).finalize().into_bytes();
        expected.as_slice().ct_eq(&given).into()
    }
}

fn mac(secret: &str, canonical: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(canonical.as_bytes());
    mac
}

/// Whether `nonce` has the accepted shape: 8 to 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_nonce(nonce: &str) -> bool {
    (8..=64).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(body: &[u8]) -> SignedParts<'_> {
        SignedParts {
            method: "post",
            path: "/v1/pushes",
            query: "dry_run=1",
            timestamp: 1_767_225_600,
            nonce: "n0nce-123",
            body,
        }
    }

    /// The worked example of the README; if this changes, the README must change too.
    #[test]
    fn worked_example_matches_readme() {
        let p = parts(br#"{"hello":"world"}"#);
        assert_eq!(
            p.canonical(),
            "POST\n/v1/pushes\ndry_run=1\n1767225600\nn0nce-123\n\
             93a23971a914e5eacbf0a8d25154cda309c3c1c72fbb9914d47c60f3cb681588"
        );
        let sig = p.sign("s3cr3t");
        assert_eq!(sig, "233efa7c21b3cb6a3231d9fb47ef181ba73a0559d147fb895dd1148051118a6a");
        assert!(p.verify("s3cr3t", &sig));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let sig = parts(b"{}").sign("secret");
        assert!(!parts(b"{ }").verify("secret", &sig));
        assert!(!parts(b"{}").verify("other", &sig));
        assert!(!parts(b"{}").verify("secret", "zz"));
        assert!(!parts(b"{}").verify("secret", &sig[..62]));
    }

    #[test]
    fn nonce_shape() {
        assert!(valid_nonce("abcdEFGH-_12"));
        assert!(!valid_nonce("short"));
        assert!(!valid_nonce("has space in it"));
        assert!(!valid_nonce(&"a".repeat(65)));
    }
}
