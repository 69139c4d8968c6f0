//! What the benchmarks that drive the real binary share: starting `herald serve`, signing
//! app requests, and reading CPU time and quantiles.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use herald_core::signature::{self, SignedParts};
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

/// A running `herald serve`; killed if still running when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(data: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HERALD_LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start herald");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut base = None;
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("herald listening on ") {
                base = Some(url.to_owned());
                break;
            }
        }
        Self { child, base: base.expect("herald printed its address") }
    }

    /// SIGTERM, so the store closes cleanly before the in-process part opens it.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        self.child.wait().expect("wait for herald");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs app requests as README.md "Sign a request" describes.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
    pub secret: String,
    pub nonces: AtomicU64,
}

impl Client {
    pub async fn post(&self, path: &str, body: String) -> (u16, Value) {
        let timestamp = chrono::Utc::now().timestamp();
        let nonce =
            format!("bench-{}-{}", std::process::id(), self.nonces.fetch_add(1, Ordering::Relaxed));
        let parts = SignedParts {
            method: "POST",
            path,
            query: "",
            timestamp,
            nonce: &nonce,
            body: body.as_bytes(),
        };
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(signature::KEY_HEADER, &self.key)
            .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signature::NONCE_HEADER, &nonce)
            .header(signature::SIGNATURE_HEADER, parts.sign(&self.secret))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Client {
    /// Creates an app through the admin API and signs as it.
    pub async fn new_app(base: &str, limits: Value) -> (i64, Client) {
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{base}/admin/apps"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "bench", "limits": limits}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let client = Client {
            http,
            base: base.to_owned(),
            key: created["key"].as_str().expect("app key").to_owned(),
            secret: created["secret"].as_str().expect("app secret").to_owned(),
            nonces: AtomicU64::new(0),
        };
        (created["id"].as_i64().expect("app id"), client)
    }
}

/// CPU time (user + system, all threads) process `pid` has used, from /proc in clock ticks of
/// 10 ms: on a machine shared with other work, the cost of a step without the waiting for a core.
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10)
}

pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}
