//! An app's APNs token-auth credentials: the `.p8` signing key and the identifiers that go with
//! it, validated when set and shown back without the key.

use serde::{Deserialize, Serialize};

use crate::credentials::{check_token_text, CredentialsError};
use crate::jwt::Es256Key;

/// Which APNs servers an app's tokens belong to: development builds get sandbox tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ApnsEnvironment {
    Sandbox,
    #[default]
    Production,
}

/// APNs token-based authentication for one app, as the operator sets it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsCredentials {
    /// PEM text of the `.p8` file (`-----BEGIN PRIVATE KEY-----`, a P-256 key).
    pub key_p8: String,
    /// The 10-character Key ID shown next to the key in the Apple developer account.
    pub key_id: String,
    /// The 10-character Team ID; the `iss` of provider tokens.
    pub team_id: String,
    /// The app's bundle id, sent as `apns-topic`.
    pub topic: String,
    /// `sandbox` or `production`.
    #[serde(default)]
    pub environment: ApnsEnvironment,
}

impl std::fmt::Debug for ApnsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApnsCredentials")
            .field("key_p8", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .field("environment", &self.environment)
            .finish()
    }
}

/// [`ApnsCredentials`] as they are shown back: the key replaced by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactedApnsCredentials {
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    pub environment: ApnsEnvironment,
    /// First 16 hex digits of the SHA-256 of the public key: tells which key is installed.
    pub key_fingerprint: String,
}

impl ApnsCredentials {
    /// Checks every field and parses the key.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        self.signing_key().map(|_| ())
    }

    /// The parsed signing key, after the same checks as [`ApnsCredentials::validate`].
    pub(crate) fn signing_key(&self) -> Result<Es256Key, CredentialsError> {
        check_apple_id("key_id", &self.key_id)?;
        check_apple_id("team_id", &self.team_id)?;
        check_token_text("topic", &self.topic, 255)?;
        Es256Key::from_pem(&self.key_p8)
            .map_err(|source| CredentialsError::Key { field: "key_p8", source })
    }

    /// The credentials without the key, for reading back.
    pub fn redacted(&self) -> Result<RedactedApnsCredentials, CredentialsError> {
        let key = self.signing_key()?;
        Ok(RedactedApnsCredentials {
            key_id: self.key_id.clone(),
            team_id: self.team_id.clone(),
            topic: self.topic.clone(),
            environment: self.environment,
            key_fingerprint: key.fingerprint(),
        })
    }
}

/// Apple's key and team ids are 10 upper-case letters and digits.
fn check_apple_id(field: &'static str, value: &str) -> Result<(), CredentialsError> {
    if value.len() != 10 || !value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        return Err(CredentialsError::field(
            field,
            format!("must be 10 upper-case letters or digits, got {value:?}"),
        ));
    }
    Ok(())
}
