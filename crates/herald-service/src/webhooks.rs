//! Events to the app's back end: `push.finished`, `push.failed`, `device.token_invalidated`.
//! Each event is written to a durable outbox first and posted by a worker, signed with the app
//! secret, and retried with exponential backoff until it is accepted or gives up.
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
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::Notify;

use std::sync::Arc;

use crate::tasks::Tasks;

/// Event kinds an app may subscribe to.
pub const EVENTS: [&str; 3] = ["push.finished", "push.failed", "device.token_invalidated"];

/// Attempts before an event is given up.
const MAX_ATTEMPTS: u32 = 10;
/// First retry delay; doubled each attempt, capped at an hour.
const FIRST_RETRY_SECS: u64 = 1;
const MAX_RETRY_SECS: u64 = 3_600;
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
    pub fn spawn(store: DynStore, tasks: &Tasks) -> Self {
        let wake = Arc::new(Notify::new());
        tasks.spawn(post_loop(store.clone(), wake.clone(), tasks.clone()));
        Self { store, wake }
    }

    /// Queues `data` as event `kind` if the app subscribed to it. Failures are logged: an event
    /// is a notice about something that already happened and never blocks it.
    pub async fn emit(&self, app: AppId, kind: &str, data: Value) {
        let hook = match self.store.webhook(app).await {
            Ok(Some(hook)) if hook.events.iter().any(|e| e == kind) => hook,
            Ok(_) => return,
            Err(err) => {
                tracing::error!(app_id = app, %err, "cannot read webhook settings");
                return;
            }
        };
        let payload =
            json!({ "event": kind, "app_id": hook.app, "created_at": Utc::now(), "data": data });
        match self.store.enqueue_webhook_event(app, kind, &payload.to_string()).await {
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

async fn post_loop(store: DynStore, wake: Arc<Notify>, tasks: Tasks) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(%err, "webhooks disabled: cannot build an HTTP client");
            return;
        }
    };
    while !tasks.is_stopping() {
        let now = Utc::now();
        match store.claim_webhook_events(now, CLAIM_BATCH, now + CLAIM_HOLD).await {
            Ok(events) if !events.is_empty() => {
                for event in events {
                    let attempt = post(&store, &client, &event).await;
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

async fn post(store: &DynStore, client: &reqwest::Client, event: &WebhookEvent) -> WebhookAttempt {
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
    if attempts >= MAX_ATTEMPTS {
        tracing::warn!(app_id = event.app, event_id = event.id, %error, "webhook event given up");
        return WebhookAttempt::Failed { error };
    }
    let backoff = FIRST_RETRY_SECS.saturating_mul(1 << attempts.min(20)).min(MAX_RETRY_SECS);
    // Jitter spreads retries of many events that failed together.
    let jitter = rand::thread_rng().gen_range(0..=backoff * 250);
    let delay =
        chrono::Duration::milliseconds(i64::try_from(backoff * 750 + jitter).unwrap_or(i64::MAX));
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
