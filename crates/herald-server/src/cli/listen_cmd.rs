//! `herald listen`: be a device. Connects like a client app, prints each push as one JSON line
//! and acks it; handy to watch a campaign arrive and in scripts.

use std::time::Duration;

use chrono::Utc;
use clap::Args;
use herald_client::{Client, ConnectOptions, Event};

use super::{ClientError, Connection};

#[derive(Debug, Args)]
pub struct ListenArgs {
    #[arg(long)]
    pub account: String,
    #[arg(long)]
    pub device: String,
    #[arg(long, default_value = "web")]
    pub platform: String,
    #[arg(long, default_value = "herald.cli")]
    pub package: String,
    /// A client token; without it one is minted from the app key and secret.
    #[arg(long, env = "HERALD_CLIENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Stop after this many pushes.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Receive without acking (the pushes come again on the next connection).
    #[arg(long)]
    pub no_ack: bool,
}

impl ListenArgs {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let token = match (&self.token, &conn.app_key, &conn.app_secret) {
            (Some(token), _, _) => token.clone(),
            (None, Some(key), Some(secret)) => {
                let expires = Utc::now().timestamp() + 86_400;
                herald_client::mint_token(key, secret, &self.account, expires)
            }
            _ => {
                return Err(ClientError::Missing(
                    "a client token or the app key and secret",
                    "token",
                    "CLIENT_TOKEN",
                ))
            }
        };
        let url =
            format!("{}/v1/connect", conn.server.trim_end_matches('/').replacen("http", "ws", 1));
        let options = ConnectOptions::new(token, &self.device, &self.platform, &self.package);
        let mut client = Client::connect(url, options)
            .await
            .map_err(|err| ClientError::Usage(format!("cannot connect: {err}")))?;
        let deadline = self.timeout.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        let mut received = 0;
        while self.count.is_none_or(|count| received < count) {
            let event = match deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, client.next_event()).await {
                        Ok(event) => event,
                        Err(_) => break,
                    }
                }
                None => client.next_event().await,
            };
            match event {
                Some(Event::Push(push)) => {
                    println!("{}", serde_json::to_string(&push).unwrap_or_default());
                    if !self.no_ack {
                        client.ack(push.seq).map_err(|err| ClientError::Usage(err.to_string()))?;
                    }
                    received += 1;
                }
                Some(Event::Recall(recall)) => {
                    println!(
                        "{}",
                        serde_json::json!({"recall": recall.push_id, "seq": recall.seq})
                    );
                }
                Some(Event::Disconnected { reason, retry_in, .. }) => {
                    eprintln!("herald: disconnected: {reason}");
                    if retry_in.is_none() {
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        client.close().await;
        Ok(())
    }
}
