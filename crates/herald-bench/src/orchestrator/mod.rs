//! `herald-bench fanout`: starts (or targets) a herald server, spreads N client connections
//! over worker processes and source addresses, runs the scenarios, repeats the fan-out
//! through the machine's Mosquitto broker, and prints a summary table.
//!
//! Every wait has a time-out and every loop a bound: the run ends by itself, with what it
//! measured, even when the server under test stalls.

mod peer;
mod report;
mod scenarios;
mod server;
mod workers;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use crate::control::{Command, HeraldConnect};
use crate::proc::rss_kib;
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// Mosquitto when 127.0.0.1:1883 answers.
    Auto,
    Mosquitto,
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
    /// Scenarios to run (comma-separated); all by default.
    #[arg(long, value_delimiter = ',', default_values = ["one", "burst", "idle", "reconnect"])]
    pub scenarios: Vec<Scenario>,
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
    /// The peer broker run through the same fan-out.
    #[arg(long, value_enum, default_value_t = Peer::Auto)]
    pub peer: Peer,
    /// MQTT broker address of the peer.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub mqtt_addr: SocketAddr,
    /// Write the results as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl FanoutArgs {
    fn has(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }

    fn sources(&self) -> Vec<Ipv4Addr> {
        (0..self.sources.max(1)).map(|i| Ipv4Addr::new(127, 0, 0, 2 + i)).collect()
    }

    /// (first, count) of each worker's share.
    fn shares(&self, connections: u32) -> Vec<(u64, u32)> {
        let per = self.per_worker.clamp(1, MAX_PER_WORKER);
        let workers = connections.div_ceil(per).max(1);
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

    /// A pause after a measurement in which the clients' acks reach the server; long ack
    /// intervals (acks only when disconnecting) need no pause.
    fn ack_pause(&self) -> Duration {
        Duration::from_millis(self.ack_interval_ms.min(3_000) + 500)
    }

    fn phase_timeout(&self) -> Duration {
        Duration::from_secs(self.phase_timeout.max(1))
    }
}

/// Runs the whole benchmark and prints the summary table.
pub async fn run(args: FanoutArgs) -> anyhow::Result<Results> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let mut results = Results::new(&args);
    herald(&args, &mut results).await?;
    match args.peer {
        Peer::None => {}
        Peer::Auto if !peer::answers(args.mqtt_addr).await => {
            results.notes.push(format!("no MQTT broker at {}: peer skipped", args.mqtt_addr));
        }
        Peer::Auto | Peer::Mosquitto => peer::run(&args, &mut results).await?,
    }
    println!("{}", results.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(results)
}

/// The herald side: server, app, accounts, connections, scenarios.
async fn herald(args: &FanoutArgs, results: &mut Results) -> anyhow::Result<()> {
    let env = args
        .server_env
        .iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').context("--server-env takes NAME=VALUE")?;
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (local, base, admin_token, pid) = match &args.server {
        Some(url) => {
            let token = args.admin_token.clone().context("--admin-token is required")?;
            (None, url.clone(), token, args.server_pid)
        }
        None => {
            let server = LocalServer::start(&args.herald_bin, &env).await?;
            let base = format!("http://{}", server.addr);
            let token = server.admin_token.clone();
            let pid = server.pid;
            eprintln!("herald pid {pid} on {base}");
            (Some(server), base, token, Some(pid))
        }
    };
    let outcome = herald_scenarios(args, results, &base, &admin_token, pid).await;
    if let Some(server) = local {
        let lines = server.log_lines();
        if lines > 0 {
            results.notes.push(format!("the server logged {lines} warning/error lines, first:"));
            results.notes.extend(server.log_excerpt(3).into_iter().map(|l| format!("    {l}")));
        }
        server.stop().await?;
    }
    outcome
}

async fn herald_scenarios(
    args: &FanoutArgs,
    results: &mut Results,
    base: &str,
    admin_token: &str,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    let api = Api::new(base)?;
    let name = format!("bench-{}", crate::clock::now_us());
    let app = api.create_app(admin_token, &name).await?;
    let n = args.connections;
    eprintln!("importing {n} accounts");
    api.import_accounts(&app, u64::from(n)).await?;
    let shares = args.shares(n);
    let mut workers = Workers::spawn(&shares).await?;
    let url = format!("ws://{}/v1/connect", base.trim_start_matches("http://"));
    let connect = |first: u64, count: u32, resume: bool, concurrency: u32| {
        Command::HeraldConnect(HeraldConnect {
            url: url.clone(),
            key: app.key.clone(),
            secret: app.secret.clone(),
            first,
            count,
            sources: args.sources(),
            concurrency,
            ack_interval_ms: args.ack_interval_ms,
            resume,
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = pid.and_then(rss_kib);
    eprintln!("connecting {n} clients from {} workers", shares.len());
    for (index, &(first, count)) in shares.iter().enumerate() {
        workers.send(index, &connect(first, count, false, args.connect_concurrency)).await?;
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
        // Let the last handshakes and logins finish before reading the memory.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_after = pid.and_then(rss_kib);
        results.herald.set_idle(rss_before, rss_after, connected.ok);
    }

    let pad = "x".repeat(args.pad);
    let push = |ttl: Option<u32>| {
        let api = api.clone();
        let app = app.clone();
        let pad = pad.clone();
        move |k: u64| -> scenarios::SendFuture {
            let api = api.clone();
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
                scenarios::one_to_all(&mut workers, pid, &send, u64::from(repeat) + 1, timeout)
                    .await?;
            eprintln!("one push to all: {}", run.summary());
            results.herald.one.push(run);
            // Let the acks of this push reach the server before the next measurement.
            tokio::time::sleep(args.ack_pause()).await;
        }
    }
    if args.has(Scenario::Burst) {
        let send: Publish = Box::new(push(None));
        let burst = scenarios::burst(&mut workers, pid, &send, args, timeout).await?;
        eprintln!("back to back: {}", burst.summary());
        results.herald.burst = Some(burst);
        tokio::time::sleep(args.ack_pause()).await;
        results.herald.set_after_burst(pid.and_then(rss_kib));
    }
    if args.has(Scenario::Reconnect) {
        let storm = scenarios::reconnect_storm(
            &mut workers,
            pid,
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
    }
    workers.disconnect().await?;
    workers.exit().await;
    Ok(())
}
