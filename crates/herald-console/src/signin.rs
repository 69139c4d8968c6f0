//! Signing in with the admin token (every app) or an app's key and secret (that app only),
//! checked as the API checks them; signing out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{ConnectInfo, Form, FromRequestParts, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use herald_service::ServiceError;
use herald_store::StoreError;
use serde::Deserialize;

use crate::form::{same_token, Checked};
use crate::frame::{asset_version, see_other};
use crate::session::{
    clear_cookie, cookie, random_token, set_cookie, Scope, COOKIE_NAME, SESSION_TTL, SIGNIN_COOKIE,
};
use crate::{ConsoleError, ConsoleHost};

/// How long the sign-in form stays usable.
const SIGNIN_FORM_TTL: Duration = Duration::from_secs(3600);

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    error: Option<String>,
    version: &'static str,
}

/// The address a request came from, for slowing down failed sign-ins.
pub struct ClientIp(IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(Self(addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// The sign-in page; a signed-in operator goes on to the console.
pub async fn page<S: ConsoleHost>(
    State(state): State<S>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let signed_in =
        cookie(&headers, COOKIE_NAME).and_then(|id| state.console().sessions.find(id)).is_some();
    if signed_in {
        return Ok(see_other("./"));
    }
    signin_form(&headers, StatusCode::OK, None)
}

/// The form with a fresh CSRF token, kept in a cookie until a session exists to hold one.
fn signin_form(
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let csrf = random_token();
    let page = SignInPage { csrf: &csrf, error, version: asset_version() };
    let cookie = set_cookie(headers, SIGNIN_COOKIE, &csrf, SIGNIN_FORM_TTL);
    Ok((status, [(SET_COOKIE, cookie)], Html(page.render()?)).into_response())
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    admin_token: String,
    #[serde(default)]
    app_key: String,
    #[serde(default)]
    app_secret: String,
}

pub async fn submit<S: ConsoleHost>(
    State(state): State<S>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, expected) {
        return Err(ConsoleError::Csrf);
    }
    let throttle = &state.console().throttle;
    let wait = throttle.wait(ip, Instant::now());
    if !wait.is_zero() {
        let message = format!(
            "Too many failed sign-ins from your address. Try again in {} s.",
            wait.as_secs().max(1)
        );
        return signin_form(&headers, StatusCode::TOO_MANY_REQUESTS, Some(message));
    }
    let Some(scope) = verify(&state, &form).await? else {
        throttle.failed(ip, Instant::now());
        let message = "Wrong credentials: check the admin token, or the app key and secret.";
        return signin_form(&headers, StatusCode::UNAUTHORIZED, Some(message.into()));
    };
    throttle.succeeded(ip);
    let session = state.console().sessions.start(scope);
    let mut response = see_other("./");
    let cookies = response.headers_mut();
    cookies.append(SET_COOKIE, set_cookie(&headers, COOKIE_NAME, &session.id, SESSION_TTL));
    clear_cookie(&headers, cookies, SIGNIN_COOKIE);
    Ok(response)
}

/// Who the credentials are, if anybody: compared in constant time like the API's checks.
async fn verify<S: ConsoleHost>(
    state: &S,
    form: &SignInForm,
) -> Result<Option<Scope>, ConsoleError> {
    if !form.admin_token.is_empty() {
        let admin = same_token(&form.admin_token, &state.console().admin_token);
        return Ok(admin.then_some(Scope::Admin));
    }
    if form.app_key.is_empty() || form.app_secret.is_empty() {
        return Ok(None);
    }
    let app = match state.service().store.app_by_key(form.app_key.trim()).await {
        Ok(app) => app,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(ServiceError::from(other).into()),
    };
    let secret = form.app_secret.trim();
    let valid = app.valid_secrets(Utc::now()).any(|known| same_token(secret, known));
    Ok(valid.then_some(Scope::App(app.id)))
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn sign_out<S: ConsoleHost>(
    State(state): State<S>,
    headers: HeaderMap,
    Checked { session, .. }: Checked<NoFields>,
) -> Response {
    state.console().sessions.end(&session.id);
    let mut response = see_other("signin");
    clear_cookie(&headers, response.headers_mut(), COOKIE_NAME);
    response
}
