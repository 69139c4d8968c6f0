//! An app's VAPID credentials (RFC 8292): a P-256 key pair and a contact, validated when set and
//! shown back without the private key. The public key is the page's `applicationServerKey`.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::SecretKey;
use serde::{Deserialize, Serialize};

use super::ece::{encoded_point, PUBLIC_KEY_BYTES};
use crate::credentials::CredentialsError;
use crate::jwt::{b64, Es256Key};

/// Longest `subject` accepted.
const MAX_SUBJECT_BYTES: usize = 255;
const PRIVATE_KEY_BYTES: usize = 32;

/// VAPID credentials for one app, as the operator sets them or as [`WebPushCredentials::generate`]
/// makes them. The key format is what the `web-push` tools print (`generate-vapid-keys`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPushCredentials {
    /// base64url of the 32-byte private scalar.
    pub private_key: String,
    /// base64url of the 65-byte uncompressed public point (`0x04 | x | y`).
    pub public_key: String,
    /// How the push service can reach the operator: `mailto:ops@example.com` or an `https://`
    /// URL. Sent as the JWT's `sub`.
    pub subject: String,
}

impl std::fmt::Debug for WebPushCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPushCredentials")
            .field("private_key", &"<redacted>")
            .field("public_key", &self.public_key)
            .field("subject", &self.subject)
            .finish()
    }
}

/// [`WebPushCredentials`] as they are shown back: no private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactedWebPushCredentials {
    /// base64url without padding: give it to the page as `applicationServerKey`.
    pub public_key: String,
    pub subject: String,
    /// First 16 hex digits of the SHA-256 of the public key: tells which key is installed.
    pub key_fingerprint: String,
}

impl WebPushCredentials {
    /// A new random key pair for `subject`.
    pub fn generate(subject: impl Into<String>) -> Result<Self, CredentialsError> {
        let subject = subject.into();
        check_subject(&subject)?;
        let key = SecretKey::random(&mut rand::rngs::OsRng);
        Ok(Self {
            private_key: b64(&key.to_bytes()),
            public_key: b64(&encoded_point(&key.public_key())),
            subject,
        })
    }

    /// Checks the subject and that the two keys form a P-256 pair.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        self.signing_key().map(|_| ())
    }

    /// The public key as base64url without padding, the form `pushManager.subscribe` takes.
    pub fn application_server_key(&self) -> Result<String, CredentialsError> {
        Ok(b64(self.signing_key()?.public_key()))
    }

    /// The credentials without the private key, for reading back.
    pub fn redacted(&self) -> Result<RedactedWebPushCredentials, CredentialsError> {
        let key = self.signing_key()?;
        Ok(RedactedWebPushCredentials {
            public_key: b64(key.public_key()),
            subject: self.subject.clone(),
            key_fingerprint: key.fingerprint(),
        })
    }

    /// The VAPID signing key, after every check.
    pub(crate) fn signing_key(&self) -> Result<Es256Key, CredentialsError> {
        check_subject(&self.subject)?;
        let private: [u8; PRIVATE_KEY_BYTES] = decode("private_key", &self.private_key)?;
        let public: [u8; PUBLIC_KEY_BYTES] = decode("public_key", &self.public_key)?;
        let secret = SecretKey::from_slice(&private)
            .map_err(|_| CredentialsError::field("private_key", "is not a P-256 private key"))?;
        if encoded_point(&secret.public_key()) != public {
            return Err(CredentialsError::field(
                "public_key",
                "does not belong to private_key (give the pair printed together)",
            ));
        }
        Es256Key::from_raw_p256(&private, &public)
            .map_err(|source| CredentialsError::Key { field: "private_key", source })
    }
}

/// Decodes a base64url key (padding optional) of exactly `N` bytes.
fn decode<const N: usize>(field: &'static str, value: &str) -> Result<[u8; N], CredentialsError> {
    let value = value.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(value)
        .or_else(|_| URL_SAFE.decode(value))
        .map_err(|_| CredentialsError::field(field, "is not base64url"))?;
    let found = bytes.len();
    bytes
        .try_into()
        .map_err(|_| CredentialsError::field(field, format!("is {found} bytes, expected {N}")))
}

/// RFC 8292 section 2.1: a `mailto:` address or an `https:` URL.
fn check_subject(subject: &str) -> Result<(), CredentialsError> {
    const FIELD: &str = "subject";
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(CredentialsError::field(
            FIELD,
            format!("is longer than {MAX_SUBJECT_BYTES} bytes"),
        ));
    }
    if !subject.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialsError::field(FIELD, "must be printable ASCII without spaces"));
    }
    let valid = match (subject.strip_prefix("mailto:"), subject.strip_prefix("https://")) {
        (Some(address), _) => {
            address.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        }
        (_, Some(rest)) => rest.split('/').next().is_some_and(|host| !host.is_empty()),
        _ => false,
    };
    if !valid {
        return Err(CredentialsError::field(
            FIELD,
            format!("must be mailto:<address> or an https:// URL, got {subject:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_validate_and_redact() {
        let c = WebPushCredentials::generate("mailto:ops@example.com").unwrap();
        c.validate().unwrap();
        let shown = c.redacted().unwrap();
        assert_eq!(shown.public_key, c.public_key);
        assert_eq!(shown.public_key.len(), 87);
        assert_eq!(c.application_server_key().unwrap(), c.public_key);
        assert!(!format!("{c:?}").contains(&c.private_key));
        assert!(!serde_json::to_string(&shown).unwrap().contains(&c.private_key));
    }

    #[test]
    fn imported_keys_as_web_push_tools_print_them() {
        // The RFC 8291 example's sender pair.
        let c = WebPushCredentials {
            private_key: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw".into(),
            public_key: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8".into(),
            subject: "https://example.com/contact".into(),
        };
        c.validate().unwrap();
    }

    #[test]
    fn refusals_name_the_field() {
        let good = WebPushCredentials::generate("mailto:ops@example.com").unwrap();
        let other = WebPushCredentials::generate("mailto:ops@example.com").unwrap();
        let field = |c: WebPushCredentials| c.validate().unwrap_err().field_name();
        assert_eq!(
            field(WebPushCredentials { subject: "ops@example.com".into(), ..good.clone() }),
            "subject"
        );
        assert_eq!(
            field(WebPushCredentials { subject: "mailto:".into(), ..good.clone() }),
            "subject"
        );
        assert_eq!(
            field(WebPushCredentials { subject: "http://example.com".into(), ..good.clone() }),
            "subject"
        );
        assert_eq!(
            field(WebPushCredentials { private_key: "***".into(), ..good.clone() }),
            "private_key"
        );
        assert_eq!(
            field(WebPushCredentials { public_key: "AAAA".into(), ..good.clone() }),
            "public_key"
        );
        let mismatch = WebPushCredentials { public_key: other.public_key, ..good.clone() };
        assert!(mismatch.validate().unwrap_err().to_string().contains("does not belong"));
    }
}
