//! What every RongCloud handler starts from: an authenticated call of an app that has the layer
//! enabled, its answer format and its body.
//!
//! The checks run in this order, each with its RongCloud code: signature headers (1004), the
//! layer enabled for the app (1009), the app's request rate (1008), the body within
//! `max_body_bytes` (1005). A refusal is answered in the format of the path.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use bytes::Bytes;
use chrono::Utc;
use herald_core::App;
use serde::de::DeserializeOwned;

use super::auth;
use super::envelope::{Format, Reply};
use super::error::RongError;
use crate::compat::{Layer, RongCloudSettings};
use crate::error::ApiErrorKind;
use crate::state::AppState;

/// An authenticated RongCloud call.
pub struct Call {
    pub app: App,
    pub settings: RongCloudSettings,
    pub format: Format,
    pub body: Bytes,
}

impl Call {
    /// The answer to the call's outcome, in its format.
    pub fn answer(
        &self,
        result: Result<Vec<(&'static str, serde_json::Value)>, RongError>,
    ) -> Reply {
        Reply::from_result(self.format, result)
    }
}

/// A call's body as JSON; an empty body is "no POST data", malformed JSON a parameter error.
/// The `Content-Type` is not checked: RongCloud asks for `application/json`, but a body that
/// parses is taken whatever its label.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, RongError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RongError::NoPostData);
    }
    serde_json::from_slice(body)
        .map_err(|err| RongError::Api(ApiErrorKind::InvalidJson(err.to_string())))
}

impl FromRequest<AppState> for Call {
    type Rejection = Reply;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let format = Format::of_path(req.uri().path());
        admit(req, state, format).await.map_err(|err| Reply::error(format, &err))
    }
}

async fn admit(req: Request, state: &AppState, format: Format) -> Result<Call, RongError> {
    let app = auth::authenticate(state, req.headers(), Utc::now()).await?;
    let settings = enabled_settings(state, &app).await?;
    state.requests.admit(&app)?;
    let body = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiErrorKind::BodyTooLarge { limit: state.settings.max_body_bytes }
        } else {
            ApiErrorKind::InvalidRequest(rejection.body_text())
        }
    })?;
    Ok(Call { app, settings, format, body })
}

/// The app's settings of the layer; the operator enables it with
/// `PUT /admin/apps/{id}/compat/rongcloud`.
async fn enabled_settings(state: &AppState, app: &App) -> Result<RongCloudSettings, RongError> {
    let raw = state
        .store
        .compat_layer(app.id, Layer::RongCloud.as_str())
        .await
        .map_err(ApiErrorKind::from)?
        .ok_or(RongError::NotEnabled)?;
    serde_json::from_str(&raw)
        .map_err(|err| ApiErrorKind::Internal(format!("rongcloud settings: {err}")).into())
}
