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
    Get { push_id: String },
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
}

const PUSH_FIELDS: [&str; 8] =
    ["push_id", "status", "seq", "targeted", "created_at", "started_at", "finished_at", "error"];

impl PushArgs {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let client = Client::new(conn.clone());
        let out = match self.action {
            Some(PushAction::Get { push_id }) => {
                client.signed(Method::GET, &format!("/v1/pushes/{push_id}"), None).await?
            }
            None => client.signed(Method::POST, "/v1/pushes", Some(&self.send.body()?)).await?,
        };
        show(&conn, &out, |push| output::fields(push, &PUSH_FIELDS));
        Ok(())
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
