//! `herald-bench soak`: many connections for a long time, a push to all every second, clients
//! reconnecting at random (resuming from their acks) and acking; every minute the server's
//! memory, descriptors, connections and queue gauges are sampled. The run ends with whether
//! memory and descriptors stayed flat and whether every client got every push once, in order.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::report::Latency;
use super::server::{Api, AppCreds, LocalServer};
use super::soak_report::{Deliveries, Minute, SoakReport};
use super::workers::Workers;
use super::{server_env, shares, source_addrs};
use crate::control::{Command, HeraldConnect, RoundStats};
use crate::proc::{open_fds, rss_kib};

#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Concurrent client connections.
    #[arg(short = 'n', long, default_value_t = 18_000)]
    pub connections: u32,
    /// Connections per worker process (each process may open at most 20,000 files).
    #[arg(long, default_value_t = 6_000)]
    pub per_worker: u32,
    /// Source addresses 127.0.0.2 … 127.0.0.(1+K) the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub sources: u8,
    /// Length of the run, in samples (minutes by default).
    #[arg(long, default_value_t = 30)]
    pub minutes: u32,
    /// Length of one sample, seconds (60: a minute; shorter for a quick run).
    #[arg(long, default_value_t = 60)]
    pub sample_secs: u64,
    /// Samples before this one are warm-up, left out of the memory and descriptor fit.
    #[arg(long, default_value_t = 5)]
    pub fit_from: u32,
    /// Time between two pushes to all, ms.
    #[arg(long, default_value_t = 1000)]
    pub push_interval_ms: u64,
    /// Percent of the clients that reconnect per minute.
    #[arg(long, default_value_t = 5.0)]
    pub churn_percent: f64,
    /// Clients ack cumulatively at most this often.
    #[arg(long, default_value_t = 1000)]
    pub ack_interval_ms: u64,
    /// Handshakes in flight per worker while connecting.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: u32,
    /// Bytes of padding in each message.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// The herald binary to start.
    #[arg(long, default_value = "target/release/herald")]
    pub herald_bin: PathBuf,
    /// Extra environment for the started server, `NAME=VALUE` (repeatable).
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    pub server_env: Vec<String>,
    /// Write the report as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// How long the clients may take to catch up after the last push.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Runs the soak and prints its report; fails when memory or descriptors grew or a push was
/// lost.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.minutes == 0 {
        bail!("--connections and --minutes must be at least 1");
    }
    let env = server_env(&args.server_env)?;
    let server = LocalServer::start(&args.herald_bin, &env).await?;
    let base = format!("http://{}", server.addr);
    eprintln!("herald pid {} on {base}", server.pid);
    let outcome = soak(&args, &server, &base).await;
    let lines = server.log_lines();
    let excerpt = server.log_excerpt(5);
    server.stop().await?;
    let report = outcome?;
    println!("{}", report.table());
    if lines > 0 {
        println!("the server logged {lines} warning/error lines, first:");
        excerpt.iter().for_each(|line| println!("    {line}"));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !report.passed() {
        bail!("the soak failed: see the verdict above");
    }
    Ok(())
}

async fn soak(args: &SoakArgs, server: &LocalServer, base: &str) -> anyhow::Result<SoakReport> {
    let api = Api::new(base)?;
    let app =
        api.create_app(&server.admin_token, &format!("soak-{}", crate::clock::now_us())).await?;
    let n = args.connections;
    eprintln!("importing {n} accounts");
    api.import_accounts(&app, u64::from(n)).await?;
    let shares = shares(n, args.per_worker, 1);
    let mut workers = Workers::spawn(&shares).await?;
    let url = format!("ws://{}/v1/connect", server.addr);
    for (index, &(first, count)) in shares.iter().enumerate() {
        let command = Command::HeraldConnect(HeraldConnect {
            url: url.clone(),
            key: app.key.clone(),
            secret: app.secret.clone(),
            first,
            count,
            sources: source_addrs(args.sources),
            concurrency: args.connect_concurrency,
            ack_interval_ms: args.ack_interval_ms,
            resume: false,
            rejoin: false,
            churn_per_min: args.churn_percent,
        });
        workers.send(index, &command).await?;
    }
    let connected = workers.connected(Duration::from_secs(300)).await?;
    eprintln!(
        "connected {} ({} failed) in {} ms",
        connected.ok, connected.failed, connected.elapsed_ms
    );
    if connected.failed > 0 {
        workers.exit().await;
        bail!("{} clients failed to connect: {:?}", connected.failed, connected.errors);
    }

    let mut pusher = Pusher::new(api.clone(), app, args);
    let mut minutes = Vec::new();
    let mut duplicates = 0;
    workers.round(None).await?;
    let start = Instant::now();
    for minute in 1..=args.minutes {
        let end = start + Duration::from_secs(args.sample_secs * u64::from(minute));
        let (pushes, push_errors) = pusher.until(end).await;
        let stats = workers.stats().await?;
        workers.round(None).await?;
        duplicates += stats.duplicates;
        let sample = sample(&api, server.pid, minute, pushes, push_errors, &stats).await;
        eprintln!(
            "minute {minute}: RSS {} KiB, heap {:.0} KiB (allocator {:.0} KiB), {} fds, {} sessions, {} deliveries, p99 {:.1} ms",
            sample.rss_kib,
            sample.heap_bytes / 1024.0,
            sample.allocator_bytes / 1024.0,
            sample.fds,
            sample.sessions,
            sample.deliveries,
            sample.p99_ms
        );
        minutes.push(sample);
    }
    pusher.finish().await;
    let stats = caught_up(&mut workers, pusher.ok).await?;
    duplicates += stats.duplicates;
    workers.disconnect().await?;
    workers.exit().await;
    let deliveries = Deliveries {
        pushes: pusher.ok,
        last_seq: stats.max_last_seq,
        min_last_seq: stats.min_last_seq.unwrap_or(0),
        gaps: stats.gaps,
        duplicates,
    };
    Ok(SoakReport::new(n, minutes, args.fit_from, deliveries))
}

/// Waits until every client has the last push (or [`CATCH_UP`] passed); the final figures.
async fn caught_up(workers: &mut Workers, pushes: u64) -> anyhow::Result<RoundStats> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let stats = workers.stats().await?;
        let behind = stats.min_last_seq.unwrap_or(0) < stats.max_last_seq.max(pushes);
        if !behind || Instant::now() >= deadline {
            return Ok(stats);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The server at the end of a minute, and what the clients saw in it.
async fn sample(
    api: &Api,
    pid: u32,
    minute: u32,
    pushes: u64,
    push_errors: u64,
    stats: &RoundStats,
) -> Minute {
    let gauge = |name: &'static str| async move { api.counter(name).await.unwrap_or(f64::NAN) };
    Minute {
        minute,
        rss_kib: rss_kib(pid).unwrap_or(0),
        heap_bytes: gauge("herald_heap_allocated_bytes").await,
        allocator_bytes: gauge("herald_heap_resident_bytes").await,
        fds: open_fds(pid).unwrap_or(0),
        connections: gauge("herald_gateway_connections").await,
        sessions: gauge("herald_gateway_sessions").await,
        queued_frames: gauge("herald_gateway_queued_frames").await,
        pending_acks: gauge("herald_gateway_pending_acks").await,
        dispatch_queued: gauge("herald_dispatch_queued_pushes").await,
        receipts_queued: gauge("herald_receipts_queued").await,
        pushes,
        push_errors,
        deliveries: stats.frames,
        p99_ms: Latency::from(&stats.latency).p99_ms,
        closes: stats.closes.clone(),
    }
}

/// Sends a push to all every interval, without waiting for one answer before the next send.
struct Pusher {
    api: Api,
    app: AppCreds,
    pad: String,
    interval: tokio::time::Interval,
    tasks: JoinSet<bool>,
    sent: u64,
    /// Pushes answered with an id so far.
    ok: u64,
}

impl Pusher {
    fn new(api: Api, app: AppCreds, args: &SoakArgs) -> Self {
        let mut interval =
            tokio::time::interval(Duration::from_millis(args.push_interval_ms.max(1)));
        // A late tick is not made up for: one push per interval, never a burst.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            api,
            app,
            pad: "x".repeat(args.pad),
            interval,
            tasks: JoinSet::new(),
            sent: 0,
            ok: 0,
        }
    }

    /// Pushes until `end`; the pushes answered and failed meanwhile.
    async fn until(&mut self, end: Instant) -> (u64, u64) {
        let (mut ok, mut failed) = (0, 0);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(end) => break,
                _ = self.interval.tick() => {
                    self.sent += 1;
                    let (api, app, pad, n) = (self.api.clone(), self.app.clone(), self.pad.clone(), self.sent);
                    // Stored for 10 minutes: a client reconnecting gets what it missed.
                    self.tasks.spawn(async move { api.push_all(&app, n, Some(600), &pad).await.is_ok() });
                }
                Some(answer) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if matches!(answer, Ok(true)) { ok += 1 } else { failed += 1 }
                }
            }
        }
        self.ok += ok;
        (ok, failed)
    }

    async fn finish(&mut self) {
        while let Some(answer) = self.tasks.join_next().await {
            if matches!(answer, Ok(true)) {
                self.ok += 1;
            }
        }
    }
}
