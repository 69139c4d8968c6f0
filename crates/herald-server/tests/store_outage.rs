//! herald on PostgreSQL when PostgreSQL goes away: down at start, gone while serving, its
//! sessions ended under the server. These always run on PostgreSQL (the machine's, or
//! `HERALD_TEST_POSTGRES`), whatever store the other tests use.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{code, next_push, test_postgres_url, AppCreds, Herald, Start, TestStore};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP relay to PostgreSQL that can be cut: while down it closes every relayed connection
/// and refuses new ones, as a database host that went away would.
struct Relay {
    port: u16,
    up: watch::Sender<bool>,
}

impl Relay {
    async fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, watching) = watch::channel(true);
        let target = postgres_addr();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut down = watching.clone();
                if !*down.borrow() {
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { port, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

/// `host:port` of the test PostgreSQL server.
fn postgres_addr() -> String {
    let url = test_postgres_url();
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let host = authority.rsplit('@').next().unwrap();
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// The test store's URL with the relay in place of the server.
fn through(relay: &Relay, store: &TestStore) -> String {
    store.url.replace(&postgres_addr(), &format!("127.0.0.1:{}", relay.port))
}

fn postgres_store(data: &std::path::Path) -> TestStore {
    common::postgres_test_store(data)
}

fn start_on(data: &std::path::Path, url: &str, schema: &str) -> Herald {
    let env = vec![
        ("HERALD_STORE".to_owned(), url.to_owned()),
        ("HERALD_POSTGRES_SCHEMA".to_owned(), schema.to_owned()),
        ("HERALD_POSTGRES_STATEMENT_TIMEOUT_SECS".to_owned(), "5".to_owned()),
    ];
    Herald::start_with(data, Start { env, ..Start::default() })
}

async fn push(herald: &Herald, app: &AppCreds, n: u64) -> (u16, Value) {
    let body = json!({"audience": {"accounts": ["ann"]}, "message": {"n": n}});
    herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await
}

async fn readyz(herald: &Herald) -> u16 {
    herald.request(Method::GET, "/readyz").send().await.unwrap().status().as_u16()
}

/// Polls until `/readyz` answers `want`, for at most 30 s.
async fn until_ready_is(herald: &Herald, want: u16) {
    for _ in 0..300 {
        if readyz(herald).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gone_while_serving_answers_503_then_service_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = postgres_store(dir.path());
    let relay = Relay::start().await;
    let herald = start_on(dir.path(), &through(&relay, &store), &store.schema);
    let app = herald.create_app("outage").await;
    let mut phone = herald.device(&app, "ann", "ann-phone", "ios").await;
    let (status, first) = push(&herald, &app, 1).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(next_push(&mut phone).await.message, json!({"n": 1}));

    relay.set(false);
    until_ready_is(&herald, 503).await;
    let (status, refused) = push(&herald, &app, 2).await;
    assert_eq!((status, code(&refused)), (503, "unavailable"), "{refused}");
    let (status, body) = herald.signed(&app, Method::GET, "/v1/pushes", None).await;
    assert_eq!((status, code(&body)), (503, "unavailable"), "{body}");
    assert!(!body.to_string().contains(&store.schema), "no store detail leaks: {body}");

    relay.set(true);
    until_ready_is(&herald, 200).await;
    let (status, accepted) = push(&herald, &app, 3).await;
    assert_eq!(status, 201, "{accepted}");
    assert_eq!(
        next_push(&mut phone).await.message,
        json!({"n": 3}),
        "the refused push was not stored"
    );
    let (status, listed) = herald.signed(&app, Method::GET, "/v1/pushes", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> =
        listed["pushes"].as_array().unwrap().iter().filter_map(|p| p["push_id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{listed}");
    assert!(ids.contains(&first["push_id"].as_str().unwrap()));
    assert!(ids.contains(&accepted["push_id"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ended_under_the_server_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = postgres_store(dir.path());
    let herald = start_on(dir.path(), &store.url, &store.schema);
    let app = herald.create_app("terminated").await;
    let mut phone = herald.device(&app, "ann", "ann-phone", "android").await;
    for round in 0..3 {
        let ended = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{}'",
            store.schema
        );
        // Run from a session of another name, so it does not end itself.
        let admin = TestStore { url: test_postgres_url(), schema: "public".into() };
        assert!(common::postgres_sql(&admin, &ended) > 0, "the server's sessions were ended");
        until_ready_is(&herald, 200).await;
        let (status, accepted) = push(&herald, &app, round).await;
        assert_eq!(status, 201, "round {round}: {accepted}");
        let (status, stored) = herald
            .signed(
                &app,
                Method::GET,
                &format!("/v1/pushes/{}", accepted["push_id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, 200, "an answered push is stored: {stored}");
        assert_eq!(next_push(&mut phone).await.message, json!({"n": round}));
    }
}

fn herald(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_remove("HERALD_STORE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn postgres_down_at_start_is_a_clear_error_and_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (exit, _, stderr) = herald(
        &[
            "serve",
            "--data",
            data,
            "--listen",
            "127.0.0.1:0",
            "--store",
            "postgres://herald:hunter2@127.0.0.1:9/herald",
        ],
        &[],
    );
    assert_eq!(exit, Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot open the store postgres://herald@127.0.0.1:9/herald"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password is never printed: {stderr}");
}

#[test]
fn bad_store_settings_exit_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (exit, _, stderr) = herald(&["serve", "--data", data, "--store", "mysql://x/y"], &[]);
    assert_eq!(exit, Some(2), "{stderr}");
    assert!(stderr.contains("invalid setting store"), "{stderr}");
    let (exit, _, stderr) =
        herald(&["migrate", "--store", "postgres://x/y"], &[("HERALD_POSTGRES_TLS", "maybe")]);
    assert_eq!(exit, Some(2), "{stderr}");
    assert!(stderr.contains("postgres_tls"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_the_schema_that_serve_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let store = postgres_store(dir.path());
    let data = dir.path().to_str().unwrap();
    let args = ["migrate", "--data", data, "--store", &store.url];
    let env = [("HERALD_POSTGRES_SCHEMA", store.schema.as_str())];
    let (exit, stdout, stderr) = herald(&args, &env);
    assert_eq!(exit, Some(0), "{stderr}");
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/../herald-store/migrations/postgres");
    let newest = std::fs::read_dir(migrations).unwrap().count();
    assert!(stdout.contains(&format!("schema at version {newest}")), "{stdout}");
    assert!(stdout.contains(&format!("(schema {})", store.schema)), "{stdout}");
    // Applied again, nothing changes.
    let (exit, again, stderr) = herald(&args, &env);
    assert_eq!((exit, again), (Some(0), stdout), "{stderr}");

    let herald = start_on(dir.path(), &store.url, &store.schema);
    let app = herald.create_app("migrated").await;
    let (status, _) = push(&herald, &app, 1).await;
    assert_eq!(status, 201);
    drop(herald);
    // A schema from a newer herald is refused, by `migrate` and by `serve`.
    let future = "INSERT INTO _sqlx_migrations \
        (version, description, success, checksum, execution_time) \
        VALUES (99990101000000, 'from the future', TRUE, '\\x00', 0)";
    assert_eq!(common::postgres_sql(&store, future), 1);
    let (exit, _, stderr) = self::herald(&args, &env);
    assert_eq!(exit, Some(3), "{stderr}");
    assert!(stderr.contains("99990101000000"), "{stderr}");
    let serve = ["serve", "--data", data, "--listen", "127.0.0.1:0", "--store", &store.url];
    let (exit, _, stderr) = self::herald(&serve, &env);
    assert_eq!(exit, Some(3), "{stderr}");
}
