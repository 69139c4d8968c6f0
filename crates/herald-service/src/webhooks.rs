//! Events to the app's back end: `push.finished`, `push.failed`, `device.token_invalidated`.
//! Each event is written to a durable outbox first and posted by a worker, signed with the app
//! secret, and retried with exponential backoff until it is accepted, or until it is older than
//! [`WebhookSettings::give_up_after_secs`]: a receiver that is down for hours gets every event
//! once it is back, however many attempts that took.
//!
//! Events are not ordered: an event retried after a failure may arrive after a newer one. Their
//! `id` grows with the order they were emitted in, and `created_at` says when.
//!
//! # Format
//! `POST <url>` with a JSON body `{"id","event","app_id","created_at","data":{..}}` and headers
//! `x-herald-event`, `x-herald-timestamp` (Unix seconds) and `x-herald-signature`: lower-case hex
//! HMAC-SHA256 with the app secret of `TIMESTAMP + "." + BODY`.

use std::time::Duration;

use chrono::Utc;
use herald_core::AppId;
use herald_store::{DynStore, WebhookAttempt, WebhookEvent};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Notify;

use std::sync::Arc;

use crate::dispatch::until_available;
use crate::tasks::Tasks;

/// Event kinds an app may subscribe to.
pub const EVENTS: [&str; 3] = ["push.finished", "push.failed", "device.token_invalidated"];

/// How events are retried (the `[webhooks]` table of the settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Wait before the first retry, in milliseconds; it doubles on every further attempt.
    pub first_retry_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    pub max_retry_ms: u64,
    /// An event not accepted this many seconds after it was emitted is given up (marked failed
    /// in the outbox, with its last error).
    pub give_up_after_secs: u64,
    /// Longest one post may take, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            first_retry_ms: 2_000,
            max_retry_ms: 3_600_000,
            give_up_after_secs: 3 * 86_400,
            timeout_ms: 10_000,
        }
    }
}

impl WebhookSettings {
    /// Why the settings cannot be used, if they cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.first_retry_ms == 0 || self.timeout_ms == 0 {
            return Err("first_retry_ms and timeout_ms must be positive".into());
        }
        if self.max_retry_ms < self.first_retry_ms {
            return Err("max_retry_ms must be at least first_retry_ms".into());
        }
        Ok(())
    }

    /// The wait after failed attempt number `attempts` (1-based), before jitter.
    fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self.first_retry_ms.saturating_mul(1 << attempts.saturating_sub(1).min(30));
        Duration::from_millis(doubled.min(self.max_retry_ms))
    }
}

/// Events claimed at a time; each post may take up to its 10 s timeout.
const CLAIM_BATCH: u32 = 20;
/// How long claimed events stay ours: longer than a batch of posts can take, so no other node
/// sends them meanwhile, and short enough that a node that dies leaves them for others soon.
const CLAIM_HOLD: chrono::Duration = chrono::Duration::minutes(5);

/// Emits events into the outbox and wakes the poster.
#[derive(Clone)]
pub struct Webhooks {
    store: DynStore,
    wake: Arc<Notify>,
}

impl Webhooks {
    /// Starts the poster in `tasks`; it stops at shutdown between posts (the outbox keeps
    /// what is left for the next start).
    pub fn spawn(store: DynStore, settings: WebhookSettings, tasks: &Tasks) -> Self {
        let wake = Arc::new(Notify::new());
        tasks.spawn(post_loop(store.clone(), settings, wake.clone(), tasks.clone()));
        Self { store, wake }
    }

    /// Queues `data` as event `kind` if the app subscribed to it. While the store is away or
    /// full the write is repeated, as the dispatch's own writes are, so that the event of a
    /// push is not lost to an outage; other failures are logged: an event is a notice about
    /// something that already happened and never undoes it.
    pub async fn emit(&self, app: AppId, kind: &str, data: Value) {
        let hook = match until_available(|| self.store.webhook(app)).await {
            Ok(Some(hook)) if hook.events.iter().any(|e| e == kind) => hook,
            Ok(_) => return,
            Err(err) => {
                tracing::error!(app_id = app, %err, "cannot read webhook settings");
                return;
            }
        };
        let payload =
            json!({ "event": kind, "app_id": hook.app, "created_at": Utc::now(), "data": data });
        let payload = payload.to_string();
        match until_available(|| self.store.enqueue_webhook_event(app, kind, &payload)).await {
            Ok(_) => self.wake.notify_one(),
            Err(err) => tracing::error!(app_id = app, %err, kind, "cannot queue webhook event"),
        }
    }
}

/// The signature header value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn post_loop(store: DynStore, settings: WebhookSettings, wake: Arc<Notify>, tasks: Tasks) {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "webhooks disabled: cannot build an HTTP client");
            return;
        }
    };
    while !tasks.is_stopping() {
        let now = Utc::now();
        match store.claim_webhook_events(now, CLAIM_BATCH, now + claim_hold(timeout)).await {
            Ok(events) if !events.is_empty() => {
                for event in events {
                    let attempt = post(&store, &client, &settings, &event).await;
                    if let Err(err) = store.webhook_attempted(event.id, &attempt).await {
                        tracing::error!(%err, event_id = event.id, "cannot record a webhook attempt");
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::error!(%err, "cannot read the webhook outbox"),
        }
        // Retries come due with time; new events wake the loop at once.
        tokio::select! {
            () = tasks.stopping() => {}
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// How long claimed events stay ours: [`CLAIM_HOLD`], or twice what a batch of posts can take
/// with a longer post timeout.
fn claim_hold(timeout: Duration) -> chrono::Duration {
    let batch = chrono::Duration::from_std(timeout * CLAIM_BATCH).unwrap_or(CLAIM_HOLD);
    CLAIM_HOLD.max(batch * 2)
}

async fn post(
    store: &DynStore,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    event: &WebhookEvent,
) -> WebhookAttempt {
    let (hook, app) = match (store.webhook(event.app).await, store.app(event.app).await) {
        (Ok(Some(hook)), Ok(app)) => (hook, app),
        _ => return WebhookAttempt::Failed { error: "webhook or app no longer exists".into() },
    };
    let mut body: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    body["id"] = json!(event.id);
    let body = body.to_string();
    let timestamp = Utc::now().timestamp();
    let sent = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-herald-event", &event.kind)
        .header("x-herald-timestamp", timestamp.to_string())
        .header("x-herald-signature", sign(&app.secret, timestamp, &body))
        .body(body)
        .send()
        .await;
    let error = match sent {
        Ok(response) if response.status().is_success() => return WebhookAttempt::Delivered,
        Ok(response) => format!("HTTP {}", response.status().as_u16()),
        Err(err) => err.to_string(),
    };
    let attempts = event.attempts + 1;
    metrics::counter!("herald_webhook_failures_total").increment(1);
    let age = (Utc::now() - event.created_at).to_std().unwrap_or_default();
    if age >= Duration::from_secs(settings.give_up_after_secs) {
        tracing::warn!(app_id = event.app, event_id = event.id, attempts, %error, "webhook event given up");
        return WebhookAttempt::Failed { error };
    }
    tracing::debug!(app_id = event.app, event_id = event.id, attempts, %error, "webhook post failed; retrying later");
    let backoff = u64::try_from(settings.backoff(attempts).as_millis()).unwrap_or(u64::MAX);
    // Jitter spreads retries of many events that failed together: 75 % to 100 % of the wait.
    let jitter = rand::thread_rng().gen_range(0..=backoff / 4);
    let delay = chrono::Duration::milliseconds(
        i64::try_from(backoff - backoff / 4 + jitter).unwrap_or(i64::MAX),
    );
    WebhookAttempt::Retry { next: Utc::now() + delay, error }
}

/// Sets the app's webhook: an http(s) URL and the events it receives (default: all of them).
pub async fn configure(
    store: &DynStore,
    app: AppId,
    url: &str,
    events: Option<Vec<String>>,
) -> Result<herald_store::Webhook, crate::ServiceError> {
    use crate::ServiceError;
    let url = reqwest::Url::parse(url.trim())
        .map_err(|err| ServiceError::InvalidRequest(format!("url: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ServiceError::InvalidRequest("url must be http:// or https://".into()));
    }
    let events = events.unwrap_or_else(|| EVENTS.iter().map(|e| e.to_string()).collect());
    if let Some(unknown) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        let message = format!("unknown event `{unknown}`; known: {}", EVENTS.join(", "));
        return Err(ServiceError::InvalidRequest(message));
    }
    Ok(store.set_webhook(app, url.as_str(), &events).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_retry_up_to_the_cap() {
        let settings =
            WebhookSettings { first_retry_ms: 100, max_retry_ms: 1_000, ..Default::default() };
        let waits: Vec<u128> = (1..=6).map(|n| settings.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(settings.backoff(u32::MAX).as_millis(), 1_000);
    }

    #[test]
    fn an_hour_down_is_far_from_giving_up_by_default() {
        let settings = WebhookSettings::default();
        let attempts_in_an_hour = (1..)
            .scan(Duration::ZERO, |spent, n| {
                *spent += settings.backoff(n);
                (*spent <= Duration::from_secs(3_600)).then_some(n)
            })
            .count();
        assert!(attempts_in_an_hour >= 10, "{attempts_in_an_hour}");
        assert!(settings.give_up_after_secs >= 86_400);
    }
}
