//! `herald-bench`: a load generator for herald's client connections, bounded in count and time.
//!
//! `herald-bench fanout` starts a herald server (or targets one), opens N client connections
//! from worker processes (this binary's hidden `worker` subcommand), measures one push to all,
//! pushes back to back, idle memory per connection and a reconnect storm, runs the same fan-out
//! through the machine's Mosquitto broker, and prints a summary table. `herald-bench soak`
//! holds connections for a long time and checks that memory, descriptors and deliveries hold.
//! See BENCHMARKS.md.

mod clock;
mod control;
mod hist;
mod mqtt;
mod orchestrator;
mod proc;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "herald-bench", version, about = "Load generator for herald's client connections")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Connections, fan-out, idle memory and reconnect storm against herald, and the MQTT peer.
    Fanout(Box<orchestrator::FanoutArgs>),
    /// Many connections for a long time: memory, descriptors and queues per minute, and
    /// whether every client got every push.
    Soak(Box<orchestrator::soak::SoakArgs>),
    /// Pushes to all with and without misbehaving clients beside the normal ones.
    Hostile(Box<orchestrator::hostile::HostileArgs>),
    /// A worker process of `fanout` (commands on stdin, events on stdout).
    #[command(hide = true)]
    Worker,
}

fn block_on(run: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Worker => worker::main(),
        Cmd::Fanout(args) => block_on(async move { orchestrator::run(*args).await.map(drop) }),
        Cmd::Soak(args) => block_on(orchestrator::soak::run(*args)),
        Cmd::Hostile(args) => block_on(orchestrator::hostile::run(*args)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("herald-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}
