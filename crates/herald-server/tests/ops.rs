//! Operations endpoints, the API reference, and the CLI against a running server.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, next_push, Herald, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_metrics_and_docs() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    assert_eq!(herald.raw(herald.request(Method::GET, "/healthz")).await.0, 200);
    let (status, ready) = herald.raw(herald.request(Method::GET, "/readyz")).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));

    let res = herald.request(Method::GET, "/healthz").send().await.unwrap();
    assert!(res.headers().contains_key("x-request-id"), "every response names its request id");

    let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("herald_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/healthz\""), "{metrics}");
    // The allocator's counts: a running server holds some heap, and the allocator keeps at
    // least that much from the system.
    let gauge = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or("");
        line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    let (allocated, resident) =
        (gauge("herald_heap_allocated_bytes"), gauge("herald_heap_resident_bytes"));
    assert!(allocated > 0.0 && resident >= allocated, "heap {allocated}, resident {resident}");

    let (status, spec) = herald.raw(herald.request(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    for path in ["/admin/apps", "/admin/apps/{id}", "/admin/apps/{id}/rotate-secret", "/v1/app"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let page = herald.request(Method::GET, "/docs").send().await.unwrap().text().await.unwrap();
    assert!(page.contains("openapi.json") && !page.contains("https://"), "self-contained page");
}

#[tokio::test]
async fn cli_manages_apps_and_signs_calls() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let server = [("HERALD_SERVER", herald.base.as_str())];
    let admin = [("HERALD_SERVER", herald.base.as_str()), ("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)];

    let (ok, _, err) = cli(&["app", "list"], &server);
    assert!(!ok && err.contains("HERALD_ADMIN_TOKEN"), "{err}");

    let (ok, out, err) = cli(&["app", "create", "--name", "from-cli", "--json"], &admin);
    assert!(ok, "{err}");
    let app: Value = serde_json::from_str(&out).unwrap();
    let (key, secret) = (app["key"].as_str().unwrap(), app["secret"].as_str().unwrap());

    let (ok, out, _) = cli(&["app", "create", "--name", "human"], &admin);
    assert!(ok && out.contains("secret") && out.contains("hs_"), "{out}");

    let (ok, out, _) = cli(&["app", "list"], &admin);
    assert!(ok && out.contains("from-cli") && out.contains("human"), "{out}");

    let id = app["id"].to_string();
    let (ok, out, err) =
        cli(&["app", "update", &id, "--limits", r#"{"tags_per_account":5}"#, "--json"], &admin);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["limits"]["tags_per_account"], 5);

    let signed = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", key),
        ("HERALD_APP_SECRET", secret),
    ];
    let (ok, out, err) = cli(&["api", "GET", "/v1/app"], &signed);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["name"], "from-cli");

    let (ok, out, err) = cli(&["app", "compat", &id, "rongcloud", "--settings", "{}"], &admin);
    assert!(ok && out.contains("per_hour"), "{err}");
    let (ok, out, _) = cli(&["app", "compat", &id, "rongcloud"], &admin);
    assert!(ok && out.contains("per_day"), "{out}");

    let (ok, _, err) = cli(&["app", "get", "999999", "--json"], &admin);
    assert!(!ok && err.contains("not_found"), "{err}");
}

/// Runs the binary with `args` and no `HERALD_*` variables of the caller's.
fn herald(args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("HERALD_")) {
        command.env_remove(name);
    }
    let out = command.args(args).output().expect("the herald binary runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn checkconfig_lists_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    std::fs::write(&file, "max_body_bytes = 0\nsignature_window_secs = 0\nstore = \"mysql://x\"\n")
        .unwrap();
    let (ok, out) = herald(&["checkconfig", "--config", file.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert_eq!(out.lines().count(), 3, "one line per problem: {out}");
    for name in ["max_body_bytes", "signature_window_secs", "store"] {
        assert!(out.contains(name), "{name}: {out}");
    }

    std::fs::write(&file, "max_body_bytes = 1000\n").unwrap();
    let (ok, out) = herald(&["checkconfig", "--config", file.to_str().unwrap()]);
    assert!(ok && out.starts_with("ok:"), "{out}");
}

#[test]
fn doctor_checks_a_fresh_data_dir_and_fails_on_an_unusable_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out) = herald(&["doctor", "--data", data.to_str().unwrap(), "--connections", "100"]);
    assert!(ok, "{out}");
    for name in ["data dir", "listen", "clock", "store", "open files", "vendor key"] {
        let line = out.lines().find(|l| l[5..].starts_with(name));
        assert!(line.is_some_and(|l| !l.starts_with("fail")), "{name}: {out}");
    }

    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let (ok, out) = herald(&["doctor", "--data", file.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.lines().any(|l| l.starts_with("fail data dir")), "{out}");
}

#[test]
fn doctor_reaches_the_machines_postgres_and_nats() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.toml");
    let settings = "store = \"postgres://postgres@127.0.0.1:5432/test\"\n\
                    admin_token = \"0123456789abcdef0123\"\n\
                    [vendor]\ncredentials_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n\
                    [cluster]\nnats = \"nats://127.0.0.1:4222\"\n";
    std::fs::write(&file, settings).unwrap();
    let data = dir.path().join("data");
    let (ok, out) =
        herald(&["doctor", "--config", file.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.lines().any(|l| l.starts_with("ok   nats") && l.contains("JetStream on")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("ok   store") && l.contains("postgres://")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("ok   clock") && l.contains("PostgreSQL")), "{out}");
}

#[test]
fn completions_and_manual_page_are_generated() {
    let (ok, bash) = herald(&["completions", "bash"]);
    assert!(ok && bash.contains("_herald()") && bash.contains("doctor"), "{bash}");
    let (ok, zsh) = herald(&["completions", "zsh"]);
    assert!(ok && zsh.contains("#compdef herald"), "{zsh}");
    let (ok, page) = herald(&["manpage"]);
    assert!(ok && page.contains(".TH herald 1") && page.contains("checkconfig"), "{page}");
}

/// Every PromQL expression of the Grafana dashboard (docs/grafana/herald.json).
fn dashboard_exprs() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grafana/herald.json");
    let text = std::fs::read_to_string(path).expect("the dashboard file");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let targets = panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten());
    targets.map(|t| t["expr"].as_str().expect("a PromQL expression").to_owned()).collect()
}

/// Every metric the dashboard queries.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for expr in dashboard_exprs() {
        for (at, _) in expr.match_indices("herald_") {
            let name: String =
                expr[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            names.insert(name.trim_end_matches("_bucket").to_owned());
        }
    }
    names
}

/// A server with one push sent, received, opened and a client gone: the events every
/// dashboard row counts (but vendor sends).
async fn busy_server(dir: &std::path::Path) -> Herald {
    let herald = Herald::start(dir);
    let app = herald.create_app("dashboard").await;
    let mut phone = herald.device(&app, "ann", "ann-phone", "ios").await;
    let body = serde_json::json!({"audience": {"all": true}, "message": {"hello": 1}});
    let (status, out) = herald.signed(&app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{out}");
    let push = next_push(&mut phone).await;
    phone.opened(push.push_id.clone()).unwrap();
    phone.close().await;
    herald
}

/// Every query of the dashboard, as Prometheus runs it: a real Prometheus (Debian's package;
/// `HERALD_TEST_PROMETHEUS` names another binary) scrapes a running server, and each panel's
/// PromQL must parse and, but for vendor sends, return series.
#[tokio::test]
async fn the_dashboard_queries_run_on_prometheus_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let herald = busy_server(&dir.path().join("herald")).await;
    let prometheus = Prometheus::start(dir.path(), herald.base.trim_start_matches("http://"));
    let http = reqwest::Client::new();
    for _ in 0..150 {
        let ready = http.get(format!("{}/-/ready", prometheus.base)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let query = |expr: String| {
        let url = format!("{}/api/v1/query", prometheus.base);
        let request = http.get(url).query(&[("query", expr)]);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // Two scrapes at least, so that rate() has a series.
    for _ in 0..100 {
        let up = query("count_over_time(up[1m])".into()).await;
        if up["data"]["result"][0]["value"][1].as_str().is_some_and(|n| n != "1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for expr in dashboard_exprs() {
        let expr = expr.replace("$instance", ".*").replace("$__rate_interval", "1m");
        let answer = query(expr.clone()).await;
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        if !expr.contains("herald_vendor_notifications_total") {
            let result = answer["data"]["result"].as_array().unwrap();
            assert!(!result.is_empty(), "{expr} has no series");
        }
    }
}

/// A Prometheus server of the test's own, stopped when dropped.
struct Prometheus {
    child: std::process::Child,
    base: String,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: &str) -> Self {
        let config = dir.join("prometheus.yml");
        let scrape = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: herald\n    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, scrape).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let binary = std::env::var("HERALD_TEST_PROMETHEUS").unwrap_or("prometheus".into());
        let child = std::process::Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{binary} (apt-get install prometheus): {err}"));
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_dashboard_queries_metrics_the_server_exports() {
    let dir = tempfile::tempdir().unwrap();
    let herald = busy_server(dir.path()).await;

    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 20, "{wanted:?}");
    // Series with labels appear with their first event: vendor notifications need a vendor
    // send (tests/vendors.rs checks them), the cluster's are exported at 0 from the start.
    let labelled_later = ["herald_vendor_notifications_total"];
    let mut missing = Vec::new();
    for _ in 0..50 {
        let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
        let metrics = metrics.as_str().unwrap().to_owned();
        missing = wanted
            .iter()
            .filter(|name| !labelled_later.contains(&name.as_str()))
            .filter(|name| !metrics.lines().any(|l| l.starts_with(name.as_str())))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(missing.is_empty(), "the dashboard queries metrics /metrics lacks: {missing:?}");
}

/// `herald push get --wait` returns once the dispatch has ended: here of a push scheduled two
/// seconds ahead, so that it waits through `scheduled` and `dispatching`.
#[tokio::test]
async fn push_get_waits_until_the_dispatch_has_ended() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app("waiting").await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let body =
        serde_json::json!({"audience": {"all": true}, "message": {"later": 1}, "push_at": at});
    let (status, out) = herald.signed(&app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["status"], "scheduled", "{out}");
    let push_id = out["push_id"].as_str().unwrap().to_owned();
    let env = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", app.key.as_str()),
        ("HERALD_APP_SECRET", app.secret.as_str()),
    ];
    let (ok, out, err) = cli(&["push", "get", &push_id, "--wait", "--json"], &env);
    assert!(ok, "{err}");
    let ended: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ended["status"], "done", "{ended}");
}
