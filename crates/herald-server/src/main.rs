//! The `herald` binary: `herald serve` runs the server, other subcommands talk to one.

use std::process::ExitCode;

use clap::Parser;
use herald_server::cli::{self, Cli, ClientError, Command};
use herald_server::config::Overrides;
use herald_server::{telemetry, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        command => match cli::run_client(command, cli.conn).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => report(err),
        },
    }
}

async fn serve(args: cli::ServeArgs) -> ExitCode {
    let overrides = Overrides { data_dir: args.data, listen: args.listen };
    let settings = match Settings::load(args.config.as_deref(), std::env::vars(), overrides) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("herald: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logs(&settings);
    match herald_server::run(settings, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("herald: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn report(err: ClientError) -> ExitCode {
    match &err {
        ClientError::Api { body, .. } if std::env::args().any(|a| a == "--json") => {
            eprintln!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
        }
        _ => eprintln!("herald: {err}"),
    }
    ExitCode::FAILURE
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
