//! `herald-bench fanout`: starts (or targets) a herald server, spreads N client connections
//! over worker processes and source addresses, runs the scenarios, repeats the fan-out
//! through the machine's Mosquitto broker, and prints a summary table.
//!
//! Every wait has a time-out and every loop a bound: the run ends by itself, with what it
//! measured, even when the server under test stalls.

mod cluster;
pub mod hostile;
mod nchan;
mod peer;
mod report;
mod scenarios;
mod server;
pub mod soak;
mod soak_report;
mod workers;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::control::{Command, HeraldConnect};
use crate::proc::rss_kib_sum;
use cluster::LocalCluster;
pub use report::Results;
use scenarios::Publish;
use server::{Api, LocalServer};
use workers::Workers;

/// Most connections one worker holds: this machine allows 20,000 open files per process.
const MAX_PER_WORKER: u32 = 19_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// One push to all connections: latency p50/p99/max and time until all got it.
    One,
    /// Pushes back to back: deliveries per second and latency.
    Burst,
    /// Server memory per idle connection.
    Idle,
    /// All clients reconnect at once and fetch 3 stored pushes.
    Reconnect,
    /// Cluster only: one node is killed, its clients reconnect to the others; time until
    /// every client has the push sent right after the kill.
    Failover,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// Mosquitto when its address answers, and Nchan when nginx and its Nchan module are
    /// installed.
    Auto,
    /// The machine's Mosquitto broker (MQTT, QoS 1).
    Mosquitto,
    /// nginx with the Nchan module, started by the bench (WebSocket subscribers, HTTP
    /// publishing).
    Nchan,
    None,
}

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Concurrent client connections.
    #[arg(short = 'n', long, default_value_t = 18_000)]
    pub connections: u32,
    /// Connections per worker process (each process may open at most 20,000 files).
    #[arg(long, default_value_t = 6_000)]
    pub per_worker: u32,
    /// Source addresses 127.0.0.2 … 127.0.0.(1+K) the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub sources: u8,
    /// The herald binary to start.
    #[arg(long, default_value = "target/release/herald")]
    pub herald_bin: PathBuf,
    /// Extra environment for the started server, `NAME=VALUE` (repeatable).
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    pub server_env: Vec<String>,
    /// Target a running server (`http://HOST:PORT`) instead of starting one.
    #[arg(long, requires = "admin_token")]
    pub server: Option<String>,
    /// Admin token of the server given with `--server`.
    #[arg(long, env = "HERALD_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Pid of the server given with `--server`, for its memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Scenarios to run (comma-separated); all by default (failover in cluster mode only).
    #[arg(
        long,
        value_delimiter = ',',
        default_values = ["one", "burst", "idle", "reconnect", "failover"]
    )]
    pub scenarios: Vec<Scenario>,
    /// Start a cluster of this many nodes (PostgreSQL store, NATS JetStream) instead of one
    /// node on SQLite; the workers' connections are spread over the nodes, pushes go to the
    /// nodes in turn.
    #[arg(long, default_value_t = 0)]
    pub cluster: u32,
    /// The cluster's NATS server (JetStream on).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub cluster_nats: String,
    /// The cluster's PostgreSQL database; the run makes a schema of its own and drops it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub cluster_store: String,
    /// How many times the single push to all is repeated.
    #[arg(long, default_value_t = 3)]
    pub one_repeats: u32,
    /// Length of the back-to-back phase, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub burst_secs: f64,
    /// Pushes that may be on their way (sent, not yet received by every connection): a sender
    /// pushing back to back does not wait for deliveries, this only keeps the backlog bounded.
    #[arg(long, default_value_t = 16)]
    pub window: u32,
    /// Push requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub in_flight: u32,
    /// Bytes of padding in each message.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// Clients ack cumulatively at most this often (0: after every push).
    #[arg(long, default_value_t = 1000)]
    pub ack_interval_ms: u64,
    /// Handshakes in flight per worker while connecting (the reconnect storm has no limit).
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: u32,
    /// Longest wait for any one phase, seconds.
    #[arg(long, default_value_t = 120)]
    pub phase_timeout: u64,
    /// How long connections stay idle before a memory reading (after connecting and after the
    /// back-to-back phase), seconds: long enough for the last handshakes and acks to finish and
    /// for an allocator to give back what a burst freed.
    #[arg(long, default_value_t = 2)]
    pub idle_settle_secs: u64,
    /// The peers run through the same fan-out, one after the other (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["auto"])]
    pub peer: Vec<Peer>,
    /// MQTT broker address of the peer.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt_addr: SocketAddr,
    /// The nginx binary of the Nchan peer.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx_bin: PathBuf,
    /// The Nchan module nginx loads.
    #[arg(long, default_value = "/usr/lib/nginx/modules/ngx_nchan_module.so")]
    pub nchan_module: PathBuf,
    /// nginx worker processes of the Nchan peer (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub nchan_workers: u32,
    /// Write the results as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl FanoutArgs {
    fn has(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    fn sources(&self) -> Vec<Ipv4Addr> {
        source_addrs(self.sources)
    }

    /// (first, count) of each worker's share.
    fn shares(&self, connections: u32) -> Vec<(u64, u32)> {
        // In a cluster every node gets clients: at least one worker per node.
        shares(connections, self.per_worker, self.cluster)
    }

    /// A pause after a measurement in which the clients' acks reach the server; long ack
    /// intervals (acks only when disconnecting) need no pause.
    fn ack_pause(&self) -> Duration {
        Duration::from_millis(self.ack_interval_ms.min(3_000) + 500)
    }

    pub(crate) fn idle_settle(&self) -> Duration {
        Duration::from_secs(self.idle_settle_secs)
    }

    fn phase_timeout(&self) -> Duration {
        Duration::from_secs(self.phase_timeout.max(1))
    }
}

/// Source addresses 127.0.0.2 … 127.0.0.(1+K).
fn source_addrs(count: u8) -> Vec<Ipv4Addr> {
    (0..count.max(1)).map(|i| Ipv4Addr::new(127, 0, 0, 2 + i)).collect()
}

/// (first, count) of each worker's share of `connections`, at most `per_worker` each and at
/// least `min_workers` workers.
fn shares(connections: u32, per_worker: u32, min_workers: u32) -> Vec<(u64, u32)> {
    let per = per_worker.clamp(1, MAX_PER_WORKER);
    let workers = connections.div_ceil(per).max(min_workers).clamp(1, connections.max(1));
    let base = connections / workers;
    let extra = connections % workers;
    let mut first = 0u64;
    (0..workers)
        .map(|w| {
            let count = base + u32::from(w < extra);
            let share = (first, count);
            first += u64::from(count);
            share
        })
        .collect()
}

/// `--server-env NAME=VALUE` pairs.
fn server_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').context("--server-env takes NAME=VALUE")?;
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Runs the whole benchmark and prints the summary table.
pub async fn run(args: FanoutArgs) -> anyhow::Result<Results> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let mut results = Results::new(&args);
    let peers = peers(&args, &mut results.notes).await?;
    herald(&args, &mut results).await?;
    for peer in peers {
        match peer {
            Peer::Mosquitto => peer::run(&args, &mut results).await?,
            Peer::Nchan => nchan::run(&args, &mut results).await?,
            Peer::Auto | Peer::None => {}
        }
    }
    println!("{}", results.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(results)
}

/// The peers to run, `auto` resolved to those found here. A peer asked for by name that is
/// missing fails the run before anything is measured.
async fn peers(args: &FanoutArgs, notes: &mut Vec<String>) -> anyhow::Result<Vec<Peer>> {
    let mut chosen = Vec::new();
    if args.peer.contains(&Peer::Mosquitto) {
        chosen.push(Peer::Mosquitto);
    } else if args.peer.contains(&Peer::Auto) {
        if peer::answers(args.mqtt_addr).await {
            chosen.push(Peer::Mosquitto);
        } else {
            notes.push(format!("no MQTT broker at {}: Mosquitto skipped", args.mqtt_addr));
        }
    }
    if args.peer.contains(&Peer::Nchan) {
        nchan::installed(args)?;
        chosen.push(Peer::Nchan);
    } else if args.peer.contains(&Peer::Auto) {
        match nchan::installed(args) {
            Ok(()) => chosen.push(Peer::Nchan),
            Err(err) => notes.push(format!("Nchan skipped: {err}")),
        }
    }
    if args.peer.contains(&Peer::None) && args.peer.len() > 1 {
        bail!("--peer none cannot be combined with other peers");
    }
    Ok(chosen)
}

/// What the herald side runs against: one server or a cluster's nodes.
struct Target {
    /// One per node (a single server: one).
    apis: Vec<Api>,
    /// `ws://…/v1/connect` of each node.
    urls: Vec<String>,
    admin_token: String,
    local: Option<LocalServer>,
    cluster: Option<LocalCluster>,
    /// The pid given with `--server-pid`.
    given_pid: Option<u32>,
}

impl Target {
    async fn start(args: &FanoutArgs) -> anyhow::Result<Self> {
        let env = server_env(&args.server_env)?;
        let (bases, admin_token, local, cluster) = match (&args.server, args.cluster) {
            (Some(url), _) => {
                let token = args.admin_token.clone().context("--admin-token is required")?;
                (vec![url.clone()], token, None, None)
            }
            (None, 0) => {
                let server = LocalServer::start(&args.herald_bin, &env).await?;
                let base = format!("http://{}", server.addr);
                eprintln!("herald pid {} on {base}", server.pid);
                (vec![base], server.admin_token.clone(), Some(server), None)
            }
            (None, _) => {
                let cluster = LocalCluster::start(args, &env).await?;
                (cluster.bases(), cluster.admin_token.clone(), None, Some(cluster))
            }
        };
        let apis = bases.iter().map(|b| Api::new(b)).collect::<anyhow::Result<Vec<_>>>()?;
        let urls = bases
            .iter()
            .map(|b| format!("ws://{}/v1/connect", b.trim_start_matches("http://")))
            .collect();
        Ok(Self { apis, urls, admin_token, local, cluster, given_pid: args.server_pid })
    }

    /// The server processes alive (for CPU and memory).
    fn pids(&self) -> Vec<u32> {
        match (&self.local, &self.cluster) {
            (Some(server), _) => vec![server.pid],
            (_, Some(cluster)) => cluster.pids(),
            _ => self.given_pid.into_iter().collect(),
        }
    }

    async fn stop(self, results: &mut Results) -> anyhow::Result<()> {
        let (lines, excerpt) = match (&self.local, &self.cluster) {
            (Some(server), _) => (server.log_lines(), server.log_excerpt(3)),
            (_, Some(cluster)) => cluster.log_excerpt(),
            _ => (0, Vec::new()),
        };
        if lines > 0 {
            results.notes.push(format!("the server logged {lines} warning/error lines, first:"));
            results.notes.extend(excerpt.into_iter().map(|l| format!("    {l}")));
        }
        if let Some(server) = self.local {
            server.stop().await?;
        }
        if let Some(cluster) = self.cluster {
            cluster.stop().await?;
        }
        Ok(())
    }
}

/// The herald side: server(s), app, accounts, connections, scenarios.
async fn herald(args: &FanoutArgs, results: &mut Results) -> anyhow::Result<()> {
    let mut target = Target::start(args).await?;
    let outcome = herald_scenarios(args, results, &mut target).await;
    target.stop(results).await?;
    outcome
}

async fn herald_scenarios(
    args: &FanoutArgs,
    results: &mut Results,
    target: &mut Target,
) -> anyhow::Result<()> {
    let api = target.apis[0].clone();
    let name = format!("bench-{}", crate::clock::now_us());
    let app = api.create_app(&target.admin_token, &name).await?;
    let n = args.connections;
    eprintln!("importing {n} accounts");
    api.import_accounts(&app, u64::from(n)).await?;
    if target.cluster.is_some() {
        let holder = cluster::lease_holder(&api, &target.admin_token, &app, None).await?;
        eprintln!("node {holder} holds the app's dispatch lease");
    }
    let shares = args.shares(n);
    let mut workers = Workers::spawn(&shares).await?;
    let urls = target.urls.clone();
    let connect = |index: usize, first: u64, count: u32, resume: bool, concurrency: u32| {
        Command::HeraldConnect(HeraldConnect {
            url: urls[index % urls.len()].clone(),
            key: app.key.clone(),
            secret: app.secret.clone(),
            first,
            count,
            sources: args.sources(),
            concurrency,
            ack_interval_ms: args.ack_interval_ms,
            resume,
            rejoin: false,
            churn_per_min: 0.0,
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let pids = target.pids();
    let rss_before = rss_kib_sum(&pids);
    eprintln!("connecting {n} clients from {} workers to {} node(s)", shares.len(), urls.len());
    for (index, &(first, count)) in shares.iter().enumerate() {
        workers.send(index, &connect(index, first, count, false, args.connect_concurrency)).await?;
    }
    let connected = workers.connected(args.phase_timeout()).await?;
    eprintln!(
        "connected {} ({} failed) in {} ms",
        connected.ok, connected.failed, connected.elapsed_ms
    );
    results.herald.connect = Some(connected.clone());
    if connected.ok == 0 {
        workers.exit().await;
        bail!("no client connected: {:?}", connected.errors);
    }
    if args.has(Scenario::Idle) {
        tokio::time::sleep(args.idle_settle()).await;
        results.herald.set_idle(rss_before, rss_kib_sum(&pids), connected.ok);
    }

    let pad = "x".repeat(args.pad);
    let push = |ttl: Option<u32>| {
        let apis = target.apis.clone();
        let app = app.clone();
        let pad = pad.clone();
        move |k: u64| -> scenarios::SendFuture {
            // Pushes go to the nodes in turn, as through a load balancer.
            let api = apis[(k % apis.len() as u64) as usize].clone();
            let app = app.clone();
            let pad = pad.clone();
            Box::pin(async move { api.push_all(&app, k, ttl, &pad).await.map(|(_, stamp)| stamp) })
        }
    };
    let timeout = args.phase_timeout();
    if args.has(Scenario::One) {
        let send: Publish = Box::new(push(Some(300)));
        for repeat in 0..args.one_repeats {
            let run =
                scenarios::one_to_all(&mut workers, &pids, &send, u64::from(repeat) + 1, timeout)
                    .await?;
            eprintln!("one push to all: {}", run.summary());
            results.herald.one.push(run);
            // Let the acks of this push reach the server before the next measurement.
            tokio::time::sleep(args.ack_pause()).await;
        }
    }
    if args.has(Scenario::Burst) {
        let send: Publish = Box::new(push(None));
        let bus_before = bus_traffic(&target.apis).await;
        let burst = scenarios::burst(&mut workers, &pids, &send, args, timeout).await?;
        eprintln!("back to back: {}", burst.summary());
        if target.cluster.is_some() {
            let pushes = burst.sent.saturating_sub(burst.failed);
            let traffic = bus_traffic(&target.apis).await.since(&bus_before);
            results.bus = Some(traffic.per_push_per_node(pushes, target.apis.len()));
        }
        results.herald.burst = Some(burst);
        tokio::time::sleep(args.ack_pause().max(args.idle_settle())).await;
        results.herald.set_after_burst(rss_kib_sum(&pids));
    }
    if args.has(Scenario::Reconnect) {
        let storm = scenarios::reconnect_storm(
            &mut workers,
            &pids,
            &api,
            &app,
            &shares,
            &connect,
            &pad,
            timeout,
        )
        .await?;
        eprintln!("reconnect storm: {}", storm.summary());
        results.herald.storm = Some(storm);
        tokio::time::sleep(args.ack_pause()).await;
    }
    if args.has(Scenario::Failover) {
        match &mut target.cluster {
            Some(cluster) => {
                let failover = scenarios::failover(
                    &mut workers,
                    cluster,
                    &target.apis,
                    &target.admin_token,
                    &app,
                    &shares,
                    &connect,
                    &pad,
                    timeout,
                )
                .await?;
                eprintln!("failover: {}", failover.summary());
                results.failover = Some(failover);
            }
            None => results.notes.push("failover: a cluster-only scenario, skipped".into()),
        }
    }
    workers.disconnect().await?;
    workers.exit().await;
    Ok(())
}

/// What the nodes sent and received on the bus so far, added up.
async fn bus_traffic(apis: &[Api]) -> report::BusTraffic {
    let mut traffic = report::BusTraffic::default();
    for api in apis {
        traffic.messages_sent += api.counter("herald_bus_messages_sent_total").await.unwrap_or(0.0);
        traffic.bytes_sent += api.counter("herald_bus_sent_bytes_total").await.unwrap_or(0.0);
        traffic.messages_received +=
            api.counter("herald_bus_messages_received_total").await.unwrap_or(0.0);
        traffic.bytes_received +=
            api.counter("herald_bus_received_bytes_total").await.unwrap_or(0.0);
    }
    traffic
}
