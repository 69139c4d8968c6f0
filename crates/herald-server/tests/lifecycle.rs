//! The life of a push through the real binary: scheduling, cancel, recall, rate limits,
//! reports, crash safety and webhooks.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{next_push, AppCreds, Herald};
use herald_client::Event;
use reqwest::Method;
use serde_json::{json, Value};

async fn push(herald: &Herald, app: &AppCreds, body: Value) -> Value {
    let (status, out) = herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await;
    assert_eq!(status, 201, "{out}");
    out
}

async fn get(herald: &Herald, app: &AppCreds, path: &str) -> Value {
    let (status, out) = herald.signed(app, Method::GET, path, None).await;
    assert_eq!(status, 200, "{path}: {out}");
    out
}

async fn wait_status(herald: &Herald, app: &AppCreds, push_id: &str, status: &str) -> Value {
    for _ in 0..400 {
        let view = get(herald, app, &format!("/v1/pushes/{push_id}")).await;
        if view["status"] == status {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("push {push_id} never became {status}");
}

fn lax() -> Value {
    json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 1000})
}

#[tokio::test]
async fn a_scheduled_push_fires_after_a_restart_and_a_past_time_sends_now() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(3);
    let later = push(
        &herald,
        &app,
        json!({"audience": {"all": true}, "message": {"n": "later"}, "push_at": at}),
    )
    .await;
    assert_eq!(later["status"], "scheduled");
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    let now = push(
        &herald,
        &app,
        json!({"audience": {"all": true}, "message": {"n": "now"}, "push_at": past}),
    )
    .await;
    wait_status(&herald, &app, now["push_id"].as_str().unwrap(), "done").await;
    herald.stop();

    let herald = Herald::start(dir.path());
    let mut phone = herald.device(&app, "amy", "amy-phone", "ios").await;
    let got = next_push(&mut phone).await;
    assert_eq!(got.message, json!({"n": "later"}), "fired after the restart");
    let view = wait_status(&herald, &app, later["push_id"].as_str().unwrap(), "done").await;
    let started: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(view["started_at"].clone()).unwrap();
    assert!(started >= at, "not before its time");
}

#[tokio::test]
async fn cancel_before_dispatch_and_precise_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let mut phone = herald.device(&app, "bo", "bo-phone", "android").await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let later =
        push(&herald, &app, json!({"audience": {"all": true}, "message": {"n": 1}, "push_at": at}))
            .await;
    let id = later["push_id"].as_str().unwrap();
    let (status, cancelled) =
        herald.signed(&app, Method::POST, &format!("/v1/pushes/{id}/cancel"), None).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    let (status, err) =
        herald.signed(&app, Method::POST, &format!("/v1/pushes/{id}/cancel"), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("push_not_cancellable")));
    let (status, err) = herald.signed(&app, Method::POST, "/v1/pushes/p_nope/cancel", None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, err) =
        herald.signed(&app, Method::POST, &format!("/v1/pushes/{id}/recall"), None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("push_not_recallable")),
        "never sent"
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    push(&herald, &app, json!({"audience": {"all": true}, "message": {"n": "sentinel"}})).await;
    assert_eq!(
        next_push(&mut phone).await.message,
        json!({"n": "sentinel"}),
        "the cancelled push never came"
    );

    let listed = get(&herald, &app, "/v1/pushes?status=cancelled").await;
    assert_eq!(listed["pushes"][0]["push_id"], id);
    let (status, err) = herald.signed(&app, Method::GET, "/v1/pushes?status=lost", None).await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test]
async fn recall_reaches_online_devices_and_empties_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let (status, _) = herald
        .signed(&app, Method::POST, "/v1/accounts/import", Some(json!({"accounts": ["off"]})))
        .await;
    assert_eq!(status, 200);
    let mut online = herald.device(&app, "on", "on-phone", "ios").await;
    let sent =
        push(&herald, &app, json!({"audience": {"all": true}, "message": {"n": "oops"}})).await;
    let id = sent["push_id"].as_str().unwrap();
    assert_eq!(next_push(&mut online).await.push_id, id);

    let (status, out) =
        herald.signed(&app, Method::POST, &format!("/v1/pushes/{id}/recall"), None).await;
    assert_eq!((status, out["online_recalled"].as_u64()), (200, Some(1)), "{out}");
    assert!(out["push"]["recalled_at"].is_string());
    let recall = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(Event::Recall(recall)) = online.next_event().await {
                return recall;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(recall.push_id, id);

    let mut offline = herald.device(&app, "off", "off-phone", "android").await;
    push(&herald, &app, json!({"audience": {"all": true}, "message": {"n": "sentinel"}})).await;
    assert_eq!(
        next_push(&mut offline).await.message,
        json!({"n": "sentinel"}),
        "the recalled push left the inbox"
    );
    let (status, err) =
        herald.signed(&app, Method::POST, &format!("/v1/pushes/{id}/recall"), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("push_not_recallable")));
}

#[tokio::test]
async fn rate_limits_and_quotas_refuse_with_429_and_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald
        .create_app_with(json!({"broadcast_min_interval_secs": 60, "broadcast_daily_quota": 100}))
        .await;
    push(&herald, &app, json!({"audience": {"tag": "vip"}, "message": 1})).await;
    let (status, err) = herald
        .signed(
            &app,
            Method::POST,
            "/v1/pushes",
            Some(json!({"audience": {"all": true}, "message": 2})),
        )
        .await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(
        (err["error"]["limit"].as_str(), err["error"]["value"].as_u64()),
        (Some("broadcast_min_interval_secs"), Some(60))
    );
    let retry = err["error"]["retry_after_secs"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (status, _) = herald
        .signed(
            &app,
            Method::POST,
            "/v1/pushes",
            Some(json!({"audience": {"accounts": ["u1"]}, "message": 3})),
        )
        .await;
    assert_eq!(status, 201, "pushes to named accounts are not broadcasts");

    let quota = herald
        .create_app_with(json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 2}))
        .await;
    push(&herald, &quota, json!({"audience": {"all": true}, "message": 1})).await;
    push(&herald, &quota, json!({"audience": {"all": true}, "message": 2})).await;
    let (status, err) = herald
        .signed(
            &quota,
            Method::POST,
            "/v1/pushes",
            Some(json!({"audience": {"all": true}, "message": 3})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["limit"].as_str(), err["error"]["value"].as_u64()),
        (429, Some("broadcast_daily_quota"), Some(2))
    );

    let slow = herald.create_app_with(json!({"requests_per_second": 3})).await;
    let mut refused = None;
    for _ in 0..10 {
        let req = herald.request(Method::GET, "/v1/app");
        let signed = common::Signer::new(&slow).sign(req, "GET", "/v1/app", b"");
        let res = signed.send().await.unwrap();
        if res.status() == 429 {
            let retry_after = res.headers()["retry-after"].to_str().unwrap().to_owned();
            refused = Some((retry_after, res.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (retry_after, body) = refused.expect("the request rate limit refused");
    assert_eq!(retry_after, "1");
    assert_eq!(
        (body["error"]["code"].as_str(), body["error"]["limit"].as_str()),
        (Some("rate_limited"), Some("requests_per_second"))
    );
}

#[tokio::test]
async fn reports_match_what_devices_did_per_platform_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let register = json!({"account": "dan", "platform": "android", "package": "com.shop"});
    let (status, _) =
        herald.signed(&app, Method::PUT, "/v1/devices/dan-phone", Some(register)).await;
    assert_eq!(status, 200);
    let mut ann = herald.device(&app, "ann", "ann-phone", "ios").await;
    let mut ben = herald.device(&app, "ben", "ben-phone", "ios").await;
    let mut cat = herald.device(&app, "cat", "cat-phone", "android").await;

    let sent = push(
        &herald,
        &app,
        json!({"audience": {"all": true}, "message": 1, "notification": {"title": "Hi"}}),
    )
    .await;
    let id = sent["push_id"].as_str().unwrap().to_owned();
    for phone in [&mut ann, &mut ben] {
        let got = next_push(phone).await;
        phone.ack(got.seq).unwrap();
    }
    ann.opened(&id).unwrap();
    assert_eq!(next_push(&mut cat).await.push_id, id, "cat receives but does not ack");
    wait_status(&herald, &app, &id, "done").await;

    let report = wait_report(&herald, &app, &id, |r| r["platforms"]["ios"]["opened"] == 1).await;
    let ios = &report["platforms"]["ios"];
    assert_eq!(
        (ios["targeted"].as_u64(), ios["sent_online"].as_u64(), ios["stored_offline"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(
        (ios["delivered"].as_u64(), ios["opened"].as_u64(), ios["open_rate"].as_f64()),
        (Some(2), Some(1), Some(0.5))
    );
    let android = &report["platforms"]["android"];
    assert_eq!(
        (
            android["targeted"].as_u64(),
            android["sent_online"].as_u64(),
            android["stored_offline"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(android["delivered"], 0);
    assert_eq!(
        (report["audience"].as_u64(), report["totals"]["delivered"].as_u64()),
        (Some(4), Some(2))
    );

    let mut dan = herald.device(&app, "dan", "dan-phone", "android").await;
    let got = next_push(&mut dan).await;
    dan.ack(got.seq).unwrap();
    let report =
        wait_report(&herald, &app, &id, |r| r["platforms"]["android"]["delivered"] == 1).await;
    let timeline: u64 = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delivered"].as_u64().unwrap())
        .sum();
    assert_eq!(timeline, 3);
    dan.close().await;
    herald.stop();

    let herald = Herald::start(dir.path());
    let after = get(&herald, &app, &format!("/v1/pushes/{id}/report")).await;
    assert_eq!(after["totals"], report["totals"], "counts survive the restart");
    let days = get(&herald, &app, "/v1/stats/days").await;
    let today = &days["days"][0];
    assert_eq!(
        (today["pushes"].as_u64(), today["delivered"].as_u64(), today["opened"].as_u64()),
        (Some(1), Some(3), Some(1))
    );
}

/// The value of a counter on `/metrics`, 0 before it is first counted.
async fn counter(herald: &Herald, name: &str) -> u64 {
    let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    let value = metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' '));
    value.map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_devices_connected_writes_their_acks_and_ends_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let scheduled = push(
        &herald,
        &app,
        json!({"audience": {"all": true}, "message": {"n": "later"}, "push_at": later}),
    )
    .await;
    let mut phones = Vec::new();
    for name in ["ann", "ben", "cat"] {
        phones.push(herald.device(&app, name, &format!("{name}-phone"), "ios").await);
    }
    let sent =
        push(&herald, &app, json!({"audience": {"all": true}, "message": {"n": "now"}})).await;
    let id = sent["push_id"].as_str().unwrap().to_owned();
    for phone in &mut phones {
        let got = next_push(phone).await;
        assert_eq!(got.push_id, id);
        phone.ack(got.seq).unwrap();
    }
    // Every ack reached the server (the counter moves as an ack is queued to be recorded);
    // the devices stay connected and nothing asks for a report, which would flush receipts.
    for _ in 0..200 {
        if counter(&herald, "herald_gateway_acks_total").await >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counter(&herald, "herald_gateway_acks_total").await, 3);

    let stopping = std::time::Instant::now();
    herald.stop();
    // Well under the 30 s shutdown timeout: every background task ended when told to.
    assert!(stopping.elapsed() < Duration::from_secs(10), "took {:?}", stopping.elapsed());
    drop(phones);

    let herald = Herald::start(dir.path());
    let report = get(&herald, &app, &format!("/v1/pushes/{id}/report")).await;
    assert_eq!(report["totals"]["delivered"], 3, "{report}");
    let scheduled = scheduled["push_id"].as_str().unwrap();
    let view = get(&herald, &app, &format!("/v1/pushes/{scheduled}")).await;
    assert_eq!(view["status"], "scheduled");
}

async fn wait_report(
    herald: &Herald,
    app: &AppCreds,
    id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        let report = get(herald, app, &format!("/v1/pushes/{id}/report")).await;
        if ready(&report) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the report never showed what devices did");
}

#[tokio::test]
async fn a_kill_during_dispatch_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    for chunk in 0..20 {
        let accounts: Vec<String> = (0..1000).map(|i| format!("user-{chunk}-{i}")).collect();
        let (status, _) = herald
            .signed(&app, Method::POST, "/v1/accounts/import", Some(json!({"accounts": accounts})))
            .await;
        assert_eq!(status, 200);
    }
    let sent =
        push(&herald, &app, json!({"audience": {"all": true}, "message": {"big": true}})).await;
    drop(herald); // SIGKILL right after the answer, during or before the fan-out.

    let herald = Herald::start(dir.path());
    let id = sent["push_id"].as_str().unwrap();
    let done = wait_status(&herald, &app, id, "done").await;
    assert_eq!(done["targeted"], 20_000);
    let mut phone = herald.device(&app, "user-19-999", "last-phone", "web").await;
    let got = next_push(&mut phone).await;
    assert_eq!(got.push_id, id);
    phone.ack(got.seq).unwrap();
    push(&herald, &app, json!({"audience": {"accounts": ["user-19-999"]}, "message": "sentinel"}))
        .await;
    assert_eq!(next_push(&mut phone).await.message, json!("sentinel"), "delivered once");
}

#[tokio::test]
async fn webhooks_are_signed_and_retried() {
    let received: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let log = received.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push((headers, body));
                // The first attempt fails, so the event must be retried.
                if log.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let (status, out) = herald
        .signed(
            &app,
            Method::PUT,
            "/v1/webhook",
            Some(json!({"url": url, "events": ["push.finished"]})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let (status, _) = herald
        .signed(
            &app,
            Method::PUT,
            "/v1/webhook",
            Some(json!({"url": url, "events": ["push.exploded"]})),
        )
        .await;
    assert_eq!(status, 400);
    let sent = push(&herald, &app, json!({"audience": {"all": true}, "message": 1})).await;

    for _ in 0..200 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = received.lock().unwrap().clone();
    assert_eq!(log.len(), 2, "one failed attempt, one retry");
    assert_eq!(log[0].1, log[1].1, "the same event again");
    let (headers, body) = &log[1];
    let timestamp: i64 = headers["x-herald-timestamp"].to_str().unwrap().parse().unwrap();
    let expected = herald_server::webhooks::sign(&app.secret, timestamp, body);
    assert_eq!(headers["x-herald-signature"].to_str().unwrap(), expected);
    assert_eq!(headers["x-herald-event"].to_str().unwrap(), "push.finished");
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (event["event"].as_str(), &event["data"]["push_id"]),
        (Some("push.finished"), &sent["push_id"])
    );
}

#[tokio::test]
async fn cli_schedules_cancels_reports_and_configures_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let herald = Herald::start(dir.path());
    let app = herald.create_app_with(lax()).await;
    let env = [
        ("HERALD_SERVER", herald.base.as_str()),
        ("HERALD_APP_KEY", app.key.as_str()),
        ("HERALD_APP_SECRET", app.secret.as_str()),
    ];
    let run = |args: &[&str]| {
        let (ok, out, err) = common::cli(args, &env);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled: Value = serde_json::from_str(&run(&[
        "push",
        "--audience",
        r#"{"all":true}"#,
        "--message",
        "1",
        "--at",
        &at,
        "--json",
    ]))
    .unwrap();
    let id = scheduled["push_id"].as_str().unwrap();
    assert_eq!(scheduled["status"], "scheduled");
    assert!(run(&["push", "list", "--status", "scheduled"]).contains(id));
    assert!(run(&["push", "cancel", id]).contains("cancelled"));
    let (ok, _, err) = common::cli(&["push", "cancel", id], &env);
    assert!(!ok && err.contains("push_not_cancellable"), "{err}");

    let sent: Value = serde_json::from_str(&run(&[
        "push",
        "--audience",
        r#"{"all":true}"#,
        "--message",
        "2",
        "--json",
    ]))
    .unwrap();
    let sent_id = sent["push_id"].as_str().unwrap();
    wait_status(&herald, &app, sent_id, "done").await;
    let report = run(&["push", "report", sent_id]);
    assert!(report.contains("total") && report.contains("delivery_rate"), "{report}");
    assert!(run(&["stats", "days", "--json"]).contains("\"days\""));
    run(&["webhook", "set", "--url", "http://127.0.0.1:9/hook", "--event", "push.failed"]);
    assert!(run(&["webhook", "get"]).contains("push.failed"));
    assert!(run(&["webhook", "delete"]).contains("deleted"));
}
