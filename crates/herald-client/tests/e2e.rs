//! The SDK against an in-process gateway on a local port, with in-memory seams: live and
//! offline delivery, resume, duplicates, bad input and slow readers.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use herald_client::{Client, ClientError, ConnectOptions, Event, Push, Reconnect, TokenSource};
use herald_core::AppId;
use herald_gateway::auth::Keyring;
use herald_gateway::test_support::{serve, MemoryInbox};
use herald_gateway::{Gateway, GatewaySettings};
use roaring::RoaringBitmap;
use serde_json::json;

const APP: AppId = 3;
const KEY: &str = "key-3";
const SECRET: &str = "secret-3";
/// Only to keep a broken test from hanging; nothing is timed against it.
const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    gateway: Gateway,
    inbox: Arc<MemoryInbox>,
    url: String,
}

impl Harness {
    async fn start(settings: GatewaySettings) -> Self {
        let inbox = MemoryInbox::new();
        let auth = Arc::new(Keyring::new().with_app(APP, KEY, SECRET));
        let gateway = Gateway::new(settings, auth, inbox.clone());
        let (url, _) = serve(gateway.clone()).await.expect("a local port");
        Self { gateway, inbox, url }
    }

    fn options(&self, account: &str, device: &str) -> ConnectOptions {
        let token = herald_client::mint_token(KEY, SECRET, account, i64::MAX);
        let mut options = ConnectOptions::new(token, device, "android", "com.example");
        options.reconnect = Reconnect {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..Reconnect::default()
        };
        options
    }

    async fn client(&self, account: &str, device: &str) -> Client {
        Client::connect(&self.url, self.options(account, device)).await.expect("connect")
    }

    fn id(&self, account: &str) -> u32 {
        self.inbox.account_id(APP, account)
    }

    fn audience(&self, accounts: &[&str]) -> RoaringBitmap {
        accounts.iter().map(|a| self.id(a)).collect()
    }

    fn publish(&self, accounts: &[&str], message: serde_json::Value) -> Push {
        self.inbox.publish(&self.gateway, APP, &self.audience(accounts), message).0
    }
}

async fn next_push(client: &mut Client) -> Push {
    tokio::time::timeout(WAIT, client.next_push()).await.expect("no push in time").expect("stopped")
}

async fn next_event(client: &mut Client) -> Event {
    tokio::time::timeout(WAIT, client.next_event()).await.expect("no event").expect("stopped")
}

/// Skips the `Connected` event of the first connection.
async fn connected(client: &mut Client) -> u64 {
    match next_event(client).await {
        Event::Connected { resume_from, .. } => resume_from,
        other => panic!("expected Connected, got {other:?}"),
    }
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never: {what}"));
}

#[tokio::test]
async fn live_pushes_reach_exactly_the_audience() {
    let h = Harness::start(GatewaySettings::default()).await;
    let names = ["ann", "bob", "cat", "dan"];
    let mut clients = Vec::new();
    for name in names {
        clients.push(h.client(name, &format!("{name}-phone")).await);
    }
    h.publish(&["ann", "cat"], json!("for ann and cat"));
    h.publish(&names, json!("for everyone"));
    for (name, client) in names.iter().zip(&mut clients) {
        let first = next_push(client).await;
        if ["ann", "cat"].contains(name) {
            assert_eq!((first.seq, &first.message), (1, &json!("for ann and cat")), "{name}");
            assert_eq!(next_push(client).await.seq, 2);
        } else {
            // Nothing came before the push to everyone.
            assert_eq!((first.seq, &first.message), (2, &json!("for everyone")), "{name}");
        }
    }
}

#[tokio::test]
async fn stored_pushes_come_in_order_then_live_ones() {
    let h = Harness::start(GatewaySettings::default()).await;
    h.publish(&["ann"], json!(1));
    h.publish(&["bob"], json!("not ann's"));
    h.publish(&["ann", "bob"], json!(3));
    h.publish(&["ann"], json!(4));
    let mut ann = h.client("ann", "ann-phone").await;
    assert_eq!(connected(&mut ann).await, 0);
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(next_push(&mut ann).await.seq);
    }
    assert_eq!(seqs, [1, 3, 4]);
    h.publish(&["ann"], json!("live"));
    let live = next_push(&mut ann).await;
    assert_eq!((live.seq, live.message), (5, json!("live")));
    assert_eq!(ann.stats().pushes, 4);
}

#[tokio::test]
async fn reconnect_resumes_after_the_last_ack_and_drops_duplicates() {
    let h = Harness::start(GatewaySettings::default()).await;
    let mut ann = h.client("ann", "ann-phone").await;
    for n in 1..=3 {
        h.publish(&["ann"], json!(n));
    }
    for seq in 1..=3 {
        assert_eq!(next_push(&mut ann).await.seq, seq);
    }
    ann.ack(2).unwrap();
    eventually("the ack is recorded", || h.inbox.cursor(APP, "ann-phone") == Some(2)).await;

    // The server ends the session; the client comes back by itself.
    assert!(h.gateway.registry().disconnect_device(APP, "ann-phone"));
    loop {
        match next_event(&mut ann).await {
            Event::Connected { resume_from, .. } => {
                assert_eq!(resume_from, 2);
                break;
            }
            Event::Disconnected { code, retry_in, .. } => {
                assert_eq!(code, Some(4011));
                assert!(retry_in.is_some());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Push 3 was not acked, so the server sent it again; the client had passed it on already.
    h.publish(&["ann"], json!(4));
    assert_eq!(next_push(&mut ann).await.seq, 4);
    assert_eq!(ann.stats().duplicates_dropped, 1);
    assert_eq!(ann.stats().connects, 2);
    let afters: Vec<u64> = h.inbox.pending_calls().into_iter().map(|(_, after)| after).collect();
    assert_eq!(afters, [0, 2]);
    ann.close().await;

    // A fresh start of the app without a saved resume point: the stored cursor decides;
    // acked pushes are not sent again, unacked ones are.
    let mut again = h.client("ann", "ann-phone").await;
    assert_eq!(connected(&mut again).await, 2);
    assert_eq!(next_push(&mut again).await.seq, 3);
    assert_eq!(next_push(&mut again).await.seq, 4);
}

#[tokio::test]
async fn an_ack_made_just_before_close_is_sent_while_a_push_waits_for_the_app() {
    let h = Harness::start(GatewaySettings::default()).await;
    let ann = h.id("ann");
    for n in 1..=3 {
        h.inbox.store(APP, &RoaringBitmap::from_iter([ann]), json!(n));
    }
    // Room for one event: the client holds push 2 until the app takes push 1, so the app
    // closes while the client waits to hand push 2 over.
    let mut options = h.options("ann", "ann-phone");
    options.event_capacity = 1;
    let mut client = Client::connect(&h.url, options).await.expect("connect");
    assert_eq!(connected(&mut client).await, 0);
    let first = next_push(&mut client).await;
    eventually("push 2 waits for the app", || client.stats().pushes == 2).await;
    client.ack(first.seq).unwrap();
    client.close().await;
    assert_eq!(h.inbox.cursor(APP, "ann-phone"), Some(first.seq));
}

#[tokio::test]
async fn a_saved_resume_point_skips_what_was_acked() {
    let h = Harness::start(GatewaySettings::default()).await;
    for n in 1..=3 {
        h.publish(&["ann"], json!(n));
    }
    let mut options = h.options("ann", "ann-phone");
    options.last_seq = 2;
    let mut ann = Client::connect(&h.url, options).await.unwrap();
    assert_eq!(next_push(&mut ann).await.seq, 3);
    assert_eq!(ann.last_acked(), 2);
}

#[tokio::test]
async fn two_devices_of_one_account_both_receive() {
    let h = Harness::start(GatewaySettings::default()).await;
    let mut phone = h.client("ann", "ann-phone").await;
    let mut tablet = h.client("ann", "ann-tablet").await;
    h.publish(&["ann"], json!("both"));
    assert_eq!(next_push(&mut phone).await.message, json!("both"));
    assert_eq!(next_push(&mut tablet).await.message, json!("both"));
    // Each device has its own cursor.
    phone.ack(1).unwrap();
    eventually("the phone's ack", || h.inbox.cursor(APP, "ann-phone") == Some(1)).await;
    assert_eq!(h.inbox.cursor(APP, "ann-tablet"), Some(0));
}

#[tokio::test]
async fn opens_and_explicit_acks_reach_the_inbox() {
    let h = Harness::start(GatewaySettings::default()).await;
    let mut ann = h.client("ann", "ann-phone").await;
    let push = h.publish(&["ann"], json!("tap me"));
    assert_eq!(next_push(&mut ann).await.push_id, push.push_id);
    ann.opened(&push.push_id).unwrap();
    ann.ack_seqs(vec![push.seq]).unwrap();
    eventually("open and ack recorded", || {
        h.inbox.opened_by(APP, "ann-phone") == [push.push_id.clone()]
            && h.inbox.delivered(APP, "ann-phone").contains(&push.seq)
    })
    .await;
    assert_eq!(h.inbox.cursor(APP, "ann-phone"), Some(0));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_4001() {
    let h = Harness::start(GatewaySettings::default()).await;
    let mut options = h.options("ann", "ann-phone");
    options.token = TokenSource::from(herald_client::mint_token(KEY, "wrong", "ann", i64::MAX));
    let err = Client::connect(&h.url, options).await.unwrap_err();
    assert_eq!(err.close_code(), Some(4001), "{err}");

    let mut options = h.options("ann", "ann-phone");
    options.token = TokenSource::provider(|| async { Err("no session".to_owned()) });
    let err = Client::connect(&h.url, options).await.unwrap_err();
    assert_eq!(err, ClientError::Token("no session".into()));

    let mut options = h.options("ann", "ann-phone");
    let token = herald_client::mint_token(KEY, SECRET, "ann", i64::MAX);
    options.token = TokenSource::provider(move || std::future::ready(Ok(token.clone())));
    Client::connect(&h.url, options).await.unwrap();
}

#[tokio::test]
async fn garbage_does_not_hurt_the_server() {
    let h = Harness::start(GatewaySettings::default()).await;
    let mut ann = h.client("ann", "ann-phone").await;
    let (mut raw, _) = tokio_tungstenite::connect_async(h.url.as_str()).await.unwrap();
    raw.send(tokio_tungstenite::tungstenite::Message::text("\u{0}garbage{")).await.unwrap();
    drop(raw);
    let mut bob = h.client("bob", "bob-phone").await;
    h.publish(&["ann", "bob"], json!("still here"));
    assert_eq!(next_push(&mut ann).await.seq, 1);
    assert_eq!(next_push(&mut bob).await.seq, 1);
}

#[tokio::test]
async fn a_replaced_client_stops() {
    let h = Harness::start(GatewaySettings::default()).await;
    let mut old = h.client("ann", "ann-phone").await;
    let mut new = h.client("ann", "ann-phone").await;
    connected(&mut old).await;
    match next_event(&mut old).await {
        Event::Disconnected { code, retry_in, .. } => {
            assert_eq!(code, Some(4010));
            assert_eq!(retry_in, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(old.next_event().await.is_none());
    assert_eq!(old.stop_reason().and_then(|e| e.close_code()), Some(4010));
    h.publish(&["ann"], json!("to the new one"));
    assert_eq!(next_push(&mut new).await.seq, 1);
}

#[tokio::test]
async fn an_application_that_stops_reading_gets_its_pushes_after_reconnecting() {
    // The close frame for the slow client can only leave once it reads again: give it time.
    let settings =
        GatewaySettings { queue_capacity: 4, close_timeout: WAIT, ..GatewaySettings::default() };
    let h = Harness::start(settings).await;
    let mut options = h.options("ann", "ann-phone");
    options.event_capacity = 1;
    let mut ann = Client::connect(&h.url, options).await.unwrap();
    let mut bob = h.client("bob", "bob-phone").await;
    let ann_id = h.id("ann");

    // Nobody takes ann's events: her client stops reading, the server drops her as too slow.
    let blob = "x".repeat(32 * 1024);
    let mut published = 0;
    while h.gateway.registry().is_online(APP, ann_id) {
        assert!(published < 20_000, "ann was never dropped");
        h.publish(&["ann", "bob"], json!({ "blob": blob }));
        published += 1;
        assert_eq!(next_push(&mut bob).await.seq, published);
    }
    // Now ann's application reads again: everything arrives once, in order, the rest from
    // the inbox after the client reconnected.
    let mut seqs = Vec::new();
    let mut closes = Vec::new();
    while seqs.len() < published as usize {
        match next_event(&mut ann).await {
            Event::Push(push) => {
                seqs.push(push.seq);
                ann.ack(push.seq).unwrap();
            }
            Event::Disconnected { code, .. } => closes.push(code),
            Event::Connected { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seqs, (1..=published).collect::<Vec<_>>());
    assert_eq!(closes, [Some(4009)]);
    // Bob never noticed.
    h.publish(&["bob"], json!("bob is fine"));
    assert_eq!(next_push(&mut bob).await.seq, published + 1);
}
