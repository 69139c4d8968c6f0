//! Signed server API: every `/v1` request carries the app key, a timestamp, a nonce and an
//! HMAC-SHA256 signature (format in `herald_core::signature`).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use herald_core::signature::{self, SignedParts};
use herald_core::App;
use herald_store::StoreError;

use crate::error::{ApiError, ApiErrorKind};
use crate::state::AppState;

/// The one route whose body may be larger than `max_body_bytes`.
pub const BULK_IMPORT_PATH: &str = "/v1/accounts/bulk";

/// The authenticated app of a signed request, for handlers to extract.
#[derive(Clone, Debug)]
pub struct CallingApp(pub App);

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ApiErrorKind> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(ApiErrorKind::MissingHeader(name))
}

/// The signature headers of a request, read and checked for shape and freshness; the
/// signature itself is checked once the app's secrets are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureHeaders<'a> {
    pub key: &'a str,
    /// Unix seconds, within the window of the clock it was read against.
    pub timestamp: i64,
    pub nonce: &'a str,
    pub signature: &'a str,
}

impl<'a> SignatureHeaders<'a> {
    /// Reads the four headers: all present, the timestamp Unix seconds within `window` of `now`,
    /// the nonce of the accepted shape.
    ///
    /// # Errors
    /// The first missing header, then a bad or stale timestamp, then a bad nonce.
    pub fn read(headers: &'a HeaderMap, now: i64, window: u64) -> Result<Self, ApiErrorKind> {
        let key = header(headers, signature::KEY_HEADER)?;
        let timestamp = header(headers, signature::TIMESTAMP_HEADER)?;
        let nonce = header(headers, signature::NONCE_HEADER)?;
        let given = header(headers, signature::SIGNATURE_HEADER)?;
        let timestamp: i64 = timestamp.parse().map_err(|_| {
            ApiErrorKind::InvalidRequest("x-herald-timestamp must be Unix seconds".into())
        })?;
        if timestamp.abs_diff(now) > window {
            return Err(ApiErrorKind::StaleTimestamp { given: timestamp, now, window });
        }
        if !signature::valid_nonce(nonce) {
            return Err(ApiErrorKind::BadNonce);
        }
        Ok(Self { key, timestamp, nonce, signature: given })
    }
}

/// Middleware: verifies the signature and hands the app to the handler as [`CallingApp`].
pub async fn require_signature(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let window = state.settings.signature_window_secs;
    let now = Utc::now();
    let SignatureHeaders { key, timestamp, nonce, signature: given } =
        SignatureHeaders::read(&parts.headers, now.timestamp(), window)?;
    let app = state.store.app_by_key(key).await.map_err(|err| match err {
        StoreError::NotFound { .. } => ApiErrorKind::UnknownApp,
        other => other.into(),
    })?;
    let limit = match parts.uri.path() {
        BULK_IMPORT_PATH => state.settings.max_import_body_bytes,
        _ => state.settings.max_body_bytes,
    };
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiErrorKind::BodyTooLarge { limit })?;
    let signed = SignedParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        timestamp,
        nonce,
        body: &body,
    };
    if !app.valid_secrets(now).any(|secret| signed.verify(secret, given)) {
        return Err(ApiErrorKind::BadSignature.into());
    }
    // Recorded only once the signature holds, so nobody can burn another app's nonces.
    let expires = timestamp.saturating_add_unsigned(window);
    if !state.nonces.first_use(app.id, nonce, expires, now.timestamp()).await? {
        return Err(ApiErrorKind::ReplayedNonce { window }.into());
    }
    state.requests.admit(&app)?;
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut().insert(CallingApp(app));
    Ok(next.run(req).await)
}
