//! `herald push ...`: send a push and look at pushes; `herald token`: mint a client token.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::app_cmd::{parse_json_arg, show};
use super::output;
use super::{Client, ClientError, Connection};

/// Without a subcommand: send a push.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PushArgs {
    #[command(subcommand)]
    pub action: Option<PushAction>,
    #[command(flatten)]
    pub send: SendArgs,
}

#[derive(Debug, Subcommand)]
pub enum PushAction {
    /// Show a push and its status.
    Get {
        push_id: String,
        /// Wait until its dispatch has ended (done, cancelled or failed), with the counts as
        /// they grow.
        #[arg(long)]
        wait: bool,
    },
    /// List pushes, newest first.
    List {
        /// scheduled, dispatching, done, cancelled or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// The push's funnel per platform: targeted, sent, stored, delivered, opened.
    Report { push_id: String },
    /// Cancel a scheduled push, or stop one that is dispatching.
    Cancel { push_id: String },
    /// Withdraw a push sent in the last 24 h.
    Recall { push_id: String },
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Audience expression, e.g. '{"all":true}' or '{"tag":"vip"}'.
    #[arg(long)]
    pub audience: Option<String>,
    /// The custom message, any JSON.
    #[arg(long)]
    pub message: Option<String>,
    /// Notification JSON: {"title","body","ios":{..},"android":{..}}.
    #[arg(long)]
    pub notification: Option<String>,
    /// Seconds the push waits for offline devices [default: the app's maximum].
    #[arg(long)]
    pub ttl: Option<u32>,
    /// Online devices only; nothing is stored.
    #[arg(long)]
    pub online_only: bool,
    /// Only devices of this platform (repeatable).
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Sending account shown to clients.
    #[arg(long)]
    pub sender: Option<String>,
    /// The same key within 7 days returns the first push.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Send at this time (RFC 3339, e.g. 2026-12-01T20:00:00+08:00) instead of now.
    #[arg(long)]
    pub at: Option<String>,
}

const PUSH_FIELDS: [&str; 8] =
    ["push_id", "status", "seq", "targeted", "created_at", "started_at", "finished_at", "error"];

impl PushArgs {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let client = Client::new(conn.clone());
        let (method, path, body) = match &self.action {
            Some(PushAction::Get { push_id, wait: true }) => {
                let out = wait_for_dispatch(&client, push_id, conn.json).await?;
                show(&conn, &out, |out| output::fields(out, &PUSH_FIELDS));
                return Ok(());
            }
            Some(PushAction::Get { push_id, .. }) => {
                (Method::GET, format!("/v1/pushes/{push_id}"), None)
            }
            Some(PushAction::List { status, limit }) => {
                let status = status.as_ref().map(|s| format!("&status={s}")).unwrap_or_default();
                (Method::GET, format!("/v1/pushes?limit={limit}{status}"), None)
            }
            Some(PushAction::Report { push_id }) => {
                (Method::GET, format!("/v1/pushes/{push_id}/report"), None)
            }
            Some(PushAction::Cancel { push_id }) => {
                (Method::POST, format!("/v1/pushes/{push_id}/cancel"), None)
            }
            Some(PushAction::Recall { push_id }) => {
                (Method::POST, format!("/v1/pushes/{push_id}/recall"), None)
            }
            None => (Method::POST, "/v1/pushes".to_owned(), Some(self.send.body()?)),
        };
        let out = client.signed(method, &path, body.as_ref()).await?;
        show(&conn, &out, |out| match &self.action {
            Some(PushAction::List { .. }) => output::table(
                out["pushes"].as_array().map(Vec::as_slice).unwrap_or_default(),
                &["push_id", "status", "seq", "targeted", "created_at"],
            ),
            Some(PushAction::Report { .. }) => show_report(out),
            Some(PushAction::Recall { .. }) => {
                output::fields(&out["push"], &PUSH_FIELDS);
                println!("online_recalled  {}", out["online_recalled"]);
            }
            _ => output::fields(out, &PUSH_FIELDS),
        });
        Ok(())
    }
}

/// How often `push get --wait` asks how far the dispatch is.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Polls a push until its dispatch has ended, showing its funnel's counts meanwhile; returns
/// the push as it ended.
async fn wait_for_dispatch(
    client: &Client,
    push_id: &str,
    quiet: bool,
) -> Result<Value, ClientError> {
    let progress = match quiet {
        true => indicatif::ProgressBar::hidden(),
        false => indicatif::ProgressBar::new_spinner(),
    };
    loop {
        let push = client.signed(Method::GET, &format!("/v1/pushes/{push_id}"), None).await?;
        let status = push["status"].as_str().unwrap_or_default().to_owned();
        if matches!(status.as_str(), "done" | "cancelled" | "failed") {
            progress.finish_and_clear();
            return Ok(push);
        }
        let report =
            client.signed(Method::GET, &format!("/v1/pushes/{push_id}/report"), None).await?;
        let count = |name: &str| report["totals"][name].as_u64().unwrap_or_default();
        progress.set_message(format!(
            "{status}: targeted {}, sent online {}, stored offline {}, delivered {}, opened {}",
            count("targeted"),
            count("sent_online"),
            count("stored_offline"),
            count("delivered"),
            count("opened"),
        ));
        progress.tick();
        tokio::time::sleep(WAIT_POLL).await;
    }
}

impl SendArgs {
    fn body(&self) -> Result<Value, ClientError> {
        let audience = parse_json_arg("audience", self.audience.as_deref())?
            .ok_or_else(|| ClientError::Usage("--audience is required to send a push".into()))?;
        let mut body = json!({ "audience": audience, "online_only": self.online_only });
        if let Some(message) = parse_json_arg("message", self.message.as_deref())? {
            body["message"] = message;
        }
        if let Some(notification) = parse_json_arg("notification", self.notification.as_deref())? {
            body["notification"] = notification;
        }
        if let Some(ttl) = self.ttl {
            body["ttl_secs"] = json!(ttl);
        }
        if !self.platforms.is_empty() {
            body["platforms"] = json!(self.platforms);
        }
        if let Some(sender) = &self.sender {
            body["sender"] = json!(sender);
        }
        if let Some(key) = &self.idempotency_key {
            body["idempotency_key"] = json!(key);
        }
        if let Some(at) = &self.at {
            let at = chrono::DateTime::parse_from_rfc3339(at).map_err(|err| {
                ClientError::Usage(format!("--at is not an RFC 3339 time: {err}"))
            })?;
            body["push_at"] = json!(at);
        }
        Ok(body)
    }
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The account the token logs in.
    #[arg(long)]
    pub account: String,
    /// Seconds the token is valid [default: 86400].
    #[arg(long)]
    pub ttl: Option<i64>,
}

impl TokenArgs {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let body = json!({ "account": self.account, "ttl_secs": self.ttl });
        let out = Client::new(conn.clone())
            .signed(Method::POST, "/v1/client-tokens", Some(&body))
            .await?;
        show(&conn, &out, |t| println!("{}", t["token"].as_str().unwrap_or_default()));
        Ok(())
    }
}

const FUNNEL: [&str; 9] = [
    "targeted",
    "sent_online",
    "stored_offline",
    "vendor_sent",
    "vendor_failed",
    "delivered",
    "opened",
    "delivery_rate",
    "open_rate",
];

/// A report as one table: a row per platform and a total row.
fn show_report(report: &Value) {
    println!(
        "push {}  status {}  audience {}",
        report["push_id"], report["status"], report["audience"]
    );
    let mut rows: Vec<Value> = Vec::new();
    for (platform, funnel) in report["platforms"].as_object().into_iter().flatten() {
        let mut row = funnel.clone();
        row["platform"] = json!(platform);
        rows.push(row);
    }
    let mut total = report["totals"].clone();
    total["platform"] = json!("total");
    rows.push(total);
    let columns: Vec<&str> = std::iter::once("platform").chain(FUNNEL).collect();
    output::table(&rows, &columns);
}
