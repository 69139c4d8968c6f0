//! `herald doctor`: what would stop or hurt a server started with these settings, checked
//! without starting one and without changing anything (no migration, no stream created).

use std::fmt;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use herald_gateway::GatewaySettings;
use herald_store::{PgStore, SqliteStore, StoreProbe};
use tokio::io::AsyncBufReadExt;

use crate::config::{Settings, StoreChoice};

/// How long a check waits for a server (PostgreSQL, NATS) before it counts as unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Clock difference with the store's server above which signed requests may start failing.
const CLOCK_WARN_SECS: i64 = 2;

/// Open files a process needs beside its client connections (store, logs, vendors, bus).
const FILES_BESIDE_CONNECTIONS: u64 = 256;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    pub verdict: Verdict,
    pub name: &'static str,
    pub detail: String,
}

impl Check {
    fn new(verdict: Verdict, name: &'static str, detail: impl Into<String>) -> Self {
        Self { verdict, name, detail: detail.into() }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        };
        write!(f, "{verdict} {:<14} {}", self.name, self.detail)
    }
}

/// Runs every check; `expected_connections` is what the operator plans for one process.
pub async fn examine(settings: &Settings, expected_connections: u64) -> Vec<Check> {
    let mut checks = vec![data_dir(&settings.data_dir), listen(settings)];
    let store = store(settings).await;
    checks.push(clock(settings, store.as_ref().ok()));
    checks.push(match store {
        Ok((target, probe)) => schema(&target, &probe),
        Err(check) => check,
    });
    checks.push(open_files(expected_connections, &settings.gateway));
    checks.push(vendor_key(settings));
    if let Some(cluster) = &settings.cluster {
        checks.push(nats(&cluster.nats).await);
    }
    checks
}

fn data_dir(dir: &Path) -> Check {
    let probe = dir.join(".herald-doctor");
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => Check::new(Verdict::Ok, "data dir", format!("{} is writable", dir.display())),
        Err(err) => Check::new(Verdict::Fail, "data dir", format!("{}: {err}", dir.display())),
    }
}

fn listen(settings: &Settings) -> Check {
    match TcpListener::bind(settings.listen) {
        Ok(_) => Check::new(Verdict::Ok, "listen", format!("{} is free", settings.listen)),
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => Check::new(
            Verdict::Warn,
            "listen",
            format!("{} is in use (a server already running there?)", settings.listen),
        ),
        Err(err) => Check::new(Verdict::Fail, "listen", format!("{}: {err}", settings.listen)),
    }
}

/// Reaches the store and reads its schema version; a failure is already the store's check.
async fn store(settings: &Settings) -> Result<(String, StoreProbe), Check> {
    let fail = |detail: String| Check::new(Verdict::Fail, "store", detail);
    let choice = settings.store_choice().map_err(|err| fail(err.to_string()))?;
    let target = crate::server::store_target(settings, &choice);
    let probe = match choice {
        StoreChoice::Sqlite => SqliteStore::probe(&settings.data_dir).await,
        StoreChoice::Postgres(options) => {
            match tokio::time::timeout(REACH_TIMEOUT, PgStore::probe(&options)).await {
                Ok(probe) => probe,
                Err(_) => return Err(fail(format!("{target}: no answer within 5 s"))),
            }
        }
    };
    probe.map(|probe| (target.clone(), probe)).map_err(|err| fail(format!("{target}: {err}")))
}

fn schema(target: &str, probe: &StoreProbe) -> Check {
    let known = probe.known_version;
    match probe.schema_version {
        None => Check::new(
            Verdict::Ok,
            "store",
            format!("{target}: reachable, empty (the first start creates schema version {known})"),
        ),
        Some(found) if found > known => Check::new(
            Verdict::Fail,
            "store",
            format!("{target}: schema version {found} is newer than this herald's {known}"),
        ),
        Some(found) if found < known => Check::new(
            Verdict::Ok,
            "store",
            format!("{target}: schema version {found}; the next start migrates it to {known}"),
        ),
        Some(found) => {
            Check::new(Verdict::Ok, "store", format!("{target}: schema version {found}, current"))
        }
    }
}

/// Signed requests carry a timestamp checked against this machine's clock; nodes of a
/// cluster compare the store's times with theirs.
fn clock(settings: &Settings, store: Option<&(String, StoreProbe)>) -> Check {
    let window = settings.signature_window_secs;
    let Some(server_time) = store.and_then(|(_, probe)| probe.server_time) else {
        let detail = format!(
            "{} UTC here; signed requests are refused beyond ±{window} s of it",
            Utc::now().format("%Y-%m-%d %H:%M:%S")
        );
        return Check::new(Verdict::Ok, "clock", detail);
    };
    let skew = (Utc::now() - server_time).num_milliseconds() as f64 / 1000.0;
    let detail = format!("{skew:+.1} s from the PostgreSQL server's clock");
    let verdict = match skew.abs() {
        s if s >= window as f64 => Verdict::Fail,
        s if s >= CLOCK_WARN_SECS as f64 => Verdict::Warn,
        _ => Verdict::Ok,
    };
    Check::new(verdict, "clock", detail)
}

/// Every client connection is an open file; the server raises its soft limit to the hard one,
/// and its gateway takes at most `[gateway] max_connections` (by default the limit less a
/// reserve for the store, the API and the vendors).
fn open_files(expected: u64, gateway: &GatewaySettings) -> Check {
    let hard = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((_, hard)) => hard,
        Err(err) => return Check::new(Verdict::Warn, "open files", format!("unknown: {err}")),
    };
    let needed = expected.saturating_add(FILES_BESIDE_CONNECTIONS);
    let cap = u64::try_from(gateway.connection_limit(hard)).unwrap_or(u64::MAX);
    let detail = format!(
        "hard limit {hard}; {expected} connections need about {needed}; \
         the gateway takes at most {cap} ([gateway] max_connections)"
    );
    let verdict = if hard >= needed && expected <= cap { Verdict::Ok } else { Verdict::Fail };
    Check::new(verdict, "open files", detail)
}

fn vendor_key(settings: &Settings) -> Check {
    if settings.vendor.credentials_key.is_some() {
        return Check::new(Verdict::Ok, "vendor key", "vendor.credentials_key is set");
    }
    let kept = settings.data_dir.join(crate::server::VENDOR_KEY_FILE);
    match std::fs::metadata(&kept) {
        Ok(_) => Check::new(Verdict::Ok, "vendor key", format!("kept in {}", kept.display())),
        Err(_) => Check::new(
            Verdict::Warn,
            "vendor key",
            "none yet: the first start generates one in the data directory; back it up with \
             the store, or set vendor.credentials_key",
        ),
    }
}

/// A NATS server greets every connection with `INFO {...}`, which says whether JetStream is
/// on: read without subscribing or creating anything.
async fn nats(url: &str) -> Check {
    let address = url.trim_start_matches("nats://").trim_start_matches("tls://");
    let address = address.rsplit_once('@').map_or(address, |(_, host)| host);
    let greeting = async {
        let stream = tokio::net::TcpStream::connect(address).await?;
        let mut line = String::new();
        tokio::io::BufReader::new(stream).read_line(&mut line).await?;
        Ok::<_, std::io::Error>(line)
    };
    match tokio::time::timeout(REACH_TIMEOUT, greeting).await {
        Ok(Ok(line)) if line.starts_with("INFO") && line.contains("\"jetstream\":true") => {
            Check::new(Verdict::Ok, "nats", format!("{address}: JetStream on"))
        }
        Ok(Ok(line)) if line.starts_with("INFO") => Check::new(
            Verdict::Fail,
            "nats",
            format!("{address}: JetStream is off (start with -js)"),
        ),
        Ok(Ok(_)) => Check::new(Verdict::Fail, "nats", format!("{address}: not a NATS server")),
        Ok(Err(err)) => Check::new(Verdict::Fail, "nats", format!("{address}: {err}")),
        Err(_) => Check::new(Verdict::Fail, "nats", format!("{address}: no answer within 5 s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(found: Option<i64>, known: i64) -> StoreProbe {
        StoreProbe { schema_version: found, known_version: known, server_time: None }
    }

    #[test]
    fn a_schema_newer_than_this_herald_fails() {
        assert_eq!(schema("db", &probe(Some(9), 8)).verdict, Verdict::Fail);
        assert_eq!(schema("db", &probe(Some(8), 8)).verdict, Verdict::Ok);
        assert_eq!(schema("db", &probe(Some(7), 8)).verdict, Verdict::Ok);
        assert_eq!(schema("db", &probe(None, 8)).verdict, Verdict::Ok);
    }

    #[test]
    fn too_few_open_files_fails() {
        let gateway = GatewaySettings::default();
        assert_eq!(open_files(u64::MAX - 1, &gateway).verdict, Verdict::Fail);
        assert_eq!(open_files(0, &gateway).verdict, Verdict::Ok);
    }

    #[test]
    fn more_connections_than_max_connections_fails() {
        let gateway = GatewaySettings { max_connections: 10, ..GatewaySettings::default() };
        let check = open_files(11, &gateway);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.detail.contains("at most 10"), "{}", check.detail);
        assert_eq!(open_files(10, &gateway).verdict, Verdict::Ok);
    }

    #[test]
    fn a_data_dir_that_is_a_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(data_dir(&file).verdict, Verdict::Fail);
        assert_eq!(data_dir(&dir.path().join("new")).verdict, Verdict::Ok);
    }

    #[test]
    fn clock_skew_beyond_the_signature_window_fails() {
        let settings = Settings { signature_window_secs: 300, ..Settings::default() };
        let at = |secs: i64| {
            let probe = StoreProbe {
                server_time: Some(Utc::now() - chrono::Duration::seconds(secs)),
                ..probe(Some(1), 1)
            };
            clock(&settings, Some(&("db".to_owned(), probe))).verdict
        };
        assert_eq!(at(0), Verdict::Ok);
        assert_eq!(at(10), Verdict::Warn);
        assert_eq!(at(400), Verdict::Fail);
    }

    #[tokio::test]
    async fn a_port_that_is_not_nats_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(b"HTTP/1.1 400 Bad Request\r\n").await.unwrap();
        });
        let check = nats(&format!("nats://{address}")).await;
        assert_eq!(check.verdict, Verdict::Fail, "{check}");
    }
}
