//! Sessions over real sockets, spoken to frame by frame: hello handling, bad input, timeouts,
//! replacement, backpressure and shutdown.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use herald_core::AppId;
use herald_gateway::auth::Keyring;
use herald_gateway::protocol::{ClientFrame, ErrorCode, Hello, Push, ServerFrame, Welcome};
use herald_gateway::test_support::{serve, MemoryInbox};
use herald_gateway::{
    DeviceInfo, Gateway, GatewaySettings, Identity, Inbox, InboxError, Login, PushFrames,
};
use roaring::RoaringBitmap;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const APP: AppId = 1;
const KEY: &str = "app-key";
const SECRET: &str = "app-secret";
/// Only to keep a broken test from hanging; nothing is timed against it.
const WAIT: Duration = Duration::from_secs(20);

fn token(account: &str) -> String {
    herald_gateway::token::mint(KEY, SECRET, account, chrono::Utc::now().timestamp() + 3_600)
}

async fn start_with(settings: GatewaySettings, inbox: Arc<dyn Inbox>) -> (Gateway, String) {
    let auth = Arc::new(Keyring::new().with_app(APP, KEY, SECRET));
    let gateway = Gateway::new(settings, auth, inbox);
    let (url, _) = serve(gateway.clone()).await.expect("a local port");
    (gateway, url)
}

async fn start(settings: GatewaySettings) -> (Gateway, Arc<MemoryInbox>, String) {
    let inbox = MemoryInbox::new();
    let (gateway, url) = start_with(settings, inbox.clone()).await;
    (gateway, inbox, url)
}

async fn open(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.expect("connect").0
}

fn hello(token: String, device: &str, last_seq: u64) -> ClientFrame {
    ClientFrame::Hello(Hello {
        v: 1,
        token,
        device_id: device.into(),
        platform: "android".into(),
        package: "com.example".into(),
        vendor_token: None,
        last_seq,
        app_version: None,
        locale: None,
        time_zone: None,
    })
}

async fn send(ws: &mut Ws, frame: &ClientFrame) {
    ws.send(Message::text(frame.encode())).await.expect("send");
}

async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

#[derive(Debug, PartialEq)]
enum Got {
    Frame(ServerFrame),
    Closed(Option<u16>),
}

async fn recv(ws: &mut Ws) -> Got {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next()).await.expect("nothing arrived");
        match message {
            None | Some(Err(_)) => return Got::Closed(None),
            Some(Ok(Message::Text(text))) => {
                return Got::Frame(ServerFrame::decode(text.as_str()).expect("a server frame"))
            }
            Some(Ok(Message::Close(frame))) => {
                return Got::Closed(frame.map(|f| u16::from(f.code)))
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn connect(url: &str, account: &str, device: &str, last_seq: u64) -> (Ws, Welcome) {
    let mut ws = open(url).await;
    send(&mut ws, &hello(token(account), device, last_seq)).await;
    match recv(&mut ws).await {
        Got::Frame(ServerFrame::Welcome(welcome)) => (ws, welcome),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

async fn expect_error(ws: &mut Ws, code: ErrorCode) {
    match recv(ws).await {
        Got::Frame(ServerFrame::Error(error)) => assert_eq!(error.code, code, "{error:?}"),
        other => panic!("expected an error frame {code:?}, got {other:?}"),
    }
}

async fn expect_push(ws: &mut Ws) -> Push {
    match recv(ws).await {
        Got::Frame(ServerFrame::Push(push)) => push,
        other => panic!("expected a push, got {other:?}"),
    }
}

async fn expect_pong(ws: &mut Ws) {
    send(ws, &ClientFrame::Ping {}).await;
    assert_eq!(recv(ws).await, Got::Frame(ServerFrame::Pong {}));
}

fn audience(ids: &[u32]) -> RoaringBitmap {
    ids.iter().copied().collect()
}

#[tokio::test]
async fn the_welcome_carries_the_apps_webpush_key_when_it_has_one() {
    let (_gateway, inbox, url) = start(GatewaySettings::default()).await;
    let (_ws, welcome) = connect(&url, "ann", "tab-1", 0).await;
    assert_eq!(welcome.webpush_key, None);
    inbox.set_webpush_key(APP, "BNcRd");
    let (_ws, welcome) = connect(&url, "ann", "tab-2", 0).await;
    assert_eq!(welcome.webpush_key.as_deref(), Some("BNcRd"));
}

#[tokio::test]
async fn bad_tokens_close_with_4001() {
    let (_gateway, _inbox, url) = start(GatewaySettings::default()).await;
    let expired = herald_gateway::token::mint(KEY, SECRET, "alice", 1);
    let forged = herald_gateway::token::mint(KEY, "wrong secret", "alice", i64::MAX);
    let unknown_app = herald_gateway::token::mint("other", SECRET, "alice", i64::MAX);
    for bad in ["garbage".to_owned(), expired, forged, unknown_app] {
        let mut ws = open(&url).await;
        send(&mut ws, &hello(bad, "d1", 0)).await;
        expect_error(&mut ws, ErrorCode::Unauthorized).await;
        assert_eq!(recv(&mut ws).await, Got::Closed(Some(4001)));
    }
    // The server is still up and serves a good hello.
    connect(&url, "alice", "d1", 0).await;
}

#[tokio::test]
async fn a_bad_first_frame_closes_with_4002_and_the_server_stays_up() {
    let (_gateway, _inbox, url) = start(GatewaySettings::default()).await;
    let cases: &[(&str, ErrorCode, u16)] = &[
        ("garbage", ErrorCode::BadFrame, 4002),
        (r#"{"type":"ping"}"#, ErrorCode::HelloRequired, 4002),
        (r#"{"type":"launch"}"#, ErrorCode::UnknownType, 4002),
        (r#"{"type":"hello","v":1}"#, ErrorCode::BadFrame, 4002),
        (r#"{"type":"hello","v":9}"#, ErrorCode::UnsupportedVersion, 4005),
    ];
    for (text, code, close) in cases {
        let mut ws = open(&url).await;
        send_text(&mut ws, text).await;
        expect_error(&mut ws, *code).await;
        assert_eq!(recv(&mut ws).await, Got::Closed(Some(*close)), "{text}");
    }
    let mut ws = open(&url).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    expect_error(&mut ws, ErrorCode::BadFrame).await;
    assert_eq!(recv(&mut ws).await, Got::Closed(Some(4002)));
    connect(&url, "alice", "d1", 0).await;
}

#[tokio::test]
async fn bad_frames_after_hello_are_answered_and_the_session_goes_on() {
    let (_gateway, _inbox, url) = start(GatewaySettings::default()).await;
    let (mut ws, _) = connect(&url, "alice", "d1", 0).await;
    send_text(&mut ws, "{not json").await;
    expect_error(&mut ws, ErrorCode::BadFrame).await;
    send_text(&mut ws, r#"{"type":"subscribe"}"#).await;
    expect_error(&mut ws, ErrorCode::UnknownType).await;
    send_text(&mut ws, r#"{"type":"ack"}"#).await;
    expect_error(&mut ws, ErrorCode::BadFrame).await;
    ws.send(Message::binary(vec![0u8; 16])).await.unwrap();
    expect_error(&mut ws, ErrorCode::BadFrame).await;
    send(&mut ws, &hello(token("alice"), "d1", 0)).await;
    expect_error(&mut ws, ErrorCode::AlreadyIdentified).await;
    expect_pong(&mut ws).await;
}

#[tokio::test]
async fn oversized_frames_close_with_4004() {
    let (_gateway, _inbox, url) = start(GatewaySettings::default()).await;
    let (mut ws, _) = connect(&url, "alice", "d1", 0).await;
    send_text(&mut ws, &"x".repeat(70 * 1024)).await;
    expect_error(&mut ws, ErrorCode::FrameTooLarge).await;
    assert_eq!(recv(&mut ws).await, Got::Closed(Some(4004)));
    connect(&url, "alice", "d1", 0).await;
}

#[tokio::test]
async fn silence_closes_with_hello_timeout_and_idle_timeout() {
    let settings = GatewaySettings {
        hello_timeout: Duration::from_millis(200),
        heartbeat: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(300),
        ..GatewaySettings::default()
    };
    let (_gateway, _inbox, url) = start(settings).await;
    let mut ws = open(&url).await;
    assert_eq!(recv(&mut ws).await, Got::Closed(Some(4003)));
    let (mut ws, welcome) = connect(&url, "alice", "d1", 0).await;
    assert_eq!(welcome.heartbeat_secs, 1);
    assert_eq!(recv(&mut ws).await, Got::Closed(Some(4008)));
}

#[tokio::test]
async fn acks_move_the_cursor_and_unknown_seqs_are_refused() {
    let (gateway, inbox, url) = start(GatewaySettings::default()).await;
    let (mut ws, welcome) = connect(&url, "alice", "d1", 0).await;
    assert_eq!(welcome.resume_from, 0);
    let alice = inbox.account_id(APP, "alice");
    for n in 0..3 {
        inbox.publish(&gateway, APP, &audience(&[alice]), json!({ "n": n }));
    }
    let seqs = [expect_push(&mut ws).await.seq, expect_push(&mut ws).await.seq];
    assert_eq!(seqs, [1, 2]);
    assert_eq!(expect_push(&mut ws).await.seq, 3);

    send(&mut ws, &ClientFrame::decode(r#"{"type":"ack","up_to":99}"#).unwrap()).await;
    expect_error(&mut ws, ErrorCode::UnknownSeq).await;
    send(&mut ws, &ClientFrame::decode(r#"{"type":"ack","up_to":2,"seqs":[3,50]}"#).unwrap()).await;
    expect_error(&mut ws, ErrorCode::UnknownSeq).await;
    // Acks are recorded by the gateway's writer, shortly after they arrive.
    expect_pong(&mut ws).await;
    eventually(|| inbox.cursor(APP, "d1") == Some(2)).await;
    assert_eq!(inbox.delivered(APP, "d1").into_iter().collect::<Vec<_>>(), [3]);

    send_text(&mut ws, r#"{"type":"opened","push_id":"p1"}"#).await;
    expect_pong(&mut ws).await;
    assert_eq!(inbox.opened_by(APP, "d1"), ["p1"]);
}

#[tokio::test]
async fn a_new_hello_of_the_device_replaces_the_old_connection() {
    let (gateway, inbox, url) = start(GatewaySettings::default()).await;
    let (mut old, _) = connect(&url, "alice", "phone", 0).await;
    let (mut new, _) = connect(&url, "alice", "phone", 0).await;
    assert_eq!(recv(&mut old).await, Got::Closed(Some(4010)));
    let alice = inbox.account_id(APP, "alice");
    inbox.publish(&gateway, APP, &audience(&[alice]), json!("after"));
    assert_eq!(expect_push(&mut new).await.message, json!("after"));
    assert_eq!(gateway.registry().online_count(), 1);
}

#[tokio::test]
async fn refused_logins_close_with_4006() {
    let (_gateway, inbox, url) = start(GatewaySettings::default()).await;
    inbox.refuse_logins(Some("app disabled"));
    let mut ws = open(&url).await;
    send(&mut ws, &hello(token("alice"), "d1", 0)).await;
    match recv(&mut ws).await {
        Got::Frame(ServerFrame::Error(error)) => {
            assert_eq!(error.code, ErrorCode::Refused);
            assert_eq!(error.message, "app disabled");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(recv(&mut ws).await, Got::Closed(Some(4006)));
}

#[tokio::test]
async fn shutdown_closes_every_connection_with_1001() {
    let (gateway, _inbox, url) = start(GatewaySettings::default()).await;
    let (mut identified, _) = connect(&url, "alice", "d1", 0).await;
    let mut waiting = open(&url).await;
    // The unidentified connection must be registered as a connection before the shutdown.
    while gateway.connection_count() < 2 {
        tokio::task::yield_now().await;
    }
    gateway.shutdown();
    assert_eq!(recv(&mut identified).await, Got::Closed(Some(1001)));
    assert_eq!(recv(&mut waiting).await, Got::Closed(Some(1001)));
    tokio::time::timeout(WAIT, gateway.closed()).await.unwrap();
    assert_eq!(gateway.registry().online_count(), 0);
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "new connections are refused after shutdown");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_harming_others() {
    let settings = GatewaySettings { queue_capacity: 4, ..GatewaySettings::default() };
    let (gateway, inbox, url) = start(settings).await;
    let (_slow, _) = connect(&url, "slow", "slow-device", 0).await;
    let (mut fast, _) = connect(&url, "fast", "fast-device", 0).await;
    let ids = audience(&[inbox.account_id(APP, "slow"), inbox.account_id(APP, "fast")]);
    let slow_id = inbox.account_id(APP, "slow");

    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            match recv(&mut fast).await {
                Got::Frame(ServerFrame::Push(push)) => seen_tx.send(push.seq).unwrap(),
                other => return other,
            }
        }
    });
    // Large pushes fill the socket buffers of the client that does not read, then its queue.
    let blob = "x".repeat(32 * 1024);
    let mut published = 0u64;
    while gateway.registry().is_online(APP, slow_id) {
        assert!(published < 20_000, "the slow client was never dropped");
        inbox.publish(&gateway, APP, &ids, json!({ "blob": blob }));
        published += 1;
        // Let the fast reader keep up, as a real reader would.
        while seen_rx.len() < (published as usize).saturating_sub(2) && !reader.is_finished() {
            tokio::task::yield_now().await;
        }
    }
    inbox.publish(&gateway, APP, &ids, json!("after"));
    published += 1;
    let mut seen = Vec::new();
    while seen.len() < published as usize {
        match tokio::time::timeout(WAIT, seen_rx.recv()).await.unwrap() {
            Some(seq) => seen.push(seq),
            None => panic!("the fast client stopped: {:?}", reader.await),
        }
    }
    assert_eq!(seen, (1..=published).collect::<Vec<_>>());
    assert!(!reader.is_finished());
    assert_eq!(gateway.registry().online_count(), 1);
}

/// An inbox that publishes a live push while a device's pending list is being read, and
/// returns that push in the list too: the session must send it once.
struct RacingInbox {
    inner: Arc<MemoryInbox>,
    gateway: OnceLock<Gateway>,
}

#[async_trait]
impl Inbox for RacingInbox {
    async fn login(&self, identity: &Identity, device: &DeviceInfo) -> Result<Login, InboxError> {
        self.inner.login(identity, device).await
    }

    async fn pending(
        &self,
        app: AppId,
        account_id: u32,
        device: &DeviceInfo,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Push>, InboxError> {
        if after_seq == 0 {
            let gateway = self.gateway.get().expect("set after start");
            let push = self.inner.store(app, &audience(&[account_id]), json!("raced"));
            gateway.registry().deliver(app, &audience(&[account_id]), &PushFrames::new(&push));
        }
        self.inner.pending(app, account_id, device, after_seq, limit).await
    }

    async fn ack(
        &self,
        app: AppId,
        device_id: &str,
        up_to: Option<u64>,
        seqs: &[u64],
    ) -> Result<(), InboxError> {
        self.inner.ack(app, device_id, up_to, seqs).await
    }

    async fn opened(&self, app: AppId, device_id: &str, push_id: &str) -> Result<(), InboxError> {
        self.inner.opened(app, device_id, push_id).await
    }
}

#[tokio::test]
async fn a_push_both_stored_and_live_is_sent_once_in_order() {
    let memory = MemoryInbox::new();
    let alice = memory.account_id(APP, "alice");
    memory.store(APP, &audience(&[alice]), json!("stored 1"));
    memory.store(APP, &audience(&[alice]), json!("stored 2"));
    let racing = Arc::new(RacingInbox { inner: memory.clone(), gateway: OnceLock::new() });
    let settings = GatewaySettings { pending_page: 2, ..GatewaySettings::default() };
    let (gateway, url) = start_with(settings, racing.clone()).await;
    racing.gateway.set(gateway.clone()).unwrap();

    let (mut ws, _) = connect(&url, "alice", "d1", 0).await;
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(expect_push(&mut ws).await.seq);
    }
    assert_eq!(seqs, [1, 2, 3]);
    // Paged: after 2 (a full page), then after 3.
    let calls: Vec<u64> = memory.pending_calls().into_iter().map(|(_, after)| after).collect();
    assert_eq!(calls, [0, 2]);
    memory.publish(&gateway, APP, &audience(&[alice]), json!("live"));
    assert_eq!(expect_push(&mut ws).await.seq, 4);
    expect_pong(&mut ws).await;
}

/// Waits (up to 5 s) until `check` holds.
async fn eventually(check: impl Fn() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test]
async fn an_ack_sent_before_a_close_is_recorded_before_the_close_completes() {
    let (gateway, inbox, url) = start(GatewaySettings::default()).await;
    let (mut ws, _) = connect(&url, "alice", "d1", 0).await;
    let alice = inbox.account_id(APP, "alice");
    inbox.publish(&gateway, APP, &audience(&[alice]), json!({ "n": 1 }));
    let seq = expect_push(&mut ws).await.seq;
    send_text(&mut ws, &format!(r#"{{"type":"ack","up_to":{seq}}}"#)).await;
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    assert_eq!(inbox.cursor(APP, "d1"), Some(seq));
}
