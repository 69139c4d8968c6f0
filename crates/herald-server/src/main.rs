//! The `herald` binary: `herald serve` runs the server, other subcommands talk to one.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use herald_server::cli::{self, Cli, ClientError, Command};
use herald_server::config::Overrides;
use herald_server::{telemetry, BusOpenError, Settings, StoreOpenError};

#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Checkconfig(args) => checkconfig(args),
        Command::Doctor(args) => doctor(args).await,
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut command, "herald", &mut script);
            print_out(&script)
        }
        Command::Manpage => manpage(),
        command => match cli::run_client(command, cli.conn).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => report(err),
        },
    }
}

/// Exit code of settings that cannot be used.
const EXIT_BAD_SETTINGS: u8 = 2;
/// Exit code of a store that cannot be opened: unreachable, refusing us, or migrated by a
/// newer herald.
const EXIT_STORE: u8 = 3;
/// Exit code of a cluster bus (NATS JetStream) that cannot be reached or set up.
const EXIT_BUS: u8 = 4;

async fn serve(args: cli::ServeArgs) -> ExitCode {
    let settings = match settings(args.store, args.listen) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    telemetry::init_logs(&settings);
    match herald_server::run(settings, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("herald: {err:#}");
            if err.downcast_ref::<StoreOpenError>().is_some() {
                ExitCode::from(EXIT_STORE)
            } else if err.downcast_ref::<BusOpenError>().is_some() {
                ExitCode::from(EXIT_BUS)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn migrate(args: cli::StoreArgs) -> ExitCode {
    let settings = match settings(args, None) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    match herald_server::migrate(&settings).await {
        Ok(outcome) => {
            println!("{outcome}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("herald: {err:#}");
            ExitCode::from(EXIT_STORE)
        }
    }
}

fn checkconfig(args: cli::StoreArgs) -> ExitCode {
    let source = args.config.as_ref().map(|path| path.display().to_string());
    let overrides = Overrides { data_dir: args.data, listen: None, store: args.store };
    match Settings::load(args.config.as_deref(), std::env::vars(), overrides) {
        Ok(settings) => {
            let from = source.unwrap_or_else(|| "defaults and environment".into());
            println!("ok: settings from {from} are valid (listen {})", settings.listen);
            ExitCode::SUCCESS
        }
        Err(err) => {
            for problem in err.problems() {
                println!("{problem}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn doctor(args: cli::DoctorArgs) -> ExitCode {
    let settings = match settings(args.store, None) {
        Ok(settings) => settings,
        Err(_) => return ExitCode::FAILURE,
    };
    let checks = herald_server::doctor::examine(&settings, args.connections).await;
    for check in &checks {
        println!("{check}");
    }
    match checks.iter().any(|c| c.verdict == herald_server::doctor::Verdict::Fail) {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    }
}

fn manpage() -> ExitCode {
    let command = <Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    match clap_mangen::Man::new(command).render(&mut page) {
        Ok(()) => print_out(&page),
        Err(err) => {
            eprintln!("herald: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is not an error.
fn print_out(text: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().write_all(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("herald: {err}");
            ExitCode::FAILURE
        }
    }
}

fn settings(args: cli::StoreArgs, listen: Option<SocketAddr>) -> Result<Settings, ExitCode> {
    let overrides = Overrides { data_dir: args.data, listen, store: args.store };
    Settings::load(args.config.as_deref(), std::env::vars(), overrides).map_err(|err| {
        eprintln!("herald: {err}");
        ExitCode::from(EXIT_BAD_SETTINGS)
    })
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
