//! HTTP client of the CLI: admin calls with the bearer token, app calls signed with the secret.

use chrono::Utc;
use herald_core::signature::{self, SignedParts};
use reqwest::Method;
use serde_json::Value;

use super::Connection;
use crate::auth::token::random_token;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0} is needed: pass --{1} or set HERALD_{2}")]
    Missing(&'static str, &'static str, &'static str),
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach {server}: {source}")]
    Unreachable { server: String, source: reqwest::Error },
    #[error("{0} lines were not imported (listed above)")]
    Rejected(usize),
    #[error("cannot read {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("server answered {status}: {code}: {message}")]
    Api { status: u16, code: String, message: String, body: Value },
}

/// A connection to a herald server.
pub struct Client {
    http: reqwest::Client,
    conn: Connection,
}

impl Client {
    pub fn new(conn: Connection) -> Self {
        Self { http: reqwest::Client::new(), conn }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.conn.server.trim_end_matches('/'), path)
    }

    /// An admin API call.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let token = self.conn.admin_token.as_deref().ok_or(ClientError::Missing(
            "the admin token",
            "admin-token",
            "ADMIN_TOKEN",
        ))?;
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    /// A signed app API call; `path` may carry a query string.
    pub async fn signed(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.signed_body(method, path, body, "application/json").await
    }

    /// A signed app API call with a body of any type (NDJSON for bulk imports).
    pub async fn signed_body(
        &self,
        method: Method,
        path: &str,
        body: String,
        content_type: &str,
    ) -> Result<Value, ClientError> {
        let key = self.conn.app_key.as_deref().ok_or(ClientError::Missing(
            "the app key",
            "app-key",
            "APP_KEY",
        ))?;
        let secret = self.conn.app_secret.as_deref().ok_or(ClientError::Missing(
            "the app secret",
            "app-secret",
            "APP_SECRET",
        ))?;
        let (bare, query) = path.split_once('?').unwrap_or((path, ""));
        let timestamp = Utc::now().timestamp();
        let nonce = random_token(24);
        let parts = SignedParts {
            method: method.as_str(),
            path: bare,
            query,
            timestamp,
            nonce: &nonce,
            body: body.as_bytes(),
        };
        let request = self
            .http
            .request(method.clone(), self.url(path))
            .header(signature::KEY_HEADER, key)
            .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signature::NONCE_HEADER, &nonce)
            .header(signature::SIGNATURE_HEADER, parts.sign(secret))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let unreachable =
            |source| ClientError::Unreachable { server: self.conn.server.clone(), source };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        let field = |name: &str| body["error"][name].as_str().unwrap_or_default().to_owned();
        Err(ClientError::Api {
            status: status.as_u16(),
            code: field("code"),
            message: field("message"),
            body,
        })
    }
}
