//! Each node applies the cluster's events, in the stream's order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::Peekable;
use futures_util::{FutureExt, StreamExt};
use herald_bus::{Event, EventStream};
use herald_core::AppId;
use herald_gateway::{Delivery, PushFrames, Registry};
use herald_store::{DynStore, PushRecord};

use super::Cluster;
use crate::directory::{self, Directory};
use crate::dispatch::{
    frames, live_from_record, recall_frame, until_available, Dispatcher, Leases, LiveInbox,
    LivePush,
};
use crate::tasks::Tasks;
use crate::AppCaches;

/// A push announced as dispatched, with the node that waits for reports on it.
struct Dispatched {
    seq: u64,
    push_id: String,
    node: String,
}

/// The event read, followed by those already received behind it (up to [`BATCH`]); stops
/// before an error, which the caller then reads on its own.
fn take_ready(first: (u64, Event), events: &mut Events) -> Vec<(u64, Event)> {
    let mut batch = vec![first];
    while batch.len() < BATCH {
        match std::pin::Pin::new(&mut *events).next_if(|item| item.is_ok()).now_or_never() {
            Some(Some(Ok(event))) => batch.push(event),
            _ => break,
        }
    }
    batch
}

/// How long the event stream may stay quiet before the node asks NATS whether it missed
/// something.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// Most events already received that are applied together: pushes among them reach each
/// connection with one wake-up, as on a single node.
const BATCH: usize = 32;

type Events = Peekable<EventStream>;

/// What a node needs to apply events.
pub struct Follower {
    pub cluster: Arc<Cluster>,
    pub store: DynStore,
    pub directory: Arc<Directory>,
    pub live: Arc<LiveInbox>,
    pub registry: Arc<Registry>,
    pub dispatcher: Dispatcher,
    pub leases: Arc<Leases>,
    pub caches: AppCaches,
    pub vendors: crate::vendors::Vendors,
    /// Per app, the seq of the last push this node delivered (or found in the store at start).
    pub delivered: HashMap<AppId, u64>,
}

impl Follower {
    /// Reads the stream from after `sequence` and applies every event, for as long as the
    /// process runs. A reading that stalls (the consumer did not come back after a NATS
    /// restart) or fails starts again from the last applied event.
    pub fn spawn(mut self, mut sequence: u64, tasks: &Tasks) {
        let stopping = tasks.stopping();
        tasks.spawn(async move {
            tokio::pin!(stopping);
            loop {
                let follow = async {
                    let mut events = match self.cluster.bus().events(sequence).await {
                        Ok(events) => events.peekable(),
                        Err(err) => {
                            tracing::warn!(%err, "cannot read the cluster's events; trying again");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            return sequence;
                        }
                    };
                    self.follow(&mut events, sequence).await
                };
                // Stopping drops the reading wherever it is: a node that starts again rebuilds
                // from the store and reads the stream from then on.
                tokio::select! {
                    next = follow => sequence = next,
                    () = &mut stopping => return,
                }
            }
        });
    }

    /// Applies events until the reading ends, fails or stalls; returns where to read again.
    async fn follow(&mut self, events: &mut Events, mut sequence: u64) -> u64 {
        loop {
            match tokio::time::timeout(STALL_CHECK, events.next()).await {
                Ok(Some(Ok(first))) => {
                    let batch = take_ready(first, events);
                    sequence = self.apply_all(batch).await;
                }
                Ok(Some(Err(herald_bus::BusError::Undecodable { sequence: seq, reason }))) => {
                    tracing::warn!(seq, %reason, "cluster event skipped");
                    sequence = seq;
                    self.cluster.set_applied(seq);
                }
                Ok(Some(Err(err))) => {
                    tracing::warn!(%err, "reading the cluster's events failed; reading again");
                    return sequence;
                }
                Ok(None) => {
                    tracing::warn!("the cluster's event stream ended; reading it again");
                    return sequence;
                }
                Err(_) => match self.cluster.bus().last_sequence().await {
                    Ok(last) if last > sequence => {
                        tracing::warn!(
                            last,
                            sequence,
                            "the cluster's events stalled; reading again"
                        );
                        return sequence;
                    }
                    Ok(last) if last < sequence => {
                        // NATS came back without the stream: a new one counts from 1. Pushes
                        // announced in the lost part are found by the seq gap.
                        tracing::warn!(
                            last,
                            sequence,
                            "the cluster's event stream is new; reading it from its start"
                        );
                        self.cluster.restart_applied(0);
                        return 0;
                    }
                    _ => {}
                },
            }
        }
    }

    /// Applies events in order, consecutive pushes of one app together; returns the sequence
    /// of the last.
    async fn apply_all(&mut self, batch: Vec<(u64, Event)>) -> u64 {
        let mut last = 0;
        let mut run: Vec<Dispatched> = Vec::new();
        let mut run_app = None;
        for (sequence, event) in batch {
            if let Event::Dispatched { app, seq, push_id, node } = event {
                if run_app.is_some_and(|a| a != app) {
                    self.dispatched_run(&mut run_app, &mut run, last).await;
                }
                run_app = Some(app);
                run.push(Dispatched { seq, push_id, node });
            } else {
                self.dispatched_run(&mut run_app, &mut run, last).await;
                self.apply(event).await;
                self.cluster.set_applied(sequence);
            }
            last = sequence;
        }
        self.dispatched_run(&mut run_app, &mut run, last).await;
        last
    }

    /// Delivers the run of pushes gathered so far, if any; `sequence` is the last event's.
    async fn dispatched_run(
        &mut self,
        app: &mut Option<AppId>,
        run: &mut Vec<Dispatched>,
        sequence: u64,
    ) {
        if let Some(app) = app.take() {
            let run = std::mem::take(run);
            self.dispatched(app, &run).await;
            self.cluster.set_applied(sequence);
        }
    }

    async fn apply(&mut self, event: Event) {
        match event {
            Event::Submitted { app, push_id } => self.submitted(app, &push_id).await,
            Event::Dispatched { app, seq, push_id, node } => {
                self.dispatched(app, &[Dispatched { seq, push_id, node }]).await;
            }
            Event::Cancelled { app, push_id } => {
                self.live.remove(app, &push_id);
            }
            Event::Recalled { app, push_id, seq, node } => {
                self.recalled(app, &push_id, seq, &node).await;
            }
            Event::AccountsChanged { app, accounts } => {
                let directory = &self.directory;
                let reread = until_available(|| directory.reread_accounts(app, &accounts)).await;
                if let Err(err) = reread {
                    tracing::error!(app_id = app, %err, "accounts changed elsewhere not read back");
                }
            }
            Event::AppChanged { app } => self.app_changed(app).await,
            Event::DeviceChanged { app, device_id } => {
                directory::forget_login(&self.directory, app, &device_id);
            }
        }
    }

    /// Another node changed an app: what this node cached of it goes; a deleted app leaves
    /// the index and the inbox.
    async fn app_changed(&mut self, app: AppId) {
        self.caches.forget(app);
        if let Err(err) = until_available(|| self.directory.reread_app(app)).await {
            tracing::error!(app_id = app, %err, "app changed elsewhere not read back");
        }
        // Vendor credentials set or deleted on another node: this one sends (and welcomes
        // browsers with the Web Push key) as the store says.
        if let Err(err) = until_available(|| self.vendors.reload_app(&self.store, app)).await {
            tracing::error!(app_id = app, %err, "vendor credentials changed elsewhere not read back");
        }
        if let Err(herald_store::StoreError::NotFound { .. }) = self.store.app(app).await {
            self.live.forget_app(app);
            self.delivered.remove(&app);
        }
    }

    /// Another node accepted a push of an app this node dispatches.
    async fn submitted(&self, app: AppId, push_id: &str) {
        if !self.leases.holds(app) {
            return;
        }
        match until_available(|| self.store.push(app, push_id)).await {
            Ok(push) => self.dispatcher.submit(&push).await,
            Err(err) => tracing::error!(app_id = app, %push_id, %err, "submitted push not found"),
        }
    }

    /// Delivers dispatched pushes of one app (in seq order) to this node's sessions, after any
    /// earlier one this node missed, and reports each to the node that dispatched it.
    async fn dispatched(&mut self, app: AppId, run: &[Dispatched]) {
        let last = self.last_delivered(app).await;
        let newest = run.iter().map(|d| d.seq).max().unwrap_or_default();
        let mut reached: HashMap<&str, Delivery> = HashMap::new();
        if newest > last {
            if run.iter().all(|d| d.seq != last + 1) {
                tracing::info!(
                    app_id = app,
                    after = last,
                    upto = newest,
                    "seq gap: reading the missed pushes from the store"
                );
                metrics::counter!("herald_cluster_gap_reads_total").increment(1);
            }
            let store = &self.store;
            let records = match until_available(|| store.pushes_by_seq(app, last, newest)).await {
                Ok(records) => records,
                Err(err) => {
                    tracing::error!(app_id = app, %err, "pushes not read back; delivering what is known");
                    Vec::new()
                }
            };
            let prepared: Vec<_> = records.iter().filter_map(|r| self.prepare(app, r)).collect();
            let pushes: Vec<_> = prepared.iter().map(|(live, f)| (&live.recipients, f)).collect();
            let deliveries = self.registry.deliver_all(app, &pushes);
            for ((live, _), delivery) in prepared.iter().zip(deliveries) {
                if let Some(d) = run.iter().find(|d| d.push_id == live.id) {
                    reached.insert(d.push_id.as_str(), delivery);
                }
            }
            self.delivered.insert(app, newest);
        }
        // A push delivered already (or in the store when this node started) is reported as
        // reaching no one here: devices have it or fetch it from the inbox.
        for d in run {
            let delivery = reached.remove(d.push_id.as_str()).unwrap_or_default();
            self.cluster.report(&d.node, app, &d.push_id, false, &delivery).await;
        }
    }

    /// An app unknown here was created after this node started: its first push has seq 1.
    async fn last_delivered(&mut self, app: AppId) -> u64 {
        self.delivered.get(&app).copied().unwrap_or_default()
    }

    /// Puts a push in this node's inbox, with the frames its sessions get; `None` for a push
    /// not to be handed out (cancelled, recalled, unreadable).
    fn prepare(&self, app: AppId, record: &PushRecord) -> Option<(Arc<LivePush>, PushFrames)> {
        if record.recalled_at.is_some() || record.status == herald_core::push::PushStatus::Cancelled
        {
            return None;
        }
        let seq = record.seq.unwrap_or_default();
        let unreadable = |err: String| {
            tracing::error!(app_id = app, push_id = %record.id, %err, "stored push unreadable");
        };
        let (live, content) = match self.live.get(app, &record.id) {
            Some(live) => (live, None),
            None => {
                let (live, content) = live_from_record(record).map_err(unreadable).ok()?;
                let (live, content) = (Arc::new(live), Arc::new(content));
                self.live.insert(app, live.clone(), content.clone());
                (live, Some(content))
            }
        };
        let push_frames = match self.cluster.take_outgoing(app, seq) {
            Some(frames) => frames,
            None => {
                let content = match content {
                    Some(content) => content,
                    None => Arc::new(live_from_record(record).map_err(unreadable).ok()?.1),
                };
                frames(&live, &content)
            }
        };
        Some((live, push_frames))
    }

    async fn recalled(&self, app: AppId, push_id: &str, seq: u64, node: &str) {
        let recipients = match self.live.remove(app, push_id) {
            Some(live) => live.recipients.clone(),
            None => match until_available(|| self.store.push(app, push_id)).await {
                Ok(record) => {
                    live_from_record(&record).map(|(l, _)| l.recipients).unwrap_or_default()
                }
                Err(_) => Default::default(),
            },
        };
        let delivery = self.registry.recall(app, &recipients, &recall_frame(push_id, seq));
        self.cluster.report(node, app, push_id, true, &delivery).await;
    }
}
