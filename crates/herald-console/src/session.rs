//! Console sessions: a random id in an HttpOnly cookie, mapped in memory to who signed in, until
//! when, and the token every form must carry back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use herald_core::AppId;
use rand::RngCore;

use crate::{ConsoleError, ConsoleHost};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "herald_console";
/// Name of the cookie that carries the sign-in form's CSRF token before there is a session.
pub const SIGNIN_COOKIE: &str = "herald_console_signin";
/// How long a session lasts after sign-in; the operator signs in again after that.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// What a session may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The admin token: every app, and managing apps.
    Admin,
    /// An app's key and secret: that app only.
    App(AppId),
}

/// One signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub scope: Scope,
    pub csrf: String,
    pub expires_at: Instant,
}

impl Session {
    /// The app a page shows: an app sign-in sees its own app only; the admin names one.
    pub fn app_id(&self, asked: Option<AppId>) -> Result<AppId, ConsoleError> {
        match (self.scope, asked) {
            (Scope::App(own), Some(other)) if other != own => Err(ConsoleError::OtherApp),
            (Scope::App(own), _) => Ok(own),
            (Scope::Admin, Some(app)) => Ok(app),
            (Scope::Admin, None) => Err(ConsoleError::ChooseApp),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.scope == Scope::Admin
    }

    /// For what only the admin may do (apps, limits, compat layers), as in the API.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ConsoleError::AdminOnly)
        }
    }
}

/// Every live session of this node.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `scope`; expired sessions are dropped on the way.
    pub fn start(&self, scope: Scope) -> Session {
        let now = Instant::now();
        let session = Session {
            id: random_token(),
            scope,
            csrf: random_token(),
            expires_at: now + SESSION_TTL,
        };
        let mut by_id = self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_id.retain(|_, s| s.expires_at > now);
        by_id.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session of `id`, if any.
    pub fn find(&self, id: &str) -> Option<Session> {
        let by_id = self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_id.get(id).filter(|s| s.expires_at > Instant::now()).cloned()
    }

    pub fn end(&self, id: &str) {
        let mut by_id = self.by_id.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_id.remove(id);
    }
}

/// 128 random bits, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` header for `name`. No `Path`: the browser then scopes the cookie to the
/// directory of the console's URL, whatever prefix a reverse proxy put before it. `Secure` when
/// the request came over https.
pub fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    let secure = if came_over_https(headers) { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Max-Age={}; HttpOnly; SameSite=Strict{secure}", max_age.as_secs());
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn came_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Adds the `Set-Cookie` that ends cookie `name`.
pub fn clear_cookie(request: &HeaderMap, response: &mut HeaderMap, name: &str) {
    response.append(SET_COOKIE, set_cookie(request, name, "", Duration::ZERO));
}

/// The request's session, for pages that need one.
impl<S: ConsoleHost> FromRequestParts<S> for Session {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        cookie(&parts.headers, COOKIE_NAME)
            .and_then(|id| state.console().sessions.find(id))
            .ok_or(ConsoleError::SignInRequired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_session_sees_its_app_only() {
        let session = Sessions::default().start(Scope::App(7));
        assert_eq!(session.app_id(None).ok(), Some(7));
        assert_eq!(session.app_id(Some(7)).ok(), Some(7));
        assert!(matches!(session.app_id(Some(8)), Err(ConsoleError::OtherApp)));
    }

    #[test]
    fn the_admin_names_the_app() {
        let session = Sessions::default().start(Scope::Admin);
        assert_eq!(session.app_id(Some(8)).ok(), Some(8));
        assert!(matches!(session.app_id(None), Err(ConsoleError::ChooseApp)));
    }

    #[test]
    fn an_ended_session_is_gone() {
        let sessions = Sessions::default();
        let session = sessions.start(Scope::Admin);
        assert!(sessions.find(&session.id).is_some());
        sessions.end(&session.id);
        assert!(sessions.find(&session.id).is_none());
    }

    #[test]
    fn cookies_are_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; herald_console=abc; b=2"));
        assert_eq!(cookie(&headers, COOKIE_NAME), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn the_cookie_is_secure_behind_https() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie(&headers, COOKIE_NAME, "x", SESSION_TTL);
        let plain = plain.to_str().unwrap_or_default();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure") && !plain.contains("Path"));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let secure = set_cookie(&headers, COOKIE_NAME, "x", SESSION_TTL);
        assert!(secure.to_str().unwrap_or_default().ends_with("; Secure"));
    }
}
