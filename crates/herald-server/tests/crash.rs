//! A push answered with an id is never lost: the real binary is killed with SIGKILL at each
//! step of a push's dispatch to a large audience (held there by `HERALD_PAUSE_AT`, see the
//! herald-pause crate), started again on the same data, and must then deliver the push once
//! to every device of its audience that reconnects, report it exactly, and keep a scheduled
//! push scheduled until its time.
//!
//! `HERALD_CRASH_ACCOUNTS` sets the audience (5,000 by default; 200,000 is the full form) and
//! `HERALD_CRASH_SAMPLE` how many devices reconnect after each kill (300 by default; `all`
//! reconnects every device without a vendor token). Runs on PostgreSQL too with
//! `HERALD_TEST_STORE=postgres`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{test_store, AppCreds, Herald, Start};
use herald_client::{Client, ConnectOptions, Event, Reconnect};
use herald_core::account::Device;
use herald_store::{PgOptions, PgStore, SqliteOptions, SqliteStore, Store};
use herald_vendor::test_support::{ca_pem, FcmTestServer, TestServiceAccount};
use reqwest::Method;
use serde_json::{json, Value};

/// Every this many accounts has an Android device with an FCM token (and never connects).
const TOKEN_EVERY: usize = 10;
/// Devices connected when a push is sent, so that the online fan-out has work too.
const ONLINE: usize = 40;
/// Devices registered per store transaction while seeding.
const SEED_BATCH: usize = 10_000;
/// Longest wait for anything the server does in the background.
const PATIENCE: Duration = Duration::from_secs(300);

/// Where the server is killed, in the order a push meets them: `accepted` is a SIGKILL as soon
/// as the 201 arrives; the others are pause points of the binary.
const KILL_POINTS: [&str; 7] = [
    "accepted",
    "dispatch.begin",
    "store.begin_dispatch",
    "dispatch.fan_out",
    "dispatch.finish",
    "vendor.sent",
    "receipts.flush",
];

/// The kill points to run: all, or those named in `HERALD_CRASH_POINTS` (comma-separated).
fn kill_points() -> Vec<&'static str> {
    let Ok(wanted) = std::env::var("HERALD_CRASH_POINTS") else { return KILL_POINTS.to_vec() };
    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
    for name in &wanted {
        assert!(KILL_POINTS.contains(name), "HERALD_CRASH_POINTS: unknown point {name}");
    }
    KILL_POINTS.into_iter().filter(|p| wanted.contains(p)).collect()
}

fn accounts() -> usize {
    std::env::var("HERALD_CRASH_ACCOUNTS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000)
}

fn account(i: usize) -> String {
    format!("user-{i:07}")
}

fn device_id(i: usize) -> String {
    format!("dev-{i}")
}

fn platform(i: usize) -> &'static str {
    if i % 2 == 0 {
        "android"
    } else {
        "ios"
    }
}

fn has_token(i: usize) -> bool {
    i % TOKEN_EVERY == 0
}

fn fcm_token(i: usize) -> String {
    format!("fcm-{i}")
}

/// The devices that reconnect after each kill: spread over the whole id range, none with a
/// vendor token (a client login would replace the registered device).
fn sample(n: usize) -> Vec<usize> {
    let wanted = std::env::var("HERALD_CRASH_SAMPLE").unwrap_or_else(|_| "300".into());
    let all: Vec<usize> = (0..n).filter(|&i| !has_token(i)).collect();
    match wanted.parse::<usize>() {
        Ok(k) if k < all.len() => (0..k).map(|j| all[j * all.len() / k]).collect(),
        _ => all,
    }
}

/// Registers every account's device straight into the store, before the server starts: the
/// server must then find them all, as after any restart.
async fn seed(data: &Path, app: i64, n: usize) {
    let store: Arc<dyn Store> = match test_store(data) {
        Some(pg) => {
            let mut options = PgOptions::new(pg.url);
            options.schema = pg.schema;
            Arc::new(PgStore::connect(&options).await.unwrap())
        }
        None => Arc::new(SqliteStore::open(data, SqliteOptions::default()).await.unwrap()),
    };
    let all: Vec<usize> = (0..n).collect();
    for batch in all.chunks(SEED_BATCH) {
        let devices: Vec<(String, Device)> = batch
            .iter()
            .map(|&i| {
                let token = has_token(i).then(|| herald_core::account::VendorToken {
                    kind: herald_core::account::TokenKind::Fcm,
                    token: fcm_token(i),
                });
                let device = Device {
                    device_id: device_id(i),
                    platform: platform(i).into(),
                    package: "com.shop".into(),
                    vendor_token: token,
                    app_version: None,
                    locale: None,
                    time_zone: None,
                };
                (account(i), device)
            })
            .collect();
        store.register_devices(app, &devices).await.unwrap();
    }
    store.close().await;
}

/// What the app on each device has shown, as an app would keep it: push ids, and the seq it
/// acked last (passed back at the next connection, so the client drops what it had).
#[derive(Default)]
struct Phones {
    shown: HashMap<usize, Vec<String>>,
    last_seq: HashMap<usize, u64>,
}

impl Phones {
    async fn connect(&self, herald: &Herald, app: &AppCreds, i: usize) -> Client {
        let expires = chrono::Utc::now().timestamp() + 3600;
        let token = herald_client::mint_token(&app.key, &app.secret, &account(i), expires);
        let mut options = ConnectOptions::new(token, device_id(i), platform(i), "com.shop");
        options.reconnect = Reconnect { enabled: false, ..Reconnect::default() };
        options.last_seq = self.last_seq.get(&i).copied().unwrap_or_default();
        let url = format!("{}/v1/connect", herald.base.replace("http://", "ws://"));
        Client::connect(url, options).await.expect("connect")
    }

    /// Shows and acks a push; a push shown twice on one device fails the test.
    fn show(&mut self, i: usize, client: &Client, push: herald_client::Push) {
        let shown = self.shown.entry(i).or_default();
        assert!(!shown.contains(&push.push_id), "device {i} was given {} twice", push.push_id);
        shown.push(push.push_id);
        let _ = client.ack(push.seq);
        self.last_seq.insert(i, client.last_acked());
    }

    fn has(&self, i: usize, push_id: &str) -> bool {
        self.shown.get(&i).is_some_and(|s| s.iter().any(|p| p == push_id))
    }

    /// Takes what a client received until its connection ended (the server was killed).
    async fn drain(&mut self, i: usize, mut client: Client) {
        while let Ok(Some(event)) = tokio::time::timeout(PATIENCE, client.next_event()).await {
            if let Event::Push(push) = event {
                self.show(i, &client, push);
            }
        }
    }

    /// Connects device `i`, takes its pushes until `push_id` has been shown, and leaves.
    async fn catch_up(&mut self, herald: &Herald, app: &AppCreds, i: usize, push_id: &str) {
        let mut client = self.connect(herald, app, i).await;
        while !self.has(i, push_id) {
            let push = tokio::time::timeout(PATIENCE, client.next_push()).await;
            let push = push.expect("the push in time").expect("client running");
            self.show(i, &client, push);
        }
        client.close().await;
    }
}

struct Crash {
    dir: tempfile::TempDir,
    fcm: FcmTestServer,
    fcm_account: TestServiceAccount,
    n: usize,
}

impl Crash {
    async fn new() -> Self {
        let fcm = FcmTestServer::start().await.unwrap();
        let fcm_account =
            TestServiceAccount::generate("proj-1", "push@proj-1.iam.gserviceaccount.com");
        fcm.add_account(&fcm_account);
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[vendor]\nextra_root_pem = {pem:?}\n[vendor.fcm]\nbase_url = {url:?}\ntoken_uri = {token:?}\n",
            pem = ca_pem(),
            url = fcm.url(),
            token = fcm.token_uri(),
        );
        std::fs::write(dir.path().join("herald.toml"), config).unwrap();
        Self { dir, fcm, fcm_account, n: accounts() }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn start(&self, pause_at: Option<&str>) -> Herald {
        let config = self.dir.path().join("herald.toml").display().to_string();
        // `HERALD_CRASH_LOG` (a log filter) shows what the server did; errors only by default.
        let level = std::env::var("HERALD_CRASH_LOG").unwrap_or_else(|_| "error".into());
        let mut env = vec![("HERALD_LOG_LEVEL".to_owned(), level)];
        if let Some(point) = pause_at {
            env.push(("HERALD_PAUSE_AT".into(), point.into()));
        }
        Herald::start_with(
            &self.data(),
            Start { args: vec!["--config".into(), config], env, ..Start::default() },
        )
    }

    /// FCM requests per token for one push.
    fn vendor_sends(&self, push_id: &str) -> BTreeMap<String, usize> {
        let mut sends = BTreeMap::new();
        for request in self.fcm.requests() {
            if request.body["message"]["data"]["herald_push_id"] == push_id {
                *sends.entry(request.token().unwrap_or_default().to_owned()).or_default() += 1;
            }
        }
        sends
    }
}

async fn get(herald: &Herald, app: &AppCreds, path: &str) -> Value {
    let (status, body) = herald.signed(app, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn push(herald: &Herald, app: &AppCreds, body: Value) -> String {
    let (status, sent) = herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{sent}");
    sent["push_id"].as_str().unwrap().to_owned()
}

async fn status(herald: &Herald, app: &AppCreds, push_id: &str) -> String {
    get(herald, app, &format!("/v1/pushes/{push_id}")).await["status"].as_str().unwrap().to_owned()
}

async fn wait_done(herald: &Herald, app: &AppCreds, push_id: &str) {
    let started = Instant::now();
    loop {
        match status(herald, app, push_id).await.as_str() {
            "done" => return,
            "scheduled" | "dispatching" => {}
            other => panic!("push {push_id} ended {other}"),
        }
        assert!(started.elapsed() < PATIENCE, "push {push_id} never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `herald paused at <point>` on the server's stdout.
async fn paused(herald: &Herald, point: &str) {
    let started = Instant::now();
    let wanted = format!("herald paused at {point}");
    loop {
        match herald.stdout.try_recv() {
            Ok(line) if line == wanted => return,
            Ok(_) => continue,
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(err) => panic!("herald stopped before pausing at {point}: {err}"),
        }
        assert!(started.elapsed() < PATIENCE, "herald never paused at {point}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real SIGKILL, and the process is gone before this returns.
fn kill(mut herald: Herald) {
    let pid = herald.child.id().to_string();
    let status = std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(status.success());
    let exit = herald.child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&exit), Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_accepted_before_a_kill_during_fan_out_is_delivered_once_and_reported_exactly() {
    let crash = Crash::new().await;
    let n = crash.n;
    let herald = crash.start(None);
    let app = herald.create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let credentials = json!(crash.fcm_account.credentials(&crash.fcm.token_uri()));
    let (code, shown) =
        herald.signed(&app, Method::PUT, "/v1/vendors/fcm", Some(credentials)).await;
    assert_eq!(code, 200, "{shown}");
    herald.stop();
    let seeding = Instant::now();
    seed(&crash.data(), app.id, n).await;
    eprintln!("seeded {n} accounts with a device each in {:.1?}", seeding.elapsed());

    let online: Vec<usize> =
        (0..n).filter(|&i| !has_token(i)).step_by(n / ONLINE).take(ONLINE).collect();
    let sampled = sample(n);
    let tokens: HashSet<String> = (0..n).filter(|&i| has_token(i)).map(fcm_token).collect();
    let mut phones = Phones::default();
    let mut scheduled: Option<(String, chrono::DateTime<chrono::Utc>)> = None;

    for point in kill_points() {
        let pause_at = (point != "accepted").then_some(point);
        let herald = crash.start(pause_at);
        let mut clients = Vec::new();
        for &i in &online {
            clients.push((i, phones.connect(&herald, &app, i).await));
        }
        if scheduled.is_none() {
            let at = chrono::Utc::now() + chrono::Duration::seconds(60);
            let body = json!({"audience": {"all": true}, "message": {"later": true}, "push_at": at, "ttl_secs": 3600});
            scheduled = Some((push(&herald, &app, body).await, at));
        }
        let notification = json!({"title": "Sale", "body": point});
        let body = json!({"audience": {"all": true}, "message": {"point": point}, "notification": notification, "ttl_secs": 3600});
        let push_id = push(&herald, &app, body).await;
        let dispatched = Instant::now();
        if let Some(point) = pause_at {
            paused(&herald, point).await;
        }
        eprintln!("{point}: paused {:.1?} after the 201", dispatched.elapsed());
        kill(herald);
        for (i, client) in clients {
            phones.drain(i, client).await;
        }

        let restarted = Instant::now();
        let herald = crash.start(None);
        let started = restarted.elapsed();
        let (scheduled_id, at) = scheduled.clone().unwrap();
        if chrono::Utc::now() < at - chrono::Duration::seconds(2) {
            assert_eq!(
                status(&herald, &app, &scheduled_id).await,
                "scheduled",
                "after the kill at {point}"
            );
        }
        wait_done(&herald, &app, &push_id).await;
        eprintln!(
            "{point}: restarted in {started:.1?}, push done {:.1?} after the restart",
            restarted.elapsed()
        );

        // Online devices that had it before the kill were reached by the first fan-out; the
        // report keeps what that fan-out did, as it does for the devices' acks.
        let reached_before = online.iter().filter(|&&i| phones.has(i, &push_id)).count();
        let reconnecting: Vec<usize> =
            online.iter().chain(&sampled).copied().collect::<HashSet<_>>().into_iter().collect();
        for &i in &reconnecting {
            phones.catch_up(&herald, &app, i, &push_id).await;
        }
        eprintln!("{point}: {} reconnecting devices got it once", reconnecting.len());
        let report = settled_report(&herald, &app, &push_id, reconnecting.len()).await;
        check_report(&report, n, point, reached_before, reconnecting.len(), &online);

        let sends = crash.vendor_sends(&push_id);
        let sent: HashSet<String> = sends.keys().cloned().collect();
        assert_eq!(sent, tokens, "{point}: every offline device with a token was notified");
        let again = sends.values().filter(|&&n| n > 1).count();
        eprintln!(
            "{point}: {} vendor notifications, {again} of them sent again after the restart",
            sends.values().sum::<usize>()
        );
        if !matches!(point, "vendor.sent" | "receipts.flush" | "accepted") {
            assert_eq!(again, 0, "{point}: the vendor sends began after the restart only");
        }
        herald.stop();
    }

    let (scheduled_id, _) = scheduled.unwrap();
    let herald = crash.start(None);
    wait_done(&herald, &app, &scheduled_id).await;
    for &i in &sampled {
        phones.catch_up(&herald, &app, i, &scheduled_id).await;
    }
    let report = get(&herald, &app, &format!("/v1/pushes/{scheduled_id}/report")).await;
    assert_eq!(report["audience"].as_u64(), Some(n as u64), "{report}");
    herald.stop();
}

/// The push's report once the devices' acks are counted: receipts reach the store in batches,
/// so the report may lag the acks for a moment; past 30 s it is taken as it is.
async fn settled_report(herald: &Herald, app: &AppCreds, push_id: &str, acked: usize) -> Value {
    let path = format!("/v1/pushes/{push_id}/report");
    for _ in 0..300 {
        let report = get(herald, app, &path).await;
        if report["totals"]["delivered"].as_u64() >= Some(acked as u64) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    get(herald, app, &path).await
}

/// The report of a push after the restart: its audience is every account; each platform's
/// funnel adds up; the online sends are those of the first fan-out that got that far; every
/// device that reconnected acked it, and no other device did.
fn check_report(
    report: &Value,
    n: usize,
    point: &str,
    reached_before: usize,
    reconnected: usize,
    online: &[usize],
) {
    let totals = &report["totals"];
    assert_eq!(report["status"], "done", "{point}: {report}");
    assert_eq!(report["audience"].as_u64(), Some(n as u64), "{point}: {report}");
    let (mut sent_online, mut targeted) = (0, 0);
    for (name, funnel) in report["platforms"].as_object().unwrap() {
        let accounts = (0..n).filter(|&i| platform(i) == name).count() as u64;
        let t = funnel["targeted"].as_u64().unwrap();
        let s = funnel["sent_online"].as_u64().unwrap();
        assert_eq!(t, accounts, "{point}: {name} targeted");
        assert_eq!(funnel["stored_offline"].as_u64().unwrap(), t - s, "{point}: {name} funnel");
        (sent_online, targeted) = (sent_online + s, targeted + t);
    }
    assert_eq!(targeted, n as u64, "{point}: every account targeted once");
    // The online sends are those of the fan-out whose counts were written: the first one once
    // they were (`vendor.sent`), else the one after the restart, when no device is connected
    // yet. A kill right after the 201 may fall on either side.
    let expected_online = match point {
        "accepted" => sent_online,
        "vendor.sent" => online.len() as u64,
        _ => 0,
    };
    assert_eq!(sent_online, expected_online, "{point}: sent online ({report})");
    assert!(sent_online == 0 || sent_online == online.len() as u64, "{point}: {report}");
    if point == "vendor.sent" {
        assert_eq!(
            reached_before,
            online.len(),
            "{point}: connected devices had it before the kill"
        );
    }
    assert_eq!(
        totals["delivered"].as_u64(),
        Some(reconnected as u64),
        "{point}: delivered ({report})"
    );
    let offline_tokens = (0..n).filter(|&i| has_token(i)).count() as u64;
    assert_eq!(
        totals["vendor_sent"].as_u64(),
        Some(offline_tokens),
        "{point}: vendor sent ({report})"
    );
}
