//! The herald server under test: started here (a child process with its own temporary data
//! directory) or reached at a given URL, and its HTTP API: admin calls with the admin token,
//! app calls signed with the app secret.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use herald_core::signature::{
    SignedParts, KEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A herald process this run started; stopped (SIGTERM) by [`LocalServer::stop`].
pub struct LocalServer {
    pub addr: SocketAddr,
    pub pid: u32,
    pub admin_token: String,
    pub log: PathBuf,
    child: Child,
    _data: tempfile::TempDir,
}

impl LocalServer {
    /// Starts `herald serve` on an ephemeral loopback port and waits for its
    /// `herald listening on http://ADDR` line.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let admin_token = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        Self::start_with_token(binary, env, admin_token).await
    }

    /// Starts it with a given admin token (the nodes of one cluster share theirs).
    pub async fn start_with_token(
        binary: &Path,
        env: &[(String, String)],
        admin_token: String,
    ) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!(
                "{} not found: build it (cargo build --release -p herald-server) or pass --herald-bin",
                binary.display()
            );
        }
        let data = tempfile::Builder::new().prefix("herald-bench-").tempdir()?;
        let log = data.path().join("herald.log");
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--data")
            .arg(data.path().join("data"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("HERALD_ADMIN_TOKEN", &admin_token)
            .env("HERALD_LOG_LEVEL", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true);
        let mut child =
            command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("herald exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("herald listening on http://") {
                    return url.trim().parse::<SocketAddr>().context("listen address");
                }
            }
            bail!("herald exited before listening; see {}", log.display())
        })
        .await
        .context("herald did not start listening within 60 s")??;
        // Keep reading so that the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { addr, pid, admin_token, log, child, _data: data })
    }

    /// `kill -9`: the node dies without a word, as a crashed machine would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then up to 10 s for a clean stop, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        Ok(())
    }

    /// The server's warnings and errors (its log level is `warn`), first lines only.
    pub fn log_excerpt(&self, lines: usize) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .take(lines)
            .map(str::to_owned)
            .collect()
    }

    pub fn log_lines(&self) -> usize {
        std::fs::read_to_string(&self.log).map(|t| t.lines().count()).unwrap_or(0)
    }
}

/// Credentials of the app the bench creates.
#[derive(Debug, Clone, Deserialize)]
pub struct AppCreds {
    pub id: i64,
    pub key: String,
    pub secret: String,
}

/// The HTTP API of one server.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned() })
    }

    /// Creates an app whose limits let a benchmark push as fast as it can.
    pub async fn create_app(&self, admin_token: &str, name: &str) -> anyhow::Result<AppCreds> {
        let body = json!({
            "name": name,
            "limits": {
                "broadcast_min_interval_secs": 0,
                "broadcast_daily_quota": 1_000_000,
                "requests_per_second": 1_000_000,
                "offline_pushes_per_device": 10,
            }
        });
        let response = self
            .http
            .post(format!("{}/admin/apps", self.base))
            .bearer_auth(admin_token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("creating the app: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// A signed app request; the JSON answer, or an error naming the status and body.
    pub async fn signed(
        &self,
        app: &AppCreds,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let body = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let timestamp = (crate::clock::now_us() / 1_000_000) as i64;
        let nonce = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        let signature = SignedParts {
            method: method.as_str(),
            path,
            query: "",
            timestamp,
            nonce: &nonce,
            body: &body,
        }
        .sign(&app.secret);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(KEY_HEADER, &app.key)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(NONCE_HEADER, nonce)
            .header(SIGNATURE_HEADER, signature);
        if !body.is_empty() {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Imports accounts `bench-FIRST` … in batches of 1,000 (the API's limit per call).
    pub async fn import_accounts(&self, app: &AppCreds, count: u64) -> anyhow::Result<()> {
        let mut next = 0;
        while next < count {
            let end = (next + 1000).min(count);
            let accounts: Vec<String> = (next..end).map(|n| format!("bench-{n}")).collect();
            let body = json!({ "accounts": accounts });
            self.signed(app, reqwest::Method::POST, "/v1/accounts/import", Some(&body)).await?;
            next = end;
        }
        Ok(())
    }

    /// Sends a push to every account; `ttl_secs` `None` makes it online-only. The message
    /// carries the send time (taken here, just before the request) and a number.
    pub async fn push_all(
        &self,
        app: &AppCreds,
        n: u64,
        ttl_secs: Option<u32>,
        pad: &str,
    ) -> anyhow::Result<(String, u64)> {
        let stamp = crate::clock::now_us();
        let message = json!({ crate::control::scan::STAMP: stamp, "n": n, "pad": pad });
        let body = match ttl_secs {
            Some(ttl) => json!({"audience": {"all": true}, "message": message, "ttl_secs": ttl}),
            None => json!({"audience": {"all": true}, "message": message, "online_only": true}),
        };
        let answer = self.signed(app, reqwest::Method::POST, "/v1/pushes", Some(&body)).await?;
        let id = answer["push_id"].as_str().context("no push_id in the answer")?.to_owned();
        Ok((id, stamp))
    }

    /// Sends an online-only push to the named accounts.
    pub async fn push_to(
        &self,
        app: &AppCreds,
        accounts: &[String],
        n: u64,
        pad: &str,
    ) -> anyhow::Result<String> {
        let message = json!({ "n": n, "pad": pad });
        let body =
            json!({"audience": {"accounts": accounts}, "message": message, "online_only": true});
        let answer = self.signed(app, reqwest::Method::POST, "/v1/pushes", Some(&body)).await?;
        Ok(answer["push_id"].as_str().context("no push_id in the answer")?.to_owned())
    }

    /// The sum of the samples of Prometheus counters named `name` on `/metrics` (0 when the
    /// server has not counted any yet).
    pub async fn counter(&self, name: &str) -> anyhow::Result<f64> {
        let text = self.metrics_text().await?;
        Ok(text
            .lines()
            .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(self.http.get(format!("{}/metrics", self.base)).send().await?.text().await?)
    }

    /// `GET /v1/cluster` with the admin token.
    pub async fn cluster(&self, admin_token: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/v1/cluster", self.base))
            .bearer_auth(admin_token)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("/v1/cluster: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Waits until the dispatcher finished a push (status `done`).
    pub async fn wait_dispatched(
        &self,
        app: &AppCreds,
        push_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let path = format!("/v1/pushes/{push_id}");
            let push = self.signed(app, reqwest::Method::GET, &path, None).await?;
            match push["status"].as_str() {
                Some("done") => return Ok(()),
                Some("failed" | "cancelled") => bail!("push {push_id} ended as {}", push["status"]),
                _ if tokio::time::Instant::now() > deadline => {
                    bail!("push {push_id} not dispatched within {timeout:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}
