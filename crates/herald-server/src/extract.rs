//! Extractors whose rejections speak the API's error format.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiErrorKind};
use crate::state::AppState;

/// A JSON body. Unlike `axum::Json` it does not insist on a `Content-Type` (many scripted
/// clients forget it), and every rejection is an [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiErrorKind::BodyTooLarge { limit: state.settings.max_body_bytes }
            } else {
                ApiErrorKind::InvalidRequest(rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a body; an empty body reads as `{}` so that calls without options need no body.
///
/// Every body of the API is an object: serde would also read a struct from an array of its
/// fields in order (`[]` as "no options"), which no client means.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => b"{}",
        Some(b'{') => bytes,
        Some(_) => {
            return Err(ApiErrorKind::InvalidJson("the body must be a JSON object".into()).into())
        }
    };
    serde_json::from_slice(bytes).map_err(|err| ApiErrorKind::InvalidJson(err.to_string()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Options {
        grace_secs: Option<u64>,
    }

    #[test]
    fn a_body_is_an_object_or_nothing() {
        assert!(parse_json::<Options>(b"").is_ok_and(|o| o.grace_secs.is_none()));
        assert!(parse_json::<Options>(b" \n").is_ok());
        assert_eq!(
            parse_json::<Options>(b" {\"grace_secs\": 5}").ok().and_then(|o| o.grace_secs),
            Some(5)
        );
        for refused in [&b"[]"[..], b"[5]", b"null", b"5", b"\"x\"", b"{\"other\": 1}"] {
            let text = String::from_utf8_lossy(refused);
            assert!(parse_json::<Options>(refused).is_err(), "{text} was accepted");
        }
    }
}
