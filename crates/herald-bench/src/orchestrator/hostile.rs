//! `herald-bench hostile`: normal clients receive pushes to all, first alone, then with
//! misbehaving clients beside them (never reading, reading one byte a second, sending 1 MiB
//! frames, connecting without a hello, flooding acks). The ratio of the two p99 latencies, in
//! one run, says what the misbehaving clients cost the others; their outcomes say how each
//! was cut off.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::report::OneRun;
use super::scenarios::{one_to_all, Publish, SendFuture};
use super::server::{Api, AppCreds, LocalServer};
use super::workers::Workers;
use super::{server_env, shares, source_addrs};
use crate::control::{Command, Event, HeraldConnect, HostileAttack};

#[derive(Debug, Clone, Args)]
pub struct HostileArgs {
    /// Normal client connections.
    #[arg(short = 'n', long, default_value_t = 18_000)]
    pub connections: u32,
    /// Connections per worker process (each process may open at most 20,000 files).
    #[arg(long, default_value_t = 6_000)]
    pub per_worker: u32,
    /// Source addresses 127.0.0.2 … 127.0.0.(1+K) the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub sources: u8,
    /// Pushes to all measured in each phase.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
    /// Online-only pushes sent back to back at the start of each phase, so that clients
    /// that do not read fill their queues.
    #[arg(long, default_value_t = 300)]
    pub fill: u32,
    /// Pushes of `--flood-bytes` sent only to the clients that never read or read slowly, once
    /// they are connected: the kernel holds a megabyte or more for a socket nobody reads, so
    /// only a few megabytes per connection reach the server's queue limit.
    #[arg(long, default_value_t = 300)]
    pub flood: u32,
    /// Bytes of padding in each flood push (the default app limit on a message is 10,240).
    #[arg(long, default_value_t = 9_000)]
    pub flood_bytes: usize,
    /// Clients that say hello and never read.
    #[arg(long, default_value_t = 200)]
    pub never_read: u32,
    /// Clients that say hello and read one byte a second.
    #[arg(long, default_value_t = 200)]
    pub slow_read: u32,
    /// Clients that send 1 MiB frames.
    #[arg(long, default_value_t = 20)]
    pub big_frames: u32,
    /// Connections without a hello, all from 127.0.0.100 (more than one address may hold).
    #[arg(long, default_value_t = 6_000)]
    pub no_hello: u32,
    /// Clients that flood acks.
    #[arg(long, default_value_t = 20)]
    pub ack_flood: u32,
    /// Seconds the misbehaving clients run before the second phase is measured.
    #[arg(long, default_value_t = 15)]
    pub settle_secs: u64,
    /// Bytes of padding in each message.
    #[arg(long, default_value_t = 32)]
    pub pad: usize,
    /// Handshakes in flight per worker while connecting.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: u32,
    /// Longest wait for any one phase, seconds.
    #[arg(long, default_value_t = 120)]
    pub phase_timeout: u64,
    /// The herald binary to start.
    #[arg(long, default_value = "target/release/herald")]
    pub herald_bin: PathBuf,
    /// Extra environment for the started server, `NAME=VALUE` (repeatable).
    #[arg(long = "server-env", value_name = "NAME=VALUE")]
    pub server_env: Vec<String>,
    /// Write the results as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The address the connections without a hello come from.
const NO_HELLO_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 100);
/// Push requests in flight while filling.
const FILL_IN_FLIGHT: usize = 4;

/// One phase: the fill, then the measured pushes to all.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// From the first fill push until every normal client had all of them.
    pub fill_ms: Option<f64>,
    pub fill_complete: bool,
    pub runs: Vec<OneRun>,
}

impl Phase {
    /// The median over the runs of their p99 latency, ms.
    fn p99_ms(&self) -> f64 {
        median(self.runs.iter().map(|r| r.latency.p99_ms).collect())
    }

    /// Closes the normal clients saw (none expected).
    fn closes(&self) -> BTreeMap<String, u32> {
        let mut all = BTreeMap::new();
        for run in &self.runs {
            for (reason, n) in &run.closes {
                *all.entry(reason.clone()).or_default() += n;
            }
        }
        all
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[derive(Debug, Serialize)]
pub struct HostileResults {
    pub connections: u32,
    pub alone: Phase,
    pub beside_hostile: Phase,
    /// `kind:outcome` → count, as the misbehaving clients saw it.
    pub outcomes: BTreeMap<String, u64>,
    /// The server's `herald_gateway_disconnects_total` and `herald_gateway_refused_total`.
    pub server_cuts: BTreeMap<String, f64>,
}

impl HostileResults {
    /// p99 beside the misbehaving clients over p99 alone.
    pub fn p99_ratio(&self) -> f64 {
        self.beside_hostile.p99_ms() / self.alone.p99_ms()
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} normal clients; pushes to all, median of the runs' p99:\n",
            self.connections
        );
        let _ = writeln!(
            out,
            "| phase | p99 ms (median of runs) | runs' p99 ms | fill ms | normal clients closed |"
        );
        let _ = writeln!(out, "|---|---:|---|---:|---|");
        for (name, phase) in
            [("alone", &self.alone), ("beside hostile clients", &self.beside_hostile)]
        {
            let runs: Vec<String> =
                phase.runs.iter().map(|r| format!("{:.1}", r.latency.p99_ms)).collect();
            let closes = phase.closes();
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {} | {} | {} |",
                phase.p99_ms(),
                runs.join(", "),
                phase.fill_ms.map_or("incomplete".into(), |ms| format!("{ms:.0}")),
                if closes.is_empty() { "none".into() } else { format!("{closes:?}") }
            );
        }
        let _ = writeln!(out, "\np99 ratio (beside hostile / alone): {:.2}\n", self.p99_ratio());
        let _ = writeln!(out, "| misbehaving client: outcome | count |\n|---|---:|");
        for (outcome, n) in &self.outcomes {
            let _ = writeln!(out, "| {outcome} | {n} |");
        }
        let _ = writeln!(out, "\n| server metric | value |\n|---|---:|");
        for (series, value) in &self.server_cuts {
            let _ = writeln!(out, "| `{series}` | {value} |");
        }
        out
    }
}

pub async fn run(args: HostileArgs) -> anyhow::Result<()> {
    let env = server_env(&args.server_env)?;
    let server = LocalServer::start(&args.herald_bin, &env).await?;
    eprintln!("herald pid {} on {}", server.pid, server.addr);
    let outcome = measure(&args, &server).await;
    server.stop().await?;
    let results = outcome?;
    println!("{}", results.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn measure(args: &HostileArgs, server: &LocalServer) -> anyhow::Result<HostileResults> {
    let base = format!("http://{}", server.addr);
    let api = Api::new(&base)?;
    let app =
        api.create_app(&server.admin_token, &format!("hostile-{}", crate::clock::now_us())).await?;
    let n = args.connections;
    eprintln!("importing {n} accounts");
    api.import_accounts(&app, u64::from(n)).await?;
    let herald = HeraldConnect {
        url: format!("ws://{}/v1/connect", server.addr),
        key: app.key.clone(),
        secret: app.secret.clone(),
        first: 0,
        count: 0,
        sources: source_addrs(args.sources),
        concurrency: args.connect_concurrency,
        ack_interval_ms: 1000,
        resume: false,
        rejoin: false,
        churn_per_min: 0.0,
    };
    let shares = shares(n, args.per_worker, 1);
    let mut workers = Workers::spawn(&shares).await?;
    for (index, &(first, count)) in shares.iter().enumerate() {
        let command = Command::HeraldConnect(HeraldConnect { first, count, ..herald.clone() });
        workers.send(index, &command).await?;
    }
    let connected = workers.connected(Duration::from_secs(args.phase_timeout)).await?;
    eprintln!("connected {} ({} failed)", connected.ok, connected.failed);
    if connected.failed > 0 {
        workers.exit().await;
        bail!("{} clients failed to connect: {:?}", connected.failed, connected.errors);
    }
    let pids = [server.pid];
    let alone = phase(&mut workers, &pids, &api, &app, args).await?;
    eprintln!("alone: p99 {:.1} ms", alone.p99_ms());

    let attackers =
        args.never_read + args.slow_read + args.big_frames + args.no_hello + args.ack_flood;
    let mut hostile = Workers::spawn(&[(0, attackers)]).await?;
    let attack = HostileAttack {
        herald: herald.clone(),
        never_read: args.never_read,
        slow_read: args.slow_read,
        big_frames: args.big_frames,
        no_hello: args.no_hello,
        no_hello_source: NO_HELLO_SOURCE,
        ack_flood: args.ack_flood,
    };
    hostile.send(0, &Command::Hostile(attack)).await?;
    eprintln!("{attackers} misbehaving clients started; {} s to settle", args.settle_secs);
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let flooded = flood_readers(&api, &app, args).await?;
    eprintln!(
        "{flooded} of {} pushes of {} B sent to the clients that do not read",
        args.flood, args.flood_bytes
    );
    let beside_hostile = phase(&mut workers, &pids, &api, &app, args).await?;
    eprintln!("beside hostile clients: p99 {:.1} ms", beside_hostile.p99_ms());
    let outcomes = hostile_report(&mut hostile).await?;
    let server_cuts = server_cuts(&api).await?;
    hostile.disconnect().await?;
    hostile.exit().await;
    workers.disconnect().await?;
    workers.exit().await;
    Ok(HostileResults { connections: n, alone, beside_hostile, outcomes, server_cuts })
}

/// The fill, then `repeats` pushes to all, each measured on its own.
async fn phase(
    workers: &mut Workers,
    pids: &[u32],
    api: &Api,
    app: &AppCreds,
    args: &HostileArgs,
) -> anyhow::Result<Phase> {
    let timeout = Duration::from_secs(args.phase_timeout);
    let pad = "x".repeat(args.pad);
    workers.round(Some(args.fill)).await?;
    let started = Instant::now();
    sent_in_flight(args.fill, |k| {
        let (api, app, pad) = (api.clone(), app.clone(), pad.clone());
        async move { api.push_all(&app, k, None, &pad).await.is_ok() }
    })
    .await;
    let (_, fill_complete) = workers.done(timeout).await?;
    let fill_ms = fill_complete.then(|| started.elapsed().as_secs_f64() * 1000.0);
    // The clients' acks of the fill reach the server before the measurement.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let send: Publish = {
        let (api, app) = (api.clone(), app.clone());
        Box::new(move |k: u64| -> SendFuture {
            let (api, app, pad) = (api.clone(), app.clone(), pad.clone());
            Box::pin(
                async move { api.push_all(&app, k, Some(300), &pad).await.map(|(_, stamp)| stamp) },
            )
        })
    };
    let mut runs = Vec::new();
    for k in 0..u64::from(args.repeats) {
        let run = one_to_all(workers, pids, &send, k, timeout).await?;
        eprintln!("  push to all: {}", run.summary());
        runs.push(run);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    Ok(Phase { fill_ms, fill_complete, runs })
}

/// Sends `--flood` big pushes to the accounts of the clients that do not read (their names are
/// the hostile worker's), so that their queues fill and the server cuts them off. Returns how
/// many the server accepted.
async fn flood_readers(api: &Api, app: &AppCreds, args: &HostileArgs) -> anyhow::Result<u32> {
    let accounts: Vec<String> = (0..args.never_read)
        .map(|n| format!("hostile-never_read-{n}"))
        .chain((0..args.slow_read).map(|n| format!("hostile-slow_read-{n}")))
        .collect();
    if accounts.is_empty() {
        return Ok(0);
    }
    let pad = "x".repeat(args.flood_bytes);
    let accepted = sent_in_flight(args.flood, |k| {
        let (api, app, pad, accounts) = (api.clone(), app.clone(), pad.clone(), accounts.clone());
        async move { api.push_to(&app, &accounts, k, &pad).await.is_ok() }
    })
    .await;
    Ok(accepted)
}

/// Runs `send(0)` … `send(count - 1)` with `FILL_IN_FLIGHT` at once; how many succeeded.
async fn sent_in_flight<F>(count: u32, send: impl Fn(u64) -> F) -> u32
where
    F: std::future::Future<Output = bool> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut succeeded = 0;
    for k in 0..u64::from(count) {
        if tasks.len() >= FILL_IN_FLIGHT {
            succeeded += u32::from(tasks.join_next().await.is_some_and(|r| r.unwrap_or(false)));
        }
        tasks.spawn(send(k));
    }
    while let Some(sent) = tasks.join_next().await {
        succeeded += u32::from(sent.unwrap_or(false));
    }
    succeeded
}

async fn hostile_report(hostile: &mut Workers) -> anyhow::Result<BTreeMap<String, u64>> {
    hostile.send(0, &Command::HostileReport).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match hostile.next(deadline).await {
            Some((_, Event::HostileReport { outcomes })) => return Ok(outcomes),
            Some(_) => {}
            None => bail!("the hostile worker did not report"),
        }
    }
}

/// Every sample of the gateway's disconnect and refusal counters.
async fn server_cuts(api: &Api) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = api.metrics_text().await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("herald_gateway_disconnects_total{")
                || l.starts_with("herald_gateway_refused_total{")
        })
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect())
}
