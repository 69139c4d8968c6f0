//! Headers every console response carries: no script or style from anywhere but the console's
//! own files, no framing, no sniffing, pages not cached.

use axum::extract::Request;
use axum::http::header::LOCATION;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const HX_REDIRECT: HeaderName = HeaderName::from_static("hx-redirect");

/// `default-src 'self'` forbids inline scripts and styles; the rest closes what it leaves open.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub async fn headers(req: Request, next: Next) -> Response {
    let htmx = req.headers().contains_key("hx-request");
    let mut response = next.run(req).await;
    if htmx && response.status() == StatusCode::SEE_OTHER {
        // htmx would follow the redirect and swap the page it leads to (the sign-in page, when
        // the session ended) into a fragment: the browser goes there instead.
        if let Some(location) = response.headers().get(LOCATION).cloned() {
            response = (StatusCode::OK, [(HX_REDIRECT, location)]).into_response();
        }
    }
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    // Pages show live numbers and a per-session token: never from a cache. Assets set their own.
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}
