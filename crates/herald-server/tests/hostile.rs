//! Slow and hostile clients against the real binary: each kind is cut off with its close code
//! or HTTP status, and a normal client connected beside it still gets every push, in order.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{next_push, AppCreds, Herald, Start};
use futures_util::{SinkExt, StreamExt};
use herald_client::Client;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// What frames are read from: a whole socket or its read half.
trait Frames: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin {}
impl<S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin> Frames for S {}

/// Only to keep a broken test from hanging; nothing is timed against it.
const WAIT: Duration = Duration::from_secs(30);

/// A server whose `[gateway]` table is `gateway`, and an app without a broadcast interval.
async fn start(dir: &std::path::Path, gateway: &str) -> (Herald, AppCreds) {
    start_logging(dir, gateway, false).await
}

/// [`start`], keeping the server's logs in `Herald::stderr` when `capture_logs`.
async fn start_logging(
    dir: &std::path::Path,
    gateway: &str,
    capture_logs: bool,
) -> (Herald, AppCreds) {
    let config = dir.join("herald.toml");
    std::fs::write(&config, format!("[gateway]\n{gateway}\n")).unwrap();
    let data = dir.join("data");
    let args = vec!["--config".into(), config.display().to_string()];
    let start = Start { args, capture_stderr: capture_logs, ..Start::default() };
    let herald = Herald::start_with(&data, start);
    let limits = json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 100_000});
    let app = herald.create_app_with(limits).await;
    (herald, app)
}

async fn push_all(herald: &Herald, app: &AppCreds, message: Value) {
    let body = json!({"audience": {"all": true}, "message": message, "ttl_secs": 600});
    let (status, out) = herald.signed(app, Method::POST, "/v1/pushes", Some(body)).await;
    assert!(status == 201 || status == 200, "{status} {out}");
}

/// The normal client's next push is the `n`th one: nothing lost, nothing out of order.
async fn expect_nth(client: &mut Client, n: u64) -> herald_client::Push {
    let push = next_push(client).await;
    assert_eq!(push.message["n"], json!(n), "{push:?}");
    push
}

/// One sample of `/metrics` (`name{labels}` as printed), 0 when absent.
async fn metric(herald: &Herald, series: &str) -> f64 {
    let text = herald.request(Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn until_metric(herald: &Herald, series: &str, want: f64) {
    for _ in 0..600 {
        if metric(herald, series).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never reached {want}: {}", metric(herald, series).await);
}

fn addr(herald: &Herald) -> SocketAddr {
    herald.base.trim_start_matches("http://").parse().unwrap()
}

fn ws_url(herald: &Herald) -> String {
    format!("{}/v1/connect", herald.base.replace("http://", "ws://"))
}

/// A TCP connection from `source`, with a small receive buffer when asked.
async fn tcp_from(herald: &Herald, source: [u8; 4], recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(addr(herald)).await.unwrap()
}

/// WebSocket upgrade from `source`: the socket, or the HTTP status of a refusal.
async fn upgrade_from(herald: &Herald, source: [u8; 4]) -> Result<Ws, u16> {
    let tcp = tcp_from(herald, source, None).await;
    match tokio_tungstenite::client_async(ws_url(herald), tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(err) => panic!("upgrade failed: {err}"),
    }
}

fn hello_text(app: &AppCreds, account: &str) -> String {
    let token = herald_client::mint_token(
        &app.key,
        &app.secret,
        account,
        chrono::Utc::now().timestamp() + 3600,
    );
    json!({"type": "hello", "v": 1, "token": token, "device_id": format!("{account}-dev"),
           "platform": "android", "package": "com.shop"})
    .to_string()
}

/// Upgrade, hello, welcome.
/// Upgrades from `source` once a place is free (a closed connection gives its place back when
/// the server has seen the close); `None` after 10 s.
async fn upgrade_once_free(herald: &Herald, source: [u8; 4]) -> Option<Ws> {
    for _ in 0..200 {
        if let Ok(ws) = upgrade_from(herald, source).await {
            return Some(ws);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn identified(herald: &Herald, app: &AppCreds, account: &str) -> Ws {
    let mut ws = upgrade_from(herald, [127, 0, 0, 1]).await.unwrap();
    ws.send(Message::text(hello_text(app, account))).await.unwrap();
    let welcome = next_text(&mut ws).await.expect("a welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

/// The next text frame as JSON, or `None` when a close (or the end) comes first.
async fn next_text<S: Frames>(ws: &mut S) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("nothing arrived") {
            Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads until the close frame and returns its code (`None` if the connection just ended);
/// `error` is the code of the error frame that must come before it.
async fn expect_close<S: Frames>(ws: &mut S, error: &str) -> Option<u16> {
    let mut saw_error = false;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("no close") {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "error" && frame["code"] == error {
                    saw_error = true;
                }
            }
            Some(Ok(Message::Close(frame))) => {
                assert!(saw_error, "no {error} error frame before the close");
                return frame.map(|f| u16::from(f.code));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

async fn expect_close_without_error<S: Frames>(ws: &mut S) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("no close") {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

#[tokio::test]
async fn clients_that_do_not_read_are_cut_off_and_a_neighbour_gets_every_push() {
    let dir = tempfile::tempdir().unwrap();
    let (herald, app) = start(dir.path(), "queue_capacity = 4").await;
    let mut normal = herald.device(&app, "normal", "normal-phone", "android").await;

    let mut hostile = Vec::new();
    for (account, reads) in [("never-reads", false), ("one-byte-a-second", true)] {
        // Small receive buffers, so that the server's writes block after a few pushes rather
        // than after megabytes of kernel buffer.
        let tcp = tcp_from(&herald, [127, 0, 0, 1], Some(4096)).await;
        let (mut ws, _) = tokio_tungstenite::client_async(ws_url(&herald), tcp).await.unwrap();
        ws.send(Message::text(hello_text(&app, account))).await.unwrap();
        let mut tcp = ws.into_inner();
        if reads {
            hostile.push(tokio::spawn(async move {
                let mut byte = [0u8; 1];
                while matches!(tcp.read(&mut byte).await, Ok(1)) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }));
        } else {
            hostile.push(tokio::spawn(async move {
                let _held = tcp;
                std::future::pending::<()>().await
            }));
        }
    }
    until_metric(&herald, "herald_gateway_sessions", 3.0).await;

    // 8 KB pushes until both are closed as too slow; the normal client reads each as it comes.
    let pad = "x".repeat(8 * 1024);
    let mut sent = 0;
    while metric(&herald, "herald_gateway_disconnects_total{reason=\"too_slow\"}").await < 2.0 {
        assert!(sent < 400, "the slow clients were never cut off");
        push_all(&herald, &app, json!({"n": sent, "pad": pad})).await;
        expect_nth(&mut normal, sent).await;
        sent += 1;
    }
    // Their sockets are dropped too (within the close timeout), not merely left unfed.
    until_metric(&herald, "herald_gateway_connections", 1.0).await;
    push_all(&herald, &app, json!({"n": sent})).await;
    expect_nth(&mut normal, sent).await;
    for task in hostile {
        task.abort();
    }
}

#[tokio::test]
async fn one_megabyte_frames_are_refused_with_4004() {
    let dir = tempfile::tempdir().unwrap();
    let (herald, app) = start(dir.path(), "").await;
    let mut normal = herald.device(&app, "normal", "normal-phone", "android").await;
    let big = "x".repeat(1 << 20);

    // Before the hello and after it.
    let before = upgrade_from(&herald, [127, 0, 0, 1]).await.unwrap();
    let after = identified(&herald, &app, "big-sender").await;
    for ws in [before, after] {
        let (mut sink, mut stream) = ws.split();
        // The server stops reading at the frame's header: the send may block on a full
        // socket, so it runs beside the reading of the answer.
        let big = big.clone();
        let sending = tokio::spawn(async move {
            let _ = sink.send(Message::text(big)).await;
            sink
        });
        assert_eq!(expect_close(&mut stream, "frame_too_large").await, Some(4004));
        sending.abort();
    }
    push_all(&herald, &app, json!({"n": 0})).await;
    expect_nth(&mut normal, 0).await;
    let series = "herald_gateway_disconnects_total{reason=\"frame_too_large\"}";
    until_metric(&herald, series, 2.0).await;
}

#[tokio::test]
async fn connections_without_a_hello_are_capped_then_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let (herald, app) = start(dir.path(), "max_unidentified = 20\nhello_timeout = 3.0").await;
    let mut normal = herald.device(&app, "normal", "normal-phone", "android").await;

    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(upgrade_from(&herald, [127, 0, 0, 1]).await.unwrap());
    }
    assert_eq!(upgrade_from(&herald, [127, 0, 0, 1]).await.err(), Some(503));
    let series = "herald_gateway_refused_total{limit=\"unidentified\"}";
    assert_eq!(metric(&herald, series).await, 1.0);
    push_all(&herald, &app, json!({"n": 0})).await;
    expect_nth(&mut normal, 0).await;

    // The hello timeout frees their places.
    for ws in &mut silent {
        assert_eq!(expect_close_without_error(ws).await, Some(4003));
    }
    until_metric(&herald, "herald_gateway_unidentified", 0.0).await;
    let mut late = identified(&herald, &app, "late").await;
    push_all(&herald, &app, json!({"n": 1})).await;
    expect_nth(&mut normal, 1).await;
    loop {
        let frame = next_text(&mut late).await.expect("a push");
        if frame["type"] == "push" {
            assert_eq!(frame["message"]["n"], 1, "{frame}");
            break;
        }
    }
}

#[tokio::test]
async fn the_server_holds_at_most_max_connections_and_its_api_stays_served() {
    let dir = tempfile::tempdir().unwrap();
    let (mut herald, app) = start_logging(dir.path(), "max_connections = 6", true).await;
    let mut normal = herald.device(&app, "normal", "normal-phone", "android").await;

    // Identified or not, from any address: five more fill the server.
    let mut held = vec![identified(&herald, &app, "second").await];
    for n in 0..4u8 {
        held.push(upgrade_from(&herald, [127, 0, 0, 2 + n]).await.unwrap());
    }
    assert_eq!(upgrade_from(&herald, [127, 0, 0, 9]).await.err(), Some(503));
    let series = "herald_gateway_refused_total{limit=\"max_connections\"}";
    assert_eq!(metric(&herald, series).await, 1.0);
    // The API is not a WebSocket connection: pushes are still taken and delivered.
    push_all(&herald, &app, json!({"n": 0})).await;
    expect_nth(&mut normal, 0).await;

    drop(held.pop());
    assert!(
        upgrade_once_free(&herald, [127, 0, 0, 9]).await.is_some(),
        "a closed connection's place was never given back"
    );

    // A refusal by design is not an error: a flood of them must not bury the real ones.
    let stderr = herald.stderr.take().unwrap();
    drop((normal, held));
    herald.stop();
    let errors: Vec<String> = stderr.iter().filter(|line| line.contains("ERROR")).collect();
    assert!(errors.is_empty(), "refused connections logged as errors: {errors:?}");
}

#[tokio::test]
async fn one_address_gets_its_limit_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (herald, app) = start(dir.path(), "max_connections_per_ip = 5").await;
    let mut normal = herald.device(&app, "normal", "normal-phone", "android").await;

    // 127.0.0.2 is another address of the loopback interface: another host to the server.
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(upgrade_from(&herald, [127, 0, 0, 2]).await.unwrap());
    }
    assert_eq!(upgrade_from(&herald, [127, 0, 0, 2]).await.err(), Some(429));
    push_all(&herald, &app, json!({"n": 0})).await;
    expect_nth(&mut normal, 0).await;
    let mut other = upgrade_from(&herald, [127, 0, 0, 3]).await.unwrap();
    other.send(Message::text(hello_text(&app, "other"))).await.unwrap();
    assert_eq!(next_text(&mut other).await.unwrap()["type"], "welcome");

    // A place given back is a place to take.
    drop(held.pop());
    assert!(
        upgrade_once_free(&herald, [127, 0, 0, 2]).await.is_some(),
        "the address never got its place back"
    );
}

#[tokio::test]
async fn one_app_gets_its_limit_and_other_apps_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (herald, app) = start(dir.path(), "max_connections_per_app = 2").await;
    let other_app = herald
        .create_app_with(
            json!({"broadcast_min_interval_secs": 0, "broadcast_daily_quota": 100_000}),
        )
        .await;
    let mut normal = herald.device(&other_app, "normal", "normal-phone", "android").await;

    let _first = identified(&herald, &app, "first").await;
    let _second = identified(&herald, &app, "second").await;
    let mut third = upgrade_from(&herald, [127, 0, 0, 1]).await.unwrap();
    third.send(Message::text(hello_text(&app, "third"))).await.unwrap();
    assert_eq!(expect_close(&mut third, "too_many_connections").await, Some(4012));
    push_all(&herald, &other_app, json!({"n": 0})).await;
    expect_nth(&mut normal, 0).await;
}

#[tokio::test]
async fn an_ack_flood_is_closed_with_4013() {
    let dir = tempfile::tempdir().unwrap();
    let (herald, app) =
        start(dir.path(), "client_frame_rate = 10.0\nclient_frame_burst = 20").await;
    let mut normal = herald.device(&app, "normal", "normal-phone", "android").await;
    let flooder = identified(&herald, &app, "flooder").await;
    push_all(&herald, &app, json!({"n": 0})).await;
    expect_nth(&mut normal, 0).await;

    // Ten times the burst, as fast as the socket takes them.
    let (mut sink, mut stream) = flooder.split();
    let flood = tokio::spawn(async move {
        for _ in 0..200 {
            if sink.send(Message::text(r#"{"type":"ack","up_to":1}"#)).await.is_err() {
                break;
            }
        }
        sink
    });
    assert_eq!(expect_close(&mut stream, "rate_limited").await, Some(4013));
    flood.abort();
    push_all(&herald, &app, json!({"n": 1})).await;
    let push = expect_nth(&mut normal, 1).await;
    // The normal client acks each push: far below the limit, never cut.
    normal.ack(push.seq).unwrap();
    push_all(&herald, &app, json!({"n": 2})).await;
    expect_nth(&mut normal, 2).await;
}
