//! The `herald` command line: `serve` runs the server; every other subcommand is a client of a
//! running server, for operators and scripts (`--json` everywhere).

mod app_cmd;
mod client;
mod directory_cmd;
mod import_cmd;
mod listen_cmd;
mod output;
mod push_cmd;
mod stats_cmd;
mod vendor_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use client::{Client, ClientError};

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Self-hosted broadcast push service")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply the store's pending schema migrations and exit (`serve` applies them too).
    Migrate(StoreArgs),
    /// Check the settings (file, `HERALD_*` environment, flags) and list every problem; exit 1
    /// if there is one.
    Checkconfig(StoreArgs),
    /// Check what a server started with these settings needs, without starting one: one
    /// ok / warn / fail line per check; exit 1 on a failure.
    Doctor(DoctorArgs),
    /// Print a shell completion script (`herald completions bash > /etc/bash_completion.d/herald`).
    Completions(CompletionsArgs),
    /// Print the manual page in roff (`herald manpage > /usr/local/share/man/man1/herald.1`).
    Manpage,
    /// Manage apps (tenants); needs the admin token.
    #[command(subcommand)]
    App(app_cmd::AppCommand),
    /// Send a signed request to any `/v1` route and print the answer.
    Api(app_cmd::ApiArgs),
    /// Import, show, list and delete accounts.
    #[command(subcommand)]
    Account(directory_cmd::AccountCommand),
    /// Register, show and unregister devices.
    #[command(subcommand)]
    Device(directory_cmd::DeviceCommand),
    /// Add, remove, replace, clear and show tags of accounts.
    #[command(subcommand)]
    Tag(directory_cmd::TagCommand),
    /// Attribute names and values.
    #[command(subcommand)]
    Attr(directory_cmd::AttrCommand),
    /// Audience expressions: estimate their size.
    #[command(subcommand)]
    Audience(directory_cmd::AudienceCommand),
    /// Send a push (`herald push --audience ..`), or look at one (`herald push get ID`).
    Push(push_cmd::PushArgs),
    /// Mint a client token for an account (what a device presents when it connects).
    Token(push_cmd::TokenArgs),
    /// Connect as a device, print each push as a JSON line and ack it.
    Listen(listen_cmd::ListenArgs),
    /// Per-day totals of the app.
    #[command(subcommand)]
    Stats(stats_cmd::StatsCommand),
    /// The app's webhook: events posted to its back end.
    #[command(subcommand)]
    Webhook(stats_cmd::WebhookCommand),
    /// The app's APNs and FCM credentials.
    #[command(subcommand)]
    Vendor(vendor_cmd::VendorCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Client connections planned for this process (checked against the open-files limit).
    #[arg(long, default_value_t = 10_000)]
    pub connections: u64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// Where the server's settings and state are.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// TOML settings file (see herald.example.toml).
    #[arg(long, env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./herald-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// `sqlite` (the embedded default, in the data directory) or a `postgres://` URL; also
    /// the `store` setting and `HERALD_STORE`.
    #[arg(long)]
    pub store: Option<String>,
}

/// Where the server is and who we are to it; shared by every client subcommand.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Base URL of the herald server.
    #[arg(long, env = "HERALD_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// Admin token, for `app` subcommands.
    #[arg(long, env = "HERALD_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
    /// App key, for signed app calls.
    #[arg(long, env = "HERALD_APP_KEY", global = true)]
    pub app_key: Option<String>,
    /// App secret, for signed app calls.
    #[arg(long, env = "HERALD_APP_SECRET", hide_env_values = true, global = true)]
    pub app_secret: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Runs a client subcommand; `serve` is handled by the binary itself.
pub async fn run_client(command: Command, conn: Connection) -> Result<(), ClientError> {
    match command {
        Command::Serve(_)
        | Command::Migrate(_)
        | Command::Checkconfig(_)
        | Command::Doctor(_)
        | Command::Completions(_)
        | Command::Manpage => Ok(()),
        Command::App(cmd) => cmd.run(conn).await,
        Command::Api(args) => args.run(conn).await,
        Command::Account(cmd) => cmd.run(conn).await,
        Command::Device(cmd) => cmd.run(conn).await,
        Command::Tag(cmd) => cmd.run(conn).await,
        Command::Attr(cmd) => cmd.run(conn).await,
        Command::Audience(cmd) => cmd.run(conn).await,
        Command::Push(args) => args.run(conn).await,
        Command::Token(args) => args.run(conn).await,
        Command::Listen(args) => args.run(conn).await,
        Command::Stats(cmd) => cmd.run(conn).await,
        Command::Webhook(cmd) => cmd.run(conn).await,
        Command::Vendor(cmd) => cmd.run(conn).await,
    }
}
