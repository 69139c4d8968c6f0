//! The app's webhook receiver is down for an hour, compressed by the retry settings: first it
//! answers 503, then it is gone (connections refused) while herald restarts. Every event is
//! kept in the outbox through all of it, retried with growing waits, and posted exactly once
//! with a 2xx answer once the receiver is back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::common::{until, AppCreds, Herald, Start};

/// Pushes, so `push.finished` events, emitted while the receiver is down.
const EVENTS: usize = 5;

/// Attempts an event gets at the default schedule (2 s doubling, jitter of up to a quarter
/// less) within an hour; the test waits for more than that while the receiver answers 503.
const ATTEMPTS_IN_AN_HOUR: usize = 12;

/// One post the receiver got: the event's id, its body, the signature headers, the answer.
#[derive(Clone, Debug)]
struct Post {
    id: i64,
    body: String,
    headers: HeaderMap,
    answered: u16,
}

/// A webhook receiver whose answer the test sets; every answer closes the connection, so
/// that stopping the receiver leaves nothing listening.
#[derive(Clone, Default)]
struct Receiver {
    posts: Arc<Mutex<Vec<Post>>>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    /// Serves on `port` (0: any) until the returned task is aborted; returns the port.
    async fn serve(&self, port: u16) -> (u16, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = self.clone();
        let hook = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let up = me.up.load(std::sync::atomic::Ordering::SeqCst);
                    let status = if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                    let id = serde_json::from_str::<Value>(&body)
                        .ok()
                        .and_then(|event| event["id"].as_i64())
                        .unwrap_or(-1);
                    let answered = status.as_u16();
                    me.posts.lock().unwrap().push(Post { id, body, headers, answered });
                    (status, [("connection", "close")])
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, hook).await;
        });
        (port, task)
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }

    fn attempts_per_event(&self) -> BTreeMap<i64, usize> {
        let mut attempts = BTreeMap::new();
        for post in self.posts() {
            *attempts.entry(post.id).or_default() += 1;
        }
        attempts
    }
}

fn start(data: &std::path::Path, config: &std::path::Path) -> Herald {
    let args = vec!["--config".into(), config.display().to_string()];
    Herald::start_with(data, Start { args, ..Start::default() })
}

async fn failed_webhook_posts(herald: &Herald) -> u64 {
    let (_, metrics) = herald.raw(herald.request(Method::GET, "/metrics")).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("herald_webhook_failures_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn events_wait_out_a_receiver_down_for_an_hour_and_a_restart_and_arrive_once() {
    let receiver = Receiver::default();
    let (port, serving) = receiver.serve(0).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    // An hour of the default schedule (2 s doubling to an hour) in about two seconds; the
    // give-up age stays at its default (3 days).
    std::fs::write(&config, "[webhooks]\nfirst_retry_ms = 20\nmax_retry_ms = 200\n").unwrap();
    let data = dir.path().join("data");
    let herald = start(&data, &config);
    let app: AppCreds = herald
        .create_app_with(json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 1000}))
        .await;
    let hook = json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["push.finished"]});
    let (status, out) = herald.signed(&app, Method::PUT, "/v1/webhook", Some(hook)).await;
    assert_eq!(status, 200, "{out}");

    let mut push_ids = Vec::new();
    for n in 0..EVENTS {
        let body = json!({"audience": {"all": true}, "message": n});
        let (status, sent) = herald.signed(&app, Method::POST, "/v1/pushes", Some(body)).await;
        assert_eq!(status, 201, "{sent}");
        push_ids.push(sent["push_id"].as_str().unwrap().to_owned());
    }

    // Down, answering 503: each event is tried more often than in an hour at the defaults,
    // and more than the ten attempts after which events used to be given up.
    until("every event retried as often as in an hour", || {
        let attempts = receiver.attempts_per_event();
        attempts.len() == EVENTS && attempts.values().all(|n| *n > ATTEMPTS_IN_AN_HOUR)
    })
    .await;

    // Gone altogether, and herald restarts meanwhile: the outbox is in the store.
    serving.abort();
    let _ = serving.await;
    herald.stop();
    let herald = start(&data, &config);
    let mut failed = 0;
    for _ in 0..400 {
        failed = failed_webhook_posts(&herald).await;
        if failed >= EVENTS as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(failed >= EVENTS as u64, "posts to the closed port after the restart: {failed}");

    // Back.
    receiver.up.store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, serving) = receiver.serve(port).await;
    until("every event delivered", || {
        let delivered = receiver.posts().iter().filter(|p| p.answered == 200).count();
        delivered >= EVENTS
    })
    .await;
    // A while longer at the compressed schedule: nothing is posted again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let posts = receiver.posts();
    let delivered: Vec<&Post> = posts.iter().filter(|p| p.answered == 200).collect();
    assert_eq!(delivered.len(), EVENTS, "each event accepted once: {delivered:?}");
    let mut finished: Vec<String> = Vec::new();
    for post in &delivered {
        let event: Value = serde_json::from_str(&post.body).unwrap();
        assert_eq!(event["event"], "push.finished");
        let timestamp: i64 = post.headers["x-herald-timestamp"].to_str().unwrap().parse().unwrap();
        let signature = herald_server::webhooks::sign(&app.secret, timestamp, &post.body);
        assert_eq!(post.headers["x-herald-signature"].to_str().unwrap(), signature);
        let first = posts.iter().find(|p| p.id == post.id).unwrap();
        assert_eq!(first.body, post.body, "every attempt carries the same event");
        finished.push(event["data"]["push_id"].as_str().unwrap().to_owned());
    }
    finished.sort();
    push_ids.sort();
    assert_eq!(finished, push_ids, "one push.finished per push");
    let attempts = receiver.attempts_per_event();
    eprintln!(
        "{EVENTS} events, posts received per event (503s and the final 200): {:?}; \
         failed posts after the restart: {}",
        attempts.values().collect::<Vec<_>>(),
        failed_webhook_posts(&herald).await
    );
    serving.abort();
    herald.stop();
}
