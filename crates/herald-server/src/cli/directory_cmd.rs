//! `herald account|device|tag|attr|audience ...`: the app's directory, through signed calls.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::app_cmd::{parse_json_arg, show};
use super::output;
use super::{Client, ClientError, Connection};

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create accounts (importing again is a no-op), or import a file of accounts with their
    /// tags and attributes (`--file users.ndjson` or `users.csv`).
    Import {
        /// Account names to create.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        accounts: Vec<String>,
        #[command(flatten)]
        file: super::import_cmd::ImportFile,
    },
    /// Show an account with its tags, attributes and devices.
    Get { account: String },
    /// List accounts in name order.
    List {
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Delete an account: it leaves every tag and attribute, its devices go.
    Delete { account: String },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register or update a device and bind it to an account.
    Register(RegisterArgs),
    /// Show a device and its account.
    Get { device: String },
    /// Unregister a device.
    Delete { device: String },
    /// Registered devices per platform.
    Stats,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[arg(long)]
    pub account: String,
    #[arg(long)]
    pub device: String,
    /// ios, android, web, ...
    #[arg(long)]
    pub platform: String,
    #[arg(long)]
    pub package: String,
    #[arg(long, conflicts_with = "fcm_token")]
    pub apns_token: Option<String>,
    #[arg(long)]
    pub fcm_token: Option<String>,
    #[arg(long)]
    pub app_version: Option<String>,
    #[arg(long)]
    pub locale: Option<String>,
    #[arg(long)]
    pub time_zone: Option<String>,
}

/// Accounts and tags of a tag command; both flags repeat.
#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(long = "account", required = true)]
    pub accounts: Vec<String>,
    #[arg(long = "tag", required = true)]
    pub tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AccountsArg {
    #[arg(long = "account", required = true)]
    pub accounts: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Append tags.
    Add(TagArgs),
    /// Remove tags.
    Remove(TagArgs),
    /// Replace all tags.
    Set(TagArgs),
    /// Remove all tags.
    Clear(AccountsArg),
    /// Show tags.
    Get(AccountsArg),
}

#[derive(Debug, Subcommand)]
pub enum AttrCommand {
    /// Show attribute names, or change them with --set / --unset.
    Names {
        /// SLOT=NAME, e.g. 0=city (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
        /// SLOT to unname; clears that attribute for every account (repeatable).
        #[arg(long = "unset")]
        unset: Vec<u8>,
    },
    /// Set attribute values: --attr NAME=VALUE for every --account.
    Set {
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
        #[arg(long = "attr", required = true)]
        attrs: Vec<String>,
    },
    /// Show attribute values.
    Get(AccountsArg),
    /// Remove attribute values by name.
    Remove {
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AudienceCommand {
    /// Audience size and split by platform, without pushing.
    Estimate {
        /// An audience expression, e.g. '{"tag":"vip"}'.
        #[arg(long)]
        audience: String,
    },
}

fn split_pair<'a>(raw: &'a str, what: &str) -> Result<(&'a str, &'a str), ClientError> {
    raw.split_once('=')
        .ok_or_else(|| ClientError::Usage(format!("{what} must look like KEY=VALUE, got `{raw}`")))
}

async fn call(
    conn: &Connection,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    Client::new(conn.clone()).signed(method, path, body.as_ref()).await
}

/// Prints a batch result: how many changed, and each account that did not.
fn show_batch(report: &Value) {
    println!("updated {}", report["updated"]);
    for failed in report["failed"].as_array().into_iter().flatten() {
        println!(
            "failed  {}: {}",
            failed["account"].as_str().unwrap_or_default(),
            failed["message"].as_str().unwrap_or_default()
        );
    }
}

/// Prints `{"accounts":{name: value}, "unknown": [..]}` as one line per account.
fn show_by_account(answer: &Value) {
    for (account, value) in answer["accounts"].as_object().into_iter().flatten() {
        println!("{account}  {value}");
    }
    for unknown in answer["unknown"].as_array().into_iter().flatten() {
        println!("{}  (unknown account)", unknown.as_str().unwrap_or_default());
    }
}

impl AccountCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        match self {
            AccountCommand::Import { file, .. } if file.file.is_some() => file.run(&conn).await?,
            AccountCommand::Import { accounts, .. } => {
                let out = call(
                    &conn,
                    Method::POST,
                    "/v1/accounts/import",
                    Some(json!({ "accounts": accounts })),
                )
                .await?;
                show(&conn, &out, |out| {
                    let count = |key: &str| out[key].as_array().map_or(0, Vec::len);
                    println!("created {}, existing {}", count("created"), count("existing"));
                });
            }
            AccountCommand::Get { account } => {
                let out = call(
                    &conn,
                    Method::GET,
                    &format!("/v1/accounts/{}", path_segment(&account)),
                    None,
                )
                .await?;
                show(&conn, &out, |a| {
                    output::fields(a, &["account", "created_at", "tags", "attributes"]);
                    output::table(
                        a["devices"].as_array().map(Vec::as_slice).unwrap_or_default(),
                        &["device_id", "platform", "package", "vendor_token"],
                    );
                });
            }
            AccountCommand::List { after, limit } => {
                let mut path = format!("/v1/accounts?limit={limit}");
                if let Some(after) = after {
                    path.push_str(&format!("&after={}", path_segment(&after)));
                }
                let out = call(&conn, Method::GET, &path, None).await?;
                show(&conn, &out, |page| {
                    output::table(
                        page["accounts"].as_array().map(Vec::as_slice).unwrap_or_default(),
                        &["account", "created_at"],
                    );
                    if let Some(next) = page["next"].as_str() {
                        println!("more: --after {next}");
                    }
                });
            }
            AccountCommand::Delete { account } => {
                call(
                    &conn,
                    Method::DELETE,
                    &format!("/v1/accounts/{}", path_segment(&account)),
                    None,
                )
                .await?;
                show(&conn, &json!({ "deleted": account }), |_| {
                    println!("account {account} deleted")
                });
            }
        }
        Ok(())
    }
}

impl DeviceCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        match self {
            DeviceCommand::Register(args) => {
                let vendor_token = match (&args.apns_token, &args.fcm_token) {
                    (Some(token), _) => json!({ "kind": "apns", "token": token }),
                    (_, Some(token)) => json!({ "kind": "fcm", "token": token }),
                    _ => Value::Null,
                };
                let body = json!({
                    "account": args.account, "platform": args.platform, "package": args.package,
                    "vendor_token": vendor_token, "app_version": args.app_version,
                    "locale": args.locale, "time_zone": args.time_zone,
                });
                let out = call(
                    &conn,
                    Method::PUT,
                    &format!("/v1/devices/{}", path_segment(&args.device)),
                    Some(body),
                )
                .await?;
                show(&conn, &out, |d| {
                    output::fields(d, &["device_id", "account", "platform", "package"])
                });
            }
            DeviceCommand::Get { device } => {
                let out = call(
                    &conn,
                    Method::GET,
                    &format!("/v1/devices/{}", path_segment(&device)),
                    None,
                )
                .await?;
                show(&conn, &out, |d| {
                    output::fields(
                        d,
                        &[
                            "device_id",
                            "account",
                            "platform",
                            "package",
                            "vendor_token",
                            "app_version",
                            "locale",
                            "time_zone",
                        ],
                    )
                });
            }
            DeviceCommand::Delete { device } => {
                call(
                    &conn,
                    Method::DELETE,
                    &format!("/v1/devices/{}", path_segment(&device)),
                    None,
                )
                .await?;
                show(&conn, &json!({ "deleted": device }), |_| {
                    println!("device {device} unregistered")
                });
            }
            DeviceCommand::Stats => {
                let out = call(&conn, Method::GET, "/v1/stats/devices", None).await?;
                show(&conn, &out, |s| {
                    println!("total  {}", s["total"]);
                    for (platform, n) in s["by_platform"].as_object().into_iter().flatten() {
                        println!("{platform}  {n}");
                    }
                });
            }
        }
        Ok(())
    }
}

impl TagCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let (path, body) = match self {
            TagCommand::Add(a) => {
                ("/v1/tags/add", json!({ "accounts": a.accounts, "tags": a.tags }))
            }
            TagCommand::Remove(a) => {
                ("/v1/tags/remove", json!({ "accounts": a.accounts, "tags": a.tags }))
            }
            TagCommand::Set(a) => {
                ("/v1/tags/set", json!({ "accounts": a.accounts, "tags": a.tags }))
            }
            TagCommand::Clear(a) => ("/v1/tags/clear", json!({ "accounts": a.accounts })),
            TagCommand::Get(a) => {
                let out = call(
                    &conn,
                    Method::POST,
                    "/v1/tags/get",
                    Some(json!({ "accounts": a.accounts })),
                )
                .await?;
                show(&conn, &out, show_by_account);
                return Ok(());
            }
        };
        let out = call(&conn, Method::POST, path, Some(body)).await?;
        show(&conn, &out, show_batch);
        Ok(())
    }
}

impl AttrCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        match self {
            AttrCommand::Names { set, unset } => {
                let out = if set.is_empty() && unset.is_empty() {
                    call(&conn, Method::GET, "/v1/attributes/names", None).await?
                } else {
                    let mut names = serde_json::Map::new();
                    for pair in &set {
                        let (slot, name) = split_pair(pair, "--set")?;
                        names.insert(slot.to_owned(), json!(name));
                    }
                    for slot in unset {
                        names.insert(slot.to_string(), Value::Null);
                    }
                    call(
                        &conn,
                        Method::PUT,
                        "/v1/attributes/names",
                        Some(json!({ "names": names })),
                    )
                    .await?
                };
                show(&conn, &out, |out| {
                    for (slot, name) in out["names"].as_object().into_iter().flatten() {
                        println!("{slot}  {}", name.as_str().unwrap_or_default());
                    }
                });
            }
            AttrCommand::Set { accounts, attrs } => {
                let mut values = serde_json::Map::new();
                for pair in &attrs {
                    let (name, value) = split_pair(pair, "--attr")?;
                    values.insert(name.to_owned(), json!(value));
                }
                let body: Vec<Value> = accounts
                    .iter()
                    .map(|a| json!({ "account": a, "attributes": values }))
                    .collect();
                let out = call(
                    &conn,
                    Method::POST,
                    "/v1/attributes/set",
                    Some(json!({ "accounts": body })),
                )
                .await?;
                show(&conn, &out, show_batch);
            }
            AttrCommand::Get(a) => {
                let out = call(
                    &conn,
                    Method::POST,
                    "/v1/attributes/get",
                    Some(json!({ "accounts": a.accounts })),
                )
                .await?;
                show(&conn, &out, show_by_account);
            }
            AttrCommand::Remove { accounts, names } => {
                let body: Vec<Value> =
                    accounts.iter().map(|a| json!({ "account": a, "names": names })).collect();
                let out = call(
                    &conn,
                    Method::POST,
                    "/v1/attributes/remove",
                    Some(json!({ "accounts": body })),
                )
                .await?;
                show(&conn, &out, show_batch);
            }
        }
        Ok(())
    }
}

impl AudienceCommand {
    pub async fn run(self, conn: Connection) -> Result<(), ClientError> {
        let AudienceCommand::Estimate { audience } = self;
        let audience = parse_json_arg("audience", Some(&audience))?.unwrap_or(Value::Null);
        let out = call(
            &conn,
            Method::POST,
            "/v1/audience/estimate",
            Some(json!({ "audience": audience })),
        )
        .await?;
        show(&conn, &out, |e| {
            println!("total           {}", e["total"]);
            println!("without device  {}", e["without_device"]);
            for (platform, n) in e["by_platform"].as_object().into_iter().flatten() {
                println!("{platform:15} {n}");
            }
        });
        Ok(())
    }
}

/// Percent-encodes a path segment or query value (account and device ids may hold any character).
fn path_segment(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
