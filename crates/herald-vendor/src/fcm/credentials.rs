//! An app's FCM HTTP v1 credentials: a Google service account, validated when set and shown
//! back without its private key.

use serde::{Deserialize, Deserializer, Serialize};

use crate::credentials::{check_token_text, CredentialsError};
use crate::jwt::Rs256Key;

/// Google's OAuth2 token endpoint, the default `token_uri`.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// FCM HTTP v1 credentials for one app, as the operator sets them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmCredentials {
    /// The service-account key file from the Google Cloud console, as JSON text. A JSON object
    /// is accepted too and kept as its text.
    #[serde(deserialize_with = "json_text")]
    pub service_account_json: String,
    /// The Firebase project to send through; defaults to the service account's `project_id`.
    #[serde(default)]
    pub project_id: Option<String>,
}

impl std::fmt::Debug for FcmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmCredentials")
            .field("service_account_json", &"<redacted>")
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// The fields of a service-account file herald uses; others are ignored.
#[derive(Deserialize)]
struct ServiceAccountFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

/// A parsed, checked service account.
#[derive(Debug)]
pub(crate) struct ServiceAccount {
    pub(crate) project_id: String,
    pub(crate) client_email: String,
    pub(crate) private_key_id: Option<String>,
    pub(crate) token_uri: String,
    pub(crate) key: Rs256Key,
}

/// [`FcmCredentials`] as they are shown back: the private key replaced by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactedFcmCredentials {
    pub project_id: String,
    pub client_email: String,
    pub private_key_id: Option<String>,
    pub token_uri: String,
    /// First 16 hex digits of the SHA-256 of the public key: tells which key is installed.
    pub key_fingerprint: String,
}

impl FcmCredentials {
    /// Checks the service account and parses its key.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        self.service_account().map(|_| ())
    }

    /// The credentials without the private key, for reading back.
    pub fn redacted(&self) -> Result<RedactedFcmCredentials, CredentialsError> {
        let account = self.service_account()?;
        Ok(RedactedFcmCredentials {
            key_fingerprint: account.key.fingerprint(),
            project_id: account.project_id,
            client_email: account.client_email,
            private_key_id: account.private_key_id,
            token_uri: account.token_uri,
        })
    }

    pub(crate) fn service_account(&self) -> Result<ServiceAccount, CredentialsError> {
        const FIELD: &str = "service_account_json";
        let file: ServiceAccountFile =
            serde_json::from_str(&self.service_account_json).map_err(|e| {
                CredentialsError::field(FIELD, format!("not a service-account file: {e}"))
            })?;
        if let Some(kind) = file.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(CredentialsError::field(
                FIELD,
                format!("type is {kind:?}; FCM HTTP v1 needs a \"service_account\" key file"),
            ));
        }
        let missing = |name: &str| {
            CredentialsError::field(FIELD, format!("has no {name}; download a new key file"))
        };
        let client_email = file.client_email.ok_or_else(|| missing("client_email"))?;
        if !client_email.contains('@') {
            return Err(CredentialsError::field(FIELD, "client_email is not an e-mail address"));
        }
        let private_key = file.private_key.ok_or_else(|| missing("private_key"))?;
        let key = Rs256Key::from_pem(&private_key).map_err(|source| CredentialsError::Key {
            field: "service_account_json.private_key",
            source,
        })?;
        let token_uri = file.token_uri.unwrap_or_else(|| GOOGLE_TOKEN_URI.into());
        if !token_uri.starts_with("https://") {
            return Err(CredentialsError::field(FIELD, "token_uri must be an https:// URL"));
        }
        let project_id = match (&self.project_id, file.project_id) {
            (Some(id), _) => {
                check_project("project_id", id)?;
                id.clone()
            }
            (None, Some(id)) => {
                check_project(FIELD, &id)?;
                id
            }
            (None, None) => return Err(CredentialsError::field("project_id", "is not set")),
        };
        Ok(ServiceAccount {
            project_id,
            client_email,
            private_key_id: file.private_key_id,
            token_uri,
            key,
        })
    }
}

/// Project ids go into the request path, so only their own characters are allowed.
fn check_project(field: &'static str, id: &str) -> Result<(), CredentialsError> {
    check_token_text(field, id, 100)?;
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_')) {
        return Err(CredentialsError::field(
            field,
            format!("project id {id:?} may hold letters, digits, '-', '.', ':' and '_' only"),
        ));
    }
    Ok(())
}

/// Accepts the service-account file as a JSON string or as an embedded object.
fn json_text<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(de)? {
        serde_json::Value::String(text) => Ok(text),
        object @ serde_json::Value::Object(_) => Ok(object.to_string()),
        _ => Err(serde::de::Error::custom("expected the service-account file as text or object")),
    }
}
