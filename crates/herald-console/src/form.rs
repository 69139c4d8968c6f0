//! Forms of signed-in pages: the session, the CSRF token checked, then the fields.

use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::session::Session;
use crate::{ConsoleError, ConsoleHost};

/// Largest form the console takes (a pasted account list is the big one).
const MAX_FORM_BYTES: usize = 4 << 20;

/// A form posted by a signed-in operator, with the session's CSRF token in its `csrf` field or
/// in the `X-CSRF-Token` header (htmx requests).
pub struct Checked<T> {
    pub session: Session,
    pub form: T,
}

#[derive(Deserialize, Default)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// Whether `given` is `expected`, in time that does not depend on where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

impl<S: ConsoleHost, T: DeserializeOwned> FromRequest<S> for Checked<T> {
    type Rejection = ConsoleError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| ConsoleError::BadForm("the form is too large".into()))?;
        let header = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let given = header.unwrap_or(&field.csrf);
        if !same_token(given, &session.csrf) {
            return Err(ConsoleError::Csrf);
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|err| ConsoleError::BadForm(format!("the form is not readable: {err}")))?;
        Ok(Self { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_and_exist() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("", ""));
    }
}
