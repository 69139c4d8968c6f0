//! `herald vendor ...`: the app's APNs, FCM and Web Push (VAPID) credentials.

use std::path::PathBuf;

use clap::Subcommand;
use herald_vendor::WebPushCredentials;
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
    /// Set the app's Web Push (VAPID) credentials: a new key pair, or one made elsewhere (as
    /// `web-push generate-vapid-keys` prints it). Shows the public key the app's pages subscribe
    /// with. A new key pair orphans every browser subscription made with the old one.
    SetWebpush {
        /// Make a new key pair.
        #[arg(long, conflicts_with_all = ["private_key", "public_key"])]
        generate: bool,
        /// base64url of the 32-byte private key.
        #[arg(long, required_unless_present = "generate", requires = "public_key")]
        private_key: Option<String>,
        /// base64url of the 65-byte public key.
        #[arg(long, required_unless_present = "generate", requires = "private_key")]
        public_key: Option<String>,
        /// How push services reach the operator: mailto:<address> or an https:// URL.
        #[arg(long)]
        subject: String,
    },
    /// Show credentials (apns, fcm or webpush), secrets redacted.
    Get { vendor: String },
    /// Remove credentials (apns, fcm or webpush).
    Delete { vendor: String },
}

/// The VAPID credentials to send: made here, so the private key is never printed.
fn webpush_credentials(
    generate: bool,
    private_key: Option<String>,
    public_key: Option<String>,
    subject: String,
) -> Result<WebPushCredentials, ClientError> {
    match (generate, private_key, public_key) {
        (true, _, _) => {
            WebPushCredentials::generate(subject).map_err(|err| ClientError::Usage(err.to_string()))
        }
        (false, Some(private_key), Some(public_key)) => {
            Ok(WebPushCredentials { private_key, public_key, subject })
        }
        _ => Err(ClientError::Usage(
            "give --generate, or both --private-key and --public-key".into(),
        )),
    }
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
            VendorCommand::SetWebpush { generate, private_key, public_key, subject } => {
                let credentials = webpush_credentials(generate, private_key, public_key, subject)?;
                client.signed(Method::PUT, "/v1/vendors/webpush", Some(&json!(credentials))).await?
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
