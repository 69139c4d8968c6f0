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
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|err| ApiErrorKind::InvalidJson(err.to_string()).into())
}
