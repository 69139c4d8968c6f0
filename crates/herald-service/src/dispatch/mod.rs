//! The dispatcher: turns accepted pushes into deliveries. Per app, in acceptance order: resolve
//! the audience, store the push with the next seq, put it in the offline inbox, fan it out to
//! online devices, mark it done. Pushes that queued up while the worker was busy are fanned out
//! together, still in seq order. Running one app's pushes in order is what lets devices receive
//! pushes in seq order without gaps. Pushes with a future push time
//! wait in the [`Scheduler`] first; cancel and recall act on pushes in any of these stages.

mod bus;
mod inbox;
mod live;
mod receipts;
mod scheduler;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use herald_core::push::PushStatus;
use herald_core::AppId;
use herald_gateway::{Delivery, PushFrames};
use herald_index::RoaringBitmap;
use herald_store::{Dispatch, DynStore, PushRecord, StoreError};
use serde_json::json;
use tokio::sync::mpsc;

pub use bus::{recall_frame, Bus, Leases, LocalBus, Outgoing};
pub use inbox::{AppCache, StoreInbox};
pub use live::{LiveInbox, LivePush, PushContent};
pub use receipts::{day_of, deserialize, DeviceRef, DispatchCounts, Receipts, DEVICE_LINGER};
pub use scheduler::Scheduler;

use crate::directory::{self, Directory};
use crate::tasks::Tasks;
use crate::vendors::{notify_offline, OfflineContext, OfflinePush, Vendors};
use crate::webhooks::Webhooks;
use crate::ServiceError;

/// Platforms whose notification has overrides of its own; others get the defaults.
const OVERRIDDEN_PLATFORMS: [&str; 2] = ["ios", "android"];

/// How long after its dispatch a push can be recalled.
const RECALL_WINDOW_HOURS: i64 = 24;

/// What the dispatcher works with.
pub struct DispatchContext {
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub live: Arc<LiveInbox>,
    pub bus: Arc<dyn Bus>,
    pub leases: Arc<Leases>,
    pub receipts: Receipts,
    pub webhooks: Webhooks,
    pub vendors: Vendors,
    /// Where workers, vendor sends and the sweeper are spawned, so shutdown waits for them.
    pub tasks: Tasks,
}

/// Hands pushes to a worker per app, now or at their push time.
#[derive(Clone)]
pub struct Dispatcher {
    context: Arc<DispatchContext>,
    workers: Arc<Mutex<HashMap<AppId, mpsc::UnboundedSender<Job>>>>,
    scheduler: Scheduler,
}

/// What a worker is handed.
enum Job {
    /// A stored push waiting to be dispatched.
    Dispatch(String),
    /// A push whose dispatch another node (or a previous run) began and did not finish: it
    /// has its seq already and goes out again; nodes that delivered it drop it by seq.
    Finish(Box<PushRecord>),
}

impl Dispatcher {
    pub fn new(context: DispatchContext) -> Self {
        let context = Arc::new(context);
        let workers: Arc<Mutex<HashMap<AppId, mpsc::UnboundedSender<Job>>>> = Arc::default();
        let due = {
            let context = context.clone();
            let workers = workers.clone();
            move |app: AppId, push_id: String| {
                enqueue(&context, &workers, app, Job::Dispatch(push_id))
            }
        };
        Self { scheduler: Scheduler::spawn(&context.tasks, due), context, workers }
    }

    /// Finishes what a previous run left. A push caught mid-dispatch is in its recipients'
    /// inboxes already, but its report counts and its vendor sends may not have been made:
    /// it is finished again from the store, in seq order (devices that had it drop it by
    /// seq). Accepted pushes are queued again, scheduled ones wait for their time again.
    pub async fn resume(&self) -> Result<(), StoreError> {
        let store = &self.context.store;
        let mut interrupted = store.pushes_with_status(PushStatus::Dispatching).await?;
        interrupted.sort_by_key(|push| (push.app, push.seq));
        for push in interrupted {
            tracing::info!(app_id = push.app, push_id = %push.id, seq = push.seq, "finishing a dispatch interrupted by a restart");
            enqueue(&self.context, &self.workers, push.app, Job::Finish(Box::new(push)));
        }
        for push in store.pushes_with_status(PushStatus::Scheduled).await? {
            self.submit(&push).await;
        }
        Ok(())
    }

    /// Takes over one app's dispatch (its lease was just taken): pushes another node left
    /// mid-dispatch go out again from the store, in seq order, then the waiting ones are
    /// queued or scheduled.
    pub async fn take_over(&self, app: AppId) -> Result<(), StoreError> {
        let store = &self.context.store;
        let mut interrupted: Vec<_> = store
            .pushes_with_status(PushStatus::Dispatching)
            .await?
            .into_iter()
            .filter(|push| push.app == app)
            .collect();
        interrupted.sort_by_key(|push| push.seq);
        for push in interrupted {
            tracing::info!(app_id = app, push_id = %push.id, seq = push.seq, "finishing a dispatch another node began");
            enqueue(&self.context, &self.workers, app, Job::Finish(Box::new(push)));
        }
        self.queue_waiting(app).await
    }

    /// Queues the app's stored pushes that wait for dispatch: due ones now, the others at
    /// their time. A push queued twice goes out once.
    pub async fn queue_waiting(&self, app: AppId) -> Result<(), StoreError> {
        let store = &self.context.store;
        for push in store.pushes_with_status(PushStatus::Scheduled).await? {
            if push.app == app {
                self.submit(&push).await;
            }
        }
        Ok(())
    }

    /// Queues a stored push: at once, or at its push time; on the node that dispatches its
    /// app.
    pub async fn submit(&self, push: &PushRecord) {
        if !self.context.leases.holds(push.app) {
            self.context.bus.submit(push.app, &push.id).await;
        } else if push.push_at <= Utc::now() {
            enqueue(&self.context, &self.workers, push.app, Job::Dispatch(push.id.clone()));
        } else {
            self.scheduler.schedule(push.push_at, push.app, push.id.clone());
        }
    }

    /// Cancels a scheduled push, or stops a dispatching one: what it has not delivered yet
    /// leaves the inboxes.
    pub async fn cancel(&self, app: AppId, push_id: &str) -> Result<PushRecord, ServiceError> {
        let (before, push) =
            self.context.store.cancel_push(app, push_id).await.map_err(|err| match err {
                StoreError::Conflict(message) => {
                    ServiceError::PushState { code: "push_not_cancellable", message }
                }
                other => other.into(),
            })?;
        if before == PushStatus::Dispatching {
            self.context.live.remove(app, push_id);
            self.context.bus.cancelled(app, push_id).await;
        }
        tracing::info!(app_id = app, %push_id, was = before.as_str(), "push cancelled");
        Ok(push)
    }

    /// Recalls a push sent within the last 24 h: it leaves every inbox and online devices get a
    /// `recall` frame so the app can hide it.
    pub async fn recall(
        &self,
        app: AppId,
        push_id: &str,
    ) -> Result<(PushRecord, Delivery), ServiceError> {
        let state =
            |message: String| ServiceError::PushState { code: "push_not_recallable", message };
        let push = self.context.store.push(app, push_id).await?;
        let sent_at = push
            .started_at
            .ok_or_else(|| state(format!("push {push_id} has not been sent; cancel it instead")))?;
        if Utc::now() - sent_at > chrono::Duration::hours(RECALL_WINDOW_HOURS) {
            return Err(state(format!(
                "push {push_id} was sent more than {RECALL_WINDOW_HOURS} h ago"
            )));
        }
        let push = self.context.store.recall_push(app, push_id).await.map_err(|err| match err {
            StoreError::Conflict(message) => state(message),
            other => other.into(),
        })?;
        let live = self.context.live.remove(app, push_id);
        let recipients = match &live {
            Some(live) => live.recipients.clone(),
            None => push.recipients.as_deref().map(deserialize).unwrap_or_default(),
        };
        let seq = push.seq.unwrap_or_default();
        let delivery = self.context.bus.recall(app, push_id, seq, &recipients).await;
        tracing::info!(app_id = app, %push_id, online = delivery.total_sent(), "push recalled");
        Ok((push, delivery))
    }

    /// Drops expired pushes from the in-memory inbox every minute.
    pub fn spawn_sweeper(&self) {
        let live = self.context.live.clone();
        let stopping = self.context.tasks.stopping();
        self.context.tasks.spawn(async move {
            tokio::pin!(stopping);
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    () = &mut stopping => return,
                    _ = tick.tick() => {}
                }
                let dropped = live.sweep(Utc::now());
                if dropped > 0 {
                    tracing::debug!(dropped, "expired pushes left the inbox");
                }
            }
        });
    }
}

fn enqueue(
    context: &Arc<DispatchContext>,
    workers: &Mutex<HashMap<AppId, mpsc::UnboundedSender<Job>>>,
    app: AppId,
    job: Job,
) {
    let mut workers = workers.lock().unwrap_or_else(|p| p.into_inner());
    let sender = workers.entry(app).or_insert_with(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        context.tasks.spawn(run_worker(context.clone(), app, rx));
        tx
    });
    let queued = QUEUED_JOBS.fetch_add(1, Ordering::Relaxed) + 1;
    metrics::gauge!("herald_dispatch_queued_pushes").set(queued as f64);
    if sender.send(job).is_err() {
        // The worker only ends at shutdown; the push stays in the store and is queued again
        // by `resume` at the next start.
        if context.tasks.is_stopping() {
            tracing::debug!(app_id = app, "shutting down: push left for the next start");
        } else {
            tracing::error!(app_id = app, "dispatch worker gone");
        }
    }
}

/// Most pushes one fan-out carries. Pushes that queued up while the worker was busy leave
/// together: each connection is woken and written to once for all of them, which is what
/// keeps pushes sent back to back from costing a wake-up and a `send` per push and device.
const FAN_OUT_BATCH: usize = 32;

/// How long the worker goes on preparing queued pushes before it fans out the ones prepared:
/// the first push of a batch waits for the others' store writes, and this bounds that wait.
const FAN_OUT_DELAY: Duration = Duration::from_millis(20);

/// Pushes handed to the apps' dispatch workers and not yet taken by them, for the gauge
/// `herald_dispatch_queued_pushes`.
static QUEUED_JOBS: AtomicUsize = AtomicUsize::new(0);

async fn run_worker(
    context: Arc<DispatchContext>,
    app: AppId,
    mut queue: mpsc::UnboundedReceiver<Job>,
) {
    let mut waiting = Vec::with_capacity(FAN_OUT_BATCH);
    let stopping = context.tasks.stopping();
    tokio::pin!(stopping);
    loop {
        if waiting.is_empty() {
            // At shutdown, queued pushes stay in the store: the next start queues them again.
            let received = tokio::select! {
                biased;
                () = &mut stopping => 0,
                received = queue.recv_many(&mut waiting, FAN_OUT_BATCH) => received,
            };
            let queued = QUEUED_JOBS.fetch_sub(received, Ordering::Relaxed) - received;
            metrics::gauge!("herald_dispatch_queued_pushes").set(queued as f64);
            if received == 0 {
                return;
            }
        }
        if !context.leases.holds(app) {
            // The lease went to another node, which takes the app's pushes from the store.
            tracing::warn!(
                app_id = app,
                dropped = waiting.len(),
                "dispatch lease lost; another node goes on"
            );
            waiting.clear();
            continue;
        }
        // Directory changes announced before these pushes were accepted are in the index.
        context.bus.caught_up().await;
        let started = tokio::time::Instant::now();
        let mut ready = Vec::with_capacity(waiting.len());
        let mut taken = 0;
        for job in &waiting {
            taken += 1;
            let (push_id, prepared) = match job {
                Job::Dispatch(push_id) => (push_id.as_str(), prepare(&context, app, push_id).await),
                Job::Finish(record) => (record.id.as_str(), resume_prepared(&context, app, record)),
            };
            match prepared {
                Ok(Some(prepared)) => ready.push(prepared),
                Ok(None) => {}
                Err(err) => fail(&context, app, push_id, err).await,
            }
            if started.elapsed() >= FAN_OUT_DELAY {
                break;
            }
        }
        waiting.drain(..taken);
        // A push cancelled while the others were prepared left the inbox: it stays unsent.
        ready.retain(|p| context.live.get(app, &p.live.id).is_some());
        if ready.is_empty() {
            continue;
        }
        herald_pause::at("dispatch.fan_out").await;
        let pushes: Vec<_> =
            ready.iter().map(|p| Outgoing { push: &p.live, frames: &p.frames }).collect();
        let deliveries = context.bus.fan_out(app, &pushes).await;
        drop(pushes);
        herald_pause::at("dispatch.finish").await;
        let now = chrono::Utc::now();
        for prepared in &ready {
            // From when the push was due (accepted, or its scheduled time) to every online
            // session of every node having it queued.
            let waited = (now - prepared.record.push_at).num_milliseconds().max(0) as f64 / 1e3;
            metrics::histogram!("herald_push_fanout_seconds").record(waited);
        }
        for (prepared, delivery) in ready.iter().zip(&deliveries) {
            report_dispatch(&context, app, &prepared.live, delivery);
        }
        // A push is marked done only once its counts are in the store: one found dispatching
        // after a crash is finished again, one found done is not.
        context.receipts.flush().await;
        for (prepared, delivery) in ready.into_iter().zip(deliveries) {
            finish(&context, app, prepared, &delivery).await;
        }
    }
}

/// A push that has its seq already (its dispatch was interrupted), ready to go out again.
fn resume_prepared(
    context: &DispatchContext,
    app: AppId,
    record: &PushRecord,
) -> Result<Option<Prepared>, String> {
    let (live, content) = live_from_record(record)?;
    let (live, content) = (Arc::new(live), Arc::new(content));
    context.live.insert(app, live.clone(), content.clone());
    Ok(Some(Prepared { frames: frames(&live, &content), record: record.clone(), live, content }))
}

/// A dispatched push as the store holds it, stored or online-only.
/// Records how long a store operation on a hot path took (`herald_store_operation_seconds`).
pub(crate) fn store_time(operation: &'static str, started: std::time::Instant) {
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!("herald_store_operation_seconds", "operation" => operation).record(seconds);
}

pub fn live_from_record(record: &PushRecord) -> Result<(LivePush, PushContent), String> {
    let seq = record.seq.ok_or_else(|| format!("push {} has no seq", record.id))?;
    let recipients = record.recipients.as_deref().map(deserialize).unwrap_or_default();
    let live = LivePush {
        id: record.id.clone(),
        seq,
        recipients,
        platforms: record.platforms.clone(),
        sent_at: record.started_at.unwrap_or(record.created_at),
        expires_at: record.expires_at,
    };
    Ok((live, PushContent::from_record(record)?))
}

/// Marks a push failed and says so by webhook.
async fn fail(context: &DispatchContext, app: AppId, push_id: &str, err: String) {
    tracing::error!(app_id = app, %push_id, %err, "dispatch failed");
    let store = &context.store;
    let failed =
        until_available(|| store.finish_push(app, push_id, PushStatus::Failed, Some(err.clone())))
            .await;
    if let Err(store_err) = failed {
        tracing::error!(app_id = app, %push_id, %store_err, "cannot mark push failed");
    }
    let event = json!({ "push_id": push_id, "status": "failed", "error": err });
    context.webhooks.emit(app, "push.failed", event).await;
}

/// A push with its seq, in the inbox, ready for the online fan-out.
struct Prepared {
    record: PushRecord,
    live: Arc<LivePush>,
    content: Arc<PushContent>,
    frames: PushFrames,
}

/// Resolves a push's audience, stores it with the next seq and puts it in the inbox; `None`
/// when it was no longer waiting (cancelled meanwhile).
async fn prepare(
    context: &DispatchContext,
    app_id: AppId,
    push_id: &str,
) -> Result<Option<Prepared>, String> {
    herald_pause::at("dispatch.begin").await;
    let store = &context.store;
    let push = until_available(|| store.push(app_id, push_id)).await.map_err(|e| e.to_string())?;
    if push.status != PushStatus::Scheduled {
        return Ok(None);
    }
    let app = until_available(|| store.app(app_id)).await.map_err(|e| e.to_string())?;
    let audience: serde_json::Value =
        serde_json::from_str(&push.audience).map_err(|e| e.to_string())?;
    // The audience was checked when the push was accepted; it can fail here only if the app
    // changed meanwhile (an attribute name removed), and then the push fails with the reason.
    let (_, recipients) = directory::resolve_audience(&context.directory, &app, &audience)
        .await
        .map_err(|e| format!("audience: {e}"))?;
    // In milliseconds, as the store keeps it: every node shows devices the same `sent_at`.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
    let expires_at =
        (push.ttl_secs > 0).then(|| now + chrono::Duration::seconds(i64::from(push.ttl_secs)));
    let dispatch = Dispatch {
        recipients: Some(receipts::serialize(&recipients)),
        targeted: recipients.len(),
        expires_at,
    };
    let content = Arc::new(PushContent::from_record(&push)?);
    let started = std::time::Instant::now();
    let begun = begin_dispatch(store, app_id, push_id, dispatch).await;
    store_time("begin_dispatch", started);
    let Some(seq) = begun? else {
        return Ok(None);
    };
    let live = Arc::new(LivePush {
        id: push.id.clone(),
        seq,
        recipients,
        platforms: push.platforms.clone(),
        sent_at: now,
        expires_at,
    });
    // In the inbox before the fan-out: a device connecting meanwhile finds it either live or
    // pending, and the session drops the duplicate by seq.
    context.live.insert(app_id, live.clone(), content.clone());
    Ok(Some(Prepared { frames: frames(&live, &content), record: push, live, content }))
}

/// Gives the push its seq; `None` when it was cancelled meanwhile. While the store is
/// unreachable the call is repeated; a commit whose answer was lost is found by reading the
/// push back, so the push is neither given a second seq nor left undelivered.
async fn begin_dispatch(
    store: &DynStore,
    app_id: AppId,
    push_id: &str,
    dispatch: Dispatch,
) -> Result<Option<u64>, String> {
    let mut backoff = StoreBackoff::default();
    loop {
        match store.begin_dispatch(app_id, push_id, dispatch.clone()).await {
            Ok(seq) => return Ok(Some(seq)),
            // Cancelled between the read of the push and now.
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(err) if err.is_unavailable() => backoff.wait(&err).await,
            Err(err) => return Err(err.to_string()),
        }
        let push =
            until_available(|| store.push(app_id, push_id)).await.map_err(|e| e.to_string())?;
        match (push.status, push.seq) {
            (PushStatus::Scheduled, _) => continue,
            (PushStatus::Dispatching, Some(seq)) => return Ok(Some(seq)),
            _ => return Ok(None),
        }
    }
}

/// Waits between attempts at a store that does not answer: from 100 ms, doubling to 5 s.
struct StoreBackoff {
    delay: Duration,
}

impl Default for StoreBackoff {
    fn default() -> Self {
        Self { delay: Duration::from_millis(100) }
    }
}

impl StoreBackoff {
    async fn wait(&mut self, err: &StoreError) {
        tracing::warn!(%err, retry_in = ?self.delay, "store unavailable; the dispatch waits for it");
        metrics::counter!("herald_dispatch_store_retries_total").increment(1);
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(5));
    }
}

/// Repeats a store call while the store is unreachable: a push accepted with an id is
/// dispatched once the store is back, never failed because it was away.
pub(crate) async fn until_available<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut backoff = StoreBackoff::default();
    loop {
        match call().await {
            Err(err) if err.is_unavailable() => backoff.wait(&err).await,
            answer => return answer,
        }
    }
}

/// Ends the dispatch of a fanned-out (and reported) push: the devices not reached online get
/// it through the vendor channels, in a task of its own so that vendor latency never holds up
/// the next push's online fan-out; then the push is marked done. Until then it stays
/// dispatching, so that a crash during the vendor sends finishes it again at the next start.
async fn finish(
    context: &Arc<DispatchContext>,
    app_id: AppId,
    prepared: Prepared,
    delivery: &Delivery,
) {
    let Prepared { record, live, content, .. } = prepared;
    metrics::counter!("herald_pushes_dispatched_total").increment(1);
    metrics::counter!("herald_push_frames_sent_total").increment(delivery.total_sent());
    let (push_id, seq) = (live.id.clone(), live.seq);
    tracing::info!(app_id, %push_id, seq, targeted = live.recipients.len(), online_sent = delivery.total_sent(), "push dispatched");
    let summary = json!({
        "push_id": push_id,
        "status": "done",
        "seq": seq,
        "targeted": live.recipients.len(),
        "sent_online": delivery.total_sent(),
    });
    let Some(job) = vendor_job(app_id, &record, &live, &content, delivery) else {
        return mark_done(context, app_id, &push_id, summary).await;
    };
    let context = context.clone();
    context.tasks.clone().spawn(async move {
        let c = &*context;
        let offline = OfflineContext {
            vendors: &c.vendors,
            store: &c.store,
            directory: &c.directory,
            receipts: &c.receipts,
            webhooks: &c.webhooks,
            tasks: &c.tasks,
        };
        notify_offline(offline, job).await;
        // The vendor counts are in the store before the push is marked done.
        c.receipts.flush().await;
        mark_done(&context, app_id, &push_id, summary).await;
    });
}

/// Marks a push done and says so by webhook.
async fn mark_done(
    context: &DispatchContext,
    app_id: AppId,
    push_id: &str,
    mut summary: serde_json::Value,
) {
    let store = &context.store;
    match until_available(|| store.finish_push(app_id, push_id, PushStatus::Done, None)).await {
        // Cancelled during its vendor sends: it left the inbox, and stays cancelled.
        Ok(()) if context.live.get(app_id, push_id).is_none() => {}
        Ok(()) => {
            summary["finished_at"] = json!(Utc::now());
            context.webhooks.emit(app_id, "push.finished", summary).await;
        }
        Err(err) => fail(context, app_id, push_id, err.to_string()).await,
    }
}

/// What the vendor channels are to send of a push: its notification to the devices of the
/// audience not reached online; `None` when it has no notification for them.
fn vendor_job(
    app: AppId,
    record: &PushRecord,
    push: &LivePush,
    content: &PushContent,
    delivery: &Delivery,
) -> Option<OfflinePush> {
    let (Some(notification), true, true) =
        (&content.notification, record.vendor_push, push.expires_at.is_some())
    else {
        return None;
    };
    Some(OfflinePush {
        app,
        push_id: push.id.clone(),
        push: herald_vendor::VendorPush::new(
            push.id.clone(),
            notification.clone(),
            record.ttl_secs,
        ),
        offline: &push.recipients - &delivery.reached,
        platforms: push.platforms.clone(),
        expires_at: push.expires_at,
    })
}

/// Per platform: accounts targeted, frames sent online, accounts left to the offline inbox.
fn report_dispatch(context: &DispatchContext, app: AppId, push: &LivePush, delivery: &Delivery) {
    let Some(dir) = context.directory.cached(app) else { return };
    let index = dir.index();
    let offline: RoaringBitmap = &push.recipients - &delivery.reached;
    let targeted = index.platform_split(&push.recipients);
    let stored =
        if push.expires_at.is_some() { index.platform_split(&offline) } else { BTreeMap::new() };
    let platforms = targeted
        .into_iter()
        .filter(|(platform, _)| push.admits(platform))
        .map(|(platform, targeted)| {
            let sent = delivery.sent.get(&platform).copied().unwrap_or_default();
            let stored = stored.get(&platform).copied().unwrap_or_default();
            (platform, (targeted, sent, stored))
        })
        .collect();
    context.receipts.dispatched(DispatchCounts { app, push_id: push.id.clone(), platforms });
}

/// The push encoded once per platform variant.
pub fn frames(push: &LivePush, content: &PushContent) -> PushFrames {
    let mut frames = PushFrames::new(&push.frame_for(content, ""));
    if content.notification.is_some() {
        for platform in OVERRIDDEN_PLATFORMS {
            frames = frames.with_platform(platform, &push.frame_for(content, platform));
        }
    }
    if let Some(only) = &push.platforms {
        frames = frames.only_platforms(only.iter().cloned());
    }
    frames
}
