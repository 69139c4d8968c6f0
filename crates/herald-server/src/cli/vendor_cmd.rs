//! `herald vendor ...`: the app's APNs and FCM credentials.

use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::app_cmd::show;
use super::output;
use super::{Client, ClientError, Connection};

#[derive(Debug, Subcommand)]
pub enum VendorCommand {
    /// Set the app's APNs token-auth credentials.
    SetApns {
        /// The .p8 key file from the Apple developer account.
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        team_id: String,
        /// The app's bundle id (apns-topic).
        #[arg(long)]
        topic: String,
        /// Use the sandbox (development) environment.
        #[arg(long)]
        sandbox: bool,
    },
    /// Set the app's FCM HTTP v1 credentials.
    SetFcm {
        /// The service-account JSON key file.
        #[arg(long)]
        service_account: PathBuf,
        /// Firebase project [default: the service account's].
        #[arg(long)]
        project_id: Option<String>,
    },
    /// Show credentials (apns or fcm), secrets redacted.
    Get { vendor: String },
    /// Remove credentials (apns or fcm).
    Delete { vendor: String },
}

fn read(path: &PathBuf) -> Result<String, ClientError> {
    std::fs::read_to_string(path)
        .map_err(|err| ClientError::Usage(format!("cannot read {}: {err}", path.display())))
}

impl VendorCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let client = Client::new(conn.clone());
        let out = match self {
            VendorCommand::SetApns { key_file, key_id, team_id, topic, sandbox } => {
                let environment = if sandbox { "sandbox" } else { "production" };
                let body = json!({ "key_p8": read(&key_file)?, "key_id": key_id, "team_id": team_id,
                    "topic": topic, "environment": environment });
                client.signed(Method::PUT, "/v1/vendors/apns", Some(&body)).await?
            }
            VendorCommand::SetFcm { service_account, project_id } => {
                let body = json!({ "service_account_json": read(&service_account)?, "project_id": project_id });
                client.signed(Method::PUT, "/v1/vendors/fcm", Some(&body)).await?
            }
            VendorCommand::Get { vendor } => {
                client.signed(Method::GET, &format!("/v1/vendors/{vendor}"), None).await?
            }
            VendorCommand::Delete { vendor } => {
                client.signed(Method::DELETE, &format!("/v1/vendors/{vendor}"), None).await?;
                json!({ "deleted": vendor })
            }
        };
        show(&conn, &out, |out: &Value| output::json(out));
        Ok(())
    }
}
