//! Taking and keeping dispatch leases.
//!
//! A lease is a PostgreSQL session advisory lock (`Store::take_dispatch_lease`), not a
//! JetStream key with a TTL: it lives with the state it guards, a node killed with `kill -9`
//! loses its session and so its leases the moment the kernel closes the socket, and a NATS
//! outage (which stops no dispatch: the store is what a dispatch needs) moves no lease. Each
//! node tries every second to take the leases no one holds; the node that gets one finishes
//! what the previous holder left mid-dispatch and queues the app's waiting pushes. Seqs stay
//! gapless and unique whoever dispatches: they are assigned in the store's transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_core::push::PushStatus;
use herald_store::DynStore;

use crate::dispatch::{Dispatcher, Leases};
use crate::tasks::Tasks;

/// How often leases are renewed and free ones sought.
const LEASE_TICK: Duration = Duration::from_secs(1);

/// Every this many ticks the held apps' due pushes are queued again, in case an event that
/// handed one over was lost (a push queued twice goes out once).
const SWEEP_TICKS: u32 = 5;

/// Keeps this node's leases and takes free ones, every [`LEASE_TICK`] until shutdown.
pub fn spawn_lease_keeper(
    store: DynStore,
    leases: Arc<Leases>,
    dispatcher: Dispatcher,
    tasks: &Tasks,
) {
    let stopping = tasks.stopping();
    tasks.spawn(async move {
        tokio::pin!(stopping);
        let mut tick = tokio::time::interval(LEASE_TICK);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                () = &mut stopping => return,
                _ = tick.tick() => {}
            }
            ticks = ticks.wrapping_add(1);
            keep(&store, &leases, &dispatcher).await;
            if ticks % SWEEP_TICKS == 0 {
                sweep(&store, &leases, &dispatcher).await;
            }
        }
    });
}

async fn keep(store: &DynStore, leases: &Leases, dispatcher: &Dispatcher) {
    match store.renew_dispatch_leases().await {
        Ok(true) => {}
        Ok(false) => {
            if !leases.held().is_empty() {
                tracing::warn!("the lease session ended; every dispatch lease is lost");
            }
            leases.clear();
        }
        Err(err) => {
            tracing::warn!(%err, "cannot renew dispatch leases");
            leases.clear();
            return;
        }
    }
    let apps = match store.apps().await {
        Ok(apps) => apps,
        Err(err) => return tracing::warn!(%err, "cannot list apps for their leases"),
    };
    for app in apps {
        if leases.holds(app.id) {
            continue;
        }
        match store.take_dispatch_lease(app.id).await {
            Ok(true) => {
                leases.insert(app.id);
                tracing::info!(app_id = app.id, "dispatch lease taken");
                metrics::counter!("herald_cluster_leases_taken_total").increment(1);
                if let Err(err) = dispatcher.take_over(app.id).await {
                    tracing::error!(app_id = app.id, %err, "cannot take over the app's pushes");
                }
            }
            Ok(false) => {}
            Err(err) => return tracing::warn!(%err, "cannot take a dispatch lease"),
        }
    }
}

async fn sweep(store: &DynStore, leases: &Leases, dispatcher: &Dispatcher) {
    let Ok(waiting) = store.pushes_with_status(PushStatus::Scheduled).await else { return };
    let now = Utc::now();
    for push in waiting.iter().filter(|p| p.push_at <= now && leases.holds(p.app)) {
        dispatcher.submit(push).await;
    }
}
