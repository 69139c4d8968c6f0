//! Cluster mode: several herald nodes on one PostgreSQL store, NATS JetStream between them.
//!
//! - **Dispatch leases** (`leases.rs`): one node dispatches an app at a time; the lease is a
//!   PostgreSQL session advisory lock, so it is free the moment its holder's session ends.
//! - **Fan-out** ([`Cluster`] as the dispatcher's [`Bus`]): a dispatched push is announced on the
//!   stream with its seq; every node delivers it to its own sessions and reports back whom it
//!   reached, which is what the dispatcher reports and hands to APNs / FCM.
//! - **Following the stream** (`follow.rs`): each node applies every event in order; a node that
//!   sees a seq gap reads the missing pushes from the store before it delivers later ones.
//! - **Heartbeats**: each node says every second who it is and how far it has read; the list is
//!   what `GET /v1/cluster` shows and whose reports a fan-out waits for.

mod follow;
mod leases;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_bus::{Event, NatsBus, NodeInfo, Report};
use herald_core::AppId;
use herald_gateway::{Delivery, PushFrames, Registry};
use herald_index::RoaringBitmap;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::directory::{ChangeFeed, DirectoryChange};
use crate::dispatch::{Bus, Leases, Outgoing};
use crate::tasks::Tasks;

pub use follow::Follower;
pub use leases::spawn_lease_keeper;

/// Longest a fan-out waits for the other nodes' delivery reports; a node silent this long is
/// treated as having reached no one (its devices then get the vendor notification too).
const REPORT_WAIT: Duration = Duration::from_secs(3);

/// How often a node says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Longest a presence question waits for the nodes' answers (a node that died since the last
/// heartbeat never answers).
const PRESENCE_WAIT: Duration = Duration::from_secs(1);

/// Longest the dispatcher waits for this node to apply earlier directory changes.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// This node's part of the cluster.
pub struct Cluster {
    bus: NatsBus,
    listen: String,
    started_at: DateTime<Utc>,
    registry: Arc<Registry>,
    leases: Arc<Leases>,
    /// The last stream sequence this node has applied.
    applied: watch::Sender<u64>,
    /// The nodes alive at the last heartbeat.
    nodes: RwLock<Vec<NodeInfo>>,
    /// Fan-outs and recalls waiting for reports, by push id and kind.
    pending: Mutex<HashMap<(String, bool), Pending>>,
    /// Frames of pushes this node dispatches, for its own delivery of them.
    outgoing: Mutex<HashMap<(AppId, u64), PushFrames>>,
    /// Where heartbeats, report reading and submits run, so shutdown stops and waits for them.
    tasks: Tasks,
}

struct Pending {
    waiting_for: HashSet<String>,
    delivery: Delivery,
    done: Option<oneshot::Sender<Delivery>>,
}

impl Cluster {
    pub fn new(
        bus: NatsBus,
        listen: String,
        registry: Arc<Registry>,
        leases: Arc<Leases>,
        applied: u64,
        tasks: Tasks,
    ) -> Arc<Self> {
        Arc::new(Self {
            tasks,
            bus,
            listen,
            started_at: Utc::now(),
            registry,
            leases,
            applied: watch::channel(applied).0,
            nodes: RwLock::default(),
            pending: Mutex::default(),
            outgoing: Mutex::default(),
        })
    }

    pub fn node(&self) -> &str {
        self.bus.node()
    }

    pub(crate) fn bus(&self) -> &NatsBus {
        &self.bus
    }

    /// Publishes an event, trying again while NATS does not answer.
    async fn publish(&self, event: &Event) -> u64 {
        publish_until_stored(&self.bus, event).await
    }

    /// Waits for every alive node's report on a push (or recall), merged.
    async fn collect(
        &self,
        push_id: &str,
        recall: bool,
        ready: oneshot::Receiver<Delivery>,
    ) -> Delivery {
        let key = (push_id.to_owned(), recall);
        match tokio::time::timeout(REPORT_WAIT, ready).await {
            Ok(Ok(delivery)) => delivery,
            _ => {
                let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                let missing = pending.as_ref().map(|p| p.waiting_for.len()).unwrap_or_default();
                tracing::warn!(%push_id, missing, "not every node reported its deliveries in time");
                metrics::counter!("herald_cluster_report_timeouts_total").increment(1);
                pending.map(|p| p.delivery).unwrap_or_default()
            }
        }
    }

    /// Expects reports from the nodes alive now, this one included.
    fn expect(&self, push_id: &str, recall: bool) -> oneshot::Receiver<Delivery> {
        let (done, ready) = oneshot::channel();
        let mut waiting_for: HashSet<String> = self
            .nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|n| n.node.clone())
            .collect();
        waiting_for.insert(self.node().to_owned());
        let pending = Pending { waiting_for, delivery: Delivery::default(), done: Some(done) };
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((push_id.to_owned(), recall), pending);
        ready
    }

    /// Merges one node's report into the fan-out waiting for it.
    fn received(&self, report: Report) {
        let reached = match RoaringBitmap::deserialize_from(report.reached.as_slice()) {
            Ok(reached) => reached,
            Err(err) => {
                tracing::error!(node = %report.node, %err, "undecodable delivery report");
                return;
            }
        };
        let key = (report.push_id, report.recall);
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let Some(waiting) = pending.get_mut(&key) else { return };
        waiting.delivery.reached |= reached;
        for (platform, sent) in report.sent {
            *waiting.delivery.sent.entry(platform).or_default() += sent;
        }
        waiting.waiting_for.remove(&report.node);
        if waiting.waiting_for.is_empty() {
            if let Some(mut done) = pending.remove(&key) {
                if let Some(tx) = done.done.take() {
                    let _ = tx.send(done.delivery);
                }
            }
        }
    }

    /// Tells the dispatching node what this node delivered.
    async fn report(
        &self,
        to_node: &str,
        app: AppId,
        push_id: &str,
        recall: bool,
        delivery: &Delivery,
    ) {
        let mut reached = Vec::new();
        if let Err(err) = delivery.reached.serialize_into(&mut reached) {
            tracing::error!(%err, "cannot encode a delivery report");
            return;
        }
        let report = Report {
            app,
            push_id: push_id.to_owned(),
            node: self.node().to_owned(),
            recall,
            reached,
            sent: delivery.sent.clone(),
        };
        if let Err(err) = self.bus.report(to_node, &report).await {
            tracing::warn!(%err, %to_node, "delivery report not sent");
        }
    }

    /// The frames this node made for a push it dispatches, if it does.
    fn take_outgoing(&self, app: AppId, seq: u64) -> Option<PushFrames> {
        self.outgoing.lock().unwrap_or_else(|p| p.into_inner()).remove(&(app, seq))
    }

    /// Receives reports and sends heartbeats until shutdown.
    pub async fn spawn_background(self: &Arc<Self>) -> Result<(), herald_bus::BusError> {
        let mut reports = self.bus.reports().await?;
        let (cluster, stopping) = (self.clone(), self.tasks.stopping());
        self.tasks.spawn(async move {
            use futures_util::StreamExt;
            tokio::pin!(stopping);
            loop {
                let report = tokio::select! {
                    () = &mut stopping => return,
                    report = reports.next() => report,
                };
                match report {
                    Some(Ok(report)) => cluster.received(report),
                    Some(Err(err)) => tracing::warn!(%err, "delivery report skipped"),
                    None => return,
                }
            }
        });
        let mut questions = self.bus.presence_questions().await?;
        let (cluster, stopping) = (self.clone(), self.tasks.stopping());
        self.tasks.spawn(async move {
            use futures_util::StreamExt;
            tokio::pin!(stopping);
            loop {
                let question = tokio::select! {
                    () = &mut stopping => return,
                    question = questions.next() => question,
                };
                match question {
                    Some(Ok((question, reply))) => {
                        let here = cluster.registry.is_online(question.app, question.account);
                        if let Err(err) = cluster.bus.answer(reply, here).await {
                            tracing::warn!(%err, "presence question not answered");
                        }
                    }
                    Some(Err(err)) => tracing::warn!(%err, "presence question skipped"),
                    None => return,
                }
            }
        });
        let (cluster, stopping) = (self.clone(), self.tasks.stopping());
        self.tasks.spawn(async move {
            tokio::pin!(stopping);
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    () = &mut stopping => return,
                    _ = tick.tick() => cluster.heartbeat().await,
                }
            }
        });
        Ok(())
    }

    async fn heartbeat(&self) {
        let applied = *self.applied.borrow();
        let last = self.bus.last_sequence().await.unwrap_or(applied);
        let lag = last.saturating_sub(applied);
        metrics::gauge!("herald_cluster_bus_lag_events").set(lag as f64);
        metrics::gauge!("herald_cluster_leases").set(self.leases.held().len() as f64);
        let info = NodeInfo {
            node: self.node().to_owned(),
            listen: self.listen.clone(),
            started_at: self.started_at,
            seen_at: Utc::now(),
            connections: self.registry.online_count(),
            leases: self.leases.held(),
            applied,
            lag,
        };
        if let Err(err) = self.bus.heartbeat(&info).await {
            tracing::warn!(%err, "heartbeat not sent");
            return;
        }
        match self.bus.nodes().await {
            Ok(nodes) => {
                metrics::gauge!("herald_cluster_nodes").set(nodes.len() as f64);
                *self.nodes.write().unwrap_or_else(|p| p.into_inner()) = nodes;
            }
            Err(err) => tracing::warn!(%err, "cannot list the cluster's nodes"),
        }
    }

    /// Whether a device of the account is connected to any node: this one first, then every
    /// node alive is asked.
    pub async fn online_anywhere(
        &self,
        app: AppId,
        account: u32,
    ) -> Result<bool, herald_bus::BusError> {
        if self.registry.is_online(app, account) {
            return Ok(true);
        }
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner()).len().max(1);
        let question = herald_bus::PresenceQuestion { app, account };
        self.bus.online_anywhere(question, nodes, PRESENCE_WAIT).await
    }

    /// What `GET /v1/cluster` shows.
    pub async fn overview(&self) -> ClusterOverview {
        let nodes = match self.bus.nodes().await {
            Ok(nodes) => nodes,
            Err(_) => self.nodes.read().unwrap_or_else(|p| p.into_inner()).clone(),
        };
        let leases = nodes
            .iter()
            .flat_map(|n| n.leases.iter().map(|app| (app.to_string(), n.node.clone())))
            .collect();
        ClusterOverview {
            node: self.node().to_owned(),
            bus_connected: self.bus.connected(),
            nodes,
            leases,
        }
    }

    /// Leaves the node list at once on a clean shutdown.
    pub async fn leave(&self) {
        if let Err(err) = self.bus.leave().await {
            tracing::warn!(%err, "cannot take this node off the cluster's list");
        }
    }

    /// The stream was created anew: what was applied counts from its new start.
    pub(crate) fn restart_applied(&self, sequence: u64) {
        self.applied.send_replace(sequence);
    }

    pub(crate) fn set_applied(&self, sequence: u64) {
        self.applied.send_if_modified(|applied| {
            let newer = sequence > *applied;
            if newer {
                *applied = sequence;
            }
            newer
        });
    }
}

/// The cluster as one node sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterOverview {
    /// The node that answered.
    pub node: String,
    pub bus_connected: bool,
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<NodeInfo>,
    /// App id to the node holding its dispatch lease.
    pub leases: BTreeMap<String, String>,
}

/// Publishes an event, trying again while NATS does not answer: what is published stands for
/// something already committed to the store.
async fn publish_until_stored(bus: &NatsBus, event: &Event) -> u64 {
    let mut delay = Duration::from_millis(100);
    loop {
        match bus.publish(event).await {
            Ok(sequence) => return sequence,
            Err(err) => {
                tracing::warn!(%err, retry_in = ?delay, "bus unavailable; the event waits for it");
                metrics::counter!("herald_cluster_publish_retries_total").increment(1);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[async_trait]
impl Bus for Cluster {
    async fn fan_out(&self, app: AppId, pushes: &[Outgoing<'_>]) -> Vec<Delivery> {
        let mut waiting = Vec::with_capacity(pushes.len());
        for outgoing in pushes {
            let push = outgoing.push;
            let ready = self.expect(&push.id, false);
            self.outgoing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((app, push.seq), outgoing.frames.clone());
            let event = Event::Dispatched {
                app,
                seq: push.seq,
                push_id: push.id.clone(),
                node: self.node().to_owned(),
            };
            self.publish(&event).await;
            waiting.push((push.id.as_str(), ready));
        }
        let mut deliveries = Vec::with_capacity(waiting.len());
        for (push_id, ready) in waiting {
            deliveries.push(self.collect(push_id, false, ready).await);
        }
        deliveries
    }

    async fn recall(
        &self,
        app: AppId,
        push_id: &str,
        seq: u64,
        _recipients: &RoaringBitmap,
    ) -> Delivery {
        let ready = self.expect(push_id, true);
        let event =
            Event::Recalled { app, push_id: push_id.to_owned(), seq, node: self.node().to_owned() };
        self.publish(&event).await;
        self.collect(push_id, true, ready).await
    }

    async fn cancelled(&self, app: AppId, push_id: &str) {
        self.publish(&Event::Cancelled { app, push_id: push_id.to_owned() }).await;
    }

    async fn submit(&self, app: AppId, push_id: &str) {
        // Not awaited: the push is committed and the API answers now; while NATS is away the
        // lease holder's sweep of the store queues it anyway.
        let (bus, event) =
            (self.bus.clone(), Event::Submitted { app, push_id: push_id.to_owned() });
        self.tasks.spawn(async move { publish_until_stored(&bus, &event).await });
    }

    async fn caught_up(&self) {
        let last = match self.bus.last_sequence().await {
            Ok(last) => last,
            Err(err) => {
                tracing::warn!(%err, "cannot ask the bus how far it is; dispatching on the index as it is");
                return;
            }
        };
        let mut applied = self.applied.subscribe();
        let caught_up = tokio::time::timeout(CATCH_UP_WAIT, applied.wait_for(|a| *a >= last));
        if caught_up.await.is_err() {
            tracing::warn!(
                last,
                applied = *self.applied.borrow(),
                "directory changes still being applied; dispatching on the index as it is"
            );
        }
    }
}

#[async_trait]
impl ChangeFeed for Cluster {
    async fn announce(&self, change: DirectoryChange) -> Result<(), String> {
        let event = match change {
            DirectoryChange::Accounts { app, accounts } => Event::AccountsChanged { app, accounts },
            DirectoryChange::App { app } => Event::AppChanged { app },
            DirectoryChange::Device { app, device_id } => Event::DeviceChanged { app, device_id },
        };
        self.bus.publish(&event).await.map(|_| ()).map_err(|err| err.to_string())
    }
}
