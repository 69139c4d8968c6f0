//! One app's FCM channel: its HTTP/2 clients, access tokens, in-flight limit and breaker.
//! Handles `POST /v1/projects/{project_id}/messages:send`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Uri};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::error::FcmError;
use super::message::FcmMessage;
use super::oauth::AccessTokens;
use super::FcmCredentials;
use crate::clock::Clock;
use crate::credentials::CredentialsError;
use crate::outcome::Outcome;
use crate::retry::{parse_retry_after, with_retries, Breaker, Step, VendorFailure};
use crate::settings::VendorSettings;
use crate::stats::{ChannelStats, Counters};
use crate::transport::{Origin, TransportError, TransportFactory};

/// Longest registration token accepted, in bytes.
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Deserialize)]
struct SendResponse {
    name: Option<String>,
}

/// The FCM channel of one app.
pub(crate) struct FcmRouter {
    origin: Origin,
    send_uri: Uri,
    tokens: AccessTokens,
    limit: Semaphore,
    breaker: Breaker,
    settings: Arc<VendorSettings>,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

impl FcmRouter {
    pub(crate) fn new(
        credentials: &FcmCredentials,
        settings: Arc<VendorSettings>,
        transport: &TransportFactory,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CredentialsError> {
        let account = credentials.service_account()?;
        let origin = transport
            .origin(&settings.fcm.base_url)
            .map_err(|e| CredentialsError::field("project_id", e))?;
        let send_uri =
            origin.uri(&format!("/v1/projects/{}/messages:send", account.project_id)).map_err(
                |e| CredentialsError::field("project_id", format!("unusable in a URL: {e}")),
            )?;
        let token_uri = settings.fcm.token_uri.clone().unwrap_or_else(|| account.token_uri.clone());
        let token_origin = transport.origin(&token_uri).map_err(|e| {
            CredentialsError::field("service_account_json", format!("token_uri {e}"))
        })?;
        Ok(Self {
            origin,
            send_uri,
            tokens: AccessTokens::new(
                account,
                token_origin,
                token_uri,
                Duration::from_secs(settings.fcm.token_lifetime_secs),
                Duration::from_secs(settings.fcm.token_refresh_margin_secs),
            ),
            limit: Semaphore::new(settings.max_in_flight),
            breaker: Breaker::new(settings.breaker.clone()),
            settings,
            clock,
            counters: Counters::default(),
        })
    }

    /// Sends the push to one registration token, retrying as configured.
    pub(crate) async fn send(&self, message: &Result<FcmMessage, String>, token: &str) -> Outcome {
        let outcome = match (message, valid_token(token)) {
            (Err(reason), _) => final_outcome(FcmError::Payload(reason.clone())),
            (Ok(_), false) => final_outcome(FcmError::MalformedToken),
            (Ok(message), true) => match self.limit.acquire().await {
                Ok(_permit) => {
                    with_retries(&self.settings.retry, &*self.clock, &self.counters.retries, || {
                        self.attempt(message, token)
                    })
                    .await
                }
                Err(_) => Outcome::failed("ShuttingDown", true),
            },
        };
        self.counters.record(&outcome);
        outcome
    }

    async fn attempt(&self, message: &FcmMessage, token: &str) -> Step {
        self.breaker.attempt(self.clock.now(), self.request(message, token)).await
    }

    async fn request(&self, message: &FcmMessage, token: &str) -> Result<Option<String>, FcmError> {
        let authorization = self.tokens.authorization(&*self.clock).await?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.send_uri.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(message.body_for(token))
            .map_err(|e| TransportError::Request(e.to_string()))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.origin.send(request).await?;
        let status = response.status.as_u16();
        let retry_after = response
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.clock.now()));
        if status == 200 {
            let name =
                serde_json::from_slice::<SendResponse>(&response.body).ok().and_then(|r| r.name);
            return Ok(name);
        }
        if status == 401 {
            self.tokens.invalidate(&authorization);
        }
        Err(FcmError::from_response(status, &response.body, retry_after))
    }

    pub(crate) fn stats(&self) -> ChannelStats {
        self.counters.snapshot(self.tokens.exchanges.load(Ordering::Relaxed))
    }
}

fn final_outcome(error: FcmError) -> Outcome {
    match error.step() {
        Step::Done(outcome) => outcome,
        Step::Retry { reason, .. } | Step::Reauthorize { reason } => Outcome::failed(reason, true),
    }
}

/// Registration tokens are opaque but printable and bounded.
fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token.bytes().all(|b| b.is_ascii_graphic())
}
