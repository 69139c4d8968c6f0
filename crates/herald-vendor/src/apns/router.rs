//! One app's APNs channel: its HTTP/2 clients, provider token, in-flight limit and breaker.
//! Handles `POST /3/device/{token}`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use http::{Method, Request};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::error::ApnsError;
use super::payload::ApnsPayload;
use super::token::ProviderToken;
use super::{ApnsCredentials, ApnsEnvironment};
use crate::clock::Clock;
use crate::credentials::CredentialsError;
use crate::outcome::Outcome;
use crate::retry::{parse_retry_after, with_retries, Breaker, Step, VendorFailure};
use crate::settings::VendorSettings;
use crate::stats::{ChannelStats, Counters};
use crate::transport::{Origin, TransportError, TransportFactory};

static APNS_TOPIC: HeaderName = HeaderName::from_static("apns-topic");
static APNS_PUSH_TYPE: HeaderName = HeaderName::from_static("apns-push-type");
static APNS_PRIORITY: HeaderName = HeaderName::from_static("apns-priority");
static APNS_EXPIRATION: HeaderName = HeaderName::from_static("apns-expiration");
static APNS_COLLAPSE_ID: HeaderName = HeaderName::from_static("apns-collapse-id");
static APNS_ID: HeaderName = HeaderName::from_static("apns-id");

/// Longest device token accepted, in hex digits (Apple's are 64 today and may grow).
const MAX_TOKEN_HEX: usize = 200;

/// The JSON body of an APNs error response.
#[derive(Deserialize)]
struct ErrorBody {
    reason: Option<String>,
}

/// The APNs channel of one app.
pub(crate) struct ApnsRouter {
    origin: Origin,
    topic: HeaderValue,
    token: ProviderToken,
    limit: Semaphore,
    breaker: Breaker,
    settings: Arc<VendorSettings>,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

impl ApnsRouter {
    pub(crate) fn new(
        credentials: &ApnsCredentials,
        settings: Arc<VendorSettings>,
        transport: &TransportFactory,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CredentialsError> {
        let key = credentials.signing_key()?;
        let topic = HeaderValue::from_str(&credentials.topic)
            .map_err(|_| CredentialsError::field("topic", "is not a valid header value"))?;
        let base = match credentials.environment {
            ApnsEnvironment::Production => &settings.apns.production_url,
            ApnsEnvironment::Sandbox => &settings.apns.sandbox_url,
        };
        let origin =
            transport.origin(base).map_err(|e| CredentialsError::field("environment", e))?;
        Ok(Self {
            origin,
            topic,
            token: ProviderToken::new(
                key,
                credentials.key_id.clone(),
                credentials.team_id.clone(),
                Duration::from_secs(settings.apns.token_refresh_secs),
            ),
            limit: Semaphore::new(settings.max_in_flight),
            breaker: Breaker::new(settings.breaker.clone()),
            settings,
            clock,
            counters: Counters::default(),
        })
    }

    /// Sends the push to one device token, retrying as configured.
    pub(crate) async fn send(
        &self,
        payload: &Result<ApnsPayload, &'static str>,
        token: &str,
    ) -> Outcome {
        let outcome = match (payload, valid_token(token)) {
            (Err(reason), _) => final_outcome(ApnsError::Payload(reason)),
            (Ok(_), false) => final_outcome(ApnsError::MalformedToken),
            (Ok(payload), true) => match self.limit.acquire().await {
                Ok(_permit) => {
                    with_retries(&self.settings.retry, &*self.clock, &self.counters.retries, || {
                        self.attempt(payload, token)
                    })
                    .await
                }
                Err(_) => Outcome::failed("ShuttingDown", true),
            },
        };
        self.counters.record(&outcome);
        outcome
    }

    async fn attempt(&self, payload: &ApnsPayload, token: &str) -> Step {
        self.breaker.attempt(self.clock.now(), self.request(payload, token)).await
    }

    async fn request(
        &self,
        payload: &ApnsPayload,
        token: &str,
    ) -> Result<Option<String>, ApnsError> {
        let now = self.clock.now();
        let authorization = self.token.authorization(now)?;
        let uri = self.origin.uri(&format!("/3/device/{token}"))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(AUTHORIZATION, authorization.clone())
            .header(&APNS_TOPIC, self.topic.clone())
            .header(&APNS_PUSH_TYPE, payload.push_type.clone())
            .header(&APNS_PRIORITY, payload.priority.clone())
            .header(&APNS_EXPIRATION, payload.expiration.clone());
        if let Some(collapse_id) = &payload.collapse_id {
            request = request.header(&APNS_COLLAPSE_ID, collapse_id.clone());
        }
        let request = request
            .body(payload.body.clone())
            .map_err(|e| TransportError::Request(e.to_string()))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.origin.send(request).await?;
        let status = response.status;
        let header = |name: &HeaderName| {
            response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        if status.is_success() {
            return Ok(header(&APNS_ID));
        }
        let retry_after = header(&RETRY_AFTER).and_then(|v| parse_retry_after(&v, now));
        let reason = serde_json::from_slice::<ErrorBody>(&response.body)
            .ok()
            .and_then(|b| b.reason)
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        if status.as_u16() == 403 && reason == "ExpiredProviderToken" {
            self.token.invalidate(&authorization);
        }
        Err(ApnsError::Rejected { status: status.as_u16(), reason, retry_after })
    }

    pub(crate) fn stats(&self) -> ChannelStats {
        self.counters.snapshot(self.token.minted.load(Ordering::Relaxed))
    }
}

fn final_outcome(error: ApnsError) -> Outcome {
    match error.step() {
        Step::Done(outcome) => outcome,
        Step::Retry { reason, .. } | Step::Reauthorize { reason } => Outcome::failed(reason, true),
    }
}

/// APNs tokens are hexadecimal; anything else would also change the request path.
fn valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_HEX
        && token.bytes().all(|b| b.is_ascii_hexdigit())
}
