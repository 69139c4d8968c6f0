//! Accepting a push: the one path every API (native and compat) takes from a request to a
//! stored, queued push. Checks the content and the audience, answers a repeated idempotency key
//! with the first push, stores it (the store enforces the broadcast interval and quota in the
//! same transaction), queues.

use chrono::{DateTime, Utc};
use herald_core::push::PushContent;
use herald_core::App;
use herald_store::{NewPush, PushRecord, StoreError};
use serde_json::Value;

use crate::directory;
use crate::layers::{Layer, LayerLimits};
use crate::limits::{BroadcastRule, RuleNames};
use crate::token;
use crate::Service;
use crate::ServiceError;

/// Which API a push comes through; each has its own broadcast rate limits.
#[derive(Debug, Clone, Copy)]
pub enum PushSource {
    Native,
    Layer(Layer, LayerLimits),
}

impl PushSource {
    fn name(self) -> &'static str {
        match self {
            PushSource::Native => "native",
            PushSource::Layer(layer, _) => layer.as_str(),
        }
    }

    fn rule(self, app: &App) -> BroadcastRule {
        match self {
            PushSource::Native => BroadcastRule::native(app),
            PushSource::Layer(_, limits) => BroadcastRule {
                min_interval_secs: limits.min_interval_secs,
                per_hour: limits.per_hour,
                per_day: limits.per_day,
                names: RuleNames {
                    min_interval: "layer.min_interval_secs",
                    per_hour: "layer.per_hour",
                    per_day: "layer.per_day",
                },
            },
        }
    }
}

/// A push as an API asks for it.
#[derive(Debug, Clone)]
pub struct PushRequest {
    pub source: PushSource,
    /// Audience expression (docs/audience.md).
    pub audience: Value,
    pub content: PushContent,
    /// When to send; `None` or the past: at once.
    pub push_at: Option<DateTime<Utc>>,
}

/// Stores and queues a push; returns it and whether it is new (`false`: the first push of a
/// repeated idempotency key).
pub async fn accept(
    service: &Service,
    app: &App,
    request: PushRequest,
) -> Result<(PushRecord, bool), ServiceError> {
    let PushRequest { source, audience, content, push_at } = request;
    content.check(&app.limits)?;
    if let Some(key) = &content.idempotency_key {
        // A retry of an accepted push is answered before any rate limit: it pushes nothing.
        if let Some(first) = service.store.push_by_idempotency_key(app.id, key).await? {
            return Ok((first, false));
        }
    }
    let plan = directory::plan_audience(&service.directory, app, &audience).await?;
    let broadcast = plan.is_broadcast();
    let rule = source.rule(app);
    let notification = content.notification.as_ref().map(serde_json::to_string).transpose();
    let new = NewPush {
        app: app.id,
        id: format!("p_{}", token::random_token(20)),
        audience: audience.to_string(),
        message: content.message.to_string(),
        notification: notification.map_err(|err| ServiceError::Internal(err.to_string()))?,
        sender: content.sender,
        platforms: content.platforms,
        ttl_secs: content.ttl_secs,
        idempotency_key: content.idempotency_key,
        push_at: push_at.unwrap_or_else(Utc::now),
        broadcast,
        source: source.name().to_owned(),
        vendor_push: content.vendor_push,
        quota: broadcast.then(|| rule.quota()),
    };
    let started = std::time::Instant::now();
    let stored = service.store.create_push(new).await;
    crate::dispatch::store_time("create_push", started);
    let (record, created) = match stored {
        Ok(stored) => stored,
        Err(StoreError::Quota(breach)) => return Err(rule.refusal(breach, Utc::now())),
        Err(err) => return Err(err.into()),
    };
    if created {
        service.dispatcher.submit(&record).await;
    }
    Ok((record, created))
}

/// How long a push waits for offline devices: none for an online-only push (which takes no
/// TTL), else the asked TTL or the app's longest.
pub fn offline_ttl(
    app: &App,
    online_only: bool,
    ttl_secs: Option<u32>,
) -> Result<u32, ServiceError> {
    if online_only && ttl_secs.is_some_and(|ttl| ttl > 0) {
        return Err(ServiceError::InvalidRequest("online_only pushes take no ttl_secs".into()));
    }
    Ok(if online_only { 0 } else { ttl_secs.unwrap_or(app.limits.max_offline_ttl_secs) })
}
