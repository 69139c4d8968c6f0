//! Starts the real `herald` binary on an ephemeral port with a temporary data directory and
//! talks to it over HTTP, as an operator or an app back end would.
#![allow(dead_code, clippy::unwrap_used)]

pub mod browser;
pub mod vendors;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use herald_client::{Client, ConnectOptions, Push, Reconnect};
use herald_core::signature::{self, SignedParts};
use reqwest::Method;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running herald process; killed when dropped.
pub struct Herald {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    /// Lines the process printed on stdout after the listening line.
    pub stdout: mpsc::Receiver<String>,
    /// Lines printed on stdout before and including the listening line.
    pub banner: Vec<String>,
    /// Lines printed on stderr (the logs), when the start asked to capture them.
    pub stderr: Option<mpsc::Receiver<String>>,
    http: reqwest::Client,
}

/// Options for one start.
#[derive(Default, Clone)]
pub struct Start {
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    /// Leave HERALD_ADMIN_TOKEN unset so the server generates one.
    pub generated_token: bool,
    /// Keep stderr (the logs) in [`Herald::stderr`] instead of passing it through.
    pub capture_stderr: bool,
}

impl Herald {
    pub fn start(data: &Path) -> Herald {
        Self::start_with(data, Start::default())
    }

    pub fn start_with(data: &Path, start: Start) -> Herald {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.arg("serve").arg("--data").arg(data).arg("--listen").arg("127.0.0.1:0");
        cmd.args(&start.args);
        cmd.env_remove("HERALD_ADMIN_TOKEN").env("HERALD_LOG_LEVEL", "warn");
        if !start.generated_token {
            cmd.env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN);
        }
        if !start.env.iter().any(|(name, _)| name == "HERALD_STORE") {
            if let Some(store) = test_store(data) {
                cmd.env("HERALD_STORE", store.url).env("HERALD_POSTGRES_SCHEMA", store.schema);
            }
        }
        cmd.envs(start.env.iter().map(|(k, v)| (k, v)));
        let stderr = if start.capture_stderr { Stdio::piped() } else { Stdio::inherit() };
        cmd.stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().expect("start herald");
        let rx = lines_of(child.stdout.take().expect("stdout"));
        let stderr = child.stderr.take().map(lines_of);
        let mut banner = Vec::new();
        let base = loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("herald did not start");
            banner.push(line.clone());
            if let Some(url) = line.strip_prefix("herald listening on ") {
                break url.to_owned();
            }
        };
        Herald {
            child,
            base,
            data: data.to_owned(),
            stdout: rx,
            banner,
            stderr,
            http: reqwest::Client::new(),
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "herald exited with {exit}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    pub async fn raw(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        send(req).await
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// Creates an app and returns `(id, key, secret)`.
    pub async fn create_app(&self, name: &str) -> AppCreds {
        self.create_app_named(name, serde_json::json!({})).await
    }

    /// Creates an app with limits that differ from the defaults.
    pub async fn create_app_with(&self, limits: Value) -> AppCreds {
        self.create_app_named("test", limits).await
    }

    async fn create_app_named(&self, name: &str, limits: Value) -> AppCreds {
        let body = serde_json::json!({ "name": name, "limits": limits });
        let (status, app) = self.admin(Method::POST, "/admin/apps", Some(body)).await;
        assert_eq!(status, 201, "{app}");
        AppCreds {
            id: app["id"].as_i64().unwrap(),
            key: app["key"].as_str().unwrap().into(),
            secret: app["secret"].as_str().unwrap().into(),
        }
    }

    /// A device of `account` connected through the SDK (no reconnects: tests see every close).
    pub async fn device(
        &self,
        app: &AppCreds,
        account: &str,
        device: &str,
        platform: &str,
    ) -> Client {
        let expires = chrono::Utc::now().timestamp() + 3600;
        let token = herald_client::mint_token(&app.key, &app.secret, account, expires);
        let mut options = ConnectOptions::new(token, device, platform, "com.shop");
        options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
        let url = format!("{}/v1/connect", self.base.replace("http://", "ws://"));
        Client::connect(url, options).await.expect("connect")
    }

    /// A correctly signed request.
    pub async fn signed(
        &self,
        app: &AppCreds,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Signer::new(app).sign(
            self.request(method.clone(), path),
            method.as_str(),
            path,
            body.as_bytes(),
        );
        send(req.body(body)).await
    }
}

/// The lines of a child's output, read on a thread of their own so that the child never blocks.
fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The PostgreSQL server of tests (`HERALD_TEST_POSTGRES`, by default the machine's).
pub fn test_postgres_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether `HERALD_TEST_STORE=postgres` asks for the servers of tests to run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("HERALD_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// A server's PostgreSQL store in tests: a schema of its own, whose sessions carry its name.
pub struct TestStore {
    pub url: String,
    pub schema: String,
}

const TEST_SCHEMA_PREFIX: &str = "herald_t_";
const TEST_SCHEMA_FILE: &str = "test-postgres-schema";

/// The store a server of this test process uses, when the tests run on PostgreSQL: the
/// schema's name is kept in the data directory, so that a restart finds its data again.
pub fn test_store(data: &Path) -> Option<TestStore> {
    on_postgres().then(|| postgres_test_store(data))
}

/// The PostgreSQL store of a server of this test process, whatever store the others use.
pub fn postgres_test_store(data: &Path) -> TestStore {
    sweep_stale_schemas();
    let file = data.join(TEST_SCHEMA_FILE);
    let schema = match std::fs::read_to_string(&file) {
        Ok(schema) => schema.trim().to_owned(),
        Err(_) => {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let nanos = Utc::now().timestamp_subsec_nanos();
            let schema = format!("{TEST_SCHEMA_PREFIX}{}_{n}_{nanos}", std::process::id());
            std::fs::create_dir_all(data).unwrap();
            std::fs::write(&file, &schema).unwrap();
            schema
        }
    };
    let url = test_postgres_url();
    let joiner = if url.contains('?') { '&' } else { '?' };
    TestStore { url: format!("{url}{joiner}application_name={schema}"), schema }
}

/// Runs `sql` on a test server's PostgreSQL schema; returns the rows it touched (or selected).
pub fn postgres_sql(store: &TestStore, sql: &str) -> u64 {
    let (url, schema, sql) = (store.url.clone(), store.schema.clone(), sql.to_owned());
    let ran = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
            sqlx::query(&format!("SET search_path TO \"{schema}\"")).execute(&mut conn).await?;
            sqlx::query(&sql).execute(&mut conn).await.map(|done| done.rows_affected())
        })
    });
    ran.join().unwrap().unwrap()
}

/// Drops, once per test process, the schemas of test processes that have ended.
fn sweep_stale_schemas() {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| {
        let stale = |name: &str| {
            let pid = name.strip_prefix(TEST_SCHEMA_PREFIX).and_then(|rest| rest.split('_').next());
            pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists())
        };
        let swept = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let url = test_postgres_url();
            let dropped = runtime.block_on(herald_store::test_schemas::drop_stale(
                &url,
                TEST_SCHEMA_PREFIX,
                stale,
            ));
            dropped.map_err(std::io::Error::other)
        });
        if let Ok(Err(err)) = swept.join() {
            eprintln!("cannot drop stale test schemas: {err}");
        }
    });
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Debug)]
pub struct AppCreds {
    pub id: i64,
    pub key: String,
    pub secret: String,
}

/// Builds signature headers, with every part overridable to provoke refusals.
pub struct Signer {
    pub key: String,
    pub secret: String,
    pub timestamp: i64,
    pub nonce: String,
}

impl Signer {
    pub fn new(app: &AppCreds) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Signer {
            key: app.key.clone(),
            secret: app.secret.clone(),
            timestamp: Utc::now().timestamp(),
            nonce: format!("nonce-{}-{n}", Utc::now().timestamp_nanos_opt().unwrap_or_default()),
        }
    }

    pub fn sign(
        &self,
        req: reqwest::RequestBuilder,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let (bare, query) = path.split_once('?').unwrap_or((path, ""));
        let parts = SignedParts {
            method,
            path: bare,
            query,
            timestamp: self.timestamp,
            nonce: &self.nonce,
            body,
        };
        req.header(signature::KEY_HEADER, &self.key)
            .header(signature::TIMESTAMP_HEADER, self.timestamp.to_string())
            .header(signature::NONCE_HEADER, &self.nonce)
            .header(signature::SIGNATURE_HEADER, parts.sign(&self.secret))
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The client's next push, failing the test if none comes within 20 s.
pub async fn next_push(client: &mut Client) -> Push {
    tokio::time::timeout(Duration::from_secs(20), client.next_push())
        .await
        .expect("a push in time")
        .expect("client running")
}

/// Waits until `ready` holds, failing the test after 20 s: vendor sends and webhooks happen
/// in the background.
pub async fn until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..400 {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Runs the `herald` CLI with the given args and environment; returns (success, stdout, stderr).
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_ADMIN_TOKEN")
        .env_remove("HERALD_APP_KEY")
        .env_remove("HERALD_APP_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("run herald cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
