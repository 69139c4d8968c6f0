//! One app's Web Push channel: its VAPID tokens, in-flight limit, and per push service the
//! connections and breaker. Handles `POST {subscription endpoint}`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};
use http::{Method, Request};
use tokio::sync::Semaphore;

use super::ece;
use super::error::{status_reason, WebPushError};
use super::message::WebPushMessage;
use super::subscription::{SubscriptionError, WebPushSubscription};
use super::vapid::VapidTokens;
use super::WebPushCredentials;
use crate::clock::Clock;
use crate::credentials::CredentialsError;
use crate::jwt::b64;
use crate::outcome::Outcome;
use crate::retry::{parse_retry_after, with_retries, Breaker, Step, VendorFailure};
use crate::settings::VendorSettings;
use crate::stats::{ChannelStats, Counters};
use crate::transport::{Origin, TransportError, TransportFactory};

static TTL: HeaderName = HeaderName::from_static("ttl");
static URGENCY: HeaderName = HeaderName::from_static("urgency");
static TOPIC: HeaderName = HeaderName::from_static("topic");

/// Longest error body kept for the logs.
const MAX_DETAIL_CHARS: usize = 200;

/// Connections to one push service and its breaker: an outage of one browser vendor's
/// service does not pause sends to the others.
struct PushService {
    origin: Origin,
    breaker: Breaker,
}

/// The Web Push channel of one app.
pub(crate) struct WebPushRouter {
    transport: TransportFactory,
    services: RwLock<HashMap<String, Arc<PushService>>>,
    vapid: VapidTokens,
    /// The VAPID public key as pages pass it to `pushManager.subscribe`.
    application_server_key: String,
    limit: Semaphore,
    settings: Arc<VendorSettings>,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

impl WebPushRouter {
    pub(crate) fn new(
        credentials: &WebPushCredentials,
        settings: Arc<VendorSettings>,
        transport: &TransportFactory,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CredentialsError> {
        let key = credentials.signing_key()?;
        let web = &settings.webpush;
        Ok(Self {
            transport: transport.clone(),
            services: RwLock::new(HashMap::new()),
            application_server_key: b64(key.public_key()),
            vapid: VapidTokens::new(
                key,
                credentials.subject.clone(),
                Duration::from_secs(web.vapid_lifetime_secs),
                Duration::from_secs(web.vapid_refresh_margin_secs),
                web.max_push_services,
            ),
            limit: Semaphore::new(settings.max_in_flight),
            settings,
            clock,
            counters: Counters::default(),
        })
    }

    /// The VAPID public key, base64url without padding.
    pub(crate) fn application_server_key(&self) -> &str {
        &self.application_server_key
    }

    /// Sends the push to one subscription (its JSON, the device's vendor token), retrying as
    /// configured.
    pub(crate) async fn send(
        &self,
        message: &Result<WebPushMessage, &'static str>,
        subscription: &str,
    ) -> Outcome {
        let outcome = match self.prepare(message, subscription) {
            Err(error) => final_outcome(error),
            Ok((message, service, subscription, body)) => match self.limit.acquire().await {
                Ok(_permit) => {
                    with_retries(&self.settings.retry, &*self.clock, &self.counters.retries, || {
                        self.attempt(&service, message, &subscription, &body)
                    })
                    .await
                }
                Err(_) => Outcome::failed("ShuttingDown", true),
            },
        };
        self.counters.record(&outcome);
        outcome
    }

    /// Everything that can fail before a request: the message, the subscription, its push
    /// service, and the body encrypted once for all attempts.
    fn prepare<'m>(
        &self,
        message: &'m Result<WebPushMessage, &'static str>,
        subscription: &str,
    ) -> Result<(&'m WebPushMessage, Arc<PushService>, WebPushSubscription, Bytes), WebPushError>
    {
        let message = message.as_ref().map_err(|reason| WebPushError::Payload(reason))?;
        let subscription = WebPushSubscription::parse(subscription)?;
        let service = self.service(subscription.origin())?;
        let body = ece::encrypt(&message.plaintext, subscription.keys())?;
        Ok((message, service, subscription, Bytes::from(body)))
    }

    /// The push service at `origin`, connecting lazily on first use.
    fn service(&self, origin: &str) -> Result<Arc<PushService>, WebPushError> {
        if let Some(service) = self.services.read().unwrap_or_else(|e| e.into_inner()).get(origin) {
            return Ok(service.clone());
        }
        let mut services = self.services.write().unwrap_or_else(|e| e.into_inner());
        if let Some(service) = services.get(origin) {
            return Ok(service.clone());
        }
        if services.len() >= self.settings.webpush.max_push_services {
            return Err(WebPushError::TooManyPushServices);
        }
        let origin_pool = self
            .transport
            .origin(origin)
            .map_err(|e| WebPushError::BadSubscription(SubscriptionError::BadEndpoint(e)))?;
        let service = Arc::new(PushService {
            origin: origin_pool,
            breaker: Breaker::new(self.settings.breaker.clone()),
        });
        services.insert(origin.to_owned(), service.clone());
        Ok(service)
    }

    async fn attempt(
        &self,
        service: &PushService,
        message: &WebPushMessage,
        subscription: &WebPushSubscription,
        body: &Bytes,
    ) -> Step {
        let request = self.request(service, message, subscription, body);
        service.breaker.attempt(self.clock.now(), request).await
    }

    async fn request(
        &self,
        service: &PushService,
        message: &WebPushMessage,
        subscription: &WebPushSubscription,
        body: &Bytes,
    ) -> Result<Option<String>, WebPushError> {
        let now = self.clock.now();
        let origin = subscription.origin();
        let authorization = self.vapid.authorization(origin, now)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(service.origin.uri(subscription.path())?)
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_ENCODING, HeaderValue::from_static("aes128gcm"))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))
            .header(&TTL, message.ttl.clone())
            .header(&URGENCY, message.urgency.clone());
        if let Some(topic) = &message.topic {
            request = request.header(&TOPIC, topic.clone());
        }
        let request =
            request.body(body.clone()).map_err(|e| TransportError::Request(e.to_string()))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = service.origin.send(request).await?;
        let status = response.status.as_u16();
        let header = |name: &HeaderName| {
            response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        if response.status.is_success() {
            // RFC 8030: 201 with the message's URL in `Location`; some services answer 200/202.
            return Ok(header(&LOCATION));
        }
        // 401: the token itself was refused (expired, clock skew); the retry mints another.
        // A 403 is about the subscription's key, which a new token would not change.
        if status == 401 {
            self.vapid.invalidate(origin, &authorization);
        }
        let detail: String =
            String::from_utf8_lossy(&response.body).chars().take(MAX_DETAIL_CHARS).collect();
        tracing::debug!(status, origin, detail = %detail, "push service refused a message");
        Err(WebPushError::Rejected {
            status,
            reason: status_reason(status),
            detail,
            retry_after: header(&RETRY_AFTER).and_then(|v| parse_retry_after(&v, now)),
        })
    }

    pub(crate) fn stats(&self) -> ChannelStats {
        self.counters.snapshot(self.vapid.minted.load(Ordering::Relaxed))
    }
}

fn final_outcome(error: WebPushError) -> Outcome {
    match error.step() {
        Step::Done(outcome) => outcome,
        Step::Retry { reason, .. } | Step::Reauthorize { reason } => Outcome::failed(reason, true),
    }
}
