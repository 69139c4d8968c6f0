//! The dispatcher: turns accepted pushes into deliveries. Per app, one push at a time in
//! acceptance order: resolve the audience, store it with the next seq, put the push in the
//! offline inbox, fan it out to online devices, mark it done. Running one app's pushes in order
//! is what lets devices receive pushes in seq order without gaps.

mod inbox;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use herald_core::push::PushStatus;
use herald_core::AppId;
use herald_gateway::{PushFrames, Registry};
use herald_store::{Dispatch, DynStore, StoreError};
use tokio::sync::mpsc;

pub use inbox::{LiveInbox, LivePush, StoreInbox};

use crate::directory::{self, Directory};

/// Platforms whose notification has overrides of its own; others get the defaults.
const OVERRIDDEN_PLATFORMS: [&str; 2] = ["ios", "android"];

/// What the dispatcher works with.
pub struct DispatchContext {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub live: Arc<LiveInbox>,
    pub registry: Arc<Registry>,
}

/// Hands pushes to a worker per app.
#[derive(Clone)]
pub struct Dispatcher {
    context: Arc<DispatchContext>,
    workers: Arc<Mutex<HashMap<AppId, mpsc::UnboundedSender<String>>>>,
}

impl Dispatcher {
    pub fn new(context: DispatchContext) -> Self {
        Self { context: Arc::new(context), workers: Arc::default() }
    }

    /// Finishes what a previous run left: pushes caught mid-dispatch are already in their
    /// recipients' inboxes (devices fetch them when they reconnect), so they are marked done;
    /// accepted pushes are queued again.
    pub async fn resume(&self) -> Result<(), StoreError> {
        let store = &self.context.store;
        for push in store.pushes_with_status(PushStatus::Dispatching).await? {
            tracing::info!(app_id = push.app, push_id = %push.id, "completing a dispatch interrupted by a restart");
            store.finish_push(push.app, &push.id, PushStatus::Done, None).await?;
        }
        for push in store.pushes_with_status(PushStatus::Scheduled).await? {
            self.enqueue(push.app, push.id);
        }
        Ok(())
    }

    /// Queues a stored push for dispatch.
    pub fn enqueue(&self, app: AppId, push_id: String) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let sender = workers.entry(app).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_worker(self.context.clone(), app, rx));
            tx
        });
        if let Err(err) = sender.send(push_id) {
            // The worker only ends with the runtime; the push stays `scheduled` in the store and
            // is queued again by `resume` at the next start.
            tracing::error!(app_id = app, push_id = %err.0, "dispatch worker gone");
        }
    }

    /// Drops expired pushes from the in-memory inbox every minute.
    pub fn spawn_sweeper(&self) {
        let live = self.context.live.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let dropped = live.sweep(Utc::now());
                if dropped > 0 {
                    tracing::debug!(dropped, "expired pushes left the inbox");
                }
            }
        });
    }
}

async fn run_worker(
    context: Arc<DispatchContext>,
    app: AppId,
    mut queue: mpsc::UnboundedReceiver<String>,
) {
    while let Some(push_id) = queue.recv().await {
        if let Err(err) = dispatch(&context, app, &push_id).await {
            tracing::error!(app_id = app, %push_id, %err, "dispatch failed");
            let failed = context
                .store
                .finish_push(app, &push_id, PushStatus::Failed, Some(err.clone()))
                .await;
            if let Err(store_err) = failed {
                tracing::error!(app_id = app, %push_id, %store_err, "cannot mark push failed");
            }
        }
    }
}

async fn dispatch(context: &DispatchContext, app_id: AppId, push_id: &str) -> Result<(), String> {
    let store = &context.store;
    let push = store.push(app_id, push_id).await.map_err(|e| e.to_string())?;
    if push.status != PushStatus::Scheduled {
        return Ok(());
    }
    let app = store.app(app_id).await.map_err(|e| e.to_string())?;
    let audience: serde_json::Value =
        serde_json::from_str(&push.audience).map_err(|e| e.to_string())?;
    // The audience was checked when the push was accepted; it can fail here only if the app
    // changed meanwhile (an attribute name removed), and then the push fails with the reason.
    let (_, recipients) = directory::resolve_audience(&context.directory, &app, &audience)
        .await
        .map_err(|e| format!("audience: {e}"))?;
    let now = Utc::now();
    let expires_at =
        (push.ttl_secs > 0).then(|| now + chrono::Duration::seconds(i64::from(push.ttl_secs)));
    let stored = expires_at.map(|_| serialize(&recipients)).transpose()?;
    let dispatch = Dispatch { recipients: stored, targeted: recipients.len(), expires_at };
    let seq = store.begin_dispatch(app_id, push_id, dispatch).await.map_err(|e| e.to_string())?;

    let notification = push.notification.as_deref().map(serde_json::from_str);
    let live = LivePush {
        id: push.id.clone(),
        seq,
        recipients,
        platforms: push.platforms.clone(),
        sender: push.sender.clone(),
        message: serde_json::from_str(&push.message).map_err(|e| e.to_string())?,
        notification: notification.transpose().map_err(|e| e.to_string())?,
        sent_at: now,
        expires_at,
    };
    let frames = frames(&live);
    let recipients = live.recipients.clone();
    // In the inbox before the fan-out: a device connecting meanwhile finds it either live or
    // pending, and the session drops the duplicate by seq.
    context.live.insert(app_id, live);
    let delivery = context.registry.deliver(app_id, &recipients, &frames);
    store.finish_push(app_id, push_id, PushStatus::Done, None).await.map_err(|e| e.to_string())?;
    metrics::counter!("herald_pushes_dispatched_total").increment(1);
    metrics::counter!("herald_push_frames_sent_total").increment(delivery.total_sent());
    tracing::info!(app_id, %push_id, seq, targeted = recipients.len(), online_sent = delivery.total_sent(), "push dispatched");
    Ok(())
}

/// The push encoded once per platform variant.
fn frames(push: &LivePush) -> PushFrames {
    let mut frames = PushFrames::new(&push.frame_for(""));
    if push.notification.is_some() {
        for platform in OVERRIDDEN_PLATFORMS {
            frames = frames.with_platform(platform, &push.frame_for(platform));
        }
    }
    if let Some(only) = &push.platforms {
        frames = frames.only_platforms(only.iter().cloned());
    }
    frames
}

fn serialize(bitmap: &herald_index::RoaringBitmap) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    bitmap.serialize_into(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}
