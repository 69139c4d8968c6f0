//! The Nchan peer: the same fan-out through nginx with the Nchan module. The bench writes an
//! nginx configuration of its own into a temporary directory and starts nginx itself (in the
//! foreground, its own pid file, error log and temp paths, an ephemeral port); N WebSocket
//! subscribers on one channel, spread over worker processes and source addresses like
//! herald's clients; messages published with HTTP POSTs to the publisher location over
//! keep-alive connections, as many at once as herald's pushes; memory from the RSS of the
//! nginx master and worker processes.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use tokio::process::{Child, Command};

use super::peer::{answers, connect_all, one_and_burst};
use super::report::Side;
use super::scenarios::{Publish, SendFuture};
use super::workers::Workers;
use super::{FanoutArgs, Results, Scenario};
use crate::clock::now_us;
use crate::control::{scan, Command as WorkerCommand, NchanConnect};
use crate::proc::{children, rss_kib_sum};

/// How to get nginx and Nchan where they are missing.
pub const INSTALL_HINT: &str =
    "install nginx with the Nchan module: `apt-get install nginx libnginx-mod-nchan` (Debian, Ubuntu)";
/// Open files each nginx worker may have: what one process may open on this machine.
const WORKER_FILES: u32 = 20_000;
/// Files a worker needs besides client sockets (listener, logs, channels to the others).
const SPARE_FILES: u32 = 64;

/// Whether the nginx binary and the Nchan module given are there; `Err` says what is missing
/// and how to install it.
pub fn installed(args: &FanoutArgs) -> anyhow::Result<()> {
    for path in [&args.nginx_bin, &args.nchan_module] {
        if !path.exists() {
            bail!("{} not found: {INSTALL_HINT}", path.display());
        }
    }
    Ok(())
}

/// An nginx this run started; stopped (SIGTERM) by [`Nginx::stop`].
struct Nginx {
    addr: SocketAddr,
    pid: u32,
    workers: u32,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(args: &FanoutArgs) -> anyhow::Result<Self> {
        installed(args)?;
        let dir = tempfile::Builder::new().prefix("herald-bench-nginx-").tempdir()?;
        // nginx's workers run as an unprivileged user when started as root: let them in.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let addr = free_port()?;
        let workers = match args.nchan_workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
            n => n,
        };
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(&args.nchan_module, dir.path(), addr, workers))?;
        let log = dir.path().join("error.log");
        let mut child = Command::new(&args.nginx_bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("stderr.log"))?))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", args.nginx_bin.display()))?;
        let pid = child.id().context("nginx exited at once")?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !answers(addr).await {
            if child.try_wait()?.is_some() || tokio::time::Instant::now() >= deadline {
                let stderr = std::fs::read_to_string(dir.path().join("stderr.log"));
                let errors = std::fs::read_to_string(&log);
                bail!(
                    "nginx did not start listening on {addr}: {}{}",
                    stderr.unwrap_or_default().trim(),
                    errors.unwrap_or_default().trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { addr, pid, workers, child, dir })
    }

    /// The master and its workers.
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        pids.extend(children(self.pid));
        pids
    }

    /// Lines of the error log at `warn` or worse.
    fn problems(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("error.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        Ok(())
    }
}

/// A loopback address with a port nothing listens on now (nginx cannot report the port it
/// got for port 0).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

/// The whole nginx configuration: nothing outside `dir` is read or written but the module.
fn config(module: &Path, dir: &Path, addr: SocketAddr, workers: u32) -> String {
    let dir = dir.display();
    let connections = WORKER_FILES - SPARE_FILES;
    format!(
        r#"load_module {module};
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile {WORKER_FILES};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections {connections};
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # Publishers keep their connections for the whole run.
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    server {{
        # reuseport: the kernel spreads the subscribers evenly over the worker processes.
        listen {addr} reuseport backlog=4096;
        location ~ ^/sub/(\w+)$ {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
        }}
        location ~ ^/pub/(\w+)$ {{
            nchan_publisher http;
            nchan_channel_id $1;
            nchan_message_buffer_length 32;
            nchan_message_timeout 300s;
        }}
    }}
}}
"#,
        module = module.display()
    )
}

pub async fn run(args: &FanoutArgs, results: &mut Results) -> anyhow::Result<()> {
    let nginx = Nginx::start(args).await?;
    eprintln!("nchan: nginx pid {} ({} workers) on {}", nginx.pid, nginx.workers, nginx.addr);
    results.notes.push(format!(
        "nchan: {}, {} worker processes, one channel; published with HTTP POST, keep-alive, {} at once",
        nginx_version(&args.nginx_bin).await,
        nginx.workers,
        args.in_flight
    ));
    let outcome = scenarios(args, &nginx).await;
    let problems = nginx.problems();
    nginx.stop().await?;
    if !problems.is_empty() {
        results.notes.push(format!("nginx logged {} warning/error lines, first:", problems.len()));
        results.notes.extend(problems.iter().take(3).map(|l| format!("    {l}")));
    }
    results.nchan = Some(outcome?);
    Ok(())
}

async fn scenarios(args: &FanoutArgs, nginx: &Nginx) -> anyhow::Result<Side> {
    let n = args.connections.min(nginx.workers * (WORKER_FILES - SPARE_FILES));
    let mut side = Side { connections: n, ..Side::default() };
    let shares = args.shares(n);
    let mut workers = Workers::spawn(&shares).await?;
    let channel = format!("hb{}", now_us());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib_sum(&nginx.pids());
    let url = format!("ws://{}/sub/{channel}", nginx.addr);
    let subscribe = |first, count| {
        WorkerCommand::NchanConnect(NchanConnect {
            url: url.clone(),
            first,
            count,
            sources: args.sources(),
            concurrency: args.connect_concurrency,
        })
    };
    let connected = connect_all(args, "nchan", &mut workers, &shares, subscribe).await?;
    side.connect = Some(connected.clone());
    if args.has(Scenario::Idle) {
        tokio::time::sleep(args.idle_settle()).await;
        side.set_idle(rss_before, rss_kib_sum(&nginx.pids()), connected.ok);
    }
    let publisher = Publisher::new(nginx.addr, &channel, args)?;
    let send: Publish = Box::new(move |n| publisher.publish(n));
    let pids = nginx.pids();
    one_and_burst(args, "nchan", &mut workers, &pids, &send, &mut side).await?;
    if args.has(Scenario::Burst) {
        tokio::time::sleep(args.idle_settle()).await;
        side.set_after_burst(rss_kib_sum(&nginx.pids()));
    }
    workers.disconnect().await?;
    workers.exit().await;
    Ok(side)
}

async fn nginx_version(binary: &Path) -> String {
    let output = Command::new(binary).arg("-v").output().await;
    // `nginx -v` prints to stderr: "nginx version: nginx/1.22.1".
    output.ok().map_or_else(
        || "nginx".to_owned(),
        |o| {
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .trim_start_matches("nginx version: ")
                .to_owned()
        },
    )
}

/// Publishes to the channel's publisher location; a message counts as sent once Nchan
/// answered the POST. Requests in flight at once each use a keep-alive connection of the pool.
#[derive(Clone)]
struct Publisher {
    http: reqwest::Client,
    url: String,
    pad: String,
}

impl Publisher {
    fn new(addr: SocketAddr, channel: &str, args: &FanoutArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(args.in_flight.max(1) as usize)
            .tcp_nodelay(true)
            .build()?;
        let url = format!("http://{addr}/pub/{channel}");
        Ok(Self { http, url, pad: "x".repeat(args.pad) })
    }

    fn publish(&self, n: u64) -> SendFuture {
        let this = self.clone();
        Box::pin(async move {
            let stamp = now_us();
            let body = json!({"n": n, scan::STAMP: stamp, "pad": this.pad}).to_string();
            let response = this
                .http
                .post(&this.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .context("publishing to nchan")?;
            let status = response.status();
            // Read the answer to the end so that the connection goes back to the pool.
            let text = response.text().await.unwrap_or_default();
            if !status.is_success() {
                bail!("nchan answered {status}: {}", text.trim());
            }
            Ok(stamp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_stays_in_its_directory() {
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        let conf = config(Path::new("/m/nchan.so"), Path::new("/tmp/x"), addr, 2);
        assert!(conf.starts_with("load_module /m/nchan.so;"));
        assert!(conf.contains("listen 127.0.0.1:4567 reuseport"));
        assert!(conf.contains("worker_processes 2;"));
        for line in conf.lines().filter(|l| l.contains('/') && !l.contains("location")) {
            let path = line.split_whitespace().nth(1).unwrap_or_default();
            assert!(
                path.starts_with("/tmp/x/") || path.starts_with("/m/"),
                "{line} points outside the run's directory"
            );
        }
    }
}
