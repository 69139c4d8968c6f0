//! What can be wrong with vendor credentials an operator sets; the credential types themselves
//! live with their vendor ([`crate::apns::ApnsCredentials`], [`crate::fcm::FcmCredentials`]).

use crate::jwt::KeyError;

/// Why credentials were refused when set. The message names the field and says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("{field}: {source}")]
    Key { field: &'static str, source: KeyError },
}

impl CredentialsError {
    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> Self {
        CredentialsError::Field { field, reason: reason.into() }
    }

    /// The field at fault, for API error details.
    pub fn field_name(&self) -> &'static str {
        match self {
            CredentialsError::Field { field, .. } | CredentialsError::Key { field, .. } => field,
        }
    }
}

/// A short text field: non-empty, printable ASCII without spaces, at most `max` bytes.
pub(crate) fn check_token_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), CredentialsError> {
    if value.is_empty() {
        return Err(CredentialsError::field(field, "is empty"));
    }
    if value.len() > max {
        return Err(CredentialsError::field(field, format!("is longer than {max} bytes")));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialsError::field(
            field,
            "must be printable ASCII without spaces or control characters",
        ));
    }
    Ok(())
}
