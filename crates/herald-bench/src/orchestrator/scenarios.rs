//! The measured scenarios, shared by herald and the MQTT peer where they apply: one message to
//! all connections, messages back to back, and (herald only) the reconnect storm.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::bail;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::cluster::{lease_holder, LocalCluster};
use super::report::{Burst, CpuUse, Failover, OneRun, Storm};
use super::server::{Api, AppCreds};
use super::workers::Workers;
use super::FanoutArgs;
use crate::clock::now_us;
use crate::control::{Command, RoundStats};

/// Sending one message; resolves to the send stamp (µs) once the server or broker took it.
pub type SendFuture = Pin<Box<dyn Future<Output = anyhow::Result<u64>> + Send>>;
/// Sends message number `n`.
pub type Publish = Box<dyn Fn(u64) -> SendFuture + Send + Sync>;

/// One message to every connection: latency of each delivery, time until the last one.
pub async fn one_to_all(
    workers: &mut Workers,
    server: &[u32],
    send: &Publish,
    n: u64,
    timeout: Duration,
) -> anyhow::Result<OneRun> {
    workers.round(Some(1)).await?;
    let cpu = CpuUse::start(server, workers);
    let stamp = send(n).await?;
    let (stats, complete) = workers.done(timeout).await?;
    let cpu = cpu.finish(server, workers, stats.frames);
    let time_to_all_us =
        stats.done_at_us.filter(|_| complete).map(|done| done.saturating_sub(stamp));
    Ok(OneRun::new(stats, time_to_all_us, complete, cpu))
}

/// Messages back to back for `args.burst_secs`, at most `args.window` on their way and
/// `args.in_flight` requests open at once; then waits until every connection has them all.
pub async fn burst(
    workers: &mut Workers,
    server: &[u32],
    send: &Publish,
    args: &FanoutArgs,
    timeout: Duration,
) -> anyhow::Result<Burst> {
    workers.round(None).await?;
    let cpu = CpuUse::start(server, workers);
    let start_us = now_us();
    let end = Instant::now() + Duration::from_secs_f64(args.burst_secs.max(0.1));
    let window = u64::from(args.window.max(1));
    let in_flight = args.in_flight.max(1) as usize;
    let mut tasks: JoinSet<anyhow::Result<u64>> = JoinSet::new();
    let mut sent = 0u64;
    let mut failures = Failures::default();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Failed sends never arrive, so they do not hold the window.
        let arrived = u64::from(workers.min_progress());
        while tasks.len() < in_flight && sent - failures.count < arrived + window {
            sent += 1;
            tasks.spawn(send(sent));
        }
        let tick = (now + Duration::from_millis(20)).min(end);
        tokio::select! {
            Some(result) = tasks.join_next(), if !tasks.is_empty() => failures.record(result),
            _ = workers.next(tick) => {}
        }
    }
    while let Some(result) = tasks.join_next().await {
        failures.record(result);
    }
    let (failed, first_error) = (failures.count, failures.first);
    let accepted = sent - failed;
    let expect = u32::try_from(accepted).unwrap_or(u32::MAX);
    workers.send_all(&Command::Expect { count: expect }).await?;
    let (stats, complete) = workers.done(timeout).await?;
    let cpu = cpu.finish(server, workers, stats.frames);
    Ok(Burst::new(stats, start_us, sent, failed, first_error, complete, cpu))
}

/// Every client disconnects; three stored pushes are sent while they are away; all reconnect
/// at once (each with `last_seq` = what it acked) and must receive exactly those three.
#[allow(clippy::too_many_arguments)]
pub async fn reconnect_storm(
    workers: &mut Workers,
    server: &[u32],
    api: &Api,
    app: &AppCreds,
    shares: &[(u64, u32)],
    connect: &dyn Fn(usize, u64, u32, bool, u32) -> Command,
    pad: &str,
    timeout: Duration,
) -> anyhow::Result<Storm> {
    const STORED: u32 = 3;
    let closed = workers.disconnect().await?;
    // The server unregisters sessions as it sees the closes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut ids = Vec::new();
    for k in 0..STORED {
        let (id, _) = api.push_all(app, 1_000_000 + u64::from(k), Some(300), pad).await?;
        ids.push(id);
    }
    for id in &ids {
        api.wait_dispatched(app, id, Duration::from_secs(60)).await?;
    }
    workers.round(Some(STORED)).await?;
    let cpu = CpuUse::start(server, workers);
    let start_us = now_us();
    for (index, &(first, count)) in shares.iter().enumerate() {
        // No handshake limit: every client of the worker connects at once.
        workers.send(index, &connect(index, first, count, true, count.max(1))).await?;
    }
    let (connected, stats, complete) = workers.connected_and_done(timeout).await?;
    // Per reconnect: a login, its three pushes and the TCP and WebSocket handshakes.
    let cpu = cpu.finish(server, workers, u64::from(connected.ok));
    let time_us = stats.done_at_us.filter(|_| complete).map(|done| done.saturating_sub(start_us));
    // A short grace: a client that got a fourth push (a duplicate, an older push) shows now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: RoundStats = workers.stats().await?;
    if after.members == 0 {
        bail!("no client took part in the reconnect storm");
    }
    Ok(Storm::new(closed, connected, after, time_us, complete, STORED, cpu))
}

/// One node is killed (`kill -9`, the node holding the app's dispatch lease: the worst case)
/// and a push to all is sent to a survivor at once; the killed node's clients reconnect to
/// the survivors (as through a load balancer), with `last_seq` = what they acked. Measures
/// the time from the kill until every client, wherever it is now, has that push.
#[allow(clippy::too_many_arguments)]
pub async fn failover(
    workers: &mut Workers,
    cluster: &mut LocalCluster,
    apis: &[Api],
    admin_token: &str,
    app: &AppCreds,
    shares: &[(u64, u32)],
    connect: &dyn Fn(usize, u64, u32, bool, u32) -> Command,
    pad: &str,
    timeout: Duration,
) -> anyhow::Result<Failover> {
    let nodes = apis.len();
    let victim = lease_holder(&apis[0], admin_token, app, None).await?;
    let survivors: Vec<usize> = (0..nodes).filter(|&i| i != victim).collect();
    let orphans: Vec<usize> = (0..shares.len()).filter(|w| w % nodes == victim).collect();
    let orphaned: u32 = orphans.iter().map(|&w| shares[w].1).sum();
    // A round without an expectation counts the connections that drop.
    workers.round(None).await?;
    let start_us = now_us();
    cluster.kill(victim).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while workers.stats().await?.lost < orphaned && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dropped_ms = (now_us() - start_us) / 1000;
    for (k, &w) in orphans.iter().enumerate() {
        let (first, count) = shares[w];
        let to = survivors[k % survivors.len()];
        let mut command = connect(to, first, count, true, count.max(1));
        if let Command::HeraldConnect(config) = &mut command {
            config.rejoin = true;
        }
        workers.send(w, &command).await?;
    }
    // Every client is a member, the orphans included (wanted again, reconnecting).
    workers.round(Some(1)).await?;
    let survivor = &apis[survivors[0]];
    survivor.push_all(app, 2_000_000, Some(300), pad).await?;
    let (stats, complete) = workers.done(timeout).await?;
    let time_us = stats.done_at_us.filter(|_| complete).map(|done| done.saturating_sub(start_us));
    let new_holder = lease_holder(survivor, admin_token, app, Some(victim)).await.ok();
    Ok(Failover::new(victim, new_holder, orphaned, dropped_ms, stats, time_us, complete))
}

#[derive(Default)]
struct Failures {
    count: u64,
    first: Option<String>,
}

impl Failures {
    fn record(&mut self, result: Result<anyhow::Result<u64>, tokio::task::JoinError>) {
        let error = match result {
            Ok(Ok(_)) => return,
            Ok(Err(err)) => format!("{err:#}"),
            Err(err) => err.to_string(),
        };
        self.count += 1;
        self.first.get_or_insert(error);
    }
}
