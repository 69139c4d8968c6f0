//! `herald app ...` (admin) and `herald api ...` (signed call) subcommands.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::output;
use super::{Client, ClientError, Connection};

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app; prints its id, key and secret (the secret is shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// Limits that differ from the defaults, as JSON, e.g. '{"tags_per_account":20}'.
        #[arg(long)]
        limits: Option<String>,
    },
    /// List apps.
    List,
    /// Show one app and its limits.
    Get { id: i64 },
    /// Rename an app or change some of its limits.
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// Limits to change, as JSON.
        #[arg(long)]
        limits: Option<String>,
    },
    /// Issue a new secret; the old one keeps working for the grace period.
    RotateSecret {
        id: i64,
        /// Seconds the old secret stays valid [server default: 86400].
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// Delete an app and everything it owns.
    Delete { id: i64 },
    /// Enable a compat layer (tencent, rongcloud) for an app, or show its settings.
    Compat {
        id: i64,
        /// `tencent` or `rongcloud`.
        layer: String,
        /// Settings as JSON, e.g. '{"sdkappid":1400000001,"admin_identifier":"administrator"}';
        /// without it the current settings are shown.
        #[arg(long)]
        settings: Option<String>,
    },
}

const APP_FIELDS: [&str; 5] = ["id", "name", "key", "created_at", "updated_at"];

pub(super) fn parse_json_arg(name: &str, raw: Option<&str>) -> Result<Option<Value>, ClientError> {
    raw.map(|text| {
        serde_json::from_str(text)
            .map_err(|err| ClientError::Usage(format!("--{name} is not valid JSON: {err}")))
    })
    .transpose()
}

impl AppCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        match self {
            AppCommand::Create { name, limits } => {
                let limits = parse_json_arg("limits", limits.as_deref())?.unwrap_or(json!({}));
                let body = json!({ "name": name, "limits": limits });
                let app = Client::new(conn.clone())
                    .admin(Method::POST, "/admin/apps", Some(&body))
                    .await?;
                show(&conn, &app, |app| {
                    output::fields(app, &["id", "name", "key", "secret"]);
                    eprintln!("\nKeep the secret now: herald shows it only once.");
                });
            }
            AppCommand::List => {
                let list =
                    Client::new(conn.clone()).admin(Method::GET, "/admin/apps", None).await?;
                show(&conn, &list, |list| {
                    output::table(
                        list["apps"].as_array().map(Vec::as_slice).unwrap_or_default(),
                        &APP_FIELDS,
                    );
                });
            }
            AppCommand::Get { id } => {
                let app = Client::new(conn.clone())
                    .admin(Method::GET, &format!("/admin/apps/{id}"), None)
                    .await?;
                show(&conn, &app, show_app);
            }
            AppCommand::Update { id, name, limits } => {
                let mut body = json!({});
                if let Some(name) = name {
                    body["name"] = json!(name);
                }
                if let Some(limits) = parse_json_arg("limits", limits.as_deref())? {
                    body["limits"] = limits;
                }
                let app = Client::new(conn.clone())
                    .admin(Method::PATCH, &format!("/admin/apps/{id}"), Some(&body))
                    .await?;
                show(&conn, &app, show_app);
            }
            AppCommand::RotateSecret { id, grace_secs } => {
                let body = json!({ "grace_secs": grace_secs });
                let path = format!("/admin/apps/{id}/rotate-secret");
                let rotated =
                    Client::new(conn.clone()).admin(Method::POST, &path, Some(&body)).await?;
                show(&conn, &rotated, |r| {
                    output::fields(r, &["secret", "previous_secret_expires_at"])
                });
            }
            AppCommand::Compat { id, layer, settings } => {
                let path = format!("/admin/apps/{id}/compat/{layer}");
                let client = Client::new(conn.clone());
                let out = match parse_json_arg("settings", settings.as_deref())? {
                    Some(body) => client.admin(Method::PUT, &path, Some(&body)).await?,
                    None => client.admin(Method::GET, &path, None).await?,
                };
                show(&conn, &out, output::json);
            }
            AppCommand::Delete { id } => {
                Client::new(conn.clone())
                    .admin(Method::DELETE, &format!("/admin/apps/{id}"), None)
                    .await?;
                show(&conn, &json!({ "deleted": id }), |_| println!("app {id} deleted"));
            }
        }
        Ok(())
    }
}

fn show_app(app: &Value) {
    output::fields(app, &APP_FIELDS);
    println!("limits:");
    if let Some(limits) = app["limits"].as_object() {
        let names: Vec<&str> = limits.keys().map(String::as_str).collect();
        output::fields(&app["limits"], &names);
    }
}

/// Prints `value` as JSON with `--json`, else in the human form.
pub fn show(conn: &Connection, value: &Value, human: impl FnOnce(&Value)) {
    if conn.json {
        output::json(value);
    } else {
        human(value);
    }
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// HTTP method, e.g. GET or POST.
    pub method: String,
    /// Path with optional query, e.g. /v1/app.
    pub path: String,
    /// JSON body.
    #[arg(long)]
    pub body: Option<String>,
}

impl ApiArgs {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let method = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ClientError::Usage(format!("unknown HTTP method {}", self.method)))?;
        let body = parse_json_arg("body", self.body.as_deref())?;
        let answer = Client::new(conn).signed(method, &self.path, body.as_ref()).await?;
        output::json(&answer);
        Ok(())
    }
}
