//! Three herald nodes on one PostgreSQL schema and the machine's NATS (JetStream on), under a
//! stream prefix of this test's own: real processes, talked to as a back end and devices would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{postgres_test_store, AppCreds, Herald, Start, TestStore, ADMIN_TOKEN};
use herald_client::{Client, Push};
use reqwest::Method;
use serde_json::{json, Value};

fn nats_url() -> String {
    std::env::var("HERALD_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Nodes of one cluster; the stream and bucket of its prefix are deleted at the end.
struct Nodes {
    nodes: Vec<Option<Herald>>,
    dirs: Vec<tempfile::TempDir>,
    store: TestStore,
    prefix: String,
    vendor_key: String,
    nats: String,
}

impl Nodes {
    fn start(count: usize, test: &str) -> Nodes {
        Self::start_on(count, test, &nats_url())
    }

    /// Nodes on the NATS server at `nats`.
    fn start_on(count: usize, test: &str, nats: &str) -> Nodes {
        let first = tempfile::tempdir().unwrap();
        let store = postgres_test_store(first.path());
        let prefix = format!("herald_t_{}_{test}", std::process::id());
        let vendor_key = herald_vendor::SecretBox::generate_key();
        let mut nodes = Nodes {
            nodes: Vec::new(),
            dirs: vec![first],
            store,
            prefix,
            vendor_key,
            nats: nats.to_owned(),
        };
        for i in 0..count {
            if i > 0 {
                nodes.dirs.push(tempfile::tempdir().unwrap());
            }
            let node = nodes.spawn(i);
            nodes.nodes.push(Some(node));
        }
        nodes
    }

    fn spawn(&self, i: usize) -> Herald {
        let env = [
            ("HERALD_STORE", self.store.url.clone()),
            ("HERALD_POSTGRES_SCHEMA", self.store.schema.clone()),
            ("HERALD_CLUSTER_NATS", self.nats.clone()),
            ("HERALD_CLUSTER_PREFIX", self.prefix.clone()),
            ("HERALD_CLUSTER_NODE_ID", format!("node-{i}")),
            ("HERALD_VENDOR_CREDENTIALS_KEY", self.vendor_key.clone()),
        ];
        let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Herald::start_with(self.dirs[i].path(), Start { env, ..Start::default() })
    }

    fn node(&self, i: usize) -> &Herald {
        self.nodes[i].as_ref().expect("node running")
    }

    /// `kill -9`: no clean shutdown, no goodbye on the bus.
    fn kill(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.child.kill().unwrap();
            node.child.wait().unwrap();
        }
    }

    /// Waits until some node holds the app's dispatch lease; returns that node's index.
    async fn lease_holder(&self, app: &AppCreds, not: Option<usize>) -> usize {
        for _ in 0..100 {
            for (i, node) in self.nodes.iter().enumerate() {
                let Some(node) = node else { continue };
                let (status, view) = node.admin(Method::GET, "/v1/cluster", None).await;
                assert_eq!(status, 200, "{view}");
                if let Some(holder) = view["leases"][app.id.to_string()].as_str() {
                    let holder: usize = holder.trim_start_matches("node-").parse().unwrap();
                    if Some(holder) != not && self.nodes[holder].is_some() {
                        return holder;
                    }
                }
                let _ = i;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("no node took the dispatch lease of app {}", app.id);
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut() {
            node.take();
        }
        let settings = herald_bus::BusSettings {
            url: self.nats.clone(),
            prefix: self.prefix.clone(),
            node: "cleanup".into(),
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                if let Ok(bus) = herald_bus::NatsBus::connect(&settings).await {
                    let _ = bus.destroy().await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}

/// A NATS server (JetStream on) of one test's own, on a port of its own, that the test can
/// kill and start again: the machine's server is shared with every other test.
struct NatsServer {
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> NatsServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = NatsServer { child: None, port, dir: tempfile::tempdir().unwrap() };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and store directory (JetStream keeps its streams there
    /// across restarts); returns once it accepts connections.
    fn restart(&mut self) {
        let binary = std::env::var("HERALD_TEST_NATS_SERVER")
            .unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let child = std::process::Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {binary}: {err}"));
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not listen on port {}", self.port);
    }

    /// `kill -9`: nothing flushed, no goodbye to the clients.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until a push's dispatch is over (any node answers).
async fn until_done(node: &Herald, app: &AppCreds, push_id: &str) {
    let path = format!("/v1/pushes/{push_id}");
    for _ in 0..300 {
        let (status, view) = node.signed(app, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{view}");
        if view["status"] == "done" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("push {push_id} not dispatched within 30 s");
}

/// RongCloud's `/user/checkOnline.json`, signed as its server SDKs sign.
async fn check_online(node: &Herald, app: &AppCreds, user: &str) -> Value {
    use sha1::Digest;
    let (nonce, timestamp) = (format!("{}", rand::random::<u32>()), chrono::Utc::now().timestamp());
    let signature = hex::encode(sha1::Sha1::digest(format!("{}{nonce}{timestamp}", app.secret)));
    let answer = node
        .request(Method::POST, "/user/checkOnline.json")
        .header("App-Key", &app.key)
        .header("Nonce", nonce)
        .header("Timestamp", timestamp.to_string())
        .header("Signature", signature)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("userId={user}"));
    let (status, body) = node.raw(answer).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn push(node: &Herald, app: &AppCreds, body: Value) -> String {
    let (status, out) = node.signed(app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{out}");
    out["push_id"].as_str().unwrap().to_owned()
}

async fn post(node: &Herald, app: &AppCreds, path: &str, body: Value) {
    let (status, out) = node.signed(app, Method::POST, path, Some(body)).await;
    assert_eq!(status, 200, "{out}");
}

async fn next(client: &mut Client) -> Push {
    tokio::time::timeout(Duration::from_secs(20), client.next_push())
        .await
        .expect("a push within 20 s")
        .expect("client running")
}

/// The pushes a client receives until (and with) the one carrying `{"end": marker}`.
async fn until_marker(client: &mut Client, marker: &str) -> Vec<Push> {
    let mut got = Vec::new();
    loop {
        let push = next(client).await;
        let end = push.message["end"] == marker;
        got.push(push);
        if end {
            return got;
        }
    }
}

fn texts(pushes: &[Push]) -> Vec<String> {
    pushes.iter().map(|p| p.message["text"].as_str().unwrap_or("end").to_owned()).collect()
}

fn strictly_increasing(pushes: &[Push]) -> bool {
    pushes.windows(2).all(|w| w[0].seq < w[1].seq)
}

#[tokio::test]
async fn pushes_reach_devices_on_every_node_once_and_in_order() {
    let nodes = Nodes::start(3, "fanout");
    let app = nodes.node(0).create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    // Two devices on each node.
    let mut clients = Vec::new();
    for i in 0..6 {
        let account = format!("user-{i}");
        let client = nodes.node(i % 3).device(&app, &account, &format!("dev-{i}"), "ios").await;
        clients.push((account, client));
    }
    // A directory write on node A, then pushes accepted on B and C: the newly tagged accounts
    // are in the audience whichever node dispatches.
    post(
        nodes.node(0),
        &app,
        "/v1/tags/add",
        json!({"accounts": ["user-1", "user-4"], "tags": ["vip"]}),
    )
    .await;
    push(nodes.node(1), &app, json!({"audience": {"all": true}, "message": {"text": "all-1"}}))
        .await;
    push(nodes.node(2), &app, json!({"audience": {"tag": "vip"}, "message": {"text": "vip"}}))
        .await;
    push(nodes.node(0), &app, json!({"audience": {"all": true}, "message": {"text": "all-2"}}))
        .await;
    push(nodes.node(1), &app, json!({"audience": {"all": true}, "message": {"end": "a"}})).await;
    for (account, client) in &mut clients {
        let got = until_marker(client, "a").await;
        let expected: &[&str] = if account == "user-1" || account == "user-4" {
            &["all-1", "vip", "all-2", "end"]
        } else {
            &["all-1", "all-2", "end"]
        };
        assert_eq!(texts(&got), expected, "{account}");
        assert!(strictly_increasing(&got), "{account}: seqs in order");
    }
    // Seqs are the app's, gapless across the nodes that accepted them.
    let (status, list) = nodes.node(2).signed(&app, Method::GET, "/v1/pushes?limit=10", None).await;
    assert_eq!(status, 200, "{list}");
    let mut seqs: Vec<u64> =
        list["pushes"].as_array().unwrap().iter().filter_map(|p| p["seq"].as_u64()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2, 3, 4], "{list}");
    // Every node answers for the cluster; heartbeats bring each node's connections and
    // leases within seconds.
    let mut view = Value::Null;
    for _ in 0..50 {
        let (status, seen) = nodes.node(1).admin(Method::GET, "/v1/cluster", None).await;
        assert_eq!((status, seen["mode"].as_str()), (200, Some("cluster")), "{seen}");
        view = seen;
        let connections: u64 = view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["connections"].as_u64())
            .sum();
        let leases = view["leases"].as_object().map(|l| l.len());
        if connections == 6 && leases == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nodes_seen = view["nodes"].as_array().unwrap();
    let names: Vec<_> = nodes_seen.iter().map(|n| n["node"].clone()).collect();
    assert_eq!(names, [json!("node-0"), json!("node-1"), json!("node-2")], "{view}");
    let connections: Vec<_> = nodes_seen.iter().map(|n| n["connections"].as_u64()).collect();
    assert_eq!(connections, [Some(2), Some(2), Some(2)], "{view}");
    assert_eq!(view["leases"].as_object().map(|l| l.len()), Some(1), "one lease holder: {view}");
    let listens: Vec<_> = nodes_seen.iter().map(|n| n["listen"].as_str().unwrap_or("")).collect();
    for (i, listen) in listens.iter().enumerate() {
        assert_eq!(format!("http://{listen}"), nodes.node(i).base, "{view}");
    }
}

#[tokio::test]
async fn cancel_and_schedule_hold_across_nodes() {
    let nodes = Nodes::start(3, "schedule");
    let app = nodes.node(0).create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut on_each = Vec::new();
    for i in 0..3 {
        on_each.push(
            nodes.node(i).device(&app, &format!("user-{i}"), &format!("dev-{i}"), "android").await,
        );
    }
    let soon = |secs: i64| (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339();
    // Scheduled on A, cancelled on C before its time: it never goes out.
    let cancelled = push(
        nodes.node(0),
        &app,
        json!({"audience": {"all": true}, "message": {"text": "cancelled"}, "push_at": soon(3)}),
    )
    .await;
    let (status, view) = nodes
        .node(2)
        .signed(&app, Method::POST, &format!("/v1/pushes/{cancelled}/cancel"), None)
        .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("cancelled")), "{view}");
    // Scheduled on B: fires once, on whichever node holds the lease.
    push(
        nodes.node(1),
        &app,
        json!({"audience": {"all": true}, "message": {"text": "scheduled"}, "push_at": soon(4)}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    push(nodes.node(2), &app, json!({"audience": {"all": true}, "message": {"end": "s"}})).await;
    for client in &mut on_each {
        let got = until_marker(client, "s").await;
        assert_eq!(texts(&got), ["scheduled", "end"]);
    }
}

#[tokio::test]
async fn killing_the_lease_holder_hands_dispatch_to_another_node() {
    const STORED: usize = 20_000;
    let mut nodes = Nodes::start(3, "takeover");
    let app = nodes.node(0).create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    // Stored accounts that are offline during the pushes.
    let accounts: Vec<String> = (0..STORED).map(|i| format!("stored-{i}")).collect();
    for chunk in accounts.chunks(1000) {
        post(nodes.node(0), &app, "/v1/accounts/import", json!({"accounts": chunk})).await;
    }
    let holder = nodes.lease_holder(&app, None).await;
    let survivor = (holder + 1) % 3;
    let mut online = nodes.node(survivor).device(&app, "online", "dev-online", "ios").await;
    let all = |text: &str| json!({"audience": {"all": true}, "message": {"text": text}});
    push(nodes.node(survivor), &app, all("before")).await;
    assert_eq!(texts(&[next(&mut online).await]), ["before"]);

    // The holder accepts pushes to every stored account back to back and dies while it
    // dispatches them: each is committed, and another node takes the lease, finishes them
    // and goes on in seq order.
    let mut during = Vec::new();
    for i in 0..4 {
        during.push(push(nodes.node(holder), &app, all(&format!("during-{i}"))).await);
    }
    nodes.kill(holder);
    let new_holder = nodes.lease_holder(&app, Some(holder)).await;
    assert_ne!(new_holder, holder);
    for push_id in &during {
        until_done(nodes.node(survivor), &app, push_id).await;
    }
    push(nodes.node(survivor), &app, json!({"audience": {"all": true}, "message": {"end": "k"}}))
        .await;
    let expected = ["during-0", "during-1", "during-2", "during-3", "end"];
    let got = until_marker(&mut online, "k").await;
    assert_eq!(texts(&got), expected, "the online device gets the interrupted pushes");
    assert!(strictly_increasing(&got));

    // Stored devices connecting afterwards, to either surviving node, find every push in
    // their inbox, once each, with the app's seqs gapless across the takeover.
    let mut late_nodes = vec![survivor, new_holder];
    late_nodes.dedup();
    for (n, account) in [0, 7, 9_999, STORED - 1].into_iter().enumerate() {
        let node = late_nodes[n % late_nodes.len()];
        let (account, device) = (format!("stored-{account}"), format!("dev-stored-{account}"));
        let mut late = nodes.node(node).device(&app, &account, &device, "web").await;
        let got = until_marker(&mut late, "k").await;
        let mut all_texts = vec!["before"];
        all_texts.extend(expected);
        assert_eq!(texts(&got), all_texts, "{account} on node {node}");
        let seqs: Vec<u64> = got.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (1..=6).collect::<Vec<u64>>(), "gapless and unique seqs: {account}");
    }
    // The report counts every stored account once, whichever node dispatched.
    for push_id in &during {
        let path = format!("/v1/pushes/{push_id}/report");
        let (status, report) = nodes.node(survivor).signed(&app, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["totals"]["targeted"], json!(STORED + 1), "{report}");
    }
}

#[tokio::test]
async fn a_single_node_with_cluster_settings_but_sqlite_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--data"])
        .arg(dir.path())
        .args(["--store", "sqlite", "--listen", "127.0.0.1:0"])
        .env("HERALD_CLUSTER_NATS", nats_url())
        .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cluster mode needs the PostgreSQL store"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_bus_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = postgres_test_store(dir.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--data"])
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("HERALD_STORE", &store.url)
        .env("HERALD_POSTGRES_SCHEMA", &store.schema)
        .env("HERALD_CLUSTER_NATS", "nats://127.0.0.1:1")
        .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("HERALD_VENDOR_CREDENTIALS_KEY", herald_vendor::SecretBox::generate_key())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot reach NATS at nats://127.0.0.1:1"), "{stderr}");
}

#[tokio::test]
async fn replays_and_app_changes_hold_on_every_node() {
    let nodes = Nodes::start(2, "apps");
    let app = nodes.node(0).create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    // A signed request captured on its way to node A and sent again to node B is refused.
    let signer = common::Signer::new(&app);
    let send = |i: usize| {
        let req = nodes.node(i).request(Method::GET, "/v1/app");
        nodes.node(i).raw(signer.sign(req, "GET", "/v1/app", b""))
    };
    let (status, first) = send(0).await;
    assert_eq!(status, 200, "{first}");
    let (status, replay) = send(1).await;
    assert_eq!((status, common::code(&replay)), (401, "replayed_nonce"), "{replay}");

    // Devices log in on node B (which caches the app), then the app is deleted on node A:
    // node B refuses the next hello at once, not when its cache would have expired.
    // The accounts exist before the login, as RongCloud's getToken makes them.
    post(nodes.node(0), &app, "/v1/accounts/import", json!({"accounts": ["user", "away"]})).await;
    let device = nodes.node(1).device(&app, "user", "dev", "ios").await;

    // RongCloud's checkOnline on node A sees the device connected to node B, once A's list
    // of nodes (from their heartbeats) has B.
    for _ in 0..50 {
        let (_, view) = nodes.node(0).admin(Method::GET, "/v1/cluster", None).await;
        if view["nodes"].as_array().is_some_and(|n| n.len() == 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let path = format!("/admin/apps/{}/compat/rongcloud", app.id);
    let (status, body) = nodes.node(0).admin(Method::PUT, &path, Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    // Right after the app changed (its RongCloud layer was just set), node B may still be
    // applying that change and answer "0" for a moment: asked again until it says "1".
    let mut answer = Value::Null;
    for _ in 0..50 {
        answer = check_online(nodes.node(0), &app, "user").await;
        if answer["status"] == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer["status"], "1", "user: {answer}");
    for user in ["away", "stranger"] {
        let answer = check_online(nodes.node(0), &app, user).await;
        assert_eq!(answer["status"], "0", "{user}: {answer}");
    }
    device.close().await;
    let (status, _) =
        nodes.node(0).admin(Method::DELETE, &format!("/admin/apps/{}", app.id), None).await;
    assert_eq!(status, 204);
    let expires = chrono::Utc::now().timestamp() + 3600;
    let token = herald_client::mint_token(&app.key, &app.secret, "user", expires);
    let mut options = herald_client::ConnectOptions::new(token, "dev", "ios", "com.shop");
    options.reconnect = herald_client::Reconnect { enabled: false, ..Default::default() };
    let url = format!("{}/v1/connect", nodes.node(1).base.replace("http://", "ws://"));
    let refused = tokio::time::timeout(Duration::from_secs(2), Client::connect(url, options)).await;
    assert!(matches!(refused, Ok(Err(_))), "a deleted app's device is refused on every node");
}

#[tokio::test]
async fn a_nats_restart_loses_and_reorders_nothing() {
    let mut nats = NatsServer::start();
    let nodes = Nodes::start_on(3, "restart", &nats.url());
    let app = nodes.node(0).create_app_with(json!({"broadcast_min_interval_secs": 0})).await;
    let mut clients = Vec::new();
    for i in 0..6 {
        let account = format!("user-{i}");
        clients.push(nodes.node(i % 3).device(&app, &account, &format!("dev-{i}"), "ios").await);
    }
    let all = |text: &str| json!({"audience": {"all": true}, "message": {"text": text}});
    push(nodes.node(1), &app, all("before")).await;
    for client in &mut clients {
        assert_eq!(texts(&[next(client).await]), ["before"]);
    }

    // NATS dies without a word. Pushes are still accepted on every node: they are in the
    // store, and go out when the bus is back.
    nats.kill();
    let mut during = Vec::new();
    for i in 0..3 {
        let text = format!("during-{i}");
        during.push((push(nodes.node(i), &app, all(&text)).await, text));
    }
    // A directory write is committed but cannot be announced to the other nodes: the caller
    // is told to try again rather than told it is done.
    let (status, out) = nodes
        .node(2)
        .signed(
            &app,
            Method::POST,
            "/v1/tags/add",
            Some(json!({"accounts": ["user-0"], "tags": ["vip"]})),
        )
        .await;
    assert_eq!((status, common::code(&out)), (503, "unavailable"), "{out}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    nats.restart();

    for (push_id, _) in &during {
        until_done(nodes.node(0), &app, push_id).await;
    }
    push(nodes.node(2), &app, json!({"audience": {"all": true}, "message": {"end": "r"}})).await;
    let mut orders = Vec::new();
    for client in &mut clients {
        let got = until_marker(client, "r").await;
        assert!(strictly_increasing(&got), "in seq order: {:?}", texts(&got));
        let mut sorted = texts(&got);
        sorted.sort();
        assert_eq!(sorted, ["during-0", "during-1", "during-2", "end"], "each push once");
        orders.push(texts(&got));
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "one order on every node: {orders:?}");
}

/// The Web Push key a browser connecting to `node` is welcomed with.
async fn welcome_key(node: &Herald, app: &AppCreds, device: &str) -> Option<String> {
    let mut client = node.device(app, "ann", device, "web").await;
    let key = match client.next_event().await {
        Some(herald_client::Event::Connected { webpush_key, .. }) => webpush_key,
        other => panic!("expected the connection first, got {other:?}"),
    };
    client.close().await;
    key
}

/// Vendor credentials set or deleted through one node are what every node sends with (here:
/// the Web Push key every node welcomes browsers with), without a restart.
#[tokio::test]
async fn vendor_credentials_changed_on_one_node_hold_on_every_node() {
    let nodes = Nodes::start(2, "vendors");
    let app = nodes.node(0).create_app("shop").await;
    let credentials =
        herald_vendor::WebPushCredentials::generate("mailto:ops@example.com").unwrap();
    assert_eq!(welcome_key(nodes.node(1), &app, "tab-0").await, None);
    let body = serde_json::to_value(&credentials).unwrap();
    let (status, shown) =
        nodes.node(0).signed(&app, Method::PUT, "/v1/vendors/webpush", Some(body)).await;
    assert_eq!(status, 200, "{shown}");
    let wanted = Some(credentials.public_key.clone());
    let mut seen = None;
    for i in 0..50 {
        seen = welcome_key(nodes.node(1), &app, &format!("tab-{}", i + 1)).await;
        if seen == wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, wanted, "node B installed the keys set on node A");

    let (status, _) = nodes.node(1).signed(&app, Method::DELETE, "/v1/vendors/webpush", None).await;
    assert_eq!(status, 204);
    for i in 0..50 {
        seen = welcome_key(nodes.node(0), &app, &format!("tab-b{i}")).await;
        if seen.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen, None, "node A removed the keys deleted on node B");
}
