//! `herald stats days` and `herald webhook ...`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::app_cmd::show;
use super::output;
use super::{Client, ClientError, Connection};

#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Pushes, deliveries and opens per UTC day.
    Days {
        /// First day, YYYY-MM-DD [default: 6 days before --to].
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD [default: today].
        #[arg(long)]
        to: Option<String>,
    },
}

impl StatsCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let StatsCommand::Days { from, to } = self;
        let mut query = Vec::new();
        query.extend(from.map(|f| format!("from={f}")));
        query.extend(to.map(|t| format!("to={t}")));
        let path = format!("/v1/stats/days?{}", query.join("&"));
        let out =
            Client::new(conn.clone()).signed(Method::GET, path.trim_end_matches('?'), None).await?;
        show(&conn, &out, |out| {
            let rows = out["days"].as_array().map(Vec::as_slice).unwrap_or_default();
            output::table(rows, &["day", "pushes", "delivered", "opened"]);
        });
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Post the app's events to URL (signed with the app secret).
    Set {
        #[arg(long)]
        url: String,
        /// push.finished, push.failed, device.token_invalidated (repeatable; default all).
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// Show the webhook.
    Get,
    /// Stop posting events.
    Delete,
}

impl WebhookCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let client = Client::new(conn.clone());
        let out = match self {
            WebhookCommand::Set { url, events } => {
                let events = (!events.is_empty()).then_some(events);
                let body = json!({ "url": url, "events": events });
                client.signed(Method::PUT, "/v1/webhook", Some(&body)).await?
            }
            WebhookCommand::Get => client.signed(Method::GET, "/v1/webhook", None).await?,
            WebhookCommand::Delete => {
                client.signed(Method::DELETE, "/v1/webhook", None).await?;
                json!({ "deleted": true })
            }
        };
        show(&conn, &out, |out| match out.get("deleted") {
            Some(_) => println!("webhook deleted"),
            None => output::fields(out, &["url", "events", "updated_at"]),
        });
        Ok(())
    }
}
